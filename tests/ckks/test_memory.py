"""``ckks.memory``: the resident size now and at its peak, per process, from Linux's /proc."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from ckks import memory

pytestmark = pytest.mark.skipif(not os.path.exists("/proc/self/clear_refs"), reason="needs Linux /proc")


def test_the_peak_sees_an_allocation_and_a_reset_brings_it_down():
    """In a fresh process (this test session keeps freed memory resident, which would hide the peak)."""
    code = """
import numpy as np
from ckks import memory
size = 300 * 2**20
before = memory.peak_rss_bytes()
block = np.ones(size // 8)
assert memory.current_rss_bytes() >= size, memory.current_rss_bytes()
del block
peak = memory.peak_rss_bytes()
assert peak >= before + size * 9 // 10, (before, peak)
assert memory.reset_peak_rss()
assert memory.peak_rss_bytes() < peak - size // 2, (memory.peak_rss_bytes(), peak)
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_a_process_started_by_a_large_one_reports_its_own_peak():
    """A child of a process that holds 600 MB reports its own peak, not its parent's: getrusage's
    ru_maxrss carries the parent's over fork and exec (a Dask worker reported its nanny's 1.8 GB so)."""
    code = """
import subprocess, sys
import numpy as np
block = np.ones(600 * 2**20 // 8)
child = subprocess.run([sys.executable, "-c", "from ckks import memory; print(memory.peak_rss_bytes())"],
                       capture_output=True, text=True, check=True)
print(child.stdout.strip())
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert 0 < int(result.stdout) < 400 * 2**20, int(result.stdout)
