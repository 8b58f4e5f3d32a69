"""Samplers: ranges, sizes and rough distribution statistics (generous bounds: 6+ standard deviations), and
the seeding contract (a seed reproduces, no seed draws from the OS CSPRNG and differs run to run)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ckks.ring.primes import ntt_primes
from ckks.ring.sampling import GAUSSIAN_SIGMA, GAUSSIAN_TAIL, RandomSource, gaussian, ternary, uniform_mod


def test_seeded_source_is_reproducible_and_seed_dependent():
    a, b, c = RandomSource(42), RandomSource(42), RandomSource(43)
    assert a.seeded and not RandomSource().seeded
    wa, wb, wc = a.words(1000), b.words(1000), c.words(1000)
    assert wa.dtype == np.uint64 and wa.shape == (1000,)
    np.testing.assert_array_equal(wa, wb)
    assert np.count_nonzero(wa == wc) < 5
    np.testing.assert_array_equal(ternary(RandomSource(7), 500), ternary(RandomSource(7), 500))
    np.testing.assert_array_equal(gaussian(RandomSource(7), 500), gaussian(RandomSource(7), 500))
    moduli = tuple(ntt_primes(40, 64, 2))
    np.testing.assert_array_equal(
        uniform_mod(RandomSource(7), moduli, 64), uniform_mod(RandomSource(7), moduli, 64)
    )


def test_unseeded_source_differs_between_instances_and_calls():
    a, b = RandomSource(), RandomSource()
    wa, wb = a.words(256), b.words(256)
    assert np.count_nonzero(wa == wb) < 3
    assert np.count_nonzero(wa == a.words(256)) < 3
    assert not np.array_equal(ternary(RandomSource(), 1000), ternary(RandomSource(), 1000))


def test_words_use_all_64_bits():
    w = RandomSource(1).words(20000)
    bits = np.unpackbits(w.view(np.uint8)).reshape(-1, 64).mean(axis=0)
    assert np.all(np.abs(bits - 0.5) < 0.02)  # sd of each mean: 0.0035
    assert int(w.max()) > 2**63


def test_unit_floats_range_and_mean():
    f = RandomSource(2).unit_floats(100000)
    assert f.dtype == np.float64 and f.min() >= 0.0 and f.max() < 1.0
    assert abs(f.mean() - 0.5) < 0.006  # sd 0.0009
    assert abs(f.var() - 1 / 12) < 0.003


@pytest.mark.parametrize("n", [1, 7, 64, 30000])
def test_ternary_values_and_size(n):
    s = ternary(RandomSource(n), n)
    assert s.shape == (n,) and s.dtype == np.int64
    assert set(np.unique(s).tolist()) <= {-1, 0, 1}


def test_ternary_is_uniform_on_three_values():
    s = ternary(RandomSource(3), 60000)
    for v in (-1, 0, 1):
        assert abs(np.mean(s == v) - 1 / 3) < 0.012  # sd 0.0019


def test_gaussian_range_mean_and_sigma():
    e = gaussian(RandomSource(4), 200000)
    bound = math.ceil(GAUSSIAN_TAIL * GAUSSIAN_SIGMA)
    assert e.dtype.kind == "i" and np.abs(e).max() <= bound
    assert abs(e.mean()) < 0.05  # sd 3.2 / sqrt(2e5) = 0.007
    assert abs(e.std() - GAUSSIAN_SIGMA) < 0.05
    # symmetric and discrete: P(e = 0) of a discrete Gaussian of sigma 3.2 is about 1/(sqrt(2 pi) 3.2) = 0.125
    assert abs(np.mean(e == 0) - 0.1247) < 0.01
    assert abs(np.mean(e > 0) - np.mean(e < 0)) < 0.01
    assert np.mean(np.abs(e) > 3 * GAUSSIAN_SIGMA) < 0.006  # 0.27% for a Gaussian


@pytest.mark.parametrize("bits,n", [(20, 16), (40, 1024), (61, 4096)])
def test_uniform_mod_range_and_mean(bits, n):
    moduli = tuple(ntt_primes(bits, 16, 2))
    u = uniform_mod(RandomSource(bits), moduli, n)
    assert u.shape == (2, n) and u.dtype == np.uint64
    for row, q in zip(u, moduli, strict=True):
        assert int(row.max()) < q
        x = row.astype(np.float64) / q
        assert abs(x.mean() - 0.5) < 6 * math.sqrt(1 / 12 / n)
        if n >= 1024:
            assert x.max() > 1 - 10 / n and x.min() < 10 / n


def test_uniform_mod_small_prime_hits_every_residue_evenly():
    """q = 97 sits far below 2^7: rejection sampling must still be uniform on all 97 residues."""
    u = uniform_mod(RandomSource(5), (97,), 97 * 400)[0]
    counts = np.bincount(u.astype(np.int64), minlength=97)
    assert counts.size == 97 and counts.min() > 400 - 6 * 20 and counts.max() < 400 + 6 * 20
