"""Saving and loading ckks objects: a versioned, checksummed binary format, validated field by field on load.

One object per file, all integers little-endian:

    offset  size  field
    0       8     magic b"CKKSLAB\\0"
    8       2     format version (u16, currently 1)
    10      2     object type (u16, see ``ObjectType``)
    12      4     flags (u32): bit 0 = COMPLEX_SLOTS, the slots carry complex values (Plaintext and
                  Ciphertext only: ``complex_slots``); every other bit, and bit 0 on other types, must be 0
    16      16    parameter fingerprint (16 ASCII lowercase hex digits, ``Parameters.fingerprint``)
    32      8     body length B (u64)
    40      B     body (type-specific, below)
    40 + B  32    SHA-256 of bytes [0, 40 + B)

An array in a body is: dtype code (u8: 1 = uint64, 2 = int8), ndim (u8), ndim dims (u64 each), then the raw
little-endian elements in C order. Bodies:

    PARAMETERS     ring_degree u32, scale_bits u8, security u16 (0 = None), key_switch_digits u8 (0 = None),
                   count u8 + moduli_bits u8 each, count u8 + special_moduli_bits u8 each
    PLAINTEXT      level u16, scale f64, array (level + 1, N)
    CIPHERTEXT     level u16, scale f64, size u8 (2 or 3), array (size, level + 1, N)
    SECRET_KEY     array (N,) int8 of the ternary coefficients (the NTT form is recomputed on load)
    PUBLIC_KEY     array (2, L + 1 + K, N)
    RELIN_KEY      array (digits, 2, L + 1 + K, N)
    GALOIS_KEYS    count u32, then per key in ascending element order: Galois element u64, array as RELIN_KEY
    SERVER_BUNDLE  count u8, then records (type u16, length u64, body) in ascending type order: PARAMETERS
                   first, then optionally PUBLIC_KEY, RELIN_KEY, GALOIS_KEYS; a SECRET_KEY record is refused

Parameters and server bundles carry their parameters; every other object carries only the fingerprint, and
loading it needs ``params=`` (the parameters it must belong to): the fingerprint is compared, then every shape
is checked against N, the number of limbs of the level, the ciphertext size and the digits, and every residue
against its prime, so that a buffer either loads as exactly the object that was saved or raises
``SerializationError``. Declared lengths are compared with the bytes actually present before anything is
allocated.

The complex-slots flag lives in the header's flags field, which version 1 reserved as 0: a file of real
values reads as before, and a reader that predates the flag refuses a complex file ("flags field is 0x1")
instead of decoding it as real numbers.
"""

from __future__ import annotations

import hashlib
import io
import math
import struct
from enum import IntEnum
from pathlib import Path
from typing import BinaryIO

import numpy as np

from ..errors import ParameterError, SerializationError
from ..instrument import timed
from ..params import Parameters
from ..ring import rns
from ..rlwe.ciphertext import Ciphertext, Plaintext
from ..rlwe.keys import GaloisKeys, PublicKey, RelinKey, SecretKey, SwitchingKey
from .bundle import ServerBundle, fingerprints_of
from .wire import U8, U32, U64, Reader, array_parts

MAGIC = b"CKKSLAB\0"
FORMAT_VERSION = 1
HEADER = struct.Struct("<8sHHI16sQ")
CHECKSUM_SIZE = 32
COMPLEX_SLOTS = 1  # the flags bit of a plaintext or ciphertext whose slots carry complex values
_BUNDLE_MEMBERS = (1, 5, 6, 7)  # PARAMETERS, PUBLIC_KEY, RELIN_KEY, GALOIS_KEYS


class ObjectType(IntEnum):
    """The object type field of the header."""

    PARAMETERS = 1
    PLAINTEXT = 2
    CIPHERTEXT = 3
    SECRET_KEY = 4
    PUBLIC_KEY = 5
    RELIN_KEY = 6
    GALOIS_KEYS = 7
    SERVER_BUNDLE = 8


