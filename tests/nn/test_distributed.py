"""The server's batches on dask.distributed (a LocalCluster of 2 worker processes on 127.0.0.1): the same
predictions as in-process, nothing of the secret key in what is sent to the workers, a worker killed
mid-batch retried by Dask with every record once in the merged output, and a corrupted batch file failing by
its named error while the other batches are written."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import dask
import numpy as np
import pytest
from distributed import Client, LocalCluster
from distributed.diagnostics.plugin import WorkerPlugin
from distributed.protocol import pickle as dask_pickle

import ckks
from ckks.threads import SHARED_CORES_SPIN_COUNT
from nn import artifacts, pipeline, workflow
from nn.dask_scheduler import WORKER_MALLOC_SETTING, dask_scheduler
from nn.distributed import SchedulerError, SchedulerOptions
from nn.encrypted import StageTimer
from nn.model import PlainNetwork

RECORDS, BATCH = 40, 8  # 5 batches


@pytest.fixture(scope="module")
def network(toy_network) -> PlainNetwork:
    return toy_network(4, 3, 21)


@pytest.fixture(scope="module")
def records() -> np.ndarray:
    return np.random.default_rng(22).uniform(-1, 1, (RECORDS, 4))


@pytest.fixture(scope="module")
def cluster():
    """Two worker processes, one thread each, everything listening on 127.0.0.1 only, started as the
    embedded cluster is (without Dask's MALLOC_TRIM_THRESHOLD_, see nn/dask_scheduler.py)."""
    with dask.config.set({WORKER_MALLOC_SETTING: None}), LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
            dashboard_address="127.0.0.1:0", silence_logs=logging.CRITICAL) as running:
        yield running


@pytest.fixture
def on_cluster(cluster) -> SchedulerOptions:
    return SchedulerOptions("dask", address=cluster.scheduler_address)


def workspace(path: Path, network: PlainNetwork, x: np.ndarray) -> Path:
    """Toy keys (N = 64, insecure by name), the encrypted model, and every batch encrypted."""
    workflow.keygen(path, network, x, batch_size=BATCH, frac_bits=20, security=None, ring_degree=64)
    workflow.encrypt_model(path, network)
    workflow.encrypt_batches(path, x, BATCH)
    return path


def prediction_bytes(path: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((path / "server" / "predictions").glob("batch_*.ckks"))}


def secret_pieces(secret: ckks.SecretKey, every: int = 256) -> list[bytes]:
    """32-byte pieces of the key's NTT limbs, one per ``every`` bytes, and of its coefficients (as
    tests/nn/test_workflow.py scans; any serialized copy of the key would hold all of them)."""
    pieces = [row.tobytes()[i : i + 32] for row in secret.ntt for i in range(0, row.nbytes, every)]
    coefficients = secret.coefficients.tobytes()
    return pieces + [coefficients[i : i + 32] for i in range(0, len(coefficients), every)]


def test_dask_predictions_are_the_local_ones(tmp_path, network, records):
    """Same ciphertexts, model and evaluation keys: evaluation is deterministic, so the prediction files are
    byte for byte those of the in-process scheduler (on an embedded LocalCluster of 2 workers); the steps the
    workers timed reach the caller's timer."""
    w = workspace(tmp_path, network, records)
    here, there = StageTimer(), StageTimer()
    local = workflow.predict_batches(w, timer=here)
    expected = prediction_bytes(w)
    for path in (w / "server" / "predictions").iterdir():
        path.unlink()
    report = workflow.predict_batches(w, SchedulerOptions("dask", workers=2), timer=there)
    # the workers' step times come back with each batch, as the local server's do
    assert set(there.seconds) == set(here.seconds) and all(v > 0 for v in there.seconds.values())
    assert "2 worker thread(s), kernels on 1 thread(s) per worker, embedded LocalCluster at tcp://127.0.0.1:" in report.scheduler
    assert sorted(report.computed) == sorted(local.computed) == list(range(5)) and not report.failed
    assert prediction_bytes(w) == expected
    ids, scores, _ = workflow.decrypt_batches(w, network)
    np.testing.assert_array_equal(ids, np.arange(RECORDS))
    np.testing.assert_array_equal(network.decide(scores)[1], network.decide(network.forward(records))[1])


def spy_on_client(monkeypatch) -> list[object]:
    """Record the arguments of every Client.submit and Client.register_plugin (then do the real call)."""
    sent: list[object] = []
    for name in ("submit", "register_plugin"):
        real = getattr(Client, name)

        def spy(self, *args, _real=real, **kwargs):
            sent.append((args, kwargs))
            return _real(self, *args, **kwargs)

        monkeypatch.setattr(Client, name, spy)
    return sent


