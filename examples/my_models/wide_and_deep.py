"""A forker's candidate, outside `models/`: wide & deep (a linear part over every input beside a small network).

Named in a config as `model: {candidates: [network, {name: wide_deep, module: examples.my_models.wide_and_deep}]}`.
It meets the contract of models/candidate.py: `train(inputs)` returns a tf_keras model over the transformed
features; the run exports it with the Transform graph and the serving signatures. It declares no capability, so
the run gives it no Tuner trial, no warm start, no attributions and no TensorFlow Lite file, and says so.
"""

from __future__ import annotations

import tensorflow_transform as tft
import tf_keras as keras

from models.candidate import TrainingInputs
from models.training import cardinalities, feature_spec, fit, make_datasets, plan_for, validation_split

CAPABILITIES = ()
HEAD = {"binary": (1, "sigmoid", "binary_crossentropy"), "regression": (1, None, "mse")}


def train(inputs: TrainingInputs) -> keras.Model:
    if inputs.head not in HEAD:
        raise ValueError(f"wide_deep handles binary and regression heads, not {inputs.head}")
    transform_output = tft.TFTransformOutput(inputs.transform_output)
    spec = feature_spec(inputs.custom_config, transform_output)
    sizes = cardinalities(spec, transform_output)
    keras.utils.set_random_seed(int(inputs.custom_config.get("seed", 0)))
    dense = {n: keras.Input(shape=(), name=n, dtype="float32") for n in spec.dense_outputs()}
    ids = {n: keras.Input(shape=(), name=n, dtype="int64") for n in sizes}
    numbers = keras.layers.Concatenate()([keras.layers.Reshape((1,))(t) for t in dense.values()])
    wide = [keras.layers.Flatten()(keras.layers.Embedding(s, 1)(ids[n])) for n, s in sizes.items()]
    deep = [keras.layers.Flatten()(keras.layers.Embedding(s, min(8, s))(ids[n])) for n, s in sizes.items()]
    hidden = keras.layers.Dense(32, activation="relu")(keras.layers.Concatenate()([numbers, *deep]))
    units, activation, loss = HEAD[inputs.head]
    logits = keras.layers.Add()([keras.layers.Dense(units)(keras.layers.Concatenate()([numbers, *wide])),
                                 keras.layers.Dense(units)(hidden)])  # fmt: skip
    output = keras.layers.Activation(activation or "linear")(logits)
    model = keras.Model(inputs={**dense, **ids}, outputs=output)
    metrics = [keras.metrics.AUC(name="auc")] if inputs.head == "binary" else [keras.metrics.RootMeanSquaredError()]
    model.compile(optimizer=keras.optimizers.Adam(0.003), loss=loss, metrics=metrics)
    model.head = inputs.head  # what early stopping watches (models/model.py OBJECTIVE)
    plan = plan_for(inputs)
    with validation_split(inputs, plan) as eval_files:  # a large table validates on a uniform sample
        train_data, evaluation = make_datasets(inputs, transform_output, spec.label, plan.batch_size, eval_files)
        fit(model, train_data, evaluation, plan.train_steps, plan.eval_steps, callbacks=[], epochs=plan.epochs,
            patience=plan.patience)  # fmt: skip
    return model
