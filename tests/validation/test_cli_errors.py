"""The CLI side of the error catalogue (docs/errors.md, ids ``cli-*``): every misuse of a ``ckkslab``
command ends with ONE line ``ckkslab <command>: error: <what happened and what to do>`` on stderr and exit
code 2, never a traceback. Run through ``validation.cli.main`` in-process, plus a real ``ckkslab`` process.

Workspaces are made once per module with the shipped clinical model (128-bit parameters, N = 16384): A is a
full client/server run on 16 records (plain weights), B has other parameters (--frac-bits 20), C the same
parameters as A but its own keys. ``bug`` entries are ``xfail(strict=True)``, pinned to what happens today.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import h5py
import numpy as np
import pandas as pd
import pytest

from validation.cli import main

ROOT = Path(__file__).resolve().parents[2]
CLINICAL = ROOT / "models" / "clinical"
DOC = ROOT / "docs" / "errors.md"
M = str(CLINICAL)


@dataclass(frozen=True)
class CliEntry:
    """``argv(s)`` must exit 2 with one stderr line matching ``message``."""

    id: str
    misuse: str
    argv: Callable[[SimpleNamespace], list[str]]
    message: str
    bug: tuple[str, type[BaseException]] | None = None


def run(argv: list[str], capsys) -> tuple[int, str]:
    """(exit code, stderr) of ``ckkslab argv`` in-process; argparse's SystemExit becomes its code."""
    capsys.readouterr()
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code
    return code, capsys.readouterr().err


def ok(argv: list[str]) -> None:
    if main(argv) != 0:
        raise RuntimeError(f"setup command failed: ckkslab {' '.join(argv)}")


@pytest.fixture(scope="module")
def s(tmp_path_factory) -> SimpleNamespace:
    t = tmp_path_factory.mktemp("cli")
    a, b, c = (str(t / n) for n in ("a", "b", "c"))
    ok(["--quiet", "keygen", "--model", M, "--workspace", a])
    ok(["--quiet", "encrypt", "--model", M, "--workspace", a, "--plain-weights", "--batch-size", "16"])
    ok(["--quiet", "predict", "--model", M, "--workspace", a])
    ok(["--quiet", "keygen", "--model", M, "--workspace", b, "--frac-bits", "20"])
    ok(["--quiet", "encrypt", "--model", M, "--workspace", b, "--plain-weights", "--batch-size", "16"])
    ok(["--quiet", "keygen", "--model", M, "--workspace", c])
    with h5py.File(CLINICAL / "x_test.h5") as handle:
        records = np.asarray(handle["x_test"][:64])
    ns = SimpleNamespace(t=t, a=a, b=b, c=c, counter=iter(range(10**6)))

    def data(values: np.ndarray) -> str:
        d = t / f"data{next(ns.counter)}"
        d.mkdir()
        with h5py.File(d / "x_test.h5", "w") as handle:
            handle["x_test"] = values
        with h5py.File(d / "y_test.h5", "w") as handle:
            handle["y_test"] = np.zeros((values.shape[0], 1))
        return str(d)

    def copy_ws(src: str) -> str:
        dst = t / f"ws{next(ns.counter)}"
        shutil.copytree(src, dst)
        return str(dst)

    def file(name: str, data_: bytes) -> str:
        path = t / f"f{next(ns.counter)}-{name}"
        path.write_bytes(data_)
        return str(path)

    def model(edit: Callable[[str], str] | None = None, h5: bytes | None = None) -> str:
        d = t / f"model{next(ns.counter)}"
        shutil.copytree(CLINICAL, d, ignore=shutil.ignore_patterns("x_*", "y_*"))
        if edit is not None:
            (d / "model.json").write_text(edit((d / "model.json").read_text()))
        if h5 is not None:
            (d / "model.h5").write_bytes(h5)
        return str(d)

    table = pd.read_csv(ROOT / "data" / "diabetes_dataset.csv.zip", nrows=30)
    ns.data, ns.copy_ws, ns.file, ns.model, ns.records, ns.table = data, copy_ws, file, model, records, table
    return ns


