import numpy as np
import pytest

from models.model import HParams, build_model

pytestmark = pytest.mark.model


def test_model_takes_named_inputs_and_learns_a_simple_rule():
    model = build_model(("x", "x_missing"), {"c": 5}, HParams(hidden_units=(8,), learning_rate=0.05))
    assert set(model.input_names) == {"x", "x_missing", "c"}
    rng = np.random.default_rng(0)
    n = 2000
    c = rng.integers(0, 5, n)
    x = rng.normal(size=n).astype("float32")
    y = ((c == 2) | (x > 1)).astype("float32")
    inputs = {"x": x, "x_missing": np.zeros(n, "float32"), "c": c}
    model.fit(inputs, y, epochs=5, batch_size=64, verbose=0)
    p = model.predict(inputs, verbose=0)
    assert p.shape == (n, 1) and np.all((p >= 0) & (p <= 1))
    _, auc, _ = model.evaluate(inputs, y, verbose=0)
    assert auc > 0.95


def test_hparams_from_partial_dict_keeps_defaults():
    h = HParams.from_dict({"learning_rate": 0.1})
    assert h.learning_rate == 0.1 and h.hidden_units == HParams().hidden_units


def test_dropout_and_l2_are_in_the_model():
    import tf_keras as keras

    model = build_model(("a",), {"c": 5}, HParams(hidden_units=(8,), dropout=0.2, l2=1e-3))
    assert any(isinstance(layer, keras.layers.Dropout) for layer in model.layers)
    assert len(model.losses) == 2  # L2 on the embedding and on the hidden layer
    plain = build_model(("a",), {"c": 5}, HParams(hidden_units=(8,)))
    assert not plain.losses and not any(isinstance(layer, keras.layers.Dropout) for layer in plain.layers)


def test_early_stopping_stops_when_eval_auc_stalls_and_keeps_the_best_epoch():
    import tensorflow as tf

    from models.training import fit

    rng = np.random.default_rng(0)
    n = 512
    x = {"a": rng.normal(size=n).astype("float32"), "c": rng.integers(0, 5, n)}
    y = rng.integers(0, 2, n).astype("float32")  # noise: the eval AUC cannot keep improving
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(64).repeat()
    model = build_model(("a",), {"c": 5}, HParams(hidden_units=(8,), learning_rate=0.05))
    history = fit(model, data, data.take(2), train_steps=200, eval_steps=2, callbacks=[], epochs=20, patience=1)
    epochs = len(history.history["val_auc"])
    assert epochs < 20
    best = max(history.history["val_auc"])
    assert model.evaluate(data.take(2), steps=2, return_dict=True, verbose=0)["auc"] == pytest.approx(best, abs=1e-6)
