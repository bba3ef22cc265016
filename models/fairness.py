"""Group fairness of a yes/no decision: rates per group and the gaps between groups.

Plain Python and numpy. The rates come from a confusion matrix per group at a threshold
(TFMA's on the eval split, or one computed here from labelled live predictions), and the
limits are the config's `evaluation.fairness`. A rate counts for a group only when its
denominator reaches `min_group_size`: the group's negatives for FPR, its positives for FNR,
all its rows for the positive rate.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class GroupRates:
    """Counts of one group (`feature`=`group`) at one decision threshold."""

    feature: str
    group: str
    threshold: float
    tp: float
    fp: float
    tn: float
    fn: float

    @property
    def size(self) -> float:
        return self.tp + self.fp + self.tn + self.fn

    @property
    def positives(self) -> float:
        return self.tp + self.fn

    @property
    def negatives(self) -> float:
        return self.fp + self.tn

    @property
    def fpr(self) -> float:
        return self.fp / self.negatives if self.negatives else float("nan")

    @property
    def fnr(self) -> float:
        return self.fn / self.positives if self.positives else float("nan")

    @property
    def positive_rate(self) -> float:
        return (self.tp + self.fp) / self.size if self.size else float("nan")

    def to_dict(self) -> dict:
        return {**asdict(self), "size": self.size, "fpr": self.fpr, "fnr": self.fnr,
                "positive_rate": self.positive_rate}  # fmt: skip


@dataclass(frozen=True)
class FairnessLimits:
    """The largest allowed differences between groups; None: not checked."""

    max_fpr_gap: float | None = None
    max_fnr_gap: float | None = None
    min_positive_rate_ratio: float | None = None  # lowest / highest positive rate (0.8: the four-fifths rule)
    min_group_size: int = 30

    @property
    def any(self) -> bool:
        return any(v is not None for v in (self.max_fpr_gap, self.max_fnr_gap, self.min_positive_rate_ratio))


@dataclass(frozen=True)
class Gap:
    """The spread of one rate across the counted groups of one feature."""

    feature: str
    rate: str  # "fpr" | "fnr" | "positive_rate"
    threshold: float
    low_group: str
    low: float
    high_group: str
    high: float
    groups: int  # groups that counted
    limit: float | None  # max gap, or min ratio for the positive rate
    violated: bool

    @property
    def value(self) -> float:
        """The difference, or for the positive rate the ratio lowest / highest."""
        if self.rate == "positive_rate":
            return self.low / self.high if self.high else 1.0
        return self.high - self.low

    def message(self) -> str:
        name = {"fpr": "false positive rate", "fnr": "false negative rate", "positive_rate": "positive rate"}[self.rate]
        at = f"at threshold {self.threshold:g}"
        if self.rate == "positive_rate":
            bound = (
                f"below the smallest allowed {self.limit:g}" if self.violated else f"(smallest allowed {self.limit})"
            )
            return (f"{self.feature}: {name} of {self.low_group} is {self.low:.3f}, {self.value:.3f} x that of "
                    f"{self.high_group} ({self.high:.3f}) {at}, {bound}")  # fmt: skip
        bound = f"over the largest allowed {self.limit:g}" if self.violated else f"(largest allowed {self.limit})"
        return (f"{self.feature}: {name} of {self.high_group} is {self.high:.3f} against {self.low:.3f} for "
                f"{self.low_group} {at}, a gap of {self.value:.3f} {bound}")  # fmt: skip

    def to_dict(self) -> dict:
        return {**asdict(self), "value": self.value, "message": self.message()}


_DENOMINATOR = {"fpr": "negatives", "fnr": "positives", "positive_rate": "size"}


def gaps(rates: Iterable[GroupRates], limits: FairnessLimits, threshold: float, every_rate: bool = False) -> list[Gap]:
    """Every feature's gap in each rate with a limit (`every_rate`: in all three), at `threshold`, over the
    groups that count."""
    wanted = {"fpr": limits.max_fpr_gap, "fnr": limits.max_fnr_gap, "positive_rate": limits.min_positive_rate_ratio}
    at = [r for r in rates if abs(r.threshold - threshold) < 1e-6]  # TFMA keeps 6 decimals
    out = []
    for feature in sorted({r.feature for r in at}):
        for rate, limit in wanted.items():
            if limit is None and not every_rate:
                continue
            counted = [
                r for r in at if r.feature == feature and getattr(r, _DENOMINATOR[rate]) >= limits.min_group_size
            ]
            if len(counted) < 2:
                continue
            low = min(counted, key=lambda r: getattr(r, rate))
            high = max(counted, key=lambda r: getattr(r, rate))
            gap = Gap(feature, rate, threshold, low.group, getattr(low, rate), high.group, getattr(high, rate),
                      len(counted), limit, False)  # fmt: skip
            violated = limit is not None and (gap.value < limit if rate == "positive_rate" else gap.value > limit)
            out.append(Gap(**{**asdict(gap), "violated": violated}))
    return out


def rates_from_predictions(labels: Sequence, scores: Sequence, groups: dict[str, Sequence],
                           thresholds: Sequence[float]) -> list[GroupRates]:  # fmt: skip
    """Confusion counts per group of each feature in `groups` (feature -> one value per row) at each
    threshold; a score above the threshold is a yes, as in TFMA. A missing value (None, NaN) is in no
    group, as TFMA slices only present values."""
    y = np.asarray(labels).astype(int)
    s = np.asarray(scores, dtype=float)
    out = []
    for feature, values in groups.items():
        values = np.asarray(["" if v is None or v != v else str(v) for v in values])
        for group in sorted(set(values) - {""}):
            mask = values == group
            for t in thresholds:
                yes, truth = s[mask] > t, y[mask] == 1
                out.append(GroupRates(feature, group, float(t), float(np.sum(yes & truth)), float(np.sum(yes & ~truth)),
                                      float(np.sum(~yes & ~truth)), float(np.sum(~yes & truth))))  # fmt: skip
    return out