_CLASSES: dict[ObjectType, type] = {
    ObjectType.PARAMETERS: Parameters, ObjectType.PLAINTEXT: Plaintext, ObjectType.CIPHERTEXT: Ciphertext,
    ObjectType.SECRET_KEY: SecretKey, ObjectType.PUBLIC_KEY: PublicKey, ObjectType.RELIN_KEY: RelinKey,
    ObjectType.GALOIS_KEYS: GaloisKeys, ObjectType.SERVER_BUNDLE: ServerBundle}
Serializable = (Parameters | Plaintext | Ciphertext | SecretKey | PublicKey | RelinKey | GaloisKeys
                | ServerBundle)


# ----------------------------------------------------------------------------------------------- writing


def _body(obj: object) -> tuple[ObjectType, list[bytes | memoryview]]:
    """The type and body parts of ``obj`` (layout in the module docstring)."""
    if isinstance(obj, Parameters):
        bits = (obj.moduli_bits, obj.special_moduli_bits)
        literal = (obj.ring_degree, obj.scale_bits, obj.security or 0, obj.key_switch_digits or 0)
        head = struct.pack("<IBHB", *literal)
        return ObjectType.PARAMETERS, [head, *(struct.pack(f"<B{len(b)}B", len(b), *b) for b in bits)]
    if isinstance(obj, Plaintext):
        return ObjectType.PLAINTEXT, [struct.pack("<Hd", obj.level, obj.scale),
                                      *array_parts(obj.data, 1, "plaintext")]
    if isinstance(obj, Ciphertext):
        return ObjectType.CIPHERTEXT, [struct.pack("<HdB", obj.level, obj.scale, obj.size),
                                       *array_parts(obj.data, 1, "ciphertext")]
    if isinstance(obj, SecretKey):
        return ObjectType.SECRET_KEY, array_parts(obj.coefficients, 2, "secret key")
    if isinstance(obj, PublicKey):
        return ObjectType.PUBLIC_KEY, array_parts(obj.data, 1, "public key")
    if isinstance(obj, RelinKey):
        return ObjectType.RELIN_KEY, array_parts(obj.key.data, 1, "relinearization key")
    if isinstance(obj, GaloisKeys):
        parts: list[bytes | memoryview] = [U32.pack(len(obj.keys))]
        for g in sorted(obj.keys):
            if not isinstance(obj.keys[g], SwitchingKey):
                raise SerializationError(f"cannot save Galois key {g}: it is a {type(obj.keys[g]).__name__}, "
                                         "not a SwitchingKey")
            parts += [U64.pack(g), *array_parts(obj.keys[g].data, 1, f"Galois key {g}")]
        return ObjectType.GALOIS_KEYS, parts
    if isinstance(obj, ServerBundle):
        ServerBundle.__post_init__(obj)  # again: object.__setattr__ can force a frozen dataclass
        members = [m for m in (obj.params, obj.public_key, obj.relin_key, obj.galois_keys) if m is not None]
        parts = [U8.pack(len(members))]
        for member in members:
            kind, body = _body(member)
            parts += [struct.pack("<HQ", kind, sum(len(p) for p in body)), *body]
        return ObjectType.SERVER_BUNDLE, parts
    raise SerializationError(f"cannot save a {type(obj).__name__}: ckks.save takes Parameters, Plaintext, "
                             "Ciphertext, SecretKey, PublicKey, RelinKey, GaloisKeys or ServerBundle")


@timed("serialize")
def _encode(obj: Serializable) -> tuple[list[bytes | memoryview], bytes]:
    """Header and body parts of ``obj`` and the SHA-256 that follows them."""
    kind, body = _body(obj)
    if isinstance(obj, Parameters):
        fingerprint = obj.fingerprint
    elif isinstance(obj, ServerBundle):
        fingerprint = obj.params.fingerprint
    else:
        found = set(fingerprints_of(obj))
        if len(found) != 1:
            raise SerializationError(
                "cannot save a GaloisKeys with no keys on its own: it carries no parameter fingerprint "
                "(put it in a ServerBundle, or generate some keys)" if not found
                else f"cannot save {kind.name}: its keys come from different parameters {sorted(found)}")
        fingerprint = found.pop()
    length = sum(len(p) for p in body)
    flags = COMPLEX_SLOTS if isinstance(obj, (Plaintext, Ciphertext)) and obj.complex_slots else 0
    header = HEADER.pack(MAGIC, FORMAT_VERSION, kind, flags, fingerprint.encode("ascii"), length)
    digest = hashlib.sha256(header)
    for part in body:
        digest.update(part)
    return [header, *body], digest.digest()