def swap(src: str, dst_ws: str, relative: str) -> str:
    shutil.copy(Path(src) / relative, Path(dst_ws) / relative)
    return dst_ws


def csv_with(s: SimpleNamespace, edit) -> str:
    path = s.t / f"t{next(s.counter)}.csv"
    edit(s.table.copy()).to_csv(path, index=False)
    return str(path)


C = CliEntry
CLI: list[CliEntry] = [
    C("cli-data-missing-csv", "data: --csv path that does not exist",
      lambda s: ["data", "--csv", str(s.t / "absent.csv"), "--out", str(s.t / "o")], r"no table at "
                                                                                     r".*absent\.csv"),
    C("cli-data-not-csv", "data: a binary file as --csv",
      lambda s: ["data", "--csv", s.file("t.csv", bytes(range(256)) * 3), "--out", str(s.t / "o")],
      r"is not a readable CSV"),
    C("cli-data-columns", "data: a table with a renamed column",
      lambda s: ["data", "--csv", csv_with(s, lambda t: t.rename(columns={"bmi": "body_mass"})), "--out",
                 str(s.t / "o")], r"missing columns \['bmi'\], unexpected columns \['body_mass'\]"),
    C("cli-data-bad-zip", "data: a corrupted .zip as --csv",
      lambda s: ["data", "--csv", s.file("t.zip", b"PK\x03\x04" + bytes(60)), "--out", str(s.t / "o")],
      r"t\.zip is not a readable CSV \(or a zip with one CSV\): File is not a zip file"),
    C("cli-unknown-option", "any command: an unknown option or value (argparse prints usage)",
      lambda s: ["demo", "--recipe", "nope"], r"invalid choice: 'nope'"),
    C("cli-evaluate-missing-model", "evaluate: --model directory without model.json",
      lambda s: ["evaluate", "--model", str(s.t / "absent")], r"has no model\.json"),
    C("cli-evaluate-unsupported-layer", "evaluate: a model with a layer HElayers cannot run",
      lambda s: ["evaluate", "--model", s.model(lambda j: j.replace('"class_name": "Dense"',
                                                                    '"class_name": "Conv2D"', 1))],
      r"unsupported layer 'dense' of type 'Conv2D'"),
    C("cli-evaluate-wrong-width", "evaluate: data with another number of features than the model",
      lambda s: ["evaluate", "--model", M, "--data", s.data(np.ones((10, 5)))], r"input must be \(n, 14\)"),
    C("cli-evaluate-nan", "evaluate: NaN records",
      lambda s: ["evaluate", "--model", M, "--data", s.data(np.full((10, 14), np.nan))], r"NaN"),
    C("cli-evaluate-missing-split", "evaluate: --split without its x_<split>.h5",
      lambda s: ["evaluate", "--model", M, "--split", "nosuch"], r"no x_nosuch\.h5"),
    C("cli-evaluate-data-not-hdf5", "evaluate: an x_test.h5 that is not HDF5",
      lambda s: ["evaluate", "--model", M, "--data", not_hdf5(s)], r"x_test\.h5"),
    C("cli-evaluate-layer-not-object", "evaluate: a model.json whose layer list holds a non-object",
      lambda s: ["evaluate", "--model", s.model(lambda j: j.replace('"layers": [', '"layers": [7, ', 1))],
      r"layer 0 is not an object .*; re-export model\.json"),
    C("cli-keygen-frac-bits", "keygen: --frac-bits outside [8, 50]",
      lambda s: ["keygen", "--model", M, "--workspace", str(s.t / "k"), "--frac-bits", "60"],
      r"frac_bits must be in \[8, 50\], got 60"),
    C("cli-keygen-batch-too-large", "keygen: a batch no 128-bit parameters can hold",
      lambda s: ["keygen", "--model", M, "--workspace", str(s.t / "k"), "--batch-size", "100000"],
      r"no 128-bit parameters fit .* lower frac_bits, the batch size, or the depth"),
    C("cli-encrypt-before-keygen", "encrypt: a workspace without keys",
      lambda s: ["encrypt", "--model", M, "--workspace", str(s.t / "empty")], r"run `ckkslab keygen` first"),
    C("cli-encrypt-batch-index", "encrypt: --batch-index past the end of the data",
      lambda s: ["encrypt", "--model", M, "--workspace", s.copy_ws(s.a), "--plain-weights", "--batch-index",
                 "99"], r"batch 99 starts at record \d+, but the data has \d+ records"),
    C("cli-encrypt-oversized", "encrypt: more records than the planned batch",
      lambda s: ["encrypt", "--model", M, "--workspace", s.copy_ws(s.a), "--plain-weights", "--batch-size",
                 "5000"], r"5000 records exceed the planned batch of 4096"),
    C("cli-encrypt-nan", "encrypt: NaN records",
      lambda s: ["encrypt", "--model", M, "--workspace", s.copy_ws(s.a), "--plain-weights", "--data",
                 s.data(np.full((4, 14), np.nan))], r"NaN or infinity"),
    C("cli-encrypt-beyond-range", "encrypt: records beyond the range the keys were planned for",
      lambda s: ["encrypt", "--model", M, "--workspace", s.copy_ws(s.a), "--plain-weights", "--data",
                 s.data(s.records * 100)], r"beyond the planned range .* plan again"),
    C("cli-encrypt-wrong-width", "encrypt: records with another number of features than the model",
      lambda s: ["encrypt", "--model", M, "--workspace", s.copy_ws(s.a), "--plain-weights", "--data",
                 s.data(np.ones((4, 5)))], r"the records have 5 features, the plan's network takes 14"),
    C("cli-predict-before-encrypt", "predict: keys but no encrypted data",
      lambda s: ["predict", "--workspace", s.copy_ws(s.c)], r"run `ckkslab encrypt` first"),
    C("cli-predict-corrupt-bundle", "predict: a corrupted context bundle",
      lambda s: ["predict", "--workspace", corrupt(s.copy_ws(s.a), "context/bundle.ckks")], r"checksum "
                                                                                            r"mismatch"),
    C("cli-predict-other-params", "predict: data encrypted for another context (other parameters)",
      lambda s: ["predict", "--workspace", swap(s.b, s.copy_ws(s.a), "server/data.ckks")],
      r"made with other parameters"),
    C("cli-predict-other-model", "predict --model: a server model that is not the network of the plan",
      lambda s: ["predict", "--workspace", s.copy_ws(s.a), "--model", str(ROOT / "models" / "paper")],
      r"the network has 6 layers, the plan was made for 5: run `ckkslab keygen` with the model the server"),
    C("cli-predict-bundle-other-key", "predict: evaluation keys of another client (same parameters)",
      lambda s: ["predict", "--workspace", swap(s.c, s.copy_ws(s.a), "context/bundle.ckks")],
      r"data.ckks was encrypted under another key than the evaluation keys in .*bundle.ckks"),
    C("cli-decrypt-before-predict", "decrypt: no predictions yet",
      lambda s: ["decrypt", "--workspace", s.copy_ws(s.c)], r"run `ckkslab predict` first"),
    C("cli-decrypt-other-key", "decrypt: predictions encrypted under another client's key (same parameters)",
      lambda s: ["decrypt", "--workspace", swap(s.a, s.copy_ws(s.c), "server/predictions.ckks")],
      r"predictions.ckks were made with other keys than .*secret.key"),
    C("cli-decrypt-not-a-secret-key", "decrypt: client/secret.key replaced by another kind of ckkslab file",
      lambda s: ["decrypt", "--workspace", not_secret(s.copy_ws(s.a))], r"needs the SecretKey, got "
                                                                        r"ServerBundle"),
    C("cli-decrypt-bundle-other-key", "decrypt: context/bundle.ckks of another client (same parameters)",
      lambda s: ["decrypt", "--workspace", swap(s.c, s.copy_ws(s.a), "context/bundle.ckks")],
      r"bundle.ckks was made with other keys than .*secret.key"),
    C("cli-compare-missing-model", "compare: --model directory that does not exist",
      lambda s: ["compare", "--model", str(s.t / "absent")], r"does not exist"),
    C("cli-compare-workers-without-dask", "compare: --workers without --scheduler dask",
      lambda s: ["compare", "--model", M, "--workers", "2"],
      r"--workers and --scheduler-address need --scheduler dask"),
    C("cli-encrypt-too-many-batches", "encrypt: --batches beyond what the data holds",
      lambda s: ["encrypt", "--model", M, "--workspace", s.copy_ws(s.a), "--plain-weights", "--batches",
                 "99"],
      r"99 batches of 4096 need 405504 records, the data has 32768 \(8 batch\(es\)\)"),
    C("cli-predict-dask-one-batch", "predict: --scheduler dask on the one-batch files (server/data.ckks)",
      lambda s: ["predict", "--workspace", s.copy_ws(s.a), "--scheduler", "dask"],
      r"--scheduler dask runs batch files: encrypt them with `ckkslab encrypt --batches N`"),
    C("cli-predict-workers-zero", "predict: --workers 0",
      lambda s: ["predict", "--workspace", s.copy_ws(s.a), "--scheduler", "dask", "--workers", "0"],
      r"--workers must be at least 1, got 0"),
    C("cli-predict-corrupt-batch", "predict: one corrupted batch file among others (they are written)",
      lambda s: ["predict", "--workspace", batch_ws(s, corrupt=1)],
      r"1 batch\(es\) failed, the others are written: batch_0001\.ckks: ArtifactError: .*checksum mismatch"),
    C("cli-decrypt-missing-batch", "decrypt: a batch without predictions (its predict failed or was stopped)",
      lambda s: ["decrypt", "--workspace", batch_ws(s, corrupt=1, predict=True)],
      r"no predictions for batch\(es\) \[1\]: run `ckkslab predict` \(it resumes\)"),
    C("cli-compare-stale-checkpoint", "compare: a checkpoint in --out made with other inputs (here another "
      "--batch-size)",
      lambda s: ["compare", "--model", M, "--engines", "plain", "--batch-size", "8", "--out", compared(s)],
      r"checkpoint .*plain/batch_0000\.npz was made with other inputs \(batch_size 16 \(this run: 8\), other "
      r"records\): rerun with the inputs and options it was made with to resume, or run with --fresh"),
    C("cli-compare-corrupt-checkpoint", "compare: a checkpoint file cut short",
      lambda s: ["compare", "--model", M, "--engines", "plain", "--batch-size", "16", "--out",
                 compared(s, cut=True)],
      r"checkpoint .*plain/batch_0000\.npz is corrupt \(not a readable npz archive .*\): delete it or run "
      r"with --fresh"),
    C("cli-bench-ring-degree", "bench ops: a ring degree that is not a power of two",
      lambda s: ["bench", "ops", "--ring-degree", "100"], r"ring_degree must be a power of two"),
]


