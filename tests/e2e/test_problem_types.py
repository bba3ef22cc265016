"""The same pipeline and model code on a multiclass and a regression framing of the trips:
each runs end to end, beats its no-learning baseline, is pushed, and is served."""

import os

import numpy as np
import pytest

from datagen import taxi
from metadata import lineage, mlmd
from pipelines import local_runner
from serving import instances, model_store
from settings.config import deep_merge, load_config, workdir_overrides
from tests.conftest import REPO

pytestmark = pytest.mark.e2e

SMALL = {
    "data": {"generate": {"rows": 3000, "seed": 5}},
    "trainer": {"train_steps": 200, "eval_steps": 10, "batch_size": 64},
    "tuning": {"max_trials": 1, "trial_steps": 60},
    # the baselines run; the gate to beat them is tested on binary
    "evaluation": {"baselines": {"margin": -0.5, "boosted_margin": -0.5}},
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
    candidate = evaluations["Evaluator"]["candidate"][metric]
    heuristic = evaluations["EvaluatorVsHeuristic"]["baseline"][metric]  # class frequencies / the mean
    assert (candidate > heuristic + 0.05) if higher else (candidate < 0.8 * heuristic), (candidate, heuristic)
    assert metric in evaluations["EvaluatorVsLinear"]["baseline"]


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
