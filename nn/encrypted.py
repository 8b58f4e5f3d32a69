"""The encrypted forward pass: a loaded Keras network compiled onto ``ckks`` with batch packing.

Client: ``encrypt_batch`` packs up to ``batch_size`` records into ciphertexts (see ``batch_packing``) and
``compile_model`` turns the weights into plaintexts (the server owns the model) or ciphertexts (the client
owns it: the server then sees neither data, model nor result, as in the paper). Server: ``prepare_weights``
once per model, then ``predict`` runs the layers (each one in ``encrypted_layers``). Client:
``decrypt_batch`` decodes and unpacks the scores.

Scales are exact (Kim-Papadimitriou-Polyakov 2022): weights are encoded at scale q_l, the prime the following
rescale divides by, so a Dense layer leaves the scale unchanged; x^2 maps scale s to s^2 / q_l.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

import ckks

from . import batch_packing as bp
from . import encrypted_layers as layers
from . import single_packing as sp
from .container import ArtifactError
from .errors import refuse_complex
from .model import SQUARE, Dense, PlainNetwork, Polynomial
from .plan import InferencePlan, layer_depth, network_problem


@dataclass
class CompiledDense:
    """A Dense layer ready for the server: block diagonals and biases as plaintexts or ciphertexts."""

    name: str
    level: int
    diagonals: dict[tuple[int, int, int], ckks.Plaintext | ckks.Ciphertext]
    biases: dict[int, ckks.Plaintext | ckks.Ciphertext]
    inputs: int  # ciphertexts in
    outputs: int  # ciphertexts out


@dataclass
class CompiledActivation:
    """An element-wise polynomial c0 + c1 x + c2 x^2 (coefficients are public: they are the architecture)."""

    name: str
    level: int
    coeffs: tuple[float, ...]


@dataclass
class EncryptedModel:
    """What the server runs: the plan and the compiled layers.

    ``keys``: with encrypted weights, the identity of the keys they are encrypted under
    (``workflow.keys_id``), so that the server can refuse a model and data of two different clients; None
    when not recorded.
    """

    plan: InferencePlan
    layers: list[CompiledDense | CompiledActivation]
    encrypted_weights: bool
    input_dim: int
    output_dim: int
    keys: str | None = None


@dataclass
class StageTimer:
    """Wall time per named stage of ``predict`` (seconds, summed over calls)."""

    seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))

    def add(self, stage: str, start: float) -> None:
        self.seconds[stage] += time.perf_counter() - start


def layer_scales(network: PlainNetwork, plan: InferencePlan) -> list[float]:
    """The exact scale at each layer's input (and at the output, last), replaying the evaluator's formulas."""
    moduli = plan.params.moduli
    scale, level = plan.params.scale, plan.params.max_level
    scales = []
    for layer in network.layers:
        scales.append(scale)
        if isinstance(layer, Dense):
            scale = scale * float(moduli[level]) / moduli[level]
        elif layer_depth(layer) == 1 and tuple(layer.coeffs) != SQUARE:  # linear: c1 * x (scale q_l), rescale
            scale = scale * float(moduli[level]) / moduli[level]
        elif layer_depth(layer) == 1:  # x^2
            scale = scale * scale / moduli[level]
        else:  # x * (c2 x + c1)
            inner = scale * float(moduli[level]) / moduli[level]
            scale = scale * inner / moduli[level - 1]
        level -= layer_depth(layer)
    scales.append(scale)
    return scales


def compile_model(
    network: PlainNetwork, plan: InferencePlan, encoder: ckks.Encoder, encryptor: ckks.Encryptor | None = None
) -> EncryptedModel:
    """Encode (``encryptor=None``: the server owns the model) or encrypt every diagonal and bias.

    Batch packing: block diagonals keyed (k, m, j) (see ``batch_packing``); single-record packing: the
    pre-rotated diagonals keyed (g, b) of the baby-step / giant-step method (see ``single_packing``).

    Raises:
        ArtifactError: ``network`` is not the network ``plan`` was made for (layers, depths, widths).
    """
    problem = network_problem(network, plan)
    if problem:
        raise ArtifactError(f"the model is not the network the plan was made for: {problem}: run "
                            "`ckkslab keygen` with the model the server uses")
    slots = plan.params.slots
    moduli = plan.params.moduli
    scales = layer_scales(network, plan)
    compiled: list[CompiledDense | CompiledActivation] = []

    def put(vector: np.ndarray, level: int, scale: float) -> ckks.Plaintext | ckks.Ciphertext:
        pt = encoder.encode(vector, level=level, scale=scale)
        return encryptor.encrypt(pt) if encryptor is not None else pt

    for index, (layer, level) in enumerate(zip(network.layers, plan.layer_levels, strict=True)):
        if isinstance(layer, Polynomial):
            compiled.append(CompiledActivation(layer.name, level, layer.coeffs))
            continue
        w_scale, b_scale = float(moduli[level]), scales[index] * float(moduli[level])
        if plan.packing == "single":
            vectors = sp.giant_step_diagonals(layer.weights, plan.block, slots)
            diagonals = {key: put(v, level, w_scale) for key, v in vectors.items()}
            biases = {0: put(sp.replicate(layer.bias, plan.block, slots), level, b_scale)}
            compiled.append(CompiledDense(layer.name, level, diagonals, biases, 1, 1))
            continue
        p, block = plan.features_per_ciphertext, plan.block
        d_in, d_out = layer.weights.shape
        n_in, n_out = bp.ciphertext_count(d_in, p), bp.ciphertext_count(d_out, p)
        shift = block if bp.rotate_outputs(n_in, n_out) else 0  # pre-rotate right by j*block
        diagonals = {
            key: put(
                np.roll(bp.block_diagonal(layer.weights, *key, block, p, slots), key[2] * shift),
                level,
                w_scale,
            )
            for key in bp.diagonals_to_multiply(layer.weights, block, p, slots)
        }
        biases = {
            m: put(bp.bias_vector(layer.bias, m, block, p, slots), level, b_scale) for m in range(n_out)
        }
        compiled.append(CompiledDense(layer.name, level, diagonals, biases, n_in, n_out))
    return EncryptedModel(plan, compiled, encryptor is not None, network.input_dim, network.output_dim)


def encrypt_batch(
    x: np.ndarray, plan: InferencePlan, encoder: ckks.Encoder, encryptor: ckks.Encryptor
) -> list[ckks.Ciphertext]:
    """Pack up to ``batch_size`` records (n, d) into ciphertexts at the top level and default scale.

    Raises:
        ckks.ValueRangeError: empty batch, too many records, another number of features than the plan's
            network takes, complex or non-finite values, or values beyond the planned range (the network's
            intermediate values could overflow).
    """
    x = np.asarray(refuse_complex(x, "encrypt_batch: the records", ckks.ValueRangeError), dtype=np.float64)
    if x.ndim != 2 or x.shape[0] == 0:
        raise ckks.ValueRangeError(
            f"encrypt_batch: expected records as a non-empty 2-D array, got shape {x.shape}"
        )
    if x.shape[0] > plan.block:
        raise ckks.ValueRangeError(
            f"encrypt_batch: {x.shape[0]} records exceed the planned batch of {plan.block}"
        )
    if x.shape[1] != plan.input_dim:
        raise ckks.ValueRangeError(
            f"encrypt_batch: the records have {x.shape[1]} features, the plan's network takes {plan.input_dim}"
        )
    if not np.all(np.isfinite(x)):
        raise ckks.ValueRangeError("encrypt_batch: the records contain NaN or infinity")
    if np.max(np.abs(x)) > plan.value_bound:
        raise ckks.ValueRangeError(
            f"encrypt_batch: input values reach {np.max(np.abs(x)):.3g}, beyond the planned "
            f"range {plan.value_bound:.3g}: plan again with these records as calibration"
        )
    if plan.packing == "single":
        if x.shape[0] != 1:
            raise ckks.ValueRangeError(
                f"encrypt_batch: single-record packing takes one record, got {x.shape[0]}"
            )
        return [encryptor.encrypt(encoder.encode(sp.replicate(x[0], plan.block, plan.params.slots)))]
    packed = bp.pack(x, plan.block, plan.features_per_ciphertext, plan.params.slots)
    # Inputs, then each of them rotated left by every client rotation (the first layer's rotations, for free).
    vectors = list(packed) + [np.roll(v, -step) for step in plan.client_rotations for v in packed]
    return [encryptor.encrypt(encoder.encode(v)) for v in vectors]


def prepare_weights(model: EncryptedModel, ev: ckks.Evaluator) -> dict[tuple, object]:
    """Server side, once per loaded model: every diagonal prepared (plain ones with their Shoup companions),
    keyed (layer,) + key, and every bias, keyed ("bias", layer, m); each layer's diagonals in one group and
    its biases in another (``Evaluator.prepare_many``), which ``dot_many`` reads in place.

    The model's layers then hold their diagonals and biases as views into the groups (the same values):
    each weight is kept once, and the memory of the separate copies goes back to the heap, where the
    server's temporaries reuse it instead of touching fresh pages."""
    prepared: dict[tuple, object] = {}
    for index, layer in enumerate(model.layers):
        if isinstance(layer, CompiledDense):
            keys = list(layer.diagonals)
            group = ev.prepare_many([layer.diagonals[key] for key in keys])
            prepared.update({(index,) + key: weight for key, weight in zip(keys, group, strict=True)})
            layer.diagonals = {key: weight.source for key, weight in zip(keys, group, strict=True)}
            outputs = sorted(layer.biases)
            # Biases are added, never multiplied: stacked without Shoup companions.
            biases = ev.prepare_many([layer.biases[m] for m in outputs], companions=False)
            prepared.update({("bias", index, m): bias for m, bias in zip(outputs, biases, strict=True)})
            layer.biases = {m: bias.source for m, bias in zip(outputs, biases, strict=True)}
    return prepared


