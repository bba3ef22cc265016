"""The baselines a candidate must beat, trained and evaluated in the same run on the same split.

- `linear_run_fn`: logistic regression on the same transformed features: no hidden layer,
  and a width-1 embedding per categorical, which is one weight per category (one-hot).
- `boosted_run_fn`: gradient-boosted trees (scikit-learn's HistGradientBoosting) on the same
  transformed features (numbers and their missing flags, ids as ordinals): the strong reference
  a network must come close to; the fitted trees are evaluated in TensorFlow (models/boosted.py).
- `heuristic_run_fn`: no learning: a configured rule (score 1 when a feature takes one of
  the listed values, else 0), or without a rule the training split's positive rate for
  every row (the prior baseline, AUC 0.5); for multiclass the class frequencies, for
  regression the mean label, for every row.

All export the same `serving_default` signature as the candidate (serialized raw
tf.Examples -> the same output), so the Evaluator scores all three the same way.
"""

from __future__ import annotations

import json

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft

from models import boosted
from models.model import HParams, head_of, output_name
from models.trainer import CONTRACT_DIR, METADATA_FILE, train_and_export, write_serving_contract
from models.training import feature_spec, label_prior

BOOSTED_MAX_ROWS = 200_000  # a random sample this large fits the trees as well as all rows would, in bounded time


def linear_run_fn(fn_args) -> None:
    learning_rate = float(fn_args.custom_config["linear_learning_rate"])
    train_and_export(fn_args, HParams(hidden_units=(), embedding_dim=1, learning_rate=learning_rate))


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


def transformed_arrays(file_patterns: list[str], transform_output, columns: tuple[str, ...], label: str,
                       max_rows: int | None = None) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """The transformed rows of `file_patterns` as a float matrix (`columns` in order) and the label."""
    spec = transform_output.transformed_feature_spec()
    files = tf.data.Dataset.list_files(file_patterns, shuffle=False)
    rows = tf.data.TFRecordDataset(files, compression_type="GZIP")
    if max_rows:
        rows = rows.take(max_rows)
    xs, ys = [], []
    for batch in rows.batch(4096).map(lambda s: tf.io.parse_example(s, spec)):
        xs.append(np.stack([tf.cast(tf.reshape(batch[c], [-1]), tf.float64).numpy() for c in columns], axis=1))
        ys.append(tf.reshape(batch[label], [-1]).numpy())
    return np.concatenate(xs), np.concatenate(ys)


class _Boosted(tf.Module):
    """Raw serialized tf.Examples -> the Transform graph -> the tree ensemble -> the candidate's output."""

    def __init__(self, transform_output, trees: boosted.BoostedModule, parse_spec: dict, columns: tuple[str, ...],
                 output: str):  # fmt: skip
        super().__init__()
        self.tft_layer = transform_output.transform_features_layer()
        self.trees = trees
        self._parse_spec, self._columns, self._output = parse_spec, columns, output

    @tf.function(input_signature=[tf.TensorSpec(shape=[None], dtype=tf.string, name="examples")])
    def serve(self, serialized):
        transformed = self.tft_layer(tf.io.parse_example(serialized, self._parse_spec))
        x = tf.stack([tf.cast(tf.reshape(transformed[c], [-1]), tf.float32) for c in self._columns], axis=1)
        return {self._output: self.trees(x)}


def boosted_run_fn(fn_args) -> None:
    config = fn_args.custom_config
    head, output = head_of(config), output_name(config)
    transform_output = tft.TFTransformOutput(fn_args.transform_output)
    spec = feature_spec(config, transform_output)
    columns = (*spec.dense_outputs(), *spec.categorical_outputs())
    x, y = transformed_arrays(fn_args.train_files, transform_output, columns, spec.label)
    num_classes = int(config.get("num_classes") or 2)
    model = boosted.fit_boosted(x, y, head, num_classes, seed=int(config.get("seed", 0)), max_rows=BOOSTED_MAX_ROWS)
    trees = boosted.BoostedModule(boosted.ensemble_arrays(model), head, num_classes if head == "multiclass" else None)
    raw_spec = transform_output.raw_feature_spec()
    module = _Boosted(transform_output, trees, {n: raw_spec[n] for n in spec.raw_inputs()}, columns, output)
    tf.saved_model.save(module, fn_args.serving_model_dir, signatures={"serving_default": module.serve})
    write_serving_contract(fn_args.serving_model_dir, spec, fn_args.schema_path, config.get("decision_threshold"),
                           output)  # fmt: skip
    metadata = {"model": type(model).__name__, "train_rows": len(x), "iterations": int(model.n_iter_),
                "features": list(columns)}  # fmt: skip
    with tf.io.gfile.GFile(f"{fn_args.serving_model_dir}/{CONTRACT_DIR}/{METADATA_FILE}", "w") as f:
        json.dump(metadata, f, indent=2)
    print(json.dumps({"event": "boosted_reference", **metadata, "features": len(columns)}))
