"""Availability check, thread control, native output capture and peak-memory measurement."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from reference import HelayersUnavailable, helayers_available, load_pyhelayers
from reference.runtime import captured_native_output, openmp_threads


def test_missing_pyhelayers_gives_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "pyhelayers", None)      # makes `import pyhelayers` fail
    assert helayers_available() is False
    with pytest.raises(HelayersUnavailable, match=r"pip install"):
        load_pyhelayers()


@pytest.mark.helayers
def test_available_when_installed():
    assert helayers_available() is True


@pytest.mark.helayers
def test_openmp_threads_set_and_restored():
    import ctypes
    import glob

    h = load_pyhelayers()
    site = os.path.dirname(os.path.dirname(h.__file__))
    omp = ctypes.CDLL(glob.glob(os.path.join(site, "pyhelayers.libs", "libgomp*.so*"))[0])
    before = omp.omp_get_max_threads()
    with openmp_threads(h, 1) as inside:
        assert inside == 1 == omp.omp_get_max_threads()
    assert omp.omp_get_max_threads() == before


def test_native_output_is_captured():
    with captured_native_output() as printed:
        os.write(1, b"from fd 1\n")
        os.write(2, b"from fd 2\n")
    assert "from fd 1" in printed[0] and "from fd 2" in printed[0]


@pytest.mark.skipif(not os.path.exists("/proc/self/clear_refs"), reason="needs Linux /proc")
def test_peak_rss_sees_a_large_allocation():
    """In a fresh process (a long test session keeps freed memory resident, which would hide the peak)."""
    code = """
import numpy as np
from reference.runtime import PeakRss
size = 200 * 2**20
with PeakRss() as peak:
    block = np.ones(size // 8)
    del block
with PeakRss() as quiet:            # the high-water mark was reset: the old peak is not seen again
    pass
assert peak.scope == "block", peak.scope
assert peak.peak_bytes >= size, peak.peak_bytes
assert quiet.peak_bytes < peak.peak_bytes - size // 2, (quiet.peak_bytes, peak.peak_bytes)
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
