"""The encrypted forward pass: a loaded Keras network compiled onto ``ckks`` with batch packing.

Client: ``encrypt_batch`` packs up to ``batch_size`` records into ciphertexts (see ``batch_packing``) and
``compile_model`` turns the weights into plaintexts (the server owns the model) or ciphertexts (the client owns
it: the server then sees neither data, model nor result, as in the paper). Server: ``predict`` runs the layers.
Client: ``decrypt_batch`` decodes and unpacks the scores.

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


def _bias_where_unrotated(prepared: dict, index: int,
                          parts: list[tuple[int, int]]) -> tuple[list[object | None], set[int]]:
    """The biases for ``dot_many`` when its outputs are partial sums keyed (m, shift), rotated by their shift
    afterwards: bias m goes into the unrotated sum (m, 0), as rot(S + b) would rotate b too. Also the
    outputs m that thereby get their bias (the others need a separate addition: ``_add_missing_biases``)."""
    biases = [prepared[("bias", index, m)] if shift == 0 else None for m, shift in parts]
    return biases, {m for m, shift in parts if shift == 0}


def _add_missing_biases(layer: CompiledDense, sums: list[ckks.Ciphertext], biased: set[int],
                        ev: ckks.Evaluator) -> list[ckks.Ciphertext]:
    """sums[m] + b_m for the outputs m whose bias no ``dot_many`` added (those without an unrotated part)."""
    return [s if m in biased else ev.add(s, layer.biases[m]) for m, s in enumerate(sums)]


def _dense(
    model: EncryptedModel,
    index: int,
    cts: list[ckks.Ciphertext],
    ev: ckks.Evaluator,
    prepared: dict,
    timer: StageTimer,
    stage: str,
) -> list[ckks.Ciphertext]:
    """Block-diagonal Dense layer: rotate the inputs, or (fewer outputs) the partial sums; with ciphertext
    weights, one relinearization per output ciphertext (lazy), plus one per rotated partial sum."""
    layer = model.layers[index]
    block = model.plan.block
    by_output = bp.rotate_outputs(layer.inputs, layer.outputs)
    rotated: dict[tuple[int, int], ckks.Ciphertext] = {}
    if not by_output:
        start = time.perf_counter()
        for k, _m, j in layer.diagonals:
            if (k, j) in rotated:
                continue
            if j == 0:
                rotated[(k, j)] = cts[k]
            elif len(cts) > layer.inputs:  # the client sent in_k rotated by j*block after the inputs
                rotated[(k, j)] = cts[model.plan.client_rotations.index(j * block) * layer.inputs + layer.inputs + k]
            else:
                rotated[(k, j)] = ev.rotate(cts[k], j * block)
        timer.add(f"{stage} rotate", start)
    start = time.perf_counter()
    if by_output:  # out_m = sum_j rot(S_mj, j*block), S_mj = sum_k in_k * pre-rotated diagonal
        parts = sorted({(m, j) for _k, m, j in layer.diagonals})
        biases, biased = _bias_where_unrotated(prepared, index, parts)
        sums = ev.dot_many(cts, [[(k, prepared[(index, k, m, j)]) for k, mm, jj in layer.diagonals
                                  if (mm, jj) == (m, j)] for m, j in parts], biases)
        timer.add(f"{stage} multiply-accumulate", start)
        start = time.perf_counter()
        by_shift: dict[int, list[int]] = defaultdict(list)  # the partial sums rotated by each j * block
        for n, (_m, j) in enumerate(parts):
            if j:
                by_shift[j].append(n)
        for j, which in by_shift.items():
            parts_j = [sums[n] for n in which]  # a rotation needs size-2 ciphertexts
            rotated_parts = ev.rotate_many(ev.relinearize_many(parts_j) if parts_j[0].size == 3 else parts_j,
                                           j * block)
            for n, part in zip(which, rotated_parts, strict=True):
                sums[n] = part
        timer.add(f"{stage} rotate", start)
        accs: dict[int, ckks.Ciphertext] = {}
        for (m, _j), part in zip(parts, sums, strict=True):
            accs[m] = part if m not in accs else ev.add(accs[m], part)
        sums = [accs[m] for m in range(layer.outputs)]
    else:
        position = {key: n for n, key in enumerate(rotated)}
        sums = ev.dot_many(list(rotated.values()), [
            [(position[(k, j)], prepared[(index, k, mm, j)]) for k, mm, j in layer.diagonals if mm == m]
            for m in range(layer.outputs)], [prepared[("bias", index, m)] for m in range(layer.outputs)])
        biased = set(range(layer.outputs))
        timer.add(f"{stage} multiply-accumulate", start)
    start = time.perf_counter()
    sums = _add_missing_biases(layer, sums, biased, ev)
    timer.add(f"{stage} multiply-accumulate", start)
    start = time.perf_counter()
    if sums[0].size == 3:  # lazy relinearization: once per output ciphertext, after the whole sum
        outputs = ev.relinearize_and_rescale_many(sums)
        timer.add(f"{stage} relinearize + rescale", start)
    else:
        outputs = ev.rescale_many(sums)
        timer.add(f"{stage} rescale", start)
    return outputs


def _dense_single(
    model: EncryptedModel,
    index: int,
    cts: list[ckks.Ciphertext],
    ev: ckks.Evaluator,
    prepared: dict,
    timer: StageTimer,
    stage: str,
) -> list[ckks.Ciphertext]:
    """M x + bias = sum_g rot(sum_b diag'_{g,b} * rot(x, b), g n1) + bias (baby-step / giant-step diagonals,
    b the baby step); the bias is added with the giant step g = 0, the one sum not rotated."""
    layer = model.layers[index]
    n1 = sp.baby_steps(model.plan.block)
    start = time.perf_counter()
    babies = {b: cts[0] if b == 0 else ev.rotate(cts[0], b) for b in sorted({b for _g, b in layer.diagonals})}
    timer.add(f"{stage} rotate", start)
    giants = sorted({g for g, _b in layer.diagonals})
    position = {b: n for n, b in enumerate(babies)}
    start = time.perf_counter()
    biases, biased = _bias_where_unrotated(prepared, index, [(0, g) for g in giants])  # one output, m = 0
    inners = ev.dot_many(list(babies.values()), [
        [(position[b], prepared[(index, g, b)]) for gg, b in layer.diagonals if gg == g] for g in giants],
        biases)
    timer.add(f"{stage} multiply-accumulate", start)
    total = None
    for g, inner in zip(giants, inners, strict=True):
        if g:
            start = time.perf_counter()
            if inner.size == 3:  # a rotation needs a size-2 ciphertext
                inner = ev.relinearize(inner)
            inner = ev.rotate(inner, g * n1)
            timer.add(f"{stage} rotate", start)
        total = inner if total is None else ev.add(total, inner)
    start = time.perf_counter()
    [total] = _add_missing_biases(layer, [total], biased, ev)
    out = ev.relinearize_and_rescale(total) if total.size == 3 else ev.rescale(total)
    timer.add(f"{stage} rescale", start)
    return [out]


def _activation(
    layer: CompiledActivation, cts: list[ckks.Ciphertext], ev: ckks.Evaluator, timer: StageTimer, stage: str
) -> list[ckks.Ciphertext]:
    """c0 + c1 x + c2 x^2 on every ciphertext; each step over all of them at once (``Evaluator.*_many``)."""
    c = layer.coeffs + (0.0,) * (3 - len(layer.coeffs))
    start = time.perf_counter()
    if c[2] == 0.0:  # linear: c1 x + c0
        ys = ev.rescale_many([ev.multiply_scalar(x, c[1]) for x in cts])
    elif c[:2] == (0.0, 0.0) and c[2] == 1.0:  # x^2
        ys = ev.relinearize_and_rescale_many([ev.square(x) for x in cts])
    else:  # x (c2 x + c1) + c0
        inners = [ev.add_scalar(y, c[1]) for y in ev.rescale_many([ev.multiply_scalar(x, c[2]) for x in cts])]
        ys = ev.relinearize_and_rescale_many([ev.multiply(ev.drop_level(x, inner.level), inner)
                                              for x, inner in zip(cts, inners, strict=True)])
    out = [ev.add_scalar(y, c[0]) if c[0] else y for y in ys]
    timer.add(f"{stage} activation", start)
    return out


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
            cts = _dense_single(model, index, cts, ev, prepared, timer, stage)
        elif isinstance(layer, CompiledDense):
            cts = _dense(model, index, cts, ev, prepared, timer, stage)
        else:
            cts = _activation(layer, cts, ev, timer, stage)
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
