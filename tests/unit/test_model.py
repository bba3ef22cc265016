import numpy as np
import pytest
import tf_keras as keras

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


def test_multiclass_and_regression_heads_from_the_same_model_code():
    from models import explain

    rng = np.random.default_rng(1)
    n = 3000
    x = rng.normal(size=n).astype("float32")
    c = rng.integers(0, 4, n)
    inputs = {"x": x, "c": c}
    # three classes: by the sign of x, and class 2 whenever c == 3
    classes = np.where(c == 3, 2, (x > 0).astype(int))
    multi = build_model(("x",), {"c": 4}, HParams(hidden_units=(16,), learning_rate=0.03), "multiclass", 3)
    multi.fit(inputs, classes, epochs=6, batch_size=64, verbose=0)
    p = multi.predict(inputs, verbose=0)
    assert p.shape == (n, 3) and np.allclose(p.sum(axis=1), 1, atol=1e-5)
    assert (p.argmax(axis=1) == classes).mean() > 0.9

    target = (2.0 * x + np.where(c == 1, 3.0, 0.0) + rng.normal(scale=0.1, size=n)).astype("float32")
    reg = build_model(("x",), {"c": 4}, HParams(hidden_units=(16,), learning_rate=0.03), "regression")
    reg.fit(inputs, target, epochs=8, batch_size=64, verbose=0)
    result = reg.evaluate(inputs, target, return_dict=True, verbose=0)
    assert result["rmse"] < 0.3 * target.std(), result  # far below predicting the mean

    # attributions work on every head (for multiclass: of the predicted class)
    for model in (multi, reg):
        encoder, head = explain.split_model(model)
        vector = encoder({k: v[:32] for k, v in inputs.items()})
        attributions = explain.integrated_gradients(head, vector, steps=64)
        assert attributions.shape == vector.shape and float(np.abs(attributions).sum()) > 0

    with pytest.raises(ValueError, match="at least 3 classes"):
        build_model(("x",), {}, HParams(), "multiclass", 2)
    with pytest.raises(ValueError, match="head must be one of"):
        build_model(("x",), {}, HParams(), "ranking")


MIRRORED = """
import json, sys
import numpy as np
import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import tf_keras as keras

from models.model import HParams, build_model
from models.training import fit, strategy_for

strategy = strategy_for("mirrored", ["/cpu:0", "/cpu:1"])
rng = np.random.default_rng(0)
n = 4096
x = {"a": rng.normal(size=n).astype("float32"), "c": rng.integers(0, 5, n)}
y = ((x["a"] > 0) | (x["c"] == 3)).astype("float32")
data = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(n, seed=0).batch(128).repeat()
with strategy.scope():
    model = build_model(("a",), {"c": 5}, HParams(hidden_units=(16,), learning_rate=0.02))
history = fit(model, data, data, train_steps=120, eval_steps=8, callbacks=[], epochs=3)
kernel = model.get_layer("hidden_0").kernel
print(json.dumps({
    "replicas": strategy.num_replicas_in_sync,
    "mirrored": type(kernel).__name__,
    "values_per_replica": len(strategy.experimental_local_results(kernel)),
    "val_auc": history.history["val_auc"][-1],
}))
"""


def test_mirrored_strategy_trains_with_two_replicas_on_this_cpu(tmp_path):
    """The Trainer's strategy from config: synchronous data parallelism over two CPU replicas
    (a fresh process, as the devices must be split before TensorFlow starts)."""
    import json
    import subprocess
    import sys

    from tests.conftest import REPO

    script = tmp_path / "mirrored.py"
    script.write_text(MIRRORED)
    result = subprocess.run([sys.executable, str(script)], cwd=REPO, capture_output=True, text=True, timeout=300,
                            env={**__import__("os").environ, "PYTHONPATH": REPO})  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert found["replicas"] == 2 and found["values_per_replica"] == 2, found
    assert "Mirrored" in found["mirrored"], found
    assert found["val_auc"] > 0.95, found


def test_strategy_names_from_config():
    from models.training import strategy_for

    assert strategy_for("default").num_replicas_in_sync == 1
    with pytest.raises(ValueError, match="distribution must be one of"):
        strategy_for("parameter_server")


