"""Times the pipeline on N generated rows, cache off, in a scratch directory.

    python -m benchmarks.pipeline_timing --rows 15000 --out build/bench/pipeline.json

Prints each component's wall time and start (from ML Metadata), the total, and the resident memory of the run
(this process and its children, sampled) at its peak within each component and overall, and writes
them as JSON.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import tempfile
import time

from benchmarks.memory import RssSampler
from pipelines import local_runner
from settings import entry
from settings.config import load_config
from tables.sample_data import prepare_data


def bench(config_path: str, rows: int, workdir: str) -> dict:
    overrides = {
        "data": {"path": os.path.join(workdir, "data"), "generate": {"rows": rows}},
        "pipeline": {
            "enable_cache": False,
            "root": os.path.join(workdir, "pipeline"),
            "metadata_path": os.path.join(workdir, "metadata.sqlite"),
            "serving_dir": os.path.join(workdir, "serving"),
        },
    }
    config = load_config(config_path, overrides)
    prepare_data(config)  # data generation is not part of the pipeline's time
    start, wall_start = time.perf_counter(), time.time()
    with RssSampler() as memory:
        summary = local_runner.run(config)
    total = time.perf_counter() - start
    return {
        "rows": rows,
        "total_seconds": round(total, 2),
        "components_seconds": {c.component: round(c.seconds, 2) for c in summary.components},
        # when each began, from the run's start: with components at once, what waited for what
        "components_started_s": {c.component: round(c.started - wall_start, 2) for c in summary.components},
        "components_peak_rss_mb": {c.component: memory.peak_mb(c.started, c.finished) for c in summary.components},
        "peak_rss_sampled_mb": memory.peak_mb(),
        "blessed": summary.blessed,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
    }


def write_result(path: str, result: dict) -> None:
    """Writes a benchmark's result as JSON, making its directory."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        json.dump(result, f, indent=2)


@entry.config_errors_exit
def main(argv: list[str] | None = None) -> int:
    parser = entry.parser(__doc__)
    parser.add_argument("--rows", type=int, default=15000)
    parser.add_argument("--out", default="build/bench/pipeline.json")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-") as workdir:
        result = bench(args.config, args.rows, workdir)
    write_result(args.out, result)
    print(f"\n{args.rows} rows, cache off")
    peaks = result["components_peak_rss_mb"]
    for name, seconds in result["components_seconds"].items():
        peak = f"{peaks[name]:7,d} MB" if peaks.get(name) is not None else ""
        print(f"  {name:32s} {seconds:7.2f} s  from {result['components_started_s'][name]:7.2f} s  {peak}")
    print(f"  {'total (wall, whole run)':32s} {result['total_seconds']:7.2f} s  {result['peak_rss_sampled_mb']:7,d} MB")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
