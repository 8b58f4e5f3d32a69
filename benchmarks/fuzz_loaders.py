"""Fuzz every loader of ckkslab: zero crashes other than the named errors, zero buffers accepted that decode
to another object than the bytes say, bounded memory on huge declared lengths.

    python benchmarks/fuzz_loaders.py --per-loader 100000 --json out/fuzz.json     # the long run
    python benchmarks/fuzz_loaders.py --per-loader 2000 --loaders ckks.ciphertext,nn.csv

Loaders (the file each one reads, the function, its NAMED errors):

    ckks.<type>           ckks.from_bytes(buf, params=P) for parameters, plaintext, ciphertext, secret key,
                          public key, relinearization key, Galois keys, server bundle      SerializationError
    nn.model_container    nn.artifacts.model_from_bytes (server/model.ckks)                ArtifactError
    nn.cipher_container   nn.artifacts.ciphertexts_with_info (server/data.ckks, predictions.ckks)
                                                                                           ArtifactError
    nn.plan_json          nn.workflow.load_plan (context/plan.json)
                                                               WorkflowError, ArtifactError, CkksError
    nn.model_json         nn.model.load_network, model.json mutated                        ModelFormatError
    nn.model_h5           nn.model.load_network, model.h5 mutated                          ModelFormatError
    nn.model_meta         nn.model.load_network, ckkslab.json mutated                      ModelFormatError
    nn.data_h5            nn.data.load_xy, x_test.h5 / y_test.h5 mutated                    DataSchemaError
    nn.csv                nn.table.load_table, a .csv mutated                               DataSchemaError
    nn.csv_zip            nn.table.load_table, a .zip holding one CSV mutated               DataSchemaError

Inputs: valid seeds built here (toy parameters N = 64 so that mutations hit structure, not only
residues), then mutations, one to three stacked: truncation, bit flips, byte patches, "interesting" integers
(0, -1, 2^31, 2^32 - 1, 2^63, 2^64 - 1, ...) written over fields that hold a size in the seed (huge declared
lengths) or anywhere, insertions, deletions, duplications, splices with other formats (wrong headers). JSON
inputs are also edited as trees (a node replaced by a value of another type, 1e400, a 5000-digit integer,
NaN, a 50000-deep nesting, a key deleted or renamed), CSV inputs as tables (a cell, a column, a header, a row,
the delimiter), nn containers object by object (header tree, one resealed object, an object dropped or
repeated). Three quarters of the mutated ckks buffers are resealed (SHA-256 recomputed) so that the field
validators are reached, a third of those after setting the header's body length to the bytes present (so
that an insertion or deletion reaches the body parser). Each loader also runs a fixed list of crafted edge
cases (huge sparse HDF5 datasets, wrong dtypes, dangling links, deep JSON, ...) before its mutations.

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

Isolation: every input runs in a forked worker process; no answer within ``--timeout`` seconds (+2) counts as
a crash (a hang: HDF5 can loop in C code, where no signal reaches Python) and the worker is replaced.
Memory: the worker's address space is capped at its size + ``--mem-cap-mb`` (default 1024), so a loader that
believes a huge declared length fails loudly (MemoryError: a crash) instead of swapping the machine; the
peak RSS growth of every input is measured (VmHWM reset before each one) and the largest is reported.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import hashlib
import io
import json
import math
import os
import re
import resource
import shutil
import signal
import struct
import sys
import tempfile
import time
import traceback
import zipfile
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import ckks  # noqa: E402
from nn import artifacts, container, workflow  # noqa: E402
from nn import encrypted as enc  # noqa: E402
from nn.data import DataSchemaError, load_xy, preprocess, save_xy  # noqa: E402
from nn.model import Dense, ModelFormatError, PlainNetwork, Polynomial, load_network  # noqa: E402
from nn.plan import plan_inference  # noqa: E402
from nn.table import load_table  # noqa: E402

SHIPPED_MODEL = ROOT / "models" / "clinical"
SHIPPED_CSV = ROOT / "data" / "diabetes_dataset.csv.zip"
PARAMS = ckks.Parameters(ring_degree=64, moduli_bits=(40, 30, 30), special_moduli_bits=(40,), scale_bits=30,
                         security=None)
OUTCOMES = ("rejected", "identical", "faithful", "ignorable", "different", "crash")
BUGS = ("different", "crash")
DIGEST = 32  # the SHA-256 that ends a ckks buffer
INTERESTING = (0, 1, 2, 3, 0x7F, 0x80, 0xFF, 0x100, 0x7FFF, 0x8000, 0xFFFF, 0x10000, 2**31 - 1, 2**31,
               2**32 - 1, 2**32, 2**40, 2**53, 2**61, 2**63 - 1, 2**63, 2**64 - 1)
FOREIGN_MAGICS = (b"\x89HDF\r\n\x1a\n", b"CKKSLAB\0", b"CKKSLAB-NN", b"PK\x03\x04", b"\x89PNG\r\n\x1a\n",
                  b"{", b"[", b"\xef\xbb\xbf", b"\xff\xfe", b"\x00" * 16, b"year,gender,age\n")


class FuzzTimeout(BaseException):
    """One input took longer than the per-input time limit (a hang counts as a crash)."""


# ------------------------------------------------------------------------------------------------ randomness


class Draw(Protocol):
    """Where mutations get their choices: a seeded numpy Generator (the script) or hypothesis (the tests)."""

    def int(self, lo: int, hi: int) -> int: ...  # inclusive bounds

    def bytes(self, n: int) -> bytes: ...


class NumpyDraw:
    """Choices from a seeded PCG64 (reproducible long runs)."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)

    def int(self, lo: int, hi: int) -> int:
        return int(self.rng.integers(lo, hi + 1)) if hi > lo else lo

    def bytes(self, n: int) -> bytes:
        return self.rng.bytes(n)


