"""The content digest of a ciphertexts file, against a SHA-256 computed here from the documented layout.

The digest hashes the file with each ciphertext's bulk left out (its own checksum kept), so it must change
with anything that would load differently, and a damaged ciphertext must still fail by name when it loads.
"""

from __future__ import annotations

import hashlib
import struct

import numpy as np
import pytest

import ckks
from nn import artifacts
from nn.container import MAGIC, ArtifactError

PARAMS = ckks.Parameters(ring_degree=1024, moduli_bits=(40, 30), special_moduli_bits=(40,), scale_bits=30,
                         security=None)


def ciphertexts(seed: int, count: int = 3) -> list[ckks.Ciphertext]:
    keys = ckks.KeyGenerator(PARAMS, seed=seed)
    encoder, encryptor = ckks.Encoder(PARAMS), ckks.Encryptor(PARAMS, keys.secret_key, seed=seed + 1)
    values = np.random.default_rng(seed).uniform(-1, 1, (count, PARAMS.slots))
    return [encryptor.encrypt(encoder.encode(v)) for v in values]


def digest_by_hand(data: bytes) -> str:
    """SHA-256 of the file read field by field (magic, u16 version, u32 header length, header, u32 count,
    then u64 length + bytes per object), each object's bytes before its last 32 left out."""
    at = len(MAGIC)
    _, length = struct.unpack_from("<HI", data, at)
    at += 6 + length
    (count,) = struct.unpack_from("<I", data, at)
    at += 4
    kept = [data[:at]]
    for _ in range(count):
        (size,) = struct.unpack_from("<Q", data, at)
        kept.append(data[at : at + 8])
        kept.append(data[at + 8 + size - 32 : at + 8 + size])
        at += 8 + size
    assert at == len(data)
    return hashlib.sha256(b"".join(kept)).hexdigest()[:32]


INFO = {"records": 4, "keys": "k", "batch": 0, "first_record": 0}


def test_the_digest_is_the_sha256_of_the_file_without_the_ciphertexts_bulk():
    data = artifacts.ciphertexts_to_bytes(ciphertexts(1), INFO)
    assert artifacts.ciphertexts_digest(data) == digest_by_hand(data)
    assert len(data) > 40_000 and len(digest_by_hand(data)) == 32  # 3 ciphertexts; 128 bits in hex


def test_anything_that_loads_differently_changes_the_digest():
    cts = ciphertexts(1)
    base = artifacts.ciphertexts_digest(artifacts.ciphertexts_to_bytes(cts, INFO))
    others = [
        artifacts.ciphertexts_to_bytes([cts[0], ciphertexts(5)[1], cts[2]], INFO),  # another ciphertext
        artifacts.ciphertexts_to_bytes([cts[1], cts[0], cts[2]], INFO),             # another order
        artifacts.ciphertexts_to_bytes(cts[:2], INFO),                              # one fewer
        artifacts.ciphertexts_to_bytes(cts, {**INFO, "batch": 1}),                   # another header
    ]
    digests = [artifacts.ciphertexts_digest(data) for data in others]
    assert base not in digests and len(set(digests)) == len(digests)


def test_a_damaged_ciphertext_keeps_the_digest_but_fails_to_load_by_name():
    data = bytearray(artifacts.ciphertexts_to_bytes(ciphertexts(1), INFO))
    digest = artifacts.ciphertexts_digest(bytes(data))
    data[len(data) // 2] ^= 0x01  # inside the second ciphertext's residues
    assert artifacts.ciphertexts_digest(bytes(data)) == digest
    with pytest.raises(ArtifactError, match="checksum mismatch"):
        artifacts.ciphertexts_with_info(bytes(data), PARAMS)


@pytest.mark.parametrize("data", [b"", b"CKKSLAB-NN", b"not a file at all",
                                  b"CKKSLAB-NN\x01\x00\xff\xff\xff\xff"])
def test_what_is_not_a_ciphertexts_file_is_refused_by_name(data):
    with pytest.raises(ArtifactError, match="ciphertexts file|bad magic"):
        artifacts.ciphertexts_digest(data)
