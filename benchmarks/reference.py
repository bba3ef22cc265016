"""This project's pipeline beside TFX's own Chicago taxi example, on the same trips (make bench-reference).

    python -m benchmarks.reference --repeat 1 --out build/bench/reference.json

The anchor for the pipeline's speed on this machine: TFX's example is nine standard components as TFX wrote
them (`tfx/examples/chicago_taxi_pipeline/taxi_pipeline_native_keras.py`, its module file, TFX's
LocalDagRunner); this project's is `configs/tables/chicago_taxi.yaml` (the example's label, every stage of
the exam guide). Both read the 15,002 trips TFX ships with its example, repeated `--repeat` times, cache off,
each in a process and a scratch directory of its own, Beam in-process (the project's `beam_args`), one after
the other. Prints each one's seconds per component, the totals and their ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from importlib import resources

from benchmarks.pipeline_timing import write_result

REFERENCE_NAME = "chicago_taxi_native_keras"
PROJECT_CONFIG = "configs/tables/chicago_taxi.yaml"


def example_dir() -> str:
    return str(resources.files("tfx") / "examples" / "chicago_taxi_pipeline")


def repeat_csv(source: str, target_dir: str, times: int) -> str:
    """Writes the CSV `source` with its rows `times` over (one header) to `target_dir/data.csv`."""
    os.makedirs(target_dir, exist_ok=True)
    with open(source, "rb") as f:
        header, rows = f.readline(), f.read()
    if rows and not rows.endswith(b"\n"):
        rows += b"\n"
    target = os.path.join(target_dir, "data.csv")
    with open(target, "wb") as f:
        f.write(header)
        for _ in range(times):
            f.write(rows)
    return target


def reference_pipeline(workdir: str, data_root: str, beam_args: list[str]):
    """TFX's own example pipeline, as its `_create_pipeline` builds it, cache off."""
    from tfx.examples.chicago_taxi_pipeline import taxi_pipeline_native_keras as example

    pipeline = example._create_pipeline(  # noqa: SLF001 (the example's own factory, called as its __main__ does)
        pipeline_name=REFERENCE_NAME,
        pipeline_root=os.path.join(workdir, "pipeline"),
        data_root=data_root,
        module_file=os.path.join(example_dir(), "taxi_utils_native_keras.py"),
        serving_model_dir=os.path.join(workdir, "serving"),
        metadata_path=os.path.join(workdir, "metadata.sqlite"),
        beam_pipeline_args=beam_args,
    )
    pipeline.enable_cache = False
    return pipeline


def run_reference(workdir: str, repeat: int, beam_args: list[str]) -> dict:
    """TFX's example, timed from before its imports (as this project's run is: its runner imports the
    pipeline's definition, and its components' processes the same, in the run's time)."""
    data_root = os.path.join(workdir, "data")
    repeat_csv(os.path.join(example_dir(), "data", "simple", "data.csv"), data_root, repeat)
    start = time.perf_counter()
    from tfx import v1 as tfx

    from metadata.mlmd import open_store
    from metadata.run_summary import latest_run

    tfx.orchestration.LocalDagRunner().run(reference_pipeline(workdir, data_root, beam_args))
    total = time.perf_counter() - start
    summary = latest_run(open_store(os.path.join(workdir, "metadata.sqlite")), REFERENCE_NAME)
    return timing(summary, total)


def run_project(workdir: str, repeat: int) -> dict:
    from datagen import public_tables
    from pipelines import local_runner
    from settings.config import load_config

    data_root = os.path.join(workdir, "data")
    source = os.path.join(workdir, "table")
    public_tables.write("chicago_taxi", source)
    repeat_csv(os.path.join(source, "chicago_taxi.csv"), data_root, repeat)
    config = load_config(PROJECT_CONFIG, {
        "data": {"path": data_root, "public_table": None},
        "pipeline": {"enable_cache": False, "root": os.path.join(workdir, "pipeline"),
                     "metadata_path": os.path.join(workdir, "metadata.sqlite"),
                     "serving_dir": os.path.join(workdir, "serving")},
    })  # fmt: skip
    start = time.perf_counter()
    summary = local_runner.run(config)
    return {**timing(summary, time.perf_counter() - start), "beam_args": list(config.pipeline.beam_args)}


def run_side(side: str, repeat: int) -> dict:
    """One side in a process of its own (its own imports: TFX's example chooses its Keras as a fresh
    process would); a run that did not complete every component is no timing of it."""
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        out = f.name
    try:
        subprocess.run([sys.executable, "-m", "benchmarks.reference", "--side", side, "--repeat", str(repeat),
                        "--out", out], check=True, stdout=subprocess.DEVNULL)  # fmt: skip
        with open(out) as f:
            result = json.load(f)
    finally:
        os.unlink(out)
    if not result["complete"]:
        raise RuntimeError(f"the {side} run did not complete every component: {result['components_seconds']}")
    return result


def timing(summary, total: float) -> dict:
    return {
        "total_seconds": round(total, 2),
        "components_seconds": {c.component: round(c.seconds, 2) for c in summary.components},
        "complete": all(c.state == "COMPLETE" for c in summary.components),
    }


def compare(rows: int, project: dict, reference: dict) -> dict:
    return {
        "rows": rows,
        "project": project,
        "reference": reference,
        "ratio": round(project["total_seconds"] / reference["total_seconds"], 3),
    }


def report(result: dict) -> str:
    lines = [f"{result['rows']:,} rows, cache off"]
    for side, title in (("reference", "TFX's Chicago taxi example"), ("project", "this project's pipeline")):
        run = result[side]
        lines.append(f"  {title}: {len(run['components_seconds'])} components, {run['total_seconds']:.2f} s")
        for name, seconds in run["components_seconds"].items():
            lines.append(f"    {name:36s} {seconds:8.2f} s")
    lines.append(f"  this project / TFX's example: {result['ratio']:.2f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=1, help="the 15,002 trips this many times over")
    parser.add_argument("--out", default="build/bench/reference.json")
    parser.add_argument("--side", choices=("project", "reference"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    from settings.config import load_config

    if args.side:  # one side, in this process, into --out
        with tempfile.TemporaryDirectory(prefix=f"bench-{args.side}-") as workdir:
            if args.side == "project":
                result = run_project(workdir, args.repeat)
            else:
                beam_args = list(load_config(PROJECT_CONFIG).pipeline.beam_args)  # the same in-process Beam
                result = run_reference(workdir, args.repeat, beam_args)
            with open(os.path.join(workdir, "data", "data.csv"), "rb") as f:
                result["rows"] = sum(1 for _ in f) - 1
        write_result(args.out, result)
        return 0
    project, reference = (run_side(side, args.repeat) for side in ("project", "reference"))
    if project["rows"] != reference["rows"]:
        raise RuntimeError(f"the two read different row counts: {project['rows']} and {reference['rows']}")
    result = compare(project["rows"], project, reference)
    write_result(args.out, result)
    print(report(result))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
