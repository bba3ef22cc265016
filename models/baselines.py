"""The baselines a candidate must beat, trained and evaluated in the same run on the same split.

- `linear_run_fn`: logistic regression on the same transformed features: no hidden layer,
  and a width-1 embedding per categorical, which is one weight per category (one-hot).
- `heuristic_run_fn`: no learning: a configured rule (score 1 when a feature takes one of
  the listed values, else 0), or without a rule the training split's positive rate for
  every row (the majority/prior baseline, AUC 0.5).

Both export the same `serving_default` signature as the candidate (serialized raw
tf.Examples -> {"probability"}), so the Evaluator scores all three the same way.
"""

from __future__ import annotations

import tensorflow as tf

from models.model import HParams
from models.trainer import SERVING_OUTPUT, train_and_export


def linear_run_fn(fn_args) -> None:
    learning_rate = float(fn_args.custom_config["linear_learning_rate"])
    train_and_export(fn_args, HParams(hidden_units=(), embedding_dim=1, learning_rate=learning_rate))


class _Rule(tf.Module):
    def __init__(self, feature: str | None, positives: list[str], prior: float):
        super().__init__()
        self._feature = feature
        self._positives = tf.constant(positives or [""], tf.string)
        self._prior = tf.constant(prior, tf.float32)

    @tf.function(input_signature=[tf.TensorSpec(shape=[None], dtype=tf.string, name="examples")])
    def serve(self, serialized):
        n = tf.shape(serialized)[0]
        if self._feature is None:
            return {SERVING_OUTPUT: tf.fill([n, 1], self._prior)}
        values = tf.io.parse_example(serialized, {self._feature: tf.io.FixedLenFeature([], tf.string, "")})
        hit = tf.reduce_any(tf.equal(tf.expand_dims(values[self._feature], 1), self._positives), axis=1)
        return {SERVING_OUTPUT: tf.reshape(tf.cast(hit, tf.float32), [-1, 1])}


def heuristic_run_fn(fn_args) -> None:
    rule = fn_args.custom_config.get("heuristic") or {}
    prior = 0.5
    if not rule.get("feature"):
        prior = positive_rate(fn_args)
    module = _Rule(rule.get("feature"), list(rule.get("positive_values", [])), prior)
    tf.saved_model.save(module, fn_args.serving_model_dir, signatures={"serving_default": module.serve})


def positive_rate(fn_args, batches: int = 50) -> float:
    """The label's mean over (up to) `batches` batches of the transformed train split."""
    import tensorflow_transform as tft

    from models.features import FeatureSpec
    from models.training import make_datasets

    spec = FeatureSpec.from_dict(fn_args.custom_config["features"])
    train, _ = make_datasets(fn_args, tft.TFTransformOutput(fn_args.transform_output), spec.label, 256)
    total = count = 0.0
    for _, labels in train.take(batches):
        total += float(tf.reduce_sum(tf.cast(labels, tf.float32)))
        count += float(tf.size(labels))
    return total / max(count, 1.0)
