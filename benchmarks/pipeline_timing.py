"""Times the pipeline on N generated rows, cache off, in a scratch directory.

    python -m benchmarks.pipeline_timing --rows 15000 --out build/bench/pipeline.json

Prints each component's wall time (from ML Metadata) and the total, and writes them as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time

from pipelines import local_runner
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
    start = time.perf_counter()
    summary = local_runner.run(config)
    total = time.perf_counter() - start
    return {
        "rows": rows,
        "total_seconds": round(total, 2),
        "components_seconds": {c.component: round(c.seconds, 2) for c in summary.components},
        "blessed": summary.blessed,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
    }


def write_result(path: str, result: dict) -> None:
    """Writes a benchmark's result as JSON, making its directory."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        json.dump(result, f, indent=2)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="configs/taxi.yaml")
    parser.add_argument("--rows", type=int, default=15000)
    parser.add_argument("--out", default="build/bench/pipeline.json")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-") as workdir:
        result = bench(args.config, args.rows, workdir)
    write_result(args.out, result)
    print(f"\n{args.rows} rows, cache off")
    for name, seconds in result["components_seconds"].items():
        print(f"  {name:32s} {seconds:7.2f} s")
    print(f"  {'total (wall, whole run)':32s} {result['total_seconds']:7.2f} s")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