class HypothesisDraw:
    """Choices drawn from hypothesis's ``st.data()`` (the short fuzz in the tests; shrinkable, replayable)."""

    def __init__(self, data: Any) -> None:
        from hypothesis import strategies

        self.data, self.st = data, strategies

    def int(self, lo: int, hi: int) -> int:
        return self.data.draw(self.st.integers(lo, hi)) if hi > lo else lo

    def bytes(self, n: int) -> bytes:
        return self.data.draw(self.st.binary(min_size=n, max_size=n))


def choice(draw: Draw, items: Sequence[Any]) -> Any:
    return items[draw.int(0, len(items) - 1)]


# ------------------------------------------------------------------------------------------------ mutations


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


# ------------------------------------------------------------------------------------------------ loaders


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


def _workdir() -> Path:
    base = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
    return Path(tempfile.mkdtemp(prefix="ckkslab-fuzz-", dir=base))


# ----- ckks -------------------------------------------------------------------------------------------------


def ckks_objects() -> dict[str, list[Any]]:
    """Seeds of every serializable type, at toy size (N = 64), several shapes each."""
    kg = ckks.KeyGenerator(PARAMS, seed=7)
    sk, pk = kg.secret_key, kg.public_key()
    rlk, gk = kg.relin_key(), kg.galois_keys(steps=[1, -1, 3], conjugate=True)
    encoder = ckks.Encoder(PARAMS)
    x = np.linspace(-1, 1, PARAMS.slots)
    ct = ckks.Encryptor(PARAMS, pk, seed=3).encrypt(encoder.encode(x))
    ev = ckks.Evaluator(PARAMS, relin_key=rlk, galois_keys=gk)
    product = ev.multiply(ct, ct)
    return {
        "parameters": [PARAMS],
        "plaintext": [encoder.encode(x), encoder.encode(x, level=0)],
        "ciphertext": [ct, product, ev.rescale(ev.relinearize(product))],
        "secret_key": [sk],
        "public_key": [pk],
        "relin_key": [rlk],
        "galois_keys": [gk, kg.galois_keys(steps=[2])],
        "server_bundle": [ckks.ServerBundle(PARAMS, pk, rlk, gk), ckks.ServerBundle(PARAMS),
                          ckks.ServerBundle(PARAMS, relin_key=rlk)],
    }


def ckks_problems(obj: Any) -> str:
    """'' if every residue of ``obj`` is below its prime and every field is in range for PARAMS."""
    p = PARAMS
    qp = np.array(p.moduli + p.special_moduli, dtype=np.uint64)

    def below(a: np.ndarray, moduli: np.ndarray) -> bool:
        return bool(np.all(a < moduli.reshape(-1, 1)))

    if isinstance(obj, (ckks.Plaintext, ckks.Ciphertext)):
        if not (0 <= obj.level <= p.max_level and math.isfinite(obj.scale) and obj.scale > 0):
            return f"level {obj.level} / scale {obj.scale}"
        if not below(obj.data, qp[: obj.level + 1]):
            return "a residue is not below its prime"
    elif isinstance(obj, ckks.SecretKey):
        if not np.all(np.abs(obj.coefficients.astype(np.int64)) <= 1):
            return "secret key coefficients outside {-1, 0, 1}"
    elif isinstance(obj, ckks.PublicKey):
        return "" if below(obj.data, qp) else "a public key residue is not below its prime"
    elif isinstance(obj, ckks.RelinKey):
        return "" if below(obj.key.data, qp) else "a relinearization key residue is not below its prime"
    elif isinstance(obj, ckks.GaloisKeys):
        if any(g % 2 == 0 or not 1 < g < 2 * p.ring_degree for g in obj.keys):
            return f"Galois elements {sorted(obj.keys)}"
        if not all(below(k.data, qp) for k in obj.keys.values()):
            return "a Galois key residue is not below its prime"
    elif isinstance(obj, ckks.ServerBundle):
        members = [m for m in (obj.public_key, obj.relin_key, obj.galois_keys) if m is not None]
        return "; ".join(filter(None, (ckks_problems(m) for m in members)))
    return ""


def ckks_loaders() -> list[Loader]:
    loaders = []
    for name, objects in ckks_objects().items():
        seeds = [ckks.to_bytes(o) for o in objects]

        def check(i: int, buf: bytes, obj: Any) -> str:
            problem = ckks_problems(obj)
            if problem:
                return f"invalid object: {problem}"
            again = ckks.to_bytes(obj)
            return "faithful" if again == buf else f"re-serializes to {len(again)} other bytes"

        loaders.append(Loader(f"ckks.{name}", seeds, lambda i, b: ckks.from_bytes(b, params=PARAMS),
                              (ckks.SerializationError,), check, reseal=True))
    return loaders


# ----- nn containers and plan -------------------------------------------------------------------------------


def tiny_network() -> PlainNetwork:
    rng = np.random.default_rng(5)
    return PlainNetwork([Dense(rng.uniform(-1, 1, (3, 4)), rng.uniform(-1, 1, 4), "dense"),
                         Polynomial((0.0, 0.0, 1.0), "square"),
                         Dense(rng.uniform(-1, 1, (4, 1)), rng.uniform(-1, 1, 1), "dense_1"),
                         Polynomial((0.1, 0.5, 0.25), "poly")], 3)


