"""The streaming pipeline with the shared run's pushed model: a push mid-stream (TestStream) scores later events
with the new version; the landing-folder source run for a bounded time, with files dropped in while it runs and a
push in between, gives every event exactly once, scored or dead-lettered; the cloud profile's graph names its
Pub/Sub subscription and BigQuery table."""

import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time

import apache_beam as beam
import pytest
from apache_beam.testing.test_stream import TestStream

from datagen import taxi
from drills import runs
from pipelines import streaming
from settings.yaml_files import deep_merge
from tests.conftest import REPO, first_run_overrides

pytestmark = pytest.mark.e2e


def records(folder: str) -> list[dict]:
    return [json.loads(line) for path in glob.glob(os.path.join(folder, "*.jsonl")) for line in open(path)]


def stream_config(config, tmp_path, **streaming_overrides):
    s = {"landing_dir": str(tmp_path / "landing"), "output_dir": str(tmp_path / "out"), "window_seconds": 2.0,
         "poll_seconds": 0.2, "min_rows": 10, **streaming_overrides}  # fmt: skip
    return config.replace(pipeline=config.pipeline.replace(serving_dir=str(tmp_path / "serving")),
                          streaming=config.streaming.replace(**s))  # fmt: skip


def push(model_dir: str, serving_dir: str, version: int) -> None:
    """A copy of the model as a new version, renamed into place as the Pusher does."""
    staging = os.path.join(serving_dir, f".staging-{version}")
    shutil.copytree(model_dir, staging)
    os.rename(staging, os.path.join(serving_dir, str(version)))


def landed_file(tmp_path, name: str, rows: int, seed: int, bad_row: int | None = None) -> tuple[str, list]:
    frame = taxi.generate(rows, seed=seed)
    frame["trip_id"] = [f"{name}-{i}" for i in range(rows)]
    if bad_row is not None:
        frame.loc[frame.index[bad_row], "fare"] = -5.0  # outside the schema's range
    taxi.write_csv(frame, str(tmp_path / "staging"), name)
    return str(tmp_path / "staging" / name), list(frame["trip_id"])


def test_a_push_mid_stream_scores_later_events_with_the_new_version(first_run, tmp_path):
    config, summary = first_run
    config = stream_config(config, tmp_path)
    old, new = 1_700_000_000, 1_700_000_100  # a version's name is its push time
    os.makedirs(config.pipeline.serving_dir)
    push(summary.pushed_model, config.pipeline.serving_dir, old)
    push(summary.pushed_model, config.pipeline.serving_dir, new)
    before, before_keys = landed_file(tmp_path, "before.csv", 20, seed=31)
    after, after_keys = landed_file(tmp_path, "after.csv", 20, seed=32)
    events = (TestStream().advance_watermark_to(old)
              .add_elements([beam.window.TimestampedValue(before, old + 50)])
              .advance_watermark_to(new + 10)
              .add_elements([beam.window.TimestampedValue(after, new + 50)])
              .advance_watermark_to_infinity())  # fmt: skip
    model_dir = os.path.join(config.pipeline.serving_dir, str(old))
    with beam.Pipeline(options=streaming.options(config)) as p:
        streaming.build(p, config, model_dir, p | events)
    version_of = {
        r["key"]: r["model_version"] for r in records(os.path.join(config.streaming.output_dir, "predictions"))
    }
    assert sorted(version_of) == sorted(before_keys + after_keys)
    assert {version_of[k] for k in before_keys} == {str(old)}
    assert {version_of[k] for k in after_keys} == {str(new)}


def test_landing_folder_stream_gives_every_event_once_scored_or_dead_lettered(first_run, tmp_path):
    config, summary = first_run
    config = stream_config(config, tmp_path)
    os.makedirs(config.pipeline.serving_dir)
    first = int(time.time()) - 60
    push(summary.pushed_model, config.pipeline.serving_dir, first)
    expected, bad, pushed = [], [], {}

    def drop_files():  # bounded: three files and a push, then it returns
        for i in range(3):
            path, keys = landed_file(tmp_path, f"part-{i}.csv", 150, seed=40 + i, bad_row=5 if i == 1 else None)
            os.rename(path, os.path.join(config.streaming.landing_dir, os.path.basename(path)))
            expected.extend(keys)
            bad.extend([keys[5]] if i == 1 else [])
            if i == 1:
                pushed["version"] = int(time.time()) + 1
                push(summary.pushed_model, config.pipeline.serving_dir, pushed["version"])
                time.sleep(2.5)  # past the new version's name and the poll
            time.sleep(1.0)

    os.makedirs(config.streaming.landing_dir)
    dropper = threading.Thread(target=drop_files, daemon=True)
    threading.Timer(3.0, dropper.start).start()  # once the pipeline has started
    started = time.time()
    streaming.run(config, seconds=12)
    dropper.join(timeout=5)
    assert time.time() - started < 60

    out = config.streaming.output_dir
    scored, errors = records(os.path.join(out, "predictions")), records(os.path.join(out, "errors"))
    came_out = [r["key"] for r in scored] + [e["key"] for e in errors]
    assert sorted(came_out) == sorted(expected)  # every event, exactly once
    assert [e["key"] for e in errors] == bad and "'fare' value -5.0" in errors[0]["error"]
    last_file = {r["model_version"] for r in scored if r["key"].startswith("part-2")}
    assert last_file == {str(pushed["version"])}  # picked up without a restart
    assert {r["model_version"] for r in scored if r["key"].startswith("part-0")} == {str(first)}
    assert all(r["scored_at"] >= r["arrived_at"] for r in scored)
    windows = records(os.path.join(out, "windows"))
    assert sum(w["rows"] for w in windows) + len(records(os.path.join(out, "late"))) == len(expected) - len(bad)


