"""ckks.kernel_cache: Numba caches the kernels by a digest of all of ckks's sources, so that editing a helper
in one file (ring.modarith) recompiles the kernels of other files that inline it.

The end-to-end test edits a copy of the package: without the digest directory, Numba's own cache (checked
against each kernel's defining file only) kept running the kernel compiled before the edit."""

from __future__ import annotations

import importlib
import json
import os
import pkgutil
import shutil
import subprocess
import sys
from pathlib import Path

import numba
import pytest
from numba.core.caching import FunctionCache
from numba.core.registry import CPUDispatcher

import ckks
from ckks import kernel_cache

# Runs in a child process on a copy of the package: q - 1 plus 1 mod q through ckks.ring.rns.add, whose
# kernel (in rns.py) inlines modarith.conditional_subtract; prints the result and where it was cached.
CHILD = """
import json
import numpy as np
import ckks
from ckks.ring import rns
from ckks.ring.primes import ntt_primes
q = ntt_primes(30, 16, 1)[0]
basis = rns.rns_basis((q,), 16)
total = rns.add(np.full((1, 16), q - 1, dtype=np.uint64), np.ones((1, 16), dtype=np.uint64), basis)
print(json.dumps({"q": q, "sum": int(total[0, 0]), "cache": rns._add._cache._cache_path}))
"""
SUBTRACT = "    return v - m if int64(v) >= int64(m) else v\n"


def test_sources_digest_changes_with_any_file_and_names_the_cache_directory(tmp_path, monkeypatch):
    (tmp_path / "ring").mkdir()
    (tmp_path / "a.py").write_text("x = 1\n")
    (tmp_path / "ring" / "b.py").write_text("y = 2\n")
    (tmp_path / "notes.txt").write_text("not a source")
    first = kernel_cache.sources_digest(tmp_path)
    assert len(first) == 16 and int(first, 16) >= 0
    monkeypatch.setattr(numba.config, "CACHE_DIR", "")
    assert kernel_cache.cache_directory(tmp_path) == tmp_path / "__pycache__" / f"kernels-{first}"
    monkeypatch.setattr(numba.config, "CACHE_DIR", str(tmp_path / "shared"))  # NUMBA_CACHE_DIR
    assert kernel_cache.cache_directory(tmp_path) == tmp_path / "shared" / f"kernels-{first}"
    (tmp_path / "notes.txt").write_text("changed, still not a source")
    assert kernel_cache.sources_digest(tmp_path) == first
    (tmp_path / "ring" / "b.py").write_text("y = 3\n")
    edited = kernel_cache.sources_digest(tmp_path)
    assert edited != first
    (tmp_path / "ring" / "b.py").rename(tmp_path / "ring" / "c.py")
    assert kernel_cache.sources_digest(tmp_path) not in (first, edited)


def test_every_cached_kernel_of_ckks_lives_in_the_directory_of_these_sources():
    """Each module of ckks imported (as a user's code may), every kernel with cache=True is cached under
    cache_directory() (inside NUMBA_CACHE_DIR when that is set), and Numba's own setting is left as it was."""
    for info in pkgutil.walk_packages(ckks.__path__, "ckks."):
        importlib.import_module(info.name)
    where = str(kernel_cache.cache_directory())
    kernels = [value for name, module in list(sys.modules.items()) if name.startswith("ckks.") and module
               for value in vars(module).values()
               if isinstance(value, CPUDispatcher) and value.py_func.__module__ == name
               and isinstance(value._cache, FunctionCache)]
    assert len(kernels) > 20
    outside = [k.py_func.__qualname__ for k in kernels if not k._cache._cache_path.startswith(where)]
    assert outside == []
    assert numba.config.CACHE_DIR == os.environ.get("NUMBA_CACHE_DIR", "")


def _run_child(root: Path, numba_cache_dir: Path | None) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    env["PYTHONPATH"] = str(root)
    if numba_cache_dir is not None:
        env["NUMBA_CACHE_DIR"] = str(numba_cache_dir)
    done = subprocess.run([sys.executable, "-c", CHILD], cwd=root, env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.slow
@pytest.mark.parametrize("own_cache_dir", [False, True], ids=["in the package", "NUMBA_CACHE_DIR"])
def test_editing_an_inlined_helper_in_another_file_recompiles_the_kernel(tmp_path, own_cache_dir):
    """Without NUMBA_CACHE_DIR the kernels live in the copy's __pycache__, and the directory of the old
    sources is removed; with it, they live in it, and the old directory is left (other checkouts may share
    it)."""
    copy = tmp_path / "ckks"
    shutil.copytree(Path(ckks.__file__).parent, copy, ignore=shutil.ignore_patterns("__pycache__"))
    numba_cache_dir = tmp_path / "numba-cache" if own_cache_dir else None
    base = numba_cache_dir if own_cache_dir else copy / "__pycache__"
    before = _run_child(tmp_path, numba_cache_dir)
    assert before["sum"] == 0  # (q - 1) + 1 = q, reduced to 0
    old_directory = base / f"kernels-{kernel_cache.sources_digest(copy)}"
    modarith = copy / "ring" / "modarith.py"
    source = modarith.read_text()
    assert source.count(SUBTRACT) == 1
    modarith.write_text(source.replace(SUBTRACT, "    return v\n"))  # rns.py itself is unchanged
    after = _run_child(tmp_path, numba_cache_dir)
    assert after["sum"] == before["q"]  # the edited helper runs: no reduction any more
    assert before["cache"].startswith(str(old_directory))
    assert after["cache"].startswith(str(base / f"kernels-{kernel_cache.sources_digest(copy)}"))
    assert old_directory.exists() == own_cache_dir
