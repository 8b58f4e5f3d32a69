"""Short fuzz of every nn loader, and one reproducer per bug the fuzzing found.

Loaders: the model and ciphertext containers (``nn.artifacts``), ``context/plan.json``
(``workflow.load_plan``), ``model.json`` / ``model.h5`` / ``ckkslab.json`` (``nn.model.load_network``), HDF5
x/y (``nn.data.load_xy``), CSV and zipped CSV (``nn.data.load_table``). Mutations and oracle come from
``benchmarks/fuzz_loaders.py`` (the long run: ``--per-loader 100000``); here hypothesis chooses the mutations,
derandomized, without shrinking (a failure prints the input's outcome and where it crashed). Every input runs
in a forked worker (``Isolated``): HDF5 can loop forever in C code, which no signal interrupts.

A loader must raise its named error (ArtifactError, WorkflowError, ModelFormatError, DataSchemaError) or
return a valid object, adding at most 64 MB to the peak RSS; ``xfail(strict=True, reason="BUG: ...")`` marks
what the code does not do yet: when it is fixed the test passes, strict xfail fails, and the marker must go.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import shutil
import struct
import sys
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from nn import artifacts, workflow
from nn.data import DataSchemaError, load_table, load_xy, save_xy
from nn.model import ModelFormatError, load_network

ROOT = Path(__file__).resolve().parents[2]
CLINICAL = ROOT / "models" / "clinical"


def harness():
    """benchmarks/fuzz_loaders.py, imported once by path (benchmarks/ is not a package)."""
    name = "ckkslab_fuzz_loaders"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / "fuzz_loaders.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


fz = harness()
SHORT = settings(max_examples=250, deadline=None, derandomize=True, database=None,
                 phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
MEMORY_MB = 64  # the most a loader may add to the peak RSS on one input (every input here is < 100 KB)


def bug(reason: str, raises: type[BaseException] | tuple[type[BaseException], ...] | None = None
        ) -> pytest.MarkDecorator:
    """xfail(strict) for a known bug; ``raises``: what the code does today (DID_NOT_RAISE: it accepts)."""
    return pytest.mark.xfail(strict=True, reason=f"BUG: {reason}", raises=raises)


DID_NOT_RAISE = pytest.fail.Exception
# What each reproducer does today (the xfail must fail this way, not for another reason).
CURRENT = {
    "not-utf8": UnicodeDecodeError, "too-deep": RecursionError, "5000-digit-integer": ValueError,
    "layer-not-an-object": AttributeError, "dense-without-name": KeyError,
    "input-shape-not-a-number": ValueError, "input-shape-null": TypeError, "units-not-a-number": ValueError,
    "units-1e400": OverflowError, "weight-name-without-dataset": KeyError, "kernel-of-strings": OSError,
    "dangling-soft-link": KeyError, "nan-kernel": DID_NOT_RAISE, "not-hdf5": OSError, "truncated": OSError,
    "strings": OSError, "dangling-link": KeyError, "null-dataspace": TypeError, "nan": DID_NOT_RAISE,
    "deep-header": RecursionError, "plan-bits-1e400": OverflowError, "plan-params-a-list": AttributeError,
    "activation-of-degree-3": DID_NOT_RAISE, "diagonal-key-out-of-range": DID_NOT_RAISE,
    "layer-level-not-the-plans": DID_NOT_RAISE,
}


LOADERS = {
    "nn.model_container": bug("nn/artifacts.py model_from_bytes: RecursionError / ValueError from json.loads "
                              "(deep nesting, 5000-digit integer), raw "
                              "ValueError/OverflowError/AttributeError "
                              "from the plan (ckks.Parameters int() of a string, plan not a dict), and "
                              "headers "
                              "accepted with diagonal keys, levels, coefficient lists or widths that do "
                              "not fit "
                              "the plan or the weights"),
    "nn.cipher_container": bug("nn/artifacts.py ciphertexts_with_info: RecursionError / ValueError from "
                               "json.loads; a header without 'info' or with unknown keys loads as another "
                               "header"),
    "nn.plan_json": bug("nn/workflow.py load_plan: UnicodeDecodeError / RecursionError / ValueError from "
                        "json.loads; raw ValueError/OverflowError from ckks.Parameters; plan fields "
                        "(packing, "
                        "levels, block, value_bound) accepted without type or range checks"),
    "nn.model_json": bug("nn/model.py load_network: UnicodeDecodeError (read_text), RecursionError, "
                         "AttributeError / KeyError / TypeError / ValueError / OverflowError on layers "
                         "that are "
                         "not objects, a Dense without name, non-integer shapes or units"),
    "nn.model_h5": bug("nn/model.py _read_weights: only h5py.File() is wrapped; KeyError / RuntimeError / "
                       "OSError / ValueError / UnicodeEncodeError from h5py on a corrupted file; NaN weights "
                       "accepted"),
    "nn.model_meta": bug("nn/model.py _read_decision: AttributeError when ckkslab.json is not an object, "
                         "UnicodeDecodeError / RecursionError / ValueError from reading it"),
    "nn.data_h5": bug("nn/data.py load_xy: h5py.File() and the reads are not wrapped: OSError / "
                      "RuntimeError / "
                      "KeyError / TypeError / MemoryError; NaN accepted"),
    "nn.csv": bug("nn/data.py load_table: 'inf' / '1e400' in a numeric column is accepted (only NaN is "
                  "checked)"),
    "nn.csv_zip": bug("nn/data.py load_table: zipfile.BadZipFile, zlib.error, OSError, NotImplementedError, "
                      "MemoryError from a corrupted zip are not wrapped"),
}
EDGE_BUGS = {
    "nn.model_container": bug("nn/artifacts.py _unpack: RecursionError (deep header), ValueError (5000-digit "
                              "integer in the header)"),
    "nn.cipher_container": bug("nn/artifacts.py _unpack: RecursionError (deep header), ValueError "
                               "(5000-digit "
                               "integer in the header)"),
    "nn.plan_json": bug("nn/workflow.py load_plan: RecursionError, ValueError, UnicodeDecodeError"),
    "nn.model_json": bug("nn/model.py load_network: RecursionError, ValueError, UnicodeDecodeError"),
    "nn.model_h5": bug("nn/model.py: KeyError / OSError from h5py, MemoryError on a 2^40-row sparse kernel, "
                       "~500 MB allocated for a 2^20-row one, NaN kernel accepted, a hang (HDF5 loops "
                       "forever) "
                       "on 8 zero bytes at offset 2472 and a segfault on byte 11233 set to 5 of the shipped "
                       "clinical model.h5"),
    "nn.model_meta": bug("nn/model.py _read_decision: AttributeError, RecursionError, ValueError, "
                         "UnicodeDecodeError"),
    "nn.data_h5": bug("nn/data.py load_xy: OSError / KeyError / TypeError / MemoryError from h5py, ~200 MB "
                      "allocated for a 2^23-row sparse dataset, NaN accepted"),
    "nn.csv": bug("nn/data.py load_table: an 'inf' cell is accepted"),
}


@pytest.fixture(scope="module")
def loaders():
    built = fz.build_loaders(list(LOADERS))
    yield {ld.name: ld for ld in built}
    for ld in built:
        if ld.cleanup is not None:
            ld.cleanup()


@pytest.fixture(scope="module")
def foreign(loaders):
    return fz.foreign_samples(list(loaders.values()))


@pytest.fixture(scope="module")
def runners(loaders):
    """One forked worker per loader, started on first use."""
    started: dict = {}

    def get(name: str):
        if name not in started:
            started[name] = fz.Isolated(loaders[name], timeout=3)
        return started[name]

    yield get
    for runner in started.values():
        runner.close()


def test_every_nn_loader_is_fuzzed(loaders):
    assert sorted(loaders) == sorted(LOADERS)
    for ld in loaders.values():  # every seed is valid: the oracle calls it identical
        assert all(fz.classify(ld, i, seed)[0] == "identical" for i, seed in enumerate(ld.seeds)), ld.name


@pytest.mark.parametrize("name", [pytest.param(n, marks=m) for n, m in LOADERS.items()])
def test_mutated_inputs_are_refused_by_name_or_load_validly(name, loaders, foreign, runners):
    loader, runner = loaders[name], runners(name)

    @SHORT
    @given(data=st.data())
    def run(data: st.DataObject) -> None:
        i, buf = fz.mutate(loader, fz.HypothesisDraw(data), foreign)
        outcome, detail, grown = runner.classify(i, buf)
        assert outcome not in fz.BUGS, f"{name}: {outcome}: {detail} ({len(buf)} bytes: {buf[:64]!r})"
        assert grown < MEMORY_MB, f"{name}: +{grown:.0f} MB of peak RSS for {len(buf)} bytes"

    run()


@pytest.mark.parametrize("name", [pytest.param(n, marks=EDGE_BUGS.get(n, ())) for n in LOADERS])
def test_crafted_edge_cases_are_refused_by_name_in_bounded_memory(name, loaders, runners):
    loader, runner = loaders[name], runners(name)
    assert loader.edge_cases
    failures = []
    for i, case, buf in loader.edge_cases:
        outcome, detail, grown = runner.classify(i, buf)
        if outcome in fz.BUGS or grown > MEMORY_MB:
            failures.append(f"{case}: {outcome} {detail} (+{grown:.0f} MB)")
    assert not failures, "\n".join(failures)


# ------------------------------------------------------------------------------------------------------------
# Reproducers: the smallest input for each bug found, and the error the loader should raise
# ------------------------------------------------------------------------------------------------------------


@pytest.fixture
def model_dir(tmp_path):
    """A copy of the shipped clinical model directory."""
    out = tmp_path / "model"
    shutil.copytree(CLINICAL, out, ignore=shutil.ignore_patterns("x_*", "y_*"))
    return out


def clinical_json() -> dict:
    return json.loads((CLINICAL / "model.json").read_text())


def with_layers(model_dir: Path, edit) -> None:
    spec = clinical_json()
    edit(spec["config"]["layers"])
    (model_dir / "model.json").write_text(json.dumps(spec))


def set_config(model_dir: Path, layer: int, key: str, value) -> None:
    with_layers(model_dir, lambda layers: layers[layer]["config"].__setitem__(key, value))


MODEL_JSON_CASES = {
    "not-utf8": (lambda d: (d / "model.json").write_bytes(b'{"class_name": "Sequential\xff"}'),
                 "model.py load_network: read_text() raises UnicodeDecodeError"),
    "too-deep": (lambda d: (d / "model.json").write_text("[" * 100000 + "]" * 100000),
                 "model.py load_network: json.loads raises RecursionError"),
    "5000-digit-integer": (lambda d: (d / "model.json").write_text("9" * 5000),
                           "model.py load_network: json.loads raises ValueError (int digit limit)"),
    "layer-not-an-object": (lambda d: with_layers(d, lambda layers: layers.insert(1, 7)),
                            "model.py _layer_specs: spec.get on an int raises AttributeError"),
    "dense-without-name": (lambda d: with_layers(d, lambda layers: layers[1]["config"].pop("name")),
                           "model.py load_network: spec['config']['name'] raises KeyError"),
    "input-shape-not-a-number": (
        lambda d: set_config(d, 0, "batch_input_shape", [None, "a"]),
        "model.py _layer_specs: int('a') raises ValueError"),
    "input-shape-null": (
        lambda d: set_config(d, 0, "batch_input_shape", [None, None]),
        "model.py _layer_specs: int(None) raises TypeError"),
    "units-not-a-number": (lambda d: set_config(d, 1, "units", "x"),
                           "model.py _dense: int('x') raises ValueError"),
    "units-1e400": (lambda d: (d / "model.json").write_text((CLINICAL / "model.json").read_text().replace(
        '"units": 20', '"units": 1e400', 1)), "model.py _dense: int(inf) raises OverflowError"),
    "config-a-string": (lambda d: (d / "model.json").write_text(
        json.dumps({"class_name": "Sequential", "config": "layers"})), None),
}


@pytest.mark.parametrize("case", [pytest.param(k, marks=bug(v[1], CURRENT[k]) if v[1] else ())
                                  for k, v in MODEL_JSON_CASES.items()])
def test_model_json_reproducers(case, model_dir):
    MODEL_JSON_CASES[case][0](model_dir)
    with pytest.raises(ModelFormatError):
        load_network(model_dir)


def keras2_h5(path: Path, fill) -> None:
    """model.h5 in the tf-keras 2 layout for the clinical model's Dense layers, ``fill(group, k, b)``."""
    names = ("dense", "dense_1", "dense_2")
    with h5py.File(path, "w") as handle:
        handle.attrs["layer_names"] = np.array([n.encode() for n in names])
        for n in names:
            group = handle.create_group(n)
            group.attrs["weight_names"] = np.array([f"{n}/kernel:0".encode(), f"{n}/bias:0".encode()])
            fill(group, f"{n}/kernel:0", f"{n}/bias:0")


