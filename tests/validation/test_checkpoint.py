"""``ckkslab compare`` keeps each engine's finished batches on disk (``validation.checkpoint``): a rerun loads
them instead of computing them (the files are not rewritten) and the report sums every batch; Ctrl-C in a
real process leaves only whole files and the same command resumes; a checkpoint of other inputs or a
corrupt file is refused by name, and ``--fresh`` discards the checkpoint."""

from __future__ import annotations

import io
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from nn.streaming import add_costs, check_each_once
from validation.checkpoint import BATCH_FILE, CheckpointError, batch_path, checkpoint_dir, discard
from validation.cli import main
from validation.compare import CompareOptions, compare
from validation.report import save_comparison

BATCH = 16
PER_BATCH_STAGES = ("encrypt_data", "predict", "decrypt")


@pytest.fixture(scope="module")
def tiny(tiny_model) -> Path:
    return tiny_model(4 * BATCH)


def options(model: Path, out: Path, **kw) -> CompareOptions:
    args = dict(model_dir=model, data_dir=model, out=out, batch_size=BATCH, batches=None,
                engines=("plain", "ckkslab"), frac_bits=20, quiet=True)
    args.update(kw)
    return CompareOptions(**args)


def stats(folder: Path) -> dict[str, tuple[int, int]]:
    """File name -> (inode, mtime in ns) of every file in ``folder``: a rewritten file changes both."""
    return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in sorted(folder.iterdir())}


def stored(folder: Path) -> dict[int, dict]:
    """Batch index -> the arrays and meta of each checkpoint file in ``folder``, read with numpy directly."""
    found = {}
    for path in sorted(folder.glob("batch_*.npz")):
        with np.load(path, allow_pickle=False) as archive:
            found[int(BATCH_FILE.fullmatch(path.name).group(1))] = {
                "outputs": archive["outputs"], "record_ids": archive["record_ids"],
                "meta": json.loads(str(archive["meta"]))}
    return found


def summed_costs(folder: Path) -> dict[str, dict[str, float]]:
    totals: dict[str, dict[str, float]] = {}
    for batch in stored(folder).values():
        add_costs(totals, batch["meta"]["costs"])
    return totals


def test_a_rerun_with_more_batches_loads_the_finished_ones_and_sums_every_batch(tiny, tmp_path):
    """2 batches, then all 4 into the same --out: batches 0 and 1 are loaded (their files untouched, their
    outputs reused bit for bit), 2 and 3 computed; the per-batch stage totals are the sums of the four files'
    costs, and the report says what was computed and what loaded."""
    out = tmp_path / "out"
    first = compare(options(tiny, out, batches=2))
    folder = checkpoint_dir(out) / "ckkslab"
    before = stats(folder)
    assert sorted(before) == ["batch_0000.npz", "batch_0001.npz", "run.json"]
    ckkslab = first.runs["ckkslab"]
    assert ckkslab.batches_computed == [0, 1] and ckkslab.batches_loaded == []
    costs = summed_costs(folder)
    for stage in PER_BATCH_STAGES:  # the engine's totals are the sums of its per-batch shares
        assert ckkslab.timings_s[stage] == pytest.approx(costs["timings_s"][stage], rel=1e-9)
    assert ckkslab.sizes_bytes["data"] == costs["sizes_bytes"]["data"]

    again = compare(options(tiny, out))
    ckkslab, plain = again.runs["ckkslab"], again.runs["plain"]
    assert (ckkslab.batches_computed, ckkslab.batches_loaded) == ([2, 3], [0, 1])
    assert (plain.batches_computed, plain.batches_loaded) == ([2, 3], [0, 1])
    after = stats(folder)
    batch_files = [name for name in before if name != "run.json"]
    assert {name: after[name] for name in batch_files} == {name: before[name] for name in batch_files}
    assert len(after) == 5 and after["run.json"] != before["run.json"]  # the record of the whole set
    np.testing.assert_array_equal(ckkslab.outputs[: 2 * BATCH], first.runs["ckkslab"].outputs)
    np.testing.assert_array_equal(plain.outputs, again.inputs.network.forward(again.inputs.x))
    assert np.max(np.abs(ckkslab.outputs - plain.outputs)) < 2.0**-12
    costs = summed_costs(folder)
    for stage in PER_BATCH_STAGES:
        assert ckkslab.timings_s[stage] == pytest.approx(costs["timings_s"][stage], rel=1e-9)
    assert ckkslab.sizes_bytes["predictions"] == costs["sizes_bytes"]["predictions"]
    assert ckkslab.details["stage_seconds"] == pytest.approx(costs["stage_seconds"], rel=1e-9)
    assert ckkslab.timings_s["keygen"] > 0 and ckkslab.timings_s["encrypt_model"] > 0  # made again
    report = save_comparison(again)
    assert len(report["per_batch_agreement"]) == 4 and report["data"]["records_compared"] == 4 * BATCH
    assert report["engines"]["ckkslab"]["batches_loaded"] == [0, 1]
    text = (out / "report.md").read_text()
    assert "plain: 2 computed, 2 loaded; ckkslab: 2 computed, 2 loaded" in text
    assert "keygen and encrypt_model are this run's" in text and "| CPU, whole call (this run) |" in text


