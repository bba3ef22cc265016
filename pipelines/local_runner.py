"""Runs the pipeline on this machine: independent components at once, one per core (pipelines/parallel_runner.py;
`pipeline.parallel_components: 1` is TFX's LocalDagRunner), Beam's local runner, SQLite ML Metadata.

python -m pipelines.local_runner --config configs/taxi.yaml

The console shows one line per component and the summary; everything else the run and its components'
processes write (TensorFlow, absl, Beam, TFMA) goes to the run's log file, unless --verbose. One run at a time
per pipeline root and metadata store (pipelines/run_lock.py). Exit codes: 1 the run failed (one line says
what), 2 a config error, 3 no model pushed (with --expect-push), 4 another run holds the lock.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import uuid
from collections.abc import Iterator
from typing import TextIO

from pipelines import component_processes, progress, run_lock
from settings import entry, logs
from settings.config import Config, ConfigError
from settings.yaml_files import deep_merge
from tables import schema_staging
from tables.sample_data import prepare_data
from tables.schema_staging import with_accepted_schema


def stage_schema(config: Config) -> Config:
    """Points the config at the curated schema staged under its content hash in the pipeline root."""
    if not config.data.schema:
        return config
    staged = schema_staging.stage(config.data.schema, os.path.join(config.pipeline.root, "_schemas"))
    return config.replace(data=config.data.replace(schema=staged))


def run(config: Config, run_id: str = ""):
    """Runs the pipeline once, holding the run lock of its root and metadata store (RunLockedError
    at once if another run has it); returns the run's summary read from ML Metadata."""
    if parallel_components(config) > 1:  # the components' process server imports while this process does
        component_processes.start()
    from metadata.mlmd import abandon_unfinished, open_store
    from metadata.run_summary import latest_run
    from pipelines.pipeline import create_pipeline
    from tables.feature_inference import with_inferred_features

    with run_lock.held(config.pipeline.root, config.pipeline.metadata_path, run_id):
        prepare_data(config)
        config = with_inferred_features(with_accepted_schema(stage_schema(config)))
        os.makedirs(os.path.dirname(config.pipeline.metadata_path), exist_ok=True)
        if os.path.exists(config.pipeline.metadata_path):
            store = open_store(config.pipeline.metadata_path)
            abandoned = abandon_unfinished(store, config.pipeline.name, f"its run died; found by run {run_id or '?'}")
            if abandoned:
                logging.warning("executions %s of a run that died are marked CANCELED", abandoned)
        dag_runner(config).run(create_pipeline(config))
        return latest_run(open_store(config.pipeline.metadata_path), config.pipeline.name)


def dag_runner(config: Config):
    """`pipeline.parallel_components` at once (None, the default: one per core); 1 is TFX's LocalDagRunner."""
    from tfx import v1 as tfx

    from pipelines.parallel_runner import ParallelDagRunner

    workers = parallel_components(config)
    return ParallelDagRunner(workers) if workers > 1 else tfx.orchestration.LocalDagRunner()


def parallel_components(config: Config) -> int:
    return config.pipeline.parallel_components or component_processes.default_workers()


def latest_summary(config: Config):
    """The newest run's summary, also after a failure (an empty one when no run was recorded)."""
    from metadata.mlmd import open_store
    from metadata.run_summary import RunSummary, latest_run

    try:
        return latest_run(open_store(config.pipeline.metadata_path), config.pipeline.name)
    except Exception:  # the store may not exist yet; the failure itself is reported
        return RunSummary(run_id="(none)", components=(), blessed=None, pushed_model=None)


def _report(config: Config) -> str:
    """Writes the run's HTML report; a report that cannot be written does not fail the run."""
    try:
        from reports.run_report import write_latest

        return write_latest(config)
    except Exception as e:
        return f"not written ({type(e).__name__}: {e})"