def clinical_weights(group, kernel, bias, change=None) -> None:
    net = load_network(CLINICAL)
    layer = next(x for x in net.layers if getattr(x, "name", None) == group.name.strip("/"))
    w = layer.weights.copy()
    if change is not None:
        change(w)
    group[kernel], group[bias] = w, layer.bias


MODEL_H5_CASES = {
    "weight-name-without-dataset": (lambda g, k, b: g.create_dataset(k, data=[1.0]),
                                    "model.py _keras2_weights: group[n] raises KeyError (h5py)"),
    "kernel-of-strings": (lambda g, k, b: (g.create_dataset(k, data=np.array([b"a", b"b"])), g.create_dataset(
        b, data=[0.0])), "model.py _keras2_weights: np.asarray(dtype=float64) raises OSError (h5py)"),
    "dangling-soft-link": (lambda g, k, b: (g.__setitem__(k, h5py.SoftLink("/nowhere")), g.create_dataset(
        b, data=[0.0])), "model.py _keras2_weights: group[n] raises KeyError (h5py)"),
    "nan-kernel": (lambda g, k, b: clinical_weights(g, k, b, lambda w: w.__setitem__((0, 0), np.nan)),
                   "model.py load_network accepts a NaN weight (no finiteness check)"),
}


@pytest.mark.parametrize("case", [pytest.param(k, marks=bug(v[1], CURRENT[k]))
                                  for k, v in MODEL_H5_CASES.items()])
