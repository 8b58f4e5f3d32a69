"""Thread count of the parallel kernels: validated by name, and bit-identical results at every count.

The NTT, base conversion, key switching and the automorphism split their RNS limbs over Numba threads; each
limb runs the same code on any thread, so a key switch at T threads must equal the one at 1 thread exactly.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import ckks


@pytest.fixture
def restore_threads():
    before = ckks.get_threads()
    yield
    ckks.set_threads(before)


@pytest.mark.parametrize("bad", [0, -1, 1.0, True, "2", 10**6])
def test_bad_thread_counts_are_refused_by_name(bad, restore_threads):
    with pytest.raises(ckks.ParameterError, match=r"threads must be an integer in \[1, "):
        ckks.set_threads(bad)


def test_default_is_every_thread_of_the_pool(restore_threads):
    assert ckks.set_threads(None) == ckks.available_threads() == ckks.get_threads()
    assert ckks.set_threads(1) == 1 == ckks.get_threads()
    assert ckks.set_threads(np.int64(1)) == 1   # numpy integers are integers (as in ckks.Parameters)


def test_results_are_bit_identical_across_thread_counts(restore_threads):
    if ckks.available_threads() < 2:
        pytest.skip("this machine has one core: no second thread count to compare with")
    params = ckks.Parameters(ring_degree=4096, moduli_bits=(50, 40, 40, 40), special_moduli_bits=(50, 50),
                             scale_bits=40, security=None)
    keygen = ckks.KeyGenerator(params, seed=11)
    encoder, encryptor = ckks.Encoder(params), ckks.Encryptor(params, keygen.public_key(), seed=12)
    evaluator = ckks.Evaluator(params, relin_key=keygen.relin_key(), galois_keys=keygen.galois_keys(steps=[3]))
    values = np.random.default_rng(13).uniform(-1, 1, params.slots)
    ct = encryptor.encrypt(encoder.encode(values))

    def pipeline() -> list[ckks.Ciphertext]:
        squared = evaluator.rescale(evaluator.relinearize(evaluator.multiply(ct, ct)))
        return [squared, evaluator.rotate(squared, 3)]

    outputs = {}
    for count in (1, ckks.available_threads()):
        ckks.set_threads(count)
        outputs[count] = pipeline()
    first, *others = outputs.values()
    for other in others:
        assert all(np.array_equal(a.data, b.data) for a, b in zip(first, other, strict=True))
    rotated = encoder.decode(ckks.Decryptor(params, keygen.secret_key).decrypt(first[1]))
    assert np.max(np.abs(rotated - np.roll(values**2, -3))) < 2**-20   # and the identical result is right


@pytest.mark.parametrize("count", [1, 2])
def test_map_in_threads_keeps_the_order_and_the_first_failure(count, restore_threads):
    if count > ckks.available_threads():
        pytest.skip("this machine has one core")
    ckks.set_threads(count)
    assert ckks.map_in_threads(lambda k: k * k, range(50)) == [k * k for k in range(50)]

    def fail_from_seven(k: int) -> int:
        if k >= 7:
            raise ValueError(f"item {k}")
        return k

    with pytest.raises(ValueError, match="^item 7$"):  # the loop's first failure, not whichever came first
        ckks.map_in_threads(fail_from_seven, range(20))


def test_the_helpers_use_the_pool_threads_and_stay_in_the_caller_while_recording(restore_threads):
    import threading

    from ckks import instrument

    if ckks.available_threads() < 2:
        pytest.skip("this machine has one core")
    ckks.set_threads(2)
    barrier = threading.Barrier(2, timeout=10)  # passes only if two calls run at the same time

    def meet(_: int) -> str:
        barrier.wait()
        return threading.current_thread().name

    assert all(name.startswith("ckks-2") for name in ckks.map_in_threads(meet, range(2)))
    with instrument.recording(compile_events=False):  # the recorder belongs to this thread
        names = ckks.map_in_threads(lambda _: threading.current_thread().name, range(3))
    assert names == [threading.current_thread().name] * 3


def test_a_forked_child_gets_pools_of_its_own(restore_threads):
    import multiprocessing
    import time

    if ckks.available_threads() < 2:
        pytest.skip("this machine has one core")
    ckks.set_threads(2)
    for _ in range(3):  # the parent's pool exists before the fork, its workers idle
        ckks.map_in_threads(abs, range(-8, 0))
    time.sleep(0.2)
    child = multiprocessing.get_context("fork").Process(target=_map_in_child)
    child.start()
    child.join(timeout=30)
    if child.is_alive():
        child.kill()
    assert child.exitcode == 0  # not None: the inherited pool, which has no threads, would hang


def _map_in_child() -> None:
    ckks.set_threads(2)
    assert ckks.map_in_threads(abs, [-3, -4]) == [3, 4]


# Run in a fresh interpreter: libgomp reads GOMP_SPINCOUNT once, when it is loaded.
IDLE_SPIN_PROBE = """
import os, sys
import ckks
from benchmarks.machine import idle_spin_cpu_seconds

took = ckks.threads.spin_briefly_before_sleeping() if sys.argv[1] == "call" else None
ckks.set_threads(2)
again = ckks.threads.spin_briefly_before_sleeping()  # libgomp is loaded now: too late
idle = [idle_spin_cpu_seconds(2) for _ in range(3)]
print(min(idle), max(idle), took, again, os.environ.get("GOMP_SPINCOUNT"))
"""


def _idle_spin(call: bool, env_extra: dict[str, str]) -> tuple[float, float, str, str, str]:
    """(least, most) CPU seconds of three idle spells after a kernel; what spin_briefly_before_sleeping
    returned before and after set_threads; GOMP_SPINCOUNT as the probe saw it at the end."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k not in ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY")}
    out = subprocess.run([sys.executable, "-c", IDLE_SPIN_PROBE, "call" if call else "no"],
                         env={**env, **env_extra}, cwd=Path(__file__).resolve().parents[2],  # the repository
                         capture_output=True, text=True, timeout=120, check=True).stdout.split()
    return float(out[0]), float(out[1]), out[2], out[3], out[4]


def test_a_short_spin_puts_idle_kernel_threads_to_sleep_and_the_user_s_setting_wins():
    """CPU seconds while the main thread sleeps after a kernel = the idle kernel thread's spinning.
    spin_briefly_before_sleeping must spend far less than libgomp's default (here about 0.4 ms against
    7.5 ms), leave no GOMP_SPINCOUNT behind for child processes or pyhelayers' libgomp, refuse once libgomp
    is loaded, and leave a user's own GOMP_SPINCOUNT alone."""
    if ckks.available_threads() < 2:
        pytest.skip("this machine has one core: no idle kernel thread")
    short, _, took, again, variable = _idle_spin(True, {})
    assert (took, again, variable) == ("True", "False", "None")
    _, default, took, _, variable = _idle_spin(False, {})
    assert (took, variable) == ("None", "None")
    _, users, took, again, variable = _idle_spin(True, {"GOMP_SPINCOUNT": "300000"})
    assert (took, again, variable) == ("False", "False", "300000")
    assert short * 4 < default and short * 4 < users, (short, default, users)
