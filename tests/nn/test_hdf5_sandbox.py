"""nn.hdf5_sandbox.read_isolated: a reader that segfaults or never returns costs the named error, in time;
a normal read returns what the child read; what the child raises is raised again in the parent."""

from __future__ import annotations

import ctypes
import os
import signal
import time

import h5py
import numpy as np
import pytest

from nn.hdf5_sandbox import read_isolated
from nn.model import ModelFormatError

TIMEOUT = 0.5  # seconds: the sandbox's own default is far longer


class Interrupted(Exception):
    pass


def spin() -> None:
    while True:
        pass


def test_a_normal_read_returns_the_arrays(tmp_path):
    path = tmp_path / "a.h5"
    values = np.arange(12.0).reshape(3, 4)
    with h5py.File(path, "w") as handle:
        handle["a"], handle["b"] = values, np.ones(2, np.int32)

    def read():
        with h5py.File(path, "r") as handle:
            return {name: handle[name][()] for name in handle}

    arrays = read_isolated(read, str(path), ModelFormatError)
    np.testing.assert_array_equal(arrays["a"], values)
    np.testing.assert_array_equal(arrays["b"], [1, 1])


def test_a_child_that_segfaults_is_the_named_error_at_once():
    start = time.monotonic()
    with pytest.raises(ModelFormatError, match=r"crashed \(SIGSEGV\) reading model\.h5: the file is corrupt"):
        read_isolated(lambda: ctypes.string_at(0), "model.h5", ModelFormatError, timeout=10)
    assert time.monotonic() - start < 2  # reported when the child dies, not at the timeout


def test_a_child_that_never_returns_is_killed_at_the_timeout():
    start = time.monotonic()
    with pytest.raises(ModelFormatError, match=r"did not finish reading model\.h5 in 0\.5 s"):
        read_isolated(spin, "model.h5", ModelFormatError, timeout=TIMEOUT)
    assert TIMEOUT <= time.monotonic() - start < TIMEOUT + 2


def test_what_the_child_raises_is_raised_again_with_its_message():
    def refuse():
        raise ModelFormatError("model.h5: layer 'dense' is not an array of numbers")

    with pytest.raises(ModelFormatError, match=r"layer 'dense' is not an array"):
        read_isolated(refuse, "model.h5", ModelFormatError, timeout=TIMEOUT)
    with pytest.raises(KeyError, match="kernel"):
        read_isolated(lambda: {}["kernel"], "model.h5", ModelFormatError, timeout=TIMEOUT)


def test_an_exception_pickle_cannot_carry_arrives_as_the_named_error():
    class Local(Exception):  # a class local to a function cannot be pickled
        pass

    def fail():
        raise Local("lost class")

    with pytest.raises(ModelFormatError, match="reading model.h5 failed: Local: lost class"):
        read_isolated(fail, "model.h5", ModelFormatError, timeout=TIMEOUT)


def test_an_interrupted_wait_leaves_no_child_behind(tmp_path):
    """An alarm (the fuzz harness's own deadline) or Ctrl-C while waiting: the child is killed and reaped."""
    pid_file = tmp_path / "pid"

    def write_pid_and_spin():
        pid_file.write_text(str(os.getpid()))
        spin()

    def interrupt(signum, frame):
        raise Interrupted

    previous = signal.signal(signal.SIGALRM, interrupt)
    signal.setitimer(signal.ITIMER_REAL, 1.0)
    try:
        with pytest.raises(Interrupted):
            read_isolated(write_pid_and_spin, "model.h5", ModelFormatError, timeout=30)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    with pytest.raises(ProcessLookupError):
        os.kill(int(pid_file.read_text()), 0)
