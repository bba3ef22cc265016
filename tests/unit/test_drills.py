"""The drills start their commands as a user's shell would, and each drill's check reports the fault it guards
against when that fault is planted."""

import contextlib
import io
import json
import os
import shutil
import tempfile
import threading
import time
import types

import pytest

from drills import bad_model, checks, concurrent_runs, disk_full, hot_swap, housekeeping, killed_run, run_all, runs

pytestmark = pytest.mark.unit


def test_drill_commands_get_a_shells_environment_not_the_drills_own_imports(monkeypatch):
    monkeypatch.setenv("TF_USE_LEGACY_KERAS", "1")  # importing TensorFlow Transform sets it in the drill's process
    env = runs.shell_env(TMPDIR="/tmp/drill")
    assert "TF_USE_LEGACY_KERAS" not in env
    assert env["PYTHONPATH"] == runs.REPO and env["TMPDIR"] == "/tmp/drill" and env["PATH"] == os.environ["PATH"]


# Each drill's check, shown to fail when the fault it guards against is planted.


def _model(path) -> str:
    """A stand-in model directory: a few files of known sizes, like a SavedModel."""
    for name, size in {"saved_model.pb": 4000, "variables/variables.index": 300,
                       "variables/variables.data-00000-of-00001": 9000, "assets.extra/contract.json": 200}.items():  # fmt: skip
        file = path / name
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_bytes(b"x" * size)
    return str(path)


def _copy_dies_after(n: int):
    """shutil.copyfile (what shutil.copytree copies each file with) that copies `n` files, then fails as a full
    disk or a kill would."""
    copied, copyfile = [0], shutil.copyfile

    def copy(src, dst, **kwargs):
        if copied[0] == n:
            raise OSError(28, "No space left on device")
        copied[0] += 1
        return copyfile(src, dst, **kwargs)

    return copy


def test_served_check_reports_a_pusher_that_copies_in_place(tmp_path, monkeypatch):
    """A pusher that writes straight into a version directory leaves a half-copied version a server can see."""
    from components.idempotent_pusher import SOURCE_FILE

    model, serving = _model(tmp_path / "model"), tmp_path / "serving"
    whole = serving / "100"
    shutil.copytree(model, whole)
    (whole / "assets.extra" / SOURCE_FILE).write_text(model)
    assert checks.served_problems(str(serving)) == []
    monkeypatch.setattr(shutil, "copyfile", _copy_dies_after(2))
    with pytest.raises(shutil.Error):
        shutil.copytree(model, serving / "101")  # in place: the marker never written
    assert checks.served_problems(str(serving)) == ["version 101 has no source marker: a partial push"]
    marked = serving / "102"  # in place, the marker first
    (marked / "assets.extra").mkdir(parents=True)
    (marked / "assets.extra" / SOURCE_FILE).write_text(model)
    with pytest.raises(shutil.Error):
        shutil.copytree(model, marked, dirs_exist_ok=True)
    assert checks.served_problems(str(serving))[1:] == [f"version 102 differs from its source {model}: a partial copy"]


def test_served_check_passes_the_pushers_staged_copy_that_dies(tmp_path, monkeypatch):
    from components.idempotent_pusher import PushError, push_atomically

    model, serving = _model(tmp_path / "model"), str(tmp_path / "serving")
    push_atomically(model, serving, model)
    monkeypatch.setattr(shutil, "copyfile", _copy_dies_after(2))
    with pytest.raises(PushError, match="No space left on device"):
        push_atomically(model, serving, model)
    assert len(checks.served(serving)) == 1 and checks.served_problems(serving) == []


