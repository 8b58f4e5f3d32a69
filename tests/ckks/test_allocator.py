"""keep_freed_memory: freed multi-MB blocks are reused without page faults (the behaviour, measured in a
fresh process by its minor-fault count, with and without the call)."""

from __future__ import annotations

import subprocess
import sys

import pytest

PROBE = """
import resource, sys
import numpy as np
import ckks
applied = ckks.keep_freed_memory() if sys.argv[1] == "tuned" else None
faults = []
for _ in range(5):                      # one "operation": eight 8 MiB temporaries, touched, then freed
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    blocks = [np.empty(1 << 20) for _ in range(8)]
    for block in blocks:
        block[:] = 1.0
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    del blocks, block
print(applied, min(faults[1:]))
"""


def _probe(mode: str) -> tuple[str, int]:
    out = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=True)
    applied, faults = out.stdout.split()
    return applied, int(faults)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt and minor faults: Linux")
def test_a_freed_block_is_reused_without_page_faults():
    applied, tuned = _probe("tuned")
    _, default = _probe("default")
    assert applied == "True"
    assert default > 1000           # the 16,384 pages given back to the OS and faulted in again each time
    assert tuned < default / 10     # reused in place
