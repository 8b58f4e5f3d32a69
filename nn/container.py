"""The container of every nn file the client and the server exchange, and the typed reading of its header.

Layout: magic ``CKKSLAB-NN``, format version (u16), JSON header length (u32) and JSON header (what the objects
are), object count (u32), then each object as u64 length + ``ckks`` serialized bytes (which carry their own
header, checksum and parameter fingerprint). Header values are read by type (``integer``, ``number``,
``string``, ``list_of``) and objects by ``exact_fields``: anything else is an ``ArtifactError`` naming the
field.
"""

from __future__ import annotations

import hashlib
import json
import math
import struct
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import ckks
from ckks.scheme.serialization import CHECKSUM_SIZE

from .jsonfile import parse_json

MAGIC = b"CKKSLAB-NN"
VERSION = 1
MAX_HEADER = 1 << 20
REMEDY = {
    "model": "write the model again with `ckkslab encrypt` (or `ckkslab predict --model` for plain weights)",
    "ciphertexts": "write it again with `ckkslab encrypt` (data) or `ckkslab predict` (predictions)",
}


class ArtifactError(ValueError):
    """A model or data file is truncated, corrupted, of another kind, or made for other parameters."""


# ----- JSON values of a given type --------------------------------------------------------------------------


def show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


@contextmanager
def advice(remedy: str) -> Iterator[None]:
    """Append what to do (``remedy``) to the message of an ArtifactError raised inside."""
    try:
        yield
    except ArtifactError as exc:
        raise ArtifactError(f"{exc}: {remedy}") from None


def exact_fields(value: Any, names: Sequence[str], what: str) -> dict[str, Any]:
    """``value`` if it is a JSON object with exactly the keys ``names``."""
    if not isinstance(value, dict):
        raise ArtifactError(f"{what} must be a JSON object, got {show(value)}")
    missing = [n for n in names if n not in value]
    unknown = sorted(set(value) - set(names))
    if missing or unknown:
        problems = [f"lacks {missing}"] if missing else []
        problems += [f"has unknown fields {unknown}"] if unknown else []
        raise ArtifactError(f"{what} {' and '.join(problems)}")
    return value