def not_hdf5(s: SimpleNamespace) -> str:
    d = Path(s.data(np.ones((4, 14))))
    (d / "x_test.h5").write_bytes(b"x,y\n1,2\n")
    return str(d)


def batch_ws(s: SimpleNamespace, corrupt: int, predict: bool = False) -> str:
    """A copy of workspace A with 2 batches of 8 records (plain weights), batch ``corrupt`` flipped inside
    its ciphertexts, predicted already (the other batch written) if ``predict``."""
    ws = s.copy_ws(s.a)
    ok(["--quiet", "encrypt", "--model", M, "--workspace", ws, "--plain-weights", "--batches", "2",
        "--batch-size", "8"])
    path = Path(ws) / "server" / "data" / f"batch_{corrupt:04d}.ckks"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 1
    path.write_bytes(bytes(data))
    if predict:
        main(["--quiet", "predict", "--workspace", ws])
    return ws


def compared(s: SimpleNamespace, cut: bool = False) -> str:
    """An --out directory where `compare --engines plain --batch-size 16` ran (one batch of the clinical
    records), its checkpoint file cut to 100 bytes if ``cut``."""
    out = s.t / f"compare{next(s.counter)}"
    ok(["--quiet", "compare", "--model", M, "--engines", "plain", "--batch-size", "16", "--out", str(out)])
    if cut:
        path = out / "batches" / "plain" / "batch_0000.npz"
        path.write_bytes(path.read_bytes()[:100])
    return str(out)