def toy_models() -> tuple[ckks.Parameters, list[bytes], list[bytes], list[enc.EncryptedModel]]:
    """Model and ciphertext containers of the tiny network at toy size (batch and single-record packing)."""
    net = tiny_network()
    calibration = np.random.default_rng(6).uniform(0, 1, (16, 3))
    plans = [plan_inference(net, calibration, batch_size=b, security=None, ring_degree=64, frac_bits=20)
             for b in (4, 1)]
    params = plans[0].params
    if any(p.params.fingerprint != params.fingerprint for p in plans):
        raise RuntimeError("toy plans disagree on parameters")
    kg = ckks.KeyGenerator(params, seed=9)
    encoder, encryptor = ckks.Encoder(params), ckks.Encryptor(params, kg.secret_key, seed=10)
    models = [enc.compile_model(net, plans[0], encoder, encryptor), enc.compile_model(net, plans[0], encoder),
              enc.compile_model(net, plans[1], encoder, encryptor)]
    inputs = enc.encrypt_batch(calibration[:4], plans[0], encoder, encryptor)
    ev = ckks.Evaluator(params, relin_key=kg.relin_key(), galois_keys=kg.galois_keys(
        sorted(set(plans[0].rotation_steps) | set(plans[1].rotation_steps))))
    outputs = enc.predict(models[0], inputs, ev)
    cipher_seeds = [artifacts.ciphertexts_to_bytes(inputs, {"records": 4}),
                    artifacts.ciphertexts_to_bytes(outputs, {"records": 4, "output_dim": 1}),
                    artifacts.ciphertexts_to_bytes([], {})]
    return params, [artifacts.model_to_bytes(m) for m in models], cipher_seeds, models


def model_problems(model: enc.EncryptedModel) -> str:
    """'' if the model is consistent enough for ``nn.encrypted.predict``, else what is wrong."""
    plan = model.plan
    if len(model.layers) != len(plan.layer_levels):
        return f"{len(model.layers)} layers, plan has {len(plan.layer_levels)} levels"
    if not (isinstance(model.input_dim, int) and model.input_dim >= 1 and model.output_dim >= 1):
        return f"input_dim {model.input_dim!r} / output_dim {model.output_dim!r}"
    previous = None
    for layer, level in zip(model.layers, plan.layer_levels, strict=True):
        if not isinstance(layer.name, str) or layer.level != level:
            return f"layer {layer.name!r} at level {layer.level!r}, plan says {level}"
        if isinstance(layer, enc.CompiledActivation):
            if not 2 <= len(layer.coeffs) <= 3 or not all(
                    isinstance(c, (int, float)) and not isinstance(c, bool) and math.isfinite(c)
                    for c in layer.coeffs):
                return f"activation coefficients {layer.coeffs!r}"
            continue
        if not (isinstance(layer.inputs, int) and isinstance(layer.outputs, int) and layer.inputs >= 1
                and layer.outputs >= 1):
            return f"dense layer with {layer.inputs!r} inputs, {layer.outputs!r} outputs"
        if previous is not None and layer.inputs != previous:
            return f"dense layer takes {layer.inputs} ciphertexts, the previous one gives {previous}"
        previous = layer.outputs
        objects = list(layer.diagonals.values()) + list(layer.biases.values())
        if any(o.level != layer.level for o in objects):
            return f"weights of layer {layer.name!r} are not at its level {layer.level}"
        for key in layer.diagonals:
            if plan.packing == "batch":
                if len(key) != 3 or not (0 <= key[0] < layer.inputs and 0 <= key[1] < layer.outputs
                                         and 0 <= key[2] < plan.features_per_ciphertext):
                    return f"diagonal key {key!r} out of range"
            elif len(key) != 2 or not all(isinstance(k, int) and 0 <= k < plan.block for k in key):
                return f"diagonal key {key!r} out of range"
    return ""


def same_container(buf: bytes, again: bytes) -> str:
    """faithful: re-serialized identically; ignorable: only the JSON text's formatting differs; else why."""
    if again == buf:
        return "faithful"
    ours, theirs = split_container(buf), split_container(again)
    if ours is None or theirs is None:
        return "re-serializes to another layout"
    if ours[1] != theirs[1]:
        return "re-serializes to other objects"
    a, b = json.loads(ours[0]), json.loads(theirs[0])
    if a == b or json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True):
        return "ignorable"
    changed = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
    return f"header decoded differently: {changed}"


def container_loaders() -> list[Loader]:
    params, model_seeds, cipher_seeds, _ = toy_models()

    def check_model(i: int, buf: bytes, obj: Any) -> str:
        problem = model_problems(obj)
        if problem:
            return f"inconsistent model: {problem}"
        return same_container(buf, artifacts.model_to_bytes(obj))

    def check_cipher(i: int, buf: bytes, obj: Any) -> str:
        return same_container(buf, artifacts.ciphertexts_to_bytes(obj[0], obj[1]))

    return [
        Loader("nn.model_container", model_seeds, lambda i, b: artifacts.model_from_bytes(b, params),
               (artifacts.ArtifactError,), check_model, kind="container",
               edge_cases=container_edge_cases(model_seeds[0])),
        Loader("nn.cipher_container", cipher_seeds, lambda i, b: artifacts.ciphertexts_with_info(b, params),
               (artifacts.ArtifactError,), check_cipher, kind="container",
               edge_cases=container_edge_cases(cipher_seeds[0])),
    ]


