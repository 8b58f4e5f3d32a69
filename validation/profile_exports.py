"""Exports of a recorded profile that standard viewers open: speedscope JSON (a "sampled" profile whose
weights are self times per call path) and pstats (``python -m pstats FILE``, snakeviz)."""

from __future__ import annotations

import marshal
from pathlib import Path
from typing import Any

from ckks import instrument


def call_tree(rec: instrument.Recorder) -> dict[tuple[str, ...], list[float]]:
    """Every node of the run's call tree (stage names, then timed callers, then the entry) -> [calls, self s].

    Stages get the self time no timed call explains (their untracked time), the root () what lies outside
    every stage; the self times of all nodes add up to ``rec.wall``.
    """
    tree: dict[tuple[str, ...], list[float]] = {p: [float(c), s] for p, (c, s) in rec.paths.items()}
    stage_paths = sorted((p for p in rec.stages if p), key=len, reverse=True)
    below: dict[tuple[str, ...], float] = {}
    for path, (_, seconds) in rec.paths.items():
        for i in range(len(path)):
            below[path[:i]] = below.get(path[:i], 0.0) + seconds
    for path in stage_paths:
        stats = rec.stages[path]
        own = max(0.0, stats.wall - below.get(path, 0.0))
        tree[path] = [float(stats.count), own]
        for i in range(len(path)):
            below[path[:i]] = below.get(path[:i], 0.0) + own
    tree[()] = [1.0, max(0.0, rec.wall - below.get((), 0.0))]
    return tree


def to_speedscope(rec: instrument.Recorder, name: str = "ckkslab profile") -> dict[str, Any]:
    """A speedscope "sampled" profile: one weighted sample per call-tree node (weight = its self seconds)."""
    tree = call_tree(rec)
    frames: list[dict[str, str]] = [{"name": "run"}]
    index: dict[str, int] = {"run": 0}
    samples, weights = [], []
    for path, (_, seconds) in tree.items():
        if seconds <= 0:
            continue
        stack = [0]
        for element in path:
            if element not in index:
                index[element] = len(frames)
                frames.append({"name": element})
            stack.append(index[element])
        samples.append(stack)
        weights.append(seconds)
    return {
        "$schema": "https://www.speedscope.app/file-format-schema.json",
        "name": name, "exporter": "ckkslab profile", "activeProfileIndex": 0,
        "shared": {"frames": frames},
        "profiles": [{"type": "sampled", "name": name, "unit": "seconds", "startValue": 0.0,
                      "endValue": float(sum(weights)), "samples": samples, "weights": weights}],
    }


def to_pstats(rec: instrument.Recorder) -> dict[tuple[str, int, str], tuple]:
    """The call tree in the ``pstats`` / cProfile layout: (file, line, name) -> (cc, nc, tt, ct, callers).

    Stages are "stage:<name>", timed entries "ckks:<name>"; tt = self time, ct = time including callees
    (each node counted once per path), callers = the edges into the function with their own totals.
    Write it with ``marshal.dump``; ``pstats.Stats(path)`` and snakeviz read it.
    """
    tree = call_tree(rec)
    stage_names = {p[-1] for p in rec.stages if p}

    def key(element: str, depth_is_stage: bool) -> tuple[str, int, str]:
        return ("stage" if depth_is_stage else "ckks", 0, element)

    def keys_of(path: tuple[str, ...]) -> list[tuple[str, int, str]]:
        out, in_stages = [], True
        for element in path:
            in_stages = in_stages and element in stage_names
            out.append(key(element, in_stages))
        return out

    root = ("~", 0, "<ckkslab profile run>")
    inclusive: dict[tuple[str, ...], float] = {}
    for path, (_, seconds) in tree.items():
        for i in range(len(path) + 1):
            inclusive[path[:i]] = inclusive.get(path[:i], 0.0) + seconds
    stats: dict[tuple[str, int, str], list] = {}
    for path, (calls, seconds) in tree.items():
        func = root if not path else keys_of(path)[-1]
        caller = None if not path else (root if len(path) == 1 else keys_of(path[:-1])[-1])
        entry = stats.setdefault(func, [0, 0, 0.0, 0.0, {}])
        n = int(calls)
        entry[0] += n
        entry[1] += n
        entry[2] += seconds
        entry[3] += inclusive[path]
        if caller is not None:
            edge = entry[4].setdefault(caller, [0, 0, 0.0, 0.0])
            edge[0] += n
            edge[1] += n
            edge[2] += seconds
            edge[3] += inclusive[path]
    return {f: (cc, nc, tt, ct, {c: tuple(e) for c, e in callers.items()})
            for f, (cc, nc, tt, ct, callers) in stats.items()}


def write_pstats(rec: instrument.Recorder, path: Path) -> None:
    """Write ``to_pstats(rec)`` where ``pstats.Stats(path)`` can read it."""
    with open(path, "wb") as handle:
        marshal.dump(to_pstats(rec), handle)


