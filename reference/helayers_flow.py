"""The paper's HElayers flow end to end: compile, keys, encrypt model and data, predict, decrypt.

Steps (pyhelayers 1.5.5): ``NeuralNetPlain.init_from_files(PlainModelHyperParams(), [model.json, model.h5])``;
``HeRunRequirements`` (context options, integer part 7 bits, fractional part 30 bits,
``optimize_for_batch_size``); ``HeModel.compile`` -> profile and its optimal batch size;
``HeModel.create_context``; ``NeuralNet.encode_encrypt`` (or ``encode`` when the server owns the weights);
``create_model_io_encoder`` and ``ModelIoEncoder.encode_encrypt`` for the data; context, model and data
saved to buffers and loaded by a server whose context has no secret key; ``predict``; predictions saved,
loaded and decrypted by the client. Client and server (``reference.parties``) share only bytes. A caller that
keeps finished batches (``ckkslab compare`` resuming) names the batches to skip and receives each batch as
it is decrypted, with its share of the stage times and sizes (``on_batch``).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ckks.progress import Progress
from reference import load_pyhelayers
from reference.errors import HelayersFlowError, HelayersInputError, HelayersModelError, HelayersUnavailable
from reference.parties import (
    HelayersClient,
    HelayersServer,
    check_input,
    compile_profile,
    input_width,
    load_plain_model,
)
from reference.profile import (
    count_ciphertexts,
    describe,
    profile_from_bytes,
    profile_to_bytes,
    resolve_backends,
    run_requirements,
    weight_tile_counts,
)
from reference.runtime import PeakRss, openmp_threads

__all__ = ["HelayersInputError", "HelayersModelError", "HelayersResult", "HelayersUnavailable",
           "HelayersFlowError", "run_helayers"]

STAGES = ("keygen", "encrypt_model", "encrypt_data", "predict", "decrypt")
#: ``on_batch(batch index, outputs (records, outputs), record ids (records,), costs)``: the shape of
#: ``nn.streaming.BatchSink`` (named again here: reference does not import nn)
BatchSink = Callable[[int, np.ndarray, np.ndarray, dict[str, dict[str, float]]], None]


@dataclass
class HelayersResult:
    """Decrypted predictions of the HElayers flow and what it cost.

    ``timings_s``: wall seconds per stage (keygen = context creation), summed over batches.
    ``cpu_timings_s``: process CPU seconds of the same stages (all threads); with one thread on a busy
    machine it is the steadier figure. ``extra_timings_s``: wall seconds of ``compile`` (HElayers'
    optimizer) and ``serialize`` (every save/load of bytes).
    ``sizes_bytes``: context (as sent, no secret key), model, data and predictions (summed over batches);
    with plain weights, model is the server's encoded model (it stays there) and io_encoder what it sends.
    ``peak_rss_bytes``: peak resident memory of the whole flow (client and server in this one process).
    With batches skipped, ``predictions`` holds the computed batches only, in batch order ((0, 0) when every
    batch is skipped), and the stage totals cover them (keygen and encrypt_model: made all the same).
    """

    predictions: np.ndarray
    timings_s: dict[str, float]
    sizes_bytes: dict[str, int]
    params: dict[str, Any]
    peak_rss_bytes: int
    extra_timings_s: dict[str, float] = field(default_factory=dict)
    cpu_timings_s: dict[str, float] = field(default_factory=dict)


class _Clock:
    """Sums wall time and process CPU time (all threads) per named stage."""

    def __init__(self, names: Sequence[str]) -> None:
        self.totals = dict.fromkeys(names, 0.0)
        self.cpu_totals = dict.fromkeys(names, 0.0)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        start, cpu_start = time.perf_counter(), time.process_time()
        try:
            yield
        finally:
            self.totals[name] += time.perf_counter() - start
            self.cpu_totals[name] += time.process_time() - cpu_start

    def snapshot(self) -> tuple[dict[str, float], dict[str, float]]:
        """The wall and CPU totals now, for ``since``."""
        return dict(self.totals), dict(self.cpu_totals)

    def since(self, snapshot: tuple[dict[str, float], dict[str, float]]) -> dict[str, dict[str, float]]:
        """Wall (``timings_s``) and CPU (``cpu_timings_s``) seconds per stage run since ``snapshot``."""
        wall, cpu = snapshot
        return {"timings_s": {k: v - wall[k] for k, v in self.totals.items() if v != wall[k]},
                "cpu_timings_s": {k: v - cpu[k] for k, v in self.cpu_totals.items() if v != cpu[k]}}


def _model_files(model_dir: str | os.PathLike[str]) -> tuple[str, str]:
    """Paths of model.json and model.h5 in ``model_dir``.

    Raises:
        FileNotFoundError: the directory or one of the two files is missing.
    """
    paths = (os.path.join(model_dir, "model.json"), os.path.join(model_dir, "model.h5"))
    for path in paths:
        if not os.path.isfile(path):
            raise FileNotFoundError(f"HElayers flow needs {path} (model.json + model.h5 in {model_dir})")
    return paths


def run_helayers(model_dir: str | os.PathLike[str], x: np.ndarray, batch_size: int = 4096,
                 backend: str | Sequence[str] = "SEAL", encrypt_weights: bool = True, threads: int = 1,
                 quiet: bool = False, integer_bits: int = 7, fractional_bits: int = 30,
                 skip: Collection[int] = (), on_batch: BatchSink | None = None) -> HelayersResult:
    """Run the paper's HElayers flow on ``x`` (n rows, n a multiple of ``batch_size``), batch by batch.

    Keys and model are made once; each batch of ``batch_size`` rows is encrypted, sent, predicted and
    decrypted on its own (HElayers may split it further into batches of its optimal size, recorded in
    ``params["helayers_batch_size"]``). ``encrypt_weights=True`` is the paper's mode (the client owns and
    encrypts the model); False lets the server own the model and encode its weights in plaintext. ``threads``
    limits HElayers' OpenMP threads for the run. ``backend``: see ``reference.profile.resolve_backends``
    ("paper" asks for HEaaN then SEAL, as the paper; this pip build has no HEaaN, so SEAL runs).
    HElayers does not report values that outgrow its integer-part headroom: on the tiny test model,
    inputs scaled by 1000 (hidden values near 1e6) decrypt to garbage without an error. Compare the
    predictions with a plaintext forward pass, as ``validation`` does.
    ``skip``: indices of batches not to compute (the caller has their outputs); compilation, keys and model
    are made all the same. ``on_batch`` receives each computed batch as it is decrypted, with its share of
    ``timings_s``, ``cpu_timings_s`` (encrypt_data, predict, decrypt) and ``sizes_bytes`` (data, predictions).

    Raises:
        HelayersUnavailable: pyhelayers or every requested backend is missing.
        FileNotFoundError: model.json or model.h5 is missing from ``model_dir``.
        HelayersModelError: HElayers cannot parse or compile the model (the message names the file).
        HelayersInputError: bad ``x``, ``batch_size``, ``threads`` or backend name.
        HelayersFlowError: a secret key would reach the server.
    """
    h = load_pyhelayers()
    model_json, model_h5 = _model_files(model_dir)
    if not isinstance(encrypt_weights, (bool, np.bool_)):
        raise HelayersInputError(f"encrypt_weights must be True or False, got {encrypt_weights!r}")
    context_names, not_in_build = resolve_backends(h, backend)
    clock = _Clock(STAGES)
    extra = _Clock(("compile", "serialize"))
    sizes = {"context": 0, "model": 0, "data": 0, "predictions": 0}
    with PeakRss() as peak, openmp_threads(h, threads) as omp_threads:
        plain = load_plain_model(h, model_json, model_h5)
        data = check_input(x, batch_size, input_width(plain))
        requirements = run_requirements(h, context_names, batch_size, bool(encrypt_weights), integer_bits,
                                        fractional_bits)
        with extra.stage("compile"):
            profile = compile_profile(h, plain, requirements, model_json)
        if encrypt_weights:
            client, server, model_text = _setup_encrypted_weights(h, plain, profile, clock, extra, sizes)
        else:
            client, server, model_text = _setup_plain_weights(h, plain, profile, clock, extra, sizes)
        predictions, data_ciphertexts, output_ciphertexts = _run_batches(
            h, client, server, data, batch_size, clock, sizes, quiet, skip, on_batch)
        params = describe(h, profile, client.context)
    params.update({
        "backend_requested": context_names + not_in_build,
        "backend_not_in_build": not_in_build,
        "encrypt_weights": bool(encrypt_weights),
        "model_mode": "encrypted weights (client owns the model)" if encrypt_weights
        else "plain weights (server owns the model)",
        "integer_part_bits_requested": integer_bits,
        "fractional_part_bits_requested": fractional_bits,
        "threads": omp_threads,
        "threads_control": "OpenMP omp_set_num_threads on pyhelayers' bundled libgomp",
        "batch_size": int(batch_size),
        "batches": data.shape[0] // batch_size,
        "model_weight_tiles": weight_tile_counts(model_text),
        "ciphertexts_data": data_ciphertexts,
        "ciphertexts_predictions": output_ciphertexts,
        "peak_rss_scope": f"{peak.scope} (client and server in one process)",
    })
    return HelayersResult(predictions=predictions, timings_s=clock.totals, sizes_bytes=sizes, params=params,
                          peak_rss_bytes=peak.peak_bytes, extra_timings_s=extra.totals,
                          cpu_timings_s=clock.cpu_totals)


def _setup_encrypted_weights(h: Any, plain: Any, profile: Any, clock: _Clock, extra: _Clock,
                             sizes: dict[str, int]) -> tuple[HelayersClient, HelayersServer, str]:
    """Paper's mode: the client makes keys, encrypts the model; the server loads context and model."""
    with clock.stage("keygen"):
        client = HelayersClient(h, profile)
    with extra.stage("serialize"):
        context_bytes = client.context_bytes()
    with clock.stage("encrypt_model"):
        model_bytes = client.encrypt_model(plain)
    with extra.stage("serialize"):
        server = HelayersServer(h, context_bytes)
        server.load_model(model_bytes)
    sizes["context"], sizes["model"] = len(context_bytes), len(model_bytes)
    return client, server, server.model_description()


