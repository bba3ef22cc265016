"""The Vertex replay (pipelines/vertex_replay.py, pipelines/vertex_resolver.py) on a tiny hand-written
PipelineJob whose container tasks are short Python programs: dependency order, placeholders and the executor
input, artifacts passed downstream, resolver filters over earlier runs, failure propagation."""

import json
import os
import sys

import pytest

from pipelines.vertex_replay import Replay, Storage, subprocess_runner
from pipelines.vertex_resolver import Registry, UnsupportedFilterError, parse_filter

ROOT = "gs://bucket/root"
MODEL_TYPE = {"instanceSchema": "title: tfx.Model\ntype: object\n"}
BLESSING_TYPE = {"instanceSchema": "title: tfx.ModelBlessing\ntype: object\n"}

# A container task: writes a file in each output artifact's directory and the executor output (as TFX's
# entrypoint does); `blessed` sets that metadata; TASK_FAIL in the environment names a task that fails.
PROGRAM = """
import json, os, sys
ei = json.loads(sys.argv[1]); task = sys.argv[2]
if os.environ.get("TASK_FAIL") == task:
    raise RuntimeError(f"boom in {task}")
seen = {k: [a["uri"] for a in v.get("artifacts", [])] for k, v in ei["inputs"].get("artifacts", {}).items()}
with open(os.path.join(os.environ["TRACE"]), "a") as f:
    f.write(json.dumps({"task": task, "params": ei["inputs"].get("parameterValues", {}), "inputs": seen,
                        "argv": sys.argv[3:]}) + "\\n")
out = {"artifacts": {}}
for key, lst in ei["outputs"]["artifacts"].items():
    a = lst["artifacts"][0]
    os.makedirs(a["uri"], exist_ok=True)
    open(os.path.join(a["uri"], "data"), "w").write(task)
    meta = {"blessed": 1, "current_model_id": ei["inputs"]["artifacts"]["model"]["artifacts"][0]["name"]} \\
        if key == "blessing" else {"from": task}
    out["artifacts"][key] = {"artifacts": [{"name": a["name"], "uri": a["uri"], "metadata": meta}]}
os.makedirs(os.path.dirname(ei["outputs"]["outputFile"]), exist_ok=True)
json.dump(out, open(ei["outputs"]["outputFile"], "w"))
"""


def container(task: str) -> dict:
    return {"container": {"image": "img:1", "command": [sys.executable, "-c", PROGRAM],
                          "args": ["{{$}}", task, "--root={{$.pipeline_root}}",
                                   "--n={{$.inputs.parameters['n']}}"]}}  # fmt: skip


def job() -> dict:
    """resolve_model -> train(n, base) -> bless(model) ; data -> train; the blessing resolver chain."""
    art = lambda t: {"artifactType": t}  # noqa: E731
    out = lambda task, key: {"taskOutputArtifact": {"producerTask": task, "outputArtifactKey": key}}  # noqa: E731
    components = {
        "data": {"executorLabel": "data_ex", "outputDefinitions": {"artifacts": {"examples": art(MODEL_TYPE)}},
                 "inputDefinitions": {"parameters": {"n": {"parameterType": "NUMBER_INTEGER"}}}},
        "train": {"executorLabel": "train_ex",
                  "inputDefinitions": {"parameters": {"n": {"parameterType": "NUMBER_INTEGER"}},
                                       "artifacts": {"examples": art(MODEL_TYPE), "base": art(MODEL_TYPE)}},
                  "outputDefinitions": {"artifacts": {"model": art(MODEL_TYPE)}}},
        "bless": {"executorLabel": "bless_ex", "inputDefinitions": {"artifacts": {"model": art(MODEL_TYPE)},
                  "parameters": {"n": {"parameterType": "NUMBER_INTEGER"}}},
                  "outputDefinitions": {"artifacts": {"blessing": art(BLESSING_TYPE)}}},
        "find_blessing": {"executorLabel": "find_blessing_ex",
                          "outputDefinitions": {"artifacts": {"blessing": art(BLESSING_TYPE)}}},
        "find_model": {"executorLabel": "find_model_ex", "inputDefinitions": {"artifacts": {"input": art(BLESSING_TYPE)}},
                       "outputDefinitions": {"artifacts": {"model": art(MODEL_TYPE)}}},
    }  # fmt: skip
    n = {"n": {"componentInputParameter": "n"}}
    tasks = {
        "train": {"componentRef": {"name": "train"}, "taskInfo": {"name": "train"}, "dependentTasks": ["data"],
                  "inputs": {"parameters": n, "artifacts": {"examples": out("data", "examples"),
                                                            "base": out("find_model", "model")}}},
        "bless": {"componentRef": {"name": "bless"}, "taskInfo": {"name": "bless"}, "dependentTasks": ["train"],
                  "inputs": {"parameters": n, "artifacts": {"model": out("train", "model")}}},
        "data": {"componentRef": {"name": "data"}, "taskInfo": {"name": "data"}, "inputs": {"parameters": n}},
        "find_model": {"componentRef": {"name": "find_model"}, "taskInfo": {"name": "find_model"},
                       "inputs": {"artifacts": {"input": out("find_blessing", "blessing")}}},
        "find_blessing": {"componentRef": {"name": "find_blessing"}, "taskInfo": {"name": "find_blessing"}},
    }  # fmt: skip
    name_filter = "name=\"{{$.inputs.artifacts['input'].metadata['current_model_id']}}\""
    executors = {
        "data_ex": container("data"), "train_ex": container("train"), "bless_ex": container("bless"),
        "find_blessing_ex": {"resolver": {"outputArtifactQueries": {"blessing": {
            "filter": 'schema_title="tfx.ModelBlessing" AND state=LIVE AND metadata.blessed.number_value=1'}}}},
        "find_model_ex": {"resolver": {"outputArtifactQueries": {"model": {
            "filter": f'schema_title="tfx.Model" AND state=LIVE AND {name_filter}'}}}},
    }  # fmt: skip
    spec = {"pipelineInfo": {"name": "tiny"}, "schemaVersion": "2.1.0", "components": components,
            "deploymentSpec": {"executors": executors},
            "root": {"dag": {"tasks": tasks}, "inputDefinitions": {"parameters": {"n": {"parameterType": "NUMBER_INTEGER"}}}}}  # fmt: skip
    return {"pipelineSpec": spec, "runtimeConfig": {"gcsOutputDirectory": ROOT, "parameterValues": {"n": 3}}}