def _store(tmp_path, plant) -> str:
    """An ML Metadata store with one healthy finished execution of pipeline `p`, and what `plant` adds."""
    from ml_metadata.proto import metadata_store_pb2 as pb

    from metadata import mlmd

    path = str(tmp_path / "metadata.sqlite")
    store = mlmd.open_store(path)
    context_type = store.put_context_type(pb.ContextType(name="node"))
    execution_type = store.put_execution_type(pb.ExecutionType(name="Component"))
    artifact_type = store.put_artifact_type(pb.ArtifactType(name="Examples"))

    def execution(node: str, state, output_uri: str | None, artifact_state=pb.Artifact.LIVE) -> None:
        [context_id] = store.put_contexts([pb.Context(type_id=context_type, name=f"p.{node}")])
        done = [(pb.Artifact(type_id=artifact_type, uri=output_uri, state=artifact_state),
                 pb.Event(type=pb.Event.OUTPUT))] if output_uri else []  # fmt: skip
        store.put_execution(pb.Execution(type_id=execution_type, last_known_state=state), done,
                            [pb.Context(id=context_id, type_id=context_type, name=f"p.{node}")])  # fmt: skip

    (tmp_path / "examples").mkdir()
    execution("CsvExampleGen", pb.Execution.COMPLETE, str(tmp_path / "examples"))
    plant(execution, pb)
    return path


def test_store_check_passes_a_healthy_store(tmp_path):
    assert checks.store_problems(_store(tmp_path, lambda execution, pb: None), "p") == []


@pytest.mark.parametrize("plant, reported", [
    (lambda execution, pb: execution("Trainer", pb.Execution.RUNNING, None), "execution 2 (Trainer) is still RUNNING"),
    (lambda execution, pb: execution("Trainer", pb.Execution.COMPLETE, "/nowhere/model"),
     "execution 2 (Trainer) finished but its output /nowhere/model is missing or not LIVE"),
    (lambda execution, pb: execution("Trainer", pb.Execution.COMPLETE, "/", pb.Artifact.PENDING),
     "execution 2 (Trainer) finished but its output / is missing or not LIVE"),
    (lambda execution, pb: execution("Trainer", pb.Execution.FAILED, "/"),
     "artifact 2 (/) is LIVE but execution 2 never finished"),
])  # fmt: skip
def test_store_check_reports_what_a_run_could_misread(tmp_path, plant, reported):
    assert checks.store_problems(_store(tmp_path, plant), "p") == [reported]


def test_store_check_allows_the_killed_execution_running_only_right_after_the_kill(tmp_path):
    path = _store(tmp_path, lambda execution, pb: execution("Trainer", pb.Execution.RUNNING, None))
    assert checks.store_problems(path, "p", allow_active=True) == []


def test_killed_run_reports_a_served_version_lost_and_work_not_taken_from_the_cache():
    assert killed_run.versions_problems(["1", "2"], ["1", "2", "3"]) == []
    assert killed_run.versions_problems(["1", "2"], ["1", "3"]) == [
        "served versions went from ['1', '2'] to ['1', '3']"
    ]
    assert killed_run.versions_problems(["1"], ["1", "2", "3"]) != []  # two new versions from one kill
    assert killed_run.cache_problems({"Transform"}, {"Transform": "CACHED", "Trainer": "COMPLETE"}) == []
    assert killed_run.cache_problems({"Transform", "Trainer"}, {"Transform": "CACHED", "Trainer": "COMPLETE"}) == [
        "finished before the kill but not taken from the cache: ['Trainer']"
    ]


@pytest.fixture
def in_process_second_run(monkeypatch):
    """The second run as the local runner starts: it takes the run lock (exit 4 naming the holder if it cannot),
    else it runs; in this process, with the real lock."""
    from pipelines import run_lock

    def second_run(config_path, timeout=120, view=None):
        config = runs.load(config_path)
        try:
            with run_lock.held(config.pipeline.root, config.pipeline.metadata_path, "second"):
                return runs.Outcome(0, "CsvExampleGen  started\n", 0.1)
        except run_lock.RunLockedError as e:
            return runs.Outcome(4, f"not started: {e}\n", 0.1)

    monkeypatch.setattr(concurrent_runs, "_second_run", second_run)


