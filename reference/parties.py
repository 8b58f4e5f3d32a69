"""The two parties of the paper's HElayers flow; they exchange nothing but ``bytes`` (as files would).

Client: holds the secret key. Creates the context from an HE profile (key generation), encrypts the model
(encrypted-weights mode) and the data through the model IO encoder, decrypts predictions.
Server: receives a context without secret key, a model (encrypted by the client, or its own model encoded
in plaintext), encrypted data; predicts; returns encrypted predictions. Gilad-Bachrach et al., "CryptoNets"
(ICML 2016) is the setting: the server computes on data it cannot read.
"""

from __future__ import annotations

import numbers
from types import ModuleType
from typing import Any

import numpy as np

from reference.errors import HelayersFlowError, HelayersInputError, HelayersModelError
from reference.runtime import captured_native_output

_NO_IO_ENCODER = "the client has no model IO encoder yet: encrypt the model or receive one"


def load_plain_model(pyhelayers: ModuleType, model_json: str, model_h5: str) -> Any:
    """``NeuralNetPlain.init_from_files(PlainModelHyperParams(), [model.json, model.h5])``.

    Raises:
        HelayersModelError: HElayers cannot parse the architecture (names model.json) or the weights
            (names model.h5); the message quotes HElayers.
    """
    plain = pyhelayers.NeuralNetPlain()
    with captured_native_output():
        try:
            plain.init_from_files(pyhelayers.PlainModelHyperParams(), [model_json, model_h5])
            failure = None
        except RuntimeError as exc:
            failure = exc
    if failure is not None:
        message = str(failure)
        culprit = model_h5 if "HDF5" in message else model_json if "JSON" in message else (
            f"{model_json} / {model_h5}")
        raise HelayersModelError(f"HElayers cannot load the model {culprit}: {message}") from failure
    return plain


def input_width(plain: Any) -> int:
    """Number of input features the plain model expects (its input tensor is [batch, features])."""
    shape = [int(s) for s in plain.get_inputs_plain_tensor_metadata()[0].get_shape()]
    return shape[-1]


def compile_profile(pyhelayers: ModuleType, plain: Any, requirements: Any, model_name: str) -> Any:
    """``HeModel.compile(plain, requirements)``: the HE profile HElayers' optimizer picks.

    Raises:
        HelayersModelError: no feasible profile; the message carries HElayers' printed reasons.
    """
    with captured_native_output() as printed:
        profile = pyhelayers.HeModel.compile(plain, requirements)
    if profile is None:
        lines = (line.strip() for line in printed[0].splitlines())
        reasons = " | ".join(line for line in lines if line and "*" not in line)
        raise HelayersModelError(f"HElayers finds no feasible HE profile for {model_name}: {reasons[:1500]}")
    return profile


class HelayersClient:
    """The data owner: the only holder of the secret key."""

    def __init__(self, pyhelayers: ModuleType, profile: Any) -> None:
        """Key generation: ``HeModel.create_context(profile)`` (secret, public, relin and rotation keys)."""
        self._h = pyhelayers
        self._profile = profile
        self._context = pyhelayers.HeModel.create_context(profile)
        self._io_encoder: Any = None

    @property
    def context(self) -> Any:
        """The client's context (with secret key); for inspection, never sent anywhere."""
        return self._context

    def context_bytes(self) -> bytes:
        """The context as the server gets it: ``HeContext.save_to_buffer()`` keeps the secret key out.

        Raises:
            HelayersFlowError: the saved buffer would give its reader a secret key.
        """
        data = self._context.save_to_buffer()
        if self._h.load_he_context(data).has_secret_key():
            raise HelayersFlowError("HElayers put the secret key into the context buffer; not sending it")
        return data

    def encrypt_model(self, plain: Any) -> bytes:
        """Encrypted weights: ``NeuralNet.encode_encrypt(plain, profile)``, saved; keeps the IO encoder."""
        model = self._h.NeuralNet(self._context)
        model.encode_encrypt(plain, self._profile)
        self._io_encoder = model.create_model_io_encoder()
        return model.save_to_buffer()

    def receive_io_encoder(self, data: bytes) -> None:
        """Plain-weights mode: take the server's model IO encoder (packing only, no weights in it)."""
        self._io_encoder = self._h.load_io_encoder(self._context, data)

    def encrypt_data(self, x: np.ndarray) -> bytes:
        """``ModelIoEncoder.encode_encrypt(EncryptedData, [x])`` packs and encrypts a batch, saved.

        Raises:
            HelayersFlowError: no model IO encoder yet (encrypt_model / receive_io_encoder first).
        """
        if self._io_encoder is None:
            raise HelayersFlowError(_NO_IO_ENCODER)
        encrypted = self._h.EncryptedData(self._context)
        self._io_encoder.encode_encrypt(encrypted, [x])
        return encrypted.save_to_buffer()

    def decrypt_predictions(self, data: bytes) -> np.ndarray:
        """Load encrypted predictions and ``decrypt_decode_output`` them: float64 (rows, outputs)."""
        if self._io_encoder is None:
            raise HelayersFlowError(_NO_IO_ENCODER)
        encrypted = self._h.load_encrypted_data(self._context, data)
        return np.asarray(self._io_encoder.decrypt_decode_output(encrypted), dtype=np.float64)


