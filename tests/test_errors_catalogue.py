"""The error catalogue (docs/errors.md) as tests: every way a caller can misuse ``ckks`` and ``nn`` through
the Python API -> the named error -> what its message must say (what happened, and what to do where the
catalogue promises a remedy). The CLI side is tests/validation/test_cli_errors.py.

Each entry has an id that docs/errors.md lists with the same error class (``test_docs_list_every_entry``).
An entry marked ``bug`` is a misuse the code does not yet answer with a named error (or with a remedy): its
test is ``xfail(strict=True)`` pinned to what happens today, so that a fix turns it into a plain pass.
"""

from __future__ import annotations

import io
import json
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import h5py
import numpy as np
import pytest

import ckks
from nn import artifacts, workflow
from nn import encrypted as enc
from nn.data import DataSchemaError, load_xy, save_xy
from nn.model import SQUARE, Dense, ModelFormatError, PlainNetwork, Polynomial, load_network
from nn.plan import PlanError, plan_inference
from nn.table import load_table

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "errors.md"
CLINICAL = ROOT / "models" / "clinical"
DID_NOT_RAISE = pytest.fail.Exception


@dataclass(frozen=True)
class Entry:
    """One catalogue row: ``call(w)`` must raise ``error`` with a message matching ``what`` (and ``todo``)."""

    id: str
    misuse: str
    call: Callable[[SimpleNamespace], object]
    error: type[BaseException] | tuple[type[BaseException], ...]
    what: str
    todo: str | None = None
    bug: tuple[str, type[BaseException]] | None = None  # (reason, what happens today)


def toy_params(**kw) -> ckks.Parameters:
    args = dict(ring_degree=64, moduli_bits=(50, 40, 40), special_moduli_bits=(60,), scale_bits=40,
                security=None)
    args.update(kw)
    return ckks.Parameters(**args)


@pytest.fixture(scope="module")
def w(tmp_path_factory) -> SimpleNamespace:
    """Toy keys and objects, a second parameter set, a tiny network with its toy plan, and file helpers."""
    params, other = toy_params(), toy_params(moduli_bits=(50, 40))
    kg, kg_other = ckks.KeyGenerator(params, seed=1), ckks.KeyGenerator(other, seed=2)
    encoder = ckks.Encoder(params)
    pk = kg.public_key()
    ct = ckks.Encryptor(params, pk, seed=3).encrypt(encoder.encode(np.linspace(-1, 1, 32)))
    ev = ckks.Evaluator(params, relin_key=kg.relin_key(), galois_keys=kg.galois_keys(steps=[1, 3]))
    ct_other = ckks.Encryptor(other, kg_other.public_key(), seed=4).encrypt(ckks.Encoder(other).encode([1.0]))
    rng = np.random.default_rng(5)
    net = PlainNetwork([Dense(rng.uniform(-1, 1, (3, 4)), rng.uniform(-1, 1, 4), "dense"),
                        Polynomial(SQUARE, "square"), Dense(rng.uniform(-1, 1, (4, 1)), rng.uniform(-1, 1, 1),
                                                            "dense_1")], 3)
    x = rng.uniform(0, 1, (4, 3))
    plan = plan_inference(net, x, batch_size=4, security=None, ring_degree=64, frac_bits=20)
    keys = ckks.KeyGenerator(plan.params, seed=6)
    penc = ckks.Encoder(plan.params)
    pencryptor = ckks.Encryptor(plan.params, keys.secret_key, seed=7)
    model = enc.compile_model(net, plan, penc, pencryptor)
    inputs = enc.encrypt_batch(x, plan, penc, pencryptor)
    pev = ckks.Evaluator(plan.params, relin_key=keys.relin_key(),
                         galois_keys=keys.galois_keys(plan.rotation_steps))
    tmp = tmp_path_factory.mktemp("catalogue")
    return SimpleNamespace(
        params=params, other=other, kg=kg, sk=kg.secret_key, pk=pk, encoder=encoder, ct=ct, ev=ev,
        ct_other=ct_other, other_pk=kg_other.public_key(), other_rlk=kg_other.relin_key(), net=net, x=x,
        plan=plan, model=model, inputs=inputs, pev=pev, penc=penc,
        pdec=ckks.Decryptor(plan.params, keys.secret_key),
        tmp=tmp, counter=iter(range(10**6)))


def fresh_dir(w: SimpleNamespace) -> Path:
    path = w.tmp / f"d{next(w.counter)}"
    path.mkdir()
    return path