def test_concurrent_runs_drill_passes_when_the_lock_is_taken(tmp_path, in_process_second_run):
    result = concurrent_runs.run_drill(runs.write_config(str(tmp_path)), holder_in_process=True)
    assert result["problems"] == [] and result["second_exit"] == 4


def test_concurrent_runs_drill_reports_a_lock_that_is_not_taken(tmp_path, in_process_second_run, monkeypatch):
    from pipelines import run_lock

    no_lock = types.SimpleNamespace(held=lambda *a: contextlib.nullcontext(), lock_paths=run_lock.lock_paths,
                                    holder=run_lock.holder)  # fmt: skip
    monkeypatch.setattr(concurrent_runs, "run_lock", no_lock)
    result = concurrent_runs.run_drill(runs.write_config(str(tmp_path)), holder_in_process=True)
    assert result["problems"] == [
        f"the second run did not stop naming pid {os.getpid()} (exit 0): CsvExampleGen  started\n"
    ]
    assert not result["ok"]


def _log_through_a_full_disk(tmp_path, monkeypatch, log_class) -> tuple[list[str], object]:
    """30 lines through the prediction log: 10, then 10 while every write fails for a full disk, then 10; the
    lines in the file and the log."""
    from serving import prediction_log

    full = threading.Event()

    class Disk(io.FileIO):
        def write(self, data):
            if full.is_set():
                raise OSError(28, "No space left on device")
            return super().write(data)

    monkeypatch.setattr(prediction_log, "open", lambda path, mode: Disk(path, mode), raising=False)
    path = str(tmp_path / "logs" / "predictions.jsonl")
    log = log_class(path)
    for phase in range(3):
        if phase == 1:
            full.set()
        for i in range(10):
            log.add({"phase": phase, "i": i})
        runs.wait_for(lambda: log._queue.empty() or not log._thread.is_alive(), 5, "the writer taking the lines")
        time.sleep(0.2)  # the batch in hand written or failed
        full.clear()
    log.close()
    with open(path) as f:
        return f.read().splitlines(), log


def test_disk_full_drill_passes_a_log_writer_that_counts_lost_lines(tmp_path, monkeypatch):
    from serving.prediction_log import PredictionLog

    lines, log = _log_through_a_full_disk(tmp_path, monkeypatch, PredictionLog)
    assert (len(lines), log.lost) == (20, 10)
    assert disk_full.log_problems([200] * 30, lines, log, {"log_lines_lost": log.lost}) == []


def test_disk_full_drill_reports_a_log_writer_that_dies_on_a_full_disk(tmp_path, monkeypatch):
    from serving import prediction_log

    class DiesOnFullDisk(prediction_log.PredictionLog):
        def _write(self):
            with prediction_log.open(self.path, "ab") as f:  # the disk of _log_through_a_full_disk
                while True:
                    batch, closing = self._next_batch()
                    try:
                        f.write("".join(json.dumps(r) + "\n" for r in batch).encode())
                    except OSError:
                        return  # the thread ends; nothing counted
                    if closing:
                        return

    lines, log = _log_through_a_full_disk(tmp_path, monkeypatch, DiesOnFullDisk)
    assert len(lines) == 10
    assert disk_full.log_problems([200] * 30, lines, log, {"log_lines_lost": 0}) == [
        "the full disk was not noticed (no failed write counted)", "30 requests, but 10 lines written + 0 lost + 0 dropped"
    ]  # fmt: skip


def test_disk_full_drill_reports_a_push_that_leaves_a_partial_version_or_fails_silently():
    error = "pushing m to s failed, nothing was pushed (the versions already there are still served): No space left on device"
    assert disk_full.push_problems(error, ["1"], "1", 200, "1") == []
    assert disk_full.push_problems(error, ["1", "2"], "1", 200, "1") == [
        "after the failed push the serving directory holds ['1', '2'], not just [1]"
    ]
    assert disk_full.push_problems("", ["1"], "1", 503, None) == [
        "the failed push did not say why: it did not fail",
        "during the full disk the server answered 503 from None",
    ]