def to_bytes(obj: Serializable) -> bytes:
    """The serialized form of ``obj``: header, body, SHA-256 (layout in the module docstring).

    Raises:
        SerializationError: if ``obj`` is not a serializable ckks object or holds arrays of the wrong dtype.
    """
    parts, digest = _encode(obj)
    return b"".join([*parts, digest])


def save(obj: Serializable, path_or_file: str | Path | BinaryIO) -> None:
    """Write ``obj`` to a path (created or replaced) or a binary file object, in the format of ``to_bytes``.

    Raises:
        SerializationError: as ``to_bytes``; OSError from the file system.
    """
    parts, digest = _encode(obj)
    if isinstance(path_or_file, (str, Path)):
        with open(path_or_file, "wb") as f:
            f.writelines([*parts, digest])
    else:
        path_or_file.writelines([*parts, digest])


# ----------------------------------------------------------------------------------------------- reading


def _check_residues(a: np.ndarray, moduli: tuple[int, ...], r: Reader, field: str) -> np.ndarray:
    """``a`` (..., limbs, N) unchanged if every residue in row i is below moduli[i]."""
    bad = a >= np.array(moduli, dtype=np.uint64).reshape(len(moduli), 1)
    if bad.any():
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        raise r.fail(f"{field} has {int(bad.sum())} residue(s) not below their prime, first at index {where} "
                     f"(value {int(a[where])} >= {moduli[where[-2]]})")
    return a


def _level_scale(r: Reader, params: Parameters) -> tuple[int, float]:
    level, scale = r.unpack(struct.Struct("<Hd"), "level and scale")
    if level > params.max_level:
        raise r.fail(f"level {level} is outside [0, {params.max_level}] for these parameters")
    if not (math.isfinite(scale) and scale > 0):
        raise r.fail(f"scale {scale} is not a positive finite number")
    return level, scale


def _read_params(r: Reader, fingerprint: str) -> Parameters:
    n, scale_bits, security, digits = r.unpack(struct.Struct("<IBHB"), "parameters")
    bits = []
    for name in ("moduli_bits", "special_moduli_bits"):
        (count,) = r.unpack(U8, f"{name} count")
        bits.append(r.unpack(struct.Struct(f"<{count}B"), name))
    r.done()
    try:
        params = Parameters(n, bits[0], bits[1], scale_bits, security or None, digits or None)
        params.fingerprint  # noqa: B018 -- generates the primes, which can fail for impossible sizes
    except ParameterError as e:
        raise r.fail(f"invalid parameters: {e}") from e
    if params.fingerprint != fingerprint:
        raise r.fail(f"the parameters' fingerprint {params.fingerprint} is not the header's {fingerprint}")
    return params


def _read_switching_key(r: Reader, params: Parameters, field: str) -> SwitchingKey:
    qp = params.moduli + params.special_moduli
    data = r.array((params.digits, 2, len(qp), params.ring_degree), 1, field)
    return SwitchingKey(_check_residues(data, qp, r, field), params.fingerprint)


