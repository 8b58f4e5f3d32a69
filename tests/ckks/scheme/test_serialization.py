"""Save/load of every ckks object: round trips checked by behaviour, and every way a buffer is rejected.

Independent of ``ckks.scheme.serialization``'s reader: the header layout is decoded here with explicit offsets, the
SHA-256 is recomputed with hashlib (``reseal``) so that a hand-edited body reaches the field validators, and
loaded objects are judged by what they do (decrypt, encrypt, relinearize, rotate) against the originals.
"""

from __future__ import annotations

import hashlib
import io
import struct
import time
import tracemalloc

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ckks
from ckks.scheme.serialization import from_bytes, to_bytes

HEADER, DIGEST = 40, 32  # bytes before the body, bytes of the trailing SHA-256
TYPES = {"params": 1, "plaintext": 2, "ciphertext": 3, "secret": 4, "public": 5, "relin": 6, "galois": 7,
         "bundle": 8}
PARAMS = ckks.Parameters(ring_degree=64, moduli_bits=(40, 30, 30), special_moduli_bits=(40,), scale_bits=30,
                         security=None)
OTHER = ckks.Parameters(ring_degree=64, moduli_bits=(40, 30), special_moduli_bits=(40,), scale_bits=30,
                        security=None)


def reseal(buf: bytes | bytearray) -> bytes:
    """``buf`` with its trailing SHA-256 recomputed over everything before it."""
    body = bytes(buf[:-DIGEST])
    return body + hashlib.sha256(body).digest()


def edit(buf: bytes, offset: int, fmt: str, *values: object) -> bytes:
    """``buf`` with struct ``fmt`` written at ``offset``, resealed."""
    out = bytearray(buf)
    struct.pack_into(fmt, out, offset, *values)
    return reseal(out)


def rejects(buf: bytes | bytearray, match: str, params: ckks.Parameters | None = PARAMS, **kw: type) -> None:
    """``buf`` raises SerializationError whose message matches ``match``."""
    with pytest.raises(ckks.SerializationError, match=match):
        from_bytes(buf, params=params, **kw)


@pytest.fixture(scope="module")
def world() -> dict:
    kg = ckks.KeyGenerator(PARAMS, seed=7)
    sk, pk = kg.secret_key, kg.public_key()
    rlk, gk = kg.relin_key(), kg.galois_keys(steps=[1, -1, 3], conjugate=True)
    encoder = ckks.Encoder(PARAMS)
    x = np.random.default_rng(1).uniform(-1, 1, PARAMS.slots)
    pt = encoder.encode(x)
    ct = ckks.Encryptor(PARAMS, pk, seed=3).encrypt(pt)
    ev = ckks.Evaluator(PARAMS, relin_key=rlk, galois_keys=gk)
    bundle = ckks.ServerBundle(PARAMS, public_key=pk, relin_key=rlk, galois_keys=gk)
    w = dict(sk=sk, pk=pk, rlk=rlk, gk=gk, encoder=encoder, x=x, pt=pt, ct=ct, ev=ev, bundle=bundle,
             decrypt=lambda c: encoder.decode(ckks.Decryptor(PARAMS, sk).decrypt(c)))
    objects = {"params": PARAMS, "plaintext": pt, "ciphertext": ct, "secret": sk, "public": pk, "relin": rlk,
               "galois": gk, "bundle": bundle}
    w["buffers"] = {name: to_bytes(obj) for name, obj in objects.items()}
    w["z"] = x + 1j * np.random.default_rng(2).uniform(-1, 1, PARAMS.slots)  # complex slots
    w["complex"] = {"plaintext": encoder.encode(w["z"]),
                    "ciphertext": ckks.Encryptor(PARAMS, pk, seed=4).encrypt(encoder.encode(w["z"]))}
    return w


# ---------------------------------------------------------------------------------------- layout, round trips


