"""The Keras model over Transform's outputs: embeddings for ids, dense layers, and a head for the
problem type: binary (sigmoid), multiclass (softmax) or regression (linear)."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import tf_keras as keras


@dataclass(frozen=True)
class HParams:
    hidden_units: tuple[int, ...] = (64, 32)
    learning_rate: float = 0.003
    embedding_dim: int = 8
    dropout: float = 0.0  # after each hidden layer
    l2: float = 0.0  # weight decay on hidden layers and embeddings

    @classmethod
    def from_dict(cls, d: dict) -> HParams:
        return cls(
            hidden_units=tuple(int(u) for u in d.get("hidden_units", cls.hidden_units)),
            learning_rate=float(d.get("learning_rate", cls.learning_rate)),
            embedding_dim=int(d.get("embedding_dim", cls.embedding_dim)),
            dropout=float(d.get("dropout", cls.dropout)),
            l2=float(d.get("l2", cls.l2)),
        )


HEADS = ("binary", "multiclass", "regression")


def build_model(dense: tuple[str, ...], cardinalities: dict[str, int], hparams: HParams, head: str = "binary",
                num_classes: int = 2, label_scale: tuple[float, float] | None = None,
                decay_steps: int | None = None) -> keras.Model:  # fmt: skip
    """Returns a compiled model.

    Args:
        dense: names of float inputs of shape `[batch]`.
        cardinalities: integer-id input name -> number of distinct ids.
        hparams: layer sizes, learning rate and embedding width.
        head: `binary` (label 0/1, one probability), `multiclass` (label 0..num_classes-1,
            a probability per class) or `regression` (a real label, one value).
        num_classes: the number of classes of a multiclass head.
        label_scale: regression only: the training label's (mean, std). The last dense layer then learns the
            standardized label and a fixed rescaling gives the label's units back, so a target of thousands
            trains at the same pace as one near 1 (the loss and metrics stay in the label's units).
        decay_steps: the planned training steps: the learning rate then follows a cosine from `learning_rate` down
            to a tenth of it over them (large steps early, fine ones at the end); None: a constant rate.
    """
    if head not in HEADS:
        raise ValueError(f"head must be one of {HEADS}, got {head!r}")
    regularizer = keras.regularizers.l2(hparams.l2) if hparams.l2 else None
    inputs = {}
    parts = []
    columns = []  # (input, width) in the order of the feature vector, for attributions
    if dense:
        for name in dense:
            inputs[name] = keras.Input(shape=(), name=name, dtype="float32")
            columns.append((name, 1))
        parts.append(_stack([inputs[n] for n in dense]))
    for name, size in cardinalities.items():
        inputs[name] = keras.Input(shape=(), name=name, dtype="int64")
        width = embedding_width(size, hparams.embedding_dim)
        columns.append((name, width))
        parts.append(
            keras.layers.Embedding(size, width, name=f"{name}_embedding", embeddings_regularizer=regularizer)(
                inputs[name]
            )
        )
    # the feature vector, named so that models/explain.py can split the model there
    if len(parts) > 1:
        x = keras.layers.Concatenate(name="features")(parts)
    else:
        x = keras.layers.Activation("linear", name="features")(parts[0])
    for i, units in enumerate(hparams.hidden_units):  # stable names: warm start loads weights by name
        x = keras.layers.Dense(units, activation="relu", kernel_regularizer=regularizer, name=f"hidden_{i}")(x)
        if hparams.dropout:
            x = keras.layers.Dropout(hparams.dropout)(x)
    units, activation, loss, metrics = _head(head, num_classes)
    if head == "regression" and label_scale is not None:
        mean, std = label_scale
        standardized = keras.layers.Dense(units, name="standardized_prediction")(x)
        output = keras.layers.Rescaling(max(std, 1e-6), offset=mean, name=OUTPUT_LAYER[head])(standardized)
    else:
        output = keras.layers.Dense(units, activation=activation, name=OUTPUT_LAYER[head])(x)
    model = keras.Model(inputs=inputs, outputs=output)
    model.feature_columns = columns
    model.head = head
    rate = hparams.learning_rate
    if decay_steps:
        rate = keras.optimizers.schedules.CosineDecay(hparams.learning_rate, decay_steps, alpha=0.1)
    model.compile(optimizer=keras.optimizers.Adam(rate), loss=loss, metrics=metrics)
    return model


LARGE_VOCABULARY = 1000  # from here an id's embedding widens with the number of ids


def embedding_width(size: int, base: int, most: int = 32) -> int:
    """`base` wide (at most one per id); a vocabulary of LARGE_VOCABULARY ids or more gets the common
    1.6 * size^0.56 rule instead, up to `most`, so that thousands of ids are not squeezed into a few numbers."""
    if size >= LARGE_VOCABULARY:
        return max(base, min(most, round(1.6 * size**0.56)))
    return min(base, size)


def widened(hparams: HParams, train_rows: int, large_rows: int = 100_000) -> HParams:
    """Twice the hidden units for each tenfold of the rows past `large_rows` (at most four times): a network sized
    for thousands of rows underfits hundreds of thousands."""
    if train_rows < large_rows or not hparams.hidden_units:
        return hparams
    factor = min(4, 2 ** (1 + int(math.log10(train_rows / large_rows))))
    return dataclasses.replace(hparams, hidden_units=tuple(u * factor for u in hparams.hidden_units))


HEAD_OF = {"binary_classification": "binary", "multiclass_classification": "multiclass", "regression": "regression"}
OUTPUT_LAYER = {"binary": "probability", "multiclass": "probabilities", "regression": "prediction"}
# what early stopping and the Tuner watch on the eval split, per head
OBJECTIVE = {"binary": ("val_auc", "max"), "multiclass": ("val_accuracy", "max"), "regression": ("val_loss", "min")}


def _head(head: str, num_classes: int) -> tuple:
    if head == "binary":
        return 1, "sigmoid", keras.losses.BinaryCrossentropy(), [
            keras.metrics.AUC(name="auc"), keras.metrics.BinaryAccuracy(name="accuracy")]  # fmt: skip
    if head == "multiclass":
        if num_classes < 3:
            raise ValueError(f"a multiclass head needs at least 3 classes, got {num_classes}")
        return num_classes, "softmax", keras.losses.SparseCategoricalCrossentropy(), [
            keras.metrics.SparseCategoricalAccuracy(name="accuracy")]  # fmt: skip
    return 1, None, keras.losses.MeanSquaredError(), [
        keras.metrics.RootMeanSquaredError(name="rmse"), keras.metrics.MeanAbsoluteError(name="mae")]  # fmt: skip


def _stack(tensors: list) -> keras.KerasTensor:
    reshaped = [keras.layers.Reshape((1,))(t) for t in tensors]
    return keras.layers.Concatenate()(reshaped) if len(reshaped) > 1 else reshaped[0]


def head_of(config: dict) -> str:
    """The head for the `problem_type` in a Trainer's custom_config."""
    return HEAD_OF[config.get("problem_type", "binary_classification")]


def output_name(config: dict) -> str:
    """The serving signatures' output: `probability`, `probabilities` (one per class) or `prediction`."""
    return OUTPUT_LAYER[head_of(config)]
