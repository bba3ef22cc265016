"""Batch prediction benchmark (make bench-batch): CSV in, JSON lines out, against the model in-process.

ROWS generated trips (default 1,000,000) are written as CSV files; the newest pushed model scores
them with `pipelines.batch_prediction` (Beam RunInference, the config's runner), timed end to end
including Beam's start and the model's load. The anchor, measured in the same run, is the same
model scoring the same rows in this process, already parsed, in chunks of the pipeline's size.
Results: build/bench/batch.json and a line on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time

import pandas as pd

from datagen import taxi
from serving import model_store

FILES = 4  # input files: Beam reads them in parallel


def end_to_end(config, model_dir: str, frame: pd.DataFrame, workdir: str, files: int = FILES) -> dict:
    """Writes `frame` as `files` CSV files under `workdir` and times batch prediction over them."""
    from pipelines import batch_prediction as batch

    size = -(-len(frame) // files)
    for i in range(files):
        taxi.write_csv(frame.iloc[i * size : (i + 1) * size], os.path.join(workdir, "in"), f"part-{i}.csv")
    t = time.perf_counter()
    batch.run(config, os.path.join(workdir, "in", "*.csv"), os.path.join(workdir, "out", "p"), model_dir)
    elapsed = time.perf_counter() - t
    return {"rows": len(frame), "seconds": round(elapsed, 2), "rows_per_s": round(len(frame) / elapsed, 1)}


def in_process(model_dir: str, workdir: str, personal: list[str], chunk: int = 8192) -> dict:
    """The model on the same rows already parsed (the input files read whole), chunk by chunk, in this process."""
    model = model_store.load(model_dir, personal)
    frame = pd.concat(
        pd.read_csv(os.path.join(workdir, "in", name)) for name in sorted(os.listdir(os.path.join(workdir, "in")))
    )
    inputs = frame.reindex(columns=list(model.validator.rules))
    model.predict_frame(inputs.head(chunk))
    t = time.perf_counter()
    for start in range(0, len(inputs), chunk):
        model.predict_frame(inputs.iloc[start : start + chunk])
    elapsed = time.perf_counter() - t
    return {"rows": len(frame), "seconds": round(elapsed, 2), "rows_per_s": round(len(frame) / elapsed, 1)}


def main(argv: list[str] | None = None) -> int:
    from settings.config import load_config
    from settings.yaml_files import workdir_overrides

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="configs/taxi.yaml")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--workdir", default="build/bench/batch")
    parser.add_argument("--out", default="build/bench/batch.json")
    parser.add_argument("--run-workdir", help="a run's workdir whose serving dir holds the model (e.g. build/smoke)")
    args = parser.parse_args(argv)
    config = load_config(args.config, workdir_overrides(args.run_workdir) if args.run_workdir else None)
    available = model_store.versions(config.pipeline.serving_dir)
    if not available:
        print(f"no pushed model in {config.pipeline.serving_dir}: run `make run` first")
        return 2
    model_dir = os.path.join(config.pipeline.serving_dir, available[-1])
    frame = taxi.generate(args.rows, seed=99)
    shutil.rmtree(args.workdir, ignore_errors=True)
    try:
        result = {"model": model_dir, "end_to_end": end_to_end(config, model_dir, frame, args.workdir),
                  "in_process": in_process(model_dir, args.workdir, list(config.data.personal_columns))}  # fmt: skip
    finally:
        shutil.rmtree(args.workdir, ignore_errors=True)
    result["end_to_end_vs_in_process"] = round(
        result["end_to_end"]["rows_per_s"] / result["in_process"]["rows_per_s"], 3
    )
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(result, f, indent=2)
    e, p = result["end_to_end"], result["in_process"]
    print(f"batch prediction, {e['rows']} rows: {e['rows_per_s']:.0f} rows/s end to end ({e['seconds']} s), "
          f"model in-process {p['rows_per_s']:.0f} rows/s: {result['end_to_end_vs_in_process']}x")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
