"""Where Numba keeps the engine's compiled kernels: a directory named by a digest of every source of ckks.

Numba's on-disk cache (``@njit(cache=True)``) checks a kernel against the one file that defines it (its
modification time and size). The kernels inline helpers from other files: ``ring.modarith``'s products
and reductions are in every loop of ``ring.ntt``, ``ring.rns``, ``ring.dot_kernels`` and more. Editing a
helper alone left each kernel that inlines it as it was compiled before, with no error and no warning:
the old machine code kept running (``tests/ckks/test_kernel_cache.py`` edits a copy of the package to show
it). While ckks's modules are imported, so while their kernels are decorated, Numba's cache directory is
``kernels-<digest>`` in ``ckks/__pycache__``, or in ``NUMBA_CACHE_DIR`` when that is set (the first-run
benchmarks point it at an empty directory): a change to any file of the package gives every kernel a new,
empty directory. The directories of earlier sources are removed from ``ckks/__pycache__``, which belongs
to this checkout; in ``NUMBA_CACHE_DIR``, which other checkouts may share, they are left.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numba

PACKAGE = Path(__file__).resolve().parent
PREFIX = "kernels-"


def sources_digest(package: Path = PACKAGE) -> str:
    """The first 64 bits (hex) of SHA-256 over every ``.py`` file under ``package``: its path relative to
    ``package`` and its bytes, in sorted order (a rename changes it too)."""
    digest = hashlib.sha256()
    for path in sorted(package.rglob("*.py")):
        digest.update(path.relative_to(package).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def cache_directory(package: Path = PACKAGE) -> Path:
    """Where this version's kernels are cached: ``kernels-<sources_digest>`` in Numba's ``CACHE_DIR``
    (``NUMBA_CACHE_DIR``) if one is set, else in ``package/__pycache__``."""
    base = Path(numba.config.CACHE_DIR) if numba.config.CACHE_DIR else package / "__pycache__"
    return base / f"{PREFIX}{sources_digest(package)}"


@contextmanager
def cached_by_sources(package: Path = PACKAGE) -> Iterator[None]:
    """Inside the block, kernels decorated with ``cache=True`` are cached in ``cache_directory(package)``;
    Numba's setting is restored after it. Without ``NUMBA_CACHE_DIR``, the other ``kernels-*`` directories
    of ``package/__pycache__`` are removed first. A directory that cannot be written or removed is left:
    Numba then falls back to its own cache locations."""
    previous = numba.config.CACHE_DIR
    directory = cache_directory(package)
    if not previous:
        for old in directory.parent.glob(f"{PREFIX}*"):
            if old != directory:
                shutil.rmtree(old, ignore_errors=True)
    numba.config.CACHE_DIR = str(directory)
    try:
        yield
    finally:
        numba.config.CACHE_DIR = previous
