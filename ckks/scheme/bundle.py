"""What the server receives: the parameters, the public key and the evaluation keys, never the secret key."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import SerializationError
from ..params import Parameters
from ..rlwe.ciphertext import Ciphertext, Plaintext
from ..rlwe.keys import GaloisKeys, PublicKey, RelinKey, SecretKey


@dataclass(frozen=True)
class ServerBundle:
    """What the server receives: the parameters and the public and evaluation keys, never the secret key.

    Raises:
        SerializationError: if a field is a SecretKey, of the wrong type, or made with other parameters.
    """

    params: Parameters
    public_key: PublicKey | None = None
    relin_key: RelinKey | None = None
    galois_keys: GaloisKeys | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.params, Parameters):
            raise SerializationError(f"ServerBundle.params is a {type(self.params).__name__}, not Parameters")
        fields = (("public_key", self.public_key, PublicKey), ("relin_key", self.relin_key, RelinKey),
                  ("galois_keys", self.galois_keys, GaloisKeys))
        for name, value, kind in fields:
            if isinstance(value, SecretKey):
                raise SerializationError(f"ServerBundle.{name} is a SecretKey: the secret key stays with the "
                                         "client and can never be part of what the server receives")
            if value is not None and not isinstance(value, kind):
                raise SerializationError(f"ServerBundle.{name} must be {kind.__name__} or None, "
                                         f"got {type(value).__name__}")
            for fp in fingerprints_of(value):
                if fp != self.params.fingerprint:
                    raise SerializationError(f"ServerBundle.{name} was made with other parameters "
                                             f"({fp}, bundle parameters {self.params.fingerprint})")


def fingerprints_of(obj: object) -> list[str]:
    """The parameter fingerprints a key or text carries (several for Galois keys, none for other objects)."""
    if isinstance(obj, RelinKey):
        return [obj.key.fingerprint]
    if isinstance(obj, GaloisKeys):
        return [k.fingerprint for k in obj.keys.values()]
    return [obj.fingerprint] if isinstance(obj, (PublicKey, SecretKey, Plaintext, Ciphertext)) else []
