"""Whether the candidate stands far enough ahead of each baseline on the gating metric.

The rule is TFMA's change threshold, as one Evaluator per baseline applied it: the change is the
candidate's value minus the baseline's. For a higher-is-better metric it must be at least the margin
(absolute); for an error metric, the change as a fraction of the baseline's error must be at most
-margin (relative), and a baseline error of exactly 0 fails it, as in TFMA (the ratio is NaN).
A negative margin lets the candidate trail by that much.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping

CANDIDATE = "candidate"


class MissingMetricError(LookupError):
    """A model has no value for the gating metric in the evaluation."""


@dataclasses.dataclass(frozen=True)
class Comparison:
    baseline: str  # the baseline model's name in the evaluation
    metric: str  # TFMA's name of the gating metric
    candidate_value: float
    baseline_value: float
    margin: float
    higher_is_better: bool
    passed: bool

    def message(self) -> str:
        """A failed comparison in the words of a failed TFMA threshold, naming the baseline."""
        kind, value = ("absolute", self.margin) if self.higher_is_better else ("relative", -self.margin)
        return (f"{self.baseline}: [overall] {self.metric} = {self.candidate_value:.4f} against "
                f"{self.baseline_value:.4f} fails change vs the baseline model ({kind} {value:+.4f})")  # fmt: skip


def passes(candidate: float, baseline: float, margin: float, higher_is_better: bool) -> bool:
    """TFMA's check of a change threshold: absolute `margin` when higher is better, else relative `-margin`."""
    change = candidate - baseline
    if higher_is_better:
        return change >= margin
    ratio = float("nan") if math.isclose(baseline, 0.0) else change / baseline
    return ratio <= -margin


def compare(metrics: Mapping[str, Mapping[str, float]], metric: str, margins: Mapping[str, float],
            higher_is_better: bool) -> list[Comparison]:  # fmt: skip
    """The candidate against each baseline of `margins`, in its order.

    Args:
        metrics: model name -> metric name -> overall value (the candidate is `candidate`).
        metric: TFMA's name of the gating metric (`auc`, `root_mean_squared_error`, ...).
        margins: baseline model name -> margin (points of the metric, or a fraction of the baseline's error).
        higher_is_better: the metric's direction.

    Returns:
        One Comparison per baseline.

    Raises:
        MissingMetricError: the candidate or a baseline has no value for `metric`.
    """
    candidate = _value(metrics, CANDIDATE, metric)
    out = []
    for name, margin in margins.items():
        base = _value(metrics, name, metric)
        out.append(Comparison(name, metric, candidate, base, margin, higher_is_better,
                              passes(candidate, base, margin, higher_is_better)))  # fmt: skip
    return out


def _value(metrics: Mapping[str, Mapping[str, float]], model: str, metric: str) -> float:
    if metric not in metrics.get(model, {}):
        found = sorted(metrics.get(model, {})) if model in metrics else f"no model '{model}' in {sorted(metrics)}"
        raise MissingMetricError(f"the evaluation has no '{metric}' for model '{model}' (it has: {found})")
    return float(metrics[model][metric])