def test_model_h5_reproducers(case, model_dir):
    keras2_h5(model_dir / "model.h5", MODEL_H5_CASES[case][0])
    with pytest.raises(ModelFormatError):
        load_network(model_dir)


@pytest.mark.parametrize("rows", [2**20, 2**40])
def test_model_h5_huge_declared_kernel_is_refused_before_reading(rows, model_dir):
    def fill(g, k, b):
        g.create_dataset(k, shape=(rows, 20), dtype="f8", chunks=(1024, 20))
        g.create_dataset(b, data=np.zeros(20))

    keras2_h5(model_dir / "model.h5", fill)
    assert (model_dir / "model.h5").stat().st_size < 100_000
    fz.reset_peak_rss()
    rss = fz.current_rss_mb()
    with fz.memory_cap(1024), pytest.raises(ModelFormatError):
        load_network(model_dir)
    assert fz.peak_rss_mb() - rss < MEMORY_MB


def eight_byte_overwrites(seed: bytes, stride: int) -> list[bytes]:
    out = []
    for offset in range(0, len(seed) - 8, stride):
        for fill in (b"\x00" * 8, b"\xff" * 8):
            buf = bytearray(seed)
            buf[offset : offset + 8] = fill
            out.append(bytes(buf))
    return out


@bug("model.py _read_weights: a corrupted model.h5 that h5py still opens raises RuntimeError, KeyError, "
     "OSError, ValueError or UnicodeEncodeError from h5py / numpy (e.g. 8 zero bytes at offset 112 of the "
     "shipped clinical model.h5: RuntimeError 'Unable to synchronously check link existence')")
