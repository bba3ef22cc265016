"""The metrics that may gate blessing: their names in TFMA's results and which way is better."""

from __future__ import annotations

# The metrics that may gate blessing, per problem type, and whether higher is better.
GATING_METRICS: dict[str, dict[str, bool]] = {
    "binary_classification": {"AUC": True, "AUCPrecisionRecall": True, "BinaryAccuracy": True, "Precision": True,
                              "Recall": True},
    "multiclass_classification": {"SparseCategoricalAccuracy": True},
    "regression": {"RootMeanSquaredError": False, "MeanAbsoluteError": False, "MeanSquaredError": False},
}  # fmt: skip


# the name TFMA gives each gating metric in its results
METRIC_KEYS = {"AUC": "auc", "AUCPrecisionRecall": "auc_precision_recall", "BinaryAccuracy": "binary_accuracy",
               "Precision": "precision", "Recall": "recall", "SparseCategoricalAccuracy": "sparse_categorical_accuracy",
               "RootMeanSquaredError": "root_mean_squared_error", "MeanAbsoluteError": "mean_absolute_error",
               "MeanSquaredError": "mean_squared_error"}  # fmt: skip


def default_margin(metric: str) -> float:
    """How far the candidate may trail a baseline when the config does not say: 0.01 points of a higher-is-better
    metric, or 3 % of the baseline's error (within the noise of a small eval split)."""
    return -0.01 if higher_is_better(metric) else -0.03


def higher_is_better(metric: str) -> bool:
    return next(m[metric] for m in GATING_METRICS.values() if metric in m)
