"""The data stage on real runs: drifted spans, and a table brought with one YAML file whose leaky
columns the feature screen takes out (corrupted inputs: test_corruption.py)."""

import json
import os

import pytest

from components.feature_screen import FeatureScreening
from metadata import mlmd
from pipelines import local_runner
from reports import artifacts as artifacts_of
from reports import run_report
from serving import model_store
from settings.config import load_config
from settings.yaml_files import deep_merge
from tests.conftest import TAXI_CONFIG, small_overrides

pytestmark = pytest.mark.e2e


def span_overrides(root: str) -> dict:
    """A quick config whose data arrives in span-<N>/ folders under root/data."""
    return deep_merge(small_overrides(root), {
        "data": {"spans": True, "generate": None, "path": os.path.join(root, "data")},
        "tuning": {"max_trials": 0}, "screening": None, "simplification": None,
    })  # fmt: skip


def test_bring_your_own_table_with_one_yaml_file(tmp_path):
    """configs/own-table.example.yaml on a Parquet table: no curated schema, no feature list.
    Features are inferred from the data, the screen drops the columns that give the label away,
    and the model is trained, blessed, pushed and served on the rest."""
    import yaml

    from datagen import taxi
    from tests.conftest import REPO

    with open(os.path.join(REPO, "configs", "own-table.example.yaml")) as f:
        raw = yaml.safe_load(f)
    raw["data"]["path"] = str(tmp_path / "table")
    raw["trainer"] = {"train_steps": 150, "eval_steps": 10, "batch_size": 64}
    raw["pipeline"] = {"name": "own-table", "root": str(tmp_path / "pipeline"),
                       "metadata_path": str(tmp_path / "metadata.sqlite"), "serving_dir": str(tmp_path / "serving")}  # fmt: skip
    path = tmp_path / "own.yaml"
    path.write_text(yaml.safe_dump(raw))
    taxi.write_table(taxi.generate(2500, seed=71), str(tmp_path / "table"), "parquet")
    config = load_config(str(path))
    summary = local_runner.run(config)
    assert summary.pushed_model, summary.failures
    inputs = set(model_store.read_contract(summary.pushed_model)["inputs"])
    assert {"fare", "trip_miles", "payment_type", "company", "pickup_community_area", "trip_start_timestamp"} <= inputs
    assert not inputs & {"tip_amount", "tip_class", "big_tip", "trip_id", *taxi.PERSONAL_COLUMNS}
    store = mlmd.open_store(config.pipeline.metadata_path)
    artifacts = artifacts_of.collect(store, mlmd.runs(store, config.pipeline.name)[0], config.pipeline.name)
    with open(os.path.join(artifacts.first("FeatureScreen", FeatureScreening.TYPE_NAME), "screening.json")) as f:
        assert sorted(json.load(f)["excluded"]) == ["tip_amount", "tip_class"]
    assert artifacts.first("SchemaGen", "Schema")  # no curated schema: SchemaGen inferred one
    # the model did not learn from the leak: its AUC is the honest one, far from the leak's ~1.0
    from metadata.lineage import model_lineage

    found = model_lineage(store, config.pipeline.name)
    auc = {e["component"]: e["metrics"] for e in found.evaluations}
    assert 0.65 < auc["Leaderboard"][found.candidate]["auc"] < 0.9
    page = run_report.write_latest(config)
    with open(page) as f:
        text = f.read()
    assert "determines big_tip: tip_amount / fare predicts it" in text


def test_a_drifted_span_stops_the_run_unless_drift_is_expected(tmp_path):
    """span-2 is drawn from a moved distribution: against the last accepted data (span 1) the
    schema's drift comparators stop the run, naming the features, and nothing is pushed. A
    retraining that expects the drift (monitoring's, `span_drift: report`) goes through, and
    records the measurements for the report."""
    from datagen import taxi

    root = str(tmp_path)
    overrides = span_overrides(root)
    config = load_config(TAXI_CONFIG, overrides)
    taxi.write_csv(taxi.generate(2000, seed=81), os.path.join(root, "data", "span-1"))
    first = local_runner.run(config)
    assert first.pushed_model
    taxi.write_csv(taxi.generate(2000, seed=82, drift=0.8), os.path.join(root, "data", "span-2"))
    with pytest.raises(Exception) as stopped:
        local_runner.run(config)
    import traceback

    text = "".join(traceback.format_exception(stopped.value))
    assert "feature 'payment_type': drift from the last accepted data" in text
    assert sorted(os.listdir(config.pipeline.serving_dir)) == [os.path.basename(first.pushed_model)]
    expected = load_config(TAXI_CONFIG, deep_merge(overrides, {"data": {"span_drift": "report"}}))
    retrained = local_runner.run(expected)
    assert retrained.blessed is not None  # it got past the gate to evaluation
    store = mlmd.open_store(config.pipeline.metadata_path)
    artifacts = artifacts_of.collect(store, mlmd.runs(store, config.pipeline.name)[0], config.pipeline.name)
    with open(os.path.join(artifacts.first("SpanDriftCheck", "ExampleStatistics"), "span_drift.json")) as f:
        drifted = {m["feature"] for m in json.load(f) if m["drifted"]}
    assert {"payment_type", "trip_miles"} <= drifted
    # each run read the newest span, and lineage follows the spans to the models
    from metadata import lineage

    trained = {s: {m["model"] for m in lineage.models_of_span(store, config.pipeline.name, s)
                   if m["component"] == "Trainer"} for s in (1, 2)}  # fmt: skip
    assert trained[1] and trained[2] and not trained[1] & trained[2]
    [span_2_model] = trained[2]
    with open(os.path.join(span_2_model, "Format-Serving", "assets.extra", "model_metadata.json")) as f:
        assert json.load(f)["data_span"] == [2]
    first_lineage = lineage.model_lineage(store, config.pipeline.name, os.path.basename(first.pushed_model))
    assert [d["span"] for d in first_lineage.data] == [1]
