"""Noise-flooded decryption (Li-Micciancio, EUROCRYPT 2021): what ``Decryptor.decrypt(ct, flood_bits=b)``
adds, checked against the independent CRT of conftest, and what it costs on the shipped clinical model.

Decrypting the same ciphertext with and without flooding gives m + e + f and m + e: their difference is the
flooding noise f itself, so its distribution can be measured exactly, coefficient by coefficient.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

import ckks

ROOT = Path(__file__).resolve().parents[3]
CLINICAL = ROOT / "models" / "clinical"
PARAMS = ckks.Parameters(ring_degree=1024, moduli_bits=(50, 40, 40), special_moduli_bits=(60,), scale_bits=40,
                         security=None)


@pytest.fixture(scope="module")
def keys(key_set_factory):
    return key_set_factory(PARAMS, seed=21)


@pytest.fixture(scope="module")
def ct(keys):
    x = np.random.default_rng(2).uniform(-1, 1, PARAMS.slots)
    return x, keys.encryptor.encrypt(keys.encoder.encode(x))


def flood_of(keys, ref, ct: ckks.Ciphertext, bits: float) -> np.ndarray:
    """The noise f that decrypt(ct, flood_bits=bits) added: (m + e + f) - (m + e), as exact integers."""
    moduli = PARAMS.moduli[: ct.level + 1]
    plain = ref.crt(ref.to_coefficients(keys.decryptor.decrypt(ct).data, moduli, PARAMS.ring_degree), moduli)
    flooded = keys.decryptor.decrypt(ct, flood_bits=bits)
    noisy = ref.crt(ref.to_coefficients(flooded.data, moduli, PARAMS.ring_degree), moduli)
    return np.array([a - b for a, b in zip(noisy, plain, strict=True)], dtype=np.float64)


def test_no_flooding_is_the_plain_decryption(keys, ct):
    _, c = ct
    plain = keys.decryptor.decrypt(c)
    again = keys.decryptor.decrypt(c, flood_bits=None)
    assert np.array_equal(plain.data, again.data) and (plain.level, plain.scale) == (again.level, again.scale)


@pytest.mark.parametrize("bits", [8, 20.5, 35])
def test_flooding_noise_is_a_centred_gaussian_of_sigma_two_to_the_bits(keys, ref, ct, bits):
    _, c = ct
    f = np.concatenate([flood_of(keys, ref, c, bits) for _ in range(4)])  # 4096 samples
    sigma = 2.0**bits
    assert abs(f.std() / sigma - 1) < 0.06  # the std estimate's own error is 1.1 %: 5 sigma
    assert abs(f.mean()) < 5 * sigma / math.sqrt(f.size)
    assert np.abs(f).max() < 8.6 * sigma + 1
    # Gaussian, not uniform of the same variance: P(|f| < sigma) is 0.683 (uniform: 0.577)
    assert abs(np.mean(np.abs(f) < sigma) - 0.683) < 0.04
    assert np.all(f == np.rint(f))


def test_each_decryption_draws_fresh_noise_even_with_seeded_keys(keys, ref, ct):
    """Keys and encryptor are seeded here (tests); the flood must still come from the OS CSPRNG."""
    _, c = ct
    first, second = flood_of(keys, ref, c, 20), flood_of(keys, ref, c, 20)
    assert not np.array_equal(first, second)
    assert abs(np.corrcoef(first, second)[0, 1]) < 0.15


def test_slot_error_matches_the_documented_formula(keys, ct):
    """Each slot gains an error of standard deviation 2^b * sqrt(N/2) / scale (real part)."""
    x, c = ct
    bits = 22
    plain = keys.encoder.decode(keys.decryptor.decrypt(c))
    extra = np.concatenate([keys.encoder.decode(keys.decryptor.decrypt(c, flood_bits=bits)) - plain
                            for _ in range(8)])
    expected = 2.0**bits * math.sqrt(PARAMS.ring_degree / 2) / c.scale
    assert abs(extra.std() / expected - 1) < 0.06
    assert np.abs(plain - x).max() < 2.0**-25 < expected  # the flood dominates the scheme's own error


@pytest.mark.parametrize("bits", [-1, -0.5, float("nan"), float("inf"), True, "20", [20]])
def test_malformed_flood_bits_are_refused(keys, ct, bits):
    with pytest.raises(ckks.ParameterError, match="flood_bits"):
        keys.decryptor.decrypt(ct[1], flood_bits=bits)


def test_flooding_that_could_wrap_the_modulus_is_refused(keys, keys_level0):
    c = keys_level0
    log_q = math.log2(PARAMS.moduli[0])
    with pytest.raises(ckks.ValueRangeError, match=r"could wrap modulo Q_0 .* use flood_bits <="):
        keys.decryptor.decrypt(c, flood_bits=log_q - 5)
    keys.decryptor.decrypt(c, flood_bits=log_q - 6.5)  # the largest accepted size still decrypts


@pytest.fixture(scope="module")
def keys_level0(keys, ct):
    ev = keys.evaluator
    return ev.rescale(ev.rescale(ct[1]))


# ------------------------------------------------------------------------------------------------------------
# The shipped clinical model: 4096 real test records, encrypted weights, flooded decryption
# ------------------------------------------------------------------------------------------------------------

CLINICAL_FLOOD_BITS = 25  # SECURITY.md: 2^13.7 x the largest coefficient of the circuit's own error


@pytest.fixture(scope="module")
def clinical_run():
    """One encrypted inference of the clinical model on its first 4096 test records (128-bit parameters)."""
    from nn import encrypted as enc
    from nn.data import load_xy
    from nn.model import load_network
    from nn.plan import plan_inference

    net = load_network(CLINICAL)
    x, _ = load_xy(CLINICAL, "test")
    records = x[:4096]
    plan = plan_inference(net, x, batch_size=4096)
    keygen = ckks.KeyGenerator(plan.params)
    encoder, encryptor = ckks.Encoder(plan.params), ckks.Encryptor(plan.params, keygen.secret_key)
    model = enc.compile_model(net, plan, encoder, encryptor)
    ev = ckks.Evaluator(plan.params, relin_key=keygen.relin_key(),
                        galois_keys=keygen.galois_keys(plan.rotation_steps))
    outputs = enc.predict(model, enc.encrypt_batch(records, plan, encoder, encryptor), ev)
    return dict(net=net, plan=plan, outputs=outputs, encoder=encoder, reference=net.forward(records),
                decryptor=ckks.Decryptor(plan.params, keygen.secret_key))


def circuit_error_bits(run: dict) -> float:
    """log2 of the largest coefficient of the output's own error: decrypt(ct) - encode(float64 result)."""
    from ckks.ring import rns
    from ckks.ring.basis_conversion import crt_to_float
    from nn import batch_packing as bp

    plan, ct = run["plan"], run["outputs"][0]
    moduli = plan.params.moduli[: ct.level + 1]
    basis = rns.rns_basis(moduli, plan.params.ring_degree)
    expected = bp.pack(run["reference"], plan.block, plan.features_per_ciphertext, plan.params.slots)[0]
    want = run["encoder"].encode(expected, level=ct.level, scale=ct.scale)
    got = run["decryptor"].decrypt(ct)
    error = (crt_to_float(rns.from_ntt(got.data, basis), moduli)
             - crt_to_float(rns.from_ntt(want.data, basis), moduli))
    return float(np.log2(np.abs(error).max()))


