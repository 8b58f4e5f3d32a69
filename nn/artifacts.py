"""Files the client and the server exchange: an encrypted (or encoded) model and lists of ciphertexts.

Container: magic ``CKKSLAB-NN``, format version (u16), JSON header length (u32) and JSON header (what the
objects are: plan, layer structure), object count (u32), then each object as u64 length + ``ckks`` serialized
bytes (which carry their own header, checksum and parameter fingerprint). Every field is checked on load;
a bad file raises ``ArtifactError`` naming what is wrong.
"""

from __future__ import annotations

import json
import struct
from dataclasses import asdict
from typing import Any

import ckks

from .encrypted import CompiledActivation, CompiledDense, EncryptedModel
from .plan import InferencePlan

MAGIC = b"CKKSLAB-NN"
VERSION = 1
MAX_HEADER = 1 << 20


class ArtifactError(ValueError):
    """A model or data file is truncated, corrupted, of another kind, or made for other parameters."""


def plan_to_dict(plan: InferencePlan) -> dict[str, Any]:
    """The plan as JSON-able values (parameters as their literal)."""
    d = asdict(plan)
    d["params"] = {
        k: getattr(plan.params, k)
        for k in (
            "ring_degree",
            "moduli_bits",
            "special_moduli_bits",
            "scale_bits",
            "security",
            "key_switch_digits",
        )
    }
    return d


def plan_from_dict(d: dict[str, Any]) -> InferencePlan:
    """The inverse of ``plan_to_dict`` (parameters re-validated)."""
    try:
        params = ckks.Parameters(
            **{k: tuple(v) if isinstance(v, list) else v for k, v in d["params"].items()}
        )
        fields = {k: tuple(v) if isinstance(v, list) else v for k, v in d.items() if k != "params"}
        return InferencePlan(params=params, **fields)
    except (KeyError, TypeError) as exc:
        raise ArtifactError(f"the plan in the file is malformed: {exc}") from None


def _pack(kind: str, header: dict[str, Any], objects: list[bytes]) -> bytes:
    text = json.dumps({"kind": kind, **header}, sort_keys=True).encode()
    parts = [MAGIC, struct.pack("<HI", VERSION, len(text)), text, struct.pack("<I", len(objects))]
    for blob in objects:
        parts += [struct.pack("<Q", len(blob)), blob]
    return b"".join(parts)


def _unpack(data: bytes, kind: str) -> tuple[dict[str, Any], list[bytes]]:
    view = memoryview(data)
    if bytes(view[: len(MAGIC)]) != MAGIC:
        raise ArtifactError(f"not a ckkslab {kind} file (bad magic)")
    offset = len(MAGIC)
    try:
        version, length = struct.unpack_from("<HI", view, offset)
        offset += 6
        if version != VERSION:
            raise ArtifactError(f"{kind} file has format version {version}; this ckkslab reads {VERSION}")
        if length > MAX_HEADER or offset + length > len(view):
            raise ArtifactError(f"{kind} file is truncated or its header length {length} is invalid")
        header = json.loads(bytes(view[offset : offset + length]))
        offset += length
        (count,) = struct.unpack_from("<I", view, offset)
        offset += 4
        objects = []
        for _ in range(count):
            (size,) = struct.unpack_from("<Q", view, offset)
            offset += 8
            if offset + size > len(view):
                raise ArtifactError(f"{kind} file is truncated (object of {size} bytes past the end)")
            objects.append(bytes(view[offset : offset + size]))
            offset += size
    except (struct.error, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"{kind} file is truncated or corrupted ({exc})") from None
    if offset != len(view):
        raise ArtifactError(f"{kind} file has {len(view) - offset} unexpected trailing bytes")
    if not isinstance(header, dict) or header.get("kind") != kind:
        raise ArtifactError(
            f"expected a {kind} file, got a {header.get('kind') if isinstance(header, dict) else '?'} file"
        )
    return header, objects


def _load(blob: bytes, params: ckks.Parameters, expected: type) -> Any:
    try:
        obj = ckks.from_bytes(blob, params=params)
    except ckks.SerializationError as exc:
        raise ArtifactError(str(exc)) from None
    if not isinstance(obj, expected):
        raise ArtifactError(f"expected a {expected.__name__} in the file, found a {type(obj).__name__}")
    return obj


