"""One encrypted inference under ``ckks.instrument``: the hotspot table, the per-stage table, and exports.

What runs (``run_profile``), each step a stage of the recorder: plan, keygen (public, relinearization and
Galois keys), compile model (encode or encrypt every block diagonal and bias), encrypt batch, prepare weights
(stacked; plaintexts with their Shoup companions), predict (sub-stages: the ``nn.encrypted.StageTimer``
stages, e.g. "layer 1 (dense) rotate"), decrypt. Besides the engine's own hooks (``@timed`` in ``ckks/``: NTT, pointwise products, base
conversion, mod-down, rescale, key switch, encode/decode FFT, samplers), every public method of the
Evaluator, Encoder, Encryptor, Decryptor and KeyGenerator objects of the run is timed as ``op.<name>``: their
self time is the Python glue and the unhooked kernels (additions, automorphism permutations, CRT) of that
operation. What is left, ``(untracked)``, is the code between operations (packing, the loops of
``nn.encrypted``) and the timer's own cost, so the table adds up to the wall time of the run exactly.

The stated margin is the instrumentation overhead: (timed calls) x (cost of one timed call, measured on this
machine by ``timer_overhead``), and, for predict, the same step run again without instrumentation.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ckks import KernelCompilation, instrument
from nn.encrypted import StageTimer

UNTRACKED = "(untracked)"

# What each entry of the hotspot table is (primitives of ckks/ hooked with @timed, then glue).
DESCRIPTIONS: dict[str, str] = {
    "ntt": "forward negacyclic NTT (all limbs of a polynomial)",
    "intt": "inverse NTT",
    "mul": "pointwise product mod q (Montgomery)",
    "mul_add": "pointwise multiply-accumulate",
    "mac_shoup": "pointwise multiply-accumulate by a fixed operand (Shoup, lazy)",
    "base_convert": "fast base conversion (basis extension, CHKKS 2018)",
    "mod_down": "ModDown: divide by P after key switching",
    "rescale": "divide by the last prime (rescale)",
    "key_switch": "hybrid key switching: ModUp and the inner product with the key (ModDown apart)",
    "mod_down_rescale": "ModDown and rescale in one division, by P * q_l (relinearize and rescale)",
    "encode_fft": "inverse canonical embedding (special FFT), encode",
    "decode_fft": "canonical embedding (special FFT), decode",
    "sample_ternary": "ternary secret / mask sampling",
    "sample_gaussian": "discrete Gaussian error sampling",
    "sample_uniform": "uniform mod q sampling",
    "serialize": "write the versioned binary format (to_bytes, save)",
    "deserialize": "read and check the binary format (from_bytes, load)",
    instrument.COMPILE: "Numba: compile or load from cache on first call",
    UNTRACKED: "between operations: packing, loops, timer overhead",
}

# The objects of a run whose public methods are timed as op.<name>.
_TIMED_OBJECTS = ("Evaluator", "Encoder", "Encryptor", "Decryptor", "KeyGenerator")


def time_methods(obj: object, prefix: str = "op.") -> object:
    """Time every public method of ``obj`` as ``prefix + name`` (instance attributes shadow the methods).

    Only this object is affected, and only while a recorder is active; returns ``obj``.
    """
    for name in dir(type(obj)):
        if name.startswith("_"):
            continue
        attr = getattr(type(obj), name, None)
        if callable(attr) and not isinstance(attr, type):
            setattr(obj, name, instrument.timed(prefix + name)(getattr(obj, name)))
    return obj


@dataclass
class RecordingStageTimer(StageTimer):
    """A ``StageTimer`` that also closes a sub-stage of the active recorder at each ``add``.

    ``nn.encrypted.predict`` calls ``add(stage, start)`` when a stage ends; everything timed since the
    previous call is booked to that stage.
    """

    recorder: instrument.Recorder | None = None

    def add(self, stage: str, start: float) -> None:
        super().add(stage, start)
        if self.recorder is not None:
            self.recorder.mark(stage, start)


def timer_overhead(calls: int = 20000) -> dict[str, float]:
    """Seconds per call that a ``@timed`` wrapper adds: off (no recorder) and on (recording), measured.

    Both are differences against calling the bare function, best of 5 repetitions of ``calls`` calls.
    """

    def bare() -> None:
        return None

    wrapped = instrument.timed("overhead")(bare)

    def best(fn: Callable[[], None]) -> float:
        times = []
        for _ in range(5):
            start = time.perf_counter()
            for _ in range(calls):
                fn()
            times.append(time.perf_counter() - start)
        return min(times) / calls

    base = best(bare)
    off = best(wrapped)
    with instrument.recording(compile_events=False):
        on = best(wrapped)
    return {"off_s": max(0.0, off - base), "on_s": max(0.0, on - base)}


@dataclass
class ProfileResult:
    """Everything one profiled run produced."""

    recorder: instrument.Recorder
    model: str
    records: int
    encrypt_weights: bool
    plan_text: str
    params: dict[str, Any]
    overhead: dict[str, float]
    numba: dict[str, int]
    kernels: KernelCompilation
    baseline: dict[str, float] = field(default_factory=dict)
    precision: dict[str, Any] = field(default_factory=dict)


def _numba_cache_stats() -> dict[str, int]:
    """Signatures of the ckks kernels loaded from Numba's on-disk cache / compiled in this process."""
    import sys

    from numba.core.registry import CPUDispatcher

    hits = misses = 0
    for name, module in list(sys.modules.items()):
        if not name.startswith("ckks.") or module is None:
            continue
        for value in vars(module).values():
            if isinstance(value, CPUDispatcher):
                hits += sum(value.stats.cache_hits.values())
                misses += sum(value.stats.cache_misses.values())
    return {"loaded_from_cache": hits, "compiled": misses}


