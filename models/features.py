"""Which raw columns the model reads and the names of what Transform makes of them.

Transform and Trainer receive this as a plain dict (their `custom_config`), so
model code depends on nothing but TensorFlow.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field

# what a cell holds when it holds nothing: pandas' default NA strings (feature inference reads the sample with
# the same list), so a value is missing the same way in the inferred features, statistics, Transform and serving
MISSING_TOKENS = ("", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN", "<NA>",
                  "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null")  # fmt: skip


def safe_name(column: str) -> str:
    """A column name usable as a TensorFlow feature and signature input: runs of characters other than
    letters, digits, `_`, `.` and `-` become `_` ("Culmen Length (mm)" -> "Culmen_Length_mm")."""
    name = re.sub(r"[^A-Za-z0-9_.\-]+", "_", column).strip("_")
    return name if name and name[0].isalnum() else f"c_{name}"


HOURS = 24
WEEKDAYS = 7


@dataclass(frozen=True)
class FeatureSpec:
    label: str
    numeric: tuple[str, ...] = ()
    categorical: tuple[str, ...] = ()
    hashed: dict[str, int] = field(default_factory=dict)
    timestamp: str | None = None
    top_k: int = 100
    oov_buckets: int = 1
    buckets: dict[str, int] = field(default_factory=dict)  # numeric column -> quantile buckets (an extra id)
    crosses: dict[str, int] = field(default_factory=dict)  # "a x b" (two id features) -> hash buckets

    @classmethod
    def from_dict(cls, d: dict) -> FeatureSpec:
        return cls(
            label=d["label"],
            numeric=tuple(d.get("numeric", ())),
            categorical=tuple(d.get("categorical", ())),
            hashed=dict(d.get("hashed", {})),
            timestamp=d.get("timestamp"),
            top_k=int(d.get("top_k", 100)),
            oov_buckets=int(d.get("oov_buckets", 1)),
            buckets=dict(d.get("buckets", {})),
            crosses=dict(d.get("crosses", {})),
        )

    def to_dict(self) -> dict:
        return {
            "label": self.label,
            "numeric": list(self.numeric),
            "categorical": list(self.categorical),
            "hashed": dict(self.hashed),
            "timestamp": self.timestamp,
            "top_k": self.top_k,
            "oov_buckets": self.oov_buckets,
            "buckets": dict(self.buckets),
            "crosses": dict(self.crosses),
        }

    def restricted_to(self, columns) -> FeatureSpec:
        """The same spec without the features whose raw column is not in `columns` (those a
        feature screen excluded: Transform does not parse them)."""
        keep = set(columns)
        kept = FeatureSpec(
            label=self.label,
            numeric=tuple(n for n in self.numeric if n in keep),
            categorical=tuple(n for n in self.categorical if n in keep),
            hashed={n: b for n, b in self.hashed.items() if n in keep},
            timestamp=self.timestamp if self.timestamp in keep else None,
            top_k=self.top_k,
            oov_buckets=self.oov_buckets,
            buckets={n: b for n, b in self.buckets.items() if n in keep},
        )
        ids = set(kept.categorical_outputs())
        crosses = {k: b for k, b in self.crosses.items() if set(cross_members(k)) <= ids}
        return dataclasses.replace(kept, crosses=crosses)

    def raw_inputs(self) -> tuple[str, ...]:
        """Raw columns needed at serving time (the label is not one)."""
        ts = (self.timestamp,) if self.timestamp else ()
        return tuple(self.numeric) + tuple(self.categorical) + tuple(self.hashed) + ts

    def dense_outputs(self) -> tuple[str, ...]:
        """Transformed float features: scaled numerics and their missing indicators."""
        return tuple(self.numeric) + tuple(missing_name(n) for n in self.numeric)

    def categorical_outputs(self) -> tuple[str, ...]:
        """Transformed integer-id features, embedded by the model (crosses come last: their members
        are these)."""
        time = (hour_name(self.timestamp), weekday_name(self.timestamp)) if self.timestamp else ()
        buckets = tuple(bucket_name(n) for n in self.buckets)
        return (
            tuple(self.categorical) + tuple(self.hashed) + time + buckets + tuple(cross_name(k) for k in self.crosses)
        )

    def raw_of(self) -> dict[str, tuple[str, ...]]:
        """Transformed feature -> the raw column(s) it is made from, where the names differ."""
        found: dict[str, tuple[str, ...]] = {missing_name(n): (n,) for n in self.numeric}
        found.update({bucket_name(n): (n,) for n in self.buckets})
        if self.timestamp:
            found.update(
                {hour_name(self.timestamp): (self.timestamp,), weekday_name(self.timestamp): (self.timestamp,)}
            )
        for key in self.crosses:
            found[cross_name(key)] = tuple(r for m in cross_members(key) for r in found.get(m, (m,)))
        return found


def bucket_name(column: str) -> str:
    return f"{column}_bucket"


def cross_members(key: str) -> tuple[str, str]:
    """`"a x b"` -> ("a", "b")."""
    parts = tuple(p.strip() for p in key.split(" x "))
    if len(parts) != 2 or not all(parts):
        raise ValueError(f"a cross is written 'a x b', got {key!r}")
    return parts


def cross_name(key: str) -> str:
    a, b = cross_members(key)
    return f"{a}_x_{b}"


def missing_name(column: str) -> str:
    return f"{column}_missing"


def hour_name(column: str) -> str:
    return f"{column}_hour"


def weekday_name(column: str) -> str:
    return f"{column}_weekday"
