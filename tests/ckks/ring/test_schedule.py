"""Dynamic scheduling (``ckks.ring.schedule.next_job``): each job is claimed once, by one thread."""

from __future__ import annotations

import numpy as np
import pytest
from numba import njit, prange
from numba.core.errors import TypingError

import ckks
from ckks.ring.schedule import job_counter, next_job


@njit
def _claims(counter, times):
    out = np.empty(times, dtype=np.int64)
    for k in range(times):
        out[k] = next_job(counter)
    return out


@njit(parallel=True)
def _run_jobs(n, claimed_by, rounds, jobs):
    """Every job j adds one to claimed_by[j], after some work that takes about ``rounds`` multiplications;
    the jobs are claimed from ``jobs``, which the caller reads afterwards (a kernel must not read it)."""
    for _ in prange(n):
        j = next_job(jobs)
        while j < n:
            x = np.uint64(j + 1)
            for _round in range(rounds):
                x = x * np.uint64(6364136223846793005) + np.uint64(1)
            claimed_by[j] += 1 if x != 0 else 2  # keeps the work; x is never 0 mod 2^64 here
            j = next_job(jobs)


def test_claims_count_up_from_the_counter():
    counter = np.array([5], dtype=np.int64)
    assert list(_claims(counter, 4)) == [5, 6, 7, 8]
    assert counter[0] == 9
    assert list(_claims(job_counter(), 3)) == [0, 1, 2]


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("rounds", [0, 200])
def test_every_job_is_claimed_exactly_once(threads, rounds):
    """10,000 jobs at each thread count, empty ones (the threads claim as fast as they can, all on one
    counter) and longer ones: none skipped, none run twice; the counter ends past the last job by one
    claim per task that found nothing."""
    if threads > ckks.available_threads():
        pytest.skip("one core")
    before = ckks.get_threads()
    ckks.set_threads(threads)
    try:
        n = 10_000
        claimed, jobs = np.zeros(n, dtype=np.int64), job_counter()
        _run_jobs(n, claimed, rounds, jobs)
    finally:
        ckks.set_threads(before)
    assert np.array_equal(claimed, np.ones(n, dtype=np.int64))
    assert jobs[0] == 2 * n  # n claims of jobs, then one empty claim by each of the n tasks


@pytest.mark.parametrize("counter", [np.zeros(1, dtype=np.float64), np.zeros((1, 1), dtype=np.int64),
                                     np.zeros(1, dtype=np.int32)])
def test_a_counter_of_another_type_is_refused(counter):
    with pytest.raises(TypingError, match="the counter must be a writable 1-D int64 array"):
        _claims(counter, 1)


def test_a_read_only_counter_is_refused():
    counter = np.zeros(1, dtype=np.int64)
    counter.setflags(write=False)
    with pytest.raises(TypingError, match="the counter must be a writable 1-D int64 array"):
        _claims(counter, 1)
