"""ckks: the CKKS approximate homomorphic encryption scheme, from scratch, in Python + Numba.

Layers, each importing only the ones below it (tests/test_import_layers.py checks this):

    scheme/   embedding, encoder, evaluator (+ dot_products), serialization (wire, bundle)   CKKS
    rlwe/     ciphertext, keys, keyswitch, encryptor                           scheme-neutral RLWE
    params.py literal -> validated immutable parameters                        (primes from ring/primes)
    ring/     primes, modarith, ntt, rns, basis_conversion, automorphism, sampling   nothing of CKKS
    errors.py, instrument.py, progress.py, threads.py, allocator.py, memory.py shared by every layer
    kernel_cache.py  where Numba caches the kernels: a directory per version of these sources

warmup.py (beside this file, it uses every layer): ``compile_kernels()``, Numba's compilation done before
anything is timed.

This file is the public API: ``import ckks; ckks.Encoder(...)``. See README.md for a runnable example.
"""

from .kernel_cache import cached_by_sources

# Every kernel is decorated while these modules are imported: inside this block, so that Numba caches them by
# the digest of all of ckks's sources, not by each kernel's own file only (see kernel_cache).
with cached_by_sources():
    from .errors import (
        CkksError,
        LevelMismatchError,
        MissingKeyError,
        OutOfLevelsError,
        ParameterError,
        ScaleMismatchError,
        SerializationError,
        ValueRangeError,
    )
    from .params import Parameters
    from .rlwe.ciphertext import Ciphertext, Plaintext
    from .rlwe.encryptor import Decryptor, Encryptor
    from .rlwe.keys import GaloisKeys, KeyGenerator, PublicKey, RelinKey, SecretKey, SwitchingKey, made_from
    from .scheme.bundle import ServerBundle
    from .scheme.encoder import Encoder
    from .scheme.evaluator import Evaluator
    from .scheme.serialization import from_bytes, load, save, to_bytes
    from .allocator import keep_freed_memory
    from .threads import available_threads, get_threads, map_in_threads, set_threads
    from .warmup import KernelCompilation, compile_kernels

__all__ = [
    "Ciphertext", "CkksError", "Decryptor", "Encoder", "Encryptor", "Evaluator", "GaloisKeys",
    "KernelCompilation", "KeyGenerator", "LevelMismatchError", "MissingKeyError", "OutOfLevelsError",
    "ParameterError", "Parameters", "Plaintext", "PublicKey", "RelinKey", "ScaleMismatchError", "SecretKey",
    "SerializationError", "ServerBundle", "SwitchingKey", "ValueRangeError", "available_threads",
    "compile_kernels", "from_bytes", "get_threads", "keep_freed_memory", "load", "made_from",
    "map_in_threads", "save", "set_threads", "to_bytes",
]
