"""`make vertex-local` in fast mode on the compiled smoke profile: a first replay runs every task and pushes a model
that `make serve` then serves (one predict over loopback), a second one's resolver tasks find what the first
published, and a class path misspelt in the compiled file (what the compile check cannot see) fails the replay on
that task, with the executor's error, leaving the rest."""

import json
import os
import subprocess
import sys

import pytest

from datagen import taxi
from pipelines import vertex, vertex_local
from pipelines.vertex_replay import Replay, Storage, subprocess_runner
from serving import instances
from serving.client import PredictionClient
from settings.config import load_config
from tests.conftest import REPO

pytestmark = pytest.mark.e2e

PROFILE = f"{REPO}/configs/vertex-smoke.yaml"


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    target = str(tmp_path_factory.mktemp("compiled") / "vertex-smoke.json")
    vertex.compile_pipeline(load_config(PROFILE), target)
    with open(target) as f:
        return target, json.load(f)


def replay(job: dict, workdir) -> Replay:
    config = load_config(PROFILE)
    storage = Storage(str(workdir / "gcs"), ((config.vertex.image_workdir,
                      vertex_local.stand_in_workdir(config, str(workdir / "image-workdir"))),))  # fmt: skip
    vertex_local.stage_data(config, storage)
    return Replay(job, storage, subprocess_runner(storage.local(config.vertex.image_workdir + "/")),
                  config.vertex.project, config.vertex.region, str(workdir / "logs"))  # fmt: skip


def serve_pushed(profile: str, workdir, rows: list[dict]) -> tuple[list[str], int, dict]:
    """`make serve CONFIG=<profile> WORKDIR=<the replay's workdir>` (what the replay prints) on a free loopback
    port, with its request log in `workdir`: the versions it serves and one predict's status and body."""
    logged = workdir / "serve.yaml"
    logged.write_text(json.dumps({"extends": profile, "serving": {"log_path": str(workdir / "predictions.jsonl")}}))
    argv = [sys.executable, "-m", "serving.server", "--config", str(logged), "--workdir", str(workdir),
            "--host", "127.0.0.1", "--port", "0"]  # fmt: skip
    with subprocess.Popen(argv, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True) as proc:
        try:
            started = json.loads(next(line for line in proc.stdout if line.startswith('{"event": "serving"')))
            client = PredictionClient(started["url"])
            status, body = client.predict(rows)
            client.close()
        finally:
            proc.terminate()
            proc.wait(timeout=60)
    return list(started["versions"]), status, body


@pytest.mark.replay  # two whole pipelines of ~20 task processes each: `make test-replay`, beside the suite
def test_two_replays_push_then_resolve_the_first_runs_artifacts(compiled, tmp_path, capsys):
    template, job = compiled
    code = vertex_local.main(
        ["--profile", PROFILE, "--template", template, "--workdir", str(tmp_path), "--expect-push"]
    )
    out = capsys.readouterr().out
    tasks = job["pipelineSpec"]["root"]["dag"]["tasks"]
    assert code == 0, out
    for task in tasks:  # one line each: name, state, seconds
        assert any(line.split()[:2] == [task, "SUCCEEDED"] and line.endswith(" s") for line in out.splitlines()), task
    pushed = out.splitlines()[-1].split("pushed model:")[1].strip()
    assert pushed.startswith(str(tmp_path / "gcs")) and (tmp_path / pushed).exists()
    assert f"make serve CONFIG={PROFILE} WORKDIR={tmp_path}" in out
    rows = instances.from_frame(taxi.generate(3, seed=5).drop(columns=[*taxi.OUTCOMES, "trip_id"]))
    versions, status, body = serve_pushed(PROFILE, tmp_path, rows)
    assert versions == [os.path.basename(pushed)]
    assert status == 200 and body["deployedModelId"] == os.path.basename(pushed), body
    assert len(body["predictions"]) == 3 and all(0 <= p["probability"] <= 1 for p in body["predictions"])

    second = replay(job, tmp_path)
    results = second.run()
    assert [r.task for r in results if r.state != "SUCCEEDED"] == []
    executors = job["pipelineSpec"]["deploymentSpec"]["executors"]
    components = job["pipelineSpec"]["components"]
    resolvers = [
        t for t, b in tasks.items() if "resolver" in executors[components[b["componentRef"]["name"]]["executorLabel"]]
    ]
    assert resolvers
    for task in resolvers:  # the blessed model, its blessing and the accepted statistics of the first replay
        for key, artifacts in second.outputs[task].items():
            assert len(artifacts) == 1 and f"/{second.job_id}/" not in artifacts[0]["uri"], (task, key)


def test_a_misspelt_executor_class_fails_that_task_and_stops_what_is_downstream(compiled, tmp_path):
    _, job = compiled
    job = json.loads(json.dumps(job))
    executors = job["pipelineSpec"]["deploymentSpec"]["executors"]
    components = job["pipelineSpec"]["components"]
    tasks = job["pipelineSpec"]["root"]["dag"]["tasks"]
    # the custom executor that every other container task waits for, directly or not (the example gen)
    custom = {t for t, b in tasks.items()
              if "components." in " ".join(executors[components[b["componentRef"]["name"]]["executorLabel"]]
                                          .get("container", {}).get("args", [])[:2])}  # fmt: skip
    broken = next(
        t for t in sorted(custom) if not tasks[t].get("dependentTasks") and not tasks[t]["inputs"].get("artifacts")
    )
    args = executors[components[tasks[broken]["componentRef"]["name"]]["executorLabel"]]["container"]["args"]
    args[1] = args[1].replace("components.", "components.misspelt_", 1)
    r = replay(job, tmp_path)
    results = {x.task: x for x in r.run()}
    assert results[broken].state == "FAILED"
    assert results[broken].error.startswith(f"{broken}: ") and "misspelt_" in results[broken].error
    assert "Error" in results[broken].error  # the executor's own exception line
    downstream = [t for t, x in results.items() if x.state == "SKIPPED"]
    assert downstream and all(results[t].error.startswith("upstream") for t in downstream)
    ran = [t for t, x in results.items() if x.state == "SUCCEEDED" and r.outputs[t]]
    for t in ran:  # the earlier outputs are intact
        for artifacts in r.outputs[t].values():
            for a in artifacts:
                assert (tmp_path / "gcs" / a["uri"][len("gs://") :]).exists(), (t, a["uri"])
