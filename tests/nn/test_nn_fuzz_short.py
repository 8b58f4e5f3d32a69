"""Short fuzz of every nn loader, and one reproducer per bug the fuzzing found.

Loaders: the model and ciphertext containers (``nn.artifacts``), ``context/plan.json``
(``workflow.load_plan``), ``model.json`` / ``model.h5`` / ``ckkslab.json`` (``nn.model.load_network``), HDF5
x/y (``nn.data.load_xy``), CSV and zipped CSV (``nn.table.load_table``). Mutations and oracle come from the
harness ``benchmarks/fuzz/`` (the long run: ``python benchmarks/fuzz_loaders.py --per-loader 100000``); here
hypothesis chooses the mutations, derandomized, without shrinking (a failure prints the input's outcome and
where it crashed). Every input runs in a forked worker (``worker.Isolated``): HDF5 can loop forever in C code,
which no signal interrupts.

A loader must raise its named error (ArtifactError, WorkflowError, ModelFormatError, DataSchemaError) or
return a valid object, adding at most 64 MB to the peak RSS. Each reproducer also matches the message of the
check meant to refuse its input: an earlier check that happens to fire instead does not make it pass.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import struct
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from benchmarks.fuzz import (
    draw,
    mutators,
    oracle,
    targets,
    targets_nn_artifacts,
    targets_nn_user_files,
    worker,
)
from nn import artifacts, container, workflow
from nn.data import DataSchemaError, load_xy, save_xy
from nn.model import ModelFormatError, load_network
from nn.table import load_table

ROOT = Path(__file__).resolve().parents[2]
CLINICAL = ROOT / "models" / "clinical"


SHORT = settings(max_examples=250, deadline=None, derandomize=True, database=None,
                 phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
MEMORY_MB = 64  # the most a loader may add to the peak RSS on one input (every input here is < 100 KB)


# Every nn loader of the fuzz harness, listed here so that each gets its own test ids.
LOADERS = ("nn.model_container", "nn.cipher_container", "nn.plan_json", "nn.model_json", "nn.model_h5",
           "nn.model_meta", "nn.data_h5", "nn.csv", "nn.csv_zip")


@pytest.fixture(scope="module")
def loaders():
    """Every loader the harness has under ``nn`` (not only those listed in LOADERS), by name."""
    built = targets.build_loaders(["nn"])
    yield {ld.name: ld for ld in built}
    for ld in built:
        if ld.cleanup is not None:
            ld.cleanup()


@pytest.fixture(scope="module")
def foreign(loaders):
    return mutators.foreign_samples(list(loaders.values()))


@pytest.fixture(scope="module")
def runners(loaders):
    """One forked worker per loader, started on first use."""
    started: dict = {}

    def get(name: str):
        if name not in started:
            # 8 s: the fuzz harness's default, above the loaders' own HDF5 timeout (nn.hdf5_sandbox, 5 s)
            started[name] = worker.Isolated(loaders[name], timeout=8)
        return started[name]

    yield get
    for runner in started.values():
        runner.close()


def test_every_nn_loader_is_fuzzed(loaders):
    """A loader added to the harness but missing from LOADERS would go without the tests below."""
    assert sorted(loaders) == sorted(LOADERS)
    for ld in loaders.values():  # every seed is valid: the oracle calls it identical
        assert all(oracle.classify(ld, i, seed)[0] == "identical" for i, seed in enumerate(ld.seeds)), ld.name


@pytest.mark.parametrize("name", LOADERS)
def test_mutated_inputs_are_refused_by_name_or_load_validly(name, loaders, foreign, runners):
    loader, runner = loaders[name], runners(name)

    @SHORT
    @given(data=st.data())
    def run(data: st.DataObject) -> None:
        i, buf = mutators.mutate(loader, draw.HypothesisDraw(data), foreign)
        outcome, detail, grown = runner.classify(i, buf)
        assert outcome not in oracle.BUGS, f"{name}: {outcome}: {detail} ({len(buf)} bytes: {buf[:64]!r})"
        assert grown < MEMORY_MB, f"{name}: +{grown:.0f} MB of peak RSS for {len(buf)} bytes"

    run()


@pytest.mark.parametrize("name", LOADERS)
def test_crafted_edge_cases_are_refused_by_name_in_bounded_memory(name, loaders, runners):
    loader, runner = loaders[name], runners(name)
    assert loader.edge_cases
    failures = []
    for i, case, buf in loader.edge_cases:
        outcome, detail, grown = runner.classify(i, buf)
        if outcome in oracle.BUGS or grown > MEMORY_MB:
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


NOT_A_JSON_VALUE = r"model\.json holds a value JSON cannot carry here"
NOT_A_LAYER_ENTRY = r"model\.json: layer {} is not an object with a string 'class_name' and an object"
NOT_AN_INPUT_WIDTH = r"model\.json: the last entry of the input shape of layer 0 must be a positive integer"
NOT_UNITS = r"the units of Dense layer 'dense' must be a positive integer"

# case -> (how it edits the model directory, the message of the check that must refuse it)
MODEL_JSON_CASES = {
    "not-utf8": (lambda d: (d / "model.json").write_bytes(b'{"class_name": "Sequential\xff"}'),
                 r"model\.json is not UTF-8 text"),
    "too-deep": (lambda d: (d / "model.json").write_text("[" * 100000 + "]" * 100000),
                 r"model\.json is nested too deeply"),
    "5000-digit-integer": (lambda d: (d / "model.json").write_text("9" * 5000),
                           NOT_A_JSON_VALUE + r": an integer of 5000 digits"),
    "layer-not-an-object": (lambda d: with_layers(d, lambda layers: layers.insert(1, 7)),
                            NOT_A_LAYER_ENTRY.format(1)),
    "dense-without-name": (lambda d: with_layers(d, lambda layers: layers[1]["config"].pop("name")),
                           r"model\.json: layer 1 \(Dense\) has no string 'name' in its config"),
    "input-shape-not-a-number": (lambda d: set_config(d, 0, "batch_input_shape", [None, "a"]),
                                 NOT_AN_INPUT_WIDTH + r".*, not 'a'"),
    "input-shape-null": (lambda d: set_config(d, 0, "batch_input_shape", [None, None]),
                         NOT_AN_INPUT_WIDTH + r".*, not None"),
    "units-not-a-number": (lambda d: set_config(d, 1, "units", "x"), NOT_UNITS + r".*, not 'x'"),
    # a bool is an int in Python
    "units-true": (lambda d: set_config(d, 1, "units", True), NOT_UNITS + r".*, not True"),
    "use-bias-a-string": (lambda d: set_config(d, 1, "use_bias", "no"),
                          r"Dense layer 'dense': use_bias must be true or false, not 'no'"),
    "layer-config-a-list": (lambda d: with_layers(d, lambda layers: layers[2].__setitem__("config", [1])),
                            NOT_A_LAYER_ENTRY.format(2)),
    "units-1e400": (lambda d: (d / "model.json").write_text((CLINICAL / "model.json").read_text().replace(
        '"units": 20', '"units": 1e400', 1)), NOT_A_JSON_VALUE + r": the number 1e400 overflows a float64"),
    "config-a-string": (lambda d: (d / "model.json").write_text(
        json.dumps({"class_name": "Sequential", "config": "layers"})), r"model\.json holds no layer list"),
}


@pytest.mark.parametrize("case", list(MODEL_JSON_CASES))
def test_model_json_reproducers(case, model_dir):
    edit, message = MODEL_JSON_CASES[case]
    edit(model_dir)
    with pytest.raises(ModelFormatError, match=message):
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


NOT_WEIGHTS = r"model\.h5: the weights of layer 'dense' are not an array of numbers"
NOT_FINITE_WEIGHTS = r"model\.h5: the weights of layer 'dense' hold NaN or infinite values"

# case -> (how it fills each layer's group, the message of the check that must refuse it)
MODEL_H5_CASES = {
    # the kernel is there, its bias (listed in weight_names) is not
    "weight-name-without-dataset": (lambda g, k, b: g.create_dataset(k, data=[1.0]), NOT_WEIGHTS),
    "kernel-of-strings": (lambda g, k, b: (g.create_dataset(k, data=np.array([b"a", b"b"])),
                                           g.create_dataset(b, data=[0.0])), NOT_WEIGHTS),
    "dangling-soft-link": (lambda g, k, b: (g.__setitem__(k, h5py.SoftLink("/nowhere")),
                                            g.create_dataset(b, data=[0.0])), NOT_WEIGHTS),
    "nan-kernel": (lambda g, k, b: clinical_weights(g, k, b, lambda w: w.__setitem__((0, 0), np.nan)),
                   NOT_FINITE_WEIGHTS),
    "inf-bias": (lambda g, k, b: (clinical_weights(g, k, b), g[b].__setitem__(0, -np.inf)),
                 NOT_FINITE_WEIGHTS),
    "null-dataspace-kernel": (lambda g, k, b: (g.create_dataset(k, data=h5py.Empty("f8")),
                                               g.create_dataset(b, data=[0.0])), NOT_WEIGHTS),
}


@pytest.mark.parametrize("case", list(MODEL_H5_CASES))
def test_model_h5_reproducers(case, model_dir):
    fill, message = MODEL_H5_CASES[case]
    keras2_h5(model_dir / "model.h5", fill)
    with pytest.raises(ModelFormatError, match=message):
        load_network(model_dir)


@pytest.mark.parametrize("rows", [2**20, 2**40])
def test_model_h5_huge_declared_kernel_is_refused_before_reading(rows, model_dir):
    def fill(g, k, b):
        g.create_dataset(k, shape=(rows, 20), dtype="f8", chunks=(1024, 20))
        g.create_dataset(b, data=np.zeros(20))

    keras2_h5(model_dir / "model.h5", fill)
    assert (model_dir / "model.h5").stat().st_size < 100_000
    worker.reset_peak_rss()
    rss = worker.current_rss_mb()
    # model.h5 is read in a child process: the parent's peak RSS does not see the read, and the child's own
    # memory cap would also end in a ModelFormatError. The message is what shows the size check refused it.
    with worker.memory_cap(1024), pytest.raises(ModelFormatError, match=r"layer 'dense' declares a weight "
                                                rf"array of shape \({rows}, 20\) .*; refusing to read it"):
        load_network(model_dir)
    assert worker.peak_rss_mb() - rss < MEMORY_MB


def eight_byte_overwrites(seed: bytes, stride: int) -> list[bytes]:
    out = []
    for offset in range(0, len(seed) - 8, stride):
        for fill in (b"\x00" * 8, b"\xff" * 8):
            buf = bytearray(seed)
            buf[offset : offset + 8] = fill
            out.append(bytes(buf))
    return out


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


def test_model_h5_hang_reproducer(loaders, runners):
    """h5py 3.14 + HDF5 1.14.6 loop forever (in C: no signal interrupts it) on the shipped clinical model.h5
    with 8 zero bytes at offset 2472; load_network reads model.h5 in a child process (nn.hdf5_sandbox) and
    refuses the file when the child has not finished after 5 s."""
    seed = loaders["nn.model_h5"].seeds[0]
    if hashlib.sha256(seed).hexdigest() != SHIPPED_MODEL_H5_SHA256:
        pytest.skip("the shipped model.h5 changed: the offset of this reproducer no longer applies")
    buf = bytearray(seed)
    buf[2472:2480] = bytes(8)
    outcome, detail, _ = runners("nn.model_h5").classify(0, bytes(buf))
    assert outcome == "rejected", detail


def test_model_h5_segfault_reproducer(loaders, runners, model_dir):
    """h5py 3.14 + HDF5 1.14.6 segfault (reading the 'weight_names' attribute) on the shipped clinical
    model.h5 with ONE byte changed, offset 11233 from 0x01 to 0x05; the child process reading it dies,
    load_network raises ModelFormatError."""
    seed = loaders["nn.model_h5"].seeds[0]
    if hashlib.sha256(seed).hexdigest() != SHIPPED_MODEL_H5_SHA256:
        pytest.skip("the shipped model.h5 changed: the offset of this reproducer no longer applies")
    buf = bytearray(seed)
    assert buf[11233] == 0x01
    buf[11233] = 0x05
    outcome, detail, _ = runners("nn.model_h5").classify(0, bytes(buf))
    assert outcome == "rejected", detail
    (model_dir / "model.h5").write_bytes(bytes(buf))  # in this process too: it survives
    with pytest.raises(ModelFormatError, match=r"crashed \(SIGSEGV\) reading .*model\.h5"):
        load_network(model_dir)


def test_keras3_layers_group_holding_a_dataset(tmp_path):
    directory = tmp_path / "k3"
    targets_nn_user_files.keras3_files(directory)
    with h5py.File(directory / "model.h5", "a") as handle:
        del handle["layers/dense"]
        handle["layers/stray"] = np.zeros(3)
    with pytest.raises(ModelFormatError, match="dense"):
        load_network(directory)


NOT_AN_OBJECT = r"ckkslab\.json must hold a JSON object"


@pytest.mark.parametrize(("text", "message"), [
    pytest.param(b"null", NOT_AN_OBJECT, id="null"),
    pytest.param(b"[1]", NOT_AN_OBJECT, id="a-list"),
    pytest.param(b'{"output": "logit\xff"}', r"ckkslab\.json is not UTF-8 text", id="not-utf8"),
    pytest.param(b'{"threshold": true}', r"ckkslab\.json: threshold must be a finite number, not True",
                 id="threshold-a-boolean"),
    pytest.param(b'{"threshold": NaN}', r"ckkslab\.json holds a value JSON cannot carry here: NaN",
                 id="threshold-nan"),
    pytest.param(b'{"output": "softmax"}', r"ckkslab\.json: output must be 'probability' or 'logit', "
                 r"not 'softmax'", id="unknown-output"),
])
def test_ckkslab_json_reproducers(text, message, model_dir):
    (model_dir / "ckkslab.json").write_bytes(text)
    with pytest.raises(ModelFormatError, match=message):
        load_network(model_dir)


@pytest.fixture
def data_dir(tmp_path):
    """x_test.h5 / y_test.h5 with 8 records of 3 features, written by save_xy (byte-reproducible)."""
    rng = np.random.default_rng(4)
    save_xy(tmp_path, "test", rng.uniform(0, 1, (8, 3)), rng.integers(0, 2, (8, 1)).astype(float))
    return tmp_path


def x_dataset(data_dir: Path, fill, name: str = "x_test") -> None:
    """Write ``<name>.h5`` again, its content made by ``fill(handle)``."""
    (data_dir / f"{name}.h5").unlink()
    with h5py.File(data_dir / f"{name}.h5", "w") as handle:
        fill(handle)


NOT_HDF5 = r"x_test\.h5 is not a readable HDF5 file"
NOT_NUMBERS = r"x_test\.h5: dataset 'x_test' is not an array of numbers"
NOT_FINITE = r"x_test\.h5 holds NaN or infinity \(records \[0, 1, 2, 3, 4\]\)"

# case -> (how it edits the data directory, the message of the check that must refuse it)
DATA_CASES = {
    "not-hdf5": (lambda d: (d / "x_test.h5").write_bytes(b"x,y\n1,2\n"), NOT_HDF5),
    "truncated": (lambda d: (d / "x_test.h5").write_bytes((d / "x_test.h5").read_bytes()[:1000]), NOT_HDF5),
    "strings": (lambda d: x_dataset(d, lambda h: h.create_dataset("x_test", data=np.array([b"a"] * 8))),
                NOT_NUMBERS),
    "dangling-link": (lambda d: x_dataset(d, lambda h: h.__setitem__("x_test", h5py.SoftLink("/nowhere"))),
                      r"x_test\.h5 has no dataset 'x_test'"),
    "null-dataspace": (lambda d: x_dataset(d, lambda h: h.create_dataset("x_test", data=h5py.Empty("f8"))),
                       NOT_NUMBERS),
    "nan": (lambda d: x_dataset(d, lambda h: h.create_dataset("x_test", data=np.full((8, 3), np.nan))),
            NOT_FINITE),
    "inf": (lambda d: x_dataset(d, lambda h: h.create_dataset("x_test", data=np.full((8, 3), -np.inf))),
            NOT_FINITE),
    "labels-not-0-or-1": (lambda d: save_xy(d, "test", np.zeros((8, 3)), np.full((8, 1), 2.0)),
                          r"y_test\.h5 holds labels other than 0 and 1"),
}


@pytest.mark.parametrize("case", list(DATA_CASES))
def test_data_h5_reproducers(case, data_dir):
    edit, message = DATA_CASES[case]
    edit(data_dir)
    with pytest.raises(DataSchemaError, match=message):
        load_xy(data_dir, "test")


def test_data_h5_every_8_byte_overwrite_is_refused_by_name(loaders, runners):
    """x_test.h5 of 8 x 3 records (seed 0 of the nn.data_h5 loader) with 8 bytes set to 0x00 or 0xff at every
    multiple of 8; different valid values are fine, NaN is not."""
    seed = loaders["nn.data_h5"].seeds[0]
    crashes = set()
    for buf in eight_byte_overwrites(seed, 8):
        outcome, detail, _ = runners("nn.data_h5").classify(0, buf)
        if outcome in oracle.BUGS:
            crashes.add(detail.split(":")[0])
    assert not crashes, sorted(crashes)


@pytest.mark.parametrize("rows", [2**23, 2**40])
def test_data_h5_huge_declared_dataset_is_refused_before_reading(rows, data_dir):
    """x (rows, 3) and y (rows, 1), declared but never written (a few KB on disk): the shapes agree, the
    size is refused."""
    x_dataset(data_dir, lambda h: h.create_dataset("x_test", shape=(rows, 3), dtype="f8", chunks=(4096, 3)))
    x_dataset(data_dir, lambda h: h.create_dataset("y_test", shape=(rows, 1), dtype="f8", chunks=(4096, 1)),
              "y_test")
    worker.reset_peak_rss()
    rss = worker.current_rss_mb()
    # x_test.h5 is read in a child process: the parent's peak RSS does not see the read, and the child's own
    # memory cap would also end in a DataSchemaError. The message is what shows the size check refused it.
    with worker.memory_cap(1024), pytest.raises(DataSchemaError, match=rf"x_test\.h5 declares {rows} x 3 "
                                                r"values .*; refusing to read it"):
        load_xy(data_dir, "test")
    assert worker.peak_rss_mb() - rss < MEMORY_MB


def csv_text() -> str:
    return targets_nn_user_files.csv_seed_tables()[0]


INFINITE_BMI = r"t\.csv: column 'bmi' has infinite values \(rows \[0\]\)"


@pytest.mark.parametrize(("value", "message"), [
    pytest.param("inf", INFINITE_BMI, id="inf"),
    pytest.param("1e400", INFINITE_BMI, id="1e400"),
    pytest.param("-inf", INFINITE_BMI, id="minus-inf"),
    pytest.param("", r"t\.csv: column 'bmi' has missing values", id="empty"),
    pytest.param("abc", r"t\.csv: column 'bmi' is not numeric", id="text"),
])
def test_csv_non_finite_or_non_numeric_cell_is_refused(value, message, tmp_path):
    rows = csv_text().splitlines()
    header = rows[0].split(",")
    cells = rows[1].split(",")
    cells[header.index("bmi")] = value
    path = tmp_path / "t.csv"
    path.write_text("\n".join([rows[0], ",".join(cells), *rows[2:]]) + "\n")
    with pytest.raises(DataSchemaError, match=message):
        load_table(path)


def zip_of(files: dict[str, str], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", method) as z:
        for name, text in files.items():
            z.writestr(name, text)
    return out.getvalue()


def corrupted(method: int) -> bytes:
    """A zip whose only CSV, compressed with ``method``, has 10 bytes of its compressed data set to 0xff
    (each decompressor raises its own exception: zlib.error, OSError, LZMAError)."""
    raw = bytearray(zip_of({"t.csv": csv_text()}, method))
    raw[60:70] = b"\xff" * 10  # inside the compressed data of the only member
    return bytes(raw)


def declaring_4_gib() -> bytes:
    """A zip bomb's header: the central directory says the CSV unzips to 4 GiB - 16 bytes."""
    raw = bytearray(zip_of({"t.csv": csv_text()}))
    entry = raw.index(b"PK\x01\x02")  # the central directory entry; its uncompressed size is at +24
    raw[entry + 24 : entry + 28] = struct.pack("<I", 2**32 - 16)
    return bytes(raw)


