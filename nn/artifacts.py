"""Files the client and the server exchange: an encrypted (or encoded) model and lists of ciphertexts, in the
container of ``nn.container``, and the plan as JSON.

Every field is checked on load, so that a loaded object is exactly what the file says or ``ArtifactError``
names what is wrong: the header holds exactly the fields the writer puts there, each of its type; the plan
is one ``plan_inference`` could have made; the layers have the plan's levels and depths, their diagonal keys
fit the packing, every output has one, their widths chain from ``input_dim`` to ``output_dim``, and their
weights are at their level.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

import ckks

from . import batch_packing, single_packing
from .container import (
    REMEDY,
    ArtifactError,
    advice,
    content_digest,
    exact_fields,
    integer,
    list_of,
    load_object,
    number,
    pack,
    show,
    string,
    unpack,
)
from .encrypted import CompiledActivation, CompiledDense, EncryptedModel
from .model import Polynomial
from .plan import InferencePlan, PlanError, layer_depth, plan_problem

__all__ = ["ArtifactError", "ciphertexts_from_bytes", "ciphertexts_to_bytes", "ciphertexts_with_info",
           "model_from_bytes", "model_to_bytes", "plan_from_dict", "plan_to_dict"]

PARAMS_FIELDS = ("ring_degree", "moduli_bits", "special_moduli_bits", "scale_bits", "security",
                 "key_switch_digits")
MODEL_FIELDS = ("kind", "plan", "layers", "encrypted_weights", "input_dim", "output_dim", "keys")
DENSE_FIELDS = ("type", "name", "level", "inputs", "outputs", "diagonals")
ACTIVATION_FIELDS = ("type", "name", "level", "coeffs")
CIPHERTEXTS_FIELDS = ("kind", "info")


# ----- the plan ---------------------------------------------------------------------------------------------

PLAN_READERS: dict[str, Callable[[Any, str], Any]] = {
    "packing": string, "batch_size": integer, "block": integer, "features_per_ciphertext": integer,
    "rotation_steps": list_of(integer), "layer_levels": list_of(integer), "value_bound": number,
    "int_bits": integer, "frac_bits": integer, "input_dim": integer, "ranges": list_of(number),
    "client_rotations": list_of(integer),
}


def plan_to_dict(plan: InferencePlan) -> dict[str, Any]:
    """The plan as JSON-able values (parameters as their literal)."""
    d = asdict(plan)
    d["params"] = {k: getattr(plan.params, k) for k in PARAMS_FIELDS}
    return d


def plan_from_dict(d: Any, what: str = "the plan") -> InferencePlan:
    """The inverse of ``plan_to_dict``, for a plan read from a file named by ``what``.

    Checked: exactly the fields ``plan_to_dict`` writes, each of its JSON type; the parameters by
    ``ckks.Parameters``; and that the fields fit each other (``nn.plan.plan_problem``).

    Raises:
        ArtifactError: naming ``what`` and the first problem found.
    """
    fields = exact_fields(d, ("params", *PLAN_READERS), what)
    values = {name: read(fields[name], f"{name} in {what}") for name, read in PLAN_READERS.items()}
    params = exact_fields(fields["params"], PARAMS_FIELDS, f"params in {what}")
    try:
        plan = InferencePlan(params=ckks.Parameters(**params), **values)
    except ckks.CkksError as exc:
        raise ArtifactError(f"the parameters in {what} are invalid: {exc}") from None
    problem = plan_problem(plan)
    if problem:
        raise ArtifactError(f"{what} is inconsistent: {problem}")
    return plan


# ----- ciphertexts ------------------------------------------------------------------------------------------


def ciphertexts_to_bytes(cts: list[ckks.Ciphertext], info: dict[str, Any] | None = None) -> bytes:
    """An encrypted batch (or encrypted predictions) as one buffer, with public ``info`` (e.g. record
    count)."""
    return pack("ciphertexts", {"info": info or {}}, [ckks.to_bytes(ct) for ct in cts])


def ciphertexts_from_bytes(data: bytes, params: ckks.Parameters) -> list[ckks.Ciphertext]:
    """The inverse of ``ciphertexts_to_bytes``, validated against ``params``.

    Raises:
        ArtifactError: bad file, or ciphertexts of other parameters.
    """
    return ciphertexts_with_info(data, params)[0]


def ciphertexts_digest(data: bytes) -> str:
    """The content digest (``nn.container.content_digest``) of a ciphertexts file: how the server's
    predictions and the client's list of batches name the data, for resume and for the client's check.

    Raises:
        ArtifactError: not a ciphertexts file.
    """
    return content_digest(data, "ciphertexts", CIPHERTEXTS_FIELDS)


def ciphertexts_with_info(data: bytes, params: ckks.Parameters) -> tuple[list[ckks.Ciphertext], dict]:
    """The ciphertexts and the ``info`` dictionary stored with them (the header holds exactly ``kind`` and
    ``info``, a JSON object)."""
    header, objects = unpack(data, "ciphertexts", CIPHERTEXTS_FIELDS)
    if not isinstance(header["info"], dict):
        raise ArtifactError(f"the ciphertexts file's info must be a JSON object, got "
                            f"{show(header['info'])}: {REMEDY['ciphertexts']}")
    # Each load is mostly SHA-256 and numpy copies, which release the GIL: spread over ckks.get_threads().
    return ckks.map_in_threads(lambda blob: load_object(blob, params, ckks.Ciphertext), objects), header["info"]


# ----- the model --------------------------------------------------------------------------------------------


def model_to_bytes(model: EncryptedModel) -> bytes:
    """A compiled model (weights as plaintexts or ciphertexts) as one buffer."""
    layers, objects = [], []
    for layer in model.layers:
        if isinstance(layer, CompiledActivation):
            layers.append({"type": "activation", "name": layer.name, "level": layer.level,
                           "coeffs": list(layer.coeffs)})
            continue
        keys = sorted(layer.diagonals)
        layers.append({"type": "dense", "name": layer.name, "level": layer.level, "inputs": layer.inputs,
                       "outputs": layer.outputs, "diagonals": [list(k) for k in keys]})
        objects += [ckks.to_bytes(layer.diagonals[k]) for k in keys]
        objects += [ckks.to_bytes(layer.biases[m]) for m in range(layer.outputs)]
    header = {"plan": plan_to_dict(model.plan), "layers": layers, "input_dim": model.input_dim,
              "output_dim": model.output_dim, "encrypted_weights": model.encrypted_weights,
              "keys": model.keys}
    return pack("model", header, objects)


def model_from_bytes(data: bytes, params: ckks.Parameters) -> EncryptedModel:
    """The inverse of ``model_to_bytes``; ``params`` are the server's (from its bundle).

    Raises:
        ArtifactError: bad file, a model made for other parameters, or a header whose fields, layers and
            weight objects do not fit each other and the plan (see ``_layers`` and ``_check_widths``).
    """
    header, objects = unpack(data, "model", MODEL_FIELDS)
    with advice(REMEDY["model"]):
        plan = plan_from_dict(header["plan"], "the model file's plan")
    if plan.params.fingerprint != params.fingerprint:
        raise ArtifactError(
            "the model was made for other parameters than this context: use the context "
            "bundle written by the same `ckkslab keygen`"
        )
    with advice(REMEDY["model"]):
        return _model(header, objects, plan)


def _model(header: dict[str, Any], objects: list[memoryview], plan: InferencePlan) -> EncryptedModel:
    """The model the header describes: its fields of their types, its layers (``_layers``) and widths
    (``_check_widths``) fitting the plan."""
    encrypted = header["encrypted_weights"]
    if not isinstance(encrypted, bool):
        raise ArtifactError(f"the model file's encrypted_weights must be true or false: {show(encrypted)}")
    input_dim = integer(header["input_dim"], "the model file's input_dim")
    output_dim = integer(header["output_dim"], "the model file's output_dim")
    if min(input_dim, output_dim) < 1:
        raise ArtifactError(f"the model file's input_dim {input_dim} and output_dim {output_dim} must be "
                            "positive")
    if input_dim != plan.input_dim:
        raise ArtifactError(f"the model file's input_dim {input_dim} is not its plan's {plan.input_dim}")
    keys = header["keys"]
    if keys is not None and not (encrypted and isinstance(keys, str) and re.fullmatch("[0-9a-f]{32}", keys)):
        raise ArtifactError(f"the model file's keys must be null, or 32 hex digits with encrypted weights, "
                            f"got {show(keys)}")
    weights = _Weights(objects, plan.params, ckks.Ciphertext if encrypted else ckks.Plaintext)
    layers = _layers(header["layers"], plan, weights)
    _check_widths(layers, plan, input_dim, output_dim)
    return EncryptedModel(plan, layers, encrypted, input_dim, output_dim, keys)


class _Weights:
    """The container's objects, taken in order, each loaded as ``kind`` at a given level."""

    def __init__(self, blobs: list[memoryview], params: ckks.Parameters, kind: type) -> None:
        self.blobs, self.params, self.kind, self.position = blobs, params, kind, 0

    def take(self, count: int, level: int, what: str) -> list[ckks.Plaintext | ckks.Ciphertext]:
        if self.position + count > len(self.blobs):
            raise ArtifactError(f"{what} needs {count} weight objects: the file holds fewer than its header "
                                "lists")
        blobs = self.blobs[self.position : self.position + count]
        self.position += count
        taken = [load_object(blob, self.params, self.kind) for blob in blobs]
        if any(obj.level != level for obj in taken):
            raise ArtifactError(f"the weights of {what} are not at its level {level}")
        return taken


