"""Drill: what a run, a benchmark, a tool and the tests leave behind outside their workdirs.

Each command runs with TMPDIR set to a fresh directory: what well-behaved code puts in a temporary
directory must be gone when it ends (pytest's own `pytest-of-*` excepted: it keeps the last three
sessions on purpose). Beam's `beam-temp-*` directories new in /tmp, and new untracked files in the
checkout, count too.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator

from drills import runs

DRILLS_WORKDIR = os.path.join(runs.REPO, "build", "drills")


def _checkout_paths() -> set[str]:
    """Every file and directory in the checkout (git itself and make drills' own workdir aside)."""
    found = set()
    for directory, dirs, files in os.walk(runs.REPO):
        dirs[:] = [d for d in dirs if d != ".git" and os.path.join(directory, d) != DRILLS_WORKDIR]
        found.update(os.path.join(directory, n) for n in (*dirs, *files))
    return found


def _new(after: set[str], before: set[str]) -> list[str]:
    new = sorted(after - before)
    return [p for p in new if os.path.dirname(p) not in after - before]  # the top of a new tree only


def _beam_temp() -> set[str]:
    return set(glob.glob("/tmp/beam-temp-*"))


def leftovers(name: str, command: list[str] | Callable[[], None], workdir: str, timeout: float = 900) -> dict:
    """Runs `command` (from the checkout, or a function in this process) with its own TMPDIR; what it left
    outside `workdir`."""
    tmpdir = os.path.join(workdir, "tmpdir-" + name.replace(" ", "-"))
    shutil.rmtree(tmpdir, ignore_errors=True)
    os.makedirs(tmpdir)
    before_checkout, before_tmp = _checkout_paths(), _beam_temp()
    start = time.monotonic()
    problems = []
    if callable(command):
        with _tempdir(tmpdir):
            command()
    else:
        done = subprocess.run(command, cwd=runs.REPO, capture_output=True, text=True, timeout=timeout,
                              env=runs.shell_env(TMPDIR=tmpdir))  # fmt: skip
        if done.returncode != 0:
            # stdout's end first: a test run's summary is there, TensorFlow's start-up lines are on stderr
            problems.append(f"exit {done.returncode}: {done.stdout[-600:]} {done.stderr[-200:]}")
    seconds = round(time.monotonic() - start, 1)
    left = sorted(n for n in os.listdir(tmpdir) if not n.startswith("pytest-of-"))
    left += sorted(_beam_temp() - before_tmp)
    left += _new(_checkout_paths(), before_checkout)
    return {"command": name, "seconds": seconds, "left": left, "problems": [f"left {p}" for p in left] + problems}


@contextlib.contextmanager
def _tempdir(path: str) -> Iterator[None]:
    """`path` as this process's temporary directory (and its children's) for the block."""
    saved, saved_env = tempfile.tempdir, os.environ.get("TMPDIR")
    tempfile.tempdir, os.environ["TMPDIR"] = path, path
    try:
        yield
    finally:
        tempfile.tempdir = saved
        if saved_env is None:
            del os.environ["TMPDIR"]
        else:
            os.environ["TMPDIR"] = saved_env


def commands(workdir: str, full: bool) -> dict[str, list[str]]:
    """What is checked: a tool (make schema) always; with `full`, a pipeline run, a benchmark and the unit tests."""
    py = sys.executable
    config = runs.write_config(os.path.join(workdir, "tool"))
    checked = {"make schema": [py, "-m", "tables.schema_proposal", "--config", config]}
    if full:
        run_config = runs.write_config(os.path.join(workdir, "run"))
        checked["make run"] = [py, "-m", "pipelines.local_runner", "--config", run_config]
        checked["make bench (1,000 rows)"] = [py, "-m", "benchmarks.pipeline_timing", "--config", run_config,
                                              "--rows", "1000", "--out", os.path.join(workdir, "bench.json")]  # fmt: skip
        checked["pytest -m unit"] = [py, "-m", "pytest", "-q", "-m", "unit", "-p", "no:cacheprovider",
                                     "--basetemp", os.path.join(workdir, "pytest"), "tests/unit"]  # fmt: skip
    return checked


def run_drill(workdir: str, full: bool = True) -> dict:
    results = [leftovers(name, command, workdir) for name, command in commands(workdir, full).items()]
    problems = [f"{r['command']}: {p}" for r in results for p in r["problems"]]
    return {
        "drill": "housekeeping", "checked": results, "problems": problems, "ok": not problems,
        "happened": ", ".join(f"{r['command']} {r['seconds']:.0f} s" for r in results) + " with their own TMPDIR",
        "lost": "nothing left behind" if not problems else "; ".join(problems)[:300],
    }  # fmt: skip