@contextlib.contextmanager
def console_to_log(log_path: str, verbose: bool) -> Iterator[tuple[TextIO, TextIO]]:
    """Unless `verbose`, this process's stdout and stderr, file descriptors 1 and 2 (where TensorFlow's C++
    logging and absl's start-up lines write too), go to the log file, and so do the fork server's and every
    component process's, which take them over; yields the console's stdout and stderr."""
    if verbose:
        yield sys.stdout, sys.stderr
        return
    sys.stdout.flush()
    sys.stderr.flush()
    console = (os.dup(1), os.dup(2))
    log = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)
    try:
        encoding = sys.stdout.encoding or "utf-8"
        with (
            open(os.dup(console[0]), "w", buffering=1, encoding=encoding) as out,
            open(os.dup(console[1]), "w", buffering=1, encoding=encoding) as err,
        ):
            yield out, err
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        for fd, target in zip(console, (1, 2), strict=True):
            os.dup2(fd, target)
            os.close(fd)


def failure_line(error: BaseException, components: list[str]) -> str:
    """One line: what failed, the first line of its error, what to do."""
    where = f"in {', '.join(components)}" if components else "before any component ran"
    message = next((line.strip() for line in str(error).splitlines() if line.strip()), "")
    what = f"{type(error).__name__}: {message}" if message else type(error).__name__
    return f"run failed {where}: {what} - fix what it names and run again; the traceback is in the log:"


def print_summary(summary, config: Config, log_path: str, out: TextIO) -> None:
    print(file=out)
    print(f"run:            {summary.run_id}", file=out)
    for c in summary.components:
        print(f"  {c.component:34s} {c.state:9s} {c.seconds:7.1f} s", file=out)
    if summary.leaderboard:
        print("leaderboard:", file=out)
        for line in leaderboard_lines(summary.leaderboard):
            print(f"  {line}", file=out)
    print(f"blessed:        {summary.blessed}" + (f" (winner: {summary.winner})" if summary.winner else ""), file=out)
    for line in summary.failures:
        print(f"  failed:       {line}", file=out)
    kept = f"none (the last blessed model stays in {config.pipeline.serving_dir})"
    print(f"pushed model:   {summary.pushed_model or kept}", file=out)
    for line in warning_lines(summary, config):
        print(f"warning:        {line}", file=out)
    print(f"metadata store: {config.pipeline.metadata_path}", file=out)
    print(f"outputs:        {config.pipeline.root}", file=out)
    print(f"report:         {_report(config)}", file=out)
    print(f"logs:           {log_path}", file=out)


@entry.config_errors_exit
def main(argv: list[str] | None = None) -> int:
    parser = entry.parser(__doc__, workdir="put data, outputs, metadata and served models under this directory")
    parser.add_argument("--rows", type=int, help="override data.generate.rows")
    parser.add_argument("--no-cache", action="store_true", help="re-run every component")
    parser.add_argument("--expect-push", action="store_true", help="exit 3 unless a model is blessed and pushed")
    parser.add_argument("--verbose", action="store_true", help="stream the JSON logs and the steps' output")
    args = parser.parse_args(argv)
    overrides: dict = {}
    if args.rows:
        overrides = deep_merge(overrides, {"data": {"generate": {"rows": args.rows}}})
    if args.no_cache:
        overrides = deep_merge(overrides, {"pipeline": {"enable_cache": False}})
    config = entry.load(args, overrides, workdir=args.workdir)
    run_id = uuid.uuid4().hex[:12]
    log_path = os.path.join(config.pipeline.root, "logs", f"{run_id}.jsonl")
    logs.setup(config.log_level, path=log_path, stream=args.verbose, pipeline=config.pipeline.name, run_id=run_id,
               entry="local_runner")  # fmt: skip
    with console_to_log(log_path, args.verbose) as (out, err):
        return _run_and_report(config, run_id, log_path, args, out, err)


