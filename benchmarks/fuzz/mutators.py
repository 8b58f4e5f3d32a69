"""How inputs are made from a loader's valid seeds (the targets_* modules build the seeds; toy parameters
N = 64 so that mutations hit structure, not only residues).

Mutations, one to three stacked: truncation, bit flips, byte patches, "interesting" integers (0, -1, 2^31,
2^32 - 1, 2^63, 2^64 - 1, ...) written over fields that hold a size in the seed (huge declared lengths) or
anywhere, insertions, deletions, duplications, splices with other formats (wrong headers). JSON inputs are
also edited as trees (a node replaced by a value of another type, 1e400, a 5000-digit integer, NaN, a
50000-deep nesting, a key deleted or renamed), CSV inputs as tables (a cell, a column, a header, a row, the
delimiter), nn containers object by object (header tree, one resealed object, an object dropped or
repeated). Three quarters of the mutated ckks buffers are resealed (SHA-256 recomputed) so that the field
validators are reached, a third of those after setting the header's body length to the bytes present (so
that an insertion or deletion reaches the body parser). Each loader also runs a fixed list of crafted edge
cases (huge sparse HDF5 datasets, wrong dtypes, dangling links, deep JSON, ...) before its mutations;
``json_edge_cases`` are those every JSON loader gets.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import struct
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from nn import container

from .draw import Draw, choice

if TYPE_CHECKING:
    from .oracle import Loader

DIGEST = 32  # the SHA-256 that ends a ckks buffer
INTERESTING = (0, 1, 2, 3, 0x7F, 0x80, 0xFF, 0x100, 0x7FFF, 0x8000, 0xFFFF, 0x10000, 2**31 - 1, 2**31,
               2**32 - 1, 2**32, 2**40, 2**53, 2**61, 2**63 - 1, 2**63, 2**64 - 1)
FOREIGN_MAGICS = (b"\x89HDF\r\n\x1a\n", b"CKKSLAB\0", b"CKKSLAB-NN", b"PK\x03\x04", b"\x89PNG\r\n\x1a\n",
                  b"{", b"[", b"\xef\xbb\xbf", b"\xff\xfe", b"\x00" * 16, b"year,gender,age\n")


def size_offsets(buf: bytes) -> list[tuple[int, int]]:
    """(offset, width) of little-endian u16/u32/u64 fields whose value looks like a size (1 .. 2^24)."""
    a = np.frombuffer(buf, dtype=np.uint8).astype(np.uint64)
    found: list[tuple[int, int]] = []
    for width in (2, 4, 8):
        if a.size < width:
            continue
        count = a.size - width + 1
        value = np.zeros(count, dtype=np.uint64)
        for k in range(width):
            value |= a[k : k + count] << np.uint64(8 * k)
        low = 16 if width == 2 else 1
        hits = np.flatnonzero((value >= low) & (value <= 1 << 24))
        found += [(int(i), width) for i in hits[:: max(1, hits.size // 400)]]
    return found


def reseal(buf: bytes) -> bytes:
    """A ckks buffer with its trailing SHA-256 recomputed (so that the field validators see the mutation)."""
    if len(buf) < 40 + DIGEST:
        return buf
    return buf[:-DIGEST] + hashlib.sha256(buf[:-DIGEST]).digest()


def refit(buf: bytes) -> bytes:
    """A ckks buffer with its header's body length set to the bytes present, then resealed: an insertion or a
    deletion in the body then reaches the body parser instead of the length check."""
    if len(buf) < 40 + DIGEST:
        return buf
    out = bytearray(buf)
    struct.pack_into("<Q", out, 32, len(buf) - 40 - DIGEST)
    return reseal(bytes(out))


def _span(draw: Draw, n: int, most: int = 64) -> tuple[int, int]:
    start = draw.int(0, max(0, n - 1))
    return start, min(n, start + draw.int(1, most))


def mutate_bytes(draw: Draw, buf: bytes, sizes: list[tuple[int, int]], foreign: Sequence[bytes]) -> bytes:
    """One byte-level mutation of ``buf``."""
    n = len(buf)
    kind = draw.int(0, 11)
    out = bytearray(buf)
    if n == 0:
        return draw.bytes(draw.int(1, 64))
    if kind == 0:  # truncate
        return bytes(out[: draw.int(0, n - 1)])
    if kind == 1:  # flip 1..8 bits
        for _ in range(draw.int(1, 8)):
            bit = draw.int(0, 8 * n - 1)
            out[bit // 8] ^= 1 << (bit % 8)
        return bytes(out)
    if kind == 2:  # overwrite bytes with random ones
        start, stop = _span(draw, n, 16)
        out[start:stop] = draw.bytes(stop - start)
        return bytes(out)
    if kind in (3, 4) and sizes and len(sizes) > 0:  # a huge (or odd) value in a size-like field
        offset, width = choice(draw, sizes)
        if offset + width <= n:
            value = choice(draw, INTERESTING) % (1 << (8 * width))
            out[offset : offset + width] = value.to_bytes(width, "little")
            return bytes(out)
    if kind in (3, 4, 5):  # an interesting integer anywhere
        width = choice(draw, (1, 2, 4, 8))
        offset = draw.int(0, max(0, n - width))
        value = choice(draw, INTERESTING) % (1 << (8 * width))
        out[offset : offset + width] = value.to_bytes(width, "little")[: n - offset]
        return bytes(out)
    if kind == 6:  # delete a span
        start, stop = _span(draw, n, 256)
        del out[start:stop]
        return bytes(out)
    if kind == 7:  # insert random bytes
        at = draw.int(0, n)
        out[at:at] = draw.bytes(draw.int(1, 64))
        return bytes(out)
    if kind == 8:  # duplicate a span
        start, stop = _span(draw, n, 512)
        at = draw.int(0, n)
        out[at:at] = out[start:stop]
        return bytes(out)
    if kind == 9:  # append
        return bytes(out) + draw.bytes(draw.int(1, 64))
    if kind == 10:  # a foreign header over ours, or a splice of another format
        other = choice(draw, foreign)
        if draw.int(0, 1):
            return other[: draw.int(1, len(other))] + bytes(out[draw.int(0, n) :])
        return other
    start, stop = _span(draw, n, 8)  # bytes set to 0x00 or 0xff
    out[start:stop] = bytes([choice(draw, (0, 0xFF))]) * (stop - start)
    return bytes(out)


JSON_SPECIAL = {"__HUGE__": "1e400", "__BIGINT__": "9" * 5000, "__DEEP__": "[" * 50000 + "]" * 50000,
                "__NEGHUGE__": "-1e400"}
JSON_POOL: tuple[Any, ...] = (None, True, False, 0, -1, 1, 2, 3, 0.5, -0.0, 2**31, 2**63, 2**64 + 1, 1e300,
                              float("nan"), float("inf"), "", "x", "Dense", "Conv2D", "relu", "linear",
                              "SquareActivation", "PolyActivation", "InputLayer", "logit", "probability", [],
                              {}, [1, 2], [None, 14], {"a": 1}, "__HUGE__", "__BIGINT__", "__DEEP__",
                              "__NEGHUGE__", "a" * 10000, [0.0] * 3, [[0, 0, 0]])


def _nodes(tree: Any, path: tuple = ()) -> Iterator[tuple[tuple, Any]]:
    yield path, tree
    if isinstance(tree, dict):
        for k, v in tree.items():
            yield from _nodes(v, path + (k,))
    elif isinstance(tree, list):
        for i, v in enumerate(tree):
            yield from _nodes(v, path + (i,))


def _set(tree: Any, path: tuple, value: Any) -> Any:
    if not path:
        return value
    parent = tree
    for k in path[:-1]:
        parent = parent[k]
    parent[path[-1]] = value
    return tree


def mutate_json_tree(draw: Draw, text: str, sort_keys: bool = False) -> str | None:
    """One edit of the parsed JSON tree (None if ``text`` is not JSON any more)."""
    try:
        tree = json.loads(text)
    except (ValueError, RecursionError):
        return None
    nodes = list(_nodes(tree))
    path, node = choice(draw, nodes)
    kind = draw.int(0, 5)
    if kind <= 2:  # replace by a value of any type
        tree = _set(tree, path, json.loads(json.dumps(choice(draw, JSON_POOL))))
    elif kind == 3 and path:  # delete the node
        parent = tree
        for k in path[:-1]:
            parent = parent[k]
        del parent[path[-1]]
    elif kind == 4 and isinstance(node, (int, float)) and not isinstance(node, bool):  # a nearby number
        try:  # a 5000-digit integer has no float: int / 3 and isfinite overflow
            whole = int(node) if math.isfinite(node) else 0
            nearby = (node + 1, node - 1, -node, node * 2**20, node / 3, whole)
        except OverflowError:
            nearby = (node + 1, node - 1, -node, 0)
        tree = _set(tree, path, choice(draw, nearby))
    elif kind == 4 and isinstance(node, list) and node:  # duplicate or drop an element
        if draw.int(0, 1):
            node.append(node[draw.int(0, len(node) - 1)])
        else:
            node.pop(draw.int(0, len(node) - 1))
    elif isinstance(node, dict):  # an extra or a renamed key
        if node and draw.int(0, 1):
            key = choice(draw, list(node))
            node[key + "_"] = node.pop(key)
        else:
            key = choice(draw, ("name", "units", "config", "class_name", "layers", "coeffs", "extra"))
            node[key] = choice(draw, JSON_POOL)
    else:
        tree = _set(tree, path, [node])
    out = json.dumps(tree, sort_keys=sort_keys)
    for token, literal in JSON_SPECIAL.items():
        out = out.replace(json.dumps(token), literal)
    return out


def json_edge_cases() -> list[tuple[str, bytes]]:
    return [("empty", b""), ("null", b"null"), ("deep", b"[" * 100000 + b"]" * 100000),
            ("bigint", b"9" * 5000), ("huge-float", b"1e400"), ("utf16", '{"a": 1}'.encode("utf-16")),
            ("bom", b'\xef\xbb\xbf{"class_name": "Sequential"}'), ("invalid-utf8", b'{"a": "\xff"}'),
            ("nan", b"NaN"), ("string", b'"Sequential"'), ("nul", b"\x00" * 64)]


CSV_POOL = ("", "nan", "NaN", "inf", "-inf", "1e400", "-1", "0", "1", "2", "0.5", "abc", "Male", "Female",
            "Other", "never", "current", "No Info", "True", "999999999999999999999999", "1,2", '"', "\x00",
            "é", " ", "1e-400", "0x10", "diabetes", "year")


def mutate_csv_table(draw: Draw, text: str) -> str:
    """One table-level edit: a cell, a column, a header, a row, the delimiter, a quote."""
    try:
        rows = list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error:
        return text[: draw.int(0, len(text))]
    if not rows or not rows[0]:
        return text + choice(draw, CSV_POOL)
    kind = draw.int(0, 9)
    r = draw.int(0, len(rows) - 1)
    c = draw.int(0, max(0, len(rows[r]) - 1))
    if kind <= 2 and rows[r]:
        rows[r][c] = choice(draw, CSV_POOL)
    elif kind == 3:  # drop a column
        for row in rows:
            if c < len(row):
                del row[c]
    elif kind == 4:  # duplicate a column
        for row in rows:
            if c < len(row):
                row.insert(c, row[c])
    elif kind == 5:  # a ragged row
        if draw.int(0, 1):
            rows[r].append(choice(draw, CSV_POOL))
        elif rows[r]:
            rows[r].pop()
    elif kind == 6:  # drop or duplicate rows
        if draw.int(0, 1):
            del rows[r]
        else:
            rows.insert(r, list(rows[r]))
    elif kind == 7:  # header only, or one header cell renamed
        if draw.int(0, 1):
            rows = rows[:1]
        elif rows[0]:
            h = draw.int(0, len(rows[0]) - 1)
            rows[0][h] = rows[0][h].upper() if draw.int(0, 1) else choice(draw, CSV_POOL)
    elif kind == 8:  # another delimiter
        out = io.StringIO()
        csv.writer(out, delimiter=choice(draw, (";", "\t", "|"))).writerows(rows)
        return out.getvalue()
    else:  # a whole column of one value
        for row in rows[1:]:
            if c < len(row):
                row[c] = choice(draw, CSV_POOL)
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue()


def split_container(buf: bytes) -> tuple[str, list[bytes]] | None:
    """(JSON header text, object blobs) of an nn container, or None if it does not parse."""
    magic = container.MAGIC
    try:
        if not buf.startswith(magic):
            return None
        _, length = struct.unpack_from("<HI", buf, len(magic))
        at = len(magic) + 6
        header = buf[at : at + length].decode()
        at += length
        (count,) = struct.unpack_from("<I", buf, at)
        at += 4
        blobs = []
        for _ in range(count):
            (size,) = struct.unpack_from("<Q", buf, at)
            if at + 8 + size > len(buf):
                return None
            blobs.append(buf[at + 8 : at + 8 + size])
            at += 8 + size
        return header, blobs
    except (struct.error, UnicodeDecodeError, OverflowError):
        return None


def join_container(header: str, blobs: list[bytes]) -> bytes:
    text = header.encode()
    parts = [container.MAGIC, struct.pack("<HI", container.VERSION, len(text)), text,
             struct.pack("<I", len(blobs))]
    for blob in blobs:
        parts += [struct.pack("<Q", len(blob)), blob]
    return b"".join(parts)


def mutate_container(draw: Draw, buf: bytes, foreign: Sequence[bytes]) -> bytes | None:
    """Edit the JSON header as a tree, or one object (resealed), or the object list; lengths kept right."""
    parts = split_container(buf)
    if parts is None:
        return None
    header, blobs = parts
    kind = draw.int(0, 3)
    if kind <= 1 or not blobs:
        edited = mutate_json_tree(draw, header, sort_keys=True)  # the writer's canonical form
        return None if edited is None else join_container(edited, blobs)
    k = draw.int(0, len(blobs) - 1)
    if kind == 2:
        blob = mutate_bytes(draw, blobs[k], size_offsets(blobs[k][:4096]), foreign)
        blobs[k] = reseal(blob) if draw.int(0, 1) else blob
    elif draw.int(0, 1):
        del blobs[k]
    else:
        blobs.insert(draw.int(0, len(blobs)), blobs[k])
    return join_container(header, blobs)


def mutate(loader: Loader, draw: Draw, foreign: Sequence[bytes]) -> tuple[int, bytes]:
    """(seed index, a mutated input) for ``loader``."""
    i = draw.int(0, len(loader.seeds) - 1)
    buf = loader.seeds[i]
    for step in range(draw.int(1, 3)):
        if loader.kind == "container" and draw.int(0, 2) > 0:
            edited_container = mutate_container(draw, buf, foreign)
            if edited_container is not None:
                buf = edited_container
                continue
        sizes = loader.sizes[i] if step == 0 else size_offsets(buf[:4096])
        structured = loader.kind in ("json", "csv") and draw.int(0, 2) > 0
        if structured:
            text = buf.decode("utf-8", errors="replace")
            edited = mutate_json_tree(draw, text) if loader.kind == "json" else mutate_csv_table(draw, text)
            buf = edited.encode("utf-8") if edited is not None else mutate_bytes(draw, buf, sizes, foreign)
        else:
            buf = mutate_bytes(draw, buf, sizes, foreign)
    if loader.reseal:
        how = draw.int(0, 3)  # 0: as mutated, 1: length refitted + resealed, 2-3: resealed
        buf = reseal(buf) if how >= 2 else refit(buf) if how == 1 else buf
    return i, buf


def foreign_samples(loaders: Sequence[Loader]) -> list[bytes]:
    """Other formats to splice in: magic numbers and the first seed of every loader (first 4 KiB)."""
    return list(FOREIGN_MAGICS) + [ld.seeds[0][:4096] for ld in loaders]
