"""The parallel DAG runner's scheduling: each node once, after its upstream nodes, at most `workers` at once,
the longest chain first; a failure stops the run with the failing node's own error; a node's process dies
with the runner."""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from pipelines.component_processes import ComponentFailedError, launch_order, run_nodes
from tests.conftest import REPO

pytestmark = pytest.mark.unit


class Recorder:
    """A `launch` that records each node's start, end and process (it runs in a process of its own), sleeps
    (`seconds`, or `slow`'s seconds for a node there), and fails where `fail` says how (picklable: it crosses to
    that process)."""

    def __init__(self, directory: Path, seconds: float = 0.0, fail: dict | None = None, slow: dict | None = None):
        self.directory, self.seconds, self.fail, self.slow = directory, seconds, fail or {}, slow or {}

    def __call__(self, node_id: str) -> None:
        path = self.directory / f"{node_id}.json"
        path.write_text(json.dumps({"start": time.monotonic(), "pid": os.getpid(), "env": os.environ.get("MARK")}))
        time.sleep(self.slow.get(node_id, self.seconds))
        if node_id in self.fail:
            self.fail[node_id]()
        path.write_text(json.dumps({**json.loads(path.read_text()), "end": time.monotonic()}))


SHARED_LOCK = threading.Lock()  # held by a thread of the runner's process in one test


class TakesTheLock:
    def __call__(self, node_id: str) -> None:
        if not SHARED_LOCK.acquire(timeout=5):
            raise TimeoutError("the lock a thread of the runner held at the start is held here too")
        SHARED_LOCK.release()


class Writes:
    """Writes a line to stdout and one to stderr from a node's process, below Python as a library's C code would."""

    def __call__(self, node_id: str) -> None:
        print(f"{node_id}: print", flush=True)
        os.write(2, f"{node_id}: stderr\n".encode())


class KerasOfTf:
    """Records which Keras `tf.keras` is in a node's process."""

    def __init__(self, path: Path):
        self.path = path

    def __call__(self, node_id: str) -> None:
        import tensorflow as tf

        self.path.write_text(tf.keras.models.load_model.__module__)


def records(tmp_path) -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in tmp_path.glob("*.json")}


class UnpicklableError(Exception):
    def __reduce__(self):
        raise TypeError("no")


def bad_value():
    raise ValueError("column 'fare' has 12 negative values")


def unpicklable():
    raise UnpicklableError("the store is read-only")


def killed():
    os.kill(os.getpid(), signal.SIGKILL)


DAG = {"gen": [], "stats": ["gen"], "transform": ["stats"], "tuner": ["transform"], "trainer": ["tuner"],
       "linear": ["transform"], "evaluator": ["trainer"], "versus": ["trainer", "linear"], "pusher": ["versus"]}  # fmt: skip


def test_every_node_runs_once_in_its_own_process_after_its_upstream_nodes_with_independent_ones_at_once(
    tmp_path, monkeypatch
):
    monkeypatch.setenv("MARK", "set by the runner")
    run_nodes(DAG, Recorder(tmp_path, seconds=0.6), workers=2)
    ran = records(tmp_path)
    assert set(ran) == set(DAG)
    assert len({r["pid"] for r in ran.values()} | {os.getpid()}) == len(DAG) + 1
    assert {r["env"] for r in ran.values()} == {"set by the runner"}  # the runner's environment, as it is now
    for node, ups in DAG.items():
        for up in ups:
            assert ran[up]["end"] <= ran[node]["start"], f"{node} started before {up} ended"
    # at most two at once, and two at once where the DAG allows it (linear beside the tuner or the trainer)
    events = sorted([(r["start"], 1) for r in ran.values()] + [(r["end"], -1) for r in ran.values()])
    running = [sum(d for _, d in events[: i + 1]) for i in range(len(events))]
    assert max(running) == 2
    assert ran["linear"]["start"] < min(ran["tuner"]["end"], ran["trainer"]["end"])