def test_header_and_ciphertext_body_decoded_by_hand(world: dict) -> None:
    ct, buf = world["ct"], world["buffers"]["ciphertext"]
    assert buf[0:8] == b"CKKSLAB\0"
    assert int.from_bytes(buf[8:10], "little") == 1  # version
    assert int.from_bytes(buf[10:12], "little") == TYPES["ciphertext"]
    assert int.from_bytes(buf[12:16], "little") == 0  # flags
    assert buf[16:32] == PARAMS.fingerprint.encode("ascii")
    assert int.from_bytes(buf[32:40], "little") == len(buf) - HEADER - DIGEST
    assert buf[-DIGEST:] == hashlib.sha256(buf[:-DIGEST]).digest()
    level, scale, size, code, ndim = struct.unpack_from("<HdBBB", buf, HEADER)
    assert (level, scale, size, code, ndim) == (ct.level, ct.scale, 2, 1, 3)
    assert struct.unpack_from("<3Q", buf, HEADER + 13) == (2, PARAMS.max_level + 1, 64)
    assert buf[HEADER + 37 : -DIGEST] == ct.data.astype("<u8").tobytes()


def test_complex_slots_are_bit_0_of_the_flags_and_round_trip(world: dict) -> None:
    """A complex plaintext or ciphertext sets flags = 1 (offset 12) and nothing else differs from the real
    layout; it loads with its complex slots and decrypts to the complex values; real objects keep flags 0."""
    decryptor, encoder = ckks.Decryptor(PARAMS, world["sk"]), world["encoder"]
    for name, obj in world["complex"].items():
        buf = to_bytes(obj)
        assert int.from_bytes(buf[12:16], "little") == 1
        assert int.from_bytes(world["buffers"][name][12:16], "little") == 0
        assert struct.unpack_from("<Hd", buf, HEADER) == (obj.level, obj.scale)
        loaded = from_bytes(buf, params=PARAMS)
        assert loaded.complex_slots and np.array_equal(loaded.data, obj.data) and to_bytes(loaded) == buf
        pt = decryptor.decrypt(loaded) if name == "ciphertext" else loaded
        got = encoder.decode(pt)
        assert got.dtype == np.complex128 and np.abs(got - world["z"]).max() < 1e-5
        assert not from_bytes(world["buffers"][name], params=PARAMS).complex_slots


def test_parameters_round_trip_without_params() -> None:
    digits = ckks.Parameters(ring_degree=1024, moduli_bits=(30, 25, 25, 25), special_moduli_bits=(30, 30),
                             scale_bits=25, security=None, key_switch_digits=2)
    secure = ckks.Parameters(ring_degree=4096, moduli_bits=(40, 30), special_moduli_bits=(30,), scale_bits=30)
    for p in (PARAMS, digits, secure):
        loaded = from_bytes(to_bytes(p))
        assert loaded == p and loaded.moduli == p.moduli and loaded.special_moduli == p.special_moduli
        assert loaded.fingerprint == p.fingerprint
        assert from_bytes(to_bytes(p), params=p) == p


def test_plaintext_and_ciphertext_round_trip_decrypt_to_the_values(world: dict) -> None:
    ev, x, decrypt, encoder = world["ev"], world["x"], world["decrypt"], world["encoder"]
    pt = from_bytes(world["buffers"]["plaintext"], params=PARAMS)
    assert np.array_equal(encoder.decode(pt), encoder.decode(world["pt"])) and pt.scale == world["pt"].scale
    ct = from_bytes(world["buffers"]["ciphertext"], params=PARAMS)
    assert np.abs(decrypt(ct) - x).max() < 1e-5
    product = ev.multiply(world["ct"], world["ct"])  # size 3, then rescaled: a non-power-of-two scale
    rescaled = ev.rescale(ev.relinearize(product))
    for c in (product, rescaled):
        loaded = from_bytes(to_bytes(c), params=PARAMS)
        assert (loaded.size, loaded.level, loaded.scale) == (c.size, c.level, c.scale)
        assert loaded.data.dtype == np.uint64 and loaded.data.flags.writeable
        assert np.abs(decrypt(loaded) - x * x).max() < 1e-4