@pytest.mark.parametrize("make", [
    pytest.param(lambda: b"PK\x03\x04" + bytes(60), id="bad-header"),
    pytest.param(lambda: corrupted(zipfile.ZIP_DEFLATED), id="corrupted-deflate"),
    pytest.param(lambda: corrupted(zipfile.ZIP_BZIP2), id="corrupted-bzip2"),
    pytest.param(lambda: corrupted(zipfile.ZIP_LZMA), id="corrupted-lzma"),
    pytest.param(lambda: b"", id="empty"),
    pytest.param(lambda: zip_of({}), id="no-file"),
    pytest.param(lambda: zip_of({"a.csv": csv_text(), "b.csv": csv_text()}), id="two-files"),
    pytest.param(declaring_4_gib, id="declares-4-GiB"),
])
def test_corrupted_zip_is_refused_by_name(make, tmp_path):
    path = tmp_path / "t.zip"
    path.write_bytes(make())
    with pytest.raises(DataSchemaError, match="t.zip"):
        load_table(path)


@pytest.fixture(scope="module")
def containers():
    params, model_seeds, cipher_seeds, models = targets_nn_artifacts.toy_models()
    return params, model_seeds, cipher_seeds


def edit_header(buf: bytes, edit) -> bytes:
    header, blobs = mutators.split_container(buf)
    tree = json.loads(header)
    edit(tree)
    return mutators.join_container(json.dumps(tree, sort_keys=True), blobs)


