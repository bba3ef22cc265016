"""The built-in network candidate: embeddings for ids, dense layers, the problem's head (models/model.py)."""

from __future__ import annotations

import dataclasses
import json

import tensorflow_transform as tft
import tf_keras as keras

from models.candidate import ATTRIBUTIONS, TEACHER, TFLITE, TUNING, WARM_START, TrainingInputs
from models.model import HParams, build_model, widened
from models.trainer import warm_start, write_learning_curves
from models.training import (
    cardinalities,
    class_weights,
    feature_spec,
    fit,
    label_prior,
    label_scale,
    make_datasets,
    plan_for,
    strategy_for,
    validation_split,
)

CAPABILITIES = (TUNING, ATTRIBUTIONS, TEACHER, WARM_START, TFLITE)


def train(inputs: TrainingInputs) -> keras.Model:
    return fit_network(inputs, HParams.from_dict(inputs.hparams))


def fit_network(inputs: TrainingInputs, hparams: HParams) -> keras.Model:
    """`build_model(hparams)` fitted on the transformed examples under the run's plan; the fitted model keeps its
    History as `model.history` and its hyperparameters as `model.hparams`."""
    config = inputs.custom_config
    plan = plan_for(inputs)
    hparams = widened(hparams, plan.train_rows)  # the linear model has no hidden layer to widen
    keras.utils.set_random_seed(int(config.get("seed", 0)))
    transform_output = tft.TFTransformOutput(inputs.transform_output)
    spec = feature_spec(config, transform_output)
    with validation_split(inputs, plan) as eval_files:  # past VALIDATION_ROWS eval rows: a uniform sample
        train_data, evaluation = make_datasets(inputs, transform_output, spec.label, plan.batch_size, eval_files)
        strategy = strategy_for(config.get("distribution", "default"))
        print(json.dumps({"event": "distribution", "strategy": type(strategy).__name__,
                          "replicas": strategy.num_replicas_in_sync}))  # fmt: skip
        scale = label_scale(inputs) if inputs.head == "regression" else None
        with strategy.scope():  # variables are created (mirrored) under the strategy; fit then distributes
            model = build_model(spec.dense_outputs(), cardinalities(spec, transform_output), hparams, inputs.head,
                                inputs.num_classes, label_scale=scale, decay_steps=plan.train_steps)  # fmt: skip
            if config.get("warm_start") and inputs.base_model:
                warm_start(model, inputs.base_model)
        tensorboard = keras.callbacks.TensorBoard(log_dir=inputs.model_run_dir, update_freq="epoch")
        weights = None
        if config.get("class_weight") == "balanced" and inputs.head != "regression":
            weights = class_weights(label_prior(inputs, inputs.head, inputs.num_classes))
            print(json.dumps({"event": "class_weight", "weights": weights}))
        history = fit(
            model, train_data, evaluation, plan.train_steps, plan.eval_steps, callbacks=[tensorboard],
            epochs=plan.epochs, patience=plan.patience, class_weight=weights,
        )  # fmt: skip
        write_learning_curves(history, inputs.model_run_dir)
        model.history = history
        model.hparams = dataclasses.asdict(hparams)
    return model
