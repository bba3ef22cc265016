"""What the reliability drills share: a small pipeline config under one workdir, the local runner as a
subprocess of its own process group, and a look at ML Metadata after a run.

A drill's config is `<workdir>/configs/drill.yaml`, extending the repository's taxi.yaml: relative
paths in it resolve against the workdir, so everything a run writes stays under the workdir.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import yaml

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TAXI = os.path.join(REPO, "configs", "taxi.yaml")

# every component runs, on few rows with a short search, and the model is blessed and pushed
SMALL = {
    "trainer": {"train_steps": 120, "eval_steps": 10, "batch_size": 64},
    "tuning": {"max_trials": 1, "trial_steps": 40, "learning_rate": [0.003, 0.006], "hidden_units": [[32]]},
    "framing": {"success_level": 0.6},
    "evaluation": {"max_regression": 0.05, "slice_lower_bound": None,
                   "baselines": {"margin": -0.1}},
}  # fmt: skip


def write_config(workdir: str, rows: int = 1500, seed: int = 1, overrides: dict | None = None) -> str:
    """A small drill config under `workdir` (data, pipeline root, metadata, serving and logs inside it); its path."""
    from settings.yaml_files import deep_merge, workdir_overrides

    workdir = os.path.abspath(workdir)
    raw = deep_merge(
        deep_merge(workdir_overrides(workdir), SMALL), {"data": {"generate": {"rows": rows, "seed": seed}}}
    )
    return write_yaml(workdir, deep_merge(raw, overrides or {}))


def write_yaml(directory: str, overrides: dict) -> str:
    """`<directory>/configs/drill.yaml`: taxi.yaml with `overrides` (the curated schema named by its absolute
    path: relative paths resolve against `directory`); its path."""
    from settings.yaml_files import deep_merge

    raw = deep_merge({"data": {"schema": os.path.join(REPO, "schemas", "taxi", "schema.pbtxt")}}, overrides)
    path = os.path.join(directory, "configs", "drill.yaml")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        yaml.safe_dump({"extends": TAXI, **raw}, f, sort_keys=False)
    return path


def load(config_path: str):
    from settings.config import load_config

    return load_config(config_path)


@dataclass
class Outcome:
    returncode: int
    output: str
    seconds: float
    killed_at: str | None = None  # the component running when the drill sent SIGKILL


_STARTED = re.compile(r"^\s+(\S+)\s+started$", re.MULTILINE)


def shell_env(**extra: str) -> dict[str, str]:
    """The environment a command gets from a user's shell, with the checkout importable: this process's own
    imports set TF_USE_LEGACY_KERAS (TensorFlow Transform does), which a shell does not have and which
    changes how the pipeline's processes load Keras."""
    env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    return {**env, "PYTHONPATH": REPO, **extra}


def outside_make(env: dict[str, str], *also: str) -> dict[str, str]:
    """`env` without the variables a running make sets for the commands it starts (`make test` runs the suite), as
    a user's shell has it; `also`: more names to drop."""
    return {k: v for k, v in env.items() if k not in ("MAKELEVEL", "MAKEFLAGS", "MFLAGS", *also)}


def start_pipeline(config_path: str, env: dict | None = None, view: tuple[str, str] | None = None) -> subprocess.Popen:
    """`python -m pipelines.local_runner --config config_path` in its own process group, output on a pipe.
    `view` (copy, path): the run sees directory `copy` at `path` (a bind mount in its own mount namespace),
    so that a copy of a finished workdir is run again with every path, and so the cache, unchanged."""
    command = [sys.executable, "-m", "pipelines.local_runner", "--config", config_path]
    if view:
        # mounts private to the namespace: in a chroot, / is no mount point (and devenv's mounts are private)
        script = 'mount --make-rprivate / 2>/dev/null; mount --bind "$1" "$2" && shift 2 && exec "$@"'
        command = ["unshare", "--mount", "--propagation", "unchanged", "sh", "-c", script, "drill", *view, *command]
    return subprocess.Popen(
        command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
        env=shell_env(**(env or {})),
    )  # fmt: skip


def run_pipeline(config_path: str, kill_during: str | None = None, after_start: float = 0.0,
                 timeout: float = 600, env: dict | None = None, view: tuple[str, str] | None = None,
                 on_start: Callable[[int], None] | None = None, before_kill: Callable[[], None] | None = None,
                 ) -> Outcome:  # fmt: skip
    """The local runner to its end (see start_pipeline). With `kill_during`, its process group gets SIGKILL
    `after_start` seconds after that component's progress line says it started. `on_start` gets its pid;
    `before_kill` is called (and waited for) just before the kill."""
    start = time.monotonic()
    proc = start_pipeline(config_path, env, view)
    if on_start:
        on_start(proc.pid)
    watchdog = threading.Timer(timeout, os.killpg, (proc.pid, signal.SIGKILL))
    watchdog.start()
    lines: list[str] = []
    killed_at = None
    try:
        for line in proc.stdout:
            lines.append(line)
            if kill_during and (m := _STARTED.match(line)) and m.group(1) == kill_during:
                time.sleep(after_start)
                if before_kill:
                    before_kill()
                os.killpg(proc.pid, signal.SIGKILL)
                killed_at = kill_during
                break
        proc.wait(timeout=60)
    finally:
        watchdog.cancel()
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        proc.stdout.close()
    if time.monotonic() - start >= timeout:
        raise TimeoutError(f"the run took over {timeout} s:\n{''.join(lines[-20:])}")
    return Outcome(proc.returncode, "".join(lines), round(time.monotonic() - start, 1), killed_at)


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} did not happen within {timeout} s")
        time.sleep(0.05)


def request_rows(n: int = 300, seed: int = 11) -> list[dict]:
    """Rows as a client sends them (no label, no outcome, no identifier)."""
    from datagen import taxi
    from serving import instances

    return instances.from_frame(taxi.generate(n, seed=seed).drop(columns=[*taxi.OUTCOMES, "trip_id"]))


def start_server(config, serving_dir: str, log_path: str | None, poll_seconds: float = 0.1):
    """The prediction server on a free loopback port over `serving_dir`, logging to `log_path`."""
    from serving import server

    settings = config.serving.replace(log_path=log_path, poll_seconds=poll_seconds)
    return server.build(config.replace(serving=settings), host="127.0.0.1", port=0, serving_dir=serving_dir).start()