class HelayersServer:
    """The party that computes: it never holds a secret key."""

    def __init__(self, pyhelayers: ModuleType, context_bytes: bytes) -> None:
        """Load the client's context (``load_he_context``).

        Raises:
            HelayersFlowError: the context received carries a secret key.
        """
        self._h = pyhelayers
        self._context = pyhelayers.load_he_context(context_bytes)
        if self._context.has_secret_key():
            raise HelayersFlowError("the context sent to the server contains a secret key")
        self._model: Any = None

    @property
    def context(self) -> Any:
        """The server's context (public and evaluation keys only)."""
        return self._context

    def load_model(self, data: bytes) -> None:
        """Encrypted-weights mode: ``load_he_model(context, buffer)``."""
        self._model = self._h.load_he_model(self._context, data)

    def encode_model(self, plain: Any, profile: Any) -> bytes:
        """Plain-weights mode: ``NeuralNet.encode(plain, profile)`` under the client's context.

        Returns the model IO encoder the client needs to pack inputs and read outputs.
        """
        model = self._h.NeuralNet(self._context)
        model.encode(plain, profile)
        self._model = model
        return model.create_model_io_encoder().save_to_buffer()

    def predict(self, data: bytes) -> bytes:
        """``HeModel.predict(out, load_encrypted_data(context, data))``, the output saved to bytes.

        Raises:
            HelayersFlowError: no model loaded yet.
        """
        if self._model is None:
            raise HelayersFlowError("the server has no model: load_model or encode_model first")
        inputs = self._h.load_encrypted_data(self._context, data)
        outputs = self._h.EncryptedData(self._context)
        self._model.predict(outputs, inputs)
        return outputs.save_to_buffer()

    def model_size(self) -> int:
        """Bytes of the server's model as ``save_to_buffer`` writes it (plain-weights mode: never sent)."""
        if self._model is None:
            raise HelayersFlowError("the server has no model: load_model or encode_model first")
        return len(self._model.save_to_buffer())

    def model_description(self) -> str:
        """HElayers' text description of the loaded model (layers, weight tile shapes)."""
        if self._model is None:
            raise HelayersFlowError("the server has no model: load_model or encode_model first")
        return self._model.to_string()


def check_input(x: Any, batch_size: int, width: int) -> np.ndarray:
    """``x`` as a C-contiguous float64 (n, width) array with n a positive multiple of ``batch_size``.

    Raises:
        HelayersInputError: wrong rank or width, non-finite values, or n not a multiple of batch_size.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) or batch_size < 1:
        raise HelayersInputError(f"batch_size must be a positive integer, got {batch_size!r}")
    batch_size = int(batch_size)
    try:
        arr = np.ascontiguousarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise HelayersInputError(f"x must be a numeric (n, {width}) array: {exc}") from exc
    if arr.ndim != 2 or arr.shape[1] != width:
        raise HelayersInputError(f"x must have shape (n, {width}) for this model, got {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[0] % batch_size:
        raise HelayersInputError(f"x has {arr.shape[0]} rows: it must be a positive multiple of "
                                 f"batch_size={batch_size}")
    if not np.all(np.isfinite(arr)):
        raise HelayersInputError("x contains NaN or infinite values")
    return arr