def test_tuned_input_reads_every_row_once_per_pass(tmp_path):
    """The Trainer's input pipeline (parallel reads, batch parsing, prefetch, optional cache) gives
    every row of every file exactly once per pass, with or without the cache."""
    import tensorflow as tf

    from models.training import tuned_input

    spec = {"x": tf.io.FixedLenFeature([], tf.float32), "y": tf.io.FixedLenFeature([], tf.int64)}
    rows = 0
    for shard in range(3):
        with tf.io.TFRecordWriter(str(tmp_path / f"part-{shard}.gz"), options="GZIP") as writer:
            for _ in range(100 + shard):
                example = tf.train.Example(features=tf.train.Features(feature={
                    "x": tf.train.Feature(float_list=tf.train.FloatList(value=[float(rows)])),
                    "y": tf.train.Feature(int64_list=tf.train.Int64List(value=[rows % 2]))}))  # fmt: skip
                writer.write(example.SerializeToString())
                rows += 1
    for cache in (False, True):
        data = tuned_input([str(tmp_path / "part-*")], spec, "y", batch_size=32, cache=cache)
        batches = -(-rows // 32)  # per pass: batches span files; the last one of a pass is partial
        seen = []
        for features, labels in data.take(2 * batches):
            seen += features["x"].numpy().astype(int).tolist()
            assert set(labels.numpy()) <= {0, 1} and "y" not in features
        first = seen[:rows]
        assert sorted(first) == list(range(rows)), cache  # one pass: every row once
        assert sorted(seen[rows : 2 * rows]) == list(range(rows)), cache  # and again, repeated


def test_balanced_class_weights_raise_the_minority_class():
    import tensorflow as tf

    from models.training import class_weights, fit

    assert class_weights([0.2]) == pytest.approx({0: 0.625, 1: 2.5})
    assert class_weights([0.5, 0.25, 0.25]) == pytest.approx({0: 2 / 3, 1: 4 / 3, 2: 4 / 3})
    rng = np.random.default_rng(3)
    n = 4000
    x = {"a": rng.normal(size=n).astype("float32"), "c": rng.integers(0, 3, n)}
    y = (rng.random(n) < 1 / (1 + np.exp(-(x["a"] * 1.5 - 2.5)))).astype("float32")  # about 13 % positive
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(128).repeat()
    rates = {}
    for name, weights in (("none", None), ("balanced", class_weights([float(y.mean())]))):
        keras_seed(0)
        model = build_model(("a",), {"c": 3}, HParams(hidden_units=(8,), learning_rate=0.02))
        fit(model, data, data, train_steps=150, eval_steps=5, callbacks=[], class_weight=weights)
        rates[name] = float((model.predict(x, verbose=0) >= 0.5).mean())
    assert rates["balanced"] > 2 * rates["none"], rates  # the minority class is predicted far more often


def keras_seed(seed: int) -> None:
    import tf_keras as keras

    keras.utils.set_random_seed(seed)


def test_a_regression_target_in_the_thousands_trains_as_fast_as_one_near_one():
    """Prices in the thousands: with the label's mean and spread, the last layer learns the standardized label
    and a fixed rescaling restores its units; the same epochs without it stay far from the target."""
    import numpy as np

    rng = np.random.default_rng(2)
    n = 3000
    x = rng.normal(size=n).astype("float32")
    c = rng.integers(0, 4, n)
    inputs = {"x": x, "c": c}
    price = (4000 + 1500 * x + np.where(c == 1, 2000.0, 0.0) + rng.normal(scale=100, size=n)).astype("float32")
    results = {}
    for scaled in (False, True):
        keras.utils.set_random_seed(0)
        scale = (float(price.mean()), float(price.std())) if scaled else None
        model = build_model(("x",), {"c": 4}, HParams(hidden_units=(16,), learning_rate=0.01), "regression",
                            label_scale=scale)  # fmt: skip
        model.fit(inputs, price, epochs=5, batch_size=64, verbose=0)
        results[scaled] = model.evaluate(inputs, price, return_dict=True, verbose=0)["rmse"]
    assert results[True] < 0.15 * price.std() < results[False], results
    assert model.get_layer("prediction").offset == pytest.approx(price.mean())  # the output keeps its name


def test_the_learning_rate_follows_a_cosine_over_the_planned_steps():
    model = build_model(("x",), {}, HParams(hidden_units=(4,), learning_rate=0.01), "binary", decay_steps=100)
    schedule = keras.optimizers.schedules.deserialize(model.optimizer.get_config()["learning_rate"])
    assert isinstance(schedule, keras.optimizers.schedules.CosineDecay)
    assert float(schedule(0)) == pytest.approx(0.01) and float(schedule(100)) == pytest.approx(0.001)
    assert 0.001 < float(schedule(50)) < 0.01
    constant = build_model(("x",), {}, HParams(hidden_units=(4,), learning_rate=0.01), "binary")
    assert float(constant.optimizer.learning_rate) == pytest.approx(0.01)


def test_large_vocabularies_and_large_tables_get_room():
    from models.model import embedding_width, widened

    assert [embedding_width(n, 8) for n in (3, 77, 512, 999)] == [3, 8, 8, 8]  # the quickstart's ids: unchanged
    assert embedding_width(4000, 8) == embedding_width(1000, 8) == 32  # thousands of tail numbers: 1.6 * n^0.56, capped
    assert embedding_width(1000, 48) == 48  # never narrower than asked
    base = HParams(hidden_units=(64, 32))
    assert widened(base, 50_000) == base and widened(HParams(hidden_units=()), 300_000).hidden_units == ()
    assert widened(base, 300_000).hidden_units == (128, 64)
    assert widened(base, 1_200_000).hidden_units == (256, 128)
    assert widened(base, 50_000_000).hidden_units == (256, 128)  # at most four times