def container_edge_cases(seed: bytes) -> list[tuple[int, str, bytes]]:
    """Headers that are not objects, absurd counts and sizes, a container of the other kind."""
    header, blobs = split_container(seed)
    magic, version = container.MAGIC, struct.pack("<H", container.VERSION)
    cases = [(name, join_container(text.decode("utf-8", errors="replace"), blobs))
             for name, text in json_edge_cases() if name not in ("invalid-utf8", "utf16", "nul")]
    cases += [
        ("invalid-utf8-header", magic + version + struct.pack("<I", 4) + b'"\xff"' + struct.pack("<I", 0)),
        ("count-2^32-1", magic + version + struct.pack("<I", len(header)) + header.encode()
         + struct.pack("<I", 2**32 - 1)),
        ("object-size-2^64-1", magic + version + struct.pack("<I", len(header)) + header.encode()
         + struct.pack("<IQ", 1, 2**64 - 1)),
        ("header-length-2^32-1", magic + version + struct.pack("<I", 2**32 - 1)),
        ("other-kind", join_container(json.dumps({**json.loads(header), "kind": "other"}, sort_keys=True),
                                      blobs)),
        ("no-objects", join_container(header, [])),
        ("magic-only", magic),
    ]
    return [(0, name, data) for name, data in cases]


def plan_problems(plan: Any) -> str:
    """'' if every plan field has the type and range the rest of nn relies on."""
    p = plan.params
    ints = ("batch_size", "block", "features_per_ciphertext", "int_bits", "frac_bits", "input_dim")
    if any(not isinstance(getattr(plan, k), int) or isinstance(getattr(plan, k), bool) or getattr(plan, k) < 1
           for k in ints):
        return "an integer field is not a positive integer"
    if plan.packing not in ("batch", "single"):
        return f"packing {plan.packing!r}"
    if plan.block & (plan.block - 1) or plan.block * plan.features_per_ciphertext > p.slots:
        return f"block {plan.block} x {plan.features_per_ciphertext} does not fit {p.slots} slots"
    if not all(isinstance(s, int) and not isinstance(s, bool) for s in plan.rotation_steps):
        return "rotation steps are not integers"
    if not all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= p.max_level
               for v in plan.layer_levels):
        return f"layer levels {plan.layer_levels!r} outside [0, {p.max_level}]"
    if not (isinstance(plan.value_bound, (int, float)) and math.isfinite(plan.value_bound)
            and plan.value_bound > 0):
        return f"value_bound {plan.value_bound!r}"
    return ""


def plan_loader() -> Loader:
    net = tiny_network()
    calibration = np.random.default_rng(6).uniform(0, 1, (16, 3))
    plans = [plan_inference(net, calibration, batch_size=4, security=None, ring_degree=64, frac_bits=20),
             plan_inference(net, calibration, batch_size=1, security=None, ring_degree=64, frac_bits=20)]
    seeds = [json.dumps(artifacts.plan_to_dict(p), indent=1).encode() for p in plans]
    work = _workdir()
    (work / "context").mkdir()

    def load(i: int, buf: bytes) -> Any:
        (work / "context" / "plan.json").write_bytes(buf)
        return workflow.load_plan(work)

    def check(i: int, buf: bytes, plan: Any) -> str:
        problem = plan_problems(plan)
        if problem:
            return f"invalid plan: {problem}"
        written = json.loads(json.dumps(artifacts.plan_to_dict(plan)))
        read = json.loads(buf)
        if written == read:
            return "ignorable" if any(json.loads(s) == read for s in seeds) else "faithful"
        return "plan differs from the file"

    named = (workflow.WorkflowError, artifacts.ArtifactError, ckks.CkksError)
    return Loader("nn.plan_json", seeds, load, named, check, kind="json",
                  edge_cases=[(0, name, data) for name, data in json_edge_cases()],
                  cleanup=lambda: shutil.rmtree(work, ignore_errors=True))


# ----- Keras model directory --------------------------------------------------------------------------------


def network_problems(net: PlainNetwork) -> str:
    """'' if the network is finite and runs."""
    for layer in net.layers:
        arrays = [layer.weights, layer.bias] if isinstance(layer, Dense) else [np.asarray(layer.coeffs)]
        if any(not np.all(np.isfinite(a)) for a in arrays):
            return f"layer {layer.name!r} holds NaN or infinite values"
    if not math.isfinite(net.decision.threshold):
        return "threshold not finite"
    probe = np.linspace(0, 1, 2 * net.input_dim).reshape(2, net.input_dim)
    with np.errstate(all="ignore"):
        out = net.forward(probe)
    if out.shape != (2, net.output_dim):
        return f"forward gives shape {out.shape}"
    return ""


def same_network(a: PlainNetwork, b: PlainNetwork) -> bool:
    if (a.input_dim, a.output_dim, a.decision, len(a.layers)) != (b.input_dim, b.output_dim, b.decision,
                                                                  len(b.layers)):
        return False
    for x, y in zip(a.layers, b.layers, strict=True):
        if type(x) is not type(y):
            return False
        if isinstance(x, Dense) and not (np.array_equal(x.weights, y.weights)
                                         and np.array_equal(x.bias, y.bias)):
            return False
        if isinstance(x, Polynomial) and x.coeffs != y.coeffs:
            return False
    return True


def keras3_files(directory: Path) -> dict[str, bytes]:
    """A small Keras 3 layout model (``layers/<name>/vars/<i>``), written with h5py."""
    import h5py

    rng = np.random.default_rng(8)
    layers = [{"class_name": "InputLayer", "config": {"batch_shape": [None, 3], "name": "input_layer"}},
              {"class_name": "Dense", "config": {"name": "dense", "units": 2, "activation": "linear"}},
              {"class_name": "SquareActivation", "config": {"name": "square_activation"}},
              {"class_name": "Dense", "config": {"name": "dense_1", "units": 1, "activation": None}}]
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "model.json").write_text(json.dumps({"module": "keras", "class_name": "Sequential",
                                                      "config": {"name": "sequential", "layers": layers}}))
    with h5py.File(directory / "model.h5", "w", track_order=True) as handle:
        shapes_of = {"dense": ((3, 2), (2,)), "dense_1": ((2, 1), (1,)), "square_activation": ()}
        for name, shapes in shapes_of.items():
            group = handle.create_group(f"layers/{name}/vars")
            group.attrs["name"] = name
            for i, shape in enumerate(shapes):
                values = rng.uniform(-1, 1, shape).astype(np.float32)
                group.create_dataset(str(i), data=values, track_times=False)
    (directory / "ckkslab.json").write_text(json.dumps({"output": "logit", "threshold": 0.25}))
    return {name: (directory / name).read_bytes() for name in ("model.json", "model.h5", "ckkslab.json")}