def test_model_h5_every_8_byte_overwrite_is_refused_by_name(loaders, runners):
    """The shipped model.h5 (seed 0 of the nn.model_h5 loader) with 8 bytes set to 0x00 or 0xff at every
    offset that is a multiple of 48; a different but valid network is fine (HDF5 has no checksum)."""
    seed = loaders["nn.model_h5"].seeds[0]
    crashes = set()
    for buf in eight_byte_overwrites(seed, 48):
        outcome, detail, _ = runners("nn.model_h5").classify(0, buf)
        if outcome == "crash":
            crashes.add(detail.split(":")[0])
    assert not crashes, sorted(crashes)


SHIPPED_MODEL_H5_SHA256 = "cfbceff76e5a499e3e8ccfb6dfef0394ce00cb06678c330e2602339b85682ef0"


@bug("nn/model.py _read_weights / h5py 3.14 + HDF5 1.14.6: load_network never returns (an endless loop "
     "inside "
     "HDF5 that no signal interrupts) on the shipped clinical model.h5 with 8 zero bytes at offset 2472; a "
     "loader cannot guard against it in-process: parse untrusted HDF5 in a subprocess with a deadline, or "
     "check the file's structure (h5py low-level API) before reading")
def test_model_h5_hang_reproducer(loaders, runners):
    seed = loaders["nn.model_h5"].seeds[0]
    if hashlib.sha256(seed).hexdigest() != SHIPPED_MODEL_H5_SHA256:
        pytest.skip("the shipped model.h5 changed: the offset of this reproducer no longer applies")
    buf = bytearray(seed)
    buf[2472:2480] = bytes(8)
    outcome, detail, _ = runners("nn.model_h5").classify(0, bytes(buf))
    assert outcome != "crash", detail


