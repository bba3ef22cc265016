"""The candidate against the baselines: TFMA's change-threshold rule, margins from the config, the gate's names."""

import itertools

import pytest

from models.baseline_comparison import passes
from pipelines.eval_configs import heuristic_margin
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


def test_the_heuristic_margin_comes_from_the_config_with_the_metrics_default(taxi_config_path):
    level = {"evaluation": {"baselines": {"margin": None}}}
    assert heuristic_margin(load_config(taxi_config_path, level)) == -0.01
    regression = load_config(taxi_config_path.replace("taxi.yaml", "taxi-regression.yaml"), level)
    assert heuristic_margin(regression) == -0.03  # 3 % of the heuristic's error
    assert heuristic_margin(load_config(taxi_config_path, {"evaluation": {"baselines": {"margin": 0.02}}})) == 0.02
