"""TFMA's threshold metrics and calibration, computed from the calibration histogram that TFMA already
builds for AUC, instead of a pass of their own over every example and slice.

TFMA computes Precision, Recall and BinaryAccuracy at a given threshold, ConfusionMatrixAtThresholds
and Calibration with combiners of their own, each of which visits every example of every slice in
Python. Its AUC, PR-AUC and plots share one histogram of 10,000 prediction buckets, from which
`binary_confusion_matrices(use_histogram=True)` derives the counts at any threshold that falls on a
bucket edge (k / 10,000: the decision thresholds of a config, such as 0.25 or 0.5) and whose buckets
sum to the totals Calibration divides. The classes here (`<TFMA's class name>FromHistogram`) are
TFMA's own with that one change: same metric names in the results, same counts (but for a prediction
exactly on a threshold, counted above it instead of below), one visit per example instead of four. A
threshold between two edges would move to an edge, so `on_bucket_edges` says whether a config's
thresholds qualify; the eval config uses TFMA's own classes when they do not.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from tensorflow_model_analysis import metrics as tfma_metrics
from tensorflow_model_analysis.metrics import binary_confusion_matrices, calibration_histogram, metric_types

MODULE = __name__  # what a MetricConfig names for TFMA to load these classes
SUFFIX = "FromHistogram"  # TFMA looks a class name up in its own registry before the module
_BELOW_EDGE = 2 * binary_confusion_matrices._EPSILON  # TFMA's histogram path adds one epsilon to each threshold


def on_bucket_edges(thresholds: list[float]) -> bool:
    """Whether every threshold is an edge of TFMA's default histogram buckets (k / 10,000)."""
    buckets = calibration_histogram.DEFAULT_NUM_BUCKETS
    return all(0.0 < t < 1.0 and abs(t * buckets - round(t * buckets)) < 1e-9 for t in thresholds)


def _from_histogram(thresholds: list[float], value: Callable[[metric_types.MetricKey, Any], Any], name=None,
                    eval_config=None, model_name: str = "", output_name: str = "", sub_key=None,
                    aggregation_type=None, class_weights=None, example_weighted: bool = False, preprocessors=None
                    ) -> metric_types.MetricComputations:  # fmt: skip
    """The confusion matrices at `thresholds` from the histogram, and the metric `name`: `value(key, matrices)`."""
    if not on_bucket_edges(thresholds):
        raise ValueError(f"thresholds {thresholds} are not all edges of TFMA's histogram buckets (k / "
                         f"{calibration_histogram.DEFAULT_NUM_BUCKETS}): use TFMA's own metric class")  # fmt: skip
    key = metric_types.MetricKey(name=name, model_name=model_name, output_name=output_name, sub_key=sub_key,
                                 example_weighted=example_weighted, aggregation_type=aggregation_type)  # fmt: skip
    # TFMA's histogram path counts a bucket [t, t + 1/10,000) below t; a hair below each edge it
    # counts it above, as the per-example path does (which puts a prediction exactly at t below).
    computations = binary_confusion_matrices.binary_confusion_matrices(
        thresholds=[t - _BELOW_EDGE for t in thresholds],
        use_histogram=True,
        eval_config=eval_config,
        model_name=model_name,
        output_name=output_name,
        sub_key=sub_key,
        aggregation_type=aggregation_type,
        class_weights=class_weights,
        example_weighted=example_weighted,
        preprocessors=preprocessors,
    )
    matrices_key = computations[-1].keys[-1]

    def result(metrics: dict[metric_types.MetricKey, Any]) -> dict[metric_types.MetricKey, Any]:
        matrices = metrics[matrices_key]._replace(thresholds=list(thresholds))
        return {key: value(key, matrices)}

    return [*computations, metric_types.DerivedMetricComputation(keys=[key], result=result)]


class _FromHistogram:
    """Mixin for TFMA's single-class confusion-matrix metrics: the counts come from the histogram."""

    # TFMA passes a computation only the arguments its signature names: each is spelled out here
    def _metric_computations(self, thresholds=None, num_thresholds=None, top_k=None, class_id=None, name=None,
                             eval_config=None, model_name="", output_name="", sub_key=None, aggregation_type=None,
                             class_weights=None, example_weighted=False, preprocessors=None, metric_key=None,
                             **kwargs) -> metric_types.MetricComputations:  # fmt: skip
        if num_thresholds is not None or top_k is not None or class_id is not None or metric_key is not None:
            raise ValueError(f"{type(self).__name__} from the histogram takes thresholds only")
        if thresholds is None:
            thresholds = [self._default_threshold()]
        thresholds = [thresholds] if isinstance(thresholds, float) else list(thresholds)
        return _from_histogram(thresholds, lambda key, m: self._metric_value(key=key, matrices=m, **kwargs), name,
                               eval_config, model_name, output_name, sub_key, aggregation_type, class_weights,
                               example_weighted, preprocessors)  # fmt: skip


class PrecisionFromHistogram(_FromHistogram, tfma_metrics.Precision):
    pass


class RecallFromHistogram(_FromHistogram, tfma_metrics.Recall):
    pass


class BinaryAccuracyFromHistogram(_FromHistogram, tfma_metrics.BinaryAccuracy):
    pass


class ConfusionMatrixAtThresholdsFromHistogram(tfma_metrics.ConfusionMatrixAtThresholds):
    def _metric_computations(self, thresholds, top_k=None, class_id=None, name=None, eval_config=None,
                             model_name="", output_name="", sub_key=None, aggregation_type=None, class_weights=None,
                             example_weighted=False) -> metric_types.MetricComputations:  # fmt: skip
        if top_k is not None or class_id is not None:
            raise ValueError("ConfusionMatrixAtThresholds from the histogram takes thresholds only")
        return _from_histogram(list(thresholds), lambda key, matrices: matrices, name, eval_config, model_name,
                               output_name, sub_key, aggregation_type, class_weights, example_weighted)  # fmt: skip


def _calibration(name: str = "calibration", eval_config=None, model_name: str = "", output_name: str = "",
                 sub_key=None, aggregation_type=None, class_weights=None, example_weighted: bool = False
                 ) -> metric_types.MetricComputations:  # fmt: skip
    key = metric_types.MetricKey(name=name, model_name=model_name, output_name=output_name, sub_key=sub_key,
                                 example_weighted=example_weighted)  # fmt: skip
    computations = calibration_histogram.calibration_histogram(
        eval_config=eval_config, model_name=model_name, output_name=output_name, sub_key=sub_key,
        aggregation_type=aggregation_type, class_weights=class_weights, example_weighted=example_weighted,
    )  # fmt: skip
    histogram_key = computations[-1].keys[-1]

    def result(metrics: dict[metric_types.MetricKey, Any]) -> dict[metric_types.MetricKey, Any]:
        buckets = metrics[histogram_key]
        labels = sum(b.weighted_labels for b in buckets)
        predictions = sum(b.weighted_predictions for b in buckets)
        return {key: float("nan") if np.isclose(labels, 0.0) else predictions / labels}

    return [*computations, metric_types.DerivedMetricComputation(keys=[key], result=result)]


class CalibrationFromHistogram(metric_types.Metric):
    """Total weighted predictions / total weighted labels (TFMA's Calibration), from the histogram's buckets."""

    def __init__(self, name: str = "calibration"):
        super().__init__(tfma_metrics.merge_per_key_computations(_calibration), name=name)
