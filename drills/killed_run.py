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
import threading

from drills import concurrent_runs, runs
from drills.checks import served, served_problems, store_problems

# component -> seconds after its start line: inside its work, not its first instant
KILL_POINTS = {"CsvExampleGen": 0.5, "Transform": 4.0, "Trainer": 2.0, "Leaderboard": 2.0, "Pusher": 0.0}
ALWAYS_RUN = {"latest_blessed_model_resolver", "last_accepted_statistics_resolver", "SpanDriftCheck"}
# once the Leaderboard has ranked a model the gate blesses, it is the re-run's baseline:
# these run again (as on any re-run after a blessing: see the e2e caching test)
AFTER_A_BLESSING = {"Leaderboard", "BlessingGate", "ServingInfraValidator", "Pusher"}
_DONE = re.compile(r"^\s+(\S+)\s+done\s", re.MULTILINE)


def kill_and_rerun(config_path: str, component: str, after_start: float, view: tuple[str, str] | None = None,
                   local=lambda p: p, second_run: bool = False, tmpdir: str | None = None) -> dict:  # fmt: skip
    """One kill point: the run killed during `component`, checked, run again, checked. `view` and `local`
    run a copied workdir in place of the original (see runs.run_pipeline). With `second_run`, another run
    is started on the same workdir while the first one runs, and must stop (concurrent_runs). With `tmpdir`,
    the re-run's TMPDIR, which must be empty when it ends."""
    from metadata import mlmd
    from metadata.run_summary import latest_run

    config = runs.load(config_path)
    serving_dir, metadata_path = local(config.pipeline.serving_dir), local(config.pipeline.metadata_path)
    before = served(serving_dir)
    second: dict = {}
    threads: list[threading.Thread] = []

    def start_second(pid: int) -> None:
        target = lambda: second.update(concurrent_runs.second_run_stops(config_path, pid, view, local))  # noqa: E731
        threads.append(threading.Thread(target=target, daemon=True))
        threads[0].start()

    killed = runs.run_pipeline(config_path, kill_during=component, after_start=after_start, view=view,
                               on_start=start_second if second_run else None,
                               before_kill=lambda: [t.join(180) for t in threads])  # fmt: skip
    finished = set(_DONE.findall(killed.output)) - ALWAYS_RUN
    after_kill = served(serving_dir)
    added = [v for v in after_kill if v not in before]
    if added or "Leaderboard" in finished:
        finished -= AFTER_A_BLESSING
    kill_problems = served_problems(serving_dir, local)
    kill_problems += [f"after the kill: {p}" for p in store_problems(metadata_path, config.pipeline.name, local, True)]
    if killed.killed_at is None:
        kill_problems.append(f"{component} never started (exit {killed.returncode}): {killed.output[-500:]}")
    kill_problems += versions_problems(before, after_kill)
    if tmpdir:
        os.makedirs(tmpdir, exist_ok=True)
    rerun = runs.run_pipeline(config_path, view=view, env={"TMPDIR": tmpdir} if tmpdir else None)
    left = sorted(os.listdir(tmpdir)) if tmpdir else []
    summary = latest_run(mlmd.open_store(metadata_path), config.pipeline.name)
    states = {c.component: c.state for c in summary.components}
    if second_run and not second:
        kill_problems.append("the second run did not end before the first was killed")
    problems = kill_problems + second.get("problems", []) + store_problems(metadata_path, config.pipeline.name, local)
    if rerun.returncode != 0 or not all(s in ("COMPLETE", "CACHED") for s in states.values()):
        problems.append(
            f"the re-run did not complete (exit {rerun.returncode}): {states}; its output ends: {rerun.output[-3000:]}"
        )
    problems += cache_problems(finished, states)
    problems += served_problems(serving_dir, local) + [f"the re-run left {n} in its TMPDIR" for n in left]
    newest = served(serving_dir)[-1:] or [None]
    expected = os.path.basename(summary.pushed_model) if summary.pushed_model else (after_kill[-1:] or [None])[0]
    if newest[0] != expected:
        problems.append(f"serving {newest[0]}, but the last blessed and pushed model is {expected}")
    return {
        "drill": f"killed during {component}", "killed_after_s": killed.seconds, "rerun_s": rerun.seconds,
        "cached_on_rerun": sorted(c for c, s in states.items() if s == "CACHED"), "finished_before_kill": sorted(finished),
        "served_before": before, "served_after": served(serving_dir), "pushed_on_rerun": summary.pushed_model,
        "second_run": second, "problems": problems, "ok": not problems,
        "happened": f"killed {killed.seconds:.0f} s in; re-run completed in {rerun.seconds:.0f} s, "
                    f"{len(finished)} finished components from the cache; serving {newest[0]}",
        "lost": "nothing" if not problems else "; ".join(problems)[:300],
    }  # fmt: skip


def versions_problems(before: list[str], after_kill: list[str]) -> list[str]:
    """A kill may leave the versions served before, or those and one whole new one: nothing gone or replaced."""
    added = [v for v in after_kill if v not in before]
    if after_kill[: len(before)] != before or len(added) > 1:
        return [f"served versions went from {before} to {after_kill}"]
    return []


def cache_problems(finished: set[str], states: dict[str, str]) -> list[str]:
    """What the killed run finished, the re-run must take from the cache (`states`: the re-run's component states)."""
    not_cached = sorted(c for c in finished if states.get(c) != "CACHED")
    return [f"finished before the kill but not taken from the cache: {not_cached}"] if not_cached else []


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