def predict(
    model: EncryptedModel,
    inputs: list[ckks.Ciphertext],
    ev: ckks.Evaluator,
    prepared: dict | None = None,
    timer: StageTimer | None = None,
) -> list[ckks.Ciphertext]:
    """Run every layer on the encrypted batch; the server needs only ``ev`` (public evaluation keys).

    ``prepared``: the result of ``prepare_weights(model, ev)``, made once per model (computed here if absent).

    Raises:
        ckks.ValueRangeError: if the number of input ciphertexts does not match the model (a batch
            encrypted with another plan).
    """
    timer = timer if timer is not None else StageTimer()
    prepared = prepared if prepared is not None else prepare_weights(model, ev)
    first = next((lay for lay in model.layers if isinstance(lay, CompiledDense)), None)
    # The inputs, optionally followed by their client-sent rotations (see InferencePlan.client_rotations).
    accepted = {first.inputs, first.inputs * (1 + len(model.plan.client_rotations))} if first else {len(inputs)}
    if len(inputs) not in accepted:
        raise ckks.ValueRangeError(f"predict: the model expects {' or '.join(map(str, sorted(accepted)))} "
                                   f"input ciphertexts, got {len(inputs)}: encrypt the batch with this "
                                   "model's plan")
    cts = inputs
    for index, layer in enumerate(model.layers):
        stage = f"layer {index + 1} ({layer.name})"
        if isinstance(layer, CompiledDense) and model.plan.packing == "single":
            cts = layers.dense_single(model, index, cts, ev, prepared, timer, stage)
        elif isinstance(layer, CompiledDense):
            cts = layers.dense(model, index, cts, ev, prepared, timer, stage)
        else:
            cts = layers.activation(layer, cts, ev, timer, stage)
    return cts


