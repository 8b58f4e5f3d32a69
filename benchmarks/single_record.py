"""Single-record packing on real records: precision against the float64 network and latency per record.

    .venv/bin/python benchmarks/single_record.py --model models/clinical --records 64 [--plain-weights]
        [--threads T] [--json F]

Each record is encrypted on its own (its features replicated through the slots), run through the network with
the baby-step / giant-step diagonal method, and decrypted; the figure of merit is the server's predict time
per record (latency), beside the batch-packed throughput that ``ckkslab compare`` reports.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

import ckks
from nn import encrypted as enc
from nn.data import load_xy
from nn.model import load_network
from nn.plan import plan_inference


def run(model_dir: str, records: int, encrypt_weights: bool, threads: int | None = None) -> dict:
    """Encrypt, predict and decrypt ``records`` test records one by one on ``threads`` threads (None: all
    cores); return precision and timings."""
    threads = ckks.set_threads(threads)
    ckks.keep_freed_memory()
    ckks.compile_kernels(quiet=True)
    net = load_network(model_dir)
    x, _ = load_xy(model_dir, "test")
    plan = plan_inference(net, x, batch_size=1)
    keys = ckks.KeyGenerator(plan.params)
    encoder, encryptor = ckks.Encoder(plan.params), ckks.Encryptor(plan.params, keys.secret_key)
    start = time.perf_counter()
    model = enc.compile_model(net, plan, encoder, encryptor if encrypt_weights else None)
    compile_s = time.perf_counter() - start
    ev = ckks.Evaluator(plan.params, relin_key=keys.relin_key(), galois_keys=keys.galois_keys(plan.rotation_steps))
    prepared = enc.prepare_weights(model, ev)
    decryptor = ckks.Decryptor(plan.params, keys.secret_key)
    latencies, scores = [], []
    for i in range(records):
        cts = enc.encrypt_batch(x[i : i + 1], plan, encoder, encryptor)
        start = time.perf_counter()
        out = enc.predict(model, cts, ev, prepared)
        latencies.append(time.perf_counter() - start)
        scores.append(enc.decrypt_batch(out, 1, plan, net.output_dim, encoder, decryptor)[0])
    scores = np.array(scores)
    want = net.forward(x[:records])
    err = np.abs(scores - want)
    decisions_equal = int(np.sum(net.decide(scores)[1] == net.decide(want)[1]))
    return {"model": model_dir, "records": records, "encrypt_weights": encrypt_weights, "threads": threads,
            "plan": plan.describe(net), "rotation_steps": list(plan.rotation_steps),
            "compile_model_s": compile_s, "latency_s_median": float(np.median(latencies)),
            "latency_s_min": float(np.min(latencies)), "max_abs_error": float(err.max()),
            "bits_min": float(-np.log2(err.max())), "bits_mean": float(-np.log2(err.mean())),
            "relative_bits_min": float(-np.log2(err.max() / np.ptp(want))) if np.ptp(want) > 0 else None,
            "decisions_equal": decisions_equal}


def main() -> None:
    """Parse the arguments, run, print a summary (and write JSON)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="models/clinical")
    parser.add_argument("--records", type=int, default=64)
    parser.add_argument("--plain-weights", action="store_true")
    parser.add_argument("--threads", type=int, default=None, help="kernel threads (default: all cores)")
    parser.add_argument("--json", help="write the figures to this file")
    args = parser.parse_args()
    result = run(args.model, args.records, not args.plain_weights, args.threads)
    print(result["plan"])
    for key, value in result.items():
        if key != "plan":
            print(f"{key:>20}: {value}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
