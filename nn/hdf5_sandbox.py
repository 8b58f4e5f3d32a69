"""Read untrusted HDF5 files in a forked child process, so that a corrupted file can only cost an error.

Why: the HDF5 C library does not survive every corrupted file. Fuzzing the shipped clinical ``model.h5``
found one that makes it loop forever (8 zero bytes at offset 2472) and one that makes it segfault (byte
11233 set to 0x05). Neither can be stopped in-process: no Python signal handler runs while C code loops, and a
segfault kills the interpreter. So the loaders run their h5py reading in a child made by ``os.fork`` (Linux)
and the parent turns a child that crashes or does not finish into the loader's named error.

Protocol:

* the parent opens a pipe and forks;
* the child lowers its limits (no core dump; address space +1 GiB; CPU time ``timeout`` + 1 s, a backstop that
  ends it even if the parent dies while waiting), runs ``read()``, pickles ``("ok", result)`` or
  ``("raised", exception)`` into the pipe and ends with ``os._exit``: it never returns into the caller's code;
* the parent reads the pipe until end of file or until ``timeout`` seconds have passed, then reaps the child:
  an answer is returned (or its exception re-raised, with the child's traceback as a note); a child killed by
  a signal, or still running at the deadline (then killed), becomes ``error`` naming the file.
"""

from __future__ import annotations

import faulthandler
import os
import pickle
import resource
import select
import signal
import time
import traceback
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

# A normal read takes milliseconds; 5 s keeps a hang cheap while staying far above any real file.
TIMEOUT_SECONDS = 5.0
# What h5py raises on a corrupted file (MemoryError: a damaged header declares a huge attribute); the loaders'
# read functions turn these into their named error.
HDF5_ERRORS = (OSError, RuntimeError, KeyError, ValueError, TypeError, MemoryError)
# What the child may allocate beyond what it inherited: far above the largest array a loader accepts.
CHILD_MEMORY_BYTES = 1 << 30


def read_isolated(read: Callable[[], T], what: str, error: type[Exception],
                  timeout: float = TIMEOUT_SECONDS) -> T:
    """``read()`` run in a forked child: its result, or the exception it raised, re-raised here.

    ``read`` must return something picklable (numpy arrays, lists, dicts). ``what`` names the file(s) read.

    Raises:
        error: the child was killed by a signal (the HDF5 library crashed) or did not finish in ``timeout``
            seconds (it is killed).
        Exception: whatever ``read()`` raised in the child.
    """
    read_fd, write_fd = os.pipe()
    try:
        pid = os.fork()
    except OSError as exc:  # no memory or process slot for a child: nothing was read
        os.close(read_fd)
        os.close(write_fd)
        raise error(f"cannot start the process that reads {what}: {exc.strerror}") from None
    if pid == 0:  # the child: never returns
        os.close(read_fd)
        _child(read, write_fd, timeout, lambda text: error(f"reading {what} failed: {text}"))
    os.close(write_fd)
    answer = None
    try:
        answer = _receive(read_fd, time.monotonic() + timeout)
    finally:  # also when the wait is interrupted (KeyboardInterrupt, an alarm): no child is left behind
        os.close(read_fd)
        if answer is None:
            os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
    if answer is None:
        raise error(f"did not finish reading {what} in {timeout:g} s: the file is corrupted (the HDF5 "
                    "library can loop forever on a damaged file; re-create it) or the machine is overloaded")
    if os.WIFSIGNALED(status):
        name = signal.Signals(os.WTERMSIG(status)).name
        raise error(f"the HDF5 library crashed ({name}) reading {what}: the file is corrupted; re-create it")
    if not answer:
        raise error(f"the process reading {what} ended without an answer (exit status "
                    f"{os.waitstatus_to_exitcode(status)})")
    kind, value = pickle.loads(answer)  # our own child's bytes
    if kind == "raised":
        raise value
    return value


def _child(read: Callable[[], object], write_fd: int, timeout: float,
           named: Callable[[str], Exception]) -> None:
    """Run ``read`` under lowered limits and send its outcome; always ends with ``os._exit``.

    ``named(text)``: the loader's named error, sent instead of an exception that pickle cannot carry.
    """
    status = 1
    try:
        faulthandler.disable()  # a crash is reported by the parent, not dumped on stderr
        _lower_soft_limit(resource.RLIMIT_CORE, 0)
        _lower_soft_limit(resource.RLIMIT_CPU, int(timeout) + 1)
        _lower_soft_limit(resource.RLIMIT_AS, _address_space() + CHILD_MEMORY_BYTES)
        try:
            message = pickle.dumps(("ok", read()))
        except Exception as exc:  # noqa: BLE001 -- sent as it is: the parent raises it
            exc.add_note(f"raised in the HDF5 reader process:\n{traceback.format_exc()}")
            try:
                message = pickle.dumps(("raised", exc))
            except Exception:  # noqa: BLE001 -- an exception pickle cannot carry: send its text
                message = pickle.dumps(("raised", named(f"{type(exc).__name__}: {exc}")))
        with os.fdopen(write_fd, "wb") as pipe:
            pipe.write(message)
        status = 0
    finally:
        os._exit(status)


def _receive(fd: int, deadline: float) -> bytes | None:
    """Everything written to ``fd`` until end of file, or None if the deadline passes first."""
    chunks = []
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
            return None
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def _lower_soft_limit(kind: int, value: int) -> None:
    soft, hard = resource.getrlimit(kind)
    if soft == resource.RLIM_INFINITY or value < soft:
        resource.setrlimit(kind, (value, hard))


def _address_space() -> int:
    """This process's virtual memory size in bytes (the first field of /proc/self/statm, in pages)."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
