"""ckks.instrument (timed, stages, self vs inclusive time, Numba compile booking) and ``ckkslab profile``."""

from __future__ import annotations

import contextlib
import io
import json
import marshal
import pstats
import time
from pathlib import Path

import pytest

from ckks import instrument
from validation import profile_exports, profile_sampling, profiling
from validation.cli import main


def _sleeper(name: str, seconds: float, inner=None):
    @instrument.timed(name)
    def run() -> str:
        time.sleep(seconds)
        if inner is not None:
            inner()
        return name

    return run


def test_timed_is_a_plain_call_when_no_recorder_is_active() -> None:
    calls = []

    @instrument.timed("probe")
    def probe(a: int, b: int = 2) -> int:
        calls.append((a, b))
        return a + b

    assert instrument.active() is None
    assert probe(1, b=5) == 6 and calls == [(1, 5)]
    assert probe.__name__ == "probe" and probe.primitive_name == "probe"
    with instrument.recording(compile_events=False) as rec:
        assert instrument.active() is rec
        assert probe(2) == 4
    assert instrument.active() is None
    assert rec.primitives["probe"].calls == 1


def test_self_time_excludes_nested_timed_calls_and_everything_adds_up() -> None:
    inner = _sleeper("inner", 0.02)
    outer = _sleeper("outer", 0.01, inner)
    with instrument.recording(compile_events=False) as rec:
        with instrument.stage("first"):
            outer()
            inner()
        time.sleep(0.005)  # untracked, outside any stage
    o, i = rec.primitives["outer"], rec.primitives["inner"]
    assert (o.calls, i.calls) == (1, 2)
    nested = rec.paths[("first", "outer", "inner")][1]  # the inner call made inside outer
    assert nested >= 0.02 and o.inclusive >= 0.03 and o.self_seconds >= 0.01
    # Self time leaves out exactly the nested call (no upper bound on a sleep: the machine may be loaded).
    assert o.self_seconds == pytest.approx(o.inclusive - nested, abs=1e-3)
    assert i.self_seconds == pytest.approx(i.inclusive) and i.inclusive >= 0.04
    assert rec.tracked == pytest.approx(o.self_seconds + i.self_seconds)
    assert rec.wall >= rec.tracked + 0.005
    rows = profiling.hotspot_rows(rec)
    assert sum(r["self_s"] for r in rows) == pytest.approx(rec.wall, rel=1e-12)
    assert sum(r["share"] for r in rows) == pytest.approx(1.0, rel=1e-12)
    assert rec.paths[("first", "outer", "inner")][0] == 1 and rec.paths[("first", "inner")][0] == 1
    stage = rec.stages[("first",)]
    assert stage.count == 1 and stage.wall >= stage.tracked >= 0.05


def test_marks_close_sub_stages_and_the_call_tree_sums_to_the_wall() -> None:
    work = _sleeper("work", 0.01)
    with instrument.recording(compile_events=False) as rec:
        with instrument.stage("predict"):
            for label in ("layer 1 rotate", "layer 1 rescale", "layer 1 rotate"):
                start = time.perf_counter()
                work()
                rec.mark(label, start)
    rotate = rec.stages[("predict", "layer 1 rotate")]
    assert rotate.count == 2 and rotate.calls == {"work": 2}
    assert rec.stages[("predict", "layer 1 rescale")].calls == {"work": 1}
    rows = profiling.hotspot_rows(rec, ("predict",))
    assert sum(r["self_s"] for r in rows) == pytest.approx(rec.stages[("predict",)].wall, rel=1e-12)
    tree = profile_exports.call_tree(rec)
    assert sum(seconds for _, seconds in tree.values()) == pytest.approx(rec.wall, rel=1e-9)
    speedscope = profile_exports.to_speedscope(rec)
    profile = speedscope["profiles"][0]
    assert len(profile["samples"]) == len(profile["weights"])
    assert sum(profile["weights"]) == pytest.approx(rec.wall, rel=1e-9)
    names = [f["name"] for f in speedscope["shared"]["frames"]]
    assert {"predict", "layer 1 rotate", "work"} <= set(names)


def test_pstats_export_is_readable_and_totals_the_wall(tmp_path) -> None:
    inner = _sleeper("inner", 0.01)
    outer = _sleeper("outer", 0.01, inner)
    with instrument.recording(compile_events=False) as rec:
        with instrument.stage("s"):
            outer()
    path = tmp_path / "run.pstats"
    profile_exports.write_pstats(rec, path)
    stats = pstats.Stats(str(path))
    assert stats.total_tt == pytest.approx(rec.wall, rel=1e-9)
    raw = marshal.loads(path.read_bytes())
    inner_key = ("ckks", 0, "inner")
    assert raw[inner_key][0] == 1 and ("ckks", 0, "outer") in raw[inner_key][4]


