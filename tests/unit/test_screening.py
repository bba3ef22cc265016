"""Feature screening: leakage (alone or as a rate of two columns), near-constant and redundant
columns, on the project's generated trips and on small made-up tables."""

import numpy as np
import pandas as pd
import pytest

from datagen import taxi
from models import screening

pytestmark = pytest.mark.data

TAXI_FEATURES = ["trip_seconds", "trip_miles", "fare", "payment_type", "company", "pickup_community_area",
                 "dropoff_community_area", "taxi_id", "trip_start_timestamp"]  # fmt: skip


def trips(rows: int = 6000) -> pd.DataFrame:
    return taxi.generate(rows, seed=4).drop(columns=list(taxi.PERSONAL_COLUMNS))


def by_column(findings):
    return {f.column: f for f in findings}


def test_the_generated_leaky_column_is_caught_and_excluded_when_it_is_a_feature():
    frame = trips()
    features = [*TAXI_FEATURES, "tip_amount"]  # a user who lists every column
    found = by_column(screening.screen(frame, "big_tip", "binary_classification", features, screening.Settings(),
                                       ignore=("trip_id",)))  # fmt: skip
    leak = found["tip_amount"]
    assert leak.finding == "leaky" and leak.excluded and "tip_amount / fare" in leak.reason
    assert found["tip_class"].finding == "leaky" and not found["tip_class"].excluded  # reported; not a feature
    assert "trip_id" not in found and "big_tip" not in found
    legit = [f for f in found.values() if f.column in TAXI_FEATURES]
    assert all(f.finding == "ok" and not f.excluded for f in legit), legit
    assert found["payment_type"].power > 0.65 > max(found[c].power for c in ("fare", "company", "taxi_id"))
    kept = by_column(screening.screen(frame, "big_tip", "binary_classification", features,
                                      screening.Settings(keep=("tip_amount",))))  # fmt: skip
    assert kept["tip_amount"].finding == "leaky" and not kept["tip_amount"].excluded
    assert "kept" in kept["tip_amount"].reason


def test_leak_measures_fit_each_problem_type():
    frame = trips()
    multi = by_column(screening.screen(frame, "tip_class", "multiclass_classification", ["tip_amount", "fare"],
                                       screening.Settings()))  # fmt: skip
    assert multi["tip_amount"].excluded and "accuracy" in multi["tip_amount"].reason
    assert multi["big_tip"].power < 0.95  # reveals one class of three: reported, not called a leak
    rng = np.random.default_rng(0)
    x = rng.normal(size=4000)
    table = pd.DataFrame({"x": x, "copy_of_y": 3 * x + 1, "noise": rng.normal(size=4000), "y": 3 * x + 1})
    reg = by_column(screening.screen(table, "y", "regression", ["x", "copy_of_y", "noise"], screening.Settings()))
    assert reg["copy_of_y"].excluded and reg["x"].excluded  # y is a function of either alone: both leak
    assert reg["noise"].finding == "ok" and abs(reg["noise"].power) < 0.05


def test_near_constant_and_redundant_features_are_dropped_with_the_reason():
    rng = np.random.default_rng(1)
    n = 4000
    signal = rng.normal(size=n)
    y = (signal + rng.normal(size=n) > 0).astype(int)
    table = pd.DataFrame({
        "signal": signal,
        "signal_in_cm": signal * 100 + rng.normal(scale=0.5, size=n),  # the same measure, another unit
        "constant": np.where(rng.random(n) < 0.995, "A", "B"),
        "other": rng.normal(size=n),
        "y": y,
    })  # fmt: skip
    found = by_column(screening.screen(table, "y", "binary_classification",
                                       ["signal", "signal_in_cm", "constant", "other"], screening.Settings()))  # fmt: skip
    assert found["constant"].finding == "near_constant" and found["constant"].excluded
    redundant = [found[c] for c in ("signal", "signal_in_cm") if found[c].finding == "redundant"]
    assert len(redundant) == 1 and redundant[0].excluded and "|r| =" in redundant[0].reason
    assert found["other"].finding == "ok" and not found["other"].excluded