def model_dir(w: SimpleNamespace, edit_json=None, h5_bytes: bytes | None = None) -> Path:
    """A copy of the shipped clinical model with model.json edited or model.h5 replaced."""
    d = fresh_dir(w)
    for name in ("model.json", "model.h5", "ckkslab.json"):
        shutil.copy(CLINICAL / name, d / name)
    if edit_json is not None:
        spec = json.loads((d / "model.json").read_text())
        edit_json(spec)
        (d / "model.json").write_text(json.dumps(spec))
    if h5_bytes is not None:
        (d / "model.h5").write_bytes(h5_bytes)
    return d


def xy_dir(w: SimpleNamespace, x, y) -> Path:
    d = fresh_dir(w)
    save_xy(d, "test", np.asarray(x, dtype=float), np.asarray(y, dtype=float))
    return d


def csv_file(w: SimpleNamespace, edit) -> Path:
    import pandas as pd

    table = pd.read_csv(ROOT / "data" / "diabetes_dataset.csv.zip", nrows=20)
    table = edit(table)
    path = fresh_dir(w) / "t.csv"
    table.to_csv(path, index=False)
    return path


def workspace(w: SimpleNamespace, with_plan: bool = True) -> Path:
    d = fresh_dir(w)
    if with_plan:
        (d / "context").mkdir()
        (d / "context" / "plan.json").write_text(json.dumps(artifacts.plan_to_dict(w.plan)))
    return d


def layer(spec: dict, i: int) -> dict:
    return spec["config"]["layers"][i]