def test_hot_swap_drill_reports_a_server_that_serves_a_half_written_version():
    truth = {"1": [0.1, 0.2, 0.3, 0.4], "2": [0.6, 0.7, 0.8, 0.9]}
    good = [[(200, "1", 0, 0.1), (200, "2", 1, 0.7)], [(200, "1", 2, 0.3), (200, "2", 3, 0.9)]]
    assert hot_swap.answer_problems(good, truth, "1", "2", 4) == []
    half_written = [[(200, "1", 0, 0.1), (500, None, 1, None)], [(200, "1", 2, 0.3), (200, "2", 3, 0.9)]]
    assert hot_swap.answer_problems(half_written, truth, "1", "2", 4) == ["1 errors in 4 answers: [500]"]
    # the new version named while the old one scored, and a connection sent back to the old one
    misnamed = [[(200, "2", 0, 0.1), (200, "1", 1, 0.2)], [(200, "1", 2, 0.3), (200, "2", 3, 0.9)]]
    assert hot_swap.answer_problems(misnamed, truth, "1", "2", 4) == [
        "1 answers name a version that did not give that score", "1 answers from 1 after the connection was answered by 2"
    ]  # fmt: skip
    never = [[(200, "1", 0, 0.1)], [(200, "1", 2, 0.1)]]
    assert hot_swap.answer_problems(never, {"1": [0.1] * 4, "2": [0.1] * 4}, "1", "2", 3) == [
        "0 errors in 2 answers: []", "2 never answered", "the two versions score alike on 4 rows: the naming check is blind"
    ]  # fmt: skip


def test_bad_model_drill_reports_a_broken_version_accepted():
    broken = ["2", "3", "4"]
    assert bad_model.check([(200, "1")] * 3, "1", broken, {"2": "truncated", "3": "not a SavedModel"}, (200, "1")) == []
    accepted = bad_model.check(
        [(200, "1"), (200, "2"), (500, None)], "1", broken, {"3": "not a SavedModel"}, (200, "2")
    )
    assert accepted == ["answers other than 200 from 1: [(200, '2'), (500, None)]", "refused ['3'], expected ['2', '3']",
                        "a restarted server answered (200, '2')"]  # fmt: skip


def test_housekeeping_reports_what_a_command_leaves_in_its_tmpdir(tmp_path):
    def tidy():
        with tempfile.TemporaryDirectory() as d, open(os.path.join(d, "x"), "w") as f:
            f.write("x")

    def untidy():
        tempfile.mkstemp(suffix=".csv")
        tempfile.mkdtemp(prefix="beam")

    assert housekeeping.leftovers("tidy", tidy, str(tmp_path))["problems"] == []
    left = housekeeping.leftovers("untidy", untidy, str(tmp_path))
    assert len(left["left"]) == 2 and all(p.startswith("left ") for p in left["problems"])
    assert sorted(os.path.splitext(n)[1] or n[:4] for n in left["left"]) == [".csv", "beam"]


def test_run_all_counts_a_drill_that_breaks_as_failed_and_exits_1(tmp_path, monkeypatch):
    def broken():
        raise FileNotFoundError("no DistilledModel output")

    [result] = run_all._timed("hot swap", broken)
    assert not result["ok"] and "the drill itself failed: FileNotFoundError" in result["happened"]
    monkeypatch.setattr(run_all, "run_all", lambda *a: [{**result, "drill": "hot swap"}, {**result, "ok": True}])
    assert run_all.main(["--workdir", str(tmp_path / "w"), "--out", str(tmp_path / "d.json"), "--kill", "Pusher"]) == 1
