"""Targets of the files nn itself writes: the model and ciphertext containers (``nn.artifacts``:
server/model.ckks, server/data.ckks, predictions.ckks) and context/plan.json (``nn.workflow.load_plan``), at
toy size (a 3-4-1 network, N = 64). An accepted object must be consistent enough for the code that uses it
and re-serialize to the input.
"""

from __future__ import annotations

import json
import math
import shutil
import struct
from typing import Any

import numpy as np

import ckks
from nn import artifacts, container, workflow
from nn import encrypted as enc
from nn.model import Dense, PlainNetwork, Polynomial
from nn.plan import plan_inference

from .mutators import join_container, json_edge_cases, split_container
from .oracle import Loader, workdir


def tiny_network() -> PlainNetwork:
    rng = np.random.default_rng(5)
    return PlainNetwork([Dense(rng.uniform(-1, 1, (3, 4)), rng.uniform(-1, 1, 4), "dense"),
                         Polynomial((0.0, 0.0, 1.0), "square"),
                         Dense(rng.uniform(-1, 1, (4, 1)), rng.uniform(-1, 1, 1), "dense_1"),
                         Polynomial((0.1, 0.5, 0.25), "poly")], 3)


def toy_models() -> tuple[ckks.Parameters, list[bytes], list[bytes], list[enc.EncryptedModel]]:
    """Model and ciphertext containers of the tiny network at toy size (batch and single-record packing)."""
    net = tiny_network()
    calibration = np.random.default_rng(6).uniform(0, 1, (16, 3))
    plans = [plan_inference(net, calibration, batch_size=b, security=None, ring_degree=64, frac_bits=20)
             for b in (4, 1)]
    params = plans[0].params
    if any(p.params.fingerprint != params.fingerprint for p in plans):
        raise RuntimeError("toy plans disagree on parameters")
    kg = ckks.KeyGenerator(params, seed=9)
    encoder, encryptor = ckks.Encoder(params), ckks.Encryptor(params, kg.secret_key, seed=10)
    models = [enc.compile_model(net, plans[0], encoder, encryptor), enc.compile_model(net, plans[0], encoder),
              enc.compile_model(net, plans[1], encoder, encryptor)]
    inputs = enc.encrypt_batch(calibration[:4], plans[0], encoder, encryptor)
    ev = ckks.Evaluator(params, relin_key=kg.relin_key(), galois_keys=kg.galois_keys(
        sorted(set(plans[0].rotation_steps) | set(plans[1].rotation_steps))))
    outputs = enc.predict(models[0], inputs, ev)
    cipher_seeds = [artifacts.ciphertexts_to_bytes(inputs, {"records": 4}),
                    artifacts.ciphertexts_to_bytes(outputs, {"records": 4, "output_dim": 1}),
                    artifacts.ciphertexts_to_bytes([], {})]
    return params, [artifacts.model_to_bytes(m) for m in models], cipher_seeds, models


def model_problems(model: enc.EncryptedModel) -> str:
    """'' if the model is consistent enough for ``nn.encrypted.predict``, else what is wrong."""
    plan = model.plan
    if len(model.layers) != len(plan.layer_levels):
        return f"{len(model.layers)} layers, plan has {len(plan.layer_levels)} levels"
    if not (isinstance(model.input_dim, int) and model.input_dim >= 1 and model.output_dim >= 1):
        return f"input_dim {model.input_dim!r} / output_dim {model.output_dim!r}"
    previous = None
    for layer, level in zip(model.layers, plan.layer_levels, strict=True):
        if not isinstance(layer.name, str) or layer.level != level:
            return f"layer {layer.name!r} at level {layer.level!r}, plan says {level}"
        if isinstance(layer, enc.CompiledActivation):
            if not 2 <= len(layer.coeffs) <= 3 or not all(
                    isinstance(c, (int, float)) and not isinstance(c, bool) and math.isfinite(c)
                    for c in layer.coeffs):
                return f"activation coefficients {layer.coeffs!r}"
            continue
        if not (isinstance(layer.inputs, int) and isinstance(layer.outputs, int) and layer.inputs >= 1
                and layer.outputs >= 1):
            return f"dense layer with {layer.inputs!r} inputs, {layer.outputs!r} outputs"
        if previous is not None and layer.inputs != previous:
            return f"dense layer takes {layer.inputs} ciphertexts, the previous one gives {previous}"
        previous = layer.outputs
        objects = list(layer.diagonals.values()) + list(layer.biases.values())
        if any(o.level != layer.level for o in objects):
            return f"weights of layer {layer.name!r} are not at its level {layer.level}"
        for key in layer.diagonals:
            if plan.packing == "batch":
                if len(key) != 3 or not (0 <= key[0] < layer.inputs and 0 <= key[1] < layer.outputs
                                         and 0 <= key[2] < plan.features_per_ciphertext):
                    return f"diagonal key {key!r} out of range"
            elif len(key) != 2 or not all(isinstance(k, int) and 0 <= k < plan.block for k in key):
                return f"diagonal key {key!r} out of range"
    return ""