def h5_edge_cases_model(directory: Path) -> list[tuple[str, bytes]]:
    """Crafted model.h5 files for the shipped model.json: legal HDF5, wrong content."""
    import h5py

    cases = []
    names = ("dense", "dense_1", "dense_2")

    def build(name: str, fill: Callable[[h5py.File], None]) -> None:
        path = directory / f"edge-{name}.h5"
        with h5py.File(path, "w") as handle:
            fill(handle)
        cases.append((name, path.read_bytes()))

    def keras2(handle: h5py.File, make: Callable[[h5py.Group, str, str], None]) -> None:
        handle.attrs["layer_names"] = np.array([n.encode() for n in names])
        for n in names:
            g = handle.create_group(n)
            g.attrs["weight_names"] = np.array([f"{n}/kernel:0".encode(), f"{n}/bias:0".encode()])
            make(g, f"{n}/kernel:0", f"{n}/bias:0")

    shipped = load_network(SHIPPED_MODEL)
    dims = {layer.name: layer.weights.shape for layer in shipped.layers if isinstance(layer, Dense)}

    def proper(g: h5py.Group, k: str, b: str) -> None:
        shape = dims[g.name.strip("/")]
        g[k] = np.zeros(shape, np.float32)
        g[b] = np.zeros(shape[1], np.float32)

    build("weight-name-without-dataset", lambda h: keras2(h, lambda g, k, b: g.create_dataset(k, data=[1.0])))
    build("kernel-strings", lambda h: keras2(h, lambda g, k, b: (g.create_dataset(k, data=np.array(
        [b"a", b"b"])), g.create_dataset(b, data=[0.0]))))
    build("kernel-is-group", lambda h: keras2(h, lambda g, k, b: (g.create_group(k),
                                                                  g.create_dataset(b, data=[0.0]))))
    build("huge-sparse-kernel", lambda h: keras2(h, lambda g, k, b: (g.create_dataset(
        k, shape=(2**40, 20), dtype="f8", chunks=(1, 20)), g.create_dataset(b, data=np.zeros(20)))))
    build("large-sparse-kernel", lambda h: keras2(h, lambda g, k, b: (g.create_dataset(
        k, shape=(2**20, 20), dtype="f8", chunks=(1024, 20)), g.create_dataset(b, data=np.zeros(20)))))
    build("kernel-nan", lambda h: keras2(h, lambda g, k, b: (proper(g, k, b), g[k].__setitem__(
        (0, 0), np.nan))))
    build("kernel-compound", lambda h: keras2(h, lambda g, k, b: (g.create_dataset(k, data=np.zeros(
        3, dtype=[("a", "f8"), ("b", "i4")])), g.create_dataset(b, data=[0.0]))))
    build("layer-names-not-strings", lambda h: h.attrs.__setitem__("layer_names", np.arange(3)))
    build("empty-file", lambda h: None)
    build("soft-link-dangling", lambda h: keras2(h, lambda g, k, b: (
        g.__setitem__(k, h5py.SoftLink("/nowhere")), g.create_dataset(b, data=[0.0]))))
    shipped_h5 = bytearray((SHIPPED_MODEL / "model.h5").read_bytes())
    shipped_h5[2472:2480] = bytes(8)  # HDF5 1.14.6 loops forever on this one (found by the fuzzing)
    cases.append(("shipped-8-zero-bytes-at-2472", bytes(shipped_h5)))
    shipped_h5 = bytearray((SHIPPED_MODEL / "model.h5").read_bytes())
    shipped_h5[11233] = 0x05  # was 0x01: h5py segfaults reading an attribute (found by the fuzzing)
    cases.append(("shipped-byte-11233-set-to-5", bytes(shipped_h5)))
    build("scalar-kernel", lambda h: keras2(h, lambda g, k, b: (g.create_dataset(k, data=1.0),
                                                               g.create_dataset(b, data=[0.0]))))
    return cases


def model_loaders() -> list[Loader]:
    work = _workdir()
    files = ("model.json", "model.h5", "ckkslab.json")
    shipped = {name: (SHIPPED_MODEL / name).read_bytes() for name in files}
    seeds_files = [shipped, keras3_files(work / "k3-source")]
    dirs = []
    for i, files in enumerate(seeds_files):
        d = work / f"seed{i}"
        d.mkdir()
        for name, data in files.items():
            (d / name).write_bytes(data)
        dirs.append(d)
    reference = [load_network(d) for d in dirs]
    edge_h5 = h5_edge_cases_model(work)

    def make(target: str, kind: str) -> Loader:
        def load(i: int, buf: bytes) -> Any:
            path = dirs[i] / target
            path.write_bytes(buf)
            try:
                return load_network(dirs[i])
            finally:
                path.write_bytes(seeds_files[i][target])

        def check(i: int, buf: bytes, net: Any) -> str:
            problem = network_problems(net)
            if problem:
                return f"invalid network: {problem}"
            return "ignorable" if same_network(net, reference[i]) else "faithful"

        edges: list[tuple[int, str, bytes]] = []
        if target == "model.h5":
            edges = [(0, name, data) for name, data in edge_h5]
        elif target in ("model.json", "ckkslab.json"):
            edges = [(0, name, data) for name, data in json_edge_cases()]
        return Loader(f"nn.{kind}", [f[target] for f in seeds_files], load, (ModelFormatError,), check,
                      kind="binary" if target == "model.h5" else "json", edge_cases=edges)

    loaders = [make("model.json", "model_json"), make("model.h5", "model_h5"),
               make("ckkslab.json", "model_meta")]
    loaders[0].cleanup = lambda: shutil.rmtree(work, ignore_errors=True)
    return loaders


