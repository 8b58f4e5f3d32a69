"""Targets of the files a user brings: the Keras model directory (model.json, model.h5, ckkslab.json, through
``nn.model.load_network``), HDF5 x/y (``nn.data.load_xy``) and CSV tables, plain or zipped
(``nn.table.load_table``). None of these carries a checksum: an accepted input that gives a valid object other
than the seed's is faithful, one that gives the seed's is ignorable.
"""

from __future__ import annotations

import io
import json
import math
import shutil
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from nn.data import DataSchemaError, load_xy, preprocess, save_xy
from nn.model import Dense, ModelFormatError, PlainNetwork, Polynomial, load_network
from nn.table import load_table

from .mutators import json_edge_cases
from .oracle import ROOT, Loader, workdir

SHIPPED_MODEL = ROOT / "models" / "clinical"
SHIPPED_CSV = ROOT / "data" / "diabetes_dataset.csv.zip"


# ----- Keras model directory --------------------------------------------------------------------------------


def network_problems(net: PlainNetwork) -> str:
    """'' if the network is finite and runs."""
    for layer in net.layers:
        arrays = [layer.weights, layer.bias] if isinstance(layer, Dense) else [np.asarray(layer.coeffs)]
        if any(not np.all(np.isfinite(a)) for a in arrays):
            return f"layer {layer.name!r} holds NaN or infinite values"
    if not math.isfinite(net.decision.threshold):
        return "threshold not finite"
    probe = np.linspace(0, 1, 2 * net.input_dim).reshape(2, net.input_dim)
    with np.errstate(all="ignore"):
        out = net.forward(probe)
    if out.shape != (2, net.output_dim):
        return f"forward gives shape {out.shape}"
    return ""


def same_network(a: PlainNetwork, b: PlainNetwork) -> bool:
    if (a.input_dim, a.output_dim, a.decision, len(a.layers)) != (b.input_dim, b.output_dim, b.decision,
                                                                  len(b.layers)):
        return False
    for x, y in zip(a.layers, b.layers, strict=True):
        if type(x) is not type(y):
            return False
        if isinstance(x, Dense) and not (np.array_equal(x.weights, y.weights)
                                         and np.array_equal(x.bias, y.bias)):
            return False
        if isinstance(x, Polynomial) and x.coeffs != y.coeffs:
            return False
    return True


def keras3_files(directory: Path) -> dict[str, bytes]:
    """A small Keras 3 layout model (``layers/<name>/vars/<i>``), written with h5py."""
    import h5py

    rng = np.random.default_rng(8)
    layers = [{"class_name": "InputLayer", "config": {"batch_shape": [None, 3], "name": "input_layer"}},
              {"class_name": "Dense", "config": {"name": "dense", "units": 2, "activation": "linear"}},
              {"class_name": "SquareActivation", "config": {"name": "square_activation"}},
              {"class_name": "Dense", "config": {"name": "dense_1", "units": 1, "activation": None}}]
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "model.json").write_text(json.dumps({"module": "keras", "class_name": "Sequential",
                                                      "config": {"name": "sequential", "layers": layers}}))
    with h5py.File(directory / "model.h5", "w", track_order=True) as handle:
        shapes_of = {"dense": ((3, 2), (2,)), "dense_1": ((2, 1), (1,)), "square_activation": ()}
        for name, shapes in shapes_of.items():
            group = handle.create_group(f"layers/{name}/vars")
            group.attrs["name"] = name
            for i, shape in enumerate(shapes):
                values = rng.uniform(-1, 1, shape).astype(np.float32)
                group.create_dataset(str(i), data=values, track_times=False)
    (directory / "ckkslab.json").write_text(json.dumps({"output": "logit", "threshold": 0.25}))
    return {name: (directory / name).read_bytes() for name in ("model.json", "model.h5", "ckkslab.json")}