def test_numba_compilation_is_booked_apart_from_the_primitive() -> None:
    from numba import njit

    @njit(cache=False)
    def kernel(n):  # a fresh function: compiled on its first call, inside the timed primitive
        total = 0
        for i in range(n):
            total += i
        return total

    @instrument.timed("primitive")
    def primitive() -> int:
        return kernel(10)

    with instrument.recording() as rec:
        assert primitive() == 45
    compiled = rec.primitives[instrument.COMPILE]
    assert compiled.calls >= 1 and compiled.self_seconds > 0.001
    assert rec.paths[("primitive", instrument.COMPILE)][0] >= 1
    prim = rec.primitives["primitive"]
    assert prim.self_seconds == pytest.approx(prim.inclusive - compiled.self_seconds, abs=1e-6)


def test_the_engine_primitives_carry_their_hooks() -> None:
    from ckks.ring import basis_conversion, dot_kernels, ntt, rns, sampling
    from ckks.rlwe import keyswitch
    from ckks.scheme import embedding, serialization

    hooked = {
        ntt.ntt_forward: "ntt", ntt.ntt_inverse: "intt", rns.mul: "mul", rns.mul_add_into: "mul_add",
        dot_kernels.dot_plain_shoup: "mac_shoup", dot_kernels.dot_tensor_shoup: "mac_shoup",
        basis_conversion.fast_base_convert: "base_convert", basis_conversion.mod_down: "mod_down",
        basis_conversion.mod_down_and_rescale: "mod_down_rescale",
        basis_conversion.divide_by_last_prime: "rescale", keyswitch.key_switch_extended: "key_switch",
        embedding.embed: "decode_fft", embedding.embed_inverse: "encode_fft",
        sampling.ternary: "sample_ternary", sampling.gaussian: "sample_gaussian",
        sampling.uniform_mod: "sample_uniform", serialization._encode: "serialize",
        serialization.from_bytes: "deserialize",
    }
    for fn, name in hooked.items():
        assert getattr(fn, "primitive_name", None) == name, fn.__name__
        assert name in profiling.DESCRIPTIONS


def test_sampled_stacks_are_attributed_to_the_same_entries() -> None:
    collapsed = "\n".join([
        "main (cli.py:1);run_profile (validation/profiling.py:200);ntt_forward (ckks/ring/ntt.py:171) 30",
        "main (cli.py:1);Evaluator.rotate (ckks/scheme/evaluator.py:320);key_switch (ckks/rlwe/keyswitch.py:80);"
        "ntt_inverse (ckks/ring/ntt.py:176) 10",
        "main (cli.py:1);Evaluator.rotate (ckks/scheme/evaluator.py:320);key_switch (ckks/rlwe/keyswitch.py:84);"
        "key_switch_extended (ckks/rlwe/keyswitch.py:90) 5",
        "main (cli.py:1);Encryptor.encrypt (ckks/rlwe/encryptor.py:63);from_signed (ckks/ring/rns.py:87) 4",
        "main (cli.py:1);Dispatcher._compile_for_args (numba/core/dispatcher.py:420);mul (ckks/ring/rns.py:238) 1",
        "main (cli.py:1);pack (nn/batch_packing.py:40) 10",
    ])
    shares = profile_sampling.attribute_samples(collapsed)
    assert shares == pytest.approx({"ntt": 0.5, "intt": 10 / 60, "key_switch": 5 / 60, "op.encrypt": 4 / 60,
                                    "mul": 1 / 60, "(untracked)": 10 / 60})
    only_rotate = profile_sampling.attribute_samples(collapsed, lambda frames: "rotate" in frames[1])
    assert only_rotate == pytest.approx({"intt": 10 / 15, "key_switch": 5 / 15})


@pytest.mark.slow
def test_profile_command_on_the_shipped_model(tmp_path) -> None:
    out = io.StringIO()
    json_path, speedscope_path = tmp_path / "p.json", tmp_path / "p.speedscope.json"
    with contextlib.redirect_stdout(out):
        model = Path(__file__).resolve().parents[2] / "models" / "clinical"
        code = main(["--quiet", "profile", "--model", str(model), "--batch-size", "64",
                     "--plain-weights", "--json", str(json_path), "--speedscope", str(speedscope_path)])
    assert code == 0
    text = out.getvalue()
    data = json.loads(json_path.read_text())
    for key in ("hotspots", "hotspots_predict"):
        rows = data[key]
        assert sum(r["share"] for r in rows) == pytest.approx(1.0, rel=1e-9)
        names = {r["name"] for r in rows}
        assert {"ntt", "intt", "key_switch", "(untracked)"} <= names
    assert sum(r["self_s"] for r in data["hotspots"]) == pytest.approx(data["wall_s"], rel=1e-9)
    stages = [s["stage"] for s in data["stages"]]
    assert stages[:6] == ["plan", "keygen", "compile model", "encrypt batch", "prepare weights", "predict"]
    assert any(s.startswith("predict / layer 1") for s in stages) and stages[-1] == "decrypt"
    assert data["precision"]["bits_min"] > 25
    assert "hotspots of predict" in text and "sum = wall time" in text and "timer overhead" in text
    speedscope = json.loads(speedscope_path.read_text())
    assert sum(speedscope["profiles"][0]["weights"]) == pytest.approx(data["wall_s"], rel=1e-9)
