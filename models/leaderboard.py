"""The leaderboard: every candidate's standing after the one evaluation pass, and the one that is pushed.

A candidate qualifies when it passes every check: it trained and exported, TFMA's thresholds (the business bound
overall and per month, no regression against the last blessed model), the heuristic floor, the fairness limits
and the serving canary. The winner is the qualifying candidate with the best gating metric; when none
qualifies, nothing is pushed and each one's reasons are listed. Plain functions over plain values: the
component (components/leaderboard.py) reads TFMA's output and serves the canary.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence

from models.baseline_comparison import passes


@dataclasses.dataclass
class Standing:
    name: str
    value: float | None = None  # the gating metric, overall (None: not evaluated)
    interval: tuple[float, float] | None = None  # its 95 % interval, when it was measured on an eval sample
    slices: dict[str, float] = dataclasses.field(default_factory=dict)  # "feature=value" -> the gating metric
    size_bytes: int | None = None
    latency_ms_per_row: float | None = None
    capabilities: list[str] = dataclasses.field(default_factory=list)
    failures: list[str] = dataclasses.field(default_factory=list)  # why it cannot be pushed
    rank: int | None = None  # 1 = best gating metric among all evaluated candidates
    winner: bool = False
    lost_because: str = ""  # for every candidate but the winner

    @property
    def qualifies(self) -> bool:
        return self.value is not None and not self.failures


@dataclasses.dataclass(frozen=True)
class Result:
    metric: str
    higher_is_better: bool
    standings: list[Standing]
    winner: str | None
    heuristic: float | None = None  # the floor's value, when the run has one
    # None: every eval row was scored; else a uniform sample's `rows` of the split's `split_rows` (and `positives`)
    eval_sample: dict | None = None

    def to_dict(self) -> dict:
        return {"metric": self.metric, "higher_is_better": self.higher_is_better, "winner": self.winner,
                "heuristic": self.heuristic, "eval_sample": self.eval_sample,
                "standings": [dataclasses.asdict(s) for s in self.standings]}  # fmt: skip

    @classmethod
    def from_dict(cls, d: Mapping) -> Result:
        return cls(d["metric"], d["higher_is_better"], [Standing(**s) for s in d["standings"]], d["winner"],
                   d.get("heuristic"), d.get("eval_sample"))  # fmt: skip

    def failures(self) -> list[str]:
        """Each candidate's reasons, one line each, named."""
        return [f"{s.name}: {f}" for s in self.standings for f in s.failures]


def floor_failure(value: float, heuristic: float, margin: float, higher_is_better: bool, metric: str) -> str | None:
    """The heuristic floor as TFMA's change threshold applies it (models/baseline_comparison.py)."""
    if passes(value, heuristic, margin, higher_is_better):
        return None
    kind, bound = ("absolute", margin) if higher_is_better else ("relative", -margin)
    return (f"does not beat the heuristic floor: [overall] {metric} = {value:.4f} against {heuristic:.4f} "
            f"fails change vs the heuristic ({kind} {bound:+.4f})")  # fmt: skip


def rank(standings: Sequence[Standing], higher_is_better: bool) -> list[Standing]:
    """Best gating metric first, and on a tie the smaller model (then the faster); candidates without a value
    (failed to train or evaluate) last, by name."""

    def key(s: Standing) -> tuple:
        size = s.size_bytes if s.size_bytes is not None else float("inf")
        latency = s.latency_ms_per_row if s.latency_ms_per_row is not None else float("inf")
        return (-s.value if higher_is_better else s.value, size, latency, s.name)

    scored = sorted((s for s in standings if s.value is not None), key=key)
    unscored = sorted((s for s in standings if s.value is None), key=lambda s: s.name)
    for i, s in enumerate(scored, start=1):
        s.rank = i
    return [*scored, *unscored]


def decide(standings: Sequence[Standing], metric: str, higher_is_better: bool, heuristic: float | None = None,
           heuristic_margin: float = 0.0, canary: Callable[[str], list[str]] | None = None) -> Result:  # fmt: skip
    """Ranks the candidates and picks the winner.

    Args:
        standings: one per candidate, with its value, slices and the failures found so far (TFMA's thresholds,
            fairness, a failed training).
        heuristic: the floor's overall value; every candidate must beat it by `heuristic_margin`.
        canary: name -> serving problems; run in rank order on the candidates that pass everything else, until
            one passes (the costly check runs only where it can change the outcome).
    """
    for s in standings:
        if s.value is not None and heuristic is not None:
            failure = floor_failure(s.value, heuristic, heuristic_margin, higher_is_better, metric)
            if failure:
                s.failures.append(failure)
    ordered = rank(standings, higher_is_better)
    winner = None
    for s in ordered:
        if not s.qualifies:
            continue
        if canary is not None:
            s.failures.extend(f"serving canary: {p}" for p in canary(s.name))
            if s.failures:
                continue
        winner = s
        break
    for s in ordered:
        s.winner = s is winner
        if s is winner:
            continue
        if s.failures:
            s.lost_because = "; ".join(s.failures)
        elif winner is not None and s.value is not None:
            s.lost_because = f"{metric} {s.value:.4f} against the winner's {winner.value:.4f}"
        else:
            s.lost_because = "not evaluated"
    return Result(metric, higher_is_better, list(ordered), winner.name if winner else None, heuristic)
