"""Short fuzz of every ckks loader: ``ckks.from_bytes`` on mutated buffers of each object type and of server
bundles. The long run (10^5 inputs per loader) is ``python benchmarks/fuzz_loaders.py --per-loader 100000``;
both use the mutations and the oracle of its harness (``benchmarks/fuzz/``), here with hypothesis choosing
the mutations (derandomized, so a failure replays).

Oracle: a mutated buffer either raises ``SerializationError`` or loads as an object that re-serializes to
exactly that buffer (nothing ignored, nothing reinterpreted); half of the mutated buffers are resealed (their
SHA-256 recomputed) so that the field validators, not only the checksum, are exercised.
"""

from __future__ import annotations

import struct
import tracemalloc
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

import ckks
from benchmarks.fuzz import draw, mutators, oracle, targets, targets_ckks, worker

NAMES = ["ckks.parameters", "ckks.plaintext", "ckks.ciphertext", "ckks.secret_key", "ckks.public_key",
         "ckks.relin_key", "ckks.galois_keys", "ckks.server_bundle"]
SHORT = settings(max_examples=300, deadline=None, derandomize=True, database=None,
                 phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))


@pytest.fixture(scope="module")
def loaders() -> Iterator[dict]:
    built = targets.build_loaders(["ckks"])
    yield {ld.name: ld for ld in built}
    for ld in built:  # building every target made the nn loaders' scratch directories too: remove them
        if ld.cleanup is not None:
            ld.cleanup()


@pytest.fixture(scope="module")
def foreign(loaders) -> list[bytes]:
    return mutators.foreign_samples(list(loaders.values()))


def test_every_serializable_type_is_fuzzed(loaders):
    assert sorted(loaders) == sorted(NAMES)
    kinds = {type(ckks.from_bytes(ld.seeds[0], params=targets_ckks.PARAMS)).__name__
             for ld in loaders.values()}
    assert kinds == {"Parameters", "Plaintext", "Ciphertext", "SecretKey", "PublicKey", "RelinKey",
                     "GaloisKeys", "ServerBundle"}


@pytest.mark.parametrize("name", NAMES)
def test_mutated_buffers_are_rejected_by_name_or_load_faithfully(name, loaders, foreign):
    loader = loaders[name]
    seen = {"rejected": 0, "accepted": 0}

    @SHORT
    @given(data=st.data())
    def run(data: st.DataObject) -> None:
        i, buf = mutators.mutate(loader, draw.HypothesisDraw(data), foreign)
        outcome, detail = oracle.classify(loader, i, buf, timeout=5)
        assert outcome not in oracle.BUGS, f"{name}: {outcome}: {detail} ({len(buf)} bytes: {buf[:64].hex()})"
        seen["rejected" if outcome == "rejected" else "accepted"] += 1

    with worker.memory_cap(1024):
        run()
    assert seen["rejected"] > 200  # the mutations do reach the loader's refusals


@pytest.mark.parametrize("name", NAMES)
def test_unsealed_mutations_never_load_another_object(name, loaders, foreign):
    """Without resealing, any change must be caught (checksum): only an unchanged valid buffer loads (a seed,
    or a whole valid buffer of another type that a splice put in its place)."""
    loader = loaders[name]
    valid = {seed for ld in loaders.values() for seed in ld.seeds}

    @SHORT
    @given(data=st.data())
    def run(data: st.DataObject) -> None:
        i = data.draw(st.integers(0, len(loader.seeds) - 1))
        buf = mutators.mutate_bytes(draw.HypothesisDraw(data), loader.seeds[i], loader.sizes[i], foreign)
        try:
            obj = ckks.from_bytes(buf, params=targets_ckks.PARAMS)
        except ckks.SerializationError:
            return
        assert buf in valid and ckks.to_bytes(obj) == buf

    run()


@pytest.mark.parametrize("name", NAMES)
def test_huge_declared_lengths_are_refused_without_allocating(name, loaders):
    """Size-like fields of every seed (up to 40 per seed) set to 2^31 .. 2^64 - 1 and resealed: refused, or
    loaded faithfully where the field was in fact a residue below its prime; < 1 MiB traced, < 64 MB of peak
    RSS growth."""
    loader = loaders[name]
    cases = []
    for seed, sizes in zip(loader.seeds, loader.sizes, strict=True):
        inside = [(o, w) for o, w in sizes if o + w <= len(seed) - mutators.DIGEST]
        for offset, width in inside[:: max(1, len(inside) // 40)]:
            for value in (2**31, 2**32 - 1, 2**63, 2**64 - 1):
                buf = bytearray(seed)
                buf[offset : offset + width] = (value % (1 << (8 * width))).to_bytes(width, "little")
                cases.append(mutators.reseal(bytes(buf)))
    assert cases
    worker.reset_peak_rss()
    rss = worker.current_rss_mb()
    outcomes = []
    tracemalloc.start()
    try:
        for buf in cases:
            outcome, detail = oracle.classify(loader, 0, buf, timeout=5)
            assert outcome in ("rejected", "faithful", "identical"), f"{name}: {outcome}: {detail}"
            outcomes.append(outcome)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert outcomes.count("rejected") > len(outcomes) // 3
    assert peak < max(2**20, 4 * max(len(s) for s in loader.seeds))
    assert worker.peak_rss_mb() - rss < 64


def test_header_body_length_field_is_checked_before_reading(loaders):
    """The body length at offset 32 claims 2^64 - 1 bytes: refused as truncated, not read."""
    seed = loaders["ckks.ciphertext"].seeds[0]
    buf = bytearray(seed)
    struct.pack_into("<Q", buf, 32, 2**64 - 1)
    with pytest.raises(ckks.SerializationError, match="truncated"):
        ckks.from_bytes(bytes(buf), params=targets_ckks.PARAMS)