def test_what_the_workers_receive_holds_no_secret_key(tmp_path, network, records, on_cluster, monkeypatch):
    """Every payload handed to Dask, pickled as Dask sends it, is scanned for pieces of the secret key; the
    payloads do hold the bundle and every batch (so the spy saw what travels)."""
    w = workspace(tmp_path, network, records)
    sent = spy_on_client(monkeypatch)
    assert not workflow.predict_batches(w, on_cluster).failed
    blobs = [dask_pickle.dumps(payload) for payload in sent]
    secret = ckks.load(w / "client" / "secret.key", params=workflow.load_plan(w).params)
    pieces = secret_pieces(secret)
    assert not any(piece in blob for piece in pieces for blob in blobs)
    everything = b"".join(blobs)
    assert (w / "context" / "bundle.ckks").read_bytes() in everything
    assert all(p.read_bytes() in everything for p in (w / "server" / "data").iterdir())


def test_compare_pipeline_sends_no_secret_key_to_workers(network, records, on_cluster, monkeypatch):
    """The in-memory flow of ``ckkslab compare`` (128-bit parameters) on the cluster: its key generator's
    secret key is captured, and no piece of it is in any payload; decisions equal the local run's."""
    made: list[ckks.KeyGenerator] = []
    real = pipeline.ckks.KeyGenerator

    def keeping(*args, **kwargs):
        made.append(real(*args, **kwargs))
        return made[-1]

    monkeypatch.setattr(pipeline.ckks, "KeyGenerator", keeping)
    local = pipeline.run_ckkslab(network, records[:16], batch_size=BATCH, quiet=True)
    sent = spy_on_client(monkeypatch)
    result = pipeline.run_ckkslab(network, records[:16], batch_size=BATCH, quiet=True, scheduler=on_cluster)
    blobs = [dask_pickle.dumps(payload) for payload in sent]
    pieces = secret_pieces(made[-1].secret_key, every=4096)  # N = 16384: 200 pieces over the limbs
    assert len(sent) >= 3 and not any(piece in blob for piece in pieces for blob in blobs)
    np.testing.assert_array_equal(result.record_ids, np.arange(16))
    np.testing.assert_array_equal(network.decide(result.predictions)[1], network.decide(local.predictions)[1])
    assert result.extra["scheduler"].startswith("dask: 2 worker thread(s)")


def vm_hwm_bytes() -> int:
    """This process's peak resident size (VmHWM), read from /proc: a measure independent of getrusage."""
    with open("/proc/self/status", encoding="ascii") as status:
        return next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmHWM:"))


def test_each_batch_comes_back_with_what_it_cost_where_it_ran(network, records, cluster, on_cluster):
    """Locally and on the 2 workers: every batch's compute seconds and steps, measured by the process that
    ran it, and each process's peak RSS, which that process's /proc, read independently, bounds."""
    local = pipeline.run_ckkslab(network, records[:16], batch_size=BATCH, quiet=True)
    result = pipeline.run_ckkslab(network, records[:16], batch_size=BATCH, quiet=True, scheduler=on_cluster)
    here = local.extra["servers"]
    assert list(here) == ["this process"] and here["this process"]["batches"] == 2
    assert 0 < here["this process"]["compute_s"] <= local.timings_s["predict"]  # the wait holds the compute
    # at least the server's model, at most this process's peak now (VmHWM, read here independently)
    assert local.sizes_bytes["model"] < here["this process"]["peak_rss_bytes"] <= vm_hwm_bytes()
    servers = result.extra["servers"]
    assert sum(entry["batches"] for entry in servers.values()) == 2
    assert result.extra["server_s"]["compute"] == pytest.approx(sum(e["compute_s"] for e in servers.values()))
    assert set(result.stage_seconds) == set(local.stage_seconds) and all(result.stage_seconds.values())
    with Client(cluster.scheduler_address) as client:
        peaks = client.run(vm_hwm_bytes)
    assert set(servers) <= set(peaks)  # worker addresses
    for where, entry in servers.items():
        assert entry["compute_s"] > 0 and entry["cpu_s"] > 0 and 0 < entry["peak_rss_bytes"] <= peaks[where]
    assert result.params["threads"] == "see the scheduler" and local.params["threads"] == ckks.get_threads()


def test_a_worker_killed_mid_batch_is_retried_and_no_record_is_lost_or_doubled(tmp_path, network, records,
                                                                                cluster, on_cluster):
    """A worker plugin kills its process (os._exit) as the first predict task starts executing there; Dask
    gives the batch to another worker (allowed-failures): every batch written once, every record id once."""
    w = workspace(tmp_path, network, records)
    marker = tmp_path / "killed"

    class KillFirstBatch(WorkerPlugin):
        name = "ckkslab-test-kill-first-batch"

        def transition(self, key, start, finish, **kwargs):
            if finish == "executing" and str(key).startswith("ckkslab-predict-"):
                try:
                    os.close(os.open(marker, os.O_CREAT | os.O_EXCL))  # only the first one dies
                except FileExistsError:
                    return
                os._exit(1)

    with Client(cluster) as client:
        before = set(client.scheduler_info()["workers"])
        client.register_plugin(KillFirstBatch())
        try:
            report = workflow.predict_batches(w, on_cluster)
        finally:
            client.unregister_worker_plugin(KillFirstBatch.name)
        client.wait_for_workers(2, timeout=60)
        after = set(client.scheduler_info()["workers"])
    assert marker.exists() and len(before - after) == 1  # one worker process died and was replaced
    assert sorted(report.computed) == list(range(5)) and not report.failed
    ids, scores, path = workflow.decrypt_batches(w, network)
    np.testing.assert_array_equal(np.sort(ids), np.arange(RECORDS))
    table = np.loadtxt(path, delimiter=",", skiprows=1)
    assert sorted(table[:, 0].astype(int).tolist()) == list(range(RECORDS))
    assert np.max(np.abs(scores - network.forward(records))) < 2.0**-10


