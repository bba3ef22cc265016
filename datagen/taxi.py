"""Deterministic synthetic taxi trips: a tabular binary-classification dataset.

The label `big_tip` (tip above 20 % of the fare) depends on payment type,
hour, airport trips, company and fare per mile, plus two effects a linear model
cannot express (an inverted U in trip length; night airport runs), with about
one positive in five. The frame also carries what real tables carry: missing values and
outliers, low- and high-cardinality categoricals, coordinates, personal data
(rider name, e-mail, phone), an identifier and a column that leaks the label
(`tip_amount`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

VERSION = 2  # bump when the generated data changes: cached sample data is then rewritten
LABEL = "big_tip"
PERSONAL_COLUMNS = ("rider_name", "rider_email", "rider_phone")
LEAKY_COLUMN = "tip_amount"
TIP_CLASS = "tip_class"  # 0: under 10 % of the fare, 1: 10-20 %, 2: over 20 % (= big_tip); a multiclass label
TIP_CLASSES = 3
OUTCOMES = (LABEL, LEAKY_COLUMN, TIP_CLASS)  # known only once the trip is over: never sent for a prediction

START = np.datetime64("2026-01-01T00:00:00")
DAYS = 181  # January to June

PAYMENT_TYPES = np.array(["Credit Card", "Cash", "Mobile", "Prcard", "No Charge", "Dispute"])
PAYMENT_P = np.array([0.46, 0.38, 0.08, 0.05, 0.02, 0.01])
PAYMENT_EFFECT = np.array([1.2, -2.2, 1.0, 0.4, -2.5, -2.5])

N_COMPANIES = 40
N_TAXIS = 5000
N_AREAS = 77
AIRPORT_AREA = 76
# fixed across seeds, so every sample of the generator shares one true relationship
COMPANY_EFFECT = np.linspace(-0.6, 0.6, N_COMPANIES)[np.random.default_rng(2026).permutation(N_COMPANIES)]

_FIRST = np.array(["Alex", "Sam", "Maria", "Wei", "Olu", "Priya", "Jon", "Ana", "Kim", "Lee"])
_LAST = np.array(["Smith", "Garcia", "Chen", "Okafor", "Patel", "Novak", "Kowalski", "Silva"])


DRIFTED_FEATURES = ("trip_miles", "trip_seconds", "fare", "payment_type")


def generate(n_rows: int, seed: int = 0, label_signal: bool = True, drift: float = 0.0) -> pd.DataFrame:
    """Returns `n_rows` trips drawn with `seed`; the same arguments give the same frame.

    Args:
        n_rows: number of trips, from a few hundred to millions.
        seed: random seed.
        label_signal: if False, the label is drawn independently of every feature,
            so no model can beat chance.
        drift: 0 for the reference distribution; up to 1, trips get longer (miles, and
            with them seconds and fare) and the payment mix moves towards cash
            (`DRIFTED_FEATURES`). Every other column keeps its distribution.
    """
    if not 0.0 <= drift <= 1.0:
        raise ValueError(f"drift must be in [0, 1], got {drift}")
    if n_rows <= 0:
        raise ValueError(f"n_rows must be positive, got {n_rows}")
    rng = np.random.default_rng(seed)
    n = n_rows

    seconds = rng.integers(0, DAYS * 86400, n)
    start = START + seconds.astype("timedelta64[s]")
    hour = (seconds // 3600) % 24
    weekday = ((seconds // 86400) + 3) % 7  # 2026-01-01 is a Thursday (Mon=0)

    pickup_area = rng.integers(1, N_AREAS + 1, n)
    airport = rng.random(n) < 0.08
    dropoff_area = np.where(airport, AIRPORT_AREA, rng.integers(1, N_AREAS + 1, n))
    miles = rng.gamma(2.0, 1.8 * (1.0 + 1.5 * drift), n) + np.where(airport, 12.0, 0.0)
    speed_mph = np.clip(rng.normal(18, 5, n), 4, 45)
    trip_seconds = miles / speed_mph * 3600 + rng.normal(120, 40, n)
    fare = 3.25 + 2.25 * miles + 0.004 * trip_seconds + rng.normal(0, 1.0, n)

    cash = np.eye(len(PAYMENT_TYPES))[list(PAYMENT_TYPES).index("Cash")]
    payment_idx = rng.choice(len(PAYMENT_TYPES), n, p=(1.0 - 0.6 * drift) * PAYMENT_P + 0.6 * drift * cash)
    company_idx = rng.zipf(1.6, n) % N_COMPANIES
    company_effect = COMPANY_EFFECT
    taxi_idx = rng.integers(0, N_TAXIS, n)

    night = (hour >= 21) | (hour <= 4)
    logit = (
        -1.6
        + PAYMENT_EFFECT[payment_idx]
        + 0.8 * night
        + 1.0 * airport
        + company_effect[company_idx]
        - 0.35 * np.log1p(np.maximum(fare, 0) / np.maximum(miles, 0.1))
        + 0.25 * (weekday >= 5)
        # non-linear: mid-length trips tip best, and airport runs at night far more so; a linear
        # model on these features cannot express either, a small network can
        - 0.6 * (np.log1p(miles) - 1.5) ** 2
        + 1.8 * (night & airport)
    )
    p = 1.0 / (1.0 + np.exp(-logit))
    label = (rng.random(n) < p).astype(np.int64)
    if not label_signal:
        label = (rng.random(n) < label.mean()).astype(np.int64)
    tip_ratio = np.where(label == 1, rng.uniform(0.21, 0.35, n), rng.uniform(0.0, 0.19, n))

    lat0 = 41.70 + (pickup_area % 11) * 0.025
    lon0 = -87.85 + (pickup_area // 11) * 0.03
    lat1 = 41.70 + (dropoff_area % 11) * 0.025
    lon1 = -87.85 + (dropoff_area // 11) * 0.03

    first = _FIRST[rng.integers(0, len(_FIRST), n)]
    last = _LAST[rng.integers(0, len(_LAST), n)]
    number = rng.integers(0, 10000, n)

    frame = pd.DataFrame(
        {
            "trip_id": [f"t{seed:04d}{i:09d}" for i in range(n)],
            "trip_start_timestamp": start.astype("datetime64[s]").astype(np.int64),
            "trip_seconds": np.round(np.maximum(trip_seconds, 30)).astype(np.float64),
            "trip_miles": np.round(miles, 2),
            "fare": np.round(np.maximum(fare, 3.25), 2),
            LEAKY_COLUMN: 0.0,  # set below, with the multiclass label
            "payment_type": PAYMENT_TYPES[payment_idx],
            "company": np.char.add("Company ", company_idx.astype(str)),
            "taxi_id": np.char.add("taxi-", taxi_idx.astype(str)),
            "pickup_community_area": pickup_area,
            "dropoff_community_area": dropoff_area,
            "pickup_latitude": np.round(lat0 + rng.normal(0, 0.005, n), 5),
            "pickup_longitude": np.round(lon0 + rng.normal(0, 0.005, n), 5),
            "dropoff_latitude": np.round(lat1 + rng.normal(0, 0.005, n), 5),
            "dropoff_longitude": np.round(lon1 + rng.normal(0, 0.005, n), 5),
            "rider_name": np.char.add(np.char.add(first, " "), last),
            "rider_email": [
                f"{a.lower()}.{b.lower()}{k}@example.com" for a, b, k in zip(first, last, number, strict=True)
            ],
            "rider_phone": [f"+1-312-555-{k:04d}" for k in number],
            LABEL: label,
        }
    )
    # among trips without a big tip, cash riders, short trips and daytime trips tip least; drawn
    # last so that every other column is the same as without it
    low_p = 1.0 / (1.0 + np.exp(-(-0.6 + 2.8 * (payment_idx == list(PAYMENT_TYPES).index("Cash")) - 1.6 * night
                                  - 0.5 * (miles - 3.0))))  # fmt: skip
    low = rng.random(n) < low_p
    small_ratio = np.where(low, tip_ratio * 0.5, 0.10 + tip_ratio * 0.5)  # [0, 0.095] or [0.10, 0.195]
    tip_ratio = np.where(label == 1, tip_ratio, small_ratio)
    frame[LEAKY_COLUMN] = np.round(frame["fare"] * tip_ratio, 2)
    frame[TIP_CLASS] = np.where(label == 1, 2, np.where(low, 0, 1)).astype(np.int64)
    _inject_outliers_and_gaps(frame, rng)
    frame.attrs["probability"] = p  # the true P(big_tip), for the Bayes-optimal AUC; not a column
    # the true P(tip_class = 0, 1, 2), for the Bayes-optimal accuracy
    frame.attrs["class_probability"] = np.stack([(1 - p) * low_p, (1 - p) * (1 - low_p), p], axis=1)
    return frame


def _inject_outliers_and_gaps(frame: pd.DataFrame, rng: np.random.Generator) -> None:
    n = len(frame)

    def pick(fraction: float) -> np.ndarray:
        return rng.random(n) < fraction

    glitch = pick(0.004)
    frame.loc[glitch, "trip_miles"] = np.round(rng.uniform(150, 900, glitch.sum()), 2)  # odometer
    frame.loc[pick(0.003), "trip_seconds"] = 86399.0  # meter left running
    frame.loc[pick(0.003), "fare"] = 999.99  # manual entry
    frame.loc[pick(0.02), "trip_seconds"] = np.nan
    frame.loc[pick(0.01), "trip_miles"] = np.nan
    frame.loc[pick(0.05), "company"] = None
    gps_lost = pick(0.03)
    for col in ("pickup_latitude", "pickup_longitude"):
        frame.loc[gps_lost, col] = np.nan


def write_csv(frame: pd.DataFrame, directory: str, name: str = "trips.csv") -> str:
    """Writes `frame` as one CSV file in `directory` (created if needed); returns its path."""
    import os

    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, name)
    frame.to_csv(path, index=False)
    return path


EXTENSIONS = {"csv": "csv", "json": "jsonl", "parquet": "parquet", "tfrecord": "tfrecord"}


def write_table(frame: pd.DataFrame, directory: str, fmt: str, name: str = "trips") -> str:
    """Writes `frame` as one file of `fmt` (csv, json lines, parquet, tfrecord of tf.Examples)
    in `directory`; a missing value is absent from its row. Returns the path."""
    import os

    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, f"{name}.{EXTENSIONS[fmt]}")
    if fmt == "csv":
        frame.to_csv(path, index=False)
    elif fmt == "json":
        frame.to_json(path, orient="records", lines=True)
    elif fmt == "parquet":
        plain = frame.copy()
        plain.attrs = {}  # the true probabilities are not data (and pandas would store them as metadata)
        plain.to_parquet(path, index=False)
    elif fmt == "tfrecord":
        import tensorflow as tf

        with tf.io.TFRecordWriter(path) as writer:
            for row in frame.to_dict(orient="records"):
                writer.write(_example(row).SerializeToString())
    else:
        raise ValueError(f"unknown format {fmt!r}; one of {sorted(EXTENSIONS)}")
    return path


def _example(row: dict):
    import tensorflow as tf

    features = {}
    for name, value in row.items():
        if value is None or (isinstance(value, float) and np.isnan(value)):
            continue
        if isinstance(value, str):
            features[name] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[value.encode()]))
        elif isinstance(value, (int, np.integer)):
            features[name] = tf.train.Feature(int64_list=tf.train.Int64List(value=[int(value)]))
        else:
            features[name] = tf.train.Feature(float_list=tf.train.FloatList(value=[float(value)]))
    return tf.train.Example(features=tf.train.Features(feature=features))
