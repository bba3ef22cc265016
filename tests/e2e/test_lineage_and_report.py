"""Lineage from ML Metadata, the model's provenance, the experiment table, and the run report
opened in headless Chromium, on the shared first run."""

import glob
import json
import os
import re
import subprocess

import pandas as pd
import pytest

from metadata import lineage, mlmd
from reports import run_report
from settings.code_version import code_commit

pytestmark = pytest.mark.e2e

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip


@pytest.fixture(scope="module")
def store(first_run):
    config, _ = first_run
    return mlmd.open_store(config.pipeline.metadata_path)


def test_pushed_model_lineage_names_its_data_code_and_evaluations(first_run, store):
    config, summary = first_run
    found = lineage.model_lineage(store, config.pipeline.name, os.path.basename(summary.pushed_model))
    assert found.pushed_destination == summary.pushed_model
    assert found.code_commit == code_commit() and re.fullmatch(r"[0-9a-f]{40}(-dirty)?|unknown", found.code_commit)
    [data] = found.data
    assert data["span"] == 0 and data["uri"].startswith(os.path.join(config.pipeline.root, "CsvExampleGen"))
    assert all(os.path.exists(p) for p in found.statistics + found.schema + found.transform_graph)
    with open(os.path.join(found.model, "Format-Serving", "assets.extra", "model_metadata.json")) as f:
        metadata = json.load(f)
    assert metadata["data_span"] == [0] and metadata["code_commit"] == found.code_commit
    # the Trainer trained the Tuner's best trial
    assert found.hyperparameters["learning_rate"] == pytest.approx(metadata["hparams"]["learning_rate"])
    evaluations = {e["component"]: e["metrics"] for e in found.evaluations}
    assert set(evaluations) == {"Leaderboard"} and found.candidate == "network"
    assert found.trained_model.startswith(os.path.join(config.pipeline.root, "Trainer", "model"))
    # one pass: the candidate and the heuristic floor, and the last blessed model when the newest record of this push
    # is a re-run's (a re-run in this root evaluates the served model against itself before it knows it is served)
    assert set(evaluations["Leaderboard"]) - {"baseline"} == {"network", "heuristic"}
    assert evaluations["Leaderboard"]["network"]["auc"] > 0.65 > evaluations["Leaderboard"]["heuristic"]["auc"] - 0.2
    # the PushedModel artifact itself carries the commit and span
    push = lineage.pushed_models(store)[0]
    assert mlmd.property_value(push, "code_commit") == found.code_commit
    assert mlmd.property_value(push, "data_span") == "0"


def test_models_of_a_span_and_the_run_table(first_run, store):
    config, summary = first_run
    trained = lineage.models_of_span(store, config.pipeline.name, 0)
    assert {"Trainer", "HeuristicBaseline", "DistilledModel"} <= {m["component"] for m in trained}
    pushed = {v for m in trained if m["component"] == "Trainer" for v in m["pushed_versions"]}
    assert os.path.basename(summary.pushed_model) in pushed
    assert not any(m["pushed_versions"] for m in trained if m["component"] != "Trainer")  # baselines never ship
    assert lineage.models_of_span(store, config.pipeline.name, 99) == []
    rows = lineage.run_table(store, config.pipeline.name)
    first = next(r for r in rows if r["run"] == summary.run_id)
    assert first["status"] == "complete" and first["blessed"] is True and first["pushed"] == summary.pushed_model
    assert first["parameters"]["code_commit"] == code_commit() and "learning_rate" in first["parameters"]
    assert first["metrics"]["Leaderboard"]["network"]["auc"] > 0.65
    assert first["winner"] == "network" and [s["name"] for s in first["leaderboard"]] == ["network"]


def test_lineage_cli_answers_from_the_store(first_run, tmp_path, capsys):
    config, summary = first_run
    workdir = os.path.dirname(config.pipeline.root)
    assert lineage.main(["model", "--config", "configs/taxi.yaml", "--workdir", workdir]) == 0
    assert json.loads(capsys.readouterr().out)["pushed_destination"] == summary.pushed_model
    assert lineage.main(["runs", "--config", "configs/taxi.yaml", "--workdir", str(tmp_path)]) == 1
    assert "no metadata store" in capsys.readouterr().err


def test_run_report_renders_every_section_in_headless_chromium(first_run, tmp_path):
    config, summary = first_run
    page = run_report.write_latest(config, summary.run_id)  # later tests may have run in its root since
    out_dir = os.path.dirname(page)
    charts = glob.glob(os.path.join(out_dir, "*.png"))
    assert {
        "evaluation.png",
        "slices.png",
        "tuning.png",
        "importance.png",
        "loss_Trainer.png",
        "metric_Trainer.png",
    } <= {os.path.basename(c) for c in charts}
    dom = subprocess.run(
        ["chromium", *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=10000",
         "--dump-dom", f"file://{page}"],
        capture_output=True, text=True, timeout=120, check=True,
    ).stdout  # fmt: skip
    body = re.search(r"<body([^>]*)>", dom).group(1)
    attributes = dict(re.findall(r'data-([a-z-]+)="([^"]*)"', body))
    assert attributes.get("rendered", "").split(",") == list(run_report.SECTIONS), attributes
    assert attributes.get("broken-images") == "" and attributes.get("errors") == "", attributes
    with open(page) as f:
        text = f.read()
    assert "Blessed and pushed" in text and "could not be built" not in text
    assert "payment_type" in text  # slices and importance name the features
    # no personal value of the data the run read reaches the report
    data = pd.concat(pd.read_csv(p) for p in glob.glob(os.path.join(config.data.path, "*.csv")))
    for column in config.data.personal_columns:
        assert not any(str(v) in text for v in data[column].dropna().unique()[:200]), column