def same_container(buf: bytes, again: bytes) -> str:
    """faithful: re-serialized identically; ignorable: only the JSON text's formatting differs; else why."""
    if again == buf:
        return "faithful"
    ours, theirs = split_container(buf), split_container(again)
    if ours is None or theirs is None:
        return "re-serializes to another layout"
    if ours[1] != theirs[1]:
        return "re-serializes to other objects"
    a, b = json.loads(ours[0]), json.loads(theirs[0])
    if a == b or json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True):
        return "ignorable"
    changed = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
    return f"header decoded differently: {changed}"


def container_loaders() -> list[Loader]:
    params, model_seeds, cipher_seeds, _ = toy_models()

    def check_model(i: int, buf: bytes, obj: Any) -> str:
        problem = model_problems(obj)
        if problem:
            return f"inconsistent model: {problem}"
        return same_container(buf, artifacts.model_to_bytes(obj))

    def check_cipher(i: int, buf: bytes, obj: Any) -> str:
        return same_container(buf, artifacts.ciphertexts_to_bytes(obj[0], obj[1]))

    return [
        Loader("nn.model_container", model_seeds, lambda i, b: artifacts.model_from_bytes(b, params),
               (artifacts.ArtifactError,), check_model, kind="container",
               edge_cases=container_edge_cases(model_seeds[0])),
        Loader("nn.cipher_container", cipher_seeds, lambda i, b: artifacts.ciphertexts_with_info(b, params),
               (artifacts.ArtifactError,), check_cipher, kind="container",
               edge_cases=container_edge_cases(cipher_seeds[0])),
    ]


def container_edge_cases(seed: bytes) -> list[tuple[int, str, bytes]]:
    """Headers that are not objects, absurd counts and sizes, a container of the other kind."""
    header, blobs = split_container(seed)
    magic, version = container.MAGIC, struct.pack("<H", container.VERSION)
    cases = [(name, join_container(text.decode("utf-8", errors="replace"), blobs))
             for name, text in json_edge_cases() if name not in ("invalid-utf8", "utf16", "nul")]
    cases += [
        ("invalid-utf8-header", magic + version + struct.pack("<I", 4) + b'"\xff"' + struct.pack("<I", 0)),
        ("count-2^32-1", magic + version + struct.pack("<I", len(header)) + header.encode()
         + struct.pack("<I", 2**32 - 1)),
        ("object-size-2^64-1", magic + version + struct.pack("<I", len(header)) + header.encode()
         + struct.pack("<IQ", 1, 2**64 - 1)),
        ("header-length-2^32-1", magic + version + struct.pack("<I", 2**32 - 1)),
        ("other-kind", join_container(json.dumps({**json.loads(header), "kind": "other"}, sort_keys=True),
                                      blobs)),
        ("no-objects", join_container(header, [])),
        ("magic-only", magic),
    ]
    return [(0, name, data) for name, data in cases]


def plan_problems(plan: Any) -> str:
    """'' if every plan field has the type and range the rest of nn relies on."""
    p = plan.params
    ints = ("batch_size", "block", "features_per_ciphertext", "int_bits", "frac_bits", "input_dim")
    if any(not isinstance(getattr(plan, k), int) or isinstance(getattr(plan, k), bool) or getattr(plan, k) < 1
           for k in ints):
        return "an integer field is not a positive integer"
    if plan.packing not in ("batch", "single"):
        return f"packing {plan.packing!r}"
    if plan.block & (plan.block - 1) or plan.block * plan.features_per_ciphertext > p.slots:
        return f"block {plan.block} x {plan.features_per_ciphertext} does not fit {p.slots} slots"
    if not all(isinstance(s, int) and not isinstance(s, bool) for s in plan.rotation_steps):
        return "rotation steps are not integers"
    if not all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= p.max_level
               for v in plan.layer_levels):
        return f"layer levels {plan.layer_levels!r} outside [0, {p.max_level}]"
    if not (isinstance(plan.value_bound, (int, float)) and math.isfinite(plan.value_bound)
            and plan.value_bound > 0):
        return f"value_bound {plan.value_bound!r}"
    return ""


def plan_loader() -> Loader:
    net = tiny_network()
    calibration = np.random.default_rng(6).uniform(0, 1, (16, 3))
    plans = [plan_inference(net, calibration, batch_size=4, security=None, ring_degree=64, frac_bits=20),
             plan_inference(net, calibration, batch_size=1, security=None, ring_degree=64, frac_bits=20)]
    seeds = [json.dumps(artifacts.plan_to_dict(p), indent=1).encode() for p in plans]
    work = workdir()
    (work / "context").mkdir()

    def load(i: int, buf: bytes) -> Any:
        (work / "context" / "plan.json").write_bytes(buf)
        return workflow.load_plan(work)

    def check(i: int, buf: bytes, plan: Any) -> str:
        problem = plan_problems(plan)
        if problem:
            return f"invalid plan: {problem}"
        written = json.loads(json.dumps(artifacts.plan_to_dict(plan)))
        read = json.loads(buf)
        if written == read:
            return "ignorable" if any(json.loads(s) == read for s in seeds) else "faithful"
        return "plan differs from the file"

    named = (workflow.WorkflowError, artifacts.ArtifactError, ckks.CkksError)
    return Loader("nn.plan_json", seeds, load, named, check, kind="json",
                  edge_cases=[(0, name, data) for name, data in json_edge_cases()],
                  cleanup=lambda: shutil.rmtree(work, ignore_errors=True))