def test_excluded_features_are_deprecated_in_the_schema_transform_reads():
    from tensorflow_metadata.proto.v0 import schema_pb2

    from components.feature_screen import deprecate

    schema = schema_pb2.Schema(feature=[schema_pb2.Feature(name="fare"), schema_pb2.Feature(name="tip_amount")])
    out = deprecate(schema, ["tip_amount"])
    stages = {f.name: f.lifecycle_stage for f in out.feature}
    assert stages == {"fare": schema_pb2.UNKNOWN_STAGE, "tip_amount": schema_pb2.DEPRECATED}
    assert schema.feature[1].lifecycle_stage == schema_pb2.UNKNOWN_STAGE  # the input schema is not changed


def test_inference_types_columns_and_detects_personal_ones(taxi_config_path):
    """features.infer on the generated table: types from the data, and personal columns found by
    what they hold even when the config does not name them."""

    from settings.config import load_config
    from tables.feature_inference import detect_personal, infer

    frame = taxi.generate(3000, seed=8)
    found = detect_personal(frame)
    assert found == {"rider_email": "e-mail addresses", "rider_phone": "phone numbers"}
    config = load_config(taxi_config_path)
    blank = config.features.replace(numeric=(), categorical=(), hashed={}, infer=True)
    typed, left_out = infer(frame.drop(columns=list(taxi.PERSONAL_COLUMNS)), config.replace(features=blank))
    assert left_out == []  # every column of the generated table can be a feature
    assert {"fare", "trip_miles", "trip_seconds", "pickup_latitude", "tip_amount"} <= set(typed["numeric"])
    assert {"payment_type", "company", "tip_class"} <= set(typed["categorical"])
    assert "pickup_community_area" in typed["numeric"]  # 77 area codes: more than 20 distinct numbers
    assert "taxi_id" in typed["categorical"] or "taxi_id" in typed["hashed"]
    assert not {"big_tip", "trip_id", "trip_start_timestamp"} & set(typed["numeric"] + typed["categorical"])


def flights(rows: int = 8000, seed: int = 3) -> pd.DataFrame:
    """Departures over a year: the label (delayed over 15 minutes) is the actual minus the scheduled departure;
    the actual times are recorded after the outcome; the rest is known before it."""
    rng = np.random.default_rng(seed)
    scheduled = 1_672_531_200 + rng.integers(0, 365 * 86400, rows)
    hour = (scheduled % 86400) / 3600
    late = rng.random(rows) < 0.1 + 0.02 * hour  # later in the day, more delays
    delay = np.where(late, 5 + rng.exponential(40, rows), rng.normal(0, 4, rows))  # minutes
    duration = rng.uniform(60, 300, rows)
    actual = scheduled + np.round(delay * 60)
    return pd.DataFrame({
        "scheduled_departure": scheduled, "actual_departure": actual,
        "scheduled_arrival": scheduled + np.round(duration * 60),
        "actual_arrival": actual + np.round((duration + rng.normal(0, 15, rows)) * 60),
        "distance": np.round(duration * 8 + rng.normal(0, 40, rows)),
        "carrier": rng.choice(["AA", "B6", "DL", "UA", "WN"], rows),
        "delayed": (delay > 15).astype(int),
    })  # fmt: skip


def test_an_actual_time_that_with_the_scheduled_one_defines_the_label_is_excluded_naming_the_pair():
    frame = flights()
    features = [c for c in frame.columns if c != "delayed"]
    found = by_column(screening.screen(frame, "delayed", "binary_classification", features, screening.Settings()))
    leak = found["actual_departure"]
    assert leak.finding == "leaky" and leak.excluded and "scheduled_departure" in leak.reason, leak
    assert leak.power < 0.9  # alone it predicts little: only the pair gives it away
    for honest in ("distance", "carrier", "scheduled_arrival"):
        assert found[honest].finding == "ok" and not found[honest].excluded, found[honest]
    # which of the two was known before the outcome is for the user to say
    kept = by_column(screening.screen(frame, "delayed", "binary_classification", features,
                                      screening.Settings(keep=("scheduled_departure",))))  # fmt: skip
    assert kept["actual_departure"].excluded and not kept["scheduled_departure"].excluded


