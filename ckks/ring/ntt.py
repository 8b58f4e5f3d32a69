"""The negacyclic number-theoretic transform over Z_q[X]/(X^N + 1), one RNS limb per row.

Forward: a(X) -> (a(psi^(2*brv(k)+1)))_k, the evaluations at the odd powers of a primitive 2N-th root psi,
in bit-reversed order k. The twist by powers of psi is merged into the butterflies (Longa, Naehrig, CANS 2016):
Cooley-Tukey forward, Gentleman-Sande inverse, no separate pre/post multiplication. Butterflies use Shoup's
precomputed twiddles and Harvey's lazy reduction (Harvey 2014): forward values stay in [0, 4q), inverse
values in [0, 2q), and one final pass brings them to [0, q).

Speed comes from the loop shape. For the wide stages (half-size t >= S = min(8, N/2)), each block's two
halves are passed as separate array views to a kernel with one twiddle, a loop LLVM vectorises. The narrow
stages (t = 4, 2, 1 when S = 8) work inside groups of S consecutive values: the limb is transposed to an
(S, N/S) array whose row c holds value c of every group, so each butterfly of a stage pairs two contiguous
rows, with the
twiddles of all groups laid out contiguously too (``narrow_twiddles``): a vectorised loop again, where
the untransposed columns (stride 2t) would run scalar. The inverse folds N^-1 into its last stage, so it
makes no separate pass over the limb.

Rows are independent, so ``ntt_forward`` / ``ntt_inverse`` transform the limbs of a polynomial in one call
whose threads claim them one by one (``schedule``; ``ckks.set_threads``): each row is computed the same
way whatever the thread count, so results are bit-identical.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from functools import cache, lru_cache

import numpy as np
from numba import njit, prange

from ..instrument import timed
from .modarith import conditional_subtract, shoup_mul, shoup_mul_lazy, shoup_precompute
from .primes import minimal_primitive_root
from .schedule import job_counter, next_job

_GROUP = 8  # the stages of half-size t < _GROUP run inside groups of _GROUP values, on the transposed limb


@dataclass(frozen=True)
class NttTable:
    """Twiddles of one prime q for ring degree N (read-only uint64 arrays of length N; the narrow ones
    (S - 1, N/S), S = min(8, N/2)).

    psi_rev[k] = psi^brv(k); psi_inv_rev[k] = psi^-brv(k); the *_shoup arrays are floor(w * 2^64 / q).
    narrow_rev / narrow_inv_rev are the same twiddles of the narrow stages, regrouped by ``narrow_twiddles``.
    n_inv = N^-1 mod q and last_inv = psi^-brv(1) * N^-1 mod q are the inverse's last-stage factors.
    """

    modulus: int
    ring_degree: int
    psi_rev: np.ndarray
    psi_rev_shoup: np.ndarray
    psi_inv_rev: np.ndarray
    psi_inv_rev_shoup: np.ndarray
    narrow_rev: np.ndarray
    narrow_rev_shoup: np.ndarray
    narrow_inv_rev: np.ndarray
    narrow_inv_rev_shoup: np.ndarray
    n_inv: int
    n_inv_shoup: int
    last_inv: int
    last_inv_shoup: int


def bit_reverse_permutation(n: int) -> np.ndarray:
    """brv: the permutation of range(n) (n a power of two) reversing the log2(n)-bit index."""
    bits = n.bit_length() - 1
    idx = np.arange(n, dtype=np.int64)
    rev = np.zeros(n, dtype=np.int64)
    for b in range(bits):
        rev |= ((idx >> b) & 1) << (bits - 1 - b)
    return rev


def _powers(base: int, n: int, q: int) -> np.ndarray:
    out = [1] * n
    for i in range(1, n):
        out[i] = out[i - 1] * base % q
    return np.array(out, dtype=np.uint64)


def narrow_twiddles(psi_rev: np.ndarray) -> np.ndarray:
    """The twiddles of the stages t = S/2, ..., 1 (S = min(8, N/2)) as rows over the N/S groups of S values.

    At half-size t the blocks are 2t long and block i uses psi_rev[N/(2t) + i]; a group holds S/(2t) blocks,
    so sub-block b of group g uses psi_rev[N/(2t) + (S/(2t)) g + b]. Rows: t = S/2 (one row, b = 0), then
    t = S/4 (b = 0, 1), then t = 1 (b = 0 .. S/2 - 1); S - 1 rows of length N/S.
    """
    n = psi_rev.shape[0]
    s = min(_GROUP, n // 2)
    rows = []
    t = s // 2
    while t >= 1:
        m, per_group = n // (2 * t), s // (2 * t)
        rows += [psi_rev[m + b : 2 * m : per_group] for b in range(per_group)]
        t //= 2
    if not rows:  # N = 2: no narrow stage
        return np.empty((0, n), dtype=np.uint64)
    return np.ascontiguousarray(np.stack(rows))


@cache
def ntt_table(q: int, ring_degree: int) -> NttTable:
    """The NTT twiddle table of prime q (q = 1 mod 2N) for ring degree N, built once and cached."""
    psi = minimal_primitive_root(2 * ring_degree, q)
    rev = bit_reverse_permutation(ring_degree)
    psi_rev = _powers(psi, ring_degree, q)[rev]
    psi_inv_rev = _powers(pow(psi, -1, q), ring_degree, q)[rev]
    n_inv = pow(ring_degree, -1, q)
    last_inv = int(psi_inv_rev[1]) * n_inv % q
    narrow_rev, narrow_inv_rev = narrow_twiddles(psi_rev), narrow_twiddles(psi_inv_rev)
    arrays = [w for twiddles in (psi_rev, psi_inv_rev, narrow_rev, narrow_inv_rev)
              for w in (twiddles, shoup_precompute(twiddles, q))]
    for a in arrays:
        a.setflags(write=False)
    return NttTable(q, ring_degree, *arrays, n_inv, int(shoup_precompute(n_inv, q)),
                    last_inv, int(shoup_precompute(last_inv, q)))


@njit(cache=True)
def _ct_block(x, y, w, w_shoup, q, two_q):
    """Cooley-Tukey butterflies (x, y) <- (x + w*y, x - w*y) with one twiddle; values lazy in [0, 4q)."""
    for j in range(x.shape[0]):
        u = x[j]
        u = conditional_subtract(u, two_q)
        v = shoup_mul_lazy(y[j], w, w_shoup, q)
        x[j] = u + v
        y[j] = u - v + two_q


@njit(cache=True)
def _ct_column(x, y, w, w_shoup, q, two_q):
    """The same butterflies with a twiddle per element (narrow stages, one column of blocks)."""
    for j in range(x.shape[0]):
        u = x[j]
        u = conditional_subtract(u, two_q)
        v = shoup_mul_lazy(y[j], w[j], w_shoup[j], q)
        x[j] = u + v
        y[j] = u - v + two_q


@njit(cache=True)
def _gs_block(x, y, w, w_shoup, q, two_q):
    """Gentleman-Sande butterflies (x, y) <- (x + y, (x - y) * w); values lazy in [0, 2q)."""
    for j in range(x.shape[0]):
        u = x[j] + y[j]
        t = x[j] - y[j] + two_q
        x[j] = conditional_subtract(u, two_q)
        y[j] = shoup_mul_lazy(t, w, w_shoup, q)


@njit(cache=True)
def _gs_column(x, y, w, w_shoup, q, two_q):
    """Gentleman-Sande butterflies with a twiddle per element."""
    for j in range(x.shape[0]):
        u = x[j] + y[j]
        t = x[j] - y[j] + two_q
        x[j] = conditional_subtract(u, two_q)
        y[j] = shoup_mul_lazy(t, w[j], w_shoup[j], q)


@njit(cache=True)
def _gs_last_block(x, y, n_inv, n_inv_shoup, last_inv, last_inv_shoup, q, two_q):
    """The inverse's last stage with N^-1 folded in: (x, y) <- ((x + y) N^-1, (x - y) w N^-1), in [0, q)."""
    for j in range(x.shape[0]):
        u = x[j] + y[j]
        t = x[j] - y[j] + two_q
        x[j] = shoup_mul(u, n_inv, n_inv_shoup, q)
        y[j] = shoup_mul(t, last_inv, last_inv_shoup, q)


