"""Gradient-boosted trees (scikit-learn's histogram GBDT) fitted on transformed features, evaluated in TensorFlow.

`fit_boosted` fits the trees; `ensemble_arrays` flattens them into padded numpy arrays; `BoostedModule` evaluates
every tree for every row with tensor ops (one gather step per tree level), so the ensemble saves in a SavedModel
and serves with no scikit-learn at prediction time. It reproduces `predict_proba` (binary, multiclass) and
`predict` (regression) of the fitted model: each node sends a row left when `x <= num_threshold`, a NaN by the
node's `missing_go_to_left`; the raw score is the baseline plus the leaf values, through a sigmoid (binary), a
softmax (multiclass) or nothing (regression, squared error).
"""

from __future__ import annotations

import json
import tempfile

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

from models import sampling
from models.candidate import TrainingInputs
from models.training import feature_spec

# No capability: no gradients for integrated gradients, no Keras layers to warm-start, distil from or convert.
CAPABILITIES = ()
MAX_ROWS = 200_000  # a uniform sample this large fits the trees as well as all rows would, in bounded time

HEADS = ("binary", "multiclass", "regression")
NODE_FIELDS = ("feature_idx", "num_threshold", "left", "right", "is_leaf", "value", "missing_go_to_left")

HistGradientBoosting = HistGradientBoostingClassifier | HistGradientBoostingRegressor


def fit_boosted(
    x: np.ndarray,
    y: np.ndarray,
    head: str,
    num_classes: int = 2,
    seed: int = 0,
    max_rows: int | None = None,
    max_iter: int = 500,
) -> HistGradientBoosting:
    """Fit a histogram GBDT on numeric features (NaN = missing), early-stopped on a held-out fraction of the rows."""
    if head not in HEADS:
        raise ValueError(f"head must be one of {HEADS}, got {head!r}")
    x = np.asarray(x, np.float64)
    y = np.asarray(y)
    if max_rows is not None and len(x) > max_rows:
        rows = np.random.default_rng(seed).choice(len(x), max_rows, replace=False)
        x, y = x[rows], y[rows]
    n = len(x)
    params = dict(
        learning_rate=0.1,
        max_iter=max_iter,
        early_stopping=n >= 200,
        validation_fraction=0.1 if n >= 2000 else 0.15,
        n_iter_no_change=20,
        random_state=seed,
    )
    if head == "regression":
        return HistGradientBoostingRegressor(loss="squared_error", **params).fit(x, y.astype(np.float64))
    labels = y.astype(np.int64)
    if not np.array_equal(labels, y) or labels.min() < 0 or labels.max() >= num_classes:
        raise ValueError(f"labels must be integers in [0, {num_classes})")
    if len(np.unique(labels)) < 2:
        raise ValueError("the training rows hold a single class")
    return HistGradientBoostingClassifier(loss="log_loss", **params).fit(x, labels)


def ensemble_arrays(model: HistGradientBoosting) -> dict[str, np.ndarray]:
    """The fitted trees as [n_trees, max_nodes] node arrays (tree t = iteration t // K, class t % K) plus the rest.

    Besides NODE_FIELDS: `baseline` [K] (the raw score before any tree), `classes` (the label of each column of
    `predict_proba`; empty for regression), `n_features` and `max_depth` (scalars). Padding nodes are leaves of value 0.
    """
    if isinstance(model, HistGradientBoostingRegressor) and model.loss != "squared_error":
        raise ValueError(f"only squared_error regression is supported, got {model.loss!r}")
    trees = [predictor.nodes for iteration in model._predictors for predictor in iteration]
    if any(nodes["is_categorical"].any() for nodes in trees):
        raise ValueError("categorical splits are not supported")
    max_nodes = max(len(nodes) for nodes in trees)
    dtypes = {"feature_idx": np.int32, "num_threshold": np.float64, "left": np.int32, "right": np.int32,
              "is_leaf": np.bool_, "value": np.float64, "missing_go_to_left": np.bool_}  # fmt: skip
    arrays = {name: np.zeros((len(trees), max_nodes), dtype) for name, dtype in dtypes.items()}
    arrays["is_leaf"][:] = True
    for t, nodes in enumerate(trees):
        for name in NODE_FIELDS:
            arrays[name][t, : len(nodes)] = nodes[name]
    classes = getattr(model, "classes_", np.zeros(0))
    arrays["baseline"] = np.asarray(model._baseline_prediction, np.float64).reshape(-1)
    arrays["classes"] = np.asarray(classes).astype(np.int64)
    arrays["n_features"] = np.asarray(model.n_features_in_, np.int64)
    arrays["max_depth"] = np.asarray(max(int(nodes["depth"].max()) for nodes in trees), np.int64)
    return arrays


def _float32_at_most(threshold: np.ndarray) -> np.ndarray:
    """The largest float32 <= each float64 threshold, so that `x32 <= it` exactly when `float64(x32) <= threshold`."""
    rounded = threshold.astype(np.float32)
    above = rounded.astype(np.float64) > threshold
    rounded[above] = np.nextafter(rounded[above], np.float32(-np.inf))
    return rounded


