"""SEAL primitive timings through pyhelayers: positive timings, and a context that really is what we asked."""

from __future__ import annotations

import math

import pytest

from reference.errors import HelayersInputError
from reference.seal_ops import OPS, seal_context, time_seal_ops

pytestmark = pytest.mark.helayers


def _is_prime(n: int) -> bool:
    """Deterministic Miller-Rabin for n < 3.3e24 (bases: the first 13 primes)."""
    if n < 2:
        return False
    bases = (2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41)
    if n in bases:
        return True
    d, r = n - 1, 0
    while d % 2 == 0:
        d, r = d // 2, r + 1
    for a in bases:
        y = pow(a, d, n)
        if y in (1, n - 1):
            continue
        for _ in range(r - 1):
            y = y * y % n
            if y == n - 1:
                break
        else:
            return False
    return True


def test_timings_positive_at_expected_ring_degree():
    result = time_seal_ops(ring_degree=8192, repeats=2, threads=1)
    for op in OPS:
        assert 0 < result[op] < 5, op
    params = result["params"]
    assert params["ring_degree"] == 8192 and params["slots"] == 4096
    assert params["threads"] == 1 and params["library"] == "SEAL"
    assert params["num_primes"] == 4
    assert abs(params["scale_bits"] - 40) < 1e-3
    for q, bits in zip(params["moduli"], (47, 40, 40, 40), strict=True):
        assert _is_prime(q) and q % (2 * 8192) == 1      # NTT-friendly primes of the asked sizes
        assert abs(math.log2(q) - bits) < 0.01


def test_default_chain_at_16384_is_the_issue_chain():
    context = seal_context(16384)
    bits = [round(math.log2(int(q))) for q in context.get_modulus_chain()]
    assert 2 * context.slot_count() == 16384
    assert bits == [60] + [53] * 6


@pytest.mark.parametrize("kwargs", [
    {"ring_degree": 4096},                                              # no default chain
    {"ring_degree": 8192, "multiplication_depth": 10, "fractional_bits": 53},  # over the 128-bit budget
])
def test_impossible_context_is_a_named_error(kwargs):
    with pytest.raises(HelayersInputError):
        seal_context(**kwargs)


@pytest.mark.parametrize("kwargs", [{"repeats": 0}, {"threads": 0}])
def test_bad_arguments(kwargs):
    with pytest.raises(HelayersInputError):
        time_seal_ops(ring_degree=8192, **kwargs)
