"""Noise of fresh encryptions, keys, rescaling and key switching against bounds derived here
(Lattigo's level 2).

Every noise is measured EXACTLY: the ciphertext components are brought to coefficients, the decryption
c_0 + c_1 s (+ c_2 s^2) is computed per prime by shift-and-add with the ternary secret, Python-int CRT gives
centered integers, and the known exact polynomial (the plaintext's integers, or the automorphism of the
input's decryption) is subtracted. Notation: N ring degree, sigma = 3.2, B_e = ceil(6 sigma) = 20 (tail cut
of the Gaussian), h = Hamming weight of s (about 2N/3), K special primes with product P, dnum digits of
alpha primes each.

The bounds use a 6-sigma central-limit argument for sums of independent terms: a coefficient of x * y with
|x_i| <= X and y_i independent with zero mean and standard deviation Y has standard deviation at most
sqrt(#terms) X Y, and we allow 6 of those. The margin is a factor of a few over what is observed, far below
what a real noise bug produces (an undivided P multiplies the key-switching noise by 2^60).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import ckks
from ckks.ring.automorphism import conjugation_element, galois_element
from ckks.ring.sampling import GAUSSIAN_SIGMA, GAUSSIAN_TAIL

N = 1024
B_E = math.ceil(GAUSSIAN_TAIL * GAUSSIAN_SIGMA)

# Three key-switching regimes at N = 1024 (toy sizes, security=None):
PARAMS = {
    # one 60-bit special prime above 40..50-bit digits: key-switching noise is the mod-down rounding
    "dnum3_K1": ckks.Parameters(
        ring_degree=N, moduli_bits=(50, 40, 40), special_moduli_bits=(60,), scale_bits=40, security=None
    ),
    # two special primes, digits of two primes (alpha = 2): the approximate mod-down with K = 2
    "dnum2_K2": ckks.Parameters(
        ring_degree=N,
        moduli_bits=(50, 40, 40, 40),
        special_moduli_bits=(60, 60),
        scale_bits=40,
        security=None,
    ),
    # a 30-bit P below 40..50-bit digits: the digit * key-error term (D_j e_j / P) dominates, ~2^27
    "small_P": ckks.Parameters(
        ring_degree=N, moduli_bits=(50, 40, 40), special_moduli_bits=(30,), scale_bits=40, security=None
    ),
}


@pytest.fixture(scope="module", params=sorted(PARAMS))
def keyed(request, key_set_factory):
    p = PARAMS[request.param]
    return key_set_factory(p, seed=21, steps=(1, -1, 7), conjugate=True)


def secret_of(ks) -> np.ndarray:
    return ks.sk.coefficients.astype(np.int64)


def hamming(ks) -> int:
    return int(np.count_nonzero(ks.sk.coefficients))


def message(ks, level=None, seed=0):
    rng = np.random.default_rng(seed)
    z = rng.uniform(-1, 1, ks.params.slots) + 1j * rng.uniform(-1, 1, ks.params.slots)
    return ks.encoder.encode(z, level=level)


def noise_of(ct, expected: list[int], ks, ref) -> list[int]:
    q_all = math.prod(ks.params.moduli[: ct.level + 1])
    got = ref.decrypt_exact(ct, secret_of(ks), ks.params)
    return [ref.center(g - e, q_all) for g, e in zip(got, expected, strict=True)]


def mod_down_rounding_bound(ks) -> float:
    """|delta_0 + delta_1 s|: mod-down leaves |delta| <= (K + 1)/2 per coefficient (documented:
    round(c/P) - u, |u| <= K/2); delta_1 s sums h such terms: 6 sqrt(h) (K + 1)/2."""
    k = len(ks.params.special_moduli)
    return (k + 1) / 2 * (1 + 6 * math.sqrt(hamming(ks)))


def report(name: str, observed: int, bound: float) -> None:
    margin = math.log2(bound / max(observed, 1))
    print(
        f"  noise {name:<34} |e|_inf = {observed:>12.4g}   bound {bound:>12.4g}   "
        f"({margin:.1f} bits of margin)"
    )


# ------------------------------------------------------------------------------------------------------------


def test_exact_decryption_agrees_with_decryptor(keyed, ref):
    """The independent decryption used below = Decryptor (to the last bit)."""
    pt = message(keyed)
    ct = keyed.encryptor.encrypt(pt)
    ours = ref.decrypt_exact(ct, secret_of(keyed), keyed.params)
    theirs = ref.plaintext_coefficients(keyed.decryptor.decrypt(ct), keyed.params)
    assert ours == theirs


def test_secret_key_encryption_noise(keyed, ref):
    """c = (-a s + e + m, a): decryption - m = e exactly, the Gaussian error:
    |e|_inf <= B_e = ceil(6 sigma) = 20. It is also really there: nonzero, standard deviation near sigma."""
    pt = message(keyed, seed=1)
    e = noise_of(keyed.sk_encryptor.encrypt(pt), ref.plaintext_coefficients(pt, keyed.params), keyed, ref)
    report("secret-key encryption", ref.inf_norm(e), B_E)
    assert ref.inf_norm(e) <= B_E
    assert 2.5 < float(np.std(e)) < 4.0


@pytest.mark.parametrize("level", ["max", 0])
def test_public_key_encryption_noise(keyed, ref, level):
    """c = ((u b + e_0, u a + e_1) over QP) / P + (m, 0) with b = -a s + e:
    decryption - m = (u e + e_0 + e_1 s) / P + delta_0 + delta_1 s.
    |u e + e_0 + e_1 s| <= 6 sqrt(N) sigma * 2 + B_e is divided by P >= 2^30 (< 1), so the bound is the
    mod-down rounding: 1 + (K + 1)/2 (1 + 6 sqrt(h)), about 6 sqrt(N) for K = 1 ("a few sqrt(N)")."""
    lvl = keyed.params.max_level if level == "max" else 0
    pt = message(keyed, level=lvl, seed=2)
    e = noise_of(keyed.encryptor.encrypt(pt), ref.plaintext_coefficients(pt, keyed.params), keyed, ref)
    bound = 1 + mod_down_rounding_bound(keyed)
    report(f"public-key encryption (level {lvl})", ref.inf_norm(e), bound)
    assert ref.inf_norm(e) <= bound


def test_public_key_is_an_rlwe_sample(keyed, ref):
    """pk = (b, a) over Q*P with b + a s = e, |e|_inf <= B_e (exactly, on every prime)."""
    p = keyed.params
    moduli = p.moduli + p.special_moduli
    b, a = (ref.to_coefficients(c, moduli, N) for c in keyed.pk.data)
    s = secret_of(keyed)
    rows = [(b[i] + ref.ternary_mul_mod(a[i], s, q)) % np.uint64(q) for i, q in enumerate(moduli)]
    e = ref.crt(np.array(rows), moduli)
    assert 0 < ref.inf_norm(e) <= B_E


def check_switching_key(key: ckks.SwitchingKey, s_from: list[int], ks, ref) -> None:
    """Digit j: b_j + a_j s = e_j + P g_j s' with g_j = 1 on digit j's primes, 0 elsewhere; |e_j| <= B_e."""
    p = ks.params
    moduli = p.moduli + p.special_moduli
    p_all = math.prod(p.special_moduli)
    s = secret_of(ks)
    assert key.data.shape == (p.digits, 2, len(moduli), N)
    for j in range(p.digits):
        digit = range(j * p.digit_size, min((j + 1) * p.digit_size, len(p.moduli)))
        b, a = (ref.to_coefficients(c, moduli, N) for c in key.data[j])
        rows = []
        for i, q in enumerate(moduli):
            r = (b[i] + ref.ternary_mul_mod(a[i], s, q)) % np.uint64(q)
            if i in digit:
                gadget = ref.residues([p_all * v for v in s_from], (q,))[0]
                r = (r + np.uint64(q) - gadget) % np.uint64(q)
            rows.append(r)
        e = ref.crt(np.array(rows), moduli)
        assert 0 < ref.inf_norm(e) <= B_E, f"digit {j}"


def test_relinearization_key_structure_and_noise(keyed, ref):
    s = [int(v) for v in secret_of(keyed)]
    check_switching_key(keyed.rlk.key, ref.negacyclic_mul(s, s), keyed, ref)


def test_galois_key_structure_and_noise(keyed, ref):
    s = [int(v) for v in secret_of(keyed)]
    for g in (galois_element(7, N), conjugation_element(N)):
        check_switching_key(keyed.gk.keys[g], ref.automorphism(s, g), keyed, ref)


def key_switch_bound(ks, level: int) -> float:
    """u_0 + u_1 s - d s' = (sum_j D_j e_j) / P + delta_0 + delta_1 s, with D_j the digit j of d extended by
    fast base conversion: |D_j| <= Q_j (alpha_j + 1) / 2 (centered digit + |u| <= alpha_j / 2 multiples of
    Q_j). Each D_j e_j coefficient sums N terms |D| * (sigma-distributed e): <= 6 sqrt(N) sigma max|D_j|;
    the dnum digits add up (counted dnum times, not sqrt(dnum)); then / P; plus the mod-down rounding."""
    p = ks.params
    p_all = math.prod(p.special_moduli)
    moduli = p.moduli[: level + 1]
    digits = [moduli[j * p.digit_size : (j + 1) * p.digit_size] for j in range(p.digits)]
    digits = [d for d in digits if d]
    d_max = max(math.prod(d) * (len(d) + 1) / 2 for d in digits)
    return len(digits) * 6 * math.sqrt(N) * GAUSSIAN_SIGMA * d_max / p_all + mod_down_rounding_bound(ks)


@pytest.mark.parametrize("level", ["max", 1])
def test_relinearization_noise(keyed, ref, level):
    """relinearize(d_0, d_1, d_2) decrypts to d_0 + d_1 s + d_2 s^2 + e_ks with |e_ks| <= key_switch_bound."""
    ev = keyed.evaluator
    lvl = keyed.params.max_level if level == "max" else 1
    a = keyed.encryptor.encrypt(message(keyed, level=lvl, seed=3))
    b = keyed.encryptor.encrypt(message(keyed, level=lvl, seed=4))
    prod = ev.multiply(a, b)
    before = ref.decrypt_exact(prod, secret_of(keyed), keyed.params)  # size 3: includes d_2 s^2
    e = noise_of(ev.relinearize(prod), before, keyed, ref)
    bound = key_switch_bound(keyed, lvl)
    report(f"relinearize (level {lvl})", ref.inf_norm(e), bound)
    assert ref.inf_norm(e) <= bound


@pytest.mark.parametrize("what", ["rotate 1", "rotate -1", "rotate 7", "conjugate"])
def test_rotation_and_conjugation_noise(keyed, ref, what):
    """rotate / conjugate: decryption = (decryption of the input)(X^g) + e_ks, |e_ks| <= key_switch_bound
    (the automorphism itself permutes the input's noise exactly)."""
    ev = keyed.evaluator
    ct = keyed.encryptor.encrypt(message(keyed, seed=5))
    if what == "conjugate":
        g, out = conjugation_element(N), ev.conjugate(ct)
    else:
        step = int(what.split()[1])
        g, out = galois_element(step, N), ev.rotate(ct, step)
    expected = ref.automorphism(ref.decrypt_exact(ct, secret_of(keyed), keyed.params), g)
    e = noise_of(out, expected, keyed, ref)
    bound = key_switch_bound(keyed, ct.level)
    report(what, ref.inf_norm(e), bound)
    assert ref.inf_norm(e) <= bound


def test_rescale_noise(keyed, ref):
    """rescale: c_i -> round(c_i / q_l), so decryption = (c_0 + c_1 s)/q_l + delta_0 + delta_1 s with
    |delta| <= 1/2: compared with round(dec / q_l) the difference is <= 1 + 6 sqrt(h) / 2."""
    ct = keyed.encryptor.encrypt(message(keyed, seed=6))
    q_l = keyed.params.moduli[ct.level]
    before = ref.decrypt_exact(ct, secret_of(keyed), keyed.params)
    expected = [(2 * v + q_l) // (2 * q_l) for v in before]
    e = noise_of(keyed.evaluator.rescale(ct), expected, keyed, ref)
    bound = 1 + 6 * math.sqrt(hamming(keyed)) / 2
    report("rescale", ref.inf_norm(e), bound)
    assert ref.inf_norm(e) <= bound