def ciphertexts_to_bytes(cts: list[ckks.Ciphertext], info: dict[str, Any] | None = None) -> bytes:
    """An encrypted batch (or encrypted predictions) as one buffer, with public ``info`` (e.g. record count)."""
    return _pack("ciphertexts", {"info": info or {}}, [ckks.to_bytes(ct) for ct in cts])


def ciphertexts_from_bytes(data: bytes, params: ckks.Parameters) -> list[ckks.Ciphertext]:
    """The inverse of ``ciphertexts_to_bytes``, validated against ``params``.

    Raises:
        ArtifactError: bad file, or ciphertexts of other parameters.
    """
    return ciphertexts_with_info(data, params)[0]


def ciphertexts_with_info(
    data: bytes, params: ckks.Parameters
) -> tuple[list[ckks.Ciphertext], dict[str, Any]]:
    """The ciphertexts and the ``info`` dictionary stored with them."""
    header, objects = _unpack(data, "ciphertexts")
    info = header.get("info", {})
    if not isinstance(info, dict):
        raise ArtifactError("ciphertexts file: malformed info")
    return [_load(blob, params, ckks.Ciphertext) for blob in objects], info


def model_to_bytes(model: EncryptedModel) -> bytes:
    """A compiled model (weights as plaintexts or ciphertexts) as one buffer."""
    layers, objects = [], []
    for layer in model.layers:
        if isinstance(layer, CompiledActivation):
            layers.append(
                {"type": "activation", "name": layer.name, "level": layer.level, "coeffs": list(layer.coeffs)}
            )
            continue
        keys = sorted(layer.diagonals)
        layers.append(
            {
                "type": "dense",
                "name": layer.name,
                "level": layer.level,
                "inputs": layer.inputs,
                "outputs": layer.outputs,
                "diagonals": [list(k) for k in keys],
            }
        )
        objects += [ckks.to_bytes(layer.diagonals[k]) for k in keys]
        objects += [ckks.to_bytes(layer.biases[m]) for m in range(layer.outputs)]
    header = {
        "plan": plan_to_dict(model.plan),
        "layers": layers,
        "encrypted_weights": model.encrypted_weights,
        "input_dim": model.input_dim,
        "output_dim": model.output_dim,
    }
    return _pack("model", header, objects)


def model_from_bytes(data: bytes, params: ckks.Parameters) -> EncryptedModel:
    """The inverse of ``model_to_bytes``; ``params`` are the server's (from its bundle).

    Raises:
        ArtifactError: bad file, or a model made for other parameters.
    """
    header, objects = _unpack(data, "model")
    try:
        plan = plan_from_dict(header["plan"])
        if plan.params.fingerprint != params.fingerprint:
            raise ArtifactError(
                "the model was made for other parameters than this context: use the context "
                "bundle written by the same `ckkslab keygen`"
            )
        weight_type = ckks.Ciphertext if header["encrypted_weights"] else ckks.Plaintext
        layers: list[CompiledDense | CompiledActivation] = []
        position = 0
        for spec in header["layers"]:
            if spec["type"] == "activation":
                layers.append(CompiledActivation(spec["name"], spec["level"], tuple(spec["coeffs"])))
                continue
            keys = [tuple(k) for k in spec["diagonals"]]
            needed = len(keys) + spec["outputs"]
            if position + needed > len(objects):
                raise ArtifactError("the model file holds fewer weight objects than its header lists")
            diagonals = {k: _load(objects[position + i], params, weight_type) for i, k in enumerate(keys)}
            position += len(keys)
            biases = {m: _load(objects[position + m], params, weight_type) for m in range(spec["outputs"])}
            position += spec["outputs"]
            layers.append(
                CompiledDense(spec["name"], spec["level"], diagonals, biases, spec["inputs"], spec["outputs"])
            )
        if position != len(objects):
            raise ArtifactError("the model file holds more weight objects than its header lists")
        return EncryptedModel(
            plan,
            layers,
            bool(header["encrypted_weights"]),
            int(header["input_dim"]),
            int(header["output_dim"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, ArtifactError):
            raise
        raise ArtifactError(f"the model file's header is malformed: {exc}") from None