def set_path(tree, path, value):
    node = tree
    for k in path[:-1]:
        node = node[k]
    node[path[-1]] = value


CONTAINER_CASES = {
    "deep-header": lambda b: mutators.join_container("[" * 100000 + "]" * 100000,
                                                     mutators.split_container(b)[1]),
    "5000-digit-integer": lambda b: mutators.join_container("9" * 5000, mutators.split_container(b)[1]),
    "plan-bits-1e400": lambda b: mutators.join_container(mutators.split_container(b)[0].replace(
        '"moduli_bits": [', '"moduli_bits": [1e400, ', 1), mutators.split_container(b)[1]),
    "plan-params-a-list": lambda b: edit_header(b, lambda t: set_path(t, ("plan", "params"), [1])),
    # a float64 cannot hold 2^64 + 1: read as 2^64, the plan would not be what the file says
    "plan-range-2^64+1": lambda b: edit_header(b, lambda t: set_path(t, ("plan", "ranges", 0), 2**64 + 1)),
    "activation-of-degree-3": lambda b: edit_header(b, lambda t: set_path(t, ("layers", 1, "coeffs"),
                                                                         [0.0, 0.0, 1.0, 5.0])),
    "activation-deeper-than-planned": lambda b: edit_header(b, lambda t: set_path(t, ("layers", 1, "coeffs"),
                                                                                 [0.0, 1.0, 1.0])),
    "diagonal-key-out-of-range": lambda b: edit_header(
        b, lambda t: set_path(t, ("layers", 0, "diagonals", 0), [7, 7, 7])),
    "diagonal-keys-repeated": lambda b: edit_header(
        b, lambda t: set_path(t, ("layers", 0, "diagonals", 1), [0, 0, 0])),
    "layer-level-not-the-plans": lambda b: edit_header(b, lambda t: set_path(t, ("layers", 1, "level"), 0)),
    "widths-do-not-chain": lambda b: edit_header(b, lambda t: set_path(t, ("layers", 2, "inputs"), 2)),
    "encrypted-weights-1": lambda b: edit_header(b, lambda t: set_path(t, ("encrypted_weights",), 1)),
    "unknown-header-field": lambda b: edit_header(b, lambda t: set_path(t, ("extra",), 1)),
    # found by the long run: a check of every output's diagonal built range(2^62) and hung
    "dense-of-2^62-outputs": lambda b: edit_header(b, lambda t: set_path(t, ("layers", 2, "outputs"), 2**62)),
}