@bug("nn/model.py _keras2_weights / h5py 3.14 + HDF5 1.14.6: load_network kills the process with a "
     "segmentation fault (SIGSEGV while reading the 'weight_names' attribute) on the shipped clinical "
     "model.h5 with ONE byte changed, offset 11233 from 0x01 to 0x05; only a subprocess can contain it")
def test_model_h5_segfault_reproducer(loaders, runners):
    seed = loaders["nn.model_h5"].seeds[0]
    if hashlib.sha256(seed).hexdigest() != SHIPPED_MODEL_H5_SHA256:
        pytest.skip("the shipped model.h5 changed: the offset of this reproducer no longer applies")
    buf = bytearray(seed)
    assert buf[11233] == 0x01
    buf[11233] = 0x05
    outcome, detail, _ = runners("nn.model_h5").classify(0, bytes(buf))
    assert outcome != "crash", detail


@bug("model.py _keras3_weights: candidate.get() on an h5py Dataset raises AttributeError when a layer's "
     "weights are missing and 'layers/' holds a dataset")
def test_keras3_layers_group_holding_a_dataset(tmp_path):
    directory = tmp_path / "k3"
    fz.keras3_files(directory)
    with h5py.File(directory / "model.h5", "a") as handle:
        del handle["layers/dense"]
        handle["layers/stray"] = np.zeros(3)
    with pytest.raises(ModelFormatError, match="dense"):
        load_network(directory)


@pytest.mark.parametrize("text", [
    pytest.param(b"null", marks=bug("model.py _read_decision: metadata.get on None raises AttributeError")),
    pytest.param(b"[1]", marks=bug("model.py _read_decision: metadata.get on a list raises AttributeError")),
    pytest.param(b'{"output": "logit\xff"}', marks=bug("model.py _read_decision: read_text() raises "
                                                       "UnicodeDecodeError")),
    pytest.param(b'{"threshold": NaN}', id="threshold-nan"),
    pytest.param(b'{"output": "softmax"}', id="unknown-output"),
])
def test_ckkslab_json_reproducers(text, model_dir):
    (model_dir / "ckkslab.json").write_bytes(text)
    with pytest.raises(ModelFormatError):
        load_network(model_dir)