def _layers(specs: Any, plan: InferencePlan, weights: _Weights) -> list[CompiledDense | CompiledActivation]:
    """The compiled layers: one per plan level, each at its plan level and consuming the levels the plan
    gives it (a Dense one; an activation what its degree needs), every weight object used once."""
    if not isinstance(specs, list) or len(specs) != len(plan.layer_levels):
        count = len(specs) if isinstance(specs, list) else show(specs)
        raise ArtifactError(f"the model file lists {count} layers, its plan {len(plan.layer_levels)}")
    levels = list(plan.layer_levels) + [plan.output_level]
    layers: list[CompiledDense | CompiledActivation] = []
    for index, spec in enumerate(specs):
        what = f"the model file's layer {index + 1}"
        kind = spec.get("type") if isinstance(spec, dict) else None
        if kind not in ("dense", "activation"):
            raise ArtifactError(f"{what} is neither a dense nor an activation layer")
        spec = exact_fields(spec, DENSE_FIELDS if kind == "dense" else ACTIVATION_FIELDS, what)
        name = string(spec["name"], f"the name of {what}")
        what = f"{what} ({name[:40]!r})"
        level, depth = levels[index], levels[index] - levels[index + 1]
        if integer(spec["level"], f"the level of {what}") != level:
            raise ArtifactError(f"{what} is at level {spec['level']}, the plan puts it at {level}")
        if kind == "activation":
            layers.append(_activation_from_header(spec["coeffs"], name, level, depth, what))
        else:
            layers.append(_dense_from_header(spec, name, level, depth, plan, weights, what))
    if weights.position != len(weights.blobs):
        raise ArtifactError("the model file holds more weight objects than its header lists")
    return layers