@pytest.mark.parametrize("case", list(CONTAINER_CASES))
def test_model_container_reproducers(case, containers):
    params, model_seeds, _ = containers
    buf = CONTAINER_CASES[case](model_seeds[0])
    with pytest.raises(artifacts.ArtifactError):
        artifacts.model_from_bytes(buf, params)


@pytest.mark.parametrize("edit", [
    pytest.param(lambda t: t.pop("info"), id="info-missing"),
    pytest.param(lambda t: t.__setitem__("extra", 1), id="unknown-key"),
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
    plan = json.loads(mutators.split_container(model_seeds[0])[0])["plan"]
    (tmp_path / "context").mkdir()
    return tmp_path, plan


@pytest.mark.parametrize("write", [
    pytest.param(lambda p, plan: p.write_bytes(b'{"plan": "\xff"}'), id="not-utf8"),
    pytest.param(lambda p, plan: p.write_text(json.dumps({**plan, "packing": "diagonal"})),
                 id="unknown-packing"),
    pytest.param(lambda p, plan: p.write_text(json.dumps({**plan, "layer_levels": [99, 4, 3, 2]})),
                 id="level-above-the-chain"),
    pytest.param(lambda p, plan: p.write_text(json.dumps({**plan, "block": "4"})), id="block-not-an-integer"),
    pytest.param(lambda p, plan: p.write_text("{"), id="truncated"),
    pytest.param(lambda p, plan: p.write_text(json.dumps({**plan, "extra": 1})), id="unknown-field"),
    pytest.param(lambda p, plan: p.write_text(json.dumps({**plan, "rotation_steps": [8, 24]})),
                 id="rotation-step-missing"),
    pytest.param(lambda p, plan: p.write_text(json.dumps({**plan,
                                                          "ranges": [2**64 + 1, *plan["ranges"][1:]]})),
                 id="range-beyond-float64"),
    pytest.param(lambda p, plan: p.write_text(json.dumps({**plan, "params": {**plan["params"],
                                                                              "moduli_bits": ["forty"]}})),
                 id="bits-a-string"),
])
def test_plan_json_is_refused_by_name(write, workspace):
    directory, plan = workspace
    write(directory / "context" / "plan.json", plan)
    with pytest.raises(workflow.WorkflowError, match="run `ckkslab keygen` again"):
        workflow.load_plan(directory)


def test_container_count_and_size_fields_are_checked_before_reading(containers):
    """Declared object count 2^32 - 1 and object size 2^64 - 1: refused at once, nothing allocated."""
    params, model_seeds, _ = containers
    header, _ = mutators.split_container(model_seeds[0])
    head = container.MAGIC + struct.pack("<HI", container.VERSION, len(header)) + header.encode()
    for buf in (head + struct.pack("<I", 2**32 - 1), head + struct.pack("<IQ", 1, 2**64 - 1)):
        with pytest.raises(artifacts.ArtifactError, match="truncated"):
            artifacts.model_from_bytes(buf, params)