def scores_with(run: dict, bits: float | None) -> np.ndarray:
    from nn import encrypted as enc

    return enc.decrypt_batch(run["outputs"], 4096, run["plan"], 1, run["encoder"], run["decryptor"], bits)


SWEEP = (None, 10, 20, CLINICAL_FLOOD_BITS, 28, 30, 32, 34, 36, 40)  # printed; only None and 25 are asserted


@pytest.mark.slow
def test_flooded_decryption_keeps_every_clinical_decision(clinical_run, capsys):
    """Prints the precision and the equal decisions for a sweep of flood_bits (SECURITY.md quotes it)."""
    run = clinical_run
    net, reference = run["net"], run["reference"]
    _, expected = net.decide(reference)
    span = float(np.ptp(reference))
    t = net.decision.threshold
    cut = math.log(t / (1 - t)) if net.decision.output == "logit" else t
    margin = float(np.min(np.abs(reference[:, 0] - cut)))
    noise_bits = circuit_error_bits(run)
    rows = {}
    for bits in SWEEP:
        scores = scores_with(run, bits)
        error = np.abs(scores - reference)
        equal = int(np.sum(net.decide(scores)[1] == expected))
        rows[bits] = (-math.log2(error.max()), -math.log2(error.mean()), -math.log2(error.max() / span),
                      equal)
    with capsys.disabled():
        print(f"\nclinical batch: circuit error up to 2^{noise_bits:.2f} per coefficient, scale "
              f"2^{math.log2(run['outputs'][0].scale):.2f}, N = {run['plan'].params.ring_degree}, smallest "
              f"distance of a score to the decision threshold 2^{math.log2(margin):.2f}")
        for bits, (worst, mean, relative, equal) in rows.items():
            print(f"  flood_bits {bits}: -log2 max err {worst:.2f}, -log2 mean err {mean:.2f}, relative to "
                  f"the output range {relative:.2f} bits, equal decisions {equal}/4096")
    (base_worst, _, _, base_equal), (worst, _, _, equal) = rows[None], rows[CLINICAL_FLOOD_BITS]
    assert base_equal == 4096 and equal == 4096
    assert CLINICAL_FLOOD_BITS - noise_bits > 12  # the flood dominates the circuit's error by > 2^12
    assert base_worst > 30 and worst > 16.5  # precision with flooding: about 17.5 bits (SECURITY.md)
    assert -worst < math.log2(margin) - 0.5  # the worst flooded error stays below the decision margin
    # the cost follows the formula: expected worst slot error about 4.3 sigma, sigma = 2^b sqrt(N/2) / scale
    sigma = 2.0**CLINICAL_FLOOD_BITS * math.sqrt(run["plan"].params.ring_degree / 2) / run["outputs"][0].scale
    assert abs(worst + math.log2(4.3 * sigma)) < 1.0