def h5_edge_cases_model(directory: Path) -> list[tuple[str, bytes]]:
    """Crafted model.h5 files for the shipped model.json: legal HDF5, wrong content."""
    import h5py

    cases = []
    names = ("dense", "dense_1", "dense_2")

    def build(name: str, fill: Callable[[h5py.File], None]) -> None:
        path = directory / f"edge-{name}.h5"
        with h5py.File(path, "w") as handle:
            fill(handle)
        cases.append((name, path.read_bytes()))

    def keras2(handle: h5py.File, make: Callable[[h5py.Group, str, str], None]) -> None:
        handle.attrs["layer_names"] = np.array([n.encode() for n in names])
        for n in names:
            g = handle.create_group(n)
            g.attrs["weight_names"] = np.array([f"{n}/kernel:0".encode(), f"{n}/bias:0".encode()])
            make(g, f"{n}/kernel:0", f"{n}/bias:0")

    shipped = load_network(SHIPPED_MODEL)
    dims = {layer.name: layer.weights.shape for layer in shipped.layers if isinstance(layer, Dense)}

    def proper(g: h5py.Group, k: str, b: str) -> None:
        shape = dims[g.name.strip("/")]
        g[k] = np.zeros(shape, np.float32)
        g[b] = np.zeros(shape[1], np.float32)

    build("weight-name-without-dataset", lambda h: keras2(h, lambda g, k, b: g.create_dataset(k, data=[1.0])))
    build("kernel-strings", lambda h: keras2(h, lambda g, k, b: (g.create_dataset(k, data=np.array(
        [b"a", b"b"])), g.create_dataset(b, data=[0.0]))))
    build("kernel-is-group", lambda h: keras2(h, lambda g, k, b: (g.create_group(k),
                                                                  g.create_dataset(b, data=[0.0]))))
    build("huge-sparse-kernel", lambda h: keras2(h, lambda g, k, b: (g.create_dataset(
        k, shape=(2**40, 20), dtype="f8", chunks=(1, 20)), g.create_dataset(b, data=np.zeros(20)))))
    build("large-sparse-kernel", lambda h: keras2(h, lambda g, k, b: (g.create_dataset(
        k, shape=(2**20, 20), dtype="f8", chunks=(1024, 20)), g.create_dataset(b, data=np.zeros(20)))))
    build("kernel-nan", lambda h: keras2(h, lambda g, k, b: (proper(g, k, b), g[k].__setitem__(
        (0, 0), np.nan))))
    build("kernel-compound", lambda h: keras2(h, lambda g, k, b: (g.create_dataset(k, data=np.zeros(
        3, dtype=[("a", "f8"), ("b", "i4")])), g.create_dataset(b, data=[0.0]))))
    build("layer-names-not-strings", lambda h: h.attrs.__setitem__("layer_names", np.arange(3)))
    build("empty-file", lambda h: None)
    build("soft-link-dangling", lambda h: keras2(h, lambda g, k, b: (
        g.__setitem__(k, h5py.SoftLink("/nowhere")), g.create_dataset(b, data=[0.0]))))
    shipped_h5 = bytearray((SHIPPED_MODEL / "model.h5").read_bytes())
    shipped_h5[2472:2480] = bytes(8)  # HDF5 1.14.6 loops forever on this one (found by the fuzzing)
    cases.append(("shipped-8-zero-bytes-at-2472", bytes(shipped_h5)))
    shipped_h5 = bytearray((SHIPPED_MODEL / "model.h5").read_bytes())
    shipped_h5[11233] = 0x05  # was 0x01: h5py segfaults reading an attribute (found by the fuzzing)
    cases.append(("shipped-byte-11233-set-to-5", bytes(shipped_h5)))
    build("scalar-kernel", lambda h: keras2(h, lambda g, k, b: (g.create_dataset(k, data=1.0),
                                                               g.create_dataset(b, data=[0.0]))))
    return cases


