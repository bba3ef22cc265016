"""Drill: a second run starts on the workdir and metadata store of a run in progress.

The second run must stop at once, before touching the store, with a message naming the first run's
pid; the first must complete; the store must hold nothing a run could misread afterwards.
`holder_in_process` has this process hold the lock in place of a first run (a fast check).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time

from drills import runs
from drills.checks import store_problems
from pipelines import run_lock


def _second_run(config_path: str, timeout: float = 120, view: tuple[str, str] | None = None) -> runs.Outcome:
    start = time.monotonic()
    second = runs.start_pipeline(config_path, view=view)
    try:
        output, _ = second.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(second.pid, signal.SIGKILL)
        output, _ = second.communicate()
    return runs.Outcome(second.returncode, output, round(time.monotonic() - start, 1))


def second_run_stops(config_path: str, first_pid: int, view: tuple[str, str] | None = None,
                     local=lambda p: p) -> dict:  # fmt: skip
    """Once the run `first_pid` holds the lock, a second run on the same config (and view); how it ended."""
    config = runs.load(config_path)
    lock = local(run_lock.lock_paths(config.pipeline.root, config.pipeline.metadata_path)[0])
    runs.wait_for(lambda: run_lock.holder(lock).get("pid") == first_pid, 120, "the first run taking the lock")
    second = _second_run(config_path, view=view)
    message = next((line for line in second.output.splitlines() if "held by pid" in line), "")
    return {"second_exit": second.returncode, "second_s": second.seconds, "message": message[:300],
            "problems": second_run_problems(second, first_pid)}  # fmt: skip


def second_run_problems(second: runs.Outcome, holder_pid: int) -> list[str]:
    """The second run must stop (exit 4, the local runner's "another run holds the lock") naming the holder."""
    if second.returncode == 4 and f"held by pid {holder_pid}" in second.output:
        return []
    return [f"the second run did not stop naming pid {holder_pid} (exit {second.returncode}): {second.output[-300:]}"]


def run_drill(config_path: str, holder_in_process: bool = False) -> dict:
    config = runs.load(config_path)
    root, metadata_path = config.pipeline.root, config.pipeline.metadata_path
    lock = run_lock.lock_paths(root, metadata_path)[0]
    if holder_in_process:
        with run_lock.held(root, metadata_path, "drill"):
            holder_pid = os.getpid()
            second = _second_run(config_path)
        first_rc = 0
    else:
        first = runs.start_pipeline(config_path)
        runs.wait_for(lambda: run_lock.holder(lock).get("pid") == first.pid, 120, "the first run taking the lock")
        holder_pid = first.pid
        second = _second_run(config_path)
        first_output, _ = first.communicate(timeout=600)
        first_rc = first.returncode
    problems = second_run_problems(second, holder_pid)
    if first_rc != 0:
        problems.append(f"the first run failed (exit {first_rc}): {first_output[-300:]}")
    if os.path.exists(metadata_path):
        problems += store_problems(metadata_path, config.pipeline.name)
    message = next((line for line in second.output.splitlines() if "held by pid" in line), "")
    return {
        "drill": "two runs at once", "second_exit": second.returncode, "second_s": second.seconds,
        "message": message[:300], "first_exit": first_rc, "problems": problems, "ok": not problems,
        "happened": f"the second run stopped in {second.seconds:.0f} s (exit {second.returncode}) naming pid "
                    f"{holder_pid}; the first {'completed' if first_rc == 0 else 'FAILED'}",
        "lost": "nothing" if not problems else "; ".join(problems)[:300],
    }  # fmt: skip