def stream_config_file(e2e_root, tmp_path) -> tuple[str, str, str]:
    """A config file as a user writes one: the shared run's model, a landing and an output folder in tmp_path."""
    landing, out = str(tmp_path / "landing"), str(tmp_path / "out")
    streaming_section = {"landing_dir": landing, "output_dir": out, "window_seconds": 2.0, "poll_seconds": 0.2,
                         "min_rows": 10}  # fmt: skip
    path = runs.write_yaml(str(tmp_path), deep_merge(first_run_overrides(e2e_root), {"streaming": streaming_section}))
    return path, landing, out


def test_make_run_stream_starts_scores_what_landed_and_stops_after_seconds(first_run, e2e_root, tmp_path):
    """`make run-stream CONFIG=... SECONDS_=n` as the README shows it, not only the library call."""
    config_path, landing, out = stream_config_file(e2e_root, tmp_path)
    path, keys = landed_file(tmp_path, "waiting.csv", 40, seed=51)
    os.makedirs(landing)
    os.rename(path, os.path.join(landing, "waiting.csv"))  # there before the start: read too
    seconds = 25
    done = subprocess.run(["make", "--no-print-directory", "run-stream", f"CONFIG={config_path}", f"SECONDS_={seconds}"],
                          cwd=REPO, capture_output=True, text=True, timeout=seconds + 240)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["output"] == out and os.path.dirname(summary["model"]) == first_run[0].pipeline.serving_dir
    assert sorted(r["key"] for r in records(os.path.join(out, "predictions"))) == sorted(keys)


def wait_for(condition, seconds: float, what: str) -> None:
    deadline = time.time() + seconds
    while not condition():
        assert time.time() < deadline, f"no {what} within {seconds} s"
        time.sleep(0.5)


def test_a_stream_stopped_between_files_and_restarted_scores_every_row_once(first_run, e2e_root, tmp_path):
    """Two files of 300 rows scored, SIGTERM, a third file, the same folders again: 900 rows, each once."""
    config_path, landing, out = stream_config_file(e2e_root, tmp_path)
    os.makedirs(landing)
    command = [sys.executable, "-m", "monitoring.stream", "--config", config_path]
    expected: list[str] = []

    def land(name: str, seed: int) -> None:
        path, keys = landed_file(tmp_path, name, 300, seed=seed)
        os.rename(path, os.path.join(landing, name))
        expected.extend(keys)

    def scored() -> list[str]:
        return [r["key"] for r in records(os.path.join(out, "predictions"))]

    first = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for i, name in enumerate(("a.csv", "b.csv")):
            land(name, seed=60 + i)
            wait_for(lambda: len(scored()) >= len(expected), 240, f"predictions for {name}")
        first.send_signal(signal.SIGTERM)
        first.wait(timeout=60)
    finally:
        first.kill()
    assert sorted(scored()) == sorted(expected)  # nothing else was written before the stop
    land("c.csv", seed=62)
    again = subprocess.run([*command, "--seconds", "10"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
    keys = scored()
    assert len(keys) == len(expected) == 900 and sorted(keys) == sorted(expected)  # every row, exactly once
    windows = records(os.path.join(out, "windows"))
    bounds = [tuple(w["window"]) for w in windows]
    assert len(bounds) == len(set(bounds))  # no window written twice
    late = records(os.path.join(out, "late"))
    assert sum(w["rows"] for w in windows) + len(late) <= 900


def test_cloud_profile_reads_pubsub_and_writes_bigquery(first_run, tmp_path):
    config, summary = first_run
    subscription = "projects/mlops-demo/subscriptions/taxi-events"
    config = stream_config(
        config, tmp_path, pubsub_subscription=subscription, bigquery_table="mlops-demo:ml.taxi_predictions"
    )
    p = beam.Pipeline()
    streaming.build(p, config, summary.pushed_model)
    found = {}

    class Find(beam.pipeline.PipelineVisitor):
        def enter_composite_transform(self, node):
            self.visit_transform(node)

        def visit_transform(self, node):
            found.setdefault(type(node.transform).__name__, node.transform)

    p.visit(Find())
    assert found["ReadFromPubSub"]._source.full_subscription == subscription
    table = found["WriteToBigQuery"].table_reference
    assert (table.projectId, table.datasetId, table.tableId) == ("mlops-demo", "ml", "taxi_predictions")