def test_keys_round_trip_act_like_the_originals(world: dict) -> None:
    b, x, ct, ev, encoder = world["buffers"], world["x"], world["ct"], world["ev"], world["encoder"]
    sk = from_bytes(b["secret"], params=PARAMS)
    assert np.array_equal(sk.coefficients, world["sk"].coefficients)
    assert np.array_equal(sk.ntt, world["sk"].ntt)
    assert np.abs(encoder.decode(ckks.Decryptor(PARAMS, sk).decrypt(ct)) - x).max() < 1e-5
    pk = from_bytes(b["public"], params=PARAMS)
    fresh = ckks.Encryptor(PARAMS, pk, seed=5).encrypt(world["pt"])
    assert np.array_equal(fresh.data, ckks.Encryptor(PARAMS, world["pk"], seed=5).encrypt(world["pt"]).data)
    assert np.abs(world["decrypt"](fresh) - x).max() < 1e-5
    rlk, gk = from_bytes(b["relin"], params=PARAMS), from_bytes(b["galois"], params=PARAMS)
    assert sorted(gk.keys) == sorted(world["gk"].keys) and gk.steps() == world["gk"].steps()
    loaded_ev = ckks.Evaluator(PARAMS, relin_key=rlk, galois_keys=gk)
    product = ev.multiply(ct, ct)
    relin = loaded_ev.relinearize(product)
    assert np.array_equal(relin.data, ev.relinearize(product).data)
    assert np.abs(world["decrypt"](loaded_ev.rescale(relin)) - x * x).max() < 1e-4
    for step in (1, -1, 3):
        rotated = loaded_ev.rotate(ct, step)
        assert np.array_equal(rotated.data, ev.rotate(ct, step).data)
        assert np.abs(world["decrypt"](rotated) - np.roll(x, -step)).max() < 1e-4
    assert np.array_equal(loaded_ev.conjugate(ct).data, ev.conjugate(ct).data)


def test_server_bundle_round_trip_and_partial_bundles(world: dict) -> None:
    bundle = from_bytes(world["buffers"]["bundle"], expected=ckks.ServerBundle)
    assert bundle.params == PARAMS
    assert np.array_equal(bundle.public_key.data, world["pk"].data)
    assert np.array_equal(bundle.relin_key.key.data, world["rlk"].key.data)
    server = ckks.Evaluator(bundle.params, relin_key=bundle.relin_key, galois_keys=bundle.galois_keys)
    assert np.abs(world["decrypt"](server.rotate(world["ct"], 1)) - np.roll(world["x"], -1)).max() < 1e-4
    assert bundle.galois_keys.has_conjugation()  # the conjugation key travels in the bundle, and works
    conjugated = world["decrypt"](server.conjugate(world["complex"]["ciphertext"]))
    assert np.abs(conjugated - np.conj(world["z"])).max() < 1e-4
    for partial in (ckks.ServerBundle(PARAMS), ckks.ServerBundle(PARAMS, relin_key=world["rlk"]),
                    ckks.ServerBundle(PARAMS, galois_keys=ckks.GaloisKeys(ring_degree=64))):
        loaded = from_bytes(to_bytes(partial))
        assert (loaded.public_key is None, loaded.relin_key is None, loaded.galois_keys is None) == (
            partial.public_key is None, partial.relin_key is None, partial.galois_keys is None)


@pytest.mark.parametrize("name", list(TYPES))
def test_every_type_reencodes_to_the_same_bytes(world: dict, name: str) -> None:
    buf = world["buffers"][name]
    assert to_bytes(from_bytes(buf, params=PARAMS)) == buf


def test_save_load_paths_and_file_objects(world: dict, tmp_path) -> None:
    ckks.save(world["ct"], tmp_path / "ct.bin")
    ckks.save(world["bundle"], str(tmp_path / "bundle.bin"))
    assert (tmp_path / "ct.bin").read_bytes() == world["buffers"]["ciphertext"]
    assert np.abs(world["decrypt"](ckks.load(tmp_path / "ct.bin", params=PARAMS)) - world["x"]).max() < 1e-5
    assert ckks.load(str(tmp_path / "bundle.bin")).params == PARAMS
    stream = io.BytesIO()
    ckks.save(world["rlk"], stream)
    stream.seek(0)
    assert np.array_equal(ckks.load(stream, params=PARAMS).key.data, world["rlk"].key.data)
    with open(tmp_path / "ct.bin") as text, pytest.raises(ckks.SerializationError, match="binary mode"):
        ckks.load(text, params=PARAMS)


