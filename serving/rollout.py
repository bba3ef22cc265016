"""Canary rollout: compare the canary's live metrics with the current model's, then promote or roll back.

The decision is plain Python (`decide`), tested on recorded metrics. The live
metrics of a Vertex AI endpoint come from Cloud Monitoring per deployed model
(`metrics_queries` builds the requests); the local server's JSON-lines
prediction log gives the same numbers (`metrics_from_log`).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class WindowMetrics:
    """What one deployed model did during the observation window."""

    requests: int
    errors: int  # 5xx answers
    p95_latency_ms: float
    mean_score: float  # average prediction: a canary that scores very differently is suspect

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0


@dataclass(frozen=True)
class CanaryPolicy:
    min_requests: int = 500  # below this the canary has not been observed enough: roll back
    max_error_rate: float = 0.01  # absolute, for the canary
    max_error_rate_increase: float = 0.002  # over the current model's
    max_latency_ratio: float = 1.3  # canary p95 / current p95
    max_mean_score_shift: float = 0.05  # |canary mean - current mean|


@dataclass(frozen=True)
class Decision:
    action: str  # "promote" | "rollback"
    reasons: list[str] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(asdict(self))


def decide(canary: WindowMetrics, current: WindowMetrics, policy: CanaryPolicy) -> Decision:
    """Promote only if the canary was observed enough and is no worse than the current model on any check."""
    reasons = []
    if canary.requests < policy.min_requests:
        reasons.append(f"canary served {canary.requests} requests, fewer than the {policy.min_requests} required")
    if canary.error_rate > policy.max_error_rate:
        reasons.append(f"canary error rate {canary.error_rate:.4f} > {policy.max_error_rate}")
    if canary.error_rate - current.error_rate > policy.max_error_rate_increase:
        reasons.append(
            f"canary error rate {canary.error_rate:.4f} exceeds the current model's {current.error_rate:.4f} "
            f"by more than {policy.max_error_rate_increase}"
        )
    if current.p95_latency_ms > 0 and canary.p95_latency_ms / current.p95_latency_ms > policy.max_latency_ratio:
        reasons.append(
            f"canary p95 latency {canary.p95_latency_ms:.1f} ms is over {policy.max_latency_ratio}x "
            f"the current {current.p95_latency_ms:.1f} ms"
        )
    shift = abs(canary.mean_score - current.mean_score)  # NaN when scores are not observed (skipped)
    if not math.isnan(shift) and shift > policy.max_mean_score_shift:
        reasons.append(f"mean score moved by {shift:.4f} (limit {policy.max_mean_score_shift})")
    if reasons:
        return Decision("rollback", reasons)
    return Decision("promote", [f"canary within every limit over {canary.requests} requests"])


def metrics_from_log(records: list[dict]) -> dict[str, WindowMetrics]:
    """Per model version, from the server's JSON-lines prediction log."""
    by_version: dict[str, list[dict]] = {}
    for r in records:
        if r.get("model_version"):
            by_version.setdefault(r["model_version"], []).append(r)
    out = {}
    for version, rs in by_version.items():
        latencies = sorted(r["latency_ms"] for r in rs)
        scores = [s for r in rs for s in r.get("predictions", [])]
        out[version] = WindowMetrics(
            requests=len(rs),
            errors=sum(1 for r in rs if r["status"] >= 500),
            p95_latency_ms=latencies[min(len(latencies) - 1, int(0.95 * len(latencies)))],
            mean_score=sum(scores) / len(scores) if scores else float("nan"),
        )
    return out


ENDPOINT_METRICS = {
    "requests": "aiplatform.googleapis.com/prediction/online/prediction_count",
    "errors": "aiplatform.googleapis.com/prediction/online/error_count",
    "latency": "aiplatform.googleapis.com/prediction/online/prediction_latencies",
}


def metrics_queries(project: str, endpoint_id: str, deployed_model_id: str, start_seconds: int, end_seconds: int):
    """Cloud Monitoring ListTimeSeries requests for one deployed model's window (built offline)."""
    from google.cloud import monitoring_v3

    interval = monitoring_v3.TimeInterval(start_time={"seconds": start_seconds}, end_time={"seconds": end_seconds})
    out = {}
    for name, metric in ENDPOINT_METRICS.items():
        aggregation = monitoring_v3.Aggregation(
            alignment_period={"seconds": max(60, end_seconds - start_seconds)},
            per_series_aligner=(
                monitoring_v3.Aggregation.Aligner.ALIGN_PERCENTILE_95
                if name == "latency"
                else monitoring_v3.Aggregation.Aligner.ALIGN_SUM
            ),
            cross_series_reducer=(
                monitoring_v3.Aggregation.Reducer.REDUCE_MAX
                if name == "latency"
                else monitoring_v3.Aggregation.Reducer.REDUCE_SUM
            ),
        )
        out[name] = monitoring_v3.ListTimeSeriesRequest(
            name=f"projects/{project}",
            filter=(
                f'metric.type = "{metric}" AND resource.type = "aiplatform.googleapis.com/Endpoint" '
                f'AND resource.labels.endpoint_id = "{endpoint_id}" '
                f'AND metric.labels.deployed_model_id = "{deployed_model_id}"'
            ),
            interval=interval,
            aggregation=aggregation,
            view=monitoring_v3.ListTimeSeriesRequest.TimeSeriesView.FULL,
        )
    return out
