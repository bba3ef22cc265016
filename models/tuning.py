"""The Tuner component's `tuner_fn`: KerasTuner random search over the model's hyperparameters.

KerasTuner 1.4 builds Keras 3 models, and the model here is tf_keras, so the
search drives a `BaseTuner` whose trials train the same model `run_fn` trains
and report the eval objective of the problem's head (AUC, accuracy or loss). The oracle, trial bookkeeping, distributed tuning
and the best-hyperparameters artifact are KerasTuner's and TFX's own.
"""

from __future__ import annotations

from typing import Any

import keras_tuner as kt
import tensorflow_transform as tft
import tf_keras as keras

from models.model import OBJECTIVE, HParams, build_model, head_of
from models.training import (
    cardinalities,
    deterministic,
    eval_objective,
    feature_spec,
    fit,
    make_datasets,
    plan_for,
    validation_split,
)


def search_space(space: dict[str, Any]) -> kt.HyperParameters:
    """The search space from config (`tuning:`): learning rate range, layer and embedding choices."""
    hp = kt.HyperParameters()
    low, high = space["learning_rate"]
    hp.Float("learning_rate", low, high, sampling="log")
    hp.Choice("hidden_units", [encode_units(u) for u in space["hidden_units"]])
    hp.Choice("embedding_dim", [int(d) for d in space["embedding_dim"]])
    if space.get("dropout"):
        hp.Choice("dropout", [float(v) for v in space["dropout"]])
    if space.get("l2"):
        hp.Choice("l2", [float(v) for v in space["l2"]])
    return hp


def encode_units(units) -> str:
    return "-".join(str(int(u)) for u in units)


def hparams_from_values(values: dict[str, Any], defaults: HParams) -> HParams:
    """HParams from a trial's (or the best trial's) values; anything not searched keeps `defaults`."""
    units = values.get("hidden_units")
    return HParams(
        hidden_units=tuple(int(u) for u in units.split("-")) if units else defaults.hidden_units,
        learning_rate=float(values.get("learning_rate", defaults.learning_rate)),
        embedding_dim=int(values.get("embedding_dim", defaults.embedding_dim)),
        dropout=float(values.get("dropout", defaults.dropout)),
        l2=float(values.get("l2", defaults.l2)),
    )


class ModelTuner(kt.engine.base_tuner.BaseTuner):
    """Each trial trains `build_model` with the trial's values and reports the eval objective."""

    def __init__(self, oracle, fn_args, **kwargs):
        super().__init__(oracle, **kwargs)
        self._fn_args = fn_args

    def run_trial(self, trial, *args, **kwargs) -> dict[str, float]:
        a = self._fn_args
        config = a.custom_config
        transform_output = tft.TFTransformOutput(a.transform_graph_path)
        spec = feature_spec(config, transform_output)
        plan = plan_for(a)  # the Trainer's batch size and validation; a trial trains for `trial_steps` in one epoch
        with validation_split(a, plan) as eval_files:
            train, evaluation = make_datasets(a, transform_output, spec.label, plan.batch_size, eval_files)
            hparams = hparams_from_values(trial.hyperparameters.values, HParams.from_dict(config.get("hparams", {})))
            keras.utils.set_random_seed(int(config.get("seed", 0)))  # trials differ by their values only
            head = head_of(config)
            model = build_model(spec.dense_outputs(), cardinalities(spec, transform_output), hparams, head,
                                int(config.get("num_classes") or 2))  # fmt: skip
            fit(model, train, evaluation, a.train_steps, plan.eval_steps, callbacks=[])  # a short, single-epoch trial
            return {OBJECTIVE[head][0]: eval_objective(model, evaluation, plan.eval_steps)}

    def save_model(self, trial_id, model, step=0):  # trials keep no model; the Trainer trains the final one
        pass

    def load_model(self, trial):
        raise NotImplementedError("trial models are not kept")


def tuner_fn(fn_args):
    """Returns a TFX `TunerFnResult`.

    Args: TFX FnArgs; `custom_config` is the Trainer's plus `tuning` (the search space and seed).
    """
    from tfx.components.tuner.component import TunerFnResult  # the Tuner component's contract

    seed = int(fn_args.custom_config.get("seed", 0))
    deterministic(seed)
    search = oracle(fn_args.custom_config["tuning"], head_of(fn_args.custom_config), seed)
    tuner = ModelTuner(search, fn_args, directory=fn_args.working_dir, project_name="search", overwrite=True)
    return TunerFnResult(tuner=tuner, fit_kwargs={})


def oracle(tuning: dict[str, Any], head: str, seed: int) -> kt.oracles.RandomSearchOracle:
    """The random search over `tuning`'s space, its trials drawn from `seed`. KerasTuner takes a seed of 0 for
    none (`seed or random.randint(1, 10000)`: a different search each run), so the oracle's seed is `seed + 1`."""
    return kt.oracles.RandomSearchOracle(
        objective=kt.Objective(*OBJECTIVE[head]),
        max_trials=int(tuning["max_trials"]),
        seed=seed + 1,
        hyperparameters=search_space(tuning),
    )
