"""ckks.compile_kernels, in fresh processes on an empty Numba cache: it reaches every kernel, says so on a
terminal only when it compiles, and leaves nothing to compile for other parameters."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Runs in a child process; prints one JSON line. Tty: a terminal stand-in that records what is shown.
CHILD = """
import io, json, sys
import ckks
from ckks.instrument import numba_activity
from numba.core.registry import CPUDispatcher

class Tty(io.StringIO):
    def isatty(self):
        return True

def kernels_without_signature():
    return sorted(f"{name}.{attr}" for name, module in list(sys.modules.items())
                  if name.startswith("ckks") and module is not None
                  for attr, value in vars(module).items()
                  if isinstance(value, CPUDispatcher) and value.__module__ == name and not value.signatures)

shown, shown_again = Tty(), Tty()
first = ckks.compile_kernels(stream=shown)
bare = kernels_without_signature()
again = ckks.compile_kernels(stream=shown_again)
other = {}
if sys.argv[1] == "cold":
    from benchmarks.ops import build_params, time_ckkslab_ops
    with numba_activity() as later:  # N = 1024, another chain and digit count: every op of the benchmark
        time_ckkslab_ops(build_params(1024), repeats=1)
    other = {"first_calls": later.first_calls, "compiled": later.compiled}
print(json.dumps({"first": first.as_json(), "shown": shown.getvalue(), "bare": bare,
                  "again": again.as_json(), "shown_again": shown_again.getvalue(), "other": other}))
"""


def _child(kind: str, cache: Path) -> dict:
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache)}
    done = subprocess.run([sys.executable, "-c", CHILD, kind], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_compile_kernels_reaches_every_kernel_and_shows_a_line_only_when_it_compiles(tmp_path):
    cold = _child("cold", tmp_path)
    first = cold["first"]
    assert first["compiled"] > 0 and first["seconds"] >= first["numba_seconds"] > 0
    assert "compiled" in first["summary"]
    # Right after an empty-cache warm-up every kernel (callees too) has a compiled signature: a kernel the
    # toy pass never reaches would be listed here, and would compile inside some timed stage later.
    assert cold["bare"] == []
    assert cold["shown"].startswith("\rcompiling kernels, once: ") and cold["shown"].endswith(" s)\n")
    assert "compiling kernels, once: 5/5 (" in cold["shown"]
    assert cold["again"]["compiled"] == cold["again"]["first_calls"] == 0 and cold["shown_again"] == ""
    assert cold["other"] == {"first_calls": 0, "compiled": 0}

    warm = _child("warm", tmp_path)  # the same cache, now full: loaded, not compiled, and silent
    assert warm["first"]["compiled"] == 0 and warm["first"]["first_calls"] > 0
    assert "loaded from Numba's on-disk cache" in warm["first"]["summary"]
    assert warm["shown"] == ""


def test_target_cpu_names_the_processor_and_vector_unit_that_proc_cpuinfo_lists():
    """LLVM's view of the host (what Numba compiles for) against the operating system's (an independent
    source): /proc/cpuinfo's model name and flags."""
    import ckks
    from ckks.warmup import target_cpu

    cpuinfo = Path("/proc/cpuinfo")
    if not cpuinfo.exists():
        pytest.skip("no /proc/cpuinfo on this OS to check against")
    text = cpuinfo.read_text()
    model = next(line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("model name"))
    flags = set(next(line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")))
    expected = ("AVX-512" if {"avx512f", "avx512dq"} <= flags else "AVX2" if "avx2" in flags else "no AVX2")
    described = target_cpu()
    assert described.startswith(f"{model} (") and described.endswith(f", {expected})")
    assert ckks.compile_kernels(quiet=True).describe().endswith(f", for {described}")
