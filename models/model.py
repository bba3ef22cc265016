"""The Keras model over Transform's outputs: embeddings for ids, dense layers, a sigmoid head."""

from __future__ import annotations

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


def build_model(dense: tuple[str, ...], cardinalities: dict[str, int], hparams: HParams) -> keras.Model:
    """Returns a compiled binary classifier.

    Args:
        dense: names of float inputs of shape `[batch]`.
        cardinalities: integer-id input name -> number of distinct ids.
        hparams: layer sizes, learning rate and embedding width.
    """
    regularizer = keras.regularizers.l2(hparams.l2) if hparams.l2 else None
    inputs = {}
    parts = []
    if dense:
        for name in dense:
            inputs[name] = keras.Input(shape=(), name=name, dtype="float32")
        parts.append(_stack([inputs[n] for n in dense]))
    for name, size in cardinalities.items():
        inputs[name] = keras.Input(shape=(), name=name, dtype="int64")
        width = min(hparams.embedding_dim, size)
        parts.append(
            keras.layers.Embedding(size, width, name=f"{name}_embedding", embeddings_regularizer=regularizer)(
                inputs[name]
            )
        )
    x = keras.layers.Concatenate()(parts) if len(parts) > 1 else parts[0]
    for i, units in enumerate(hparams.hidden_units):  # stable names: warm start loads weights by name
        x = keras.layers.Dense(units, activation="relu", kernel_regularizer=regularizer, name=f"hidden_{i}")(x)
        if hparams.dropout:
            x = keras.layers.Dropout(hparams.dropout)(x)
    output = keras.layers.Dense(1, activation="sigmoid", name="probability")(x)
    model = keras.Model(inputs=inputs, outputs=output)
    model.compile(
        optimizer=keras.optimizers.Adam(hparams.learning_rate),
        loss=keras.losses.BinaryCrossentropy(),
        metrics=[keras.metrics.AUC(name="auc"), keras.metrics.BinaryAccuracy(name="accuracy")],
    )
    return model


def _stack(tensors: list) -> keras.KerasTensor:
    reshaped = [keras.layers.Reshape((1,))(t) for t in tensors]
    return keras.layers.Concatenate()(reshaped) if len(reshaped) > 1 else reshaped[0]