@pytest.fixture
def data_dir(tmp_path):
    """x_test.h5 / y_test.h5 with 8 records of 3 features, written by save_xy (byte-reproducible)."""
    rng = np.random.default_rng(4)
    save_xy(tmp_path, "test", rng.uniform(0, 1, (8, 3)), rng.integers(0, 2, (8, 1)).astype(float))
    return tmp_path


def x_dataset(data_dir: Path, fill) -> None:
    (data_dir / "x_test.h5").unlink()
    with h5py.File(data_dir / "x_test.h5", "w") as handle:
        fill(handle)


DATA_CASES = {
    "not-hdf5": (lambda d: (d / "x_test.h5").write_bytes(b"x,y\n1,2\n"),
                 "data.py load_xy: h5py.File raises OSError (file signature not found)"),
    "truncated": (lambda d: (d / "x_test.h5").write_bytes((d / "x_test.h5").read_bytes()[:1000]),
                  "data.py load_xy: h5py.File raises OSError (truncated file)"),
    "strings": (lambda d: x_dataset(d, lambda h: h.create_dataset("x_test", data=np.array([b"a"] * 8))),
                "data.py load_xy: np.asarray(dtype=float64) raises OSError (h5py conversion path)"),
    "dangling-link": (lambda d: x_dataset(d, lambda h: h.__setitem__("x_test", h5py.SoftLink("/nowhere"))),
                      "data.py load_xy: handle[name] raises KeyError (h5py)"),
    "null-dataspace": (lambda d: x_dataset(d, lambda h: h.create_dataset("x_test", data=h5py.Empty("f8"))),
                       "data.py load_xy: np.asarray raises TypeError"),
    "nan": (lambda d: x_dataset(d, lambda h: h.create_dataset("x_test", data=np.full((8, 3), np.nan))),
            "data.py load_xy accepts NaN features (no finiteness check)"),
}


DATA_FIXED = {"strings", "not-hdf5", "truncated"}  # refused by load_xy's header checks (shape, HDF5 open)


@pytest.mark.parametrize("case", [pytest.param(k, marks=() if k in DATA_FIXED else bug(v[1], CURRENT[k]))
                                  for k, v in DATA_CASES.items()])
def test_data_h5_reproducers(case, data_dir):
    DATA_CASES[case][0](data_dir)
    with pytest.raises(DataSchemaError):
        load_xy(data_dir, "test")


@bug("data.py load_xy: a corrupted x_test.h5 that h5py still opens raises RuntimeError ('Unable to "
     "synchronously check link existence', 8 bytes 0xff at offset 120) or KeyError (offset 800); OSError "
     "when it does not open")
def test_data_h5_every_8_byte_overwrite_is_refused_by_name(loaders, runners):
    """x_test.h5 of 8 x 3 records (seed 0 of the nn.data_h5 loader) with 8 bytes set to 0x00 or 0xff at every
    multiple of 8; different valid values are fine, NaN is not."""
    seed = loaders["nn.data_h5"].seeds[0]
    crashes = set()
    for buf in eight_byte_overwrites(seed, 8):
        outcome, detail, _ = runners("nn.data_h5").classify(0, buf)
        if outcome in fz.BUGS:
            crashes.add(detail.split(":")[0])
    assert not crashes, sorted(crashes)


@pytest.mark.parametrize("rows", [2**23, 2**40])
def test_data_h5_huge_declared_dataset_is_refused_before_reading(rows, data_dir):
    x_dataset(data_dir, lambda h: h.create_dataset("x_test", shape=(rows, 3), dtype="f8", chunks=(4096, 3)))
    fz.reset_peak_rss()
    rss = fz.current_rss_mb()
    with fz.memory_cap(1024), pytest.raises(DataSchemaError):
        load_xy(data_dir, "test")
    assert fz.peak_rss_mb() - rss < MEMORY_MB