@pytest.mark.parametrize("where", ["local", "dask"])
def test_a_corrupted_batch_fails_by_name_while_the_others_finish(tmp_path, network, records, where, request):
    """A flipped byte inside batch 2's ciphertexts: ArtifactError (checksum) for batch 2 only; decrypt names
    it as missing; once repaired, a rerun predicts batch 2 alone (the others resume)."""
    options = request.getfixturevalue("on_cluster") if where == "dask" else SchedulerOptions()
    w = workspace(tmp_path, network, records)
    path = w / "server" / "data" / workflow.batch_file(2)
    good = path.read_bytes()
    bad = bytearray(good)
    bad[len(bad) // 2] ^= 1
    path.write_bytes(bytes(bad))
    report = workflow.predict_batches(w, options)
    assert sorted(report.computed) == [0, 1, 3, 4] and list(report.failed) == [2]
    assert isinstance(report.failed[2], artifacts.ArtifactError) and "checksum" in str(report.failed[2])
    with pytest.raises(workflow.WorkflowError, match=r"no predictions for batch\(es\) \[2\]"):
        workflow.decrypt_batches(w, network)
    path.write_bytes(good)
    again = workflow.predict_batches(w, options)
    assert again.computed == [2] and sorted(again.skipped) == [0, 1, 3, 4]
    ids, _, _ = workflow.decrypt_batches(w, network)
    np.testing.assert_array_equal(ids, np.arange(RECORDS))


@pytest.mark.parametrize(("options", "message"), [
    (dict(kind="local", workers=2), "need --scheduler dask"),
    (dict(kind="dask", workers=0), "--workers must be at least 1, got 0"),
    (dict(kind="dask", workers=2, address="tcp://127.0.0.1:1"), "give one of them"),
    (dict(kind="ray"), "unknown scheduler 'ray'"),
])
def test_scheduler_options_that_do_not_fit_are_refused(options, message):
    with pytest.raises(SchedulerError, match=message):
        SchedulerOptions(**options)


def test_embedded_workers_keep_the_default_allocator(tmp_path, network, records, monkeypatch):
    """Dask's nanny would start them with MALLOC_TRIM_THRESHOLD_ set, which doubles a batch's CPU time
    (nn/dask_scheduler.py); the embedded cluster's workers have it unset and one BLAS thread, and their idle
    kernel threads spin briefly. (A nanny of
    an earlier default-config cluster in this process writes the variable into os.environ, which workers
    inherit: the test starts from an environment without it, as a ``ckkslab`` process does.)"""
    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_", raising=False)
    w = workspace(tmp_path, network, records)
    bundle, model = (w / "context" / "bundle.ckks").read_bytes(), (w / "server" / "model.ckks").read_bytes()
    with dask_scheduler(SchedulerOptions("dask", workers=1), bundle, model, "bundle", "model") as running:
        seen = running.client.run(lambda: (os.environ.get("MALLOC_TRIM_THRESHOLD_"),
                                           os.environ.get("OPENBLAS_NUM_THREADS")))
        idle = running.client.run(_idle_cpu_after_a_kernel)
    assert list(seen.values()) == [(None, "1")]
    assert "GOMP_SPINCOUNT" not in os.environ  # set in the workers only
    # A worker's idle kernel thread soon sleeps (GOMP_SPINCOUNT 10000: about 0.4 ms of CPU here; libgomp's
    # default spends 7.5 ms, see tests/ckks/test_threads.py).
    assert [spin for spin, _ in idle.values()] == [str(SHARED_CORES_SPIN_COUNT)]
    assert all(seconds < 0.003 for _, seconds in idle.values()), idle


def _idle_cpu_after_a_kernel() -> tuple[str | None, float]:
    """On a worker: its GOMP_SPINCOUNT, and the least CPU seconds of three 0.2 s sleeps after a two-thread
    kernel (the idle kernel thread's spinning; ``benchmarks.machine.idle_spin_cpu_seconds``)."""
    from benchmarks.machine import idle_spin_cpu_seconds

    threads = ckks.get_threads()
    try:
        return (os.environ.get("GOMP_SPINCOUNT"),
                min(idle_spin_cpu_seconds(min(2, ckks.available_threads())) for _ in range(3)))
    finally:
        ckks.set_threads(threads)
