"""preprocessing_fn through tft_beam on a tiny in-memory dataset."""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_transform as tft
import tensorflow_transform.beam as tft_beam
from tensorflow_transform.tf_metadata import dataset_metadata, schema_utils

from models.features import FeatureSpec, hour_name, missing_name, weekday_name
from models.preprocessing import Z_CLIP, preprocessing_fn

pytestmark = pytest.mark.model

SPEC = FeatureSpec(label="y", numeric=("miles",), categorical=("payment", "area"), hashed={"taxi": 8}, timestamp="ts")
FEATURE_SPEC = {
    "miles": tf.io.VarLenFeature(tf.float32),  # has missing values
    "payment": tf.io.FixedLenFeature([], tf.string),
    "area": tf.io.FixedLenFeature([], tf.int64),
    "taxi": tf.io.FixedLenFeature([], tf.string),
    "ts": tf.io.FixedLenFeature([], tf.int64),
    "y": tf.io.FixedLenFeature([], tf.int64),
}
# 2026-01-05 was a Monday; 1767571200 is 2026-01-05T00:00:00Z
ROWS = [
    {"miles": [1.0], "payment": b"Cash", "area": 8, "taxi": b"a", "ts": 1767571200 + 3 * 3600, "y": 0},
    {"miles": [3.0], "payment": b"Card", "area": 8, "taxi": b"b", "ts": 1767571200 + 86400, "y": 1},
    {"miles": [], "payment": b"Card", "area": 32, "taxi": b"c", "ts": 1767571200 + 6 * 86400 + 23 * 3600, "y": 1},
    {"miles": [1000.0], "payment": b"Card", "area": 8, "taxi": b"a", "ts": 1767571200, "y": 0},
]


def transform(rows, tmp_path, spec: FeatureSpec = SPEC):
    """Returns the transformed rows; the transform graph is written to tmp_path/tf."""
    metadata = dataset_metadata.DatasetMetadata(schema_utils.schema_from_feature_spec(FEATURE_SPEC))
    with tft_beam.Context(temp_dir=str(tmp_path / "tmp")):
        (out, _), transform_fn = (rows, metadata) | tft_beam.AnalyzeAndTransformDataset(
            lambda x: preprocessing_fn(x, {"features": spec.to_dict()})
        )
        _ = transform_fn | tft_beam.WriteTransformFn(str(tmp_path / "tf"))
    return out


@pytest.fixture(scope="module")
def transformed(tmp_path_factory):
    """SPEC's transform of ROWS, made once for the tests that only read it: the rows and the graph's directory."""
    root = tmp_path_factory.mktemp("spec")
    return transform(ROWS, root), str(root / "tf")


def test_numeric_imputed_scaled_clipped_with_indicator(transformed):
    out, _ = transformed
    miles = np.array([r["miles"] for r in out])
    assert [r[missing_name("miles")] for r in out] == [0.0, 0.0, 1.0, 0.0]
    assert miles[2] == 0.0  # imputed with the mean, so z = 0
    assert miles[0] < miles[1] < miles[3]
    assert np.all(np.abs(miles) <= Z_CLIP)


def test_categoricals_get_ids_and_time_features(transformed):
    out, _ = transformed
    payments = [r["payment"] for r in out]
    assert payments[1] == payments[2] == payments[3] != payments[0]  # most frequent first
    assert payments[1] == 0
    assert [r["area"] for r in out][0] == [r["area"] for r in out][1]
    assert all(0 <= r["taxi"] < 8 for r in out)
    assert [r[hour_name("ts")] for r in out] == [3, 0, 23, 0]
    assert [r[weekday_name("ts")] for r in out] == [0, 1, 6, 0]
    assert [r["y"] for r in out] == [0, 1, 1, 0]


def test_label_is_optional_at_serving(transformed):
    """Transform outputs nothing for the label when it is absent, as at serving time."""
    raw = {
        k: tf.constant([v], tf.int64 if isinstance(v, int) else tf.string)
        for k, v in ROWS[0].items()
        if k not in ("miles", "y")
    }
    raw["miles"] = tf.sparse.from_dense(tf.constant([[2.0]]))
    output = tft.TFTransformOutput(transformed[1])
    features = output.transform_raw_features(raw)
    assert "y" not in features
    assert features[hour_name("ts")].numpy().tolist() == [3]


def test_buckets_and_crosses(tmp_path):
    import dataclasses

    from models.features import bucket_name, cross_name

    spec = dataclasses.replace(SPEC, buckets={"miles": 2}, crosses={"payment x ts_hour": 16, "area x miles_bucket": 16})
    out = transform(ROWS, tmp_path, spec)
    buckets = [r[bucket_name("miles")] for r in out]
    assert buckets[2] == 2  # missing: its own id after the two buckets
    assert buckets[0] == 0 and buckets[3] == 1  # the shortest and the longest trip in different buckets
    crossed = [r[cross_name("payment x ts_hour")] for r in out]
    assert all(0 <= c < 16 for c in crossed)
    assert crossed[1] == crossed[3]  # Card at midnight, twice: the same cross id
    assert crossed[0] != crossed[1] or crossed[0] != crossed[2]  # different pairs spread over ids
    assert cross_name("area x miles_bucket") in out[0]
    # a screened-out column takes its bucket and its crosses with it
    assert spec.restricted_to(["payment", "area", "taxi", "ts"]).crosses == {"payment x ts_hour": 16}
