"""Strict JSON for the files ckkslab reads (model.json, ckkslab.json, plan.json, container headers).

``json.loads`` alone lets a foreign exception escape on hostile input (``UnicodeDecodeError`` on bytes that are
not UTF-8, ``RecursionError`` on a 50,000-deep nesting, ``ValueError`` on a 5,000-digit integer) and accepts
what is not JSON at all (``NaN``, ``Infinity``, and ``1e400`` silently read as ``inf``). ``parse_json`` turns
every one of those into the caller's named error, saying which file and what is wrong.
"""

from __future__ import annotations

import json
import math
from typing import Any

MAX_INTEGER_DIGITS = 100  # no field ckkslab reads needs more; Python's own limit is 4300


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"the number {text[:40]} overflows a float64")
    return value


def _object_without_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            raise ValueError(f"the key {key[:40]!r} appears twice in one object")
        seen.add(key)
    return dict(pairs)


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INTEGER_DIGITS:
        raise ValueError(f"an integer of {len(text)} digits")
    return int(text)


def parse_json(data: bytes | str, what: str, error: type[Exception]) -> Any:
    """The JSON value in ``data`` (UTF-8 when bytes), or ``error`` naming ``what`` and the reason.

    Refused: bytes that are not UTF-8, invalid JSON, ``NaN`` / ``Infinity``, floats beyond float64, integers
    of more than ``MAX_INTEGER_DIGITS`` digits, an object with a repeated key (json.loads would keep the last
    silently), nesting deeper than the interpreter's recursion limit.
    """
    if isinstance(data, bytes | bytearray | memoryview):
        try:
            data = bytes(data).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise error(f"{what} is not UTF-8 text (byte {exc.start})") from None
    try:
        return json.loads(data, parse_constant=_refuse_constant, parse_float=_finite_float,
                          parse_int=_bounded_int, object_pairs_hook=_object_without_duplicate_keys)
    except json.JSONDecodeError as exc:
        raise error(f"{what} is not valid JSON: {exc}") from None
    except ValueError as exc:
        raise error(f"{what} holds a value JSON cannot carry here: {exc}") from None
    except RecursionError:
        raise error(f"{what} is nested too deeply to be a ckkslab file") from None