def replay(tmp_path, monkeypatch, spec=None, fail=None) -> tuple[Replay, list, list[dict]]:
    trace = tmp_path / "trace.jsonl"
    monkeypatch.setenv("TRACE", str(trace))
    if fail:
        monkeypatch.setenv("TASK_FAIL", fail)
    else:
        monkeypatch.delenv("TASK_FAIL", raising=False)
    lines = []
    r = Replay(spec or job(), Storage(str(tmp_path / "gcs")), subprocess_runner(str(tmp_path)), "proj", "us-central1",
               str(tmp_path / "logs"), out=lines.append)  # fmt: skip
    results = r.run()
    calls = [json.loads(line) for line in trace.read_text().splitlines()] if trace.exists() else []
    trace.unlink(missing_ok=True)
    return r, results, calls


def test_tasks_run_in_dependency_order_with_resolved_placeholders(tmp_path, monkeypatch):
    r, results, calls = replay(tmp_path, monkeypatch)
    order = [x.task for x in results]
    assert order.index("find_blessing") < order.index("find_model") < order.index("train")  # inputs count as needs
    assert order.index("data") < order.index("train") < order.index("bless")
    assert all(x.state == "SUCCEEDED" for x in results)
    assert [c["task"] for c in calls] == [t for t in order if t in ("data", "train", "bless")]
    train = next(c for c in calls if c["task"] == "train")
    assert train["params"] == {"n": 3}  # NUMBER_INTEGER stays an int, as Vertex passes it
    local_root = str(tmp_path / "gcs" / "bucket" / "root")
    assert train["argv"] == [f"--root={local_root}", "--n=3"]  # gs:// lives in the local directory
    (examples,) = train["inputs"]["examples"]
    assert examples.startswith(f"{local_root}/proj/{r.job_id}/data_") and examples.endswith("/examples")
    with open(os.path.join(examples, "data")) as f:
        assert f.read() == "data"  # the upstream's output, passed down
    assert train["inputs"]["base"] == []  # first run: the resolver found nothing


def test_second_run_resolves_the_first_runs_blessed_model(tmp_path, monkeypatch):
    first, _, _ = replay(tmp_path, monkeypatch)
    models = [x for x in Registry(str(tmp_path / "gcs" / "bucket" / "root")).records() if x["output"] == "model"]
    assert [m["artifact"]["uri"].startswith("gs://bucket/root/") for m in models] == [True]  # recorded as gs://
    second, results, calls = replay(tmp_path, monkeypatch)
    (base,) = next(c for c in calls if c["task"] == "train")["inputs"]["base"]
    assert base == str(tmp_path / "gcs") + "/" + models[0]["artifact"]["uri"][len("gs://") :]
    assert first.job_id != second.job_id