def json_edge_cases() -> list[tuple[str, bytes]]:
    return [("empty", b""), ("null", b"null"), ("deep", b"[" * 100000 + b"]" * 100000),
            ("bigint", b"9" * 5000), ("huge-float", b"1e400"), ("utf16", '{"a": 1}'.encode("utf-16")),
            ("bom", b'\xef\xbb\xbf{"class_name": "Sequential"}'), ("invalid-utf8", b'{"a": "\xff"}'),
            ("nan", b"NaN"), ("string", b'"Sequential"'), ("nul", b"\x00" * 64)]


# ----- HDF5 data and CSV ------------------------------------------------------------------------------------


def data_loader() -> Loader:
    import h5py

    work = _workdir()
    rng = np.random.default_rng(4)
    sources = [(rng.uniform(0, 1, (8, 3)), rng.integers(0, 2, (8, 1)).astype(float)),
               (rng.uniform(0, 1, (5, 14)), np.ones((5, 1)))]
    seeds, y_files, dirs = [], [], []
    for i, (x, y) in enumerate(sources):
        d = work / f"seed{i}"
        save_xy(d, "test", x, y)
        seeds.append((d / "x_test.h5").read_bytes())
        y_files.append((d / "y_test.h5").read_bytes())
        dirs.append(d)

    def load(i: int, buf: bytes) -> Any:
        (dirs[i] / "x_test.h5").write_bytes(buf)
        return load_xy(dirs[i], "test")

    def check(i: int, buf: bytes, xy: Any) -> str:
        x, y = xy
        if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
            return "accepted NaN or infinite values"
        if not np.all(np.isin(y, (0.0, 1.0))):
            return "accepted labels other than 0/1"
        same = x.shape == sources[i][0].shape and np.array_equal(x, sources[i][0])
        return "ignorable" if same else "faithful"

    edges = []
    for name, fill in h5_data_edge_fills().items():
        path = work / f"edge-{name}.h5"
        with h5py.File(path, "w") as handle:
            fill(handle)
        edges.append((0, name, path.read_bytes()))
    return Loader("nn.data_h5", seeds, load, (DataSchemaError,), check, edge_cases=edges,
                  cleanup=lambda: shutil.rmtree(work, ignore_errors=True))


def h5_data_edge_fills() -> dict[str, Callable[[Any], Any]]:
    """Legal HDF5 files with the wrong content for x_test.h5 (the seed's y_test.h5 has 8 rows)."""
    import h5py

    return {
        "wrong-dataset-name": lambda h: h.create_dataset("x", data=np.zeros((8, 3))),
        "strings": lambda h: h.create_dataset("x_test", data=np.array([b"a"] * 8)),
        "group": lambda h: h.create_group("x_test"),
        "three-dims": lambda h: h.create_dataset("x_test", data=np.zeros((8, 3, 2))),
        "scalar": lambda h: h.create_dataset("x_test", data=1.0),
        "compound": lambda h: h.create_dataset("x_test", data=np.zeros(8, dtype=[("a", "f8"), ("b", "i4")])),
        "huge-sparse": lambda h: h.create_dataset("x_test", shape=(2**40, 3), dtype="f8", chunks=(1024, 3)),
        "large-sparse": lambda h: h.create_dataset("x_test", shape=(2**23, 3), dtype="f8", chunks=(4096, 3)),
        "nan": lambda h: h.create_dataset("x_test", data=np.full((8, 3), np.nan)),
        "dangling-link": lambda h: h.__setitem__("x_test", h5py.SoftLink("/nowhere")),
        "external-link": lambda h: h.__setitem__("x_test", h5py.ExternalLink("/nonexistent.h5", "/x")),
        "empty-rows": lambda h: h.create_dataset("x_test", shape=(0, 3), dtype="f8"),
        "null-dataspace": lambda h: h.create_dataset("x_test", data=h5py.Empty("f8")),
    }


def csv_seed_tables() -> list[str]:
    import pandas as pd

    table = pd.read_csv(SHIPPED_CSV, nrows=12)
    prediction = table.rename(columns={"hbA1c_level": "HbA1c_level"})[
        ["gender", "age", "hypertension", "heart_disease", "smoking_history", "bmi", "HbA1c_level",
         "blood_glucose_level", "diabetes"]]
    return [t.to_csv(index=False, lineterminator="\n") for t in (table, prediction)]


def table_check(seed_tables: list[Any]) -> Callable[[int, bytes, Any], str]:
    def check(i: int, buf: bytes, result: Any) -> str:
        table, schema = result
        try:
            x, y, _ = preprocess(table, schema)
        except DataSchemaError:
            return "load_table accepted a table that preprocess refuses"
        if not np.all(np.isfinite(x)):
            return "accepted NaN or infinite features"
        return "ignorable" if table.equals(seed_tables[i]) else "faithful"

    return check