def csv_text() -> str:
    return fz.csv_seed_tables()[0]


@pytest.mark.parametrize("value", [
    pytest.param("inf", marks=bug("data.py _check_values: only isna() is checked, 'inf' passes")),
    pytest.param("1e400", marks=bug("data.py _check_values: '1e400' parses to inf and passes")),
    pytest.param("", id="empty"),
    pytest.param("abc", id="text"),
])
def test_csv_non_finite_or_non_numeric_cell_is_refused(value, tmp_path):
    rows = csv_text().splitlines()
    header = rows[0].split(",")
    cells = rows[1].split(",")
    cells[header.index("bmi")] = value
    path = tmp_path / "t.csv"
    path.write_text("\n".join([rows[0], ",".join(cells), *rows[2:]]) + "\n")
    with pytest.raises(DataSchemaError):
        load_table(path)


@pytest.mark.parametrize("data", [
    pytest.param(b"PK\x03\x04" + bytes(60), marks=bug("data.py load_table: zipfile.BadZipFile not wrapped")),
    pytest.param("corrupted-deflate", marks=bug("data.py load_table: zlib.error / BadZipFile from a "
                                                "corrupted "
                                                "deflate stream not wrapped")),
    pytest.param(b"", id="empty", marks=bug("data.py load_table: an empty .zip raises zipfile.BadZipFile")),
])
def test_corrupted_zip_is_refused_by_name(data, tmp_path):
    if data == "corrupted-deflate":
        out = tmp_path / "src.zip"
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
            z.writestr("t.csv", csv_text())
        raw = bytearray(out.read_bytes())
        raw[60:70] = b"\xff" * 10  # inside the compressed data of the only member
        data = bytes(raw)
    path = tmp_path / "t.zip"
    path.write_bytes(data)
    with pytest.raises(DataSchemaError):
        load_table(path)


@pytest.fixture(scope="module")
def containers():
    params, model_seeds, cipher_seeds, models = fz.toy_models()
    return params, model_seeds, cipher_seeds


def edit_header(buf: bytes, edit) -> bytes:
    header, blobs = fz.split_container(buf)
    tree = json.loads(header)
    edit(tree)
    return fz.join_container(json.dumps(tree, sort_keys=True), blobs)


def set_path(tree, path, value):
    node = tree
    for k in path[:-1]:
        node = node[k]
    node[path[-1]] = value


CONTAINER_CASES = {
    "deep-header": (lambda b: fz.join_container("[" * 100000 + "]" * 100000, fz.split_container(b)[1]),
                    "artifacts.py _unpack: json.loads raises RecursionError"),
    "5000-digit-integer": (lambda b: fz.join_container("9" * 5000, fz.split_container(b)[1]),
                           "artifacts.py _unpack: json.loads raises ValueError (int digit limit)"),
    "plan-bits-1e400": (lambda b: fz.join_container(fz.split_container(b)[0].replace(
        '"moduli_bits": [', '"moduli_bits": [1e400, ', 1), fz.split_container(b)[1]),
                        "ckks/params.py Parameters.__post_init__: int(inf) raises OverflowError, not "
                        "ParameterError, and model_from_bytes wraps only KeyError/TypeError/ValueError"),
    "plan-params-a-list": (lambda b: edit_header(b, lambda t: set_path(t, ("plan", "params"), [1])),
                           "artifacts.py plan_from_dict: d['params'].items() on a list raises "
                           "AttributeError"),
    "activation-of-degree-3": (lambda b: edit_header(b, lambda t: set_path(t, ("layers", 1, "coeffs"),
                                                                          [0.0, 0.0, 1.0, 5.0])),
                               "artifacts.py model_from_bytes accepts 4 coefficients; encrypted._activation "
                               "then silently drops the x^3 term"),
    "diagonal-key-out-of-range": (lambda b: edit_header(
        b, lambda t: set_path(t, ("layers", 0, "diagonals", 0), [7, 7, 7])),
                                  "artifacts.py model_from_bytes accepts a diagonal key for an input "
                                  "ciphertext that does not exist"),
    "layer-level-not-the-plans": (lambda b: edit_header(b, lambda t: set_path(t, ("layers", 1, "level"), 0)),
                                  "artifacts.py model_from_bytes accepts a layer level that is neither the "
                                  "plan's nor its weights'"),
}


