"""Compile (or load from Numba's on-disk cache) every kernel of the engine once, before anything is timed.

Numba compiles a kernel the first time it is called with a new type signature (``@njit(cache=True)`` then
saves it in ``kernels-<digest of the sources>`` under ``ckks/__pycache__`` or ``NUMBA_CACHE_DIR``:
``ckks.kernel_cache``). On a fresh clone that first call costs
seconds and would land inside whatever stage happens to call the kernel first (keygen, predict, decrypt),
so a first run's stage times and ratios would measure the compiler. ``compile_kernels()`` pays that cost
up front: it runs every operation of the engine once on insecure toy parameters (N = 16), which calls
every kernel with the argument types it gets at run time: the types depend on the calling code (uint64
limbs, C-contiguous arrays, read-only NTT tables), not on N or on the number of primes. A later call
with real parameters then finds every signature compiled, in this process.

Commands whose stages are timed call it first and report its time as a row of its own.
``tests/ckks/test_warmup.py`` checks that it reaches every kernel, and ``tests/validation/test_first_run.py``
that a first ``ckkslab demo`` on an empty cache times its stages like a second one.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TextIO

import numpy as np

from .instrument import numba_activity
from .params import Parameters
from .progress import Progress
from .rlwe.encryptor import Decryptor, Encryptor
from .rlwe.keys import KeyGenerator
from .scheme.encoder import Encoder
from .scheme.evaluator import Evaluator

# Insecure on purpose (security=None): only the argument types matter here, and N = 16 makes every call
# take microseconds. Three chain primes and two special primes: key switching has two digits (of two primes
# and of one), like the planner's chains (digits of several primes, converted between bases).
TOY = {"ring_degree": 16, "moduli_bits": (40, 30, 30), "special_moduli_bits": (40, 40), "scale_bits": 30,
       "security": None}
LABEL = "compiling kernels, once"
PHASES = 5  # the calls of advance() in _toy_pass


def target_cpu() -> str:
    """The processor Numba compiles the kernels for: "model (LLVM's name for it, widest integer SIMD)",
    e.g. "AMD EPYC (znver3, AVX2)"; the model is /proc/cpuinfo's, where there is one.

    Every speed figure depends on it: with AVX-512 the Shoup loops (``ring.modarith``) run 8 lanes of 64-bit
    products; with AVX2 only 4, and AVX2 has no 64-bit multiply: each is made of three 32-bit ones.
    """
    import llvmlite.binding as llvm

    model = ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            model = next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")),
                         "")
    except OSError:
        pass
    features = llvm.get_host_cpu_features()
    vector = ("AVX-512" if features.get("avx512f") and features.get("avx512dq") else
              "AVX2" if features.get("avx2") else "no AVX2")
    return f"{model or 'CPU'} ({llvm.get_host_cpu_name()}, {vector})"


@dataclass(frozen=True)
class KernelCompilation:
    """What ``compile_kernels`` cost.

    Attributes:
        seconds: wall seconds of the whole warm-up (what a user waits for).
        numba_seconds: of which inside Numba's dispatcher, compiling or loading from the on-disk cache.
        compiled: type signatures compiled (callees included); 0 when every kernel came from the cache or
            was already loaded in this process.
        first_calls: kernel signatures made ready in this process (compiled or loaded from the cache).
        cpu: the processor they are compiled for (``target_cpu()``).
    """

    seconds: float
    numba_seconds: float
    compiled: int
    first_calls: int
    cpu: str = ""

    def describe(self) -> str:
        """One line for reports: the time and where the kernels came from."""
        if self.compiled:
            source = f"{self.compiled} signatures compiled (Numba cache was empty or stale)"
        elif self.first_calls:
            source = f"{self.first_calls} kernels loaded from Numba's on-disk cache"
        else:
            source = "kernels already loaded in this process"
        return f"{self.seconds:.2f} s: {source}" + (f", for {self.cpu}" if self.cpu else "")

    def as_json(self) -> dict[str, float | int | str]:
        """The fields and ``describe()`` as ``summary``, for report.json and the benchmarks' JSON."""
        return {**asdict(self), "summary": self.describe()}


def _toy_pass(advance: Callable[[], None]) -> None:
    """Every public operation of the engine once, on ``TOY`` parameters; ``advance()`` after each phase.

    Keys (secret, public, relinearization, rotation and conjugation), encode, public- and secret-key
    encryption, the evaluator's arithmetic, key switching (relinearize, rotate, conjugate), rescale (alone
    and fused with relinearization), the dot products with plaintext and ciphertext weights, decryption
    (plain and flooded) and decode: every kernel of ckks.ring and ckks.rlwe is reached through the code
    that calls it at run time.
    """
    params = Parameters(**TOY)
    keygen = KeyGenerator(params)
    ev = Evaluator(params, relin_key=keygen.relin_key(),
                   galois_keys=keygen.galois_keys(steps=[1], conjugate=True))
    advance()
    encoder = Encoder(params)
    plain = encoder.encode(np.linspace(-0.5, 0.5, params.slots))
    ct = Encryptor(params, keygen.public_key()).encrypt(plain)
    ct_sk = Encryptor(params, keygen.secret_key).encrypt(plain)
    advance()
    ev.sub(ev.add(ct, plain), ev.negate(ct_sk))
    ev.sub(ct, plain)
    ev.add_scalar(ct, 0.25)
    ev.multiply_integer(ev.multiply_scalar(ct, 0.5), 3)
    ev.multiply_plain(ct, plain)
    ev.square(ct)
    advance()
    product = ev.rescale(ev.relinearize(ev.multiply(ct, ct_sk)))
    ev.relinearize_and_rescale(ev.square(ct))
    ev.conjugate(ev.rotate(ct, 1))
    ev.drop_level(ct, 0)
    ev.dot([ct, ct_sk], [ev.prepare(plain), ev.prepare(plain)])
    ev.relinearize(ev.dot([ct, ct_sk], [ev.prepare(ct_sk), ev.prepare(ct)]))
    advance()
    decryptor = Decryptor(params, keygen.secret_key)
    encoder.decode(decryptor.decrypt(product))
    encoder.decode(decryptor.decrypt(ct, flood_bits=2.0))
    advance()


def compile_kernels(quiet: bool = False, stream: TextIO | None = None) -> KernelCompilation:
    """Make every Numba kernel of the engine ready in this process; returns what that cost.

    Shows ``compiling kernels, once: done/total (seconds)`` on ``stream`` (default stderr) from the moment
    Numba actually compiles something, when ``stream`` is a terminal and ``quiet`` is false; silent when
    the kernels come from the on-disk cache. Calling it again in the same process costs milliseconds.
    """
    start = time.perf_counter()
    with Progress(LABEL, PHASES, enabled=False, stream=stream) as bar:
        show = not quiet and bar.stream.isatty()

        def on_first_call(_seconds: float) -> None:
            if show and activity.compiled and not bar.enabled:
                bar.enabled = True  # from the first real compilation on; a cache load stays silent
                bar.advance(0)

        with numba_activity(on_first_call) as activity:
            _toy_pass(bar.advance)
    return KernelCompilation(time.perf_counter() - start, activity.seconds, activity.compiled,
                             activity.first_calls, target_cpu())
