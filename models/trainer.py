"""The Trainer component's `run_fn`: fit on transformed examples, export a raw-input model."""

from __future__ import annotations

import tensorflow as tf
import tensorflow_transform as tft
import tf_keras as keras
from tfx_bsl.public import tfxio

from models.features import HOURS, WEEKDAYS, FeatureSpec, hour_name, weekday_name
from models.model import HParams, build_model

SERVING_OUTPUT = "probability"


def run_fn(fn_args) -> None:
    """Trains and writes the serving SavedModel to `fn_args.serving_model_dir`.

    Args:
        fn_args: TFX `FnArgs`; `custom_config` holds `features` (FeatureSpec.to_dict())
            and `hparams` (HParams fields) and `batch_size`.
    """
    config = fn_args.custom_config
    spec = FeatureSpec.from_dict(config["features"])
    hparams = HParams.from_dict(config.get("hparams", {}))
    batch_size = int(config.get("batch_size", 128))
    keras.utils.set_random_seed(int(config.get("seed", 0)))
    transform_output = tft.TFTransformOutput(fn_args.transform_output)

    train = _dataset(fn_args.train_files, fn_args.data_accessor, transform_output, spec.label, batch_size)
    evaluation = _dataset(fn_args.eval_files, fn_args.data_accessor, transform_output, spec.label, batch_size)

    model = build_model(spec.dense_outputs(), cardinalities(spec, transform_output), hparams)
    model.fit(
        train,
        steps_per_epoch=fn_args.train_steps,
        validation_data=evaluation,
        validation_steps=fn_args.eval_steps,
        epochs=1,
        callbacks=[keras.callbacks.TensorBoard(log_dir=fn_args.model_run_dir, update_freq="epoch")],
        verbose=2,
    )
    export_serving_model(model, transform_output, spec, fn_args.serving_model_dir)


def cardinalities(spec: FeatureSpec, transform_output: tft.TFTransformOutput) -> dict[str, int]:
    """Number of ids of each integer feature Transform emits."""
    sizes = {n: transform_output.vocabulary_size_by_name(n) + spec.oov_buckets for n in spec.categorical}
    sizes.update(spec.hashed)
    if spec.timestamp:
        sizes[hour_name(spec.timestamp)] = HOURS
        sizes[weekday_name(spec.timestamp)] = WEEKDAYS
    return sizes


def _dataset(files, data_accessor, transform_output, label: str, batch_size: int) -> tf.data.Dataset:
    return data_accessor.tf_dataset_factory(
        files,
        tfxio.TensorFlowDatasetOptions(batch_size=batch_size, label_key=label),
        transform_output.transformed_metadata.schema,
    ).repeat()


def export_serving_model(model: keras.Model, transform_output, spec: FeatureSpec, path: str) -> None:
    """Saves `model` with the Transform graph inside it.

    `serving_default` takes serialized tf.Examples holding raw feature values
    (no label) and returns `{"probability": [batch, 1]}`.
    """
    model.tft_layer = transform_output.transform_features_layer()
    raw_spec = transform_output.raw_feature_spec()
    parse_spec = {name: raw_spec[name] for name in spec.raw_inputs()}

    @tf.function(input_signature=[tf.TensorSpec(shape=[None], dtype=tf.string, name="examples")])
    def serve_examples(serialized):
        raw = tf.io.parse_example(serialized, parse_spec)
        transformed = model.tft_layer(raw)
        inputs = {name: transformed[name] for name in model.input_names}
        return {SERVING_OUTPUT: model(inputs)}

    model.save(path, save_format="tf", signatures={"serving_default": serve_examples})
