"""The TensorFlow Lite files the Trainer writes beside the SavedModel, as the Pusher pushed them,
scored against the pushed SavedModel on the run's raw eval rows."""

import glob
import json
import os

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_transform as tft

from models import edge
from models.trainer import CONTRACT_DIR
from tests.e2e.test_pipeline_e2e import oldest_output

pytestmark = pytest.mark.e2e

FLOAT_TOLERANCE = 1e-5  # float32 kernels on the same weights: rounding only
# dynamic-range quantization stores each weight as one of 255 steps of its tensor's range; on these rows it
# moves a probability by about 0.01. 0.05 is a fifth of the 0.25 decision threshold.
QUANTIZED_TOLERANCE = 0.05


def read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def test_tflite_scores_match_the_saved_model_on_raw_eval_rows(first_run, record_property):
    config, summary = first_run
    tflite_dir = os.path.join(summary.pushed_model, CONTRACT_DIR, edge.TFLITE_DIR)  # pushed with the SavedModel
    files = sorted(glob.glob(os.path.join(oldest_output(config, "CsvExampleGen", "examples"), "Split-eval", "*")))
    rows = config.edge.eval_rows
    serialized = [r.numpy() for r in tf.data.TFRecordDataset(files, compression_type="GZIP").take(rows)]
    saved = tf.saved_model.load(summary.pushed_model)
    expected = saved.signatures["serving_default"](examples=tf.constant(serialized))["probability"].numpy()

    # the same raw rows through the Transform graph: what the device computes before `features*.tflite`
    transform_output = tft.TFTransformOutput(oldest_output(config, "Transform", "transform_graph"))
    raw_spec = transform_output.raw_feature_spec()
    parsed = tf.io.parse_example(tf.constant(serialized), {n: raw_spec[n] for n in config.features.inputs()})
    transformed = {k: v.numpy() for k, v in transform_output.transform_features_layer()(parsed).items()}

    with open(os.path.join(oldest_output(config, "Trainer", "model_run"), edge.RESULT_FILE)) as f:
        result = json.load(f)
    assert {k: v["error"] for k, v in result["formats"].items() if "error" in v} == {}  # every file converted

    found = {}
    for kind, tolerance in (("float", FLOAT_TOLERANCE), ("quantized", QUANTIZED_TOLERANCE)):
        content = read(os.path.join(tflite_dir, edge.FILES[kind]))
        assert edge.flex_ops(content) == []  # builtin ops only: any TFLite runtime runs it
        got = edge.scores(edge.runner(content), transformed)
        assert got.shape == expected.shape == (len(serialized), 1)
        found[kind] = float(np.max(np.abs(got - expected)))
        record_property(f"max_abs_diff_{kind}", found[kind])
        assert found[kind] <= tolerance, (kind, found[kind])
    print(json.dumps({"event": "edge_check", "eval_rows": len(serialized), "max_abs_diff": found}))
    sizes = {kind: os.path.getsize(os.path.join(tflite_dir, file)) for kind, file in edge.FILES.items()}
    assert sizes["quantized"] < sizes["float"] and sizes["raw_quantized"] < sizes["raw_float"], sizes

    # the raw-input model keeps the server's contract: the same inputs as `serving_columns`
    columns = sorted(saved.signatures[edge.RAW_SIGNATURE].structured_input_signature[1])
    for kind in ("raw_float", "raw_quantized"):
        raw_model = read(os.path.join(tflite_dir, edge.FILES[kind]))
        interpreter = tf.lite.Interpreter(model_content=raw_model)
        assert sorted(interpreter.get_signature_list()[edge.RAW_SIGNATURE]["inputs"]) == columns
        assert "StringToHashBucketFast" in edge.flex_ops(raw_model)  # needs the Flex delegate, as stated

    # the Trainer's own comparison, which the report shows, agrees and names every input's preprocessing
    assert result["flex_ops"] == edge.flex_ops(read(os.path.join(tflite_dir, edge.FILES["raw_float"])))
    assert result["formats"]["tflite_float"]["max_abs_diff"] <= FLOAT_TOLERANCE
    assert {p["input"] for p in result["device_preprocessing"]} == set(transformed) - {config.label}
    assert all(p["how"] != "as Transform outputs it" for p in result["device_preprocessing"])
