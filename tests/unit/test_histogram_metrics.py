"""Threshold metrics from TFMA's calibration histogram give TFMA's own per-example values."""

import json
import math
import tempfile

import numpy as np
import pytest

from models import histogram_metrics
from pipelines.eval_configs import eval_config
from settings.config import load_config

pytestmark = pytest.mark.unit

THRESHOLDS = [0.25, 0.5]


def _examples(path: str, n: int = 3000) -> None:
    import tensorflow as tf

    rng = np.random.default_rng(7)
    predictions = rng.random(n).astype(np.float32)
    # next to the thresholds: inside the bucket that starts at each (0.25 < p < 0.2501), where the two
    # paths would part if the histogram were read as TFMA reads it for AUC, and just below it (a prediction
    # exactly on a threshold is the one documented difference)
    near = np.array([t + d for t in THRESHOLDS for d in (3e-5, 9e-5, -3e-5, -9e-5)], dtype=np.float32)
    predictions[: near.size * 20] = np.repeat(near, 20)
    labels = (rng.random(n) < predictions).astype(np.int64)
    groups = rng.choice([b"a", b"b", b"c"], n)
    with tf.io.TFRecordWriter(path) as w:
        for p, y, g in zip(predictions, labels, groups, strict=True):
            features = {"p": tf.train.Feature(float_list=tf.train.FloatList(value=[p])),
                        "y": tf.train.Feature(int64_list=tf.train.Int64List(value=[y])),
                        "g": tf.train.Feature(bytes_list=tf.train.BytesList(value=[g]))}  # fmt: skip
            w.write(tf.train.Example(features=tf.train.Features(feature=features)).SerializeToString())


def _values(tmp_path, data: str, suffix: str, module: str | None) -> dict:
    from tensorflow_model_analysis.api.model_eval_lib import load_metrics, run_model_analysis
    from tensorflow_model_analysis.proto import config_pb2 as tfma

    at = json.dumps({"thresholds": [0.25]})
    metrics = [
        tfma.MetricConfig(class_name="Precision" + suffix, module=module, config=at),
        tfma.MetricConfig(class_name="Recall" + suffix, module=module, config=at),
        tfma.MetricConfig(class_name="BinaryAccuracy" + suffix, module=module, config=json.dumps({"threshold": 0.25})),
        tfma.MetricConfig(class_name="ConfusionMatrixAtThresholds" + suffix, module=module,
                          config=json.dumps({"thresholds": THRESHOLDS})),
        tfma.MetricConfig(class_name="Calibration" + suffix, module=module),
        tfma.MetricConfig(class_name="AUC"),
    ]  # fmt: skip
    config = tfma.EvalConfig(
        model_specs=[tfma.ModelSpec(label_key="y", prediction_key="p")],
        slicing_specs=[tfma.SlicingSpec(), tfma.SlicingSpec(feature_keys=["g"])],
        metrics_specs=[tfma.MetricsSpec(metrics=metrics)],
    )
    out = str(tmp_path / (suffix or "stock"))
    run_model_analysis(eval_config=config, data_location=data, output_path=out)
    values = {}
    for sliced in load_metrics(out):
        for kv in sliced.metric_keys_and_values:
            key = (str(sliced.slice_key), kv.key.name)
            if kv.value.HasField("double_value"):
                values[key] = kv.value.double_value.value
            for m in kv.value.confusion_matrix_at_thresholds.matrices:
                counts = (m.true_positives, m.false_positives, m.true_negatives, m.false_negatives)
                values[(*key, round(m.threshold, 6))] = counts
    return values


def test_the_histogram_gives_tfmas_per_example_values_on_every_slice(tmp_path, monkeypatch):
    # TFMA's run_model_analysis on Beam's default runner leaves its temporary directories: here, not in TMPDIR
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    data = str(tmp_path / "examples.tfrecord")
    _examples(data)
    stock = _values(tmp_path, data, "", None)
    ours = _values(tmp_path, data, histogram_metrics.SUFFIX, histogram_metrics.MODULE)
    names = {k[1] for k in stock}
    assert {"precision", "recall", "binary_accuracy", "calibration", "confusion_matrix_at_thresholds"} <= names
    assert len([k for k in stock if len(k) == 3]) == 4 * 2  # counts at both thresholds, overall and per group
    assert ours.keys() == stock.keys()
    for key, value in stock.items():
        if isinstance(value, tuple):
            assert ours[key] == value, key
        else:
            assert math.isclose(ours[key], value, rel_tol=1e-9), (key, ours[key], value)


def test_only_thresholds_on_bucket_edges_qualify():
    assert histogram_metrics.on_bucket_edges([0.25, 0.5, 0.0001, 0.3])
    assert not histogram_metrics.on_bucket_edges([1 / 3])
    assert not histogram_metrics.on_bucket_edges([0.0]) and not histogram_metrics.on_bucket_edges([1.0])


def test_the_eval_config_uses_them_only_where_every_threshold_is_an_edge(taxi_config_path):
    on_edges = eval_config(load_config(taxi_config_path))  # 1 / (1 + 3) = 0.25, and 0.5
    modules = {m.class_name: m.module for m in on_edges.metrics_specs[0].metrics}
    for name in ("Precision", "Recall", "BinaryAccuracy", "Calibration", "ConfusionMatrixAtThresholds"):
        assert modules[name + histogram_metrics.SUFFIX] == histogram_metrics.MODULE
    assert modules["AUC"] == ""  # TFMA's own, from the same histogram
    third = load_config(taxi_config_path, {"framing": {"cost_false_positive": 1.0, "cost_false_negative": 2.0}})
    assert third.decision_threshold() == pytest.approx(1 / 3)
    off_edges = {m.class_name: m.module for m in eval_config(third).metrics_specs[0].metrics}
    assert off_edges["Precision"] == off_edges["ConfusionMatrixAtThresholds"] == ""  # TFMA's own, per example
    assert off_edges["CalibrationFromHistogram"] == histogram_metrics.MODULE  # no threshold
