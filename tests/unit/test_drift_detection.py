"""Drift and skew detection on generated data, feature by feature, and its false-alarm rate.
The reference plays the training statistics; windows are what a server would log."""

import os

import pytest
from google.protobuf import text_format
from tensorflow_metadata.proto.v0 import schema_pb2

from datagen import taxi
from monitoring import checks
from settings.config import load_config
from tests.conftest import REPO, TAXI_CONFIG

pytestmark = pytest.mark.data

WINDOW = 2000


@pytest.fixture(scope="module")
def setup():
    config = load_config(TAXI_CONFIG)
    schema = schema_pb2.Schema()
    with open(os.path.join(REPO, "schemas", "taxi", "schema.pbtxt")) as f:
        text_format.Parse(f.read(), schema)
    features = [f for f in config.features.inputs() if f not in config.monitoring.exclude]
    monitored = checks.with_comparators(schema, features, config.monitoring)
    training = checks.statistics(
        taxi.generate(8000, seed=100)[features]
    )  # the pipeline's StatisticsGen uses the same buckets
    return monitored, training, features


def alerts(setup, frame, previous=None):
    monitored, training, features = setup
    found = checks.compare(
        monitored, training, checks.statistics(frame[features]),
        checks.statistics(previous[features]) if previous is not None else None,
    )  # fmt: skip
    return found, {(c.kind, c.feature) for c in found if c.alert}


def test_every_monitored_feature_is_measured_with_the_right_comparator(setup):
    _, _, features = setup
    found, _ = alerts(setup, taxi.generate(WINDOW, seed=1), taxi.generate(WINDOW, seed=2))
    measured = {(c.kind, c.feature): c.measure for c in found}
    for kind in ("skew", "drift"):
        assert {f for k, f in measured if k == kind} == set(features)
    assert measured[("skew", "payment_type")] == "L_INFTY"
    assert measured[("drift", "fare")] == "JENSEN_SHANNON_DIVERGENCE"


def test_injected_drift_is_caught_feature_by_feature(setup):
    before = taxi.generate(WINDOW, seed=3)
    after = taxi.generate(WINDOW, seed=4, drift=0.8)
    _, fired = alerts(setup, after, before)
    for kind in ("skew", "drift"):
        caught = {f for k, f in fired if k == kind}
        assert set(taxi.DRIFTED_FEATURES) <= caught, (kind, caught)
        assert caught <= set(taxi.DRIFTED_FEATURES), (kind, caught - set(taxi.DRIFTED_FEATURES))


def test_false_alarm_rate_on_the_same_distribution(setup, record_property):
    """Windows from the reference distribution, over repeated seeds: no alert on any feature."""
    seeds = range(10, 18)
    total = fired_total = 0
    for seed in seeds:
        found, fired = alerts(setup, taxi.generate(WINDOW, seed=seed), taxi.generate(WINDOW, seed=seed + 100))
        total += len(found)
        fired_total += len(fired)
    rate = fired_total / total
    record_property("false_alarm_rate", rate)
    print(f"false alarms: {fired_total} of {total} feature checks over {len(seeds)} seeds ({rate:.3%})")
    assert rate == 0.0
