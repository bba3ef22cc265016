"""The same pipeline and model code on a multiclass and a regression framing of the trips:
each runs end to end, beats its no-learning baseline, is pushed, and is served."""

import os

import numpy as np
import pytest

from datagen import taxi
from metadata import lineage, mlmd
from pipelines import local_runner
from serving import instances, model_store
from settings.config import load_config
from settings.yaml_files import deep_merge, workdir_overrides
from tests.conftest import REPO

pytestmark = pytest.mark.e2e

SMALL = {
    "data": {"generate": {"rows": 3000, "seed": 5}},
    "trainer": {"train_steps": 200, "eval_steps": 10, "batch_size": 64},
    "tuning": {"max_trials": 1, "trial_steps": 60},
    "edge": None,  # each head's TFLite conversion is a unit test (tests/unit/test_edge.py)
    # two candidates with a head per problem type (and attributions); the floor's gate is tested on binary
    "model": {"candidates": ["network", "linear"]},
    "evaluation": {"baselines": {"margin": -0.5}},
}
CASES = {
    # (config, success level lenient enough for 3,000 rows, metric, higher is better, no-learning baseline bound)
    "multiclass": ("taxi-multiclass.yaml", 0.5, "sparse_categorical_accuracy", True),
    "regression": ("taxi-regression.yaml", 2.6, "root_mean_squared_error", False),
}


@pytest.fixture(scope="module", params=sorted(CASES))
def run(request, tmp_path_factory):
    name = request.param
    config_file, level, metric, higher = CASES[name]
    root = str(tmp_path_factory.mktemp(name))
    overrides = deep_merge(workdir_overrides(root), {**SMALL, "framing": {"success_level": level}})
    config = load_config(os.path.join(REPO, "configs", config_file), overrides)
    return name, config, local_runner.run(config), metric, higher


def test_each_problem_type_runs_beats_its_baseline_and_is_pushed(run):
    name, config, summary, metric, higher = run
    assert {c.state for c in summary.components} <= {"COMPLETE", "CACHED"}, summary.components
    assert summary.blessed and summary.pushed_model, summary.failures
    store = mlmd.open_store(config.pipeline.metadata_path)
    evaluations = {e["component"]: e["metrics"] for e in lineage.model_lineage(store, config.pipeline.name).evaluations}
    scores = evaluations["Leaderboard"]  # one pass: both candidates and the floor
    candidate = scores[summary.winner][metric]
    heuristic = scores["heuristic"][metric]  # class frequencies / the mean
    assert (candidate > heuristic + 0.05) if higher else (candidate < 0.8 * heuristic), (candidate, heuristic)
    other = scores["linear" if summary.winner == "network" else "network"][metric]
    assert (candidate >= other) if higher else (candidate <= other)  # the better one was pushed


def test_pushed_model_is_served_with_the_heads_output(run):
    name, config, summary, _, _ = run
    model = model_store.load(summary.pushed_model, personal_columns=list(config.data.personal_columns))
    frame = taxi.generate(200, seed=23)
    rows = [model.validator.instance(r, i) for i, r in enumerate(instances.from_frame(
        frame.drop(columns=[*taxi.OUTCOMES, "trip_id"])))]  # fmt: skip
    scores = model.predict(rows)
    answers = [model.answer(s) for s in scores]
    if name == "multiclass":
        assert model.output == "probabilities" and model.decision_threshold is None
        probabilities = np.array(scores)
        assert probabilities.shape == (200, 3) and np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
        assert {a["class"] for a in answers} >= {0, 1} and all(a["class"] in (0, 1, 2) for a in answers)
        # the predicted class agrees with the truth far more often than the majority class does
        truth = frame["tip_class"].to_numpy()
        assert (probabilities.argmax(axis=1) == truth).mean() > (truth == np.bincount(truth).argmax()).mean()
    else:
        assert model.output == "prediction" and all(isinstance(s, float) for s in scores)
        error = np.sqrt(np.mean((np.array(scores) - frame["tip_amount"].to_numpy()) ** 2))
        assert error < frame["tip_amount"].std(), error
    explained = model.explain(rows[:4])
    for e in explained:
        a = e["attributions"][0]
        assert set(a["featureAttributions"]) == set(model.validator.rules)
        assert a["approximationError"] < 0.05 * max(0.05, abs(a["instanceOutputValue"] - a["baselineOutputValue"]))


def test_monitoring_measures_live_quality_and_retrains_on_it(run, tmp_path):
    """Serve the pushed model, log two windows, join labels for the second: skew and drift are measured,
    the live metrics are the model's on those rows, and a ceiling/floor it misses fires retraining."""
    from monitoring import run as monitoring
    from serving import server
    from serving.client import PredictionClient

    name, config, summary, _, higher = run
    live_config = config.replace(
        serving=config.serving.replace(log_path=str(tmp_path / "log.jsonl")),
        monitoring=config.monitoring.replace(
            output_dir=str(tmp_path / "monitoring"), log_path=str(tmp_path / "log.jsonl"), window_rows=400, min_rows=100
        ),  # fmt: skip
    )
    srv = server.build(live_config, port=0).start()
    client = PredictionClient(srv.url)
    frames = [taxi.generate(400, seed=61), taxi.generate(400, seed=62)]
    scored = []
    for frame in frames:
        rows = instances.from_frame(frame.drop(columns=list(taxi.OUTCOMES)))
        for i in range(0, len(rows), 100):
            status, body = client.predict(rows[i : i + 100])
            assert status == 200, body
            scored += body["predictions"]
    srv.stop()
    labels = tmp_path / "labels.csv"
    frames[1][["trip_id", config.label]].to_csv(labels, index=False)

    result = monitoring.monitor(live_config, str(labels))
    assert {c["kind"] for c in result["checks"]} == {"skew", "drift"}
    w0, w1 = result["live_evaluation"]
    metric = config.evaluation.metric
    assert (w0["labelled"], w1["labelled"], w0[metric]) == (0, 400, None)
    truth = frames[1][config.label].to_numpy()
    second = scored[400:]
    if name == "multiclass":
        predicted = np.array([p["class"] for p in second])
        assert w1[metric] == pytest.approx(np.mean(predicted == truth), abs=1e-6)
        for c in set(truth.tolist()):
            assert w1[f"recall_class_{c}"] == pytest.approx(np.mean(predicted[truth == c] == c), abs=1e-6)
    else:
        error = np.array([p["prediction"] for p in second]) - truth
        assert w1["RootMeanSquaredError"] == pytest.approx(np.sqrt(np.mean(error**2)), abs=1e-5)
        assert w1["MeanAbsoluteError"] == pytest.approx(np.mean(np.abs(error)), abs=1e-5)
    assert not [r for r in result["retraining"]["reasons"] if r.startswith("live ")]  # as good live as at evaluation
    # a bar the live metric misses fires retraining, in the metric's own direction
    retrain = live_config.monitoring.retrain
    strict = retrain.replace(min_live_metric=0.99) if higher else retrain.replace(max_live_error=0.01)
    result = monitoring.monitor(live_config.replace(monitoring=live_config.monitoring.replace(retrain=strict)),
                                str(labels))  # fmt: skip
    word = "below 0.99" if higher else "above 0.01"
    assert f"live {metric} {w1[metric]:.4f} is {word}" in result["retraining"]["reasons"]
    assert result["retraining"]["retrain"] is True
