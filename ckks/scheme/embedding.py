"""The CKKS canonical embedding and its inverse, computed with the O(N log N) "special FFT".

Cheon, Kim, Kim, Song, "Homomorphic Encryption for Arithmetic of Approximate Numbers" (ASIACRYPT 2017),
section 3.  A plaintext is a real polynomial m(X) in R[X]/(X^N + 1).  With zeta = exp(i*pi/N), a primitive
2N-th root of unity, the N roots of X^N + 1 are zeta^e for odd e.  The odd residues mod 2N split as
{5^j} and {-5^j} (j < N/2), so the canonical embedding of a *real* m is fixed by its values at

    slot j  =  m(zeta^(5^j mod 2N)),   j = 0 .. N/2 - 1,

the values at the other N/2 roots being their complex conjugates.  Ordering the slots by powers of 5 makes
the Galois automorphisms act simply on the slot vector:

    X -> X^5         rotates the slots left by one   (slot j of m(X^5) is slot j+1 of m(X)),
    X -> X^(2N - 1)  conjugates every slot.

The special FFT.  Fold m into a complex polynomial of degree < n = N/2,

    a_j = m_j + i * m_(j + n),      since  zeta_k^n = i^(5^k) = i  for every slot root zeta_k,

so that slot k = a(zeta_k).  Write a(x) = E(x^2) + x * O(x^2) (even / odd coefficients).  With
zeta_L = exp(2 pi i / 4L), the points of a size-L problem are x_k = zeta_L^(5^k mod 4L), and
5^(L/2) = 2L + 1 (mod 4L) gives

    x_(k + L/2) = -x_k,    x_k^2 = x_(k + L/2)^2 = the k-th point of the size-L/2 problem,

hence the radix-2 butterfly  a(x_k) = E_k + x_k O_k,  a(x_(k+L/2)) = E_k - x_k O_k.  Done iteratively on
bit-reversed input this is a Cooley-Tukey FFT whose twiddles at stage L are zeta_L^(5^j mod 4L), j < L/2;
the inverse undoes the stages in reverse order with conjugated twiddles and a final division by n.
(The same transform appears in HEAAN as ``fftSpecial`` / ``fftSpecialInv``.)

Sparse packing.  ``embed_inverse`` with n < N/2 values returns m(X) = m'(X^g), g = N / (2n), where m' is the
ring-degree-2n encoding of the n values.  Its N/2 slots hold the n values *replicated* g times
(slot k = z[k mod n]), so rotating all N/2 slots by one rotates the n values cyclically, as in HEAAN and
Lattigo.  ``embed(m, slots=n)`` reads n slots back as the average of the g replicas, which equals the
embedding of the coefficients of m at multiples of g (the other coefficients average out exactly).
"""

from __future__ import annotations

import functools
import operator
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ckks.errors import ParameterError, ValueRangeError
from ckks.instrument import timed

MIN_RING_DEGREE = 4
MAX_RING_DEGREE = 1 << 17

__all__ = ["MAX_RING_DEGREE", "MIN_RING_DEGREE", "embed", "embed_inverse", "slot_roots"]


# ---------------------------------------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------------------------------------


def _is_power_of_two(value: int) -> bool:
    return value > 0 and value & (value - 1) == 0


def _check_ring_degree(ring_degree: object) -> int:
    """Return ring_degree as an int if it is a power of two in [MIN_RING_DEGREE, MAX_RING_DEGREE].

    Raises:
        ParameterError: if it is not an integer, not a power of two, or out of range.
    """
    if isinstance(ring_degree, bool):
        raise ParameterError(f"ring degree must be an integer power of two, got {ring_degree!r}")
    try:
        n = operator.index(ring_degree)  # type: ignore[arg-type]
    except TypeError:
        raise ParameterError(f"ring degree must be an integer power of two, got {ring_degree!r}") from None
    if not _is_power_of_two(n) or not MIN_RING_DEGREE <= n <= MAX_RING_DEGREE:
        raise ParameterError(
            f"ring degree N = {n} is not supported: use a power of two in "
            f"[{MIN_RING_DEGREE}, {MAX_RING_DEGREE}]"
        )
    return n


def _check_slot_count(slots: object, ring_degree: int) -> int:
    """Return slots as an int if it is a power of two in [1, ring_degree / 2].

    Raises:
        ParameterError: if it is not an integer, not a power of two, or more than N/2.
    """
    if isinstance(slots, bool):
        raise ParameterError(f"slot count must be an integer power of two, got {slots!r}")
    try:
        n = operator.index(slots)  # type: ignore[arg-type]
    except TypeError:
        raise ParameterError(f"slot count must be an integer power of two, got {slots!r}") from None
    if not _is_power_of_two(n) or n > ring_degree // 2:
        raise ParameterError(
            f"{n} slots cannot be packed at ring degree N = {ring_degree}: the slot count must be a power "
            f"of two between 1 and N/2 = {ring_degree // 2} (pad the values with zeros to a power of two)"
        )
    return n