def model_loaders() -> list[Loader]:
    work = workdir()
    files = ("model.json", "model.h5", "ckkslab.json")
    shipped = {name: (SHIPPED_MODEL / name).read_bytes() for name in files}
    seeds_files = [shipped, keras3_files(work / "k3-source")]
    dirs = []
    for i, files in enumerate(seeds_files):
        d = work / f"seed{i}"
        d.mkdir()
        for name, data in files.items():
            (d / name).write_bytes(data)
        dirs.append(d)
    reference = [load_network(d) for d in dirs]
    edge_h5 = h5_edge_cases_model(work)

    def make(target: str, kind: str) -> Loader:
        def load(i: int, buf: bytes) -> Any:
            path = dirs[i] / target
            path.write_bytes(buf)
            try:
                return load_network(dirs[i])
            finally:
                path.write_bytes(seeds_files[i][target])

        def check(i: int, buf: bytes, net: Any) -> str:
            problem = network_problems(net)
            if problem:
                return f"invalid network: {problem}"
            return "ignorable" if same_network(net, reference[i]) else "faithful"

        edges: list[tuple[int, str, bytes]] = []
        if target == "model.h5":
            edges = [(0, name, data) for name, data in edge_h5]
        elif target in ("model.json", "ckkslab.json"):
            edges = [(0, name, data) for name, data in json_edge_cases()]
        return Loader(f"nn.{kind}", [f[target] for f in seeds_files], load, (ModelFormatError,), check,
                      kind="binary" if target == "model.h5" else "json", edge_cases=edges)

    loaders = [make("model.json", "model_json"), make("model.h5", "model_h5"),
               make("ckkslab.json", "model_meta")]
    loaders[0].cleanup = lambda: shutil.rmtree(work, ignore_errors=True)
    return loaders


# ----- HDF5 data and CSV ------------------------------------------------------------------------------------


def data_loader() -> Loader:
    import h5py

    work = workdir()
    rng = np.random.default_rng(4)
    sources = [(rng.uniform(0, 1, (8, 3)), rng.integers(0, 2, (8, 1)).astype(float)),
               (rng.uniform(0, 1, (5, 14)), np.ones((5, 1)))]
    seeds, y_files, dirs = [], [], []
    for i, (x, y) in enumerate(sources):
        d = work / f"seed{i}"
        save_xy(d, "test", x, y)
        seeds.append((d / "x_test.h5").read_bytes())
        y_files.append((d / "y_test.h5").read_bytes())
        dirs.append(d)

    def load(i: int, buf: bytes) -> Any:
        (dirs[i] / "x_test.h5").write_bytes(buf)
        return load_xy(dirs[i], "test")

    def check(i: int, buf: bytes, xy: Any) -> str:
        x, y = xy
        if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
            return "accepted NaN or infinite values"
        if not np.all(np.isin(y, (0.0, 1.0))):
            return "accepted labels other than 0/1"
        same = x.shape == sources[i][0].shape and np.array_equal(x, sources[i][0])
        return "ignorable" if same else "faithful"

    edges = []
    for name, fill in h5_data_edge_fills().items():
        path = work / f"edge-{name}.h5"
        with h5py.File(path, "w") as handle:
            fill(handle)
        edges.append((0, name, path.read_bytes()))
    return Loader("nn.data_h5", seeds, load, (DataSchemaError,), check, edge_cases=edges,
                  cleanup=lambda: shutil.rmtree(work, ignore_errors=True))