def test_a_lock_a_thread_of_the_runner_holds_is_not_held_in_a_nodes_process():
    """What a fork of a runner that has run TensorFlow or Beam would inherit (a lock held by one of its threads,
    for good: the thread is not in the child), and hang on."""
    release = threading.Event()
    holder = threading.Thread(target=lambda: SHARED_LOCK.acquire() and release.wait(60) and SHARED_LOCK.release())
    holder.start()
    try:
        time.sleep(0.1)
        assert SHARED_LOCK.locked()
        run_nodes({"a": [], "b": ["a"]}, TakesTheLock(), workers=2)
    finally:
        release.set()
        holder.join()


def test_a_nodes_process_has_the_libraries_as_the_pipelines_definition_leaves_them(tmp_path):
    """As in a LocalDagRunner run, which imports the definition first: there `tf.keras` is Keras 3 and TFMA scores
    the models through their signatures (with tf_keras imported first, TFMA takes its Keras path). The
    runner here starts its fork server before its own imports, as `make run` does (in a process of its own: a
    unit-only session starts no fork server before its modules' imports)."""
    env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}  # as a shell starts it
    script = f"""
import sys, pathlib
sys.path.insert(0, {str(REPO)!r})
from pipelines import component_processes
component_processes.start()
from tests.unit.test_parallel_runner import KerasOfTf
component_processes.run_nodes({{"a": []}}, KerasOfTf(pathlib.Path({str(tmp_path / "keras")!r})), workers=2)
"""
    subprocess.run([sys.executable, "-c", script], cwd=REPO, env=env, check=True, timeout=300)
    probe = "import pipelines.pipeline, tensorflow as tf; print(tf.keras.models.load_model.__module__)"
    fresh = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, check=True, env=env)
    assert (tmp_path / "keras").read_text() == fresh.stdout.strip() == "keras.src.saving.saving_api"


def test_a_nodes_output_goes_where_the_runners_goes_now(capfd):
    """Not to the files the fork server started with (the session's own, before pytest captured this test)."""
    run_nodes({"a": [], "b": ["a"]}, Writes(), workers=2)
    out, err = capfd.readouterr()
    assert out.splitlines() == ["a: print", "b: print"]
    assert {"a: stderr", "b: stderr"} <= set(err.splitlines())


def test_one_worker_runs_the_longest_chain_first_and_ties_in_the_pipelines_order(tmp_path):
    upstream = {"a": [], "short": ["a"], "long1": ["a"], "long2": ["long1"], "long3": ["long2"]}
    assert launch_order({k: set(v) for k, v in upstream.items()}) == {"a": 4, "short": 1, "long1": 3, "long2": 2,
                                                                       "long3": 1}  # fmt: skip
    run_nodes(upstream, Recorder(tmp_path), workers=1)
    ran = records(tmp_path)
    assert sorted(ran, key=lambda n: ran[n]["start"]) == ["a", "long1", "long2", "short", "long3"]


def test_a_failure_stops_the_run_with_the_nodes_own_error_and_lets_the_running_one_finish(tmp_path):
    dag = {"gen": [], "gate": ["gen"], "slow": ["gen"], "after_gate": ["gate"], "after_slow": ["slow"]}
    launch = Recorder(tmp_path, seconds=0.3, fail={"gate": bad_value}, slow={"slow": 2.0})
    with pytest.raises(ValueError, match="column 'fare' has 12 negative values"):
        run_nodes(dag, launch, workers=2)
    ran = records(tmp_path)
    assert "end" in ran["slow"]  # running when the gate failed: finished, recorded
    assert "after_gate" not in ran and "after_slow" not in ran  # nothing new started after the failure


