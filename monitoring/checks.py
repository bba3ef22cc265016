"""Training-serving skew and serving drift, per feature, with TFDV's comparators.

The thresholds from config are written into a copy of the model's schema as
`skew_comparator` / `drift_comparator` (L-infinity distance for categorical
features, Jensen-Shannon divergence for numeric ones), and TFDV's
`validate_statistics` measures every monitored feature. The result keeps every
measurement, not only the alarms, so a report can show how close each one is.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

import pandas as pd
import tensorflow_data_validation as tfdv
from tensorflow_metadata.proto.v0 import anomalies_pb2, schema_pb2, statistics_pb2

from components.validation_gate import HISTOGRAM_BUCKETS
from settings.sections import MonitoringConfig


@dataclass(frozen=True)
class FeatureCheck:
    feature: str
    kind: str  # "skew" | "drift"
    measure: str  # "L_INFTY" | "JENSEN_SHANNON_DIVERGENCE"
    value: float
    threshold: float

    @property
    def alert(self) -> bool:
        return self.value > self.threshold

    def to_dict(self) -> dict:
        return {**asdict(self), "alert": self.alert}


def is_categorical(feature: schema_pb2.Feature) -> bool:
    return feature.type == schema_pb2.BYTES or feature.HasField("int_domain") and feature.int_domain.is_categorical


def with_comparators(schema: schema_pb2.Schema, features: list[str], m: MonitoringConfig) -> schema_pb2.Schema:
    """A copy of `schema` with skew and drift comparators on `features`."""
    out = schema_pb2.Schema()
    out.CopyFrom(schema)
    for feature in out.feature:
        feature.ClearField("skew_comparator")
        feature.ClearField("drift_comparator")
        if feature.name not in features:
            continue
        if is_categorical(feature):
            feature.skew_comparator.infinity_norm.threshold = m.skew_linf
            feature.drift_comparator.infinity_norm.threshold = m.drift_linf
        else:
            feature.skew_comparator.jensen_shannon_divergence.threshold = m.skew_js
            feature.drift_comparator.jensen_shannon_divergence.threshold = m.drift_js
    return out


# Fine histograms: numeric columns carry outliers (a 999.99 fare), and with TFDV's default
# 10 equal-width buckets nearly all the mass falls into the first bucket, so Jensen-Shannon
# misses real drift and flags windows that merely differ in whether they hold an outlier.


def stats_options():
    return tfdv.StatsOptions(num_histogram_buckets=HISTOGRAM_BUCKETS)


def statistics(frame: pd.DataFrame) -> statistics_pb2.DatasetFeatureStatisticsList:
    return tfdv.generate_statistics_from_dataframe(frame, stats_options=stats_options())


def compare(schema: schema_pb2.Schema, training: statistics_pb2.DatasetFeatureStatisticsList,
            current: statistics_pb2.DatasetFeatureStatisticsList,
            previous: statistics_pb2.DatasetFeatureStatisticsList | None) -> list[FeatureCheck]:  # fmt: skip
    """Skew of `current` against `training`, and drift of `current` against `previous` if given."""
    anomalies = tfdv.validate_statistics(
        statistics=training, schema=schema, serving_statistics=current
    )  # skew: training vs serving
    checks = _measurements(anomalies, "skew")
    if previous is not None:
        drift = tfdv.validate_statistics(statistics=current, schema=schema, previous_statistics=previous)
        checks += _measurements(drift, "drift")
    return checks


def _measurements(anomalies: anomalies_pb2.Anomalies, kind: str) -> list[FeatureCheck]:
    out = []
    for info in anomalies.drift_skew_info:
        name = ".".join(info.path.step)
        measurements = info.skew_measurements if kind == "skew" else info.drift_measurements
        for m in measurements:
            out.append(FeatureCheck(name, kind, anomalies_pb2.DriftSkewInfo.Measurement.Type.Name(m.type),
                                    m.value, m.threshold))  # fmt: skip
    return sorted(out, key=lambda c: (c.kind, c.feature))


def to_json(checks: list[FeatureCheck]) -> str:
    return json.dumps([c.to_dict() for c in checks])
