"""The byte layout below every ckks object: little-endian integers, arrays as dtype code + shape + raw
elements, and a reader that checks every declared length against the bytes that remain before taking them."""

from __future__ import annotations

import math
import struct

import numpy as np

from ..errors import SerializationError

DTYPES = {1: np.dtype("<u8"), 2: np.dtype("i1")}
U8, U32, U64 = struct.Struct("<B"), struct.Struct("<I"), struct.Struct("<Q")


def array_parts(a: np.ndarray, code: int, what: str) -> list[bytes | memoryview]:
    """An array as written in a body: dtype code (u8), ndim (u8), dims (u64 each), raw little-endian C-order
    elements (``code``: 1 = uint64, 2 = int8)."""
    if not isinstance(a, np.ndarray) or a.dtype != DTYPES[code].newbyteorder("="):
        raise SerializationError(f"cannot save {what}: expected a {DTYPES[code]} numpy array, "
                                 f"got {getattr(a, 'dtype', type(a).__name__)}")
    data = np.ascontiguousarray(a, dtype=DTYPES[code])
    return [struct.pack(f"<BB{a.ndim}Q", code, a.ndim, *a.shape), memoryview(data).cast("B")]


class Reader:
    """Reads fields from a buffer, checking every length against the bytes that remain."""

    def __init__(self, buf: memoryview, what: str) -> None:
        self.buf, self.pos, self.what = buf, 0, what

    def fail(self, message: str) -> SerializationError:
        return SerializationError(f"{self.what}: {message}")

    def take(self, n: int, field: str) -> memoryview:
        if n > len(self.buf) - self.pos:
            raise self.fail(f"truncated: {field} needs {n} bytes, only {len(self.buf) - self.pos} remain")
        self.pos += n
        return self.buf[self.pos - n : self.pos]

    def unpack(self, fmt: struct.Struct, field: str) -> tuple:
        return fmt.unpack(self.take(fmt.size, field))

    def array(self, shape: tuple[int, ...], code: int, field: str) -> np.ndarray:
        """The array ``field``, which must have exactly this shape and dtype code."""
        got_code, ndim = self.unpack(struct.Struct("<BB"), f"{field} header")
        if got_code != code:
            raise self.fail(f"{field} has dtype code {got_code}, expected {code} ({DTYPES[code]})")
        if ndim != len(shape):
            raise self.fail(f"{field} has {ndim} dimensions, expected {len(shape)} (shape {shape})")
        dims = self.unpack(struct.Struct(f"<{ndim}Q"), f"{field} shape")
        if dims != shape:
            raise self.fail(f"{field} has shape {dims}, expected {shape} for these parameters")
        count = math.prod(shape)
        raw = self.take(count * DTYPES[code].itemsize, field)
        native = DTYPES[code].newbyteorder("=")
        return np.frombuffer(raw, dtype=DTYPES[code], count=count).reshape(shape).astype(native)

    def done(self) -> None:
        if self.pos != len(self.buf):
            raise self.fail(f"{len(self.buf) - self.pos} unexpected bytes after the last field")