def corrupt(ws: str, relative: str) -> str:
    path = Path(ws) / relative
    data = bytearray(path.read_bytes())
    data[1000] ^= 1
    path.write_bytes(bytes(data))
    return ws


def not_secret(ws: str) -> str:
    shutil.copy(Path(ws) / "context" / "bundle.ckks", Path(ws) / "client" / "secret.key")
    return ws


def marks(entry: CliEntry):
    if entry.bug is None:
        return ()
    reason, today = entry.bug
    return pytest.mark.xfail(strict=True, reason=f"BUG: {reason}", raises=today)


@pytest.mark.parametrize("entry", [pytest.param(e, id=e.id, marks=marks(e)) for e in CLI])
def test_misuse_exits_2_with_one_line_and_no_traceback(entry: CliEntry, s: SimpleNamespace, capsys):
    argv = entry.argv(s)
    code, err = run(argv, capsys)
    assert code == 2, f"ckkslab {' '.join(argv)} exited {code}: {err!r}"
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    command = argv[0]
    assert lines[-1].startswith(f"ckkslab {command}: error: "), err
    if entry.id != "cli-unknown-option":  # argparse adds its usage line above the error
        assert len(lines) == 1, err
    assert re.search(entry.message, lines[-1]), f"{entry.id}: {lines[-1]!r} does not say {entry.message!r}"