E = Entry
CATALOGUE: list[Entry] = [
    # ---------------------------------------------------------------- ckks: parameters
    E("params-ring-degree", "ring degree not a power of two in [16, 65536]",
      lambda w: toy_params(ring_degree=1000), ckks.ParameterError, r"power of two in \[16, 65536\], got "
                                                                   r"1000"),
    E("params-insecure", "log2(QP) above the HE Standard bound for the requested security",
      lambda w: ckks.Parameters(16384, (60,) * 8, (60,), 50, 128), ckks.ParameterError,
      r"log2\(QP\) = 54\d\.\d exceeds the HE Standard's 438 bits for 128-bit",
      r"fewer/smaller primes or a larger ring_degree|security=None"),
    E("params-security-level", "a security level the table does not have",
      lambda w: toy_params(security=100), ckks.ParameterError, r"security must be 128, 192, 256 or None"),
    E("params-no-bound-for-n", "a secure level asked for a ring degree the table does not cover",
      lambda w: ckks.Parameters(512, (27,), (27,), 20, 128), ckks.ParameterError,
      r"no 128-bit bound for N = 512", r"use one of those, or security=None"),
    E("params-chain-too-small", "a chain with no more bits than the scale (a fresh ciphertext cannot hold 1)",
      lambda w: toy_params(moduli_bits=(40,), scale_bits=40), ckks.ParameterError,
      r"has no more bits than the scale 2\^40", r"add primes or lower the scale"),
    E("params-scale-above-primes", "a scale larger than the rescaling primes",
      lambda w: toy_params(moduli_bits=(58, 30), scale_bits=50), ckks.ParameterError,
      r"scale 2\^50 is larger than the rescaling primes"),
    E("params-prime-size", "a prime bit size outside [20, 61]",
      lambda w: toy_params(moduli_bits=(62, 40)), ckks.ParameterError, r"prime bit size 62 is outside "
                                                                       r"\[20, 61\]"),
    E("params-impossible-chain", "more primes of a size than exist for this N",
      lambda w: ckks.Parameters(65536, (20,) * 5, (60,), 10, None), ckks.ParameterError,
      r"not enough 20-bit primes = 1 mod 131072 for N = 65536"),
    E("params-bits-not-integers", "a prime size that is not an integer",
      lambda w: toy_params(moduli_bits=(50, "forty")), ckks.ParameterError, r"bit size must be an integer"),
    E("params-bits-infinite", "a prime size of infinity (e.g. 1e400 in a JSON plan)",
      lambda w: toy_params(moduli_bits=(50, float("inf"))), ckks.ParameterError, r"bit size must be an integer"),
    # ---------------------------------------------------------------- ckks: encoding
    E("encode-too-many", "more values than N/2 slots",
      lambda w: w.encoder.encode(np.zeros(33)), ckks.ValueRangeError, r"33 values do not fit in 32 slots"),
    E("encode-nan", "NaN or infinity among the values",
      lambda w: w.encoder.encode([1.0, np.nan]), ckks.ValueRangeError, r"NaN or infinity"),
    E("encode-not-numbers", "values that are not numbers",
      lambda w: w.encoder.encode(["a"]), ckks.ValueRangeError, r"values must be numbers"),
    E("encode-too-large", "values too large for the scale and the modulus of the level",
      lambda w: w.encoder.encode([1e5], level=0), ckks.ValueRangeError, r"level 0 holds only",
      r"lower the scale, encode at a higher level, or scale the inputs down"),
    E("encode-level", "a level outside [0, L]",
      lambda w: w.encoder.encode([1.0], level=5), ckks.LevelMismatchError, r"level 5 is outside \[0, 2\]"),
    E("encode-scale", "a scale that is not a positive finite number",
      lambda w: w.encoder.encode([1.0], scale=-1), ckks.ParameterError, r"scale must be a positive finite"),
    # ---------------------------------------------------------------- ckks: keys, encryption, decryption
    E("encryptor-key-type", "an Encryptor given something else than a public or secret key",
      lambda w: ckks.Encryptor(w.params, w.ev), ckks.ParameterError, r"needs a PublicKey or SecretKey"),
    E("encryptor-other-params", "a key made with other parameters",
      lambda w: ckks.Encryptor(w.params, w.other_pk), ckks.ParameterError, r"made with other parameters",
      r"use the parameters it came from"),
    E("encrypt-not-plaintext", "encrypting raw values instead of a Plaintext",
      lambda w: ckks.Encryptor(w.params, w.pk).encrypt([1.0]), ckks.ParameterError,
      r"expects a Plaintext", r"use Encoder.encode first"),
    E("decryptor-public-key", "a Decryptor given the public key",
      lambda w: ckks.Decryptor(w.params, w.pk), ckks.ParameterError, r"needs the SecretKey, got PublicKey"),
    E("decrypt-other-params", "decrypting a ciphertext of other parameters",
      lambda w: ckks.Decryptor(w.params, w.sk).decrypt(w.ct_other), ckks.ParameterError,
      r"the ciphertext was made with other parameters", r"use the parameters it came from"),
    E("decrypt-flood-bits", "a flooding size that is not a number of bits >= 0",
      lambda w: ckks.Decryptor(w.params, w.sk).decrypt(w.ct, flood_bits=-3), ckks.ParameterError,
      r"flood_bits must be finite and >= 0"),
    E("decrypt-flood-too-large", "a flooding noise that could wrap modulo Q_l",
      lambda w: ckks.Decryptor(w.params, w.sk).decrypt(w.ct, flood_bits=200), ckks.ValueRangeError,
      r"could wrap modulo Q_2", r"use flood_bits <= \d+\.\d, or decrypt at a higher level"),
    E("galois-step-not-integer", "a rotation step that is not an integer",
      lambda w: w.kg.galois_keys(steps=[1.5]), ckks.ParameterError, r"rotation step 1.5 is not an integer"),
    # ---------------------------------------------------------------- ckks: evaluation
    E("level-mismatch", "adding operands at different levels",
      lambda w: w.ev.add(w.ct, w.ev.drop_level(w.ct, 1)), ckks.LevelMismatchError,
      r"add: operands are at levels 2 and 1", r"drop_level\(x, 1\)"),
    E("scale-mismatch", "adding operands with different scales",
      lambda w: w.ev.add(w.ct, w.encoder.encode([1.0], scale=2.0**30)), ckks.ScaleMismatchError,
      r"scales 2\^40\.0+ and 2\^30\.0+", r"encode the plaintext at the ciphertext's exact scale"),
    E("out-of-levels", "rescaling at level 0",
      lambda w: w.ev.rescale(w.ev.drop_level(w.ct, 0)), ckks.OutOfLevelsError, r"at level 0",
      r"more primes or fewer multiplications"),
    E("missing-relin-key", "relinearizing without a relinearization key",
      lambda w: ckks.Evaluator(w.params).relinearize(w.ev.multiply(w.ct, w.ct)), ckks.MissingKeyError,
      r"no relinearization key", r"relin_key=KeyGenerator.relin_key\(\)"),
    E("missing-galois-key", "rotating by a step without its Galois key",
      lambda w: w.ev.rotate(w.ct, 2), ckks.MissingKeyError, r"no Galois key .* rotation steps \[1, 3\]",
      r"KeyGenerator.galois_keys\(steps=\[...\]\)"),
    E("missing-conjugation-key", "conjugating without the conjugation key",
      lambda w: w.ev.conjugate(w.ct), ckks.MissingKeyError, r"conjugate: no conjugation key for element 127",
      r"KeyGenerator\.galois_keys\(steps=\[1, 3\], conjugate=True\)"),
    E("no-galois-keys", "rotating with an evaluator that has no Galois keys",
      lambda w: ckks.Evaluator(w.params).rotate(w.ct, 1), ckks.MissingKeyError, r"no Galois keys",
      r"galois_keys=KeyGenerator.galois_keys"),
    E("size-three-operand", "multiplying a product that was not relinearized",
      lambda w: w.ev.multiply(w.ev.multiply(w.ct, w.ct), w.ct), ckks.ParameterError,
      r"sizes 3 and 2", r"relinearize first"),
    E("evaluate-other-params", "an operand of other parameters",
      lambda w: w.ev.add(w.ct, w.ct_other), ckks.ParameterError, r"made with other parameters"),
    E("evaluator-other-keys", "an Evaluator given keys of other parameters",
      lambda w: ckks.Evaluator(w.params, relin_key=w.other_rlk), ckks.ParameterError,
      r"relin_key was made with other parameters"),
    E("scalar-not-finite", "a NaN or infinite constant",
      lambda w: w.ev.add_scalar(w.ct, float("inf")), ckks.ValueRangeError, r"the constant inf is not finite"),
    E("scalar-too-large", "a constant too large for the modulus of the level",
      lambda w: w.ev.multiply_scalar(w.ev.drop_level(w.ct, 0), 1e30), ckks.ValueRangeError,
      r"does not fit the modulus at level 0"),
    E("scalar-complex", "a complex constant for add_scalar / multiply_scalar",
      lambda w: w.ev.multiply_scalar(w.ct, 1 + 2j), ckks.ValueRangeError,
      r"the constant \(1\+2j\) is complex, and scalar constants must be real",
      r"encode it in every slot.*multiply_plain"),
    E("drop-level-up", "dropping to a higher level",
      lambda w: w.ev.drop_level(w.ev.drop_level(w.ct, 0), 2), ckks.LevelMismatchError,
      r"cannot go from level 0 to level 2"),
    # ---------------------------------------------------------------- ckks: serialization
    E("load-not-ckkslab", "loading a file that is not a ckkslab file",
      lambda w: ckks.from_bytes(b"\x89HDF\r\n\x1a\n" + bytes(80), params=w.params), ckks.SerializationError,
      r"wrong magic .* not a ckkslab file"),
    E("load-truncated", "loading a truncated file",
      lambda w: ckks.from_bytes(ckks.to_bytes(w.ct)[:-100], params=w.params), ckks.SerializationError,
      r"truncated"),
    E("load-corrupted", "loading a corrupted file",
      lambda w: ckks.from_bytes(flip(ckks.to_bytes(w.ct), 500), params=w.params), ckks.SerializationError,
      r"checksum mismatch"),
    E("load-other-params", "loading an object with the parameters of another context",
      lambda w: ckks.from_bytes(ckks.to_bytes(w.ct), params=w.other), ckks.SerializationError,
      r"made with other parameters"),
    E("load-without-params", "loading a key or ciphertext without params=",
      lambda w: ckks.from_bytes(ckks.to_bytes(w.ct)), ckks.SerializationError,
      r"needs the params= argument: the Parameters it was made with"),
    E("load-wrong-type", "loading one type where another is expected",
      lambda w: ckks.from_bytes(ckks.to_bytes(w.ct), params=w.params, expected=ckks.SecretKey),
      ckks.SerializationError, r"holds a Ciphertext, expected SecretKey"),
    E("load-bad-flags", "a header flag other than complex slots, or that flag on a key (edited)",
      lambda w: ckks.from_bytes(overwrite(ckks.to_bytes(w.ev.relin_key), 12, b"\x01"), params=w.params),
      ckks.SerializationError, r"flags field is 0x1, must be 0 for this object type"),
    E("bundle-secret-key", "putting the secret key in the server bundle",
      lambda w: ckks.ServerBundle(w.params, public_key=w.sk), ckks.SerializationError,
      r"the secret key stays with the client"),
    E("save-unsupported", "saving an object ckks cannot serialize",
      lambda w: ckks.to_bytes(w.ev), ckks.SerializationError, r"cannot save a Evaluator|cannot save an "
                                                              r"Evaluator"),
    E("load-text-file", "loading from a file opened in text mode",
      lambda w: ckks.load(io.StringIO("x")), ckks.SerializationError, r"open it in binary mode"),
    E("load-missing-file", "loading a path that does not exist",
      lambda w: ckks.load(w.tmp / "absent.ckks"), FileNotFoundError, r"absent\.ckks"),
    # ---------------------------------------------------------------- nn: the Keras model directory
    E("model-missing", "a model directory without model.json / model.h5",
      lambda w: load_network(w.tmp / "nowhere"), ModelFormatError, r"has no model\.json"),
    E("model-not-json", "model.json that is not JSON",
      lambda w: load_network(write(model_dir(w), "model.json", b"{oops")), ModelFormatError, r"is not "
                                                                                             r"valid JSON"),
    E("model-not-sequential", "a functional (non-Sequential) model",
      lambda w: load_network(model_dir(w, lambda s: s.__setitem__("class_name", "Functional"))),
      ModelFormatError,
      r"only Sequential models are supported, found 'Functional'"),
    E("model-unsupported-layer", "a layer HElayers cannot run (Conv2D, Dropout, ...)",
      lambda w: load_network(model_dir(w, lambda s: layer(s, 1).__setitem__("class_name", "Conv2D"))),
      ModelFormatError, r"unsupported layer 'dense' of type 'Conv2D'",
      r"only Dense, SquareActivation and PolyActivation"),
    E("model-dense-activation", "a Dense layer with a non-linear activation",
      lambda w: load_network(model_dir(w, lambda s: layer(s, 1)["config"].__setitem__("activation", "relu"))),
      ModelFormatError, r"Dense layer 'dense' has activation 'relu'", r"use a SquareActivation layer"),
    E("model-weights-shape", "weights whose shape disagrees with the architecture",
      lambda w: load_network(model_dir(w, lambda s: layer(s, 1)["config"].__setitem__("units", 7))),
      ModelFormatError, r"Dense layer 'dense' has kernel \(14, 20\) and bias \(20,\) for 7 units"),
    E("model-h5-not-hdf5", "model.h5 that is not HDF5",
      lambda w: load_network(model_dir(w, h5_bytes=b"not hdf5")), ModelFormatError, r"is not an HDF5 file"),
    E("model-json-not-utf8", "model.json that is not UTF-8 text",
      lambda w: load_network(write(model_dir(w), "model.json", b'{"a": "\xff"}')), ModelFormatError,
      r"model\.json is not UTF-8 text"),
    E("model-layer-not-object", "a layer entry that is not an object",
      lambda w: load_network(model_dir(w, lambda s: s["config"]["layers"].insert(1, 7))), ModelFormatError,
      r"layer 1 is not an object", r"re-export model\.json"),
    E("model-h5-corrupt", "model.h5 whose HDF5 structure is corrupted (opens, fails on read)",
      lambda w: load_network(model_dir(w, h5_bytes=overwrite((CLINICAL / "model.h5").read_bytes(), 112,
                                                               bytes(8)))),
      ModelFormatError, r"model\.h5 is corrupted", r"re-export the weights"),
    E("model-nan-weights", "NaN or infinite weights in model.h5",
      lambda w: load_network(nan_weights_dir(w)), ModelFormatError, r"NaN|finite",
      r"retrain the model or fix its weights"),
    E("model-bad-metadata", "ckkslab.json with an unknown output kind",
      lambda w: load_network(write(model_dir(w), "ckkslab.json", b'{"output": "softmax"}')), ModelFormatError,
      r"output must be 'probability' or 'logit', not 'softmax'"),
    E("model-metadata-not-object", "ckkslab.json that is JSON but not an object",
      lambda w: load_network(write(model_dir(w), "ckkslab.json", b"[]")), ModelFormatError,
      r"ckkslab\.json must hold a JSON object"),
    E("network-input-width", "records with another number of features than the model's input",
      lambda w: w.net.forward(np.zeros((2, 5))), (ModelFormatError, DataSchemaError, ckks.ValueRangeError),
      r"\(n, 3\); got shape \(2, 5\)", r"give records of the 3 features"),
    E("network-complex-input", "complex records given to the plaintext network (or the planner)",
      lambda w: w.net.forward(np.full((2, 3), 1 + 2j)), DataSchemaError,
      r"records given to the network are complex numbers \(dtype complex128\)", r"give real values"),
    E("network-complex-weights", "complex weights, bias or polynomial coefficients in a network",
      lambda w: PlainNetwork([Dense(np.ones((3, 1)), np.array([0.5j]), "dense")], 3), ModelFormatError,
      r"the bias values of layer 'dense' are complex numbers", r"give real values"),
    E("network-nan-input", "NaN or infinite records given to the plaintext network",
      lambda w: w.net.forward(np.full((2, 3), np.nan)), (DataSchemaError, ckks.ValueRangeError), r"NaN",
      r"remove or repair those records"),
    # ---------------------------------------------------------------- nn: planning
    E("plan-frac-bits", "fractional precision outside [8, 50]",
      lambda w: plan_inference(w.net, w.x, frac_bits=60), PlanError, r"frac_bits must be in \[8, 50\], "
                                                                     r"got 60"),
    E("plan-batch-size", "a batch size that is not a positive integer",
      lambda w: plan_inference(w.net, w.x, batch_size=0), PlanError, r"batch_size must be a positive "
                                                                     r"integer"),
    E("plan-nothing-fits", "a batch or precision no 128-bit parameters can hold",
      lambda w: plan_inference(w.net, w.x, batch_size=100000), PlanError, r"no 128-bit parameters fit",
      r"lower frac_bits, the batch size, or the depth"),
    E("plan-degree", "a polynomial activation of degree > 2",
      lambda w: plan_inference(PlainNetwork([Polynomial((0.0, 0.0, 0.0, 1.0), "cube")], 3), w.x), PlanError,
      r"degree 3 are not supported"),
    E("plan-toy-without-n", "insecure toy parameters without a ring degree",
      lambda w: plan_inference(w.net, w.x, security=None), PlanError, r"need an explicit ring_degree"),
    E("plan-int-bits", "an integer part too small for the observed values",
      lambda w: plan_inference(w.net, w.x * 1000, int_bits=1, security=None, ring_degree=64, frac_bits=20),
      PlanError, r"int_bits=1 is too small"),
    # ---------------------------------------------------------------- nn: encrypted inference
    E("batch-empty", "an empty batch",
      lambda w: enc.encrypt_batch(np.zeros((0, 3)), w.plan, w.penc, None), ckks.ValueRangeError,
      r"non-empty 2-D array, got shape \(0, 3\)"),
    E("batch-oversized", "more records than the planned batch",
      lambda w: enc.encrypt_batch(np.zeros((w.plan.block + 1, 3)), w.plan, w.penc, None),
      ckks.ValueRangeError, r"9 records exceed the planned batch of 8"),
    E("batch-nan", "NaN or infinite records",
      lambda w: enc.encrypt_batch(np.full((2, 3), np.inf), w.plan, w.penc, None), ckks.ValueRangeError,
      r"NaN or infinity"),
    E("batch-complex", "complex records",
      lambda w: enc.encrypt_batch(w.x + 1j, w.plan, w.penc, None), ckks.ValueRangeError,
      r"encrypt_batch: the records are complex numbers", r"imaginary parts would be lost; give real values"),
    E("batch-beyond-range", "records beyond the value range the plan was made for",
      lambda w: enc.encrypt_batch(w.x * 100, w.plan, w.penc, None), ckks.ValueRangeError,
      r"beyond the planned range", r"plan again with these records as calibration"),
    E("batch-wrong-width", "records with another number of features than the model's input",
      lambda w: enc.encrypt_batch(np.zeros((2, 5)), w.plan, w.penc,
                                  ckks.Encryptor(w.plan.params, w.pdec.secret_key)),
      ckks.ValueRangeError, r"5 features, the plan's network takes 3"),
    E("predict-input-count", "a batch with another number of ciphertexts than the model takes",
      lambda w: enc.predict(w.model, w.inputs[:0] + w.inputs + w.inputs, w.pev), (ckks.ValueRangeError,
                                                                                 artifacts.ArtifactError),
      r"expects 1 input ciphertexts, got 2", r"encrypt the batch with this model's plan"),
    E("decrypt-beyond-range", "decrypted scores beyond the planned range (overflow, or another key)",
      lambda w: enc.decrypt_batch(w.inputs, 4, scaled_plan(w, 1e-6), 1, w.penc, w.pdec), ckks.ValueRangeError,
      r"beyond the planned range", r"plan again with a larger margin"),
    E("server-model-not-the-plans", "a server model (plain weights) that is not the network the plan was "
                                    "made for",
      lambda w: enc.compile_model(PlainNetwork(w.net.layers[:1], 3), w.plan, w.penc), artifacts.ArtifactError,
      r"the network has 1 layers, the plan was made for 3", r"run `ckkslab keygen` with the model the"),
    # ---------------------------------------------------------------- nn: files
    E("artifact-not-ckkslab", "a model or data file that is not a ckkslab file",
      lambda w: artifacts.model_from_bytes(b"PK\x03\x04" + bytes(100), w.plan.params),
      artifacts.ArtifactError,
      r"not a ckkslab model file"),
    E("artifact-other-context", "a model file made for another context",
      lambda w: artifacts.model_from_bytes(artifacts.model_to_bytes(w.model), w.params),
      artifacts.ArtifactError,
      r"made for other parameters", r"use the context bundle written by the same `ckkslab keygen`"),
    E("artifact-wrong-kind", "a ciphertext file where a model is expected",
      lambda w: artifacts.model_from_bytes(artifacts.ciphertexts_to_bytes(w.inputs), w.plan.params),
      artifacts.ArtifactError, r"expected a model file, got a ciphertexts file"),
    E("artifact-truncated", "a truncated model file",
      lambda w: artifacts.model_from_bytes(artifacts.model_to_bytes(w.model)[:-10], w.plan.params),
      artifacts.ArtifactError, r"truncated"),
    E("artifact-complex-slots", "a data or model file holding ciphertexts of complex slots (edited)",
      lambda w: artifacts.ciphertexts_from_bytes(artifacts.ciphertexts_to_bytes(
          [ckks.Encryptor(w.plan.params, w.pdec.secret_key).encrypt(w.penc.encode([0.5j]))]), w.plan.params),
      artifacts.ArtifactError, r"holds a Ciphertext of complex slots: the network's files hold real values"),
    E("artifact-model-not-its-plan", "a model file whose layers do not fit its plan (edited)",
      lambda w: artifacts.model_from_bytes(
          model_with_layer(w, 1, enc.CompiledActivation("square", 0, SQUARE)), w.plan.params),
      artifacts.ArtifactError, r"layer 2 \('square'\) is at level 0, the plan puts it at",
      r"write the model again with `ckkslab encrypt`"),
    E("workflow-out-of-order", "a step run before the one that writes its input",
      lambda w: workflow.predict(workspace(w, with_plan=False)), workflow.WorkflowError,
      r"the context bundle not found", r"run `ckkslab keygen` first"),
    E("workflow-plan-not-json", "a plan.json that is not JSON",
      lambda w: workflow.load_plan(write_plan(w, b"{")), workflow.WorkflowError, r"is not valid JSON",
      r"run `ckkslab keygen` again"),
    E("workflow-plan-not-utf8", "a plan.json that is not UTF-8",
      lambda w: workflow.load_plan(write_plan(w, b'{"\xff": 1}')), workflow.WorkflowError,
      r"plan\.json is not UTF-8", r"run `ckkslab keygen` again"),
    E("workflow-plan-invalid", "a plan.json whose fields are not a plan keygen could write (edited)",
      lambda w: workflow.load_plan(write_plan(w, json.dumps({**artifacts.plan_to_dict(w.plan),
                                                             "packing": "diagonal"}).encode())),
      workflow.WorkflowError, r"packing 'diagonal' is neither 'batch' nor 'single'",
      r"run `ckkslab keygen` again"),
    # ---------------------------------------------------------------- nn: data
    E("table-missing", "a table path that does not exist",
      lambda w: load_table(w.tmp / "absent.csv"), FileNotFoundError, r"no table at"),
    E("table-columns", "a table with missing or unexpected columns",
      lambda w: load_table(csv_file(w, lambda t: t.rename(columns={"bmi": "body_mass"}))), DataSchemaError,
      r"missing columns \['bmi'\], unexpected columns \['body_mass'\]"),
    E("table-missing-values", "a table with empty cells",
      lambda w: load_table(csv_file(w, lambda t: t.assign(age=[None] + list(t.age[1:])))), DataSchemaError,
      r"column 'age' has missing values \(rows \[(np\.int64\()?0"),
    E("table-unknown-category", "an unknown category value",
      lambda w: load_table(csv_file(w, lambda t: t.assign(smoking_history="sometimes"))), DataSchemaError,
      r"unknown values \['sometimes'\]; known:"),
    E("table-labels", "labels other than 0/1",
      lambda w: load_table(csv_file(w, lambda t: t.assign(diabetes=2))), DataSchemaError,
      r"'diabetes' must hold 0 or 1"),
    E("table-not-csv", "a file that is not CSV",
      lambda w: load_table(write(fresh_dir(w), "t.csv", bytes(range(256)) * 3)), DataSchemaError,
      r"is not a readable CSV"),
    E("table-infinite", "an infinite value ('inf', '1e400') in a numeric column",
      lambda w: load_table(csv_file(w, lambda t: t.assign(bmi=[float("inf")] + list(t.bmi[1:])))),
      DataSchemaError, r"column 'bmi' has infinite values \(rows \[0\]\)", r"replace them"),
    E("table-bad-zip", "a corrupted .zip",
      lambda w: load_table(write(fresh_dir(w), "t.zip", b"PK\x03\x04" + bytes(60))), DataSchemaError,
      r"t\.zip is not a readable CSV \(or a zip with one CSV\): File is not a zip file"),
    E("xy-missing", "x_<split>.h5 absent",
      lambda w: load_xy(w.tmp, "nosuch"), FileNotFoundError, r"no x_nosuch\.h5 in"),
    E("xy-dataset-name", "an HDF5 file without the x_<split> dataset",
      lambda w: load_xy(h5_dataset(w, "x", np.zeros((2, 3))), "test"), DataSchemaError,
      r"has no dataset 'x_test' \(found \['x'\]\)"),
    E("xy-shapes", "x and y of different lengths",
      lambda w: load_xy(h5_dataset(w, "x_test", np.zeros((4, 3))), "test"), DataSchemaError,
      r"x_test must be \(n, d\) and y_test \(n, 1\); got \(4, 3\) and \(2, 1\)"),
    E("xy-not-hdf5", "x_test.h5 that is not HDF5",
      lambda w: load_xy(write(xy_dir(w, np.zeros((2, 3)), np.zeros((2, 1))), "x_test.h5", b"x,y\n"), "test"),
      DataSchemaError, r"x_test\.h5"),
    E("xy-complex", "complex records or labels given to save_xy",
      lambda w: save_xy(fresh_dir(w), "test", np.zeros((2, 3)) + 1j, np.zeros((2, 1))), DataSchemaError,
      r"the values of x_test are complex numbers", r"give real values"),
    E("xy-nan", "NaN records in x_test.h5",
      lambda w: load_xy(xy_dir(w, np.full((2, 3), np.nan), np.zeros((2, 1))), "test"), DataSchemaError,
      r"x_test\.h5 holds NaN or infinity \(records \[0, 1\]\)", r"remove or repair those records"),
]


