"""ckks: the CKKS approximate homomorphic encryption scheme, from scratch, in Python + Numba.

Layers (imports go one way, down): params -> ring (primes, modarith, ntt, rns, basis_conversion, automorphism,
sampling) -> rlwe (ciphertext, keys, keyswitch, encryptor) -> scheme (embedding, encoder, evaluator,
serialization: wire, bundle). See README.md for a runnable example.
"""

from .bundle import ServerBundle
from .ciphertext import Ciphertext, Plaintext
from .encoder import Encoder
from .encryptor import Decryptor, Encryptor
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
from .evaluator import Evaluator
from .keys import GaloisKeys, KeyGenerator, PublicKey, RelinKey, SecretKey, SwitchingKey, made_from
from .params import Parameters
from .serialization import from_bytes, load, save, to_bytes

__all__ = [
    "Ciphertext", "CkksError", "Decryptor", "Encoder", "Encryptor", "Evaluator", "GaloisKeys", "KeyGenerator",
    "LevelMismatchError", "MissingKeyError", "OutOfLevelsError", "ParameterError", "Parameters", "Plaintext",
    "PublicKey", "RelinKey", "ScaleMismatchError", "SecretKey", "SerializationError", "ServerBundle",
    "SwitchingKey", "ValueRangeError", "from_bytes", "load", "made_from", "save", "to_bytes",
]
