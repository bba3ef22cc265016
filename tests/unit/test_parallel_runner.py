"""The parallel DAG runner's scheduling: each node once, after its upstream nodes, at most `workers` at once,
the longest chain first; a failure stops the run with the failing node's own error; a node's process dies
with the runner."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from tfx.proto.orchestration import pipeline_pb2

from pipelines.parallel_runner import ComponentFailedError, ParallelDagRunner, launch_order, run_nodes
from tests.conftest import REPO

pytestmark = pytest.mark.unit


def nodes(upstream: dict[str, list[str]]) -> list[pipeline_pb2.PipelineNode]:
    """PipelineNodes in the given (topological) order."""
    out = []
    for node_id, ups in upstream.items():
        node = pipeline_pb2.PipelineNode()
        node.node_info.id = node_id
        node.upstream_nodes.extend(ups)
        out.append(node)
    return out


def recorder(tmp_path, seconds: float = 0.0, fail: dict | None = None):
    """A `launch` that records each node's start and end (it runs in a child process) and sleeps or fails."""

    def launch(node):
        node_id = node.node_info.id
        with open(tmp_path / f"{node_id}.json", "w") as f:
            json.dump({"start": time.monotonic(), "pid": os.getpid()}, f)
        time.sleep(seconds)
        if fail and node_id in fail:
            fail[node_id]()
        record = json.loads((tmp_path / f"{node_id}.json").read_text())
        (tmp_path / f"{node_id}.json").write_text(json.dumps({**record, "end": time.monotonic()}))

    return launch


def records(tmp_path) -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in tmp_path.glob("*.json")}


DAG = {"gen": [], "stats": ["gen"], "transform": ["stats"], "tuner": ["transform"], "trainer": ["tuner"],
       "linear": ["transform"], "evaluator": ["trainer"], "versus": ["trainer", "linear"], "pusher": ["versus"]}  # fmt: skip


def test_every_node_runs_once_in_its_own_process_after_its_upstream_nodes_with_independent_ones_at_once(tmp_path):
    run_nodes(nodes(DAG), recorder(tmp_path, seconds=0.6), workers=2)
    ran = records(tmp_path)
    assert set(ran) == set(DAG)
    for node, ups in DAG.items():
        assert ran[node]["pid"] != os.getpid()
        for up in ups:
            assert ran[up]["end"] <= ran[node]["start"], f"{node} started before {up} ended"
    # at most two at once, and two at once where the DAG allows it (linear beside the tuner or the trainer)
    events = sorted([(r["start"], 1) for r in ran.values()] + [(r["end"], -1) for r in ran.values()])
    running = [sum(d for _, d in events[: i + 1]) for i in range(len(events))]
    assert max(running) == 2
    assert ran["linear"]["start"] < min(ran["tuner"]["end"], ran["trainer"]["end"])


def test_one_worker_runs_the_longest_chain_first_and_ties_in_the_pipelines_order(tmp_path):
    upstream = {"a": [], "short": ["a"], "long1": ["a"], "long2": ["long1"], "long3": ["long2"]}
    assert launch_order({k: set(v) for k, v in upstream.items()}) == {"a": 4, "short": 1, "long1": 3, "long2": 2,
                                                                       "long3": 1}  # fmt: skip
    run_nodes(nodes(upstream), recorder(tmp_path), workers=1)
    ran = records(tmp_path)
    assert sorted(ran, key=lambda n: ran[n]["start"]) == ["a", "long1", "long2", "short", "long3"]


def test_a_failure_stops_the_run_with_the_nodes_own_error_and_lets_the_running_one_finish(tmp_path):
    def bad_value():
        raise ValueError("column 'fare' has 12 negative values")

    dag = {"gen": [], "gate": ["gen"], "slow": ["gen"], "after_gate": ["gate"], "after_slow": ["slow"]}
    launch = recorder(tmp_path, seconds=0.3, fail={"gate": bad_value})
    with pytest.raises(ValueError, match="column 'fare' has 12 negative values"):
        run_nodes(nodes(dag), launch, workers=2)
    ran = records(tmp_path)
    assert "end" in ran["slow"]  # running when the gate failed: finished, recorded
    assert "after_gate" not in ran and "after_slow" not in ran  # nothing new started after the failure


def test_a_node_whose_process_dies_or_whose_error_cannot_travel_is_named(tmp_path):
    class UnpicklableError(Exception):
        def __reduce__(self):
            raise TypeError("no")

    def unpicklable():
        raise UnpicklableError("the store is read-only")

    with pytest.raises(ComponentFailedError, match="UnpicklableError: the store is read-only"):
        run_nodes(nodes({"a": []}), recorder(tmp_path, fail={"a": unpicklable}), workers=2)
    with pytest.raises(ComponentFailedError, match=r"component b's process ended \(signal 9\)"):
        run_nodes(nodes({"b": []}), recorder(tmp_path, fail={"b": lambda: os.kill(os.getpid(), signal.SIGKILL)}), 2)


def test_a_nodes_process_dies_with_the_runner(tmp_path):
    script = f"""
import sys, time
sys.path.insert(0, {str(REPO)!r})
from tests.unit.test_parallel_runner import nodes, recorder
import pathlib
run_nodes_args = (nodes({{"long": []}}), recorder(pathlib.Path({str(tmp_path)!r}), seconds=120))
from pipelines.parallel_runner import run_nodes
run_nodes(*run_nodes_args, workers=2)
"""
    runner = subprocess.Popen([sys.executable, "-c", script], cwd=REPO)
    try:
        deadline = time.monotonic() + 60
        while not (tmp_path / "long.json").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        child = json.loads((tmp_path / "long.json").read_text())["pid"]
        runner.kill()  # the runner alone, not its process group
        runner.wait(10)
        deadline = time.monotonic() + 10
        while _alive(child) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _alive(child)
    finally:
        runner.kill()


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


def test_workers_must_be_positive():
    with pytest.raises(ValueError, match="workers must be at least 1, got 0"):
        ParallelDagRunner(0)