@pytest.mark.parametrize("case", [pytest.param(k, marks=bug(v[1], CURRENT[k]))
                                  for k, v in CONTAINER_CASES.items()])
def test_model_container_reproducers(case, containers):
    params, model_seeds, _ = containers
    buf = CONTAINER_CASES[case][0](model_seeds[0])
    with pytest.raises(artifacts.ArtifactError):
        artifacts.model_from_bytes(buf, params)


@pytest.mark.parametrize("edit", [
    pytest.param(lambda t: t.pop("info"), id="info-missing",
                 marks=bug("artifacts.py ciphertexts_with_info: a header without 'info' loads as info={}")),
    pytest.param(lambda t: t.__setitem__("extra", 1), id="unknown-key",
                 marks=bug("artifacts.py _unpack: unknown header keys are ignored")),
    pytest.param(lambda t: t.__setitem__("info", [1]), id="info-not-an-object"),
    pytest.param(lambda t: t.__setitem__("kind", "model"), id="other-kind"),
])
def test_cipher_container_header_is_exactly_what_it_says(edit, containers):
    params, _, cipher_seeds = containers
    with pytest.raises(artifacts.ArtifactError):
        artifacts.ciphertexts_with_info(edit_header(cipher_seeds[0], edit), params)


@pytest.fixture
def workspace(tmp_path, containers):
    params, model_seeds, _ = containers
    plan = json.loads(fz.split_container(model_seeds[0])[0])["plan"]
    (tmp_path / "context").mkdir()
    return tmp_path, plan


@pytest.mark.parametrize("write", [
    pytest.param(lambda p, plan: p.write_bytes(b'{"plan": "\xff"}'), id="not-utf8",
                 marks=bug("workflow.py load_plan: json.loads(bytes) raises UnicodeDecodeError")),
    pytest.param(lambda p, plan: p.write_text(json.dumps({**plan, "packing": "diagonal"})),
                 id="unknown-packing",
                 marks=bug("artifacts.py plan_from_dict: InferencePlan fields are not validated")),
    pytest.param(lambda p, plan: p.write_text(json.dumps({**plan, "layer_levels": [99, 4, 3, 2]})),
                 id="level-above-the-chain",
                 marks=bug("artifacts.py plan_from_dict: layer_levels are not checked against the chain")),
    pytest.param(lambda p, plan: p.write_text(json.dumps({**plan, "block": "4"})), id="block-not-an-integer",
                 marks=bug("artifacts.py plan_from_dict: block is not type-checked")),
    pytest.param(lambda p, plan: p.write_text("{"), id="truncated"),
    pytest.param(lambda p, plan: p.write_text(json.dumps({**plan, "extra": 1})), id="unknown-field"),
])
def test_plan_json_is_refused_by_name(write, workspace):
    directory, plan = workspace
    write(directory / "context" / "plan.json", plan)
    with pytest.raises((workflow.WorkflowError, artifacts.ArtifactError)):
        workflow.load_plan(directory)


def test_container_count_and_size_fields_are_checked_before_reading(containers):
    """Declared object count 2^32 - 1 and object size 2^64 - 1: refused at once, nothing allocated."""
    params, model_seeds, _ = containers
    header, _ = fz.split_container(model_seeds[0])
    head = artifacts.MAGIC + struct.pack("<HI", artifacts.VERSION, len(header)) + header.encode()
    for buf in (head + struct.pack("<I", 2**32 - 1), head + struct.pack("<IQ", 1, 2**64 - 1)):
        with pytest.raises(artifacts.ArtifactError, match="truncated"):
            artifacts.model_from_bytes(buf, params)