def _check_finite(values: np.ndarray, what: str) -> None:
    """Raise if any entry of values is NaN or infinite.

    Raises:
        ValueRangeError: naming the first offending index.
    """
    finite = np.isfinite(values)
    if not finite.all():
        bad = int(np.flatnonzero(~finite)[0])
        raise ValueRangeError(f"{what} must be finite, but entry {bad} is {values[bad]}")


# ---------------------------------------------------------------------------------------------------------
# Precomputed tables (cached per size, read-only)
# ---------------------------------------------------------------------------------------------------------


def _read_only(array: np.ndarray) -> np.ndarray:
    array.setflags(write=False)
    return array


def _powers_of_five(count: int, modulus: int) -> np.ndarray:
    """5^j mod modulus for j < count (count a power of two), by doubling: no loop over the entries."""
    powers = np.ones(1, dtype=np.int64)
    while powers.size < count:
        step = pow(5, powers.size, modulus)  # 5^k for the k entries already known
        powers = np.concatenate([powers, powers * step % modulus])  # entries < 2^18, products < 2^36
    return powers[:count]


@dataclass(frozen=True)
class _FftTables:
    """Tables of the size-n special FFT (n = number of slots): the bit-reversal and one twiddle row per stage.

    ``twiddles[s]`` belongs to the stage of block length L = 2^(s+1) and holds zeta_L^(5^j mod 4L), j < L/2,
    with zeta_L = exp(2 pi i / 4L); ``inverse_twiddles[s]`` holds their conjugates.
    """

    bit_reversal: np.ndarray
    twiddles: tuple[np.ndarray, ...]
    inverse_twiddles: tuple[np.ndarray, ...]


