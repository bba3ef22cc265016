"""The network converted to TensorFlow Lite gives the Keras model's scores, for every head, with builtin ops."""

import numpy as np
import pytest

from models import edge
from models.features import FeatureSpec
from models.model import HParams, build_model

pytestmark = pytest.mark.model


@pytest.mark.parametrize("head, classes, output", [("binary", 2, "probability"), ("multiclass", 3, "probabilities"),
                                                   ("regression", 2, "prediction")])  # fmt: skip
def test_tflite_network_scores_like_keras_float_and_quantized(head, classes, output):
    model = build_model(("x", "x_missing"), {"c": 5}, HParams(hidden_units=(64, 32)), head, classes)
    rng = np.random.default_rng(0)
    rows = {"x": rng.normal(size=64).astype(np.float32), "x_missing": np.zeros(64, np.float32),
            "c": rng.integers(0, 5, size=64)}  # fmt: skip
    expected = model(rows, training=False).numpy().reshape(64, -1)
    sizes = {}
    for quantize, tolerance in ((False, 1e-5), (True, 0.05)):
        content = edge.convert_network(model, output, quantize)
        sizes[quantize] = len(content)
        assert edge.flex_ops(content) == []
        got = edge.scores(edge.runner(content), rows)
        assert got.shape == expected.shape
        assert np.max(np.abs(got - expected)) <= tolerance * max(1.0, float(np.max(np.abs(expected))))
    assert sizes[True] < 0.75 * sizes[False]  # the 64 x 32 kernel (2,048 weights) is stored as int8


def test_every_network_input_has_its_device_preprocessing_named():
    spec = FeatureSpec(label="y", numeric=("fare",), categorical=("payment",), hashed={"taxi": 8},
                       timestamp="ts", buckets={"fare": 4}, crosses={"ts_hour x ts_weekday": 16})  # fmt: skip
    inputs = ["fare", "fare_missing", "payment", "taxi", "ts_hour", "ts_weekday", "fare_bucket", "ts_hour_x_ts_weekday"]
    found = {p["input"]: p for p in edge.device_preprocessing(spec, inputs)}
    assert list(found) == inputs
    assert found["fare_bucket"]["from"] == "fare" and "quantile bucket of 4" in found["fare_bucket"]["how"]
    assert all(p["how"] != "as Transform outputs it" for p in found.values())


def test_a_transform_graph_that_does_not_convert_leaves_the_network_files_and_names_why(tmp_path):
    """A SavedModel without the raw-input signature cannot convert raw-input: the export goes on with the
    network files (scored), records the converter's error for each raw file and no Flex ops, and the
    report says so."""
    import tensorflow as tf

    from reports.artifacts import RunArtifacts
    from reports.model_sections import edge_section

    model = build_model(("x", "x_missing"), {"c": 5}, HParams(hidden_units=(16,)), "binary", 2)
    saved = tmp_path / "saved_model"
    tf.saved_model.save(tf.Module(), str(saved))  # no `serving_columns` signature
    rng = np.random.default_rng(1)
    rows = {"x": rng.normal(size=32).astype(np.float32), "x_missing": np.zeros(32, np.float32),
            "c": rng.integers(0, 5, size=32)}  # fmt: skip
    spec = FeatureSpec(label="y", numeric=("x",), categorical=("c",))
    result = edge.export(model, spec, str(saved), str(tmp_path / "tflite"), rows, "probability")
    for kind in ("raw_float", "raw_quantized"):
        assert "serving_columns" in result["formats"][f"tflite_{kind}"]["error"], result["formats"][f"tflite_{kind}"]
        assert not (tmp_path / "tflite" / edge.FILES[kind]).exists()
    assert result["flex_ops"] is None
    assert result["formats"]["tflite_float"]["max_abs_diff"] < 1e-5
    assert (tmp_path / "tflite" / edge.FILES["float"]).exists()
    edge.write_result(result, str(tmp_path / "run"))
    artifacts = RunArtifacts(run="r", by_component={"Trainer": {"ModelRun": [str(tmp_path / "run")]}})
    page = edge_section(artifacts)
    assert "float: not converted" in page and "did not convert" in page and "Flex delegate; the ops" not in page


def raw_signature_model(tmp_path) -> str:
    """A SavedModel with a raw-input signature: one dense layer's weights, enough to quantize."""
    import tensorflow as tf

    module = tf.Module()
    module.w = tf.Variable(np.linspace(-1, 1, 64 * 32, dtype=np.float32).reshape(64, 32))
    module.f = tf.function(lambda x: {"probability": tf.sigmoid(tf.reduce_sum(tf.matmul(x, module.w), 1))},
                           input_signature=[tf.TensorSpec([None, 64], tf.float32, name="x")])  # fmt: skip
    saved = str(tmp_path / "saved_model")
    tf.saved_model.save(module, saved, signatures={edge.RAW_SIGNATURE: module.f})
    return saved


def test_one_converter_gives_both_raw_input_files_as_two_would(tmp_path):
    """The SavedModel is loaded once for both raw-input files; a quantized conversion does not stick to the
    converter (a float one after it is float again)."""
    saved = raw_signature_model(tmp_path)
    shared = edge.raw_input_converter(saved)
    together = [edge.convert_raw_input(shared, quantize)[0] for quantize in (False, True, False)]
    apart = [edge.convert_raw_input(edge.raw_input_converter(saved), quantize)[0] for quantize in (False, True)]
    assert len(apart[1]) < len(apart[0])
    assert together == [apart[0], apart[1], apart[0]]


def test_a_raw_input_model_the_mlir_quantizer_fails_on_is_quantized_by_the_older_one_and_says_so(tmp_path, monkeypatch):
    """TFLite's MLIR dynamic-range quantizer fails on some networks (an int8 input to the features'
    concatenation); the older quantizer converts them, and the result names the first one's error."""
    import tensorflow as tf
    from tensorflow.lite.python.convert_phase import ConverterError

    saved = raw_signature_model(tmp_path)
    used = []
    real = edge.convert

    def mlir_fails(converter, quantize, flex):
        used.append(converter.experimental_new_dynamic_range_quantizer)
        if quantize and converter.experimental_new_dynamic_range_quantizer:
            raise ConverterError("<unknown>:0: error: 'tfl.concatenation' op failed to verify")
        return real(converter, quantize, flex)

    monkeypatch.setattr(edge, "convert", mlir_fails)
    converter = edge.raw_input_converter(saved)
    content, error = edge.convert_raw_input(converter, quantize=True)
    assert used == [True, False] and "tfl.concatenation" in error
    # the shared converter is back on the MLIR quantizer for what comes next, and gives the float file too
    assert converter.experimental_new_dynamic_range_quantizer
    float_content, float_error = edge.convert_raw_input(converter, quantize=False)
    assert len(content) < len(float_content) and float_error is None  # int8 weights: smaller
    interpreter = tf.lite.Interpreter(model_content=content)
    assert interpreter.get_signature_list()[edge.RAW_SIGNATURE]["outputs"] == ["probability"]