def flip(buf: bytes, byte: int) -> bytes:
    out = bytearray(buf)
    out[byte] ^= 1
    return bytes(out)


def overwrite(buf: bytes, at: int, data: bytes) -> bytes:
    out = bytearray(buf)
    out[at : at + len(data)] = data
    return bytes(out)


def write(directory: Path, name: str, data: bytes) -> Path:
    (directory / name).write_bytes(data)
    return directory if name != "t.csv" and name != "t.zip" else directory / name


def model_with_layer(w: SimpleNamespace, index: int, layer) -> bytes:
    """The model file of ``w.model`` with its layer ``index`` replaced by ``layer``."""
    layers = list(w.model.layers)
    layers[index] = layer
    return artifacts.model_to_bytes(enc.EncryptedModel(w.plan, layers, w.model.encrypted_weights,
                                                       w.model.input_dim, w.model.output_dim))


def write_plan(w: SimpleNamespace, data: bytes) -> Path:
    d = workspace(w)
    (d / "context" / "plan.json").write_bytes(data)
    return d


def h5_dataset(w: SimpleNamespace, name: str, values) -> Path:
    d = xy_dir(w, np.zeros((2, 3)), np.zeros((2, 1)))
    (d / "x_test.h5").unlink()
    with h5py.File(d / "x_test.h5", "w") as handle:
        handle[name] = values
    return d