def integer(value: Any, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ArtifactError(f"{what} must be an integer, got {show(value)}")
    return value


def number(value: Any, what: str) -> float:
    """A finite float64, or an integer that converts to one exactly (2^64 + 1 does not)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ArtifactError(f"{what} must be a finite number, got {show(value)}")
    if float(value) != value:
        raise ArtifactError(f"{what} must be a number a float64 holds exactly, got {show(value)}")
    return float(value)


def string(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise ArtifactError(f"{what} must be a string, got {show(value)}")
    return value


def list_of(read: Callable[[Any, str], Any]) -> Callable[[Any, str], tuple]:
    """A reader of a JSON list whose every item ``read`` accepts."""

    def read_list(value: Any, what: str) -> tuple:
        if not isinstance(value, list):
            raise ArtifactError(f"{what} must be a list, got {show(value)}")
        return tuple(read(item, f"item {i} of {what}") for i, item in enumerate(value))

    return read_list


# ----- the container ----------------------------------------------------------------------------------------


def pack(kind: str, header: dict[str, Any], objects: list[bytes]) -> bytes:
    text = json.dumps({"kind": kind, **header}, sort_keys=True).encode()
    parts = [MAGIC, struct.pack("<HI", VERSION, len(text)), text, struct.pack("<I", len(objects))]
    for blob in objects:
        parts += [struct.pack("<Q", len(blob)), blob]
    return b"".join(parts)


def _read(data: bytes, kind: str, fields: Sequence[str]) -> tuple[dict[str, Any], list[tuple[int, int]]]:
    """The header (a JSON object of exactly ``fields``, ``kind`` included) and each object's (offset, size)
    in ``data``."""
    view = memoryview(data)
    if bytes(view[: len(MAGIC)]) != MAGIC:
        raise ArtifactError(f"not a ckkslab {kind} file (bad magic)")
    offset = len(MAGIC)
    try:
        version, length = struct.unpack_from("<HI", view, offset)
        offset += 6
        if version != VERSION:
            raise ArtifactError(f"{kind} file has format version {version}; this ckkslab reads {VERSION}")
        if length > MAX_HEADER or offset + length > len(view):
            raise ArtifactError(f"{kind} file is truncated or its header length {length} is invalid")
        text = bytes(view[offset : offset + length])
        offset += length
        (count,) = struct.unpack_from("<I", view, offset)
        offset += 4
        spans = []
        for _ in range(count):
            (size,) = struct.unpack_from("<Q", view, offset)
            offset += 8
            if offset + size > len(view):
                raise ArtifactError(f"{kind} file is truncated (object of {size} bytes past the end)")
            spans.append((offset, size))
            offset += size
    except struct.error as exc:
        raise ArtifactError(f"{kind} file is truncated or corrupted ({exc})") from None
    if offset != len(view):
        raise ArtifactError(f"{kind} file has {len(view) - offset} unexpected trailing bytes")
    with advice(REMEDY[kind]):
        header = parse_json(text, f"the {kind} file's header", ArtifactError)
    found = header.get("kind") if isinstance(header, dict) else None
    if found != kind:
        found = found[:40] if isinstance(found, str) else "?"
        raise ArtifactError(f"expected a {kind} file, got a {found} file")
    with advice(REMEDY[kind]):
        return exact_fields(header, fields, f"the {kind} file's header"), spans


def unpack(data: bytes, kind: str, fields: Sequence[str]) -> tuple[dict[str, Any], list[memoryview]]:
    """The header (a JSON object of exactly ``fields``, ``kind`` included) and the object blobs (views into
    ``data``, not copies)."""
    header, spans = _read(data, kind, fields)
    view = memoryview(data)
    return header, [view[offset : offset + size] for offset, size in spans]


def content_digest(data: bytes, kind: str, fields: Sequence[str]) -> str:
    """The first 128 bits (hex) of SHA-256 over the file without the bulk of its objects: every byte except,
    in each object, those before its last ``CHECKSUM_SIZE`` (its stored SHA-256 of those bytes).

    What it names is the file itself once its objects load: ``ckks.from_bytes`` checks each stored checksum
    against the object's bytes, so two files with one content digest whose objects load hold the same
    objects, unless SHA-256 has a collision (a hash tree of depth two, Merkle 1987). It reads a few
    hundred bytes where a SHA-256 of the whole file would read all of it; an object that does not match
    its checksum is left to fail when it is loaded.

    Raises:
        ArtifactError: not a ``kind`` file (see ``unpack``).
    """
    _, spans = _read(data, kind, fields)
    view, digest, start = memoryview(data), hashlib.sha256(), 0
    for offset, size in spans:
        digest.update(view[start:offset])
        start = offset + max(size - CHECKSUM_SIZE, 0)
    digest.update(view[start:])
    return digest.hexdigest()[:32]


def load_object(blob: bytes | memoryview, params: ckks.Parameters, expected: type) -> Any:
    """The ckks object in ``blob``, of type ``expected`` and, as everything the real network writes, with
    real slots (a complex plaintext or ciphertext would decode to complex scores).

    Raises:
        ArtifactError: the blob does not load, holds another type, or holds complex slots.
    """
    try:
        obj = ckks.from_bytes(blob, params=params)
    except ckks.SerializationError as exc:
        raise ArtifactError(str(exc)) from None
    if not isinstance(obj, expected):
        raise ArtifactError(f"expected a {expected.__name__} in the file, found a {type(obj).__name__}")
    if getattr(obj, "complex_slots", False):
        raise ArtifactError(f"the file holds a {type(obj).__name__} of complex slots: the network's files "
                            "hold real values only (ckkslab encrypt and predict never write complex ones)")
    return obj