def h5_data_edge_fills() -> dict[str, Callable[[Any], Any]]:
    """Legal HDF5 files with the wrong content for x_test.h5 (the seed's y_test.h5 has 8 rows)."""
    import h5py

    return {
        "wrong-dataset-name": lambda h: h.create_dataset("x", data=np.zeros((8, 3))),
        "strings": lambda h: h.create_dataset("x_test", data=np.array([b"a"] * 8)),
        "group": lambda h: h.create_group("x_test"),
        "three-dims": lambda h: h.create_dataset("x_test", data=np.zeros((8, 3, 2))),
        "scalar": lambda h: h.create_dataset("x_test", data=1.0),
        "compound": lambda h: h.create_dataset("x_test", data=np.zeros(8, dtype=[("a", "f8"), ("b", "i4")])),
        "huge-sparse": lambda h: h.create_dataset("x_test", shape=(2**40, 3), dtype="f8", chunks=(1024, 3)),
        "large-sparse": lambda h: h.create_dataset("x_test", shape=(2**23, 3), dtype="f8", chunks=(4096, 3)),
        "nan": lambda h: h.create_dataset("x_test", data=np.full((8, 3), np.nan)),
        "dangling-link": lambda h: h.__setitem__("x_test", h5py.SoftLink("/nowhere")),
        "external-link": lambda h: h.__setitem__("x_test", h5py.ExternalLink("/nonexistent.h5", "/x")),
        "empty-rows": lambda h: h.create_dataset("x_test", shape=(0, 3), dtype="f8"),
        "null-dataspace": lambda h: h.create_dataset("x_test", data=h5py.Empty("f8")),
    }


def csv_seed_tables() -> list[str]:
    import pandas as pd

    table = pd.read_csv(SHIPPED_CSV, nrows=12)
    prediction = table.rename(columns={"hbA1c_level": "HbA1c_level"})[
        ["gender", "age", "hypertension", "heart_disease", "smoking_history", "bmi", "HbA1c_level",
         "blood_glucose_level", "diabetes"]]
    return [t.to_csv(index=False, lineterminator="\n") for t in (table, prediction)]


def table_check(seed_tables: list[Any]) -> Callable[[int, bytes, Any], str]:
    def check(i: int, buf: bytes, result: Any) -> str:
        table, schema = result
        try:
            x, y, _ = preprocess(table, schema)
        except DataSchemaError:
            return "load_table accepted a table that preprocess refuses"
        if not np.all(np.isfinite(x)):
            return "accepted NaN or infinite features"
        return "ignorable" if table.equals(seed_tables[i]) else "faithful"

    return check


def csv_loaders() -> list[Loader]:
    work = workdir()
    texts = csv_seed_tables()
    seeds = [t.encode() for t in texts]
    seed_tables = [load_table(_write(work / f"seed{i}.csv", s))[0] for i, s in enumerate(seeds)]

    def load_csv(i: int, buf: bytes) -> Any:
        return load_table(_write(work / "input.csv", buf))

    zips = []
    for i, s in enumerate(seeds):
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
            z.writestr(f"table{i}.csv", s)
        zips.append(out.getvalue())

    def load_zip(i: int, buf: bytes) -> Any:
        return load_table(_write(work / "input.zip", buf))

    edges = [(0, "empty", b""), (0, "header-only", seeds[0].split(b"\n")[0] + b"\n"),
             (0, "binary", bytes(range(256)) * 4), (0, "utf16", texts[0].encode("utf-16")),
             (0, "inf-cell", seeds[0].replace(b",27.32,", b",inf,", 1)),
             (0, "huge-cell", seeds[0].replace(b",27.32,", b"," + b"9" * 400 + b",", 1))]
    zip_edges = [(0, "two-files", _zip({"a.csv": seeds[0], "b.csv": seeds[1]})), (0, "no-file", _zip({})),
                 (0, "not-csv-inside", _zip({"a.csv": bytes(range(256)) * 4}))]
    return [Loader("nn.csv", seeds, load_csv, (DataSchemaError,), table_check(seed_tables), kind="csv",
                   edge_cases=edges, cleanup=lambda: shutil.rmtree(work, ignore_errors=True)),
            Loader("nn.csv_zip", zips, load_zip, (DataSchemaError,), table_check(seed_tables),
                   edge_cases=zip_edges)]


def _zip(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for name, data in files.items():
            z.writestr(name, data)
    return out.getvalue()


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path