def csv_loaders() -> list[Loader]:
    work = _workdir()
    texts = csv_seed_tables()
    seeds = [t.encode() for t in texts]
    seed_tables = [load_table(_write(work / f"seed{i}.csv", s))[0] for i, s in enumerate(seeds)]

    def load_csv(i: int, buf: bytes) -> Any:
        return load_table(_write(work / "input.csv", buf))

    zips = []
    for i, s in enumerate(seeds):
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
            z.writestr(f"table{i}.csv", s)
        zips.append(out.getvalue())

    def load_zip(i: int, buf: bytes) -> Any:
        return load_table(_write(work / "input.zip", buf))

    edges = [(0, "empty", b""), (0, "header-only", seeds[0].split(b"\n")[0] + b"\n"),
             (0, "binary", bytes(range(256)) * 4), (0, "utf16", texts[0].encode("utf-16")),
             (0, "inf-cell", seeds[0].replace(b",27.32,", b",inf,", 1)),
             (0, "huge-cell", seeds[0].replace(b",27.32,", b"," + b"9" * 400 + b",", 1))]
    zip_edges = [(0, "two-files", _zip({"a.csv": seeds[0], "b.csv": seeds[1]})), (0, "no-file", _zip({})),
                 (0, "not-csv-inside", _zip({"a.csv": bytes(range(256)) * 4}))]
    return [Loader("nn.csv", seeds, load_csv, (DataSchemaError,), table_check(seed_tables), kind="csv",
                   edge_cases=edges, cleanup=lambda: shutil.rmtree(work, ignore_errors=True)),
            Loader("nn.csv_zip", zips, load_zip, (DataSchemaError,), table_check(seed_tables),
                   edge_cases=zip_edges)]


