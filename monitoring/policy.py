"""The retraining policy: does what monitoring found call for a new model? Plain Python."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from settings.sections import RetrainPolicyConfig


@dataclass(frozen=True)
class Observations:
    """What one monitoring run saw; None where it could not be measured."""

    skew_alerts: list[str] = field(default_factory=list)  # features over the skew threshold
    drift_alerts: list[str] = field(default_factory=list)
    live_metric: float | None = None  # the gating metric on labelled live traffic
    bias_alerts: list[str] = field(default_factory=list)  # fairness gaps over the gate's limits, on live labels
    new_labeled_rows: int = 0
    model_age_days: float | None = None


@dataclass(frozen=True)
class RetrainDecision:
    retrain: bool
    reasons: list[str]

    def to_dict(self) -> dict:
        return asdict(self)


def decide(seen: Observations, policy: RetrainPolicyConfig, metric: str, bound: float,
           higher_is_better: bool = True) -> RetrainDecision:  # fmt: skip
    """Retrain when any enabled rule fires; every firing rule is a reason. `bound` is the live metric's
    floor, or its ceiling when lower is better (an error)."""
    important = set(policy.important_features)

    def matters(features: list[str]) -> list[str]:
        return sorted(f for f in features if not important or f in important)

    reasons = []
    if policy.on_skew and matters(seen.skew_alerts):
        reasons.append(f"training-serving skew on {', '.join(matters(seen.skew_alerts))}")
    if policy.on_drift and matters(seen.drift_alerts):
        reasons.append(f"drift between serving windows on {', '.join(matters(seen.drift_alerts))}")
    if seen.live_metric is not None and (seen.live_metric < bound if higher_is_better else seen.live_metric > bound):
        reasons.append(f"live {metric} {seen.live_metric:.4f} is {'below' if higher_is_better else 'above'} {bound}")
    if policy.on_bias and seen.bias_alerts:
        reasons += [f"bias on live labels: {alert}" for alert in seen.bias_alerts]
    if policy.min_new_labeled_rows and seen.new_labeled_rows >= policy.min_new_labeled_rows:
        reasons.append(f"{seen.new_labeled_rows} new labelled rows (at least {policy.min_new_labeled_rows})")
    if (
        policy.max_model_age_days
        and seen.model_age_days is not None
        and seen.model_age_days > policy.max_model_age_days
    ):
        reasons.append(f"the served model is {seen.model_age_days:.1f} days old (limit {policy.max_model_age_days:g})")
    return RetrainDecision(bool(reasons), reasons)