def test_a_rerun_of_a_complete_run_runs_nothing_and_reports_the_same_figures(tiny, tmp_path, capsys):
    """Every batch and the run record on disk: no engine runs (no keys, no server), every figure is the
    first run's (keygen and peak RSS included), no file is rewritten, and the report says so."""
    out = tmp_path / "out"
    first = compare(options(tiny, out, batches=2))
    folder = checkpoint_dir(out) / "ckkslab"
    before = stats(folder)
    capsys.readouterr()
    again = compare(options(tiny, out, batches=2))
    assert "ckkslab: every batch and the run's costs loaded from" in capsys.readouterr().err
    assert again.kernels is None  # no kernel made ready for an engine that does not run
    for name in ("plain", "ckkslab"):
        ours, theirs = again.runs[name], first.runs[name]
        assert ours.replayed and not theirs.replayed
        assert (ours.batches_computed, ours.batches_loaded) == ([], [0, 1])
        np.testing.assert_array_equal(ours.outputs, theirs.outputs)
        assert ours.timings_s == pytest.approx(theirs.timings_s, rel=1e-12)
        assert (ours.sizes_bytes, ours.peak_rss_bytes, ours.cpu_s) == (theirs.sizes_bytes,
                                                                      theirs.peak_rss_bytes, theirs.cpu_s)
        assert ours.params == json.loads(json.dumps(theirs.params))
    assert stats(folder) == before
    save_comparison(again)
    text = (out / "report.md").read_text()
    assert "Not run at all: plain, ckkslab." in text
    assert "plain: not run (its checkpoint was complete); ckkslab: not run" in text


def test_without_its_run_record_a_complete_rerun_makes_keys_and_computes_no_batch(tiny, tmp_path):
    """run.json deleted (or from before it existed): the engine runs again but computes no batch and
    starts no server; keygen is this run's; the record is written again."""
    out = tmp_path / "out"
    first = compare(options(tiny, out, batches=1))
    record = checkpoint_dir(out) / "ckkslab" / "run.json"
    record.unlink()
    again = compare(options(tiny, out, batches=1))
    ckkslab = again.runs["ckkslab"]
    assert not ckkslab.replayed and (ckkslab.batches_computed, ckkslab.batches_loaded) == ([], [0])
    assert ckkslab.params["scheduler"] == "none: every batch was skipped"
    np.testing.assert_array_equal(ckkslab.outputs, first.runs["ckkslab"].outputs)
    assert ckkslab.timings_s["predict"] == pytest.approx(first.runs["ckkslab"].timings_s["predict"])
    assert ckkslab.timings_s["keygen"] != first.runs["ckkslab"].timings_s["keygen"] and record.is_file()


