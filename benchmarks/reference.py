"""This project's pipeline beside TFX's own Chicago taxi example, on the same trips (make bench-reference).

    python -m benchmarks.reference --repeat 1 --out build/bench/reference.json

The anchor for the pipeline's speed on this machine: TFX's example is nine standard components as TFX wrote
them (`tfx/examples/chicago_taxi_pipeline/taxi_pipeline_native_keras.py`, its module file), run twice: on
TFX's LocalDagRunner with this project's in-process Beam, and as its `__main__` runs it (BeamDagRunner, the
module's own multi-processing Beam arguments). This project's is `configs/tables/chicago_taxi.yaml` (the
example's label, every stage of the exam guide). All read the 15,002 trips TFX ships with its example,
repeated `--repeat` times, cache off, each in a process and a scratch directory of its own, one after the
other. Prints each one's seconds per component, totals, peak memory, each pushed model's AUC on the trips
every side held out (benchmarks/reference_quality.py), and this project's total over each example run's.
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

import psutil

from benchmarks.memory import RssSampler
from benchmarks.pipeline_timing import write_result

REFERENCE_NAME = "chicago_taxi_native_keras"
PROJECT_CONFIG = "configs/tables/chicago_taxi.yaml"
SIDES = {  # in the order they run
    "reference": "TFX's example in-process: TFX's LocalDagRunner, this project's Beam arguments",
    "shipped": "TFX's example as shipped: its __main__'s BeamDagRunner and its own Beam arguments",
    "project": "this project's pipeline, its own settings",
}
SHORT = {"reference": "in-process", "shipped": "as shipped", "project": "this project"}


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


def shipped_pipeline(workdir: str, data_root: str):
    """TFX's example as its `__main__` runs it: the Beam arguments its module sets (multi-processing, a worker
    per CPU), read from the module."""
    from tfx.examples.chicago_taxi_pipeline import taxi_pipeline_native_keras as example

    return reference_pipeline(workdir, data_root, list(example._beam_pipeline_args))  # noqa: SLF001


def run_example(workdir: str, repeat: int, beam_args: list[str] | None) -> dict:
    """TFX's example, timed from before its imports (as this project's run is: its runner imports the
    pipeline's definition, and its components' processes the same, in the run's time): on TFX's LocalDagRunner
    with `beam_args`, or with None as its `__main__` runs it (BeamDagRunner, its own Beam arguments)."""
    data_root = os.path.join(workdir, "data")
    repeat_csv(os.path.join(example_dir(), "data", "simple", "data.csv"), data_root, repeat)
    start = time.perf_counter()
    if beam_args is None:
        from tfx.orchestration.beam.beam_dag_runner import BeamDagRunner

        pipeline = shipped_pipeline(workdir, data_root)
        BeamDagRunner().run(pipeline)
    else:
        from tfx import v1 as tfx

        pipeline = reference_pipeline(workdir, data_root, beam_args)
        tfx.orchestration.LocalDagRunner().run(pipeline)
    total = time.perf_counter() - start
    return finished(workdir, REFERENCE_NAME, total) | {"beam_args": list(pipeline.beam_pipeline_args)}


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
    local_runner.run(config)
    total = time.perf_counter() - start
    return finished(workdir, config.pipeline.name, total) | {"beam_args": list(config.pipeline.beam_args)}


def finished(workdir: str, pipeline_name: str, total: float) -> dict:
    """The run's timing from ML Metadata, and where its eval split, schema and pushed model are."""
    from metadata import mlmd
    from metadata.run_summary import latest_run

    store = mlmd.open_store(os.path.join(workdir, "metadata.sqlite"))
    summary = latest_run(store, pipeline_name)
    artifacts = {"pushed_model": summary.pushed_model}
    for execution in store.get_executions_by_context(mlmd.runs(store, pipeline_name)[0].id):
        node = mlmd.node_id(store, execution.id, pipeline_name) or ""
        for artifact in mlmd.outputs(store, execution.id):
            kind = mlmd.type_name(store, artifact)
            if kind == "Examples" and node.endswith("ExampleGen"):
                artifacts["examples"] = artifact.uri
            elif kind == "Schema" and node.endswith("SchemaGen"):
                artifacts["schema"] = artifact.uri
    return {**timing(summary, total), "artifacts": artifacts}


def run_side(side: str, repeat: int, workdir: str) -> dict:
    """One side in a process of its own (its own imports: TFX's example chooses its Keras as a fresh
    process would), its process tree's memory sampled from here; `workdir` outlives it, for the scoring. A run
    that did not complete every component is no timing of it."""
    os.makedirs(workdir, exist_ok=True)
    out = os.path.join(workdir, "result.json")
    command = [sys.executable, "-m", "benchmarks.reference", "--side", side, "--repeat", str(repeat),
               "--workdir", workdir, "--out", out]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    with RssSampler(process=psutil.Process(process.pid)) as memory:
        code = process.wait()
    if code:
        raise subprocess.CalledProcessError(code, command)
    with open(out) as f:
        result = json.load(f)
    if not result["complete"]:
        raise RuntimeError(f"the {side} run did not complete every component: {result['components_seconds']}")
    return {**result, "peak_mib": memory.peak_mb()}


