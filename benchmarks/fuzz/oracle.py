"""The oracle: a loader under test (``Loader``: its seeds, how to run it, its named errors, the check of what
it accepts) and the one outcome of each input.

Every input ends in exactly one outcome:

    rejected    the loader raised one of its named errors;
    identical   accepted, and the input equals a seed (a mutation that changed nothing);
    faithful    accepted, and the object is exactly what the bytes say: re-serialized it gives the input back
                (ckks objects, nn containers, plan), or, for formats without a serializer here (Keras files,
                HDF5 data, CSV), it is a valid object that differs from the seed's (HDF5 and CSV carry no
                checksum: a flipped weight is a different, valid network);
    ignorable   accepted, a valid object equal to the seed's, from other bytes (bytes the loader ignores);
    different   BUG: accepted, but the object is not what the bytes say or is invalid (non-finite weights or
                features, inconsistent model container, ...), with the reason;
    crash       BUG: any other exception, including MemoryError under the memory cap, and a hang.

``bug_key`` groups the bug outcomes by kind and place; a ``Result`` counts one loader's outcomes.
"""

from __future__ import annotations

import os
import re
import signal
import tempfile
import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .mutators import size_offsets

ROOT = Path(__file__).resolve().parents[2]
OUTCOMES = ("rejected", "identical", "faithful", "ignorable", "different", "crash")
BUGS = ("different", "crash")


class FuzzTimeout(BaseException):
    """One input took longer than the per-input time limit (a hang counts as a crash)."""


@dataclass
class Loader:
    """A loader under test: valid seeds, how to run it on a buffer derived from seed i, and its oracle."""

    name: str
    seeds: list[bytes]
    load: Callable[[int, bytes], Any]
    named: tuple[type[BaseException], ...]
    check: Callable[[int, bytes, Any], str]  # "faithful" | "ignorable" | "different: why"
    kind: str = "binary"  # binary | json | csv
    reseal: bool = False
    edge_cases: list[tuple[int, str, bytes]] = field(default_factory=list)
    sizes: list[list[tuple[int, int]]] = field(default_factory=list)
    cleanup: Callable[[], None] | None = None

    def __post_init__(self) -> None:
        self.sizes = [size_offsets(s) for s in self.seeds]


def workdir() -> Path:
    """A scratch directory for a loader's files (in RAM, /dev/shm, where writable); its cleanup removes it."""
    base = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
    return Path(tempfile.mkdtemp(prefix="ckkslab-fuzz-", dir=base))


def classify(loader: Loader, i: int, buf: bytes, timeout: float = 10.0) -> tuple[str, str]:
    """(outcome, detail) of running ``loader`` on ``buf`` derived from seed ``i``."""
    use_alarm = timeout > 0 and hasattr(signal, "setitimer")
    if use_alarm:
        previous = signal.signal(signal.SIGALRM, _on_alarm)
        signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        try:
            obj = loader.load(i, buf)
        except loader.named:
            return "rejected", ""
        except FuzzTimeout:
            return "crash", f"timeout after {timeout} s"
        except Exception as exc:  # noqa: BLE001 -- every other exception is the finding
            return "crash", f"{type(exc).__name__}: {str(exc)[:160]} at {_where(exc)}"
        if buf in loader.seeds:
            return "identical", ""
        try:
            verdict = loader.check(i, buf, obj)
        except FuzzTimeout:
            return "crash", f"timeout after {timeout} s (checking the accepted object)"
        except Exception as exc:  # noqa: BLE001 -- the accepted object breaks the code that uses it
            verdict = f"invalid object: using it raises {type(exc).__name__}: {str(exc)[:120]}"
    finally:
        if use_alarm:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
    if verdict in ("faithful", "ignorable"):
        return verdict, ""
    return "different", verdict


def _on_alarm(signum: int, frame: Any) -> None:
    raise FuzzTimeout


def _where(exc: BaseException) -> str:
    """file:line:function of the innermost frame inside this repository."""
    frames = traceback.extract_tb(exc.__traceback__)
    ours = [f for f in frames if str(ROOT) in f.filename and "benchmarks" not in f.filename
            and ".venv" not in f.filename]
    if not ours:
        return "?"
    f = ours[-1]
    inner = frames[-1]
    where = f"{Path(f.filename).relative_to(ROOT)}:{f.lineno}:{f.name}"
    return where if inner is f else f"{where} ({Path(inner.filename).name}:{inner.lineno})"


def bug_key(outcome: str, detail: str) -> str:
    """Group bug outcomes: a crash by exception type and place, a 'different' by the reason's first words."""
    if outcome == "crash":
        kind = detail.split(":")[0]
        where = detail.rsplit(" at ", 1)[-1].split(" (")[0] if " at " in detail else "?"
        return f"crash: {kind} at {where}"
    head = ":".join(detail.split(":")[:2])
    return "different: " + re.sub(r"(?<![A-Za-z_])[-+]?\d[\d.eE+-]*|'[^']*'|\(.*?\)|\[.*?\]|\{.*?\}", "#",
                                  head)[:80]


@dataclass
class Result:
    """The counts of one loader."""

    loader: str
    inputs: int = 0
    counts: Counter = field(default_factory=Counter)
    examples: dict[str, dict[str, str]] = field(default_factory=dict)
    seconds: float = 0.0
    rss_growth_mb: float = 0.0  # the largest peak-RSS growth of one input

    def add(self, outcome: str, detail: str, buf: bytes, label: str) -> None:
        self.inputs += 1
        self.counts[outcome] += 1
        if outcome in BUGS:
            key = bug_key(outcome, detail)
            if key not in self.examples:
                self.examples[key] = {"input": label, "size": str(len(buf)), "head": buf[:48].hex(),
                                      "detail": detail[:300], "count": "0"}
            self.examples[key]["count"] = str(int(self.examples[key]["count"]) + 1)

    def row(self) -> dict[str, Any]:
        return {"loader": self.loader, "inputs": self.inputs, **{k: self.counts.get(k, 0) for k in OUTCOMES},
                "seconds": round(self.seconds, 1), "rss_growth_mb": round(self.rss_growth_mb, 1),
                "bugs": self.examples}