def test_a_run_record_that_no_longer_matches_its_batches_is_not_used(tiny, tmp_path):
    """A batch computed again after the record was written (its costs differ): the engine runs, loads the
    batches and writes a record that matches them."""
    out = tmp_path / "out"
    compare(options(tiny, out, batches=1, engines=("plain",)))
    folder = checkpoint_dir(out) / "plain"
    record = json.loads((folder / "run.json").read_text())
    record["batch_costs"]["timings_s"]["predict"] += 1.0
    (folder / "run.json").write_text(json.dumps(record))
    again = compare(options(tiny, out, batches=1, engines=("plain",)))
    assert not again.runs["plain"].replayed and again.runs["plain"].batches_loaded == [0]
    rewritten = json.loads((folder / "run.json").read_text())["batch_costs"]["timings_s"]["predict"]
    assert rewritten == pytest.approx(record["batch_costs"]["timings_s"]["predict"] - 1, abs=1e-9)
    assert rewritten == summed_costs(folder)["timings_s"]["predict"]  # the record matches its batches again


@pytest.mark.parametrize("damage, message", [
    (lambda text: text[: len(text) // 2], r"run\.json is corrupt \(.*\): delete it or run with --fresh"),
    (lambda text: text.replace('"peak_rss_bytes": ', '"peak_rss_bytes": 0.5, "x": '),
     r"run\.json is corrupt"),
    (lambda text: text.replace('"frac_bits": 20', '"frac_bits": 24'),
     r"run\.json was made with other inputs \(frac_bits 24 \(this run: 20\)\)"),
])
def test_a_corrupt_or_foreign_run_record_is_refused_by_name(tiny, tmp_path, damage, message):
    out = tmp_path / "out"
    compare(options(tiny, out, batches=1))
    path = checkpoint_dir(out) / "ckkslab" / "run.json"
    path.write_text(damage(path.read_text()))
    with pytest.raises(CheckpointError, match=message):
        compare(options(tiny, out, batches=1))


def test_a_checkpoint_of_other_inputs_is_refused_before_any_engine_runs_and_fresh_discards_it(tiny, tmp_path):
    out = tmp_path / "out"
    compare(options(tiny, out, batches=1))
    folder = checkpoint_dir(out) / "ckkslab"
    before = stats(folder)
    with pytest.raises(CheckpointError, match=r"ckkslab/batch_0000\.npz was made with other inputs "
                                              r"\(frac_bits 20 \(this run: 24\)\): rerun .* --fresh"):
        compare(options(tiny, out, batches=1, frac_bits=24))
    with pytest.raises(CheckpointError, match=r"plain/batch_0000\.npz was made with other inputs "
                                              r"\(batch_size 16 \(this run: 8\), other records\)"):
        compare(options(tiny, out, batches=1, batch_size=8))
    assert stats(folder) == before  # refused: nothing was overwritten
    fresh = compare(options(tiny, out, batches=1, frac_bits=24, fresh=True))
    assert fresh.runs["ckkslab"].batches_computed == [0] and not fresh.runs["ckkslab"].batches_loaded
    assert stats(folder) != before
    assert stored(folder)[0]["meta"]["key"]["frac_bits"] == 24


def test_threads_and_scheduler_are_not_part_of_the_key(tiny, tmp_path):
    """They change how fast, not what: a rerun on other threads resumes."""
    out = tmp_path / "out"
    compare(options(tiny, out, batches=1, engines=("plain",)))
    again = compare(options(tiny, out, batches=1, engines=("plain",), threads=2))
    assert again.runs["plain"].batches_loaded == [0]


def _truncated(data: bytes) -> bytes:
    return data[: len(data) // 2]


def _rewritten(data: bytes, **changes) -> bytes:
    """The same npz archive with some arrays replaced."""
    with np.load(io.BytesIO(data), allow_pickle=False) as archive:
        arrays = {name: archive[name] for name in archive.files}
    arrays.update(changes)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


@pytest.mark.parametrize(("spoil", "reason"), [
    (_truncated, r"not a readable npz archive"),
    (lambda data: b"not an archive at all" * 10, r"not a readable npz archive"),
    (lambda data: _rewritten(data, meta=np.array("{not json")), r"meta is not valid JSON"),
    (lambda data: _rewritten(data, meta=np.array(json.dumps({"format": 1}))),
     r"meta lacks \['key', 'costs'\]"),
    (lambda data: _rewritten(data, record_ids=np.arange(BATCH) + 1), r"record_ids are not those of batch 1"),
    (lambda data: _rewritten(data, outputs=np.zeros((3, 1))), r"outputs must be float64 of shape \(16, k\)"),
])
def test_a_corrupt_checkpoint_file_is_refused_by_name(tiny, tmp_path, spoil, reason):
    out = tmp_path / "out"
    compare(options(tiny, out, batches=2, engines=("plain",)))
    path = batch_path(checkpoint_dir(out) / "plain", 1)
    path.write_bytes(spoil(path.read_bytes()))
    with pytest.raises(CheckpointError, match=rf"checkpoint .*plain/batch_0001\.npz is corrupt "
                                              rf"\({reason}.*\): delete it or run with --fresh$"):
        compare(options(tiny, out, batches=2, engines=("plain",)))


def test_fresh_removes_only_the_checkpoint_files(tiny, tmp_path):
    out = tmp_path / "out"
    compare(options(tiny, out, batches=2, engines=("plain",)))
    notes = checkpoint_dir(out) / "plain" / "notes.txt"
    notes.write_text("mine")
    (checkpoint_dir(out) / "plain" / ".batch_0007.npz.123.tmp").write_bytes(b"left by a killed run")
    (checkpoint_dir(out) / "plain" / ".run.json.123.tmp").write_bytes(b"left by a killed run")
    assert discard(out) == 5  # two batches, run.json and the two temporary files
    assert sorted(p.name for p in notes.parent.iterdir()) == ["notes.txt"]
    notes.unlink()
    assert discard(out) == 0 and not checkpoint_dir(out).exists()


def test_ctrl_c_keeps_the_finished_batches_and_the_same_command_resumes(tiny_model, tmp_path, capsys):
    """SIGINT to a real ``ckkslab compare --batches all`` once ckkslab's first batch file is written: it exits
    130 saying how to resume, every file left is whole (no temporary file). The same command then loads
    those batches (their files untouched) and computes the rest; the merged outputs equal an uninterrupted
    run's exactly for plain and within CKKS noise for ckkslab, and each record id is stored exactly once."""
    batches = 24
    model, out = tiny_model(batches * BATCH), tmp_path / "out"
    argv = ["--quiet", "compare", "--model", str(model), "--batch-size", str(BATCH), "--batches", "all",
            "--engines", "plain,ckkslab", "--frac-bits", "20", "--out", str(out)]
    folder = checkpoint_dir(out) / "ckkslab"
    process = subprocess.Popen([sys.executable, "-m", "validation.cli", *argv], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 180
    while not batch_path(folder, 0).is_file() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert f"ckkslab compare: interrupted; the batches finished so far are kept in {checkpoint_dir(out)}: " \
           "rerun the same command to resume" in err
    left = stats(folder)
    assert all(BATCH_FILE.fullmatch(name) for name in left), sorted(left)  # no temporary file
    done = sorted(int(BATCH_FILE.fullmatch(name).group(1)) for name in left)
    assert 1 <= len(done) < batches

    capsys.readouterr()
    assert main(argv) == 0
    assert f"ckkslab: resuming, {len(done)} of {batches} batch(es) loaded" in capsys.readouterr().err
    report = json.loads((out / "report.json").read_text())
    ckkslab = report["engines"]["ckkslab"]
    assert ckkslab["batches_loaded"] == done
    assert sorted(ckkslab["batches_computed"] + done) == list(range(batches))
    assert report["engines"]["plain"]["batches_loaded"] == list(range(batches))  # plain had finished
    assert report["engines"]["plain"]["replayed"] and not ckkslab["replayed"]
    after = stats(folder)
    assert {name: after[name] for name in left} == left and len(after) == batches + 1  # and run.json
    files = stored(folder)
    check_each_once(np.concatenate([files[i]["record_ids"] for i in sorted(files)]), "the stored batches")

    assert main([*argv[:-1], str(tmp_path / "uninterrupted")]) == 0
    resumed = np.load(out / "outputs.npz")
    whole = np.load(tmp_path / "uninterrupted" / "outputs.npz")
    np.testing.assert_array_equal(resumed["plain"], whole["plain"])
    assert np.max(np.abs(resumed["ckkslab"] - whole["ckkslab"])) < 2.0**-11
    assert np.max(np.abs(resumed["ckkslab"] - resumed["plain"])) < 2.0**-12
    for i in done:
        np.testing.assert_array_equal(resumed["ckkslab"][i * BATCH : (i + 1) * BATCH], files[i]["outputs"])


@pytest.mark.helayers
def test_helayers_batches_are_kept_and_resumed(tiny, tmp_path):
    """HElayers on 2 batches, then all 4: batches 0 and 1 loaded (files untouched), its CPU seconds per stage
    summed over the four files, its outputs within HElayers' precision of plaintext."""
    out = tmp_path / "out"
    engines = ("plain", "helayers")
    compare(options(tiny, out, batches=2, engines=engines))
    folder = checkpoint_dir(out) / "helayers"
    before = stats(folder)
    again = compare(options(tiny, out, engines=engines))
    helayers = again.runs["helayers"]
    assert (helayers.batches_computed, helayers.batches_loaded) == ([2, 3], [0, 1])
    after = stats(folder)
    batch_files = [name for name in before if name != "run.json"]
    assert {name: after[name] for name in batch_files} == {name: before[name] for name in batch_files}
    assert len(after) == 5 and after["run.json"] != before["run.json"]  # the record of the whole set
    assert np.max(np.abs(helayers.outputs - again.runs["plain"].outputs)) < 1e-4
    costs = summed_costs(folder)
    for stage in PER_BATCH_STAGES:
        assert helayers.timings_s[stage] == pytest.approx(costs["timings_s"][stage], rel=1e-9)
        cpu = helayers.details["cpu_timings_s"][stage]
        assert cpu == pytest.approx(costs["cpu_timings_s"][stage], rel=1e-9)
    save_comparison(again)
    assert "helayers: 2 computed, 2 loaded" in (out / "report.md").read_text()


def test_a_checkpoint_of_other_engine_code_is_refused(tiny, tmp_path, monkeypatch):
    """Outputs of an older ckkslab are not mixed with a newer one's: a changed source file of the engine's
    packages changes its key (here, a copy of the tree with one line added to a module of ckks/)."""
    import shutil

    from validation import checkpoint

    out = tmp_path / "out"
    compare(options(tiny, out, batches=1))
    before = {engine: checkpoint.code_sha256(engine) for engine in checkpoint.ENGINE_CODE}
    tree = tmp_path / "tree"
    for package in ("ckks", "nn", "reference"):
        shutil.copytree(checkpoint.ROOT / package, tree / package,
                        ignore=shutil.ignore_patterns("__pycache__", "*.nbi", "*.nbc"))
    monkeypatch.setattr(checkpoint, "ROOT", tree)
    assert {engine: checkpoint.code_sha256(engine) for engine in before} == before  # the same sources
    with (tree / "ckks" / "params.py").open("a") as f:
        f.write("# a change\n")
    assert checkpoint.code_sha256("ckkslab") != before["ckkslab"]
    assert checkpoint.code_sha256("plain") == before["plain"]  # nn/ untouched: the plaintext key stays
    with pytest.raises(CheckpointError, match=r"ckkslab/batch_0000\.npz was made with other inputs "
                                              r"\(other engine code \(ckkslab was changed or updated since\)\)"):
        compare(options(tiny, out, batches=1))