def run_profile(model_dir: Path, data_dir: Path, batch_size: int = 4096, encrypt_weights: bool = True,
                baseline: bool = True, quiet: bool = True) -> ProfileResult:
    """Run one encrypted inference of the first ``batch_size`` test records under a recorder.

    The plan is calibrated on all of ``x_test.h5`` of ``data_dir`` (as ``ckkslab compare`` does), so the
    parameters are the ones compare uses. ``baseline``: afterwards run prepare weights + predict once more
    on a fresh Evaluator without instrumentation, to measure the overhead.

    Raises:
        FileNotFoundError, ValueError: unreadable model or data, too few records, no parameters fit.
    """
    import ckks
    from ckks.progress import Progress
    from nn import encrypted as enc
    from nn.data import load_xy
    from nn.model import load_network
    from nn.plan import plan_inference

    network = load_network(model_dir)
    x_all, _ = load_xy(data_dir, "test")
    if x_all.shape[0] < batch_size:
        raise ValueError(f"{data_dir}/x_test.h5 holds {x_all.shape[0]} records, fewer than --batch-size "
                         f"{batch_size}")
    x = x_all[:batch_size]
    kernels = ckks.compile_kernels(quiet=quiet)  # before the recording: its stages are run time only
    overhead = timer_overhead()
    steps = ("plan", "keygen", "compile model", "encrypt batch", "prepare weights", "predict", "decrypt")
    with Progress("profile", len(steps), enabled=False if quiet else None) as bar, \
            instrument.recording() as rec:

        @contextmanager
        def step(name: str) -> Iterator[None]:
            with instrument.stage(name):
                yield
            bar.advance()

        with step("plan"):
            plan = plan_inference(network, x_all, batch_size=batch_size)
        with step("keygen"):
            keygen = time_methods(ckks.KeyGenerator(plan.params))
            public_key = keygen.public_key()
            relin_key = keygen.relin_key()
            galois_keys = keygen.galois_keys(plan.rotation_steps)
        with step("compile model"):
            encoder = time_methods(ckks.Encoder(plan.params))
            encryptor = time_methods(ckks.Encryptor(plan.params, public_key))
            model = enc.compile_model(network, plan, encoder, encryptor if encrypt_weights else None)
        with step("encrypt batch"):
            inputs = enc.encrypt_batch(x, plan, encoder, encryptor)
        with step("prepare weights"):
            evaluator = time_methods(ckks.Evaluator(plan.params, relin_key=relin_key,
                                                    galois_keys=galois_keys))
            prepared = enc.prepare_weights(model, evaluator)
        with step("predict"):
            outputs = enc.predict(model, inputs, evaluator, prepared, RecordingStageTimer(recorder=rec))
        with step("decrypt"):
            decryptor = time_methods(ckks.Decryptor(plan.params, keygen.secret_key))
            scores = enc.decrypt_batch(outputs, batch_size, plan, network.output_dim, encoder, decryptor)
    result = ProfileResult(rec, str(model_dir), batch_size, encrypt_weights, plan.describe(network),
                           _plan_params(plan), overhead, _numba_cache_stats(), kernels)
    reference = network.forward(x)
    err = np.abs(scores - reference)
    span = float(np.ptp(reference))
    result.precision = {
        "max_abs_error": float(err.max()), "mean_abs_error": float(err.mean()),
        "bits_min": -math.log2(float(err.max())) if err.max() > 0 else None,
        "bits_min_relative": -math.log2(float(err.max()) / span) if err.max() > 0 and span > 0 else None,
    }
    if baseline:
        plain_ev = ckks.Evaluator(plan.params, relin_key=relin_key, galois_keys=galois_keys)
        start = time.perf_counter()
        again = enc.prepare_weights(model, plain_ev)
        middle = time.perf_counter()
        enc.predict(model, inputs, plain_ev, again)
        end = time.perf_counter()
        result.baseline = {"prepare weights": middle - start, "predict": end - middle}
    return result


