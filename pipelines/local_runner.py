"""Runs the pipeline on this machine: independent components at once, one per core (pipelines/parallel_runner.py;
`pipeline.parallel_components: 1` is TFX's LocalDagRunner), Beam's local runner, SQLite ML Metadata.

python -m pipelines.local_runner --config configs/taxi.yaml

One run at a time per pipeline root and metadata store (pipelines/run_lock.py). Exit codes: 1 the run
failed, 2 a config error, 3 no model pushed (with --expect-push), 4 another run holds the lock.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
import uuid

from pipelines import component_processes, progress, run_lock
from settings import logs
from settings.config import Config, ConfigError, load_config
from settings.yaml_files import deep_merge, workdir_overrides
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
def quiet_stdout(log_path: str, verbose: bool):
    """What the steps print (training epochs, events) goes to the log file unless `verbose`."""
    if verbose:
        yield
        return
    with open(log_path, "a", encoding="utf-8") as log, contextlib.redirect_stdout(log):
        yield


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="configs/taxi.yaml")
    parser.add_argument("--rows", type=int, help="override data.generate.rows")
    parser.add_argument("--no-cache", action="store_true", help="re-run every component")
    parser.add_argument("--workdir", help="put data, outputs, metadata and served models under this directory")
    parser.add_argument("--expect-push", action="store_true", help="exit 3 unless a model is blessed and pushed")
    parser.add_argument("--verbose", action="store_true", help="stream the JSON logs and the steps' output")
    args = parser.parse_args(argv)
    overrides: dict = {}
    if args.workdir:
        overrides = workdir_overrides(os.path.abspath(args.workdir))
    if args.rows:
        overrides = deep_merge(overrides, {"data": {"generate": {"rows": args.rows}}})
    if args.no_cache:
        overrides = deep_merge(overrides, {"pipeline": {"enable_cache": False}})
    try:
        config = load_config(args.config, overrides)
    except ConfigError as e:
        print(f"config error: {e}", file=sys.stderr)
        return 2
    run_id = uuid.uuid4().hex[:12]
    log_path = os.path.join(config.pipeline.root, "logs", f"{run_id}.jsonl")
    logs.setup(config.log_level, path=log_path, stream=args.verbose, pipeline=config.pipeline.name, run_id=run_id,
               entry="local_runner")  # fmt: skip
    print(f"run {run_id} of {config.pipeline.name}: one line per component (all logs: {log_path})", flush=True)
    failed = None
    try:
        with progress.shown(), quiet_stdout(log_path, args.verbose):
            summary = run(config, run_id)
    except run_lock.RunLockedError as e:
        print(f"not started: {e}", file=sys.stderr)
        return 4
    except ConfigError as e:  # the config against the data (columns it names that the data does not have)
        print(f"config error: {e}", file=sys.stderr)
        return 2
    except Exception as e:  # the summary below still says where things are
        logging.exception("run failed")  # the traceback, in the log file the summary names
        failed = e
        summary = latest_summary(config)
    print()
    print(f"run:            {summary.run_id}")
    for c in summary.components:
        print(f"  {c.component:34s} {c.state:9s} {c.seconds:7.1f} s")
    print(f"blessed:        {summary.blessed}")
    for line in summary.failures:
        print(f"  failed:       {line}")
    print(
        f"pushed model:   {summary.pushed_model or 'none (the last blessed model stays in ' + config.pipeline.serving_dir + ')'}"
    )
    print(f"metadata store: {config.pipeline.metadata_path}")
    print(f"outputs:        {config.pipeline.root}")
    print(f"report:         {_report(config)}")
    print(f"logs:           {log_path}")
    if failed:
        print(f"run failed: {failed}", file=sys.stderr)
        return 1
    if args.expect_push and not summary.pushed_model:
        print("run completed but no model was pushed (--expect-push)", file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
