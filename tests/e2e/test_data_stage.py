"""The data stage on real runs: the feature screen takes a leaky column out of a model whose
config listed it, and the model, its contract and its report show it."""

import json
import os

import pytest

from pipelines import local_runner, mlmd, run_report
from pipelines.config import deep_merge, load_config
from serving import model_store
from tests.conftest import TAXI_CONFIG, small_overrides

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def leaky_run(tmp_path_factory):
    """A config that lists every numeric column, the tip (which gives the label away) included."""
    root = str(tmp_path_factory.mktemp("leaky"))
    base = load_config(TAXI_CONFIG)
    overrides = deep_merge(small_overrides(root), {"features": {"numeric": [*base.features.numeric, "tip_amount"]}})
    config = load_config(TAXI_CONFIG, overrides)
    return config, local_runner.run(config)


def test_a_leaky_feature_in_the_config_is_excluded_before_training(leaky_run):
    config, summary = leaky_run
    assert summary.pushed_model, summary.failures
    contract = model_store.read_contract(summary.pushed_model)
    assert "tip_amount" not in contract["inputs"] and "fare" in contract["inputs"]
    store = mlmd.open_store(config.pipeline.metadata_path)
    artifacts = run_report.collect(store, mlmd.runs(store, config.pipeline.name)[0], config.pipeline.name)
    with open(os.path.join(artifacts.first("FeatureScreen", "FeatureScreening"), "screening.json")) as f:
        screening = json.load(f)
    assert screening["excluded"] == ["tip_amount"]
    # the model did not learn from the leak: its AUC is the honest one, far from the leak's ~1.0
    from pipelines.lineage import model_lineage

    auc = {e["component"]: e["metrics"] for e in model_lineage(store, config.pipeline.name).evaluations}
    assert 0.65 < auc["Evaluator"]["candidate"]["auc"] < 0.9
    page = run_report.write_latest(config)
    with open(page) as f:
        text = f.read()
    assert "tip_amount / fare predicts big_tip" in text and "<b>tip_amount</b>" in text


def test_new_data_is_a_new_span_and_lineage_follows_it(tmp_path):
    """Data in span-<N>/ folders: each run reads the newest span, the model records it, and
    lineage answers which models each span trained."""
    from datagen import taxi
    from pipelines import lineage

    root = str(tmp_path)
    overrides = deep_merge(small_overrides(root), {
        "data": {"spans": True, "generate": None, "path": os.path.join(root, "data")},
        "tuning": {"max_trials": 0}, "screening": None, "simplification": None,
    })  # fmt: skip
    config = load_config(TAXI_CONFIG, overrides)
    taxi.write_csv(taxi.generate(2000, seed=61), os.path.join(root, "data", "span-1"))
    first = local_runner.run(config)
    taxi.write_csv(taxi.generate(2000, seed=62), os.path.join(root, "data", "span-2"))
    second = local_runner.run(config)
    assert first.pushed_model and second.run_id != first.run_id
    store = mlmd.open_store(config.pipeline.metadata_path)
    newest = lineage.model_lineage(store, config.pipeline.name)
    assert [d["span"] for d in newest.data] == [2]
    with open(os.path.join(newest.model, "Format-Serving", "assets.extra", "model_metadata.json")) as f:
        assert json.load(f)["data_span"] == [2]
    by_span = {s: {m["component"] for m in lineage.models_of_span(store, config.pipeline.name, s)} for s in (1, 2)}
    assert "Trainer" in by_span[1] and "Trainer" in by_span[2]
    trained_on_1 = {m["model"] for m in lineage.models_of_span(store, config.pipeline.name, 1)}
    assert newest.model not in trained_on_1
