"""The heuristic floor every candidate must beat, trained and evaluated in the same run on the same split.

`heuristic_run_fn`: no learning: a configured rule (score 1 when a feature takes one of the listed values,
else 0), or without a rule the training split's positive rate for every row (the prior baseline, AUC 0.5); for
multiclass the class frequencies, for regression the mean label, for every row. It exports the candidates'
`serving_default` signature (serialized raw tf.Examples -> the same output), so the leaderboard scores it the
same way; it is a floor, never a candidate (models/candidate.py).
"""

from __future__ import annotations

import tensorflow as tf

from models.model import head_of, output_name
from models.training import label_prior


class _Rule(tf.Module):
    """Binary: 1 when `feature` takes one of `positives`, else 0; without a feature, `prior` for every row."""

    def __init__(self, feature: str | None, positives: list[str], prior: float, output: str):
        super().__init__()
        self._feature = feature
        self._positives = tf.constant(positives or [""], tf.string)
        self._prior = tf.constant(prior, tf.float32)
        self._output = output

    @tf.function(input_signature=[tf.TensorSpec(shape=[None], dtype=tf.string, name="examples")])
    def serve(self, serialized):
        n = tf.shape(serialized)[0]
        if self._feature is None:
            return {self._output: tf.fill([n, 1], self._prior)}
        values = tf.io.parse_example(serialized, {self._feature: tf.io.FixedLenFeature([], tf.string, "")})
        hit = tf.reduce_any(tf.equal(tf.expand_dims(values[self._feature], 1), self._positives), axis=1)
        return {self._output: tf.reshape(tf.cast(hit, tf.float32), [-1, 1])}


class _Constant(tf.Module):
    """The same answer for every row: the class frequencies (multiclass) or the mean label (regression)."""

    def __init__(self, values: list[float], output: str):
        super().__init__()
        self._values = tf.constant([values], tf.float32)
        self._output = output

    @tf.function(input_signature=[tf.TensorSpec(shape=[None], dtype=tf.string, name="examples")])
    def serve(self, serialized):
        return {self._output: tf.tile(self._values, [tf.shape(serialized)[0], 1])}


def heuristic_run_fn(fn_args) -> None:
    config = fn_args.custom_config
    head, output = head_of(config), output_name(config)
    rule = config.get("heuristic") or {}
    if head == "binary":
        prior = 0.5 if rule.get("feature") else label_prior(fn_args, head)[0]
        module = _Rule(rule.get("feature"), list(rule.get("positive_values", [])), prior, output)
    else:
        module = _Constant(label_prior(fn_args, head, int(config.get("num_classes") or 2)), output)
    tf.saved_model.save(module, fn_args.serving_model_dir, signatures={"serving_default": module.serve})