def decrypt_batch(
    outputs: list[ckks.Ciphertext],
    n: int,
    model_plan: InferencePlan,
    output_dim: int,
    encoder: ckks.Encoder,
    decryptor: ckks.Decryptor,
    flood_bits: float | None = None,
) -> np.ndarray:
    """Decrypt, decode and unpack the scores of n records: (n, output_dim).

    ``flood_bits``: add 2^flood_bits-sized noise at decryption (``ckks.Decryptor.decrypt``, Li-Micciancio).

    Raises:
        ckks.ValueRangeError: if a score lies beyond the planned range (a sign that an intermediate value
            overflowed the modulus: the result would be meaningless).
    """
    slots = np.stack([encoder.decode(decryptor.decrypt(ct, flood_bits=flood_bits)) for ct in outputs])
    if model_plan.packing == "single":
        scores = slots[:1, :output_dim]
    else:
        scores = bp.unpack(slots, n, output_dim, model_plan.block, model_plan.features_per_ciphertext)
    if np.max(np.abs(scores)) > model_plan.value_bound:
        raise ckks.ValueRangeError(
            f"decrypted scores reach {np.max(np.abs(scores)):.3g}, beyond the planned range "
            f"{model_plan.value_bound:.3g}: an intermediate value overflowed; plan again with "
            "a larger margin"
        )
    return scores