class BoostedModule(tf.Module):
    """The ensemble from `ensemble_arrays` as TF ops: float32 [batch, n_features] (NaN = missing) -> predictions.

    binary: [batch, 1] probability of class 1; multiclass: [batch, num_classes] probabilities (columns for classes
    the training rows lacked are 0); regression: [batch, 1] prediction.
    """

    def __init__(self, arrays: dict[str, np.ndarray], head: str, num_classes: int | None = None):
        super().__init__()
        if head not in HEADS:
            raise ValueError(f"head must be one of {HEADS}, got {head!r}")
        self.head = head
        n_trees, max_nodes = arrays["value"].shape
        self.trees_per_iteration = len(arrays["baseline"])
        self.n_features = int(arrays["n_features"])
        self.max_depth = int(arrays["max_depth"])

        def variable(values: np.ndarray, dtype: tf.DType) -> tf.Variable:
            return tf.Variable(np.reshape(values, [-1]), dtype=dtype, trainable=False)

        self._feature = variable(arrays["feature_idx"], tf.int32)
        self._threshold = variable(_float32_at_most(arrays["num_threshold"]), tf.float32)
        self._left = variable(arrays["left"], tf.int32)
        self._right = variable(arrays["right"], tf.int32)
        self._is_leaf = variable(arrays["is_leaf"], tf.bool)
        self._missing_left = variable(arrays["missing_go_to_left"], tf.bool)
        self._value = variable(arrays["value"], tf.float64)
        self._baseline = tf.Variable(arrays["baseline"], dtype=tf.float64, trainable=False)
        self._offsets = tf.constant(np.arange(n_trees, dtype=np.int32) * max_nodes)
        if head != "regression":
            # column c of the output is column columns[c] of predict_proba, or an appended 0 when class c is absent
            classes = list(arrays["classes"])
            width = num_classes or (2 if head == "binary" else len(classes))
            columns = [classes.index(c) if c in classes else len(classes) for c in range(width)]
            self._columns = tf.constant(columns[1:2] if head == "binary" else columns, tf.int32)

    def raw_score(self, x: tf.Tensor) -> tf.Tensor:
        """Baseline plus leaf values: float64 [batch, trees_per_iteration], sklearn's `_raw_predict`."""
        batch = tf.shape(x)[0]
        offsets = tf.expand_dims(self._offsets, 0)

        def descend(node: tf.Tensor) -> tf.Tensor:
            flat = offsets + node
            value = tf.gather(x, tf.gather(self._feature, flat), batch_dims=1)
            go_left = tf.where(
                tf.math.is_nan(value), tf.gather(self._missing_left, flat), value <= tf.gather(self._threshold, flat)
            )
            child = tf.where(go_left, tf.gather(self._left, flat), tf.gather(self._right, flat))
            return tf.where(tf.gather(self._is_leaf, flat), node, child)

        node = tf.zeros([batch, tf.shape(self._offsets)[0]], tf.int32)
        _, node = tf.while_loop(
            lambda depth, _: depth < self.max_depth, lambda depth, node: (depth + 1, descend(node)), (0, node)
        )
        leaves = tf.reshape(tf.gather(self._value, offsets + node), [batch, -1, self.trees_per_iteration])
        return tf.reduce_sum(leaves, axis=1) + self._baseline

    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.float32, name="x")])
    def __call__(self, x: tf.Tensor) -> tf.Tensor:
        raw = self.raw_score(tf.ensure_shape(x, [None, self.n_features]))
        if self.head == "regression":
            return tf.cast(raw, tf.float32)
        if self.trees_per_iteration == 1:
            positive = tf.sigmoid(raw)
            proba = tf.concat([1.0 - positive, positive], axis=1)
        else:
            proba = tf.nn.softmax(raw, axis=1)
        proba = tf.concat([proba, tf.zeros_like(proba[:, :1])], axis=1)
        return tf.cast(tf.gather(proba, self._columns, axis=1), tf.float32)


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


class TreesOverFeatures(tf.Module):
    """The ensemble as a candidate's model: a dict of transformed features -> the head's output."""

    def __init__(self, trees: BoostedModule, columns: tuple[str, ...], metadata: dict):
        super().__init__()
        self.trees = trees
        self.input_names = list(columns)
        self.metadata = metadata

    @tf.function
    def __call__(self, features: dict) -> tf.Tensor:
        x = tf.stack([tf.cast(tf.reshape(features[c], [-1]), tf.float32) for c in self.input_names], axis=1)
        return self.trees(x)


def train(inputs: TrainingInputs) -> TreesOverFeatures:
    """Histogram GBDT on the transformed features (numbers and their missing flags, ids as ordinals)."""
    config = inputs.custom_config
    transform_output = tft.TFTransformOutput(inputs.transform_output)
    spec = feature_spec(config, transform_output)
    columns = (*spec.dense_outputs(), *spec.categorical_outputs())
    seed = int(config.get("seed", 0))
    with tempfile.TemporaryDirectory() as scratch:  # only the sampled rows are parsed
        files, fitted, train_rows = sampling.sampled_files(inputs.train_files, MAX_ROWS, scratch, seed)
        x, y = transformed_arrays(files, transform_output, columns, spec.label)
    model = fit_boosted(x, y, inputs.head, inputs.num_classes, seed=seed)
    trees = BoostedModule(ensemble_arrays(model), inputs.head,
                          inputs.num_classes if inputs.head == "multiclass" else None)  # fmt: skip
    metadata = {"model": type(model).__name__, "train_rows": train_rows, "fitted_rows": fitted,
                "iterations": int(model.n_iter_), "features": list(columns)}  # fmt: skip
    print(json.dumps({"event": "boosted_trees", **metadata, "features": len(columns)}))
    return TreesOverFeatures(trees, columns, metadata)