def _setup_plain_weights(h: Any, plain: Any, profile: Any, clock: _Clock, extra: _Clock,
                         sizes: dict[str, int]) -> tuple[HelayersClient, HelayersServer, str]:
    """Server owns the model: it compiled the profile and sends it; the client makes keys; the server
    encodes its weights in plaintext under the client's context and sends back the model IO encoder."""
    with extra.stage("serialize"):
        profile_bytes = profile_to_bytes(profile)
        client_profile = profile_from_bytes(h, profile_bytes)
    with clock.stage("keygen"):
        client = HelayersClient(h, client_profile)
    with extra.stage("serialize"):
        context_bytes = client.context_bytes()
        server = HelayersServer(h, context_bytes)
    with clock.stage("encrypt_model"):
        io_encoder_bytes = server.encode_model(plain, profile)
    with extra.stage("serialize"):
        client.receive_io_encoder(io_encoder_bytes)
    sizes["context"], sizes["model"] = len(context_bytes), server.model_size()
    sizes["io_encoder"] = len(io_encoder_bytes)
    return client, server, server.model_description()


def _run_batches(h: Any, client: HelayersClient, server: HelayersServer, data: np.ndarray, batch_size: int,
                 clock: _Clock, sizes: dict[str, int], quiet: bool, skip: Collection[int],
                 on_batch: BatchSink | None) -> tuple[np.ndarray, int | None, int | None]:
    """Encrypt, predict and decrypt each batch not in ``skip``; returns their predictions and the ciphertext
    counts (in, out) of all the batches (None when every batch is skipped).

    Raises:
        HelayersFlowError: HElayers returns a number of prediction rows different from the batch's.
    """
    outputs: list[np.ndarray] = []
    per_batch: tuple[int, int] | None = None  # ciphertexts in and out of one batch: all have the same shape
    batches = data.shape[0] // batch_size
    todo = [index for index in range(batches) if index not in set(skip)]
    with Progress("HElayers batches", batches, enabled=False if quiet else None) as progress:
        progress.advance(batches - len(todo))
        for index in todo:
            start = index * batch_size
            before = clock.snapshot()
            with clock.stage("encrypt_data"):
                data_bytes = client.encrypt_data(data[start:start + batch_size])
            with clock.stage("predict"):
                prediction_bytes = server.predict(data_bytes)
            with clock.stage("decrypt"):
                prediction = client.decrypt_predictions(prediction_bytes)
            if prediction.ndim == 1:
                prediction = prediction[:, None]
            if prediction.shape[0] != batch_size:
                raise HelayersFlowError(f"HElayers returned {prediction.shape[0]} prediction rows for a "
                                        f"batch of {batch_size}")
            costs = clock.since(before)
            costs["sizes_bytes"] = {"data": len(data_bytes), "predictions": len(prediction_bytes)}
            if per_batch is None:  # counted once, outside the timed stages
                per_batch = (count_ciphertexts(h.load_encrypted_data(server.context, data_bytes)),
                             count_ciphertexts(h.load_encrypted_data(server.context, prediction_bytes)))
            sizes["data"] += len(data_bytes)
            sizes["predictions"] += len(prediction_bytes)
            outputs.append(prediction)
            if on_batch is not None:
                on_batch(index, prediction, start + np.arange(batch_size), costs)
            progress.advance()
    if per_batch is None:
        return np.zeros((0, 0)), None, None
    return np.concatenate(outputs, axis=0), batches * per_batch[0], batches * per_batch[1]