def test_a_node_whose_process_dies_or_whose_error_cannot_travel_is_named(tmp_path):
    with pytest.raises(ComponentFailedError, match="UnpicklableError: the store is read-only"):
        run_nodes({"a": []}, Recorder(tmp_path, fail={"a": unpicklable}), workers=2)
    with pytest.raises(ComponentFailedError, match=r"component b's process ended \(signal 9\)"):
        run_nodes({"b": []}, Recorder(tmp_path, fail={"b": killed}), workers=2)


def test_a_nodes_process_dies_with_the_runner(tmp_path):
    script = f"""
import sys, time
sys.path.insert(0, {str(REPO)!r})
import pathlib
from tests.unit.test_parallel_runner import Recorder
from pipelines import component_processes
component_processes.start(())  # no preload: the nodes here import nothing of TFX
component_processes.run_nodes({{"long": []}}, Recorder(pathlib.Path({str(tmp_path)!r}), seconds=120), workers=2)
"""
    own_tmp = tmp_path / "tmp"  # a killed runner cannot remove its fork server's socket directory
    own_tmp.mkdir()
    runner = subprocess.Popen([sys.executable, "-c", script], cwd=REPO, env={**os.environ, "TMPDIR": str(own_tmp)})
    try:
        deadline = time.monotonic() + 60
        while not (tmp_path / "long.json").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        child = json.loads((tmp_path / "long.json").read_text())["pid"]
        runner.kill()  # the runner alone, not its process group (nor the fork server it started)
        runner.wait(10)
        deadline = time.monotonic() + 10
        while _alive(child) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _alive(child)
    finally:
        runner.kill()


def test_nodes_run_under_a_temporary_directory_too_long_for_a_socket_path(tmp_path):
    """The fork server's socket is made under TMPDIR, and a Unix socket's path holds at most 107 bytes (a test's
    own TMPDIR in pytest's tree is longer); the run starts and its nodes run."""
    long = tmp_path / ("t" * 60) / ("d" * 60)
    long.mkdir(parents=True)
    script = f"""
import sys, pathlib
sys.path.insert(0, {str(REPO)!r})
from tests.unit.test_parallel_runner import Recorder
from pipelines import component_processes
component_processes.start(())
component_processes.run_nodes({{"a": [], "b": ["a"]}}, Recorder(pathlib.Path({str(tmp_path)!r})), workers=2)
"""
    subprocess.run([sys.executable, "-c", script], cwd=REPO, env={**os.environ, "TMPDIR": str(long)}, check=True,
                   timeout=120)  # fmt: skip
    assert set(records(tmp_path)) == {"a", "b"}
    assert os.listdir(long) == []  # nothing left under TMPDIR


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


def test_workers_must_be_positive():
    from pipelines.parallel_runner import ParallelDagRunner

    with pytest.raises(ValueError, match="workers must be at least 1, got 0"):
        ParallelDagRunner(0)
    with pytest.raises(ValueError, match="workers must be at least 1, got 0"):
        run_nodes({"a": []}, Recorder(Path(".")), workers=0)


def test_the_config_chooses_the_runner(taxi_config_path):
    from tfx.orchestration.local.local_dag_runner import LocalDagRunner

    from pipelines.component_processes import default_workers
    from pipelines.local_runner import dag_runner
    from pipelines.parallel_runner import ParallelDagRunner  # imports TFX: not at the top, which scripts import
    from settings.config import load_config

    one = dag_runner(load_config(taxi_config_path, {"pipeline": {"parallel_components": 1}}))
    assert type(one) is LocalDagRunner  # TFX's own
    two = dag_runner(load_config(taxi_config_path, {"pipeline": {"parallel_components": 2}}))
    assert isinstance(two, ParallelDagRunner) and two.workers == 2
    default = dag_runner(load_config(taxi_config_path))  # one per core; a machine of one core: TFX's own
    assert (default.workers if isinstance(default, ParallelDagRunner) else 1) == default_workers()
    assert isinstance(default, ParallelDagRunner) == (default_workers() > 1)