def _run_and_report(config: Config, run_id: str, log_path: str, args, out: TextIO, err: TextIO) -> int:
    """The run, with its progress lines and then its summary on `out`; a failure is one line on `err`."""
    print(f"run {run_id} of {config.pipeline.name}: one line per component (all logs: {log_path})", file=out)
    try:
        with progress.shown(out) as shown:
            summary = run(config, run_id)
    except run_lock.RunLockedError as e:
        print(f"not started: {e}", file=err)
        return 4
    except ConfigError as e:  # the config against the data (columns it names that the data does not have)
        print(f"config error: {e}", file=err)
        return 2
    except Exception as e:
        logging.exception("run failed")  # the traceback, in the log file
        logging.info("report of the failed run: %s", _report(config))
        print(file=out)
        print(failure_line(e, shown.unfinished), file=err)
        print(f"logs:           {log_path}", file=err)
        return 1
    print_summary(summary, config, log_path, out)
    if args.expect_push and not summary.pushed_model:
        print("run completed but no model was pushed (--expect-push)", file=err)
        return 3
    return 0


SHOWN_STRONG = 3  # one summary line: the strongest few, the rest in the report


def strong_line(strong: tuple[dict, ...], label: str) -> str:
    """The features the screen kept that predict the label very well, strongest first, and what to do."""
    names = [s["column"] for s in sorted(strong, key=lambda s: -s["power"])]
    named = ", ".join(names[:SHOWN_STRONG]) + (
        f" and {len(names) - SHOWN_STRONG} more" if len(names) > SHOWN_STRONG else ""
    )
    return (f"{named} predict{'s' if len(strong) == 1 else ''} {label} very well (alone or in a pair): keep each "
            "only if it is known when you predict, features.exclude otherwise (the report's screening section)")  # fmt: skip


def capabilities_in_use(config: Config) -> dict[str, str]:
    """The capabilities (models/candidate.py) the config asks of the pushed model -> what asks for each. (The
    search and the distilled model are the network's whichever candidate wins.)"""
    wanted = {"attributions": "serving's :explain"}
    if config.trainer.warm_start:
        wanted["warm_start"] = "trainer.warm_start"
    if config.edge is not None:
        wanted["tflite"] = "edge"
    return wanted


def warning_lines(summary, config: Config) -> list[str]:
    """What the user should know of a run that the gates do not stop, one line each: kept features that
    predict the label very well, rows left out, and what the config asks for that the winner cannot do."""
    lines = [strong_line(summary.strong, config.label)] if summary.strong else []
    if summary.rows_without_label:
        lines.append(f"{summary.rows_without_label:,} rows without a label ({config.label}) were left out "
                     f"of the data (ExampleGen)")  # fmt: skip
    winner = next((s for s in summary.leaderboard if s["name"] == summary.winner), None)
    if winner is not None:
        off = {c: why for c, why in capabilities_in_use(config).items() if c not in winner["capabilities"]}
        if off:
            listed = ", ".join(f"{c} ({why})" for c, why in off.items())
            lines.append(f"the winner ({winner['name']}) has no {listed}: off for this model")
    return lines


def leaderboard_lines(standings) -> list[str]:
    """One line per candidate, best first: rank, name, the gating metric, size, latency, and why it lost."""

    def num(v, fmt: str) -> str:
        return "-" if v is None else format(v, fmt)

    lines = []
    for s in standings:
        mark = "winner" if s["winner"] else f"lost: {s['lost_because']}"
        size = "-" if s["size_bytes"] is None else f"{s['size_bytes'] / 1e6:.2f} MB"
        lines.append(f"{num(s['rank'], 'd'):>2} {s['name']:10s} {num(s['value'], '.4f'):>8}  {size:>9}  "
                     f"{num(s['latency_ms_per_row'], '.4f')} ms/row  {mark}")  # fmt: skip
    return lines


if __name__ == "__main__":
    sys.exit(main())