def _activation_from_header(coeffs: Any, name: str, level: int, depth: int, what: str) -> CompiledActivation:
    """A polynomial of degree 1 or 2 whose depth is the plan's."""
    values = list_of(number)(coeffs, f"the coefficients of {what}")
    try:
        needed = layer_depth(Polynomial(values, name))
    except PlanError as exc:
        raise ArtifactError(f"{what}: {exc}") from None
    if needed != depth:
        raise ArtifactError(f"{what} needs {needed} level(s) for {list(values)}, the plan gives it {depth}")
    return CompiledActivation(name, level, values)


def _dense_from_header(spec: dict[str, Any], name: str, level: int, depth: int, plan: InferencePlan,
                       weights: _Weights, what: str) -> CompiledDense:
    """A Dense layer of one level, its diagonal keys within the packing, at least one for every output
    ciphertext (``diagonals_to_multiply`` keeps one even for all-zero weights), its weights at its level."""
    if depth != 1:
        raise ArtifactError(f"{what} is a Dense layer (one level), the plan gives it {depth}")
    inputs = integer(spec["inputs"], f"the inputs of {what}")
    outputs = integer(spec["outputs"], f"the outputs of {what}")
    if min(inputs, outputs) < 1 or (plan.packing == "single" and (inputs, outputs) != (1, 1)):
        raise ArtifactError(f"{what} takes {inputs} and gives {outputs} ciphertexts: impossible with "
                            f"{plan.packing} packing")
    keys = list_of(list_of(integer))(spec["diagonals"], f"the diagonal keys of {what}")
    bounds = _key_bounds(plan, inputs, outputs)
    for key in keys:
        if len(key) != len(bounds) or not all(0 <= i < b for i, b in zip(key, bounds, strict=False)):
            raise ArtifactError(f"{what}: diagonal key {list(key)} is outside {list(bounds)}")
    if list(keys) != sorted(set(keys)):
        raise ArtifactError(f"{what}: the diagonal keys are not listed once each, in order")
    # batch keys are (input, output, shift); single-record packing has one output, keyed (giant, baby)
    # (the bounds above keep every covered output below ``outputs``, which may be huge: no range() of it)
    covered = {key[1] for key in keys} if plan.packing == "batch" else ({0} if keys else set())
    if len(covered) < outputs:
        missing = next(m for m in range(outputs) if m not in covered)
        raise ArtifactError(f"{what}: output ciphertext {missing} has no diagonal key (its product "
                            "carries the bias)")
    diagonals = dict(zip(keys, weights.take(len(keys), level, what), strict=True))
    biases = dict(enumerate(weights.take(outputs, level, what)))
    return CompiledDense(name, level, diagonals, biases, inputs, outputs)


