"""95 % intervals of a gating metric measured on a uniform sample of the eval split, where a closed form exists
from the metric's value and the sample's label counts:

- AUC: Hanley and McNeil (1982), from the AUC and the numbers of positive and negative rows;
- accuracy (binary and multiclass): a proportion of every row; recall: a proportion of the positive rows (Wald).

The other gating metrics (PR-AUC, precision, the regression errors) get none: their spread needs each row's
prediction, which TFMA's results do not keep. The sample's size is reported with them all the same.
"""

from __future__ import annotations

import math

Z95 = 1.959964


def auc_interval(auc: float, positives: int, negatives: int) -> tuple[float, float]:
    q1, q2 = auc / (2 - auc), 2 * auc**2 / (1 + auc)
    variance = (auc * (1 - auc) + (positives - 1) * (q1 - auc**2) + (negatives - 1) * (q2 - auc**2)) / (
        positives * negatives
    )
    half = Z95 * math.sqrt(max(variance, 0.0))
    return max(0.0, auc - half), min(1.0, auc + half)


def proportion_interval(p: float, n: int) -> tuple[float, float]:
    half = Z95 * math.sqrt(max(p * (1 - p), 0.0) / n)
    return max(0.0, p - half), min(1.0, p + half)


def interval(metric: str, value: float, rows: int, positives: int | None = None) -> tuple[float, float] | None:
    """The 95 % interval of `metric` (TFMA's name) at `value` on `rows` sampled rows, `positives` of them positive
    (binary labels); None where there is no closed form or too few rows."""
    negatives = None if positives is None else rows - positives
    if metric == "auc" and positives and negatives:
        return auc_interval(value, positives, negatives)
    if metric in ("binary_accuracy", "sparse_categorical_accuracy") and rows:
        return proportion_interval(value, rows)
    if metric == "recall" and positives:
        return proportion_interval(value, positives)
    return None