def timing(summary, total: float) -> dict:
    return {
        "total_seconds": round(total, 2),
        "components_seconds": {c.component: round(c.seconds, 2) for c in summary.components},
        "complete": all(c.state == "COMPLETE" for c in summary.components),
    }


def compare(rows: int, runs: dict[str, dict], quality: dict | None = None) -> dict:
    """The runs, and this project's total over each example run's and over the faster of the two."""
    examples = {side: runs[side]["total_seconds"] for side in ("reference", "shipped")}
    faster = min(examples, key=examples.get)
    project = runs["project"]["total_seconds"]
    return {
        "rows": rows,
        **runs,
        "ratios": {side: round(project / seconds, 3) for side, seconds in examples.items()},
        "faster_example": faster,
        "ratio": round(project / examples[faster], 3),
        "quality": quality,
    }


def report(result: dict) -> str:
    lines = [f"{result['rows']:,} rows, cache off; seconds per component (ML Metadata)"]
    lines += [f"  {SHORT[side]}: {title}" for side, title in SIDES.items()]
    table = [["", *SHORT.values()]]
    names = list(dict.fromkeys(n for side in SIDES for n in result[side]["components_seconds"]))
    for name in names:
        table.append([name, *(_number(result[side]["components_seconds"].get(name), ".2f") for side in SIDES)])
    table.append(["total (s)", *(_number(result[side]["total_seconds"], ".2f") for side in SIDES)])
    table.append(["peak memory (MiB)", *(_number(result[side].get("peak_mib"), ",") for side in SIDES)])
    quality = result.get("quality") or {}
    if "auc" in quality:
        title = f"AUC, {quality['eval_rows']:,} trips in every eval split"
        table.append([title, *(_number(quality["auc"].get(side), ".4f") for side in SIDES)])
        if quality.get("labels_differ"):
            lines.append(f"  AUC without {quality['labels_differ']} trips whose labels differ (a tip of exactly a "
                         "fifth of the fare: the example's float32 calls it above)")  # fmt: skip
    elif quality:
        lines.append(f"  no AUC: {quality.get('error')}")
    width = max(len(row[0]) for row in table)
    lines += [f"  {row[0]:{width}s} " + " ".join(f"{cell:>12s}" for cell in row[1:]) for row in table]
    ratios = "; ".join(f"over {SHORT[side]} {ratio:.2f}" for side, ratio in result["ratios"].items())
    lines.append(f"  this project's total {ratios}; over the faster ({SHORT[result['faster_example']]}): "
                 f"{result['ratio']:.2f}")  # fmt: skip
    return "\n".join(lines)


def _number(value, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=1, help="the 15,002 trips this many times over")
    parser.add_argument("--out", default="build/bench/reference.json")
    parser.add_argument("--side", choices=tuple(SIDES), help=argparse.SUPPRESS)
    parser.add_argument("--workdir", help=argparse.SUPPRESS)  # a side's scratch directory, the parent's
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    from settings.config import load_config

    config = load_config(PROJECT_CONFIG)
    if args.side:  # one side, in this process, into --out
        if not args.workdir:
            parser.error("--side needs --workdir")
        if args.side == "project":
            result = run_project(args.workdir, args.repeat)
        else:  # in-process: the same Beam as this project's; shipped: the example's own
            beam_args = list(config.pipeline.beam_args) if args.side == "reference" else None
            result = run_example(args.workdir, args.repeat, beam_args)
        with open(os.path.join(args.workdir, "data", "data.csv"), "rb") as f:
            result["rows"] = sum(1 for _ in f) - 1
        write_result(args.out, result)
        return 0
    from benchmarks import reference_quality  # here: a side's process imports only what it runs, in its time

    with tempfile.TemporaryDirectory(prefix="bench-reference-") as root:
        runs = {side: run_side(side, args.repeat, os.path.join(root, side)) for side in SIDES}
        rows = {side: run.pop("rows") for side, run in runs.items()}
        if len(set(rows.values())) != 1:
            raise RuntimeError(f"the sides read different row counts: {rows}")
        artifacts = {side: run.pop("artifacts") for side, run in runs.items()}
        try:
            quality = reference_quality.quality(artifacts, args.repeat, config.label, config.features.timestamp,
                                                frozenset(config.data.missing_values))  # fmt: skip
        except Exception as e:  # the timings stand; the report says why there is no AUC, and the exit code fails
            quality = {"error": f"{type(e).__name__}: {e}"}
    result = compare(rows["project"], runs, quality)
    write_result(args.out, result)
    print(report(result))
    print(f"wrote {args.out}")
    return 1 if "error" in quality else 0


if __name__ == "__main__":
    raise SystemExit(main())
