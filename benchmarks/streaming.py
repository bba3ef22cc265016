"""Events per second through the local stream, and latency from a file landing to its rows scored.

  python -m benchmarks.streaming --config configs/taxi.yaml [--files 20 --rows 500] --out build/bench/stream.json
  (make bench-stream; needs a pushed model: make run or make smoke)

Runs `pipelines.streaming` on the landing-folder source (the window statistics measure row counts
only: the skew and drift checks live in monitoring, above this layer) while a thread drops `files`
CSV files of `rows` rows, one every `gap` seconds. Latency is scored_at - arrived_at (the file's
landing time, its mtime) per row; events/s is the rows scored over the span from the first landing
to the last scored row.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from datagen import taxi
from pipelines import streaming
from settings import entry


def drop(landing: str, staging: str, files: int, rows: int, gap: float, delay: float) -> None:
    time.sleep(delay)
    for i in range(files):
        name = f"bench-{i:04d}.csv"
        taxi.write_csv(taxi.generate(rows, seed=1000 + i), staging, name)
        os.rename(os.path.join(staging, name), os.path.join(landing, name))
        time.sleep(gap)


def measure(config, files: int, rows: int, gap: float, warmup: float = 8.0) -> dict:
    work = tempfile.mkdtemp(prefix="bench-stream-")
    s = config.streaming.replace(landing_dir=os.path.join(work, "landing"), output_dir=os.path.join(work, "out"))
    config = config.replace(streaming=s)
    os.makedirs(s.landing_dir)
    seconds = warmup + files * gap + 10.0
    dropper = threading.Thread(
        target=drop, args=(s.landing_dir, os.path.join(work, "staging"), files, rows, gap, warmup)
    )
    dropper.start()
    streaming.run(config, None, seconds)
    dropper.join()
    scored = [
        json.loads(line)
        for p in glob.glob(os.path.join(s.output_dir, "predictions", "*.jsonl"))
        for line in Path(p).read_text().splitlines()
    ]
    shutil.rmtree(work, ignore_errors=True)
    latency = np.array([r["scored_at"] - r["arrived_at"] for r in scored])
    span = max(r["scored_at"] for r in scored) - min(r["arrived_at"] for r in scored)
    return {
        "files": files, "rows_per_file": rows, "gap_seconds": gap, "events": len(scored), "expected": files * rows,
        "events_per_second": round(len(scored) / span, 1),
        "latency_seconds": {"p50": round(float(np.percentile(latency, 50)), 3),
                            "p99": round(float(np.percentile(latency, 99)), 3),
                            "max": round(float(latency.max()), 3)},
        "runner": " ".join(streaming.LOCAL_RUNNER), "cpus": os.cpu_count(),
    }  # fmt: skip


@entry.config_errors_exit
def main(argv: list[str] | None = None) -> int:
    parser = entry.parser(__doc__, workdir="a run's workdir whose serving dir holds the model (e.g. build/smoke)")
    parser.add_argument("--files", type=int, default=20)
    parser.add_argument("--rows", type=int, default=500)
    parser.add_argument("--gap", type=float, default=0.5, help="seconds between files")
    parser.add_argument("--out", default="build/bench/stream.json")
    args = parser.parse_args(argv)
    config = entry.load(args, workdir=args.workdir)
    result = measure(config, args.files, args.rows, args.gap)
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(result, f, indent=2)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
