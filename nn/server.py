"""The server's side of encrypted inference, as bytes in and bytes out.

A ``Server`` is made once from what the server receives (the serialized ``ckks.ServerBundle``, which cannot
hold a secret key, and the compiled model) and then turns each encrypted batch into encrypted predictions.
``ckkslab predict`` (``nn.workflow``), the in-memory flow of ``ckkslab compare`` (``nn.pipeline``) and the
Dask workers (``nn.dask_scheduler``) all run this one class, so they check the same things: data and an
encrypted model tagged with the keys of the bundle they are run with (``keys_id``).

The predictions carry the data's ``info`` (records, keys, batch index and first record id) plus the
output width, the content digest of the data (``nn.artifacts.ciphertexts_digest``: its ciphertexts' own
checksums, verified as they load, hashed with the rest of the file) and the SHA-256 of the model they were
computed from, so that a later run can tell a finished prediction of exactly this batch and model from a
stale one (resume).
"""

from __future__ import annotations

import hashlib

import ckks

from . import artifacts
from . import encrypted as enc
from .errors import WorkflowError


def keys_id(bundle_bytes: bytes) -> str:
    """The identity of a client's keys: SHA-256 of its context/bundle.ckks (public, like the bundle).

    The client writes it next to its ciphertexts; the server and the client check it, so that data, evaluation
    keys and secret key of different clients (same parameters, so no fingerprint differs) are not mixed into
    garbage that decrypts without an error.
    """
    return digest(bundle_bytes)


def digest(data: bytes) -> str:
    """The first 128 bits of SHA-256(data) in hex: how a prediction names the model it came from, and
    ``keys_id`` the keys."""
    return hashlib.sha256(data).hexdigest()[:32]


def load_bundle(data: bytes, what: str) -> ckks.ServerBundle:
    """A serialized server bundle (``what`` names it in errors).

    Raises:
        ckks.SerializationError: a corrupted or foreign buffer, or one holding a secret key.
        WorkflowError: another kind of ckks object.
    """
    bundle = ckks.from_bytes(data)
    if not isinstance(bundle, ckks.ServerBundle):
        raise WorkflowError(f"{what} is not a server bundle")
    return bundle


class Server:
    """The loaded bundle and model, an evaluator with the public evaluation keys and the prepared weights.

    ``bundle_name`` / ``model_name`` name the two inputs in error messages (file paths in the workflow).
    """

    def __init__(self, bundle_bytes: bytes, model_bytes: bytes, bundle_name: str = "the bundle",
                 model_name: str = "the model") -> None:
        """Load both, and check that an encrypted model was encrypted under this bundle's keys.

        Raises:
            ckks.SerializationError, WorkflowError: see ``load_bundle``.
            ArtifactError: a bad model file, or one made for other parameters.
            WorkflowError: encrypted weights of another client.
        """
        bundle = load_bundle(bundle_bytes, bundle_name)
        self.params = bundle.params
        self.keys = keys_id(bundle_bytes)
        self.bundle_name = bundle_name
        self.model = artifacts.model_from_bytes(model_bytes, self.params)
        self.model_digest = digest(model_bytes)
        if self.model.encrypted_weights and self.model.keys != self.keys:
            raise WorkflowError(f"{model_name} was encrypted under another key than the evaluation keys in "
                                f"{bundle_name}: encrypt the model with this client's keys")
        self.evaluator = ckks.Evaluator(self.params, relin_key=bundle.relin_key,
                                        galois_keys=bundle.galois_keys)
        self.prepared = enc.prepare_weights(self.model, self.evaluator)

    def predict_bytes(self, data: bytes, what: str, timer: enc.StageTimer | None = None) -> bytes:
        """Encrypted predictions of one serialized batch (``what`` names it in errors).

        Raises:
            ArtifactError: a truncated, corrupted or foreign batch, or one of other parameters.
            WorkflowError: a batch encrypted under other keys than the bundle's.
            ckks.ValueRangeError: a batch of another plan (number of ciphertexts).
        """
        inputs, info = artifacts.ciphertexts_with_info(data, self.params)  # every checksum verified
        if info.get("keys") != self.keys:
            raise WorkflowError(f"{what} was encrypted under another key than the evaluation keys in "
                                f"{self.bundle_name}: use the data and the bundle of the same client")
        outputs = enc.predict(self.model, inputs, self.evaluator, self.prepared, timer)
        info = {**info, "output_dim": self.model.output_dim,
                "data_digest": artifacts.ciphertexts_digest(data), "model_sha256": self.model_digest}
        return artifacts.ciphertexts_to_bytes(outputs, info)