@functools.cache
def _fft_tables(n: int) -> _FftTables:
    """Build (once per n) the read-only tables of the special FFT over n = N/2 slots."""
    log_n = n.bit_length() - 1
    index = np.arange(n, dtype=np.int64)
    reversal = np.zeros(n, dtype=np.int64)
    for bit in range(log_n):  # a loop over the log n bits, vectorised over the n indices
        reversal |= ((index >> bit) & 1) << (log_n - 1 - bit)

    powers = _powers_of_five(max(n // 2, 1), 4 * n)  # 5^j mod 4n; reduce further for smaller stages
    twiddles = []
    length = 2
    while length <= n:
        exponents = powers[: length // 2] % (4 * length)
        angles = (2.0 * np.pi / (4 * length)) * exponents
        twiddles.append(_read_only(np.exp(1j * angles)))
        length *= 2
    inverse = tuple(_read_only(np.conj(w)) for w in twiddles)
    return _FftTables(_read_only(reversal), tuple(twiddles), inverse)


@functools.cache
def _slot_roots(ring_degree: int) -> np.ndarray:
    exponents = _powers_of_five(ring_degree // 2, 2 * ring_degree)
    return _read_only(np.exp(1j * (np.pi / ring_degree) * exponents))


def slot_roots(ring_degree: int) -> np.ndarray:
    """The evaluation points of the slots, in slot order: zeta^(5^j mod 2N), zeta = exp(i pi / N), j < N/2.

    CKKS (Cheon et al. 2017) section 3: the canonical embedding restricted to one root of each conjugate
    pair, ordered by powers of the generator 5 of (Z/2NZ)^* / {+-1}.  The array is cached and read-only.

    Raises:
        ParameterError: if ring_degree is not a power of two in [4, 2^17].
    """
    return _slot_roots(_check_ring_degree(ring_degree))


# ---------------------------------------------------------------------------------------------------------
# The special FFT (vectorised per stage: the only Python loops run over the log n stages)
# ---------------------------------------------------------------------------------------------------------


def _special_fft(folded: np.ndarray) -> np.ndarray:
    """Evaluate a(x) = sum_j folded[j] x^j at the n slot points x_k = exp(2 pi i (5^k mod 4n) / 4n).

    Radix-2 decimation in time: a(x_k) = E_k + x_k O_k and a(x_(k+L/2)) = E_k - x_k O_k at every stage L.
    """
    n = folded.size
    tables = _fft_tables(n)
    values = folded[tables.bit_reversal]  # a fresh array, transformed in place below
    length = 2
    for twiddle in tables.twiddles:
        half = length // 2
        blocks = values.reshape(n // length, 2, half)
        even = blocks[:, 0, :]
        odd_times_root = blocks[:, 1, :] * twiddle
        np.subtract(even, odd_times_root, out=blocks[:, 1, :])
        even += odd_times_root
        length *= 2
    return values


def _special_fft_inverse(slots: np.ndarray) -> np.ndarray:
    """Interpolate: the folded coefficients a_j (j < n) with a(x_k) = slots[k], undoing ``_special_fft``.

    Each stage maps (y_k, y_(k+L/2)) to (y_k + y_(k+L/2), (y_k - y_(k+L/2)) * conj(x_k)) = 2 (E_k, O_k)
    (|x_k| = 1); the factors 2 are divided out once at the end as 1/n, after the bit reversal.
    """
    n = slots.size
    tables = _fft_tables(n)
    values = np.array(slots, dtype=np.complex128, copy=True)
    length = n
    for twiddle in reversed(tables.inverse_twiddles):
        half = length // 2
        blocks = values.reshape(n // length, 2, half)
        first = blocks[:, 0, :]
        second = blocks[:, 1, :]
        difference = first - second
        first += second
        np.multiply(difference, twiddle, out=second)
        length //= 2
    values = values[tables.bit_reversal]
    values /= n
    return values


# ---------------------------------------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------------------------------------


@timed("decode_fft")
def embed(coeffs: npt.ArrayLike, *, slots: int | None = None) -> np.ndarray:
    """Canonical embedding sigma(m): the slot values m(zeta^(5^j mod 2N)), j < N/2, with N = len(coeffs).

    CKKS (Cheon et al. 2017) section 3, decoding direction, via the special FFT (module docstring): fold
    a_j = m_j + i m_(j+N/2), then evaluate a at the slot roots in O(N log N).

    With ``slots=n < N/2`` (sparse packing, the layout ``embed_inverse`` produces for n values) it returns
    the n-vector  (1/g) sum_(r<g) sigma(m)[k + r n],  g = N/(2n): the average of the g replicas of slot k,
    computed exactly as the embedding at ring degree 2n of the coefficients m_0, m_g, m_2g, ...  For an m
    made by ``embed_inverse`` from n values the replicas are equal and this returns those values.

    Raises:
        ParameterError: if coeffs is not one-dimensional with a power-of-two length in [4, 2^17], or if
            slots is not a power of two in [1, N/2].
        ValueRangeError: if a coefficient is NaN, infinite, or has a nonzero imaginary part.
    """
    m = np.asarray(coeffs)
    if m.ndim != 1:
        raise ParameterError(f"coefficients must be a one-dimensional array of length N, got shape {m.shape}")
    ring_degree = _check_ring_degree(m.size)
    if np.iscomplexobj(m):
        if np.any(m.imag != 0):
            raise ValueRangeError("a plaintext polynomial has real coefficients; got nonzero imaginary parts")
        m = m.real
    try:
        m = m.astype(np.float64, copy=False)
    except (TypeError, ValueError):
        raise ValueRangeError(f"coefficients must be real numbers, got dtype {m.dtype}") from None
    _check_finite(m, "coefficients")

    if slots is not None:
        n = _check_slot_count(slots, ring_degree)
        m = m[:: ring_degree // (2 * n)]  # project onto polynomials in X^g: the average over the replicas
    half = m.size // 2
    return _special_fft(m[:half] + 1j * m[half:])


@timed("encode_fft")
def embed_inverse(slots: npt.ArrayLike, *, ring_degree: int) -> np.ndarray:
    """Inverse canonical embedding sigma^-1: the real polynomial m with m(zeta^(5^j mod 2N)) = z_j.

    CKKS (Cheon et al. 2017) section 3, encoding direction (before scaling and rounding): the unique real
    m of degree < N whose embedding is (z, conj(z)), computed by the inverse special FFT and unfolding
    m_j = Re a_j, m_(j+N/2) = Im a_j.

    Sparse packing: for n = len(slots) < N/2 the result is m'(X^g), g = N/(2n), with m' the ring-degree-2n
    encoding of z.  All N/2 slots of m are then filled with g copies of z:  sigma(m)[k] = z[k mod n],
    so ``embed(m)[:n] == z`` and ``embed(m, slots=n) == z``; only coefficients at multiples of g are nonzero.

    Raises:
        ParameterError: if ring_degree is not a power of two in [4, 2^17], or slots is not one-dimensional
            with a power-of-two length at most N/2.
        ValueRangeError: if a slot value is NaN or infinite.
    """
    degree = _check_ring_degree(ring_degree)
    z = np.asarray(slots)
    if z.ndim != 1:
        raise ParameterError(f"slot values must be a one-dimensional array, got shape {z.shape}")
    n = _check_slot_count(z.size, degree)
    try:
        z = z.astype(np.complex128, copy=False)
    except (TypeError, ValueError):
        raise ValueRangeError(f"slot values must be real or complex numbers, got dtype {z.dtype}") from None
    _check_finite(z, "slot values")

    folded = _special_fft_inverse(z)
    if 2 * n == degree:
        return np.concatenate([folded.real, folded.imag])
    m = np.zeros(degree, dtype=np.float64)
    gap = degree // (2 * n)
    m[::gap][:n] = folded.real
    m[::gap][n:] = folded.imag
    return m
