"""The TFMA configs: the Evaluator's gates (bound, regression against the last blessed model, months,
fairness counts), and the one pass that scores the candidate and the baselines, with their margins."""

from __future__ import annotations

import json

import tensorflow_model_analysis as tfma
from tensorflow_model_analysis.proto import config_pb2 as tfma_config

from models import histogram_metrics
from models.trainer import SLICE_SIGNATURE, month_name
from settings.config import Config
from settings.metrics import GATING_METRICS, default_margin, higher_is_better

SERVING_SIGNATURE = "serving_default"
# TFMA runs every model through its signatures. Unset, TFMA guesses the type by loading the model with
# whichever Keras `tf.keras` is in its process (Keras 3 cannot load it, tf_keras can, and then TFMA runs it
# as Keras): TF_USE_LEGACY_KERAS would decide how the models are evaluated.
MODEL_TYPE = tfma.TF_GENERIC

METRICS = {
    # calibration: mean prediction / mean label (1.0 when scores are calibrated probabilities, which the
    # cost-derived decision threshold assumes); the plots hold the confusion matrices and the reliability curve
    "binary_classification": ("ExampleCount", *GATING_METRICS["binary_classification"], "Calibration",
                              "ConfusionMatrixPlot", "CalibrationPlot"),
    "multiclass_classification": ("ExampleCount", "SparseCategoricalAccuracy", "SparseCategoricalCrossentropy",
                                  "MultiClassConfusionMatrixPlot"),
    "regression": ("ExampleCount", "RootMeanSquaredError", "MeanAbsoluteError", "MeanSquaredError"),
}  # fmt: skip


def direction(metric: str):
    return (
        tfma_config.MetricDirection.HIGHER_IS_BETTER
        if higher_is_better(metric)
        else tfma_config.MetricDirection.LOWER_IS_BETTER
    )


def eval_config(config: Config, candidates: tuple[str, ...] | list[str] = (tfma.CANDIDATE_KEY,),
                heuristic: bool = False) -> tfma_config.EvalConfig:  # fmt: skip
    """The one TFMA pass of the leaderboard: every candidate, the heuristic floor (with `heuristic`) and the last
    blessed model (`baseline`; TFMA drops it and its change thresholds on a first run) over the eval split.

    Each candidate's gating metric must clear `lower_bound` (or stay under `upper_bound`) overall, must not drop
    by more than `max_regression` against the last blessed model, and in each calendar month must clear
    `slice_lower_bound`; TFMA checks each candidate on its own and names the model in each failure. Categorical
    and fairness slices are reported. (A MetricConfig's plain `threshold` would hold every slice to the overall
    bound.) The heuristic is scored on the gating metric only, without thresholds: the leaderboard compares it.
    """
    e = config.evaluation
    higher = higher_is_better(e.metric)
    bound = {"lower_bound": {"value": e.lower_bound}} if higher else {"upper_bound": {"value": e.upper_bound}}
    allowed_change = -e.max_regression - 1e-10 if higher else e.max_regression + 1e-10
    threshold = tfma_config.MetricThreshold(
        value_threshold=tfma_config.GenericValueThreshold(**bound),
        change_threshold=tfma_config.GenericChangeThreshold(
            direction=direction(e.metric), absolute={"value": allowed_change}
        ),
    )
    slices = [tfma_config.SlicingSpec(feature_keys=[f]) for f in dict.fromkeys(e.slices + e.fairness_features)]
    gated = [tfma_config.PerSliceMetricThreshold(slicing_specs=[tfma_config.SlicingSpec()], threshold=threshold)]
    if e.time_slice:
        month = tfma_config.SlicingSpec(feature_keys=[month_name(config.features.timestamp)])
        slices.append(month)
        if e.slice_lower_bound is not None:  # months are large and balanced; category values may not be
            gated.append(
                tfma_config.PerSliceMetricThreshold(
                    slicing_specs=[month],
                    threshold=tfma_config.MetricThreshold(
                        value_threshold=tfma_config.GenericValueThreshold(lower_bound={"value": e.slice_lower_bound})
                    ),
                )
            )
    t = config.decision_threshold()
    at_threshold = {  # Keras metric arguments
        "BinaryAccuracy": json.dumps({"threshold": t}),
        "Precision": json.dumps({"thresholds": [t]}),
        "Recall": json.dumps({"thresholds": [t]}),
    } if t is not None else {}  # fmt: skip
    # Calibration, and the counts at thresholds on the AUC histogram's bucket edges, come from that
    # histogram (models/histogram_metrics.py: TFMA's values, one pass over the examples instead of several).
    binary = config.problem_type == "binary_classification"
    on_edges = binary and histogram_metrics.on_bucket_edges(
        [*([t] if t is not None else []), *(config.fairness_thresholds() if e.fairness_features else [])]
    )

    def metric(class_name: str, **kwargs) -> tfma_config.MetricConfig:
        from_histogram = class_name + histogram_metrics.SUFFIX
        if hasattr(histogram_metrics, from_histogram) and (on_edges or class_name == "Calibration"):  # no threshold
            return tfma_config.MetricConfig(class_name=from_histogram, module=histogram_metrics.MODULE, **kwargs)
        return tfma_config.MetricConfig(class_name=class_name, **kwargs)

    metrics = [
        metric(
            m,
            config=at_threshold.get(m),
            per_slice_thresholds=gated if m == e.metric else None,
        )
        for m in METRICS[config.problem_type]
    ]
    if e.fairness_features:  # per group: FPR, FNR and positive rate come from its counts
        counts = json.dumps({"thresholds": config.fairness_thresholds()})
        metrics.append(metric("ConfusionMatrixAtThresholds", config=counts))
    # The candidates compute the slice features; the others run `serving_default` in that step instead, so that
    # every model has outputs there (TFMA stores a lone model's outputs without its name, and the slicer then
    # finds no month under the candidate's).
    slicing = [SLICE_SIGNATURE] if e.time_slice else None
    other = [SERVING_SIGNATURE] if e.time_slice else None

    def spec(name: str, functions, **kwargs) -> tfma_config.ModelSpec:
        return tfma_config.ModelSpec(name=name, signature_name=SERVING_SIGNATURE, model_type=MODEL_TYPE,
                                     label_key=config.label, preprocessing_function_names=functions, **kwargs)  # fmt: skip

    models = [spec(name, slicing) for name in candidates]
    metrics_specs = [tfma_config.MetricsSpec(metrics=metrics, model_names=[*candidates, tfma.BASELINE_KEY])]
    if heuristic:
        models.append(spec(HEURISTIC, other))
        metrics_specs.append(tfma_config.MetricsSpec(metrics=[metric(e.metric)], model_names=[HEURISTIC]))
    models.append(spec(tfma.BASELINE_KEY, other, is_baseline=True))
    return tfma_config.EvalConfig(
        model_specs=models,
        slicing_specs=[tfma_config.SlicingSpec(), *slices],
        metrics_specs=metrics_specs,
    )


HEURISTIC = "heuristic"  # the floor's model name in the pass


def heuristic_margin(config: Config) -> float:
    """How far ahead of the heuristic floor every candidate must be on the gating metric: `baselines.margin`. A
    negative margin lets it trail by that much: points of a higher-is-better metric; for an error metric, a
    fraction of the heuristic's error. Unset, -0.01 or 3 % of the error (within the noise of a small eval split)."""
    b = config.evaluation.baselines
    return default_margin(config.evaluation.metric) if b is None or b.margin is None else b.margin
