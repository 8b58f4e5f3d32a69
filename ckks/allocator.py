"""Keep freed ciphertext-sized blocks in the C heap for reuse (glibc malloc), as SEAL's memory pool does.

Every operation allocates fresh arrays of a few MB (a ciphertext at N = 16384 is 1.8 MB, key switching's
extended digits 7 MB). By default glibc serves blocks over its mmap threshold with mmap and gives them back
to the OS on free, so the next operation takes a page fault per 4 KiB page it touches again: on this
virtual machine that made a rotation 17 ms instead of 11. ``keep_freed_memory`` raises the mmap threshold
to glibc's maximum (32 MiB) and the trim threshold to 1 GiB, so freed blocks are reused in place. Peak
memory is unchanged (freed blocks are reused, not added); ``malloc_trim`` still returns them on request.

It changes the whole process's allocator, so nothing calls it on import: the command line and the
benchmarks call it once at start.
"""

from __future__ import annotations

import ctypes
import ctypes.util

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_MAX = 32 * 1024 * 1024  # glibc refuses more (DEFAULT_MMAP_THRESHOLD_MAX on 64-bit)
TRIM_THRESHOLD = 1 << 30


def keep_freed_memory() -> bool:
    """Tune glibc malloc as above; True when applied, False where the C library is not glibc."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_MAX)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
