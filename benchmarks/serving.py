"""Serving benchmark (make bench-serve): the HTTP server under load vs the model called in-process.

The server runs in its own process on 127.0.0.1 (cache off, so every row is
scored); this process is the load generator: keep-alive connections, one per
client thread, a bounded number of requests per scenario, single-row and
32-row requests at concurrency 1..32. The limit is the same SavedModel called
in this process. Batch prediction (Beam RunInference) is timed on the same rows.
Results: build/bench/serving.json and a table on stdout.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time

from benchmarks.batch_prediction import end_to_end
from datagen import taxi
from serving import instances, model_store
from serving.client import PredictionClient
from settings import entry

CONCURRENCY = (1, 2, 4, 8, 16, 32)
BATCH_ROWS = 32


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def load(url: str, rows: list[dict], concurrency: int, per_request: int, requests: int) -> dict:
    """`requests` POSTs of `per_request` rows spread over `concurrency` connections."""
    latencies: list[float] = []
    failures = []
    lock = threading.Lock()
    share = [requests // concurrency + (1 if i < requests % concurrency else 0) for i in range(concurrency)]

    # request bodies are encoded before the clock starts: the load generator should not be the bottleneck
    bodies = [
        json.dumps({"instances": rows[s : s + per_request]}).encode()
        for s in range(0, min(len(rows), 256 * per_request) - per_request, per_request)
    ]

    def worker(n: int, offset: int):
        client = PredictionClient(url)
        local = []
        for i in range(n):
            body = bodies[(offset + i) % len(bodies)]
            t = time.perf_counter()
            status, _ = client.post_raw(body)
            local.append((time.perf_counter() - t) * 1000)
            if status != 200:
                failures.append(status)
        client.close()
        with lock:
            latencies.extend(local)

    threads = [threading.Thread(target=worker, args=(n, i * 997)) for i, n in enumerate(share)]
    began = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - began
    return {
        "concurrency": concurrency,
        "rows_per_request": per_request,
        "requests": len(latencies),
        "failures": len(failures),
        "p50_ms": round(percentile(latencies, 0.50), 3),
        "p95_ms": round(percentile(latencies, 0.95), 3),
        "p99_ms": round(percentile(latencies, 0.99), 3),
        "requests_per_s": round(len(latencies) / elapsed, 1),
        "rows_per_s": round(len(latencies) * per_request / elapsed, 1),
    }


def rows_per_s(predict, items: list, size: int, rows: int, repeats: int = 5) -> float:
    """Throughput of `predict` on consecutive batches of `size` items, about `rows` rows a pass: the median
    of `repeats` passes (one pass alone moved by 2x between runs on a 2-core machine)."""
    calls = max(20, rows // size)
    rates = []
    for _ in range(repeats):
        t = time.perf_counter()
        for i in range(calls):
            start = (i * size) % (len(items) - size)
            predict(items[start : start + size])
        rates.append(calls * size / (time.perf_counter() - t))
    return round(sorted(rates)[len(rates) // 2], 1)


def in_process(model_dir: str, rows: list[dict], personal: list[str]) -> dict:
    model = model_store.load(model_dir, personal)
    valid = [model.validator.instance(r, 0) for r in rows]
    examples = [model_store.to_example(r) for r in valid]
    single = []
    for i in range(1000):
        t = time.perf_counter()
        model.predict_serialized([examples[i % len(examples)]])
        single.append((time.perf_counter() - t) * 1000)
    out = {
        "single_row_p50_ms": round(percentile(single, 0.5), 3),
        "single_row_p99_ms": round(percentile(single, 0.99), 3),
    }
    for size in (BATCH_ROWS, 512):
        out[f"batch_{size}_rows_per_s"] = rows_per_s(model.predict_serialized, examples, size, 20000)
        # from raw rows, as any in-process caller of this model must: columns + model
        out[f"raw_rows_batch_{size}_rows_per_s"] = rows_per_s(model.predict, valid, size, 10000)
    # the full request path without HTTP: validation + tf.Example + model, single row
    full = []
    for i in range(1000):
        t = time.perf_counter()
        model.predict([model.validator.instance(rows[i % len(rows)], 0)])
        full.append((time.perf_counter() - t) * 1000)
    out["single_row_with_validation_p50_ms"] = round(percentile(full, 0.5), 3)
    return out


def start_server(config_path: str, serving_dir: str, port: int, log_path: str) -> subprocess.Popen:
    profile = os.path.join(os.path.dirname(log_path), "bench-serving.yaml")
    with open(profile, "w") as f:
        json.dump({"extends": os.path.abspath(config_path), "serving": {"cache_size": 0, "log_path": log_path}}, f)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "serving.server",
            "--config",
            profile,
            "--port",
            str(port),
            "--serving-dir",
            serving_dir,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(600):  # bounded wait for the model to load
        client = PredictionClient(f"http://127.0.0.1:{port}")
        try:
            if client.get("/health")[0] == 200:
                return proc
        except OSError:
            pass
        finally:
            client.close()
        if proc.poll() is not None:
            raise RuntimeError("the server exited during start-up")
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError("the server did not become healthy in 60 s")


@entry.config_errors_exit
def main(argv: list[str] | None = None) -> int:
    from pipelines import local_runner

    parser = entry.parser(__doc__, workdir="a run's workdir whose serving dir holds the model (e.g. build/smoke)")
    parser.add_argument("--out", default="build/bench/serving.json")
    parser.add_argument("--requests", type=int, default=2000, help="requests per scenario")
    parser.add_argument("--batch-rows", type=int, default=20000, help="rows for batch prediction")
    args = parser.parse_args(argv)
    config = entry.load(args, workdir=args.workdir)
    available = model_store.versions(config.pipeline.serving_dir)
    if not available:
        print(f"no pushed model in {config.pipeline.serving_dir}; running the pipeline first", flush=True)
        local_runner.run(config)
        available = model_store.versions(config.pipeline.serving_dir)
    model_dir = os.path.join(config.pipeline.serving_dir, available[-1])
    frame = taxi.generate(max(args.batch_rows, 5000), seed=99)
    rows = instances.from_frame(frame.drop(columns=[*taxi.OUTCOMES, "trip_id"]))
    personal = list(config.data.personal_columns)

    result: dict = {"model": model_dir, "cpus": os.cpu_count()}
    result["in_process"] = in_process(model_dir, rows, personal)
    print(json.dumps({"in_process": result["in_process"]}), flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        port = _free_port()
        proc = start_server(args.config, config.pipeline.serving_dir, port, os.path.join(tmp, "log.jsonl"))
        try:
            url = f"http://127.0.0.1:{port}"
            load(url, rows, 4, 1, 400)  # warm-up
            result["server"] = []
            for per_request in (1, BATCH_ROWS):
                for c in CONCURRENCY:
                    n = args.requests if per_request == 1 else max(200, args.requests // 4)
                    r = load(url, rows, c, per_request, n)
                    result["server"].append(r)
                    print(json.dumps(r), flush=True)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
        result["batch_prediction"] = end_to_end(config, model_dir, frame.head(args.batch_rows), tmp, files=1)
    ip = result["in_process"]
    single_c1 = next(r for r in result["server"] if r["rows_per_request"] == 1 and r["concurrency"] == 1)
    batched_c32 = next(r for r in result["server"] if r["rows_per_request"] == BATCH_ROWS and r["concurrency"] == 32)
    result["summary"] = {
        "single_row_p50_overhead_ms": round(single_c1["p50_ms"] - ip["single_row_p50_ms"], 3),
        "c32_batched_vs_in_process_batch_32": round(
            batched_c32["rows_per_s"] / ip[f"batch_{BATCH_ROWS}_rows_per_s"], 3
        ),
        "c32_batched_vs_in_process_batch_512": round(batched_c32["rows_per_s"] / ip["batch_512_rows_per_s"], 3),
        "c32_batched_vs_in_process_raw_rows_batch_32": round(
            batched_c32["rows_per_s"] / ip[f"raw_rows_batch_{BATCH_ROWS}_rows_per_s"], 3
        ),
        "c32_batched_vs_in_process_raw_rows_batch_512": round(
            batched_c32["rows_per_s"] / ip["raw_rows_batch_512_rows_per_s"], 3
        ),
        "batch_prediction_vs_in_process_raw_rows_batch_512": round(
            result["batch_prediction"]["rows_per_s"] / ip["raw_rows_batch_512_rows_per_s"], 3
        ),
    }
    from benchmarks.pipeline_timing import write_result

    write_result(args.out, result)
    print(json.dumps(result["summary"], indent=2))
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