# ------------------------------------------------------------------------------------------------- rejections


@pytest.mark.parametrize("name", list(TYPES))
def test_truncation_at_many_cut_points(world: dict, name: str) -> None:
    buf = world["buffers"][name]
    cuts = sorted(set(range(0, HEADER + DIGEST + 2)) | set(range(0, len(buf), max(1, len(buf) // 97)))
                  | {len(buf) - 1, len(buf) - DIGEST})
    for cut in cuts:
        rejects(buf[:cut], "truncated|empty")
        resealed = reseal(buf[:cut]) if cut >= HEADER + DIGEST else buf[:cut]
        rejects(resealed, "truncated|empty|unexpected|magic")


def test_trailing_bytes_rejected(world: dict) -> None:
    buf = world["buffers"]["ciphertext"]
    rejects(buf + b"\0", "unexpected bytes after the checksum")
    longer = bytearray(buf[:-DIGEST] + b"\0" * 8 + buf[-DIGEST:])  # body declared 8 bytes longer, padded
    struct.pack_into("<Q", longer, 32, len(buf) - HEADER - DIGEST + 8)
    rejects(reseal(longer), "unexpected bytes after the last field")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_bit_flip_is_detected(world: dict, data: st.DataObject) -> None:
    name = data.draw(st.sampled_from(["ciphertext", "relin", "galois", "bundle", "params", "secret"]))
    buf = bytearray(world["buffers"][name])
    for bit in data.draw(st.lists(st.integers(0, 8 * len(buf) - 1), min_size=1, max_size=3, unique=True)):
        buf[bit // 8] ^= 1 << (bit % 8)
    rejects(buf, "checksum|magic|version|flags|truncated|unexpected")


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_resealed_edits_are_rejected_or_load_exactly_the_buffer(world: dict, data: st.DataObject) -> None:
    """The validators alone (checksum fixed up): an edit raises SerializationError or loads faithfully."""
    name = data.draw(st.sampled_from(list(TYPES)))
    buf = bytearray(world["buffers"][name])
    start = data.draw(st.integers(8, len(buf) - DIGEST - 1))  # past the magic
    patch = data.draw(st.binary(min_size=1, max_size=9))
    buf[start : start + len(patch)] = patch
    buf = reseal(buf) if len(buf) >= HEADER + DIGEST else bytes(buf)
    try:
        loaded = from_bytes(buf, params=PARAMS)
    except ckks.SerializationError:
        return
    assert to_bytes(loaded) == buf


def test_wrong_magic_version_flags_type(world: dict) -> None:
    buf = world["buffers"]["ciphertext"]
    rejects(b"X" + buf[1:], "wrong magic")
    rejects(b"\x89PNG\r\n\x1a\n" + bytes(100), "wrong magic")
    rejects(b"", "empty")
    rejects(edit(buf, 8, "<H", 2), "format version 2")
    rejects(edit(buf, 12, "<I", 2), "flags field is 0x2: a ciphertext may set only bit 0")
    rejects(edit(buf, 12, "<I", 2**32 - 1), "flags")
    for name in ("params", "secret", "public", "relin", "galois", "bundle"):  # no slots, no complex flag
        rejects(edit(world["buffers"][name], 12, "<I", 1), "flags field is 0x1, must be 0 for this object")
    assert from_bytes(edit(buf, 12, "<I", 1), params=PARAMS).complex_slots  # the flag, set by hand
    rejects(edit(buf, 10, "<H", 99), "unknown object type 99")
    rejects(buf, "holds a Ciphertext, expected RelinKey", expected=ckks.RelinKey)
    rejects(world["buffers"]["secret"], "expected ServerBundle", expected=ckks.ServerBundle)
    rejects(edit(buf, 10, "<H", TYPES["relin"]), "dtype code")  # ciphertext bytes read as a relin key
    rejects(edit(buf, 10, "<H", TYPES["params"]), "Parameters: .* unexpected bytes")
    rejects(edit(buf, 16, "<16s", b"NOT-HEX-16-CHARS"), "hex")


def test_params_argument_required_and_checked(world: dict) -> None:
    rejects(world["buffers"]["ciphertext"], "needs the params= argument", params=None)
    for name in ("plaintext", "ciphertext", "public", "relin", "galois", "secret", "bundle", "params"):
        rejects(world["buffers"][name], "other parameters", params=OTHER)
    other_fp = edit(world["buffers"]["ciphertext"], 16, "<16s", OTHER.fingerprint.encode())
    rejects(other_fp, "level 2 is outside", params=OTHER)  # the header claims OTHER (max level 1)
    params_buf = world["buffers"]["params"]
    rejects(edit(params_buf, 16, "<16s", OTHER.fingerprint.encode()), "is not the header's", params=None)
    rejects(edit(params_buf, HEADER, "<I", 100), "invalid parameters.*ring_degree", params=None)
    rejects(edit(params_buf, HEADER + 5, "<H", 128), "invalid parameters.*HE Standard", params=None)


def test_huge_declared_lengths_allocate_nothing(world: dict) -> None:
    ct, bundle, gk = (world["buffers"][k] for k in ("ciphertext", "bundle", "galois"))
    cases = [
        (edit(ct, 32, "<Q", 2**64 - 1), "truncated"),  # body length
        (edit(ct, HEADER + 13, "<3Q", 2, 3, 2**61), "shape"),  # array dims
        (edit(ct, HEADER + 13, "<3Q", 2**40, 2**40, 2**40), "shape"),
        (edit(gk, HEADER, "<I", 2**32 - 1), "Galois keys declared"),  # key count
        (edit(bundle, HEADER + 1 + 2, "<Q", 2**64 - 1), "truncated"),  # nested record length
    ]
    tracemalloc.start()
    t0 = time.perf_counter()
    for buf, match in cases:
        rejects(buf, match)
    elapsed = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert elapsed < 0.5 and peak < 2**20


@pytest.mark.parametrize("name", ["plaintext", "ciphertext", "public", "relin", "galois"])
@pytest.mark.parametrize("value", ["prime", "max"])
def test_residue_not_below_its_prime_rejected(world: dict, name: str, value: str) -> None:
    buf = world["buffers"][name]
    # the last array ends right before the checksum; its last limb (a special prime for keys) ends there too
    limbs = PARAMS.moduli + PARAMS.special_moduli if name in ("public", "relin", "galois") else PARAMS.moduli
    prime = limbs[-1]
    offset = len(buf) - DIGEST - 8 * (64 - 5)  # element 5 of the last limb
    rejects(edit(buf, offset, "<Q", prime if value == "prime" else 2**64 - 1), "not below their prime")
    assert from_bytes(edit(buf, offset, "<Q", prime - 1), params=PARAMS) is not None  # q - 1 is a residue


def test_metadata_fields_rejected(world: dict) -> None:
    ct, pt, sk, gk = (world["buffers"][k] for k in ("ciphertext", "plaintext", "secret", "galois"))
    rejects(edit(ct, HEADER, "<H", PARAMS.max_level + 1), "level 3 is outside")
    for scale in (0.0, -1.0, float("nan"), float("inf")):
        rejects(edit(ct, HEADER + 2, "<d", scale), "scale")
        rejects(edit(pt, HEADER + 2, "<d", scale), "scale")
    rejects(edit(ct, HEADER + 10, "<B", 4), "size 4")
    rejects(edit(ct, HEADER + 11, "<B", 2), "dtype code")
    rejects(edit(ct, HEADER + 12, "<B", 2), "dimensions")
    rejects(edit(sk, len(sk) - DIGEST - 1, "<b", 2), "-1, 0 or 1")
    first = HEADER + 4  # the first Galois element, elements ascend
    elements = sorted(world["gk"].keys)
    for bad in (elements[0] + 1, 1, 2 * 64 + 1, elements[1]):
        rejects(edit(gk, first, "<Q", bad), "Galois element")


# ---------------------------------------------------------------------------------- the secret key stays home


def test_server_bundle_refuses_a_secret_key(world: dict) -> None:
    sk = world["sk"]
    for field in ("public_key", "relin_key", "galois_keys"):
        with pytest.raises(ckks.SerializationError, match="SecretKey: the secret key stays with the client"):
            ckks.ServerBundle(PARAMS, **{field: sk})
    with pytest.raises(ckks.SerializationError, match="must be RelinKey"):
        ckks.ServerBundle(PARAMS, relin_key=world["pk"])
    with pytest.raises(ckks.SerializationError, match="other parameters"):
        ckks.ServerBundle(OTHER, relin_key=world["rlk"])
    forced = ckks.ServerBundle(PARAMS)
    object.__setattr__(forced, "public_key", sk)
    with pytest.raises(ckks.SerializationError, match="SecretKey: the secret key stays with the client"):
        to_bytes(forced)


def test_server_bundle_bytes_contain_no_secret_key(world: dict) -> None:
    buf, sk = world["buffers"]["bundle"], world["sk"]
    assert sk.coefficients.tobytes() not in buf
    assert sk.coefficients.astype(np.int64).tobytes() not in buf
    for limb in sk.ntt.astype("<u8"):
        raw = limb.tobytes()
        assert all(raw[i : i + 16] not in buf for i in range(0, len(raw), 16))
    assert len(buf) == len(to_bytes(PARAMS)) + len(to_bytes(world["pk"])) + len(to_bytes(world["rlk"])) + len(
        to_bytes(world["gk"])) - 3 * (HEADER + DIGEST) + 1 + 4 * 10  # count + (type, length) per record


def test_loader_rejects_an_embedded_secret_key_record(world: dict) -> None:
    def body(b: bytes) -> bytes:
        return b[HEADER:-DIGEST]

    def bundle(records: list[tuple[int, bytes]]) -> bytes:
        content = bytes([len(records)]) + b"".join(struct.pack("<HQ", t, len(r)) + r for t, r in records)
        head = struct.pack("<8sHHI16sQ", b"CKKSLAB\0", 1, TYPES["bundle"], 0, PARAMS.fingerprint.encode(),
                           len(content))
        return head + content + hashlib.sha256(head + content).digest()

    b = world["buffers"]
    params_record = (TYPES["params"], body(b["params"]))
    assert from_bytes(bundle([params_record, (TYPES["relin"], body(b["relin"]))])).relin_key is not None
    rejects(bundle([params_record, (TYPES["secret"], body(b["secret"]))]), "secret key", params=None)
    rejects(bundle([(TYPES["secret"], body(b["secret"]))]), "secret key", params=None)
    rejects(bundle([params_record, (TYPES["ciphertext"], body(b["ciphertext"]))]), "cannot hold", params=None)
    rejects(bundle([(TYPES["public"], body(b["public"])), params_record]), "out of order", params=None)
    rejects(bundle([params_record, params_record]), "out of order", params=None)
    rejects(bundle([]), "no parameters", params=None)


def test_save_refuses_what_it_cannot_write(world: dict) -> None:
    with pytest.raises(ckks.SerializationError, match="cannot save a dict"):
        to_bytes({})
    with pytest.raises(ckks.SerializationError, match="no keys"):
        to_bytes(ckks.GaloisKeys(ring_degree=64))
    bad = ckks.Ciphertext(world["ct"].data.astype(np.int64), 2, 2.0**30, PARAMS.fingerprint)
    with pytest.raises(ckks.SerializationError, match="uint64"):
        to_bytes(bad)
    with pytest.raises(ckks.SerializationError, match="bytes-like"):
        from_bytes("CKKSLAB")  # type: ignore[arg-type]