def nan_weights_dir(w: SimpleNamespace) -> Path:
    d = model_dir(w)
    with h5py.File(d / "model.h5", "a") as handle:
        root = handle["model_weights"] if "model_weights" in handle else handle
        name = root["dense"].attrs["weight_names"][0]
        dataset = root["dense"][name.decode() if isinstance(name, bytes) else name]
        values = dataset[...]
        values[0, 0] = np.nan
        dataset[...] = values
    return d


def scaled_plan(w: SimpleNamespace, factor: float):
    from dataclasses import replace

    return replace(w.plan, value_bound=w.plan.value_bound * factor)


def marks(entry: Entry):
    if entry.bug is None:
        return ()
    reason, today = entry.bug
    return pytest.mark.xfail(strict=True, reason=f"BUG: {reason}", raises=today)


@pytest.mark.parametrize("entry", [pytest.param(e, id=e.id, marks=marks(e)) for e in CATALOGUE])
def test_misuse_raises_the_named_error_with_an_actionable_message(entry: Entry, w: SimpleNamespace):
    with pytest.raises(entry.error) as info:
        entry.call(w)
    message = str(info.value)
    assert "\n" not in message.strip(), "a catalogue message is one line"
    assert re.search(entry.what, message), f"{entry.id}: {message!r} does not say {entry.what!r}"
    if entry.todo is not None:
        assert re.search(entry.todo, message), f"{entry.id}: {message!r} gives no remedy {entry.todo!r}"


