"""Integrated gradients on the model's feature vector, grouped per raw input."""

import numpy as np
import pytest
import tensorflow as tf

from models import explain
from models.model import HParams, build_model

pytestmark = pytest.mark.model


def trained_model():
    """x matters, noise does not; the category c adds a step for c == 2."""
    rng = np.random.default_rng(0)
    n = 2000
    data = {"x": rng.normal(size=n).astype("float32"), "noise": rng.normal(size=n).astype("float32"),
            "x_missing": np.zeros(n, "float32"), "c": rng.integers(0, 5, n)}  # fmt: skip
    y = ((data["x"] + 1.5 * (data["c"] == 2)) > 0.5).astype("float32")
    model = build_model(("x", "noise", "x_missing"), {"c": 5}, HParams(hidden_units=(16,), learning_rate=0.05))
    model.fit(data, y, epochs=6, batch_size=64, verbose=0)
    return model, data, y


def test_column_groups_follow_the_feature_vector():
    model = build_model(("x", "x_missing"), {"c": 5, "t_hour": 24}, HParams(hidden_units=(4,), embedding_dim=3))
    assert model.feature_columns == [("x", 1), ("x_missing", 1), ("c", 3), ("t_hour", 3)]
    groups = explain.column_groups(model.feature_columns, {"x_missing": "x", "t_hour": "t"})
    assert groups == {
        "x": [(0, 1.0), (1, 1.0)],
        "c": [(2, 1.0), (3, 1.0), (4, 1.0)],
        "t": [(5, 1.0), (6, 1.0), (7, 1.0)],
    }
    # a cross of two raw inputs gives each half of its columns' attribution
    crossed = explain.column_groups([("c", 1), ("c_x_t", 2)], {"c_x_t": ("c", "t")})
    assert crossed == {"c": [(0, 1.0), (1, 0.5), (2, 0.5)], "t": [(1, 0.5), (2, 0.5)]}
    assert model.get_layer(explain.FEATURES_LAYER).output.shape[-1] == 8


def test_attributions_add_up_to_the_change_from_the_baseline_and_find_the_signal():
    model, data, y = trained_model()
    encoder, head = explain.split_model(model)
    rows = {k: v[:64] for k, v in data.items()}
    vector = encoder(rows, training=False)
    np.testing.assert_allclose(head(vector).numpy(), model(rows, training=False).numpy(), atol=1e-6)
    attributions = explain.integrated_gradients(head, vector, steps=64)
    change = (head(vector) - head(tf.zeros_like(vector)))[:, 0]
    np.testing.assert_allclose(tf.reduce_sum(attributions, axis=1).numpy(), change.numpy(), atol=0.03)

    groups = explain.column_groups(model.feature_columns, {"x_missing": "x"})
    dataset = tf.data.Dataset.from_tensor_slices((data, y)).batch(128)
    importance = explain.global_importance(model, groups, dataset, rows=512)
    ranked = sorted(importance["mean_abs_attribution"], key=lambda k: -importance["mean_abs_attribution"][k])
    assert importance["rows"] == 512
    assert ranked[-1] == "noise", importance  # the feature the label ignores matters least
    assert ranked[0] == "x", importance


def test_step_count_doubles_until_the_attributions_add_up():
    # a ReLU head with many kinks along the path: its gradient jumps, and 64 trapezoids miss completeness
    kinks = tf.constant(np.linspace(0.013, 0.991, 37), tf.float32)
    signs = tf.constant(np.resize([3.0, -2.9], 37), tf.float32)

    def head(vector):
        return tf.reduce_sum(tf.nn.relu(vector[:, :1] - kinks) * signs, axis=1, keepdims=True) + vector[:, 1:] * 0.0

    vector = tf.constant([[1.0, 0.5], [0.7, 0.2]])
    change = (head(vector) - head(tf.zeros_like(vector)))[:, 0].numpy()

    def error(**kwargs):
        return np.abs(tf.reduce_sum(explain.integrated_gradients(head, vector, **kwargs), axis=1).numpy() - change)

    tolerance = explain.RTOL * np.abs(change) + explain.ATOL
    fixed = error(steps=64, max_steps=64)
    assert (fixed > tolerance).any(), (fixed, tolerance)
    adaptive = error(steps=64)
    assert (adaptive <= tolerance).all(), (adaptive, tolerance)
    assert adaptive.max() < fixed.max()
    # the same inside a traced function (the SavedModel's explain signature)
    traced = tf.function(lambda v: explain.integrated_gradients(head, v))
    assert (np.abs(tf.reduce_sum(traced(vector), axis=1).numpy() - change) <= tolerance).all()


def test_vertex_explanation_spec_names_every_input_and_the_output():
    from google.cloud.aiplatform_v1.types import ExplanationMetadata, ExplanationParameters

    spec = explain.vertex_explanation_spec(["fare", "company"], "probability")
    metadata = ExplanationMetadata(spec["metadata"])  # the SDK's own types accept it as written
    parameters = ExplanationParameters(spec["parameters"])
    assert set(metadata.inputs) == {"fare", "company"} and metadata.outputs["probability"].output_tensor_name
    assert parameters.sampled_shapley_attribution.path_count == 10


def test_feature_importance_counts_each_eval_row_once(tmp_path):
    """The Trainer's eval dataset repeats; importance on a 67-row eval split is on 67 rows, not 512 or more."""
    import json

    from models.features import FeatureSpec
    from models.trainer import write_feature_importance

    model, data, y = trained_model()
    rows = 67
    evaluation = tf.data.Dataset.from_tensor_slices(({k: v[:rows] for k, v in data.items()}, y[:rows]))
    evaluation = evaluation.batch(16).repeat()  # as models/training.py builds it: batches, then repeat
    spec = FeatureSpec(label="y", numeric=("x", "noise"), categorical=("c",))
    found = write_feature_importance(model, spec, evaluation, str(tmp_path), eval_batches=-(-rows // 16))
    assert found["rows"] == rows
    with open(tmp_path / explain.IMPORTANCE_FILE) as f:
        assert json.load(f)["rows"] == rows