def test_a_real_ckkslab_process_prints_one_line_and_exits_2(tmp_path):
    """The installed console script, not main(): exit status 2, one stderr line, no traceback."""
    script = Path(sys.executable).parent / "ckkslab"
    command = [str(script)] if script.exists() else [sys.executable, "-m", "validation.cli"]
    done = subprocess.run([*command, "evaluate", "--model", str(tmp_path / "absent")], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip() == f"ckkslab evaluate: error: {tmp_path / 'absent'} has no model.json"
    assert "Traceback" not in done.stderr and done.stdout == ""


def test_a_real_ckkslab_process_on_a_corrupted_data_file(tmp_path):
    (tmp_path / "x_test.h5").write_bytes(b"x,y\n1,2\n")
    shutil.copy(CLINICAL / "y_test.h5", tmp_path / "y_test.h5")
    script = Path(sys.executable).parent / "ckkslab"
    command = [str(script)] if script.exists() else [sys.executable, "-m", "validation.cli"]
    done = subprocess.run([*command, "evaluate", "--model", M, "--data", str(tmp_path)], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr[-300:]


def test_docs_list_every_cli_entry():
    text = DOC.read_text()
    rows = {m.group(1): m.group(0) for m in re.finditer(r"^\|\s*`(cli-[a-z0-9-]+)`.*$", text, re.MULTILINE)}
    assert set(rows) == {e.id for e in CLI}, sorted(set(rows) ^ {e.id for e in CLI})
    for entry in CLI:
        assert ("BUG" in rows[entry.id]) == (entry.bug is not None), f"{entry.id}: BUG differs from the docs"