def test_every_named_error_is_in_the_catalogue():
    named = {ckks.ParameterError, ckks.LevelMismatchError, ckks.ScaleMismatchError, ckks.OutOfLevelsError,
             ckks.MissingKeyError, ckks.SerializationError, ckks.ValueRangeError, ModelFormatError,
             DataSchemaError, PlanError, artifacts.ArtifactError, workflow.WorkflowError}
    used = set()
    for entry in CATALOGUE:
        used |= set(entry.error) if isinstance(entry.error, tuple) else {entry.error}
    assert named <= used, sorted(c.__name__ for c in named - used)


def test_docs_list_every_entry():
    """docs/errors.md has one table row per entry: its id in backticks and its error class."""
    text = DOC.read_text()
    rows = {m.group(1): m.group(0) for m in re.finditer(r"^\|\s*`([a-z0-9-]+)`.*$", text, re.MULTILINE)
            if not m.group(1).startswith("cli-")}
    missing = [e.id for e in CATALOGUE if e.id not in rows]
    assert not missing, f"docs/errors.md lacks {missing}"
    for entry in CATALOGUE:
        classes = entry.error if isinstance(entry.error, tuple) else (entry.error,)
        assert any(c.__name__ in rows[entry.id] for c in classes), f"{entry.id}: other error class in docs"
        assert ("BUG" in rows[entry.id]) == (entry.bug is not None), f"{entry.id}: BUG differs from the docs"
    assert set(rows) == {e.id for e in CATALOGUE}, sorted(set(rows) - {e.id for e in CATALOGUE})
