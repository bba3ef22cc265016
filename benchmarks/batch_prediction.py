"""Batch prediction benchmark (make bench-batch): CSV in, JSON lines out, against the model in-process.

ROWS generated trips (default 1,000,000) are written as CSV files; the newest pushed model scores
them with `pipelines.batch_prediction` (Beam RunInference, the config's runner), timed end to end
including Beam's start and the model's load. The anchor, measured in the same run, is the same
model scoring the same rows in this process, already parsed by the pipeline's reader, in its chunks.
Results: build/bench/batch.json and a line on stdout.
"""

from __future__ import annotations

import json
import os
import shutil
import time

import pandas as pd

from datagen import taxi
from serving import model_store
from settings import entry

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


def in_process(model_dir: str, workdir: str, personal: list[str], not_inputs: list[str]) -> dict:
    """The model on the same rows already parsed (by the pipeline's reader, in its chunks), in this process."""
    from apache_beam.io import fileio
    from apache_beam.io.filesystem import FileMetadata

    from pipelines import batch_prediction as batch

    model = model_store.load(model_dir, personal)
    rules = list(model.validator.rules)
    skip = batch.ignored_columns(model_dir, personal, "", not_inputs)
    read = batch.ReadChunks(batch.CHUNK_ROWS, batch.column_types(model_dir, personal), skip, categories=True)
    chunks = []
    for name in sorted(os.listdir(os.path.join(workdir, "in"))):
        path = os.path.join(workdir, "in", name)
        chunks += [
            c.reindex(columns=rules)
            for c in read.process(fileio.ReadableFile(FileMetadata(path, os.path.getsize(path))))
        ]
    model.score_frame(chunks[0])
    t = time.perf_counter()
    for chunk in chunks:
        model.score_frame(chunk)
    elapsed = time.perf_counter() - t
    rows = sum(len(c) for c in chunks)
    return {"rows": rows, "seconds": round(elapsed, 2), "rows_per_s": round(rows / elapsed, 1)}


@entry.config_errors_exit
def main(argv: list[str] | None = None) -> int:
    parser = entry.parser(__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--workdir", default="build/bench/batch")
    parser.add_argument("--out", default="build/bench/batch.json")
    parser.add_argument("--run-workdir", help="a run's workdir whose serving dir holds the model (e.g. build/smoke)")
    args = parser.parse_args(argv)
    config = entry.load(args, workdir=args.run_workdir)
    available = model_store.versions(config.pipeline.serving_dir)
    if not available:
        print(f"no pushed model in {config.pipeline.serving_dir}: run `make run` first")
        return 2
    model_dir = os.path.join(config.pipeline.serving_dir, available[-1])
    frame = taxi.generate(args.rows, seed=99)
    shutil.rmtree(args.workdir, ignore_errors=True)
    try:
        result = {"model": model_dir, "end_to_end": end_to_end(config, model_dir, frame, args.workdir),
                  "in_process": in_process(model_dir, args.workdir, list(config.data.personal_columns),
                                           [model_store.read_contract(model_dir)["label"]])}  # fmt: skip
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
