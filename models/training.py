"""Training steps shared by the Trainer's `run_fn` and the Tuner's trials."""

from __future__ import annotations

import tensorflow as tf
import tensorflow_transform as tft
import tf_keras as keras
from tfx_bsl.public import tfxio

from models.features import HOURS, WEEKDAYS, FeatureSpec, hour_name, weekday_name


def make_datasets(fn_args, transform_output: tft.TFTransformOutput, label: str, batch_size: int):
    """Repeating (train, eval) datasets of transformed examples from a TFX FnArgs."""
    return tuple(
        fn_args.data_accessor.tf_dataset_factory(
            files,
            tfxio.TensorFlowDatasetOptions(batch_size=batch_size, label_key=label),
            transform_output.transformed_metadata.schema,
        ).repeat()
        for files in (fn_args.train_files, fn_args.eval_files)
    )


def cardinalities(spec: FeatureSpec, transform_output: tft.TFTransformOutput) -> dict[str, int]:
    """Number of ids of each integer feature Transform emits."""
    sizes = {n: transform_output.vocabulary_size_by_name(n) + spec.oov_buckets for n in spec.categorical}
    sizes.update(spec.hashed)
    if spec.timestamp:
        sizes[hour_name(spec.timestamp)] = HOURS
        sizes[weekday_name(spec.timestamp)] = WEEKDAYS
    return sizes


def fit(model: keras.Model, train: tf.data.Dataset, evaluation: tf.data.Dataset, train_steps: int,
        eval_steps: int, callbacks: list, epochs: int = 1, patience: int = 0) -> keras.callbacks.History:  # fmt: skip
    """`train_steps` batches in `epochs` epochs, each validated on `eval_steps` eval batches.

    With `patience` > 0, training stops when the eval AUC has not improved for that many
    epochs and the weights of the best epoch are kept (early stopping).
    """
    if patience:
        callbacks = [*callbacks, keras.callbacks.EarlyStopping(
            monitor="val_auc", mode="max", patience=patience, restore_best_weights=True)]  # fmt: skip
    return model.fit(
        train,
        steps_per_epoch=max(1, train_steps // epochs),
        validation_data=evaluation,
        validation_steps=eval_steps,
        epochs=epochs,
        callbacks=callbacks,
        verbose=2,
    )


def eval_auc(model: keras.Model, evaluation: tf.data.Dataset, eval_steps: int) -> float:
    return float(model.evaluate(evaluation, steps=eval_steps, return_dict=True, verbose=0)["auc"])
