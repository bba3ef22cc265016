"""Decisions about a column come from the whole table, not its first rows: a table sorted by time whose first
20,000 rows are January alone (one month value; a timestamp that moves with the day of the month there)."""

import os

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from models import screening
from settings.config import load_config
from tests.conftest import REPO

pytestmark = pytest.mark.data

JANUARY_ROWS, LATER_ROWS = 25_000, 25_000
YEAR_START = 1_672_531_200  # 2023-01-01T00:00:00Z


def time_sorted(seed: int = 0) -> pd.DataFrame:
    """A year of events sorted by time; the first 25,000 all in January."""
    rng = np.random.default_rng(seed)
    january = rng.uniform(0, 31 * 86400, JANUARY_ROWS)
    later = rng.uniform(31 * 86400, 365 * 86400, LATER_ROWS)
    seconds = YEAR_START + np.sort(np.concatenate([january, later])).astype(np.int64)
    when = pd.to_datetime(seconds, unit="s")
    x = rng.normal(size=len(seconds))
    return pd.DataFrame({
        "event_time": seconds, "month": when.month, "day": when.day, "x": x,
        "delayed": (x + rng.normal(size=len(seconds)) > 0).astype(int),
    })  # fmt: skip


def own_table_config(data_dir: str, **features):
    return load_config(os.path.join(REPO, "configs", "own-table.example.yaml"), {
        "label": "delayed", "data": {"path": data_dir, "format": "csv", "key_column": None, "personal_columns": []},
        "features": {"infer": True, "timestamp": "event_time", **features},
    })  # fmt: skip


def test_inference_reads_every_row_so_a_month_that_varies_after_the_first_rows_is_a_feature(tmp_path):
    from tables.feature_inference import read_table, with_inferred_features

    frame = time_sorted()
    assert frame["month"].head(20_000).nunique() == 1  # what the first rows alone show
    frame.to_csv(tmp_path / "events.csv", index=False)
    config = own_table_config(str(tmp_path))
    found = with_inferred_features(config)
    assert "month" in found.features.categorical  # 12 whole numbers: codes
    assert not [c for c in found.left_out if c["column"] == "month"]
    table = read_table(config, rows=5000)
    assert table.rows == len(frame) and table.stats["month"].distinct == 12
    months = table.sample["month"].value_counts(normalize=True)
    assert len(months) == 12 and months[1] < 0.7  # uniform across the file: January is half the rows, not all


def write_split(frame: pd.DataFrame, directory) -> str:
    split = directory / "Split-train"
    split.mkdir(parents=True)
    with tf.io.TFRecordWriter(str(split / "data.gz"), options="GZIP") as writer:
        for row in frame.itertuples(index=False):
            e = tf.train.Example()
            for name, value in row._asdict().items():
                if isinstance(value, float):
                    e.features.feature[name].float_list.value.append(value)
                else:
                    e.features.feature[name].int64_list.value.append(int(value))
            writer.write(e.SerializeToString())
    return str(directory)


def test_the_screen_samples_the_whole_split_so_the_timestamp_is_not_redundant_with_the_day(tmp_path):
    from components.feature_screen import uniform_rows

    frame = time_sorted()
    head = frame.head(20_000)
    assert abs(head["event_time"].corr(head["day"])) > 0.99  # in January alone, time moves with the day
    uri = write_split(frame, tmp_path)
    drawn, total = uniform_rows(uri, "train", 20_000)
    rows = pd.DataFrame(drawn)
    assert total == len(frame) and len(rows) == 20_000 and rows["month"].nunique() == 12
    features = ["event_time", "month", "day", "x"]
    found = {f.column: f for f in screening.screen(rows, "delayed", "binary_classification", features,
                                                   screening.Settings())}  # fmt: skip
    assert found["event_time"].finding == "ok" and found["month"].finding == "ok", found
    # the screen itself, handed more rows than it screens, samples them uniformly too
    whole = {f.column: f for f in screening.screen(frame, "delayed", "binary_classification", features,
                                                   screening.Settings(max_rows=20_000))}  # fmt: skip
    assert whole["event_time"].finding == "ok" and whole["month"].finding == "ok", whole
