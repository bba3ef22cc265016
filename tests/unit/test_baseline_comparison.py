"""The candidate against the baselines: TFMA's change-threshold rule, margins from the config, the gate's names."""

import itertools

import pytest

from models.baseline_comparison import MissingMetricError, compare, passes
from pipelines.eval_configs import baseline_margins, baselines_eval_config
from settings.config import load_config

pytestmark = pytest.mark.unit


def test_a_higher_is_better_metric_must_lead_by_the_margin_in_points():
    assert passes(0.75, 0.5, 0.25, True)  # exactly the margin ahead
    assert not passes(0.7499, 0.5, 0.25, True)
    assert passes(0.5, 0.75, -0.25, True) and not passes(0.4999, 0.75, -0.25, True)  # may trail by 0.25
    assert not passes(0.56, 0.5, 0.1, True)  # 12 % ahead, but 0.06 points: absolute, not relative


def test_an_error_may_be_at_most_the_baselines_times_one_minus_the_margin():
    assert passes(5.0, 4.0, -0.25, False)  # exactly 25 % more error
    assert not passes(5.0001, 4.0, -0.25, False)
    assert passes(3.0, 4.0, 0.25, False) and not passes(3.0001, 4.0, 0.25, False)  # 25 % less, at least
    assert passes(102.9, 100.0, -0.03, False)  # 2.9 more: relative, not absolute
    assert not passes(103.1, 100.0, -0.03, False)
    assert not passes(0.0, 0.0, -0.03, False)  # a baseline error of 0: TFMA's ratio is NaN, which fails


def test_the_rule_is_tfmas_own_validation_of_the_old_per_baseline_thresholds():
    """What one Evaluator per baseline decided: TFMA's validator on the change threshold it was given."""
    import tensorflow_model_analysis as tfma
    from tensorflow_model_analysis.evaluators import metrics_validator

    for (higher, metric, name), margin in itertools.product(
        [(True, "AUC", "auc"), (False, "RootMeanSquaredError", "root_mean_squared_error")], [-0.25, 0.0, 0.25]
    ):
        direction = tfma.MetricDirection.HIGHER_IS_BETTER if higher else tfma.MetricDirection.LOWER_IS_BETTER
        change = {"absolute": {"value": margin}} if higher else {"relative": {"value": -margin}}
        threshold = tfma.MetricThreshold(change_threshold=tfma.GenericChangeThreshold(direction=direction, **change))
        config = tfma.utils.update_eval_config_with_defaults(
            tfma.EvalConfig(
                model_specs=[tfma.ModelSpec(label_key="y")],
                slicing_specs=[tfma.SlicingSpec()],
                metrics_specs=[tfma.MetricsSpec(metrics=[tfma.MetricConfig(class_name=metric, threshold=threshold)])],
            ),
            has_baseline=True,
        )
        for candidate, baseline in itertools.product([0.0, 0.5, 0.75, 0.7499, 1.0, 3.0, 4.0, 5.0, 5.0001], repeat=2):
            key = tfma.metrics.MetricKey(name=name, model_name="candidate")
            metrics = {key: candidate, tfma.metrics.MetricKey(name=name, model_name="baseline"): baseline,
                       key.make_diff_key(): candidate - baseline}  # fmt: skip
            tfma_ok = metrics_validator.validate_metrics(((), metrics), config).validation_ok
            assert passes(candidate, baseline, margin, higher) == tfma_ok, (metric, margin, candidate, baseline)


def test_each_baseline_is_compared_in_order_with_its_margin():
    metrics = {"candidate": {"auc": 0.8}, "linear": {"auc": 0.7}, "boosted": {"auc": 0.805}, "heuristic": {"auc": 0.6}}
    found = compare(metrics, "auc", {"linear": 0.2, "boosted": -0.01, "heuristic": 0.1}, True)
    assert [(c.baseline, c.candidate_value, c.baseline_value, c.margin, c.passed) for c in found] == [
        ("linear", 0.8, 0.7, 0.2, False), ("boosted", 0.8, 0.805, -0.01, True), ("heuristic", 0.8, 0.6, 0.1, True)
    ]  # fmt: skip
    assert found[0].message() == (
        "linear: [overall] auc = 0.8000 against 0.7000 fails change vs the baseline model (absolute +0.2000)"
    )
    [error] = compare({"candidate": {"rmse": 3.0}, "linear": {"rmse": 2.0}}, "rmse", {"linear": -0.03}, False)
    assert not error.passed and error.message().endswith("(relative +0.0300)")


def test_a_missing_metric_or_model_is_named():
    with pytest.raises(MissingMetricError, match="no 'auc' for model 'linear'.*example_count"):
        compare({"candidate": {"auc": 0.8}, "linear": {"example_count": 9}}, "auc", {"linear": 0.0}, True)
    with pytest.raises(MissingMetricError, match="no 'auc' for model 'candidate'"):
        compare({"linear": {"auc": 0.8}}, "auc", {"linear": 0.0}, True)
    with pytest.raises(MissingMetricError, match="no model 'boosted'"):
        compare({"candidate": {"auc": 0.8}}, "auc", {"boosted": 0.0}, True)


def test_margins_come_from_the_config_with_the_metrics_defaults(taxi_config_path):
    level = {"evaluation": {"baselines": {"margin": None}}}
    assert baseline_margins(load_config(taxi_config_path, level)) == {"linear": -0.01, "boosted": -0.01,
                                                                     "heuristic": -0.01}  # fmt: skip
    regression = load_config(taxi_config_path.replace("taxi.yaml", "taxi-regression.yaml"), level)
    assert set(baseline_margins(regression).values()) == {-0.03}  # 3 % of the baseline's error
    set_ = load_config(taxi_config_path, {"evaluation": {"baselines": {"margin": 0.02, "boosted_margin": -0.05}}})
    assert baseline_margins(set_) == {"linear": 0.02, "boosted": -0.05, "heuristic": 0.02}


def test_one_pass_scores_every_baseline_on_the_gating_metric(taxi_config_path):
    import tensorflow_model_analysis as tfma

    config = load_config(taxi_config_path)
    ec = baselines_eval_config(config)
    # the candidate is scored once, by the Evaluator, on the same split
    assert [s.name for s in ec.model_specs] == ["linear", "boosted", "heuristic"]
    assert not any(s.is_baseline for s in ec.model_specs) and {s.label_key for s in ec.model_specs} == {"big_tip"}
    assert [m.class_name for m in ec.metrics_specs[0].metrics] == [config.evaluation.metric]
    assert list(ec.slicing_specs) == [tfma.SlicingSpec()]  # overall only


def test_the_gate_names_each_failed_comparison():
    from components.blessing_gate import baseline_failures

    rows = compare({"candidate": {"auc": 0.7}, "linear": {"auc": 0.75}, "boosted": {"auc": 0.72},
                    "heuristic": {"auc": 0.6}}, "auc", {"linear": 0.0, "boosted": -0.01, "heuristic": 0.0}, True)  # fmt: skip
    assert [c.passed for c in rows] == [False, False, True]
    assert baseline_failures(rows) == ["beats the linear baseline", "comes close to the gradient-boosted reference"]
    assert baseline_failures(rows[2:]) == []