@njit(cache=True)
def _transpose_groups(a, s):
    """The (s, N/s) array whose row c holds a[s*g + c] for every group g."""
    g = a.shape[0] // s
    out = np.empty((s, g), dtype=np.uint64)
    for k in range(g):
        for c in range(s):
            out[c, k] = a[k * s + c]
    return out


@njit(cache=True)
def ntt_forward_limb(a, psi_rev, psi_rev_shoup, narrow, narrow_shoup, q):
    """In place: a (coefficients in [0, q)) -> its negacyclic NTT in bit-reversed order, in [0, q)."""
    n = a.shape[0]
    two_q = q + q
    s = min(_GROUP, n // 2)
    t, m = n, 1
    while t > s:  # wide stages: t = N/2, ..., s
        t //= 2
        for i in range(m):
            j1 = 2 * i * t
            _ct_block(a[j1 : j1 + t], a[j1 + t : j1 + 2 * t], psi_rev[m + i], psi_rev_shoup[m + i], q, two_q)
        m *= 2
    groups = _transpose_groups(a, s)
    row, t = 0, s // 2
    while t >= 1:  # narrow stages: sub-block b of every group pairs rows (2tb + c, 2tb + c + t)
        for b in range(s // (2 * t)):
            for c in range(t):
                x = 2 * t * b + c
                _ct_column(groups[x], groups[x + t], narrow[row], narrow_shoup[row], q, two_q)
            row += 1
        t //= 2
    for k in range(n // s):
        for c in range(s):
            a[k * s + c] = groups[c, k]
    for j in range(n):
        v = a[j]
        v = conditional_subtract(v, two_q)
        a[j] = conditional_subtract(v, q)


@njit(cache=True)
def ntt_inverse_limb(a, out, psi_inv_rev, psi_inv_rev_shoup, narrow, narrow_shoup, n_inv, n_inv_shoup,
                     last_inv, last_inv_shoup, q):
    """out <- the inverse of ``ntt_forward_limb`` of a, including the factor N^-1; output in [0, q). ``out``
    may be ``a`` (in place): a is read once, by the transpose that starts the narrow stages."""
    n = a.shape[0]
    two_q = q + q
    s = min(_GROUP, n // 2)
    groups = _transpose_groups(a, s)
    a = out  # from here on, every stage works on out
    t = 1
    while t < s:  # narrow stages t = 1, ..., s/2; their twiddle rows start at s/(2t) - 1
        row = s // (2 * t) - 1
        for b in range(s // (2 * t)):
            for c in range(t):
                x = 2 * t * b + c
                _gs_column(groups[x], groups[x + t], narrow[row], narrow_shoup[row], q, two_q)
            row += 1
        t *= 2
    for k in range(n // s):
        for c in range(s):
            a[k * s + c] = groups[c, k]
    m = n // t
    while m > 2:  # wide stages t = s, ..., N/4
        h = m // 2
        for i in range(h):
            j1 = 2 * i * t
            _gs_block(a[j1 : j1 + t], a[j1 + t : j1 + 2 * t], psi_inv_rev[h + i], psi_inv_rev_shoup[h + i],
                      q, two_q)
        t *= 2
        m = h
    _gs_last_block(a[:t], a[t:], n_inv, n_inv_shoup, last_inv, last_inv_shoup, q, two_q)


@njit(cache=True, parallel=True)
def _forward_rows(a, rows, table, psi_rev, psi_rev_shoup, narrow, narrow_shoup, q):
    """ntt_forward_limb on a[rows[r]] with the stacked table table[r], every r a job (``schedule``)."""
    jobs = job_counter()
    for _ in prange(rows.shape[0]):
        r = next_job(jobs)
        while r < rows.shape[0]:
            t = table[r]
            ntt_forward_limb(a[rows[r]], psi_rev[t], psi_rev_shoup[t], narrow[t], narrow_shoup[t], q[t])
            r = next_job(jobs)


@njit(cache=True, parallel=True)
def _inverse_rows(a, rows, out, out_rows, table, psi_inv_rev, psi_inv_rev_shoup, narrow, narrow_shoup, n_inv,
                  n_inv_shoup, last_inv, last_inv_shoup, q):
    """out[out_rows[r]] <- ntt_inverse_limb of a[rows[r]] with the stacked table table[r], every r a job
    (``schedule``; ``out`` may be ``a`` with out_rows = rows: in place)."""
    jobs = job_counter()
    for _ in prange(rows.shape[0]):
        r = next_job(jobs)
        while r < rows.shape[0]:
            t = table[r]
            ntt_inverse_limb(a[rows[r]], out[out_rows[r]], psi_inv_rev[t], psi_inv_rev_shoup[t], narrow[t],
                             narrow_shoup[t], n_inv[t], n_inv_shoup[t], last_inv[t], last_inv_shoup[t], q[t])
            r = next_job(jobs)


@lru_cache(maxsize=64)
def _stacked(moduli: tuple[int, ...], ring_degree: int) -> dict[str, np.ndarray]:
    """Every field of these (distinct) primes' ``NttTable``s stacked once, read-only: twiddles as (primes,
    N) arrays (narrow ones as (primes, S - 1, N/S)), constants such as ``modulus`` as (primes,) arrays."""
    tables = [ntt_table(q, ring_degree) for q in moduli]
    stacked = {f.name: np.array([getattr(t, f.name) for t in tables], dtype=np.uint64)
               for f in fields(NttTable) if f.name != "ring_degree"}
    for array in stacked.values():
        array.setflags(write=False)
    return stacked


def forward_tables(moduli: tuple[int, ...], ring_degree: int) -> tuple[np.ndarray, ...]:
    """The twiddles ``ntt_forward_limb`` takes after the limb (psi_rev, psi_rev_shoup, narrow_rev,
    narrow_rev_shoup), stacked by prime, row i for moduli[i]: for a kernel that transforms rows itself,
    where they are used (read-only, cached)."""
    st = _stacked(tuple(moduli), ring_degree)
    return st["psi_rev"], st["psi_rev_shoup"], st["narrow_rev"], st["narrow_rev_shoup"]


def _plan(a: np.ndarray, tables: tuple[NttTable, ...],
          rows: np.ndarray | None) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """The stacked tables of the distinct primes, the rows of ``a`` to transform (all by default) and the
    stacked table of each.

    Raises:
        ValueError: ``a`` is not a 2-D uint64 array of the tables' ring degree, or ``rows`` holds an index
            outside ``a``, a repeated index (two threads would transform one row), or not one per table.
    """
    if a.ndim != 2 or a.dtype != np.uint64:
        raise ValueError(f"NTT: expected a 2-D uint64 array of limbs, got {a.ndim}-D {a.dtype}")
    if any(t.ring_degree != a.shape[1] for t in tables):
        raise ValueError(f"NTT: the tables are for another ring degree than the limbs' {a.shape[1]}")
    rows = np.arange(a.shape[0], dtype=np.int64) if rows is None else np.asarray(rows, dtype=np.int64)
    if rows.ndim != 1 or len(tables) != rows.shape[0]:
        raise ValueError(f"NTT: {rows.shape[0] if rows.ndim == 1 else rows.shape} rows but {len(tables)} "
                         "tables")
    if rows.size and (rows.min() < 0 or rows.max() >= a.shape[0] or np.unique(rows).size != rows.size):
        raise ValueError(f"NTT: rows must be distinct indices in [0, {a.shape[0]})")
    distinct = tuple(dict.fromkeys(t.modulus for t in tables))
    position = {q: i for i, q in enumerate(distinct)}
    table = np.array([position[t.modulus] for t in tables], dtype=np.int64)
    return _stacked(distinct, a.shape[1]), rows, table


@timed("ntt")
def ntt_forward(a: np.ndarray, tables: tuple[NttTable, ...], rows: np.ndarray | None = None) -> None:
    """In place: each limb a[i] (mod tables[i].modulus) to NTT form, the limbs spread over the threads.

    ``rows`` (distinct indices into ``a``), if given, selects the limbs to transform, rows[k] with
    tables[k].

    Raises:
        ValueError: see ``_plan`` (limbs of another shape or type than the tables', bad ``rows``).
    """
    st, rows, table = _plan(a, tables, rows)
    _forward_rows(a, rows, table, st["psi_rev"], st["psi_rev_shoup"], st["narrow_rev"], st["narrow_rev_shoup"],
                  st["modulus"])


@timed("intt")
def ntt_inverse(a: np.ndarray, tables: tuple[NttTable, ...], rows: np.ndarray | None = None,
                out: np.ndarray | None = None) -> None:
    """In place: each limb a[i] from NTT form back to coefficients (``rows`` as in ``ntt_forward``).

    With ``out`` (C-contiguous uint64, one row per limb transformed, not overlapping ``a``), out[k]
    receives the transform of limb rows[k] (of a[k] without ``rows``) and ``a`` is left as it was: no
    copy of ``a`` is needed to keep its NTT form.

    Raises:
        ValueError: see ``_plan``; an ``out`` of another shape or type, or overlapping ``a``.
    """
    st, rows, table = _plan(a, tables, rows)
    if out is None:
        out, out_rows = a, rows
    elif (out.shape != (rows.shape[0], a.shape[1]) or out.dtype != np.uint64 or not out.flags.c_contiguous
          or np.may_share_memory(a, out)):
        raise ValueError(f"NTT: out must be a separate C-contiguous uint64 array of shape "
                         f"{(rows.shape[0], a.shape[1])}, got {out.dtype} {out.shape}")
    else:
        out_rows = np.arange(rows.shape[0], dtype=np.int64)
    _inverse_rows(a, rows, out, out_rows, table, st["psi_inv_rev"], st["psi_inv_rev_shoup"],
                  st["narrow_inv_rev"], st["narrow_inv_rev_shoup"], st["n_inv"], st["n_inv_shoup"],
                  st["last_inv"], st["last_inv_shoup"], st["modulus"])
