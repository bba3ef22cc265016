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