def test_an_honest_measurement_that_predicts_the_label_well_is_not_called_a_leak():
    """palmerpenguins' processed table: bill length / depth names the species with accuracy ~0.96, and so does
    the ratio written as a column of its own; neither is computed from the species."""
    from palmerpenguins import load_penguins

    frame = load_penguins().dropna().reset_index(drop=True)
    frame["bill_ratio"] = frame["bill_length_mm"] / frame["bill_depth_mm"]
    frame["species"] = pd.factorize(frame["species"], sort=True)[0]
    features = [c for c in frame.columns if c != "species"]
    found = by_column(screening.screen(frame, "species", "multiclass_classification", features,
                                       screening.Settings()))  # fmt: skip
    assert found["bill_ratio"].power > 0.9  # a strong predictor...
    assert not [f for f in found.values() if f.finding == "leaky" or f.excluded], found  # ...and no leak


def test_a_column_that_predicts_well_without_determining_the_label_is_flagged_strong_and_kept():
    """The flights case: a column recorded after the outcome (an arrival time) predicts a delay at AUC ~0.95
    without determining it. It is kept, flagged "strong" with the advice; 0.7 is "ok"; 0.998 is still a leak."""
    rng = np.random.default_rng(5)
    n = 6000
    label = rng.integers(0, 2, n)
    departure = rng.uniform(0, 1000, n)
    frame = pd.DataFrame({
        "strong": label + rng.normal(0, 0.43, n),  # AUC = Phi(1 / (0.43 sqrt 2)) ~ 0.95
        "moderate": label + rng.normal(0, 1.35, n),  # ~ 0.70
        "leak": label + rng.normal(0, 0.25, n),  # ~ 0.998
        "departure": departure,  # with arrival: their difference predicts at ~0.95, neither alone
        "arrival": departure + 100 * (label + rng.normal(0, 0.43, n)),
        "delayed": label,
    })  # fmt: skip
    features = [c for c in frame.columns if c != "delayed"]
    found = by_column(screening.screen(frame, "delayed", "binary_classification", features, screening.Settings()))
    strong = found["strong"]
    assert strong.finding == "strong" and not strong.excluded, strong
    assert 0.9 <= strong.power < 0.99 and "predicts delayed with AUC 0.9" in strong.reason
    assert "known when you predict" in strong.reason
    assert found["moderate"].finding == "ok" and 0.6 < found["moderate"].power < 0.8, found["moderate"]
    assert found["leak"].finding == "leaky" and found["leak"].excluded, found["leak"]
    for c, other in (("arrival", "departure"), ("departure", "arrival")):
        assert found[c].finding == "strong" and not found[c].excluded and f"with {other}" in found[c].reason, found[c]
        assert found[c].power < 0.9
    assert screening.method(screening.Settings(), "binary_classification")["strong_power"] == screening.STRONG_POWER


def test_a_pair_is_strong_only_where_it_predicts_clearly_better_than_either_column():
    """A column just under the strong level reaches it beside almost any other: that pair is no finding."""
    alone = {"near": 0.89, "weak": 0.6, "arrival": 0.73, "scheduled": 0.64}
    pairs = [(0.92, "near - weak", "near", "weak"), (0.936, "arrival - scheduled", "arrival", "scheduled")]
    found = screening.strong_columns(alone, pairs, 0.9, 0.99, "delayed", "binary_classification")
    assert sorted(found) == ["arrival", "scheduled"] and "with scheduled" in found["arrival"], found