def _zip(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for name, data in files.items():
            z.writestr(name, data)
    return out.getvalue()


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


BUILDERS: dict[str, Callable[[], list[Loader]]] = {
    "ckks": ckks_loaders, "containers": container_loaders, "plan": lambda: [plan_loader()],
    "model": model_loaders, "data": lambda: [data_loader()], "csv": csv_loaders,
}


def build_loaders(names: Sequence[str] | None = None) -> list[Loader]:
    """Every loader, or those named in ``names`` by full name (``nn.csv``) or prefix (``ckks``, ``nn``)."""
    loaders = [ld for builder in BUILDERS.values() for ld in builder()]
    if names is None:
        return loaders
    kept = [ld for ld in loaders if any(ld.name == n or ld.name.startswith(n + ".") for n in names)]
    # A loader's cleanup may remove a directory its siblings read (the model files, the CSV work directory):
    # those of the loaders left out run with the first kept loader's, after the run.
    cleanups = [ld.cleanup for ld in loaders if ld.cleanup is not None and (ld not in kept or ld is kept[0])]
    if kept:
        kept[0].cleanup = lambda: [cleanup() for cleanup in cleanups]
    else:
        for cleanup in cleanups:
            cleanup()
    return kept


def foreign_samples(loaders: Sequence[Loader]) -> list[bytes]:
    """Other formats to splice in: magic numbers and the first seed of every loader (first 4 KiB)."""
    return list(FOREIGN_MAGICS) + [ld.seeds[0][:4096] for ld in loaders]


# ------------------------------------------------------------------------------------------------ running


@contextlib.contextmanager
def memory_cap(extra_mb: int) -> Iterator[None]:
    """Cap the address space at its current size + ``extra_mb`` (restored on exit)."""
    if extra_mb <= 0:
        yield
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    current = _vm_size()
    limit = current + extra_mb * 2**20
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def _vm_size() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


def peak_rss_mb() -> float:
    """Peak resident set size since the last ``reset_peak_rss`` (VmHWM), or ru_maxrss where unavailable."""
    with contextlib.suppress(OSError), open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss_mb() -> float:
    with contextlib.suppress(OSError), open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return peak_rss_mb()


def reset_peak_rss() -> None:
    """Reset VmHWM to the current RSS (Linux >= 4.0: write 5 to /proc/self/clear_refs); no-op elsewhere."""
    with contextlib.suppress(OSError), open("/proc/self/clear_refs", "w") as f:
        f.write("5")


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


class Isolated:
    """Runs ``classify`` in a forked worker process, so that a hang inside C code (an HDF5 loop that no
    signal interrupts) is caught: no answer within ``timeout`` seconds counts as a crash, and the worker is
    killed and forked again. The worker also measures each input's peak RSS growth (VmHWM reset before every
    input).
    """

    def __init__(self, loader: Loader, timeout: float, mem_cap_mb: int = 1024) -> None:
        import multiprocessing

        self.loader, self.timeout, self.mem_cap_mb = loader, timeout, mem_cap_mb
        self.context = multiprocessing.get_context("fork")
        self.restarts = 0
        self._start()

    def _start(self) -> None:
        parent, child = self.context.Pipe()
        self.process = self.context.Process(target=_worker, args=(self.loader, child, self.timeout,
                                                                   self.mem_cap_mb), daemon=True)
        self.process.start()
        child.close()
        self.conn = parent

    def _restart(self) -> None:
        self.process.kill()
        self.process.join()
        self.conn.close()
        self.restarts += 1
        self._start()

    def classify(self, i: int, buf: bytes) -> tuple[str, str, float]:
        """(outcome, detail, peak RSS growth in MB) of one input."""
        self.conn.send((i, buf))
        if not self.conn.poll(self.timeout + 2):
            self._restart()
            return "crash", f"hang: no answer after {self.timeout + 2:g} s (worker killed) at ?", 0.0
        try:
            return self.conn.recv()
        except EOFError:
            self.process.join(1)
            code = self.process.exitcode
            self._restart()
            return "crash", f"worker died: exit code {code} (-11: a segmentation fault) at ?", 0.0

    def close(self) -> None:
        with contextlib.suppress(OSError, BrokenPipeError):
            self.conn.send(None)
        self.process.join(5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()

    def __enter__(self) -> Isolated:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _worker(loader: Loader, conn: Any, timeout: float, mem_cap_mb: int) -> None:
    with memory_cap(mem_cap_mb):
        while True:
            message = conn.recv()
            if message is None:
                return
            i, buf = message
            reset_peak_rss()
            rss = current_rss_mb()
            outcome, detail = classify(loader, i, buf, timeout)
            conn.send((outcome, detail, max(0.0, peak_rss_mb() - rss)))


def run_loader(loader: Loader, count: int, seed: int, foreign: Sequence[bytes], timeout: float,
               crash_dir: Path | None = None, progress: bool = False, mem_cap_mb: int = 1024) -> Result:
    """``count`` inputs through ``loader``: its edge cases, then mutations; each in an ``Isolated`` worker."""
    result = Result(loader.name)
    draw = NumpyDraw(seed)
    t0 = time.perf_counter()
    cases: Iterator[tuple[int, str, bytes]] = iter(loader.edge_cases)
    with Isolated(loader, timeout, mem_cap_mb) as runner:
        for n in range(count):
            case = next(cases, None)
            if case is None:
                i, buf = mutate(loader, draw, foreign)
                label = f"mutation #{n} of seed {i}"
            else:
                i, name, buf = case
                label = f"edge case {name}"
            outcome, detail, grown = runner.classify(i, buf)
            result.add(outcome, detail, buf, label)
            result.rss_growth_mb = max(result.rss_growth_mb, grown)
            if crash_dir is not None and outcome in BUGS and result.counts[outcome] <= 20:
                crash_dir.mkdir(parents=True, exist_ok=True)
                (crash_dir / f"{loader.name}-{outcome}-{result.counts[outcome]}.bin").write_bytes(buf)
            if progress and n and n % 5000 == 0:
                print(f"  {loader.name}: {n}/{count} ({time.perf_counter() - t0:.0f} s) "
                      f"{dict(result.counts)}", file=sys.stderr, flush=True)
    result.seconds = time.perf_counter() - t0
    return result


def table(results: Sequence[Result]) -> str:
    head = (f"{'loader':<22}{'inputs':>9}{'rejected':>10}{'identical':>10}{'faithful':>10}{'ignorable':>10}"
            f"{'different':>10}{'crash':>8}{'seconds':>9}{'max dRSS MB':>12}")
    lines = [head, "-" * len(head)]
    for r in results:
        c = r.counts
        lines.append(f"{r.loader:<22}{r.inputs:>9}{c['rejected']:>10}{c['identical']:>10}{c['faithful']:>10}"
                     f"{c['ignorable']:>10}{c['different']:>10}{c['crash']:>8}{r.seconds:>9.1f}"
                     f"{r.rss_growth_mb:>12.1f}")
    return "\n".join(lines)


def loader_seed(seed: int, name: str) -> int:
    """The mutation seed of one loader: the same whichever loaders a run selects."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{name}".encode()).digest()[:8], "little")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--per-loader", type=int, default=10000, help="inputs per loader (default 10000)")
    parser.add_argument("--loaders", default=None,
                        help="comma-separated loader names or prefixes (default all)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the mutation generator (default 1)")
    parser.add_argument("--timeout", type=float, default=8.0,
                        help="seconds per input before it counts as a hang (default 8: above the 5 s after "
                        "which the loaders' HDF5 sandbox refuses a file it cannot finish reading; a normal "
                        "input takes milliseconds)")
    parser.add_argument("--mem-cap-mb", type=int, default=1024, help="address space allowed above the start "
                        "(default 1024; 0 = no cap)")
    parser.add_argument("--json", type=Path, default=None, help="write the results as JSON")
    parser.add_argument("--crash-dir", type=Path, default=None,
                        help="save the first 20 bug inputs per loader")
    parser.add_argument("--list", action="store_true", help="list the loaders and exit")
    args = parser.parse_args(argv)
    names = None if args.loaders is None else [n.strip() for n in args.loaders.split(",") if n.strip()]
    loaders = build_loaders(names)
    if not loaders:
        parser.error(f"--loaders {args.loaders!r} names no loader (see --list)")
    if args.list:
        for ld in loaders:
            print(f"{ld.name:<22} {len(ld.seeds)} seed(s), {len(ld.edge_cases)} edge case(s), named: "
                  + ", ".join(t.__name__ for t in ld.named))
        return 0
    foreign = foreign_samples(loaders)
    results = []
    started = time.time()
    print(f"fuzzing {len(loaders)} loaders x {args.per_loader} inputs, seed {args.seed}, memory cap "
          f"+{args.mem_cap_mb} MB, python {sys.version.split()[0]}", flush=True)
    for loader in loaders:
        result = run_loader(loader, args.per_loader, loader_seed(args.seed, loader.name), foreign,
                            args.timeout, args.crash_dir, progress=True, mem_cap_mb=args.mem_cap_mb)
        results.append(result)
        print(table([result]).splitlines()[-1], flush=True)
        for key, example in result.examples.items():
            print(f"    {example['count']:>6} x {key}  (first: {example['input']}, {example['size']} "
                  "bytes)", flush=True)
    for ld in loaders:
        if ld.cleanup is not None:
            ld.cleanup()
    print()
    print(table(results))
    total = sum(r.inputs for r in results)
    bugs = sum(r.counts[o] for r in results for o in BUGS)
    print(f"\n{total} inputs in {time.time() - started:.0f} s; {bugs} bug outcome(s) "
          f"(crash + different); peak RSS {peak_rss_mb():.0f} MB")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        payload = {"per_loader": args.per_loader, "seed": args.seed, "mem_cap_mb": args.mem_cap_mb,
                   "results": [r.row() for r in results]}
        args.json.write_text(json.dumps(payload, indent=1) + "\n")
    return 1 if bugs else 0


if __name__ == "__main__":
    sys.exit(main())