def _read_body(kind: ObjectType, r: Reader, params: Parameters, complex_slots: bool = False) -> Serializable:
    """Decode a body of ``kind`` (not PARAMETERS or SERVER_BUNDLE) against ``params``; ``complex_slots`` is
    the header's flag (plaintexts and ciphertexts only)."""
    n, fp, qp = params.ring_degree, params.fingerprint, params.moduli + params.special_moduli
    if kind in (ObjectType.PLAINTEXT, ObjectType.CIPHERTEXT):
        level, scale = _level_scale(r, params)
        shape: tuple[int, ...] = (level + 1, n)
        if kind == ObjectType.CIPHERTEXT:
            (size,) = r.unpack(U8, "size")
            if size not in (2, 3):
                raise r.fail(f"ciphertext size {size} is not 2 or 3")
            shape = (size, *shape)
        data = _check_residues(r.array(shape, 1, "data"), params.moduli[: level + 1], r, "data")
        cls = Plaintext if kind == ObjectType.PLAINTEXT else Ciphertext
        obj: Serializable = cls(data, level, scale, fp, complex_slots)
    elif kind == ObjectType.SECRET_KEY:
        s = r.array((n,), 2, "coefficients")
        if np.any((s < -1) | (s > 1)):
            raise r.fail("secret key coefficients must be -1, 0 or 1")
        basis = rns.rns_basis(qp, n)
        obj = SecretKey(s, rns.to_ntt(rns.from_signed(s, basis), basis), fp)
    elif kind == ObjectType.PUBLIC_KEY:
        obj = PublicKey(_check_residues(r.array((2, len(qp), n), 1, "data"), qp, r, "data"), fp)
    elif kind == ObjectType.RELIN_KEY:
        obj = RelinKey(_read_switching_key(r, params, "data"))
    elif kind == ObjectType.GALOIS_KEYS:
        (count,) = r.unpack(U32, "key count")
        if count > n - 1:
            raise r.fail(f"{count} Galois keys declared, but N = {n} has only {n - 1} non-trivial elements")
        obj = GaloisKeys(ring_degree=n)
        previous = 1
        for i in range(count):
            (g,) = r.unpack(U64, f"Galois element {i}")
            if g % 2 == 0 or not previous < g < 2 * n:
                raise r.fail(f"Galois element {g} is not odd, in (1, {2 * n}) and above the previous one "
                             f"({previous})")
            obj.keys[g] = _read_switching_key(r, params, f"Galois key {g}")
            previous = g
    else:
        raise r.fail(f"a {kind.name} record cannot appear here")
    r.done()
    return obj


def _read_bundle(r: Reader, fingerprint: str) -> ServerBundle:
    (count,) = r.unpack(U8, "record count")
    members: dict[ObjectType, Serializable] = {}
    params: Parameters | None = None
    previous = 0
    for i in range(count):
        code, length = r.unpack(struct.Struct("<HQ"), f"record {i} header")
        if code == ObjectType.SECRET_KEY:
            raise r.fail("it holds a secret key record: a server bundle never contains the secret key")
        if code not in _BUNDLE_MEMBERS:
            raise r.fail(f"record {i} has type {code}, which a server bundle cannot hold")
        if code <= previous or (i == 0) != (code == ObjectType.PARAMETERS):
            raise r.fail(f"record {i} ({ObjectType(code).name}) is out of order: parameters first, then "
                         "public, relinearization and Galois keys, each at most once")
        name = ObjectType(code).name
        sub = Reader(r.take(length, f"record {i} ({name})"), f"{r.what}, {name}")
        if code == ObjectType.PARAMETERS:
            params = _read_params(sub, fingerprint)
        else:
            members[ObjectType(code)] = _read_body(ObjectType(code), sub, params)
        previous = code
    r.done()
    if params is None:
        raise r.fail("the bundle holds no parameters record")
    return ServerBundle(params, members.get(ObjectType.PUBLIC_KEY), members.get(ObjectType.RELIN_KEY),
                        members.get(ObjectType.GALOIS_KEYS))