def test_each_resolver_prints_what_it_resolved_and_the_run_that_made_it(tmp_path, monkeypatch):
    monkeypatch.setenv("TRACE", str(tmp_path / "trace.jsonl"))
    monkeypatch.delenv("TASK_FAIL", raising=False)
    printed = []

    first = Replay(job(), Storage(str(tmp_path / "gcs")), subprocess_runner(str(tmp_path)), "proj", "us-central1",
                   str(tmp_path / "logs"), out=printed.append)  # fmt: skip
    first.run()
    (line,) = [x for x in printed if x.split()[:1] == ["find_model"]]
    assert line.endswith("   resolved none (no earlier run made one)")
    second = Replay(job(), Storage(str(tmp_path / "gcs")), subprocess_runner(str(tmp_path)), "proj", "us-central1",
                    str(tmp_path / "logs"), out=printed.append)  # fmt: skip
    results = {x.task: x for x in second.run()}
    assert results["find_blessing"].note == f"resolved blessing from {first.job_id}"
    assert results["find_model"].note == f"resolved model from {first.job_id}"
    line = f"  {'find_model':52s} SUCCEEDED {results['find_model'].seconds:7.1f} s   resolved model from {first.job_id}"
    assert line in printed
    assert results["train"].note == ""  # a container task: its state and seconds only


def test_a_failed_task_skips_what_is_downstream_and_keeps_earlier_outputs(tmp_path, monkeypatch):
    _, results, calls = replay(tmp_path, monkeypatch, fail="train")
    state = {x.task: x.state for x in results}
    assert state == {"find_blessing": "SUCCEEDED", "find_model": "SUCCEEDED", "data": "SUCCEEDED",
                     "train": "FAILED", "bless": "SKIPPED"}  # fmt: skip
    failed = next(x for x in results if x.state == "FAILED")
    assert failed.error.startswith("train: RuntimeError: boom in train")  # the task and the executor's error
    assert [c["task"] for c in calls] == ["data"]
    (data,) = [x for x in Registry(str(tmp_path / "gcs" / "bucket" / "root")).records() if x["task"] == "data"]
    assert os.path.exists(os.path.join(data["artifact"]["uri"].replace("gs://", str(tmp_path / "gcs") + "/"), "data"))
    # nothing of the failed task is published for later resolvers
    assert not [x for x in Registry(str(tmp_path / "gcs" / "bucket" / "root")).records() if x["task"] == "train"]


def test_an_unsupported_filter_fails_the_resolver_task_loudly(tmp_path, monkeypatch):
    spec = job()
    spec["pipelineSpec"]["deploymentSpec"]["executors"]["find_blessing_ex"]["resolver"]["outputArtifactQueries"][
        "blessing"]["filter"] = 'schema_title="tfx.ModelBlessing" OR state=LIVE'  # fmt: skip
    _, results, _ = replay(tmp_path, monkeypatch, spec=spec)
    state = {x.task: x for x in results}
    assert state["find_blessing"].state == "FAILED" and "OR state=LIVE" in state["find_blessing"].error
    assert state["train"].state == "SKIPPED" and state["data"].state == "SUCCEEDED"


def record(run: str, title: str, name: str, **metadata) -> dict:
    return {"run": run, "task": "t", "output": "o", "state": "LIVE",
            "artifact": {"name": name, "uri": f"gs://b/{name}", "metadata": metadata,
                         "type": {"instanceSchema": f"title: {title}\ntype: object\n"}}}  # fmt: skip


@pytest.mark.parametrize(
    "text, expected",
    [
        ('schema_title="tfx.ModelBlessing" AND state=LIVE AND metadata.blessed.number_value=1', ["b2"]),
        ('schema_title="tfx.ModelBlessing" AND metadata.blessed.number_value=0', ["b3"]),
        ('schema_title="tfx.Model" AND name="m1"', ["m1"]),
        ('schema_title="tfx.Model" AND state=DELETED', []),
        ('metadata.kind.string_value="linear"', ["m1"]),
        ("metadata.ok.bool_value=true", ["m2"]),
        ('schema_title="tfx.ExampleStatistics"', []),
    ],
)
def test_filters_select_the_newest_match_of_earlier_runs(tmp_path, text, expected):
    registry = Registry(str(tmp_path))
    for r in (record("run1", "tfx.Model", "m1", kind="linear"), record("run1", "tfx.ModelBlessing", "b1", blessed=1),
              record("run1", "tfx.Model", "m2", ok=True), record("run2", "tfx.ModelBlessing", "b2", blessed=1),
              record("run2", "tfx.ModelBlessing", "b3", blessed=0),
              record("run3", "tfx.ModelBlessing", "b4", blessed=1)):  # fmt: skip
        registry.publish(r["run"], r["task"], r["output"], r["artifact"])
    assert [a["name"] for a in registry.query(text, before_run="run3")] == expected  # run3 is the running one


@pytest.mark.parametrize(
    "text",
    [
        'schema_title="a" OR state=LIVE',
        "create_time>1",
        'display_name="x"',
        "(state=LIVE)",
        "metadata.k.number_value=abc",
        "name=unquoted",
        "metadata.k.bool_value=1",
    ],
)
def test_other_filter_forms_are_refused(text):
    with pytest.raises(UnsupportedFilterError):
        parse_filter(text)