def _plan_params(plan: Any) -> dict[str, Any]:
    p = plan.params
    return {"ring_degree": p.ring_degree, "moduli_bits": list(p.moduli_bits),
            "special_moduli_bits": list(p.special_moduli_bits), "scale_bits": p.scale_bits,
            "key_switch_digits": p.digits, "block": plan.block,
            "features_per_ciphertext": plan.features_per_ciphertext,
            "rotation_steps": list(plan.rotation_steps)}


# ----- tables ------------------------------------------------------------------------------------------
def hotspot_rows(rec: instrument.Recorder, stage: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """One row per timed entry plus ``(untracked)``, by self time, largest first, within ``stage``.

    ``stage``: a stage path such as ("predict",) (default (): the whole run, wall = ``rec.wall``).
    Row keys: name, calls, total_s (inclusive), self_s, share (self / the stage's wall), us_per_call
    (self / calls). The self times and the untracked time add up to the stage's wall time exactly.

    Raises:
        KeyError: if ``stage`` was not recorded.
    """
    wall = rec.wall if not stage else rec.stages[stage].wall
    depth = len(stage)
    calls: dict[str, int] = {}
    own: dict[str, float] = {}
    inclusive: dict[str, float] = {}
    for path, (n, seconds) in rec.paths.items():
        if path[:depth] != stage:
            continue
        name = path[-1]
        calls[name] = calls.get(name, 0) + int(n)
        own[name] = own.get(name, 0.0) + seconds
        for element in set(path[depth:]):
            if element in rec.primitives:
                inclusive[element] = inclusive.get(element, 0.0) + seconds
    rows = [{"name": name, "calls": calls[name], "total_s": inclusive.get(name, own[name]),
             "self_s": own[name], "share": own[name] / wall if wall else 0.0,
             "us_per_call": 1e6 * own[name] / calls[name] if calls[name] else 0.0}
            for name in own]
    untracked = wall - sum(own.values())
    rows.append({"name": UNTRACKED, "calls": 0, "total_s": untracked, "self_s": untracked,
                 "share": untracked / wall if wall else 0.0, "us_per_call": 0.0})
    rows.sort(key=lambda r: r["self_s"], reverse=True)
    return rows


def stage_rows(rec: instrument.Recorder) -> list[dict[str, Any]]:
    """One row per stage path in run order: runs, wall seconds, share of the run's wall, the self seconds
    booked directly in it, and its top primitives by self time."""
    rows = []
    for path, s in rec.stages.items():
        if not path:
            continue
        top = sorted(s.primitives.items(), key=lambda kv: kv[1], reverse=True)
        rows.append({"stage": instrument.STAGE_SEPARATOR.join(path), "depth": len(path), "runs": s.count,
                     "wall_s": s.wall, "share": s.wall / rec.wall if rec.wall else 0.0,
                     "tracked_s": s.tracked, "top": [(name, seconds) for name, seconds in top[:4]]})
    return _in_run_order(rows)


def _in_run_order(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Parents before their sub-stages (a stage is recorded when it ends, after its sub-stages)."""
    out: list[dict[str, Any]] = []
    for row in rows:
        if row["depth"] == 1:
            out.append(row)
    children: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        if row["depth"] > 1:
            parent = row["stage"].rsplit(instrument.STAGE_SEPARATOR, 1)[0]
            children.setdefault(parent, []).append(row)
    ordered: list[dict[str, Any]] = []
    for row in out:
        ordered.append(row)
        ordered.extend(children.get(row["stage"], []))
    return ordered


def format_hotspots(rec: instrument.Recorder, stage: tuple[str, ...] = (), limit: int | None = None) -> str:
    """The hotspot table of ``stage`` (default: the whole run) as text (``limit`` rows, the rest summed)."""
    rows = hotspot_rows(rec, stage)
    wall = rec.wall if not stage else rec.stages[stage].wall
    shown = rows if limit is None else rows[:limit]
    lines = [f"{'entry':<22} {'calls':>7} {'total s':>9} {'self s':>9} {'share':>7} {'us/call':>10}  what",
             "-" * 100]
    for r in shown:
        per_call = f"{r['us_per_call']:10.1f}" if r["calls"] else f"{'':>10}"
        calls = f"{r['calls']:7d}" if r["calls"] else f"{'':>7}"
        lines.append(f"{r['name']:<22} {calls} {r['total_s']:9.3f} {r['self_s']:9.3f} "
                     f"{100 * r['share']:6.2f}% {per_call}  {_describe(r['name'])}")
    rest = rows[len(shown):]
    if rest:
        seconds = sum(r["self_s"] for r in rest)
        lines.append(f"{'(' + str(len(rest)) + ' more)':<22} {'':>7} {'':>9} {seconds:9.3f} "
                     f"{100 * seconds / wall:6.2f}%")
    total = sum(r["self_s"] for r in rows)
    lines.append("-" * 100)
    lines.append(f"{'sum = wall time':<22} {'':>7} {'':>9} {total:9.3f} {100 * total / wall:6.2f}%")
    return "\n".join(lines)


def _describe(name: str) -> str:
    if name.startswith("op."):
        return f"Python glue + unhooked kernels of {name[3:]}()"
    return DESCRIPTIONS.get(name, "")


def format_stages(rec: instrument.Recorder) -> str:
    """The per-stage (per-layer) table as text."""
    lines = [f"{'stage':<44} {'runs':>5} {'wall s':>8} {'share':>7}  top self times",
             "-" * 100]
    for r in stage_rows(rec):
        indent = "  " * (r["depth"] - 1)
        name = indent + r["stage"].rsplit(instrument.STAGE_SEPARATOR, 1)[-1]
        top = ", ".join(f"{n} {s:.3f}" for n, s in r["top"][:3])
        lines.append(f"{name:<44} {r['runs']:5d} {r['wall_s']:8.3f} {100 * r['share']:6.2f}%  {top}")
    return "\n".join(lines)


def margin_text(result: ProfileResult) -> str:
    """How far the instrumented wall time can be from an uninstrumented one, measured two ways."""
    rec = result.recorder
    on = result.overhead["on_s"]
    cost = rec.calls * on
    lines = [f"wall {rec.wall:.3f} s = sum of self times {rec.tracked:.3f} s + untracked "
             f"{rec.wall - rec.tracked:.3f} s (exact by construction: self times never overlap)",
             f"timer overhead: {rec.calls} timed calls x {1e6 * on:.2f} us = {cost:.4f} s "
             f"({100 * cost / rec.wall:.2f}% of wall; off: {1e9 * result.overhead['off_s']:.0f} ns per call)"]
    if result.baseline:
        stages = {instrument.STAGE_SEPARATOR.join(p): s.wall for p, s in rec.stages.items()}
        for name, plain in result.baseline.items():
            timed_wall = stages.get(name)
            if timed_wall:
                lines.append(f"{name}: {timed_wall:.3f} s instrumented, {plain:.3f} s again without "
                             f"({100 * (timed_wall - plain) / plain:+.1f}%)")
    return "\n".join(lines)


def to_json(result: ProfileResult) -> dict[str, Any]:
    """The whole result as JSON-able values."""
    rec = result.recorder
    return {
        "model": result.model, "records": result.records, "encrypt_weights": result.encrypt_weights,
        "params": result.params, "wall_s": rec.wall, "tracked_s": rec.tracked,
        "untracked_s": rec.wall - rec.tracked, "timed_calls": rec.calls,
        "timer_overhead_s_per_call": result.overhead, "numba": result.numba,
        "compile_kernels": result.kernels.as_json(),
        "uninstrumented_s": result.baseline, "precision": result.precision,
        "hotspots": hotspot_rows(rec),
        "hotspots_predict": hotspot_rows(rec, ("predict",)) if ("predict",) in rec.stages else [],
        "stages": [dict(r, top=[{"name": n, "self_s": s} for n, s in r["top"]]) for r in stage_rows(rec)],
    }


def write_json(data: dict[str, Any], path: Path) -> None:
    """Write ``data`` as indented JSON."""
    path.write_text(json.dumps(data, indent=2) + "\n")
