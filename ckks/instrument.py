"""Optional timing of the engine's primitives and of named stages; it costs one lookup when switched off.

Switched on only inside ``with recording() as rec:``; the active ``Recorder`` lives in a ``ContextVar``
(no module-level mutable state, nothing shared between threads or asyncio tasks that did not enter it).

  @timed("ntt")              on a Python-level primitive: when no recorder is active the wrapper does one
                             ``ContextVar.get()`` and calls straight through; when one is active it times the
                             call with ``time.perf_counter`` and adds it to the recorder.
  with stage("predict"):     a named stretch of work (nestable); its wall time, and the primitives' time
                             inside it, are kept per stage path ("predict / layer 1 (dense) rotate").
  rec.mark(label, start):    close a stage that began at ``start`` (for code that only reports a stage when
                             it ends, like ``nn.encrypted.StageTimer.add``).

Nested timed calls are kept twice: *inclusive* time (the whole call) and *self* time (inclusive minus the
timed calls inside it). Self times never overlap, so for any stretch of work

    wall = sum of self times of the timed calls in it + untracked time (Python glue, unhooked code),

which is what makes a hotspot table's shares add up to 100 %. Time spent inside Numba's dispatcher to
compile a kernel (or load it from the on-disk cache) on its first call is caught through Numba's event API
(``numba:compiler_lock`` events, outermost only) and booked as its own entry ``numba.compile``, taken out of
the self time of the primitive that triggered it: compilation is reported apart from run time.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")

STAGE_SEPARATOR = " / "
COMPILE = "numba.compile"  # the entry that holds Numba's first-call compile / cache-load time
_clock = time.perf_counter


@dataclass
class PrimitiveStats:
    """Totals of one timed primitive: number of calls, inclusive seconds, self seconds."""

    calls: int = 0
    inclusive: float = 0.0
    self_seconds: float = 0.0


@dataclass
class StageStats:
    """Totals of one stage path: how often it ran, its wall seconds, and the self seconds of the primitives
    that ran directly in it (not in a nested stage), by primitive name."""

    count: int = 0
    wall: float = 0.0
    primitives: dict[str, float] = field(default_factory=dict)
    calls: dict[str, int] = field(default_factory=dict)

    @property
    def tracked(self) -> float:
        """Sum of the self seconds booked directly in this stage."""
        return sum(self.primitives.values())


class _Frame:
    """One active timed call: its name and the time its timed children (and compilations) took."""

    __slots__ = ("child", "name")

    def __init__(self, name: str) -> None:
        self.name = name
        self.child = 0.0


class Recorder:
    """Counts and seconds per primitive, per stage, and per call path (stage path + timed callers).

    Made and activated by ``recording()``; read its attributes after the ``with`` block.

    Attributes:
        primitives: name -> PrimitiveStats.
        stages: stage path (a tuple of stage names, outermost first; () = outside any stage) -> StageStats.
        paths: (stage names..., timed caller names..., name) -> [calls, self seconds]: the call tree that
            ``validation.profile_exports`` writes speedscope / pstats.
        wall: seconds from entering to leaving ``recording()``.
    """

    def __init__(self) -> None:
        self.primitives: dict[str, PrimitiveStats] = {}
        self.stages: dict[tuple[str, ...], StageStats] = {}
        self.paths: dict[tuple[str, ...], list[float]] = {}
        self.wall = 0.0
        self._frames: list[_Frame] = []
        self._names: list[str] = []  # the names of self._frames, kept alongside (no generator per call)
        self._depth: dict[str, int] = {}
        self._stage_path: list[str] = []
        # (timed callers..., name) -> [self seconds, calls] not yet booked to a stage
        self._pending: dict[tuple[str, ...], list[float]] = {}

    # ----- primitives -----------------------------------------------------------------------------------
    def call(self, name: str, fn: Callable[..., R], args: tuple[Any, ...], kwargs: dict[str, Any]) -> R:
        """Run ``fn(*args, **kwargs)`` as the timed primitive ``name``."""
        frame = _Frame(name)
        self._frames.append(frame)
        self._names.append(name)
        self._depth[name] = self._depth.get(name, 0) + 1
        start = _clock()
        try:
            return fn(*args, **kwargs)
        finally:
            elapsed = _clock() - start
            self._frames.pop()
            self._names.pop()
            self._depth[name] -= 1
            if self._frames:
                self._frames[-1].child += elapsed
            self._book(name, elapsed, elapsed - frame.child, outermost=self._depth[name] == 0)

    def _book(self, name: str, inclusive: float, self_seconds: float, outermost: bool = True) -> None:
        stats = self.primitives.get(name)
        if stats is None:
            stats = self.primitives[name] = PrimitiveStats()
        stats.calls += 1
        if outermost:  # a recursive call's time is already inside its outer call's inclusive time
            stats.inclusive += inclusive
        stats.self_seconds += self_seconds
        key = (*self._names, name)
        pending = self._pending.get(key)
        if pending is None:
            self._pending[key] = [self_seconds, 1]
        else:
            pending[0] += self_seconds
            pending[1] += 1

    def book_compile(self, seconds: float) -> None:
        """Book ``seconds`` of Numba compilation as its own entry, out of the enclosing call's self time."""
        if self._frames:
            self._frames[-1].child += seconds
        self._book(COMPILE, seconds, seconds)

    # ----- stages ---------------------------------------------------------------------------------------
    def _flush(self, path: tuple[str, ...]) -> StageStats | None:
        """Book the pending self times to stage ``path``; its StageStats (None: nothing to book at root)."""
        stats = self.stages.get(path)
        if stats is None:
            if not self._pending and not path:
                return None
            stats = self.stages[path] = StageStats()
        for callers, (seconds, calls) in self._pending.items():
            name = callers[-1]
            stats.primitives[name] = stats.primitives.get(name, 0.0) + seconds
            stats.calls[name] = stats.calls.get(name, 0) + int(calls)
            entry = self.paths.setdefault((*path, *callers), [0, 0.0])
            entry[0] += int(calls)
            entry[1] += seconds
        self._pending.clear()
        return stats

    def _current_path(self) -> tuple[str, ...]:
        return tuple(self._stage_path)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Time a named stage (nestable); primitives that run in it are booked to its path."""
        self._flush(self._current_path())
        self._stage_path.append(name)
        path = self._current_path()
        start = _clock()
        try:
            yield
        finally:
            elapsed = _clock() - start
            stats = self._flush(path)
            if stats is not None:
                stats.count += 1
                stats.wall += elapsed
            self._stage_path.pop()

    def mark(self, name: str, start: float) -> None:
        """Close the sub-stage ``name`` of the current stage, begun at ``start`` (a ``perf_counter`` value).

        Everything timed since the previous stage boundary is booked to it; its wall time is now - start.
        """
        elapsed = _clock() - start
        stats = self._flush((*self._stage_path, name))
        if stats is not None:
            stats.count += 1
            stats.wall += elapsed

    # ----- totals ---------------------------------------------------------------------------------------
    @property
    def tracked(self) -> float:
        """Sum of all self times (no two overlap)."""
        return sum(s.self_seconds for s in self.primitives.values())

    @property
    def calls(self) -> int:
        """Number of timed calls (every one costs the timer overhead once)."""
        return sum(s.calls for s in self.primitives.values())


_ACTIVE: ContextVar[Recorder | None] = ContextVar("ckks_instrument_recorder", default=None)


def active() -> Recorder | None:
    """The recorder of the enclosing ``recording()`` block, or None."""
    return _ACTIVE.get()


def timed(name: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorator: book every call of the function as primitive ``name`` while a recorder is active.

    Off (no ``recording()`` block): one ``ContextVar.get()`` and a direct call, nothing else.
    """

    def decorate(fn: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            recorder = _ACTIVE.get()
            if recorder is None:
                return fn(*args, **kwargs)
            return recorder.call(name, fn, args, kwargs)

        wrapper.primitive_name = name  # type: ignore[attr-defined]
        return wrapper

    return decorate


@contextmanager
def stage(name: str) -> Iterator[None]:
    """A named stage of the active recorder; does nothing when none is active."""
    recorder = _ACTIVE.get()
    if recorder is None:
        yield
        return
    with recorder.stage(name):
        yield


@dataclass
class NumbaActivity:
    """What Numba's dispatchers did during a ``numba_activity()`` block.

    Attributes:
        seconds: wall seconds inside the outermost ``numba:compiler_lock`` spans: a dispatcher compiling a
            new type signature or loading it from the on-disk cache (the first-call cost, not run time).
        first_calls: how many such spans (first calls of a kernel with a signature new to this process).
        compiled: signatures actually compiled (``numba:compile`` events, callees included); 0 means every
            first call was served from the on-disk cache.
    """

    seconds: float = 0.0
    first_calls: int = 0
    compiled: int = 0


@contextmanager
def numba_activity(on_span: Callable[[float], None] | None = None) -> Iterator[NumbaActivity]:
    """Watch Numba's dispatchers for the ``with`` block; yields the ``NumbaActivity`` it fills in.

    ``on_span(seconds)`` is called at the end of every outermost compiler-lock span, while the code that
    triggered it is still on the stack (``Recorder.book_compile`` relies on that). Numba's event listeners
    are process-wide: a compilation in another thread during the block counts too.
    """
    from numba.core import event

    activity = NumbaActivity()

    class _Spans(event.Listener):
        def __init__(self) -> None:
            self.depth = 0
            self.start = 0.0

        def on_start(self, ev: event.Event) -> None:
            if self.depth == 0:
                self.start = _clock()
            self.depth += 1

        def on_end(self, ev: event.Event) -> None:
            self.depth -= 1
            if self.depth == 0:
                seconds = _clock() - self.start
                activity.seconds += seconds
                activity.first_calls += 1
                if on_span is not None:
                    on_span(seconds)

    class _Compilations(event.Listener):
        def on_start(self, ev: event.Event) -> None:
            activity.compiled += 1

        def on_end(self, ev: event.Event) -> None:
            pass

    with event.install_listener("numba:compiler_lock", _Spans()), \
            event.install_listener("numba:compile", _Compilations()):
        yield activity


@contextmanager
def recording(compile_events: bool = True) -> Iterator[Recorder]:
    """Activate a fresh ``Recorder`` for the ``with`` block (in this context only) and yield it.

    ``compile_events``: also book Numba's compile / cache-load time as ``numba.compile`` (needs numba;
    see ``numba_activity``).
    """
    recorder = Recorder()
    token = _ACTIVE.set(recorder)
    watch = numba_activity(recorder.book_compile) if compile_events else nullcontext()
    start = _clock()
    try:
        with watch:
            yield recorder
    finally:
        recorder.wall = _clock() - start
        recorder._flush(recorder._current_path())
        _ACTIVE.reset(token)
