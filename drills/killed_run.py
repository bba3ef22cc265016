"""Drill: kill -9 the local run while a component runs, then run it again.

A clean run pushes a model to protect. Then, for each kill point, new data (a new seed) makes every
component run, and the run's process group gets SIGKILL while that component runs. After the kill
the served versions must be the ones before (or those plus a whole new one); the re-run must
complete, take what the killed run finished from the cache, read only artifacts of finished
executions, and leave no execution of the pipeline NEW or RUNNING in ML Metadata.
"""

from __future__ import annotations

import os
import re

from ml_metadata.proto import metadata_store_pb2

from drills import runs

# component -> seconds after its start line: inside its work, not its first instant
KILL_POINTS = {"CsvExampleGen": 0.5, "Transform": 4.0, "Trainer": 2.0, "Evaluator": 2.0, "Pusher": 0.0}
ALWAYS_RUN = {"latest_blessed_model_resolver", "last_accepted_statistics_resolver", "SpanDriftCheck"}
FINISHED = (metadata_store_pb2.Execution.COMPLETE, metadata_store_pb2.Execution.CACHED)
ACTIVE = (metadata_store_pb2.Execution.NEW, metadata_store_pb2.Execution.RUNNING)
_DONE = re.compile(r"^\s+(\S+)\s+done\s", re.MULTILINE)


def store_problems(metadata_path: str, pipeline_name: str, local=lambda p: p) -> list[str]:
    """What in ML Metadata a run could misread: a finished execution with an output that is not LIVE or not
    on disk, a LIVE artifact that no finished execution produced, an execution still NEW or RUNNING.
    `local` maps a recorded path to where it is now (a copied workdir)."""
    from metadata import mlmd

    store = mlmd.open_store(metadata_path)
    problems = []
    states = {e.id: e.last_known_state for e in store.get_executions()}
    for execution_id, state in states.items():
        if mlmd.node_id(store, execution_id, pipeline_name) is None:
            continue
        name = f"execution {execution_id} ({mlmd.node_id(store, execution_id, pipeline_name)})"
        if state in ACTIVE:
            problems.append(f"{name} is still {metadata_store_pb2.Execution.State.Name(state)}")
        if state in FINISHED:
            for artifact in mlmd.outputs(store, execution_id):
                if artifact.state != metadata_store_pb2.Artifact.LIVE or not os.path.exists(local(artifact.uri)):
                    problems.append(f"{name} finished but its output {artifact.uri} is missing or not LIVE")
    for artifact in store.get_artifacts():
        producer = mlmd.producer(store, artifact.id)
        if artifact.state == metadata_store_pb2.Artifact.LIVE and producer and states.get(producer) not in FINISHED:
            problems.append(f"artifact {artifact.id} ({artifact.uri}) is LIVE but execution {producer} never finished")
    return problems


def served_problems(serving_dir: str, local=lambda p: p) -> list[str]:
    """A version directory that is not a whole copy of the model it names (its source marker)."""
    from components.idempotent_pusher import SOURCE_FILE

    problems = []
    for version in served(serving_dir):
        path = os.path.join(serving_dir, version)
        marker = os.path.join(path, "assets.extra", SOURCE_FILE)
        if not os.path.exists(marker):
            problems.append(f"version {version} has no source marker: a partial push")
            continue
        with open(marker) as f:
            source = local(f.read().strip())
        if os.path.isdir(os.path.join(source, "Format-Serving")):  # a Trainer's Model artifact
            source = os.path.join(source, "Format-Serving")
        if _tree(path, skip=SOURCE_FILE) != _tree(source, skip=SOURCE_FILE):
            problems.append(f"version {version} differs from its source {source}: a partial copy")
    return problems


def served(serving_dir: str) -> list[str]:
    """What a model server sees: the version directories (names that are numbers)."""
    names = os.listdir(serving_dir) if os.path.isdir(serving_dir) else []
    return sorted((n for n in names if n.isdigit()), key=int)


def _tree(root: str, skip: str) -> dict[str, int]:
    return {os.path.relpath(os.path.join(d, n), root): os.path.getsize(os.path.join(d, n))
            for d, _, names in os.walk(root) for n in names if n != skip}  # fmt: skip


def kill_and_rerun(config_path: str, component: str, after_start: float, view: tuple[str, str] | None = None,
                   local=lambda p: p) -> dict:  # fmt: skip
    """One kill point: the run killed during `component`, checked, run again, checked. `view` and `local`
    run a copied workdir in place of the original (see runs.run_pipeline)."""
    from metadata import mlmd
    from metadata.run_summary import latest_run

    config = runs.load(config_path)
    serving_dir, metadata_path = local(config.pipeline.serving_dir), local(config.pipeline.metadata_path)
    before = served(serving_dir)
    killed = runs.run_pipeline(config_path, kill_during=component, after_start=after_start, view=view)
    finished = set(_DONE.findall(killed.output)) - ALWAYS_RUN
    after_kill = served(serving_dir)
    added = [v for v in after_kill if v not in before]
    kill_problems = served_problems(serving_dir, local)
    if killed.killed_at is None:
        kill_problems.append(f"{component} never started (exit {killed.returncode}): {killed.output[-500:]}")
    if after_kill[: len(before)] != before or len(added) > 1:
        kill_problems.append(f"served versions went from {before} to {after_kill}")
    rerun = runs.run_pipeline(config_path, view=view)
    summary = latest_run(mlmd.open_store(metadata_path), config.pipeline.name)
    states = {c.component: c.state for c in summary.components}
    not_cached = sorted(c for c in finished if states.get(c) != "CACHED")
    problems = kill_problems + store_problems(metadata_path, config.pipeline.name, local)
    if rerun.returncode != 0 or not all(s in ("COMPLETE", "CACHED") for s in states.values()):
        problems.append(f"the re-run did not complete (exit {rerun.returncode}): {states}")
    if not_cached:
        problems.append(f"finished before the kill but not taken from the cache: {not_cached}")
    problems += served_problems(serving_dir, local)
    newest = served(serving_dir)[-1:] or [None]
    expected = os.path.basename(summary.pushed_model) if summary.pushed_model else (after_kill[-1:] or [None])[0]
    if newest[0] != expected:
        problems.append(f"serving {newest[0]}, but the last blessed and pushed model is {expected}")
    return {
        "drill": f"killed during {component}", "killed_after_s": killed.seconds, "rerun_s": rerun.seconds,
        "cached_on_rerun": sorted(c for c, s in states.items() if s == "CACHED"), "finished_before_kill": sorted(finished),
        "served_before": before, "served_after": served(serving_dir), "pushed_on_rerun": summary.pushed_model,
        "problems": problems, "ok": not problems,
        "happened": f"killed {killed.seconds:.0f} s in; re-run completed in {rerun.seconds:.0f} s, "
                    f"{len(finished)} finished components from the cache; serving {newest[0]}",
        "lost": "nothing" if not problems else "; ".join(problems)[:300],
    }  # fmt: skip


def run_drill(workdir: str, points: dict[str, float] = KILL_POINTS) -> list[dict]:
    """A clean run that pushes, then each kill point on new data in the same workdir."""
    config_path = runs.write_config(workdir, seed=1)
    clean = runs.run_pipeline(config_path)
    if clean.returncode != 0:
        raise RuntimeError(f"the clean run failed:\n{clean.output[-2000:]}")
    results = []
    for i, (component, after_start) in enumerate(points.items()):
        config_path = runs.write_config(workdir, seed=10 + i)
        results.append(kill_and_rerun(config_path, component, after_start))
    return results