@timed("deserialize")
def from_bytes(buf: bytes | bytearray | memoryview, params: Parameters | None = None,
               expected: type | tuple[type, ...] | None = None) -> Serializable:
    """The object serialized in ``buf`` (format in the module docstring), checked field by field.

    ``params`` is required for every type but Parameters and ServerBundle (which carry their own; if given,
    theirs must match). ``expected``, a class or tuple of classes, refuses any other type of object.

    Raises:
        SerializationError: wrong magic, version, flags (a bit other than complex slots, or that bit on an
            object without slots) or type; truncated or oversized buffer; checksum
            mismatch; missing ``params``; fingerprint of other parameters; a shape, level, scale, size or
            residue that does not fit the parameters; a secret key inside a server bundle.
    """
    try:
        view = memoryview(buf).cast("B")
    except TypeError as e:
        raise SerializationError(f"expected a bytes-like buffer, got {type(buf).__name__}") from e
    r = Reader(view, "ckkslab buffer")
    if len(view) == 0:
        raise r.fail("empty buffer: not a ckkslab file")
    if bytes(view[: len(MAGIC)]) != MAGIC[: len(view)]:
        raise r.fail(f"wrong magic {bytes(view[:8])!r}: not a ckkslab file (expected {MAGIC!r})")
    if len(view) < HEADER.size + CHECKSUM_SIZE:
        raise r.fail(f"truncated: {len(view)} bytes, a ckkslab file has at least {HEADER.size + 32}")
    _, version, code, flags, fp_raw, length = r.unpack(HEADER, "header")
    if version != FORMAT_VERSION:
        raise r.fail(f"format version {version}, this library reads version {FORMAT_VERSION}")
    if code in (ObjectType.PLAINTEXT, ObjectType.CIPHERTEXT):
        if flags & ~COMPLEX_SLOTS:
            raise r.fail(f"flags field is {flags:#x}: a {ObjectType(code).name.lower()} may set only bit 0 "
                         f"(complex slots) in version {FORMAT_VERSION}")
    elif flags != 0:
        raise r.fail(f"flags field is {flags:#x}, must be 0 for this object type in version {FORMAT_VERSION}")
    available = len(view) - HEADER.size - CHECKSUM_SIZE
    if length > available:
        raise r.fail(f"truncated: the header declares a {length}-byte body, only {available} bytes follow")
    if length < available:
        raise r.fail(f"{available - length} unexpected bytes after the checksum")
    if hashlib.sha256(view[: HEADER.size + length]).digest() != bytes(view[HEADER.size + length :]):
        raise r.fail("checksum mismatch: the buffer is corrupted")
    if code not in ObjectType._value2member_map_:
        raise r.fail(f"unknown object type {code}")
    kind = ObjectType(code)
    if expected is not None and not issubclass(_CLASSES[kind], expected):
        wanted = expected if isinstance(expected, tuple) else (expected,)
        raise r.fail(f"holds a {_CLASSES[kind].__name__}, expected {' or '.join(t.__name__ for t in wanted)}")
    fingerprint = bytes(fp_raw).decode("ascii", errors="replace")
    if any(c not in "0123456789abcdef" for c in fingerprint):
        raise r.fail(f"fingerprint {fingerprint!r} is not 16 lowercase hex digits")
    if params is not None and params.fingerprint != fingerprint:
        raise r.fail(f"the {_CLASSES[kind].__name__} was made with other parameters (fingerprint "
                     f"{fingerprint}, params= has {params.fingerprint})")
    body = Reader(r.take(length, "body"), _CLASSES[kind].__name__)
    if kind == ObjectType.PARAMETERS:
        return _read_params(body, fingerprint)
    if kind == ObjectType.SERVER_BUNDLE:
        return _read_bundle(body, fingerprint)
    if params is None:
        raise r.fail(f"loading a {_CLASSES[kind].__name__} needs the params= argument: the Parameters it was "
                     f"made with (fingerprint {fingerprint})")
    return _read_body(kind, body, params, bool(flags & COMPLEX_SLOTS))


def load(path_or_file: str | Path | BinaryIO, params: Parameters | None = None,
         expected: type | tuple[type, ...] | None = None) -> Serializable:
    """The object saved at a path or in a binary file object (read to its end), as ``from_bytes``.

    Raises:
        SerializationError: as ``from_bytes``, or if the file object is not opened in binary mode;
            OSError from the file system.
    """
    if isinstance(path_or_file, io.TextIOBase):
        raise SerializationError(f"{type(path_or_file).__name__} is a text file: open it in binary mode")
    data = Path(path_or_file).read_bytes() if isinstance(path_or_file, (str, Path)) else path_or_file.read()
    return from_bytes(data, params=params, expected=expected)