def _key_bounds(plan: InferencePlan, inputs: int, outputs: int) -> tuple[int, ...]:
    """Exclusive bounds of a diagonal key: (input, output, block shift) for batch packing, (giant step,
    baby step) for single-record packing (n1 baby steps divide the block: both are powers of two)."""
    if plan.packing == "batch":
        return inputs, outputs, plan.features_per_ciphertext
    n1 = single_packing.baby_steps(plan.block)
    return plan.block // n1, n1


def _check_widths(layers: list[CompiledDense | CompiledActivation], plan: InferencePlan, input_dim: int,
                  output_dim: int) -> None:
    """Batch packing: the Dense layers' ciphertext counts chain from input_dim's to output_dim's;
    single-record packing: the input and output fit the block."""
    if plan.packing == "single":
        if max(input_dim, output_dim) > plan.block:
            raise ArtifactError(f"the model file's input_dim {input_dim} / output_dim {output_dim} exceed "
                                f"the block of {plan.block} slots")
        return
    per_ct = plan.features_per_ciphertext
    count = batch_packing.ciphertext_count(input_dim, per_ct)
    for layer in (lay for lay in layers if isinstance(lay, CompiledDense)):
        if layer.inputs != count:
            raise ArtifactError(f"the model file's layer {layer.name[:40]!r} takes {layer.inputs} "
                                f"ciphertexts, it is given {count}")
        count = layer.outputs
    if count != batch_packing.ciphertext_count(output_dim, per_ct):
        raise ArtifactError(f"the model file's network ends with {count} ciphertexts, its output_dim "
                            f"{output_dim} needs {batch_packing.ciphertext_count(output_dim, per_ct)}")
