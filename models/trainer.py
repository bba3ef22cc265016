"""The Trainer component's `run_fn`: fit on transformed examples, export a raw-input model."""

from __future__ import annotations

import dataclasses
import json
import os

import keras_tuner
import numpy as np
import tensorflow as tf
import tensorflow_transform as tft
import tf_keras as keras

from models import edge, explain
from models.features import FeatureSpec
from models.model import OBJECTIVE, HParams, build_model, head_of, output_name
from models.training import (
    cardinalities,
    class_weights,
    feature_spec,
    fit,
    label_prior,
    make_datasets,
    plan_for,
    strategy_for,
)
from models.tuning import hparams_from_values

SERVING_OUTPUT = "probability"  # the binary head's output; see `output_name`


def run_fn(fn_args) -> None:
    """Trains and writes the serving SavedModel to `fn_args.serving_model_dir`.

    Args:
        fn_args: TFX `FnArgs`; `custom_config` holds `features` (FeatureSpec.to_dict()),
            `hparams` (HParams fields) and `batch_size`. When the Tuner ran,
            `fn_args.hyperparameters` holds its best trial, which overrides `hparams`.
    """
    config = fn_args.custom_config
    hparams = HParams.from_dict(config.get("hparams", {}))
    if fn_args.hyperparameters:
        best = keras_tuner.HyperParameters.from_config(fn_args.hyperparameters)
        hparams = hparams_from_values(best.values, hparams)
    train_and_export(fn_args, hparams, edge_settings=config.get("edge"))


def train_and_export(fn_args, hparams: HParams, edge_settings: dict | None = None) -> None:
    """Trains `build_model(hparams)` on the transformed examples and exports it for serving (and, with
    `edge_settings`, for devices: `models/edge.py`)."""
    config = fn_args.custom_config
    plan = plan_for(fn_args)
    keras.utils.set_random_seed(int(config.get("seed", 0)))
    transform_output = tft.TFTransformOutput(fn_args.transform_output)
    spec = feature_spec(config, transform_output)
    train, evaluation = make_datasets(fn_args, transform_output, spec.label, plan.batch_size)

    strategy = strategy_for(config.get("distribution", "default"))
    print(json.dumps({"event": "distribution", "strategy": type(strategy).__name__,
                      "replicas": strategy.num_replicas_in_sync}))  # fmt: skip
    with strategy.scope():  # variables are created (mirrored) under the strategy; fit then distributes
        model = build_model(spec.dense_outputs(), cardinalities(spec, transform_output), hparams, head_of(config),
                            int(config.get("num_classes") or 2))  # fmt: skip
        if config.get("warm_start") and fn_args.base_model:
            warm_start(model, fn_args.base_model)
    tensorboard = keras.callbacks.TensorBoard(log_dir=fn_args.model_run_dir, update_freq="epoch")
    weights = None
    if config.get("class_weight") == "balanced" and head_of(config) != "regression":
        weights = class_weights(label_prior(fn_args, head_of(config), int(config.get("num_classes") or 2)))
        print(json.dumps({"event": "class_weight", "weights": weights}))
    history = fit(
        model, train, evaluation, plan.train_steps, plan.eval_steps, callbacks=[tensorboard],
        epochs=plan.epochs, patience=plan.patience,
        class_weight=weights,
    )  # fmt: skip
    write_learning_curves(history, fn_args.model_run_dir)
    write_feature_importance(model, spec, evaluation, fn_args.model_run_dir)
    export_serving_model(model, transform_output, spec, fn_args.serving_model_dir, output_name(config))
    write_serving_contract(fn_args.serving_model_dir, spec, fn_args.schema_path, config.get("decision_threshold"),
                           output_name(config), config.get("label_classes") or ())  # fmt: skip
    model.save_weights(os.path.join(fn_args.serving_model_dir, CONTRACT_DIR, WEIGHTS_FILE))
    write_model_metadata(fn_args.serving_model_dir, config, hparams, history)
    if edge_settings:  # TFLite files in the model's assets.extra (pushed with it), compared in edge.json
        rows = edge.eval_features(fn_args.eval_files, transform_output.transformed_feature_spec(),
                                  list(model.input_names), int(edge_settings["eval_rows"]))  # fmt: skip
        tflite_dir = os.path.join(fn_args.serving_model_dir, CONTRACT_DIR, edge.TFLITE_DIR)
        result = edge.export(model, spec, fn_args.serving_model_dir, tflite_dir, rows, output_name(config))
        edge.write_result(result, fn_args.model_run_dir)
        print(json.dumps({"event": "edge_export", "conversion_seconds": result["conversion_seconds"]}))


def export_serving_model(model: keras.Model, transform_output, spec: FeatureSpec, path: str,
                         output: str = SERVING_OUTPUT) -> None:  # fmt: skip
    """Saves `model` with the Transform graph inside it, with two signatures over raw values:

    - `serving_default`: serialized tf.Examples (no label) -> `{output: [batch, 1 or classes]}`;
      what TF Serving, TFMA and batch prediction call.
    - `serving_columns`: one 1-D tensor per raw input, plus `<name>__present` (bool) for an
      optional input -> the same output; what the prediction server calls, which saves
      building a tf.Example per row.
    """
    model.tft_layer = transform_output.transform_features_layer()
    raw_spec = transform_output.raw_feature_spec()
    parse_spec = {name: raw_spec[name] for name in spec.raw_inputs()}

    def model_inputs(raw):
        transformed = model.tft_layer(raw)
        return {name: transformed[name] for name in model.input_names}

    def predict_raw(raw):
        return {output: model(model_inputs(raw))}

    @tf.function(input_signature=[tf.TensorSpec(shape=[None], dtype=tf.string, name="examples")])
    def serve_examples(serialized):
        return predict_raw(tf.io.parse_example(serialized, parse_spec))

    column_spec = {}
    for name, feature in parse_spec.items():
        column_spec[name] = tf.TensorSpec([None], feature.dtype, name=name)
        if isinstance(feature, tf.io.VarLenFeature):
            column_spec[present_name(name)] = tf.TensorSpec([None], tf.bool, name=present_name(name))

    @tf.function(input_signature=[column_spec])
    def serve_columns(columns):
        return predict_raw(columns_to_raw(columns, parse_spec))

    encoder, head = explain.split_model(model)
    groups = explain.column_groups(model.feature_columns, raw_inputs_of(spec))

    @tf.function(input_signature=[column_spec])
    def explain_columns(columns):
        vector = encoder(model_inputs(columns_to_raw(columns, parse_spec)), training=False)
        found = explain.grouped(explain.integrated_gradients(head, vector), groups)
        predicted = head(vector)
        baseline = tf.broadcast_to(head(tf.zeros_like(vector[:1])), tf.shape(predicted))
        return {output: predicted, f"baseline_{output}": baseline,
                **{explain.ATTRIBUTION_PREFIX + raw: values for raw, values in found.items()}}  # fmt: skip

    signatures = {"serving_default": serve_examples, "serving_columns": serve_columns,
                  explain.EXPLAIN_SIGNATURE: explain_columns}  # fmt: skip
    if spec.timestamp:
        timestamp_spec = {spec.timestamp: parse_spec[spec.timestamp]}

        @tf.function(input_signature=[tf.TensorSpec(shape=[None], dtype=tf.string, name="examples")])
        def slice_features(serialized):
            seconds = tf.io.parse_example(serialized, timestamp_spec)[spec.timestamp]
            return {month_name(spec.timestamp): month_of(tf.reshape(seconds, [-1, 1]))}

        signatures[SLICE_SIGNATURE] = slice_features
    # No per-layer traces: serving, TFMA and the TFLite converter call its signatures, a warm start reads the
    # weights file, and tf_keras.models.load_model still rebuilds the network from its config; the traces made
    # the export and the raw-input TFLite conversion (it imports every function of the SavedModel) twice as slow.
    model.save(path, save_format="tf", signatures=signatures, save_traces=False)


SLICE_SIGNATURE = "slice_features"  # TFMA's preprocessing function: features to slice by that are not columns


def month_name(timestamp: str) -> str:
    return f"{timestamp}_month"


def month_of(seconds: tf.Tensor) -> tf.Tensor:
    """Calendar month (1-12, UTC) of seconds since the epoch, with integer ops only
    (the days-to-civil-date algorithm of H. Hinnant)."""
    z = tf.math.floordiv(tf.cast(seconds, tf.int64), 86400) + 719468
    era = tf.math.floordiv(z, 146097)
    doe = z - era * 146097
    yoe = tf.math.floordiv(doe - doe // 1460 + doe // 36524 - doe // 146096, 365)
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    return tf.where(mp < 10, mp + 3, mp - 9)


def present_name(name: str) -> str:
    return f"{name}__present"


def columns_to_raw(columns: dict, parse_spec: dict) -> dict:
    """The tensors `tf.io.parse_example` would give for the same rows: dense [batch] + shape for
    fixed-length inputs, a [batch, 1] SparseTensor of the present values for optional ones."""
    raw = {}
    for name, feature in parse_spec.items():
        values = columns[name]
        if isinstance(feature, tf.io.VarLenFeature):
            present = columns[present_name(name)]
            rows = tf.where(present)
            raw[name] = tf.SparseTensor(
                indices=tf.concat([rows, tf.zeros_like(rows)], axis=1),
                values=tf.boolean_mask(values, present),
                dense_shape=tf.stack([tf.shape(values, out_type=tf.int64)[0], tf.constant(1, tf.int64)]),
            )
        else:
            raw[name] = tf.reshape(values, [-1, *feature.shape])
    return raw


LEARNING_CURVES = "learning_curves.json"
WEIGHTS_FILE = "keras_weights.h5"  # beside the SavedModel: what a warm-started run loads


def warm_start(model: keras.Model, base_model_dir: str) -> list[str]:
    """Loads the previous model's weights into `model` layer by layer, by name; a layer whose
    shape changed (a new vocabulary size, another width) keeps its fresh initialization.
    Returns the names of the layers that were loaded."""
    path = os.path.join(base_model_dir, CONTRACT_DIR, WEIGHTS_FILE)
    if not tf.io.gfile.exists(path):
        print(json.dumps({"event": "warm_start_skipped", "reason": f"no weights at {path}"}))
        return []
    before = {layer.name: [w.numpy().copy() for w in layer.weights] for layer in model.layers if layer.weights}
    model.load_weights(path, by_name=True, skip_mismatch=True)
    loaded = [
        name for name, old in before.items()
        if any(not np.array_equal(o, w.numpy()) for o, w in zip(old, model.get_layer(name).weights, strict=True))
    ]  # fmt: skip
    print(json.dumps({"event": "warm_start", "from": base_model_dir, "layers_loaded": sorted(loaded)}))
    return loaded


def raw_inputs_of(spec: FeatureSpec) -> dict[str, tuple[str, ...]]:
    """Transformed input -> the raw column(s) it is made from (where the names differ)."""
    return spec.raw_of()


def write_feature_importance(model: keras.Model, spec: FeatureSpec, evaluation: tf.data.Dataset, run_dir: str) -> dict:
    """Global importance (mean |integrated gradients| per raw input) on eval rows, in the run's output."""
    groups = explain.column_groups(model.feature_columns, raw_inputs_of(spec))
    importance = explain.global_importance(model, groups, evaluation)
    tf.io.gfile.makedirs(run_dir)
    with tf.io.gfile.GFile(os.path.join(run_dir, explain.IMPORTANCE_FILE), "w") as f:
        json.dump(importance, f, indent=2)
    return importance


def write_learning_curves(history: keras.callbacks.History, run_dir: str) -> None:
    """Loss and metrics per epoch on train and eval (also in TensorBoard under `run_dir`)."""
    tf.io.gfile.makedirs(run_dir)
    curves = {k: [float(v) for v in vs] for k, vs in history.history.items()}
    with tf.io.gfile.GFile(os.path.join(run_dir, LEARNING_CURVES), "w") as f:
        json.dump({"epochs": len(next(iter(curves.values()), [])), **curves}, f, indent=2)


METADATA_FILE = "model_metadata.json"


def write_model_metadata(model_dir: str, config: dict, hparams: HParams, history) -> dict:
    """Where the model came from, versioned with it: the code commit, the data span(s) and
    version(s) it was trained on, its hyperparameters and its best eval AUC in training."""
    monitor, mode = OBJECTIVE[head_of(config)]
    values = history.history.get(monitor) or [float("nan")]
    metadata = {
        "code_commit": config.get("code_commit", "unknown"),
        "data_span": config.get("data_span", []),
        "data_version": config.get("data_version", []),
        "hparams": {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(hparams).items()},
        "problem_type": config.get("problem_type", "binary_classification"),
        "epochs_run": len(values),
        f"best_{monitor}": float(max(values) if mode == "max" else min(values)),
    }
    extra = os.path.join(model_dir, CONTRACT_DIR)
    tf.io.gfile.makedirs(extra)
    with tf.io.gfile.GFile(os.path.join(extra, METADATA_FILE), "w") as f:
        json.dump(metadata, f, indent=2)
    return metadata


CONTRACT_DIR = "assets.extra"  # files beside the SavedModel that TF Serving and Vertex ignore
CONTRACT_FILE = "serving_contract.json"
SCHEMA_FILE = "schema.pbtxt"
EXPLANATION_FILE = "explanation_spec.json"


def preprocessing_handles(spec: FeatureSpec, schema_path: str | None) -> dict[str, dict]:
    """Per raw input, what `preprocessing_fn` does with a value training did not have. `values`: "open" where an
    unseen category gets an out-of-vocabulary bucket (or a hash bucket), else "closed". `missing`: "imputed"
    where the preprocessing fills a missing value: strings become its missing token (a vocabulary entry or an
    OOV bucket), a timestamp 0, a number its training mean (only for an input the export reads as optional,
    where the mean is applied in the graph); `fill` is what to send for an input the export reads as always
    present (the schema's presence is 1)."""
    from google.protobuf import text_format
    from tensorflow_metadata.proto.v0 import schema_pb2

    from models.preprocessing import MISSING_TOKEN

    schema = schema_pb2.Schema()
    if schema_path:
        with tf.io.gfile.GFile(schema_path) as f:
            text_format.Parse(f.read(), schema)
    required = {f.name for f in schema.feature if f.presence.min_fraction >= 1.0 or f.HasField("shape")}
    token = {"missing": "imputed", "fill": MISSING_TOKEN}
    found = {n: {"values": "open", **token} if spec.oov_buckets > 0 else {"values": "closed", "missing": "refused"}
             for n in spec.categorical}  # fmt: skip
    found.update({n: {"values": "open", **token} for n in spec.hashed})
    for n in spec.numeric:
        found[n] = {"values": "closed", "missing": "refused" if n in required else "imputed"}
    if spec.timestamp:
        found[spec.timestamp] = {"values": "closed", "missing": "imputed", "fill": 0}
    return found


def write_serving_contract(model_dir: str, spec: FeatureSpec, schema_path: str | None,
                           decision_threshold: float | None = None, output: str = SERVING_OUTPUT,
                           classes: list[str] = ()) -> None:  # fmt: skip
    """Writes what a server needs to validate requests, versioned with the model:
    the raw inputs it reads, the output name, the class names of a text label (output column i is class i),
    what the preprocessing handles per input (`features`: `serving.validation` serves those values), and the
    validated schema (domains, presence, environments) the model was trained against."""
    extra = os.path.join(model_dir, CONTRACT_DIR)
    tf.io.gfile.makedirs(extra)
    contract = {"inputs": list(spec.raw_inputs()), "label": spec.label, "output": output,
                "columns_signature": "serving_columns", "explain_signature": explain.EXPLAIN_SIGNATURE,
                "decision_threshold": decision_threshold, "classes": list(classes),
                "features": preprocessing_handles(spec, schema_path)}  # fmt: skip
    with tf.io.gfile.GFile(os.path.join(extra, CONTRACT_FILE), "w") as f:
        json.dump(contract, f, indent=2)
    with tf.io.gfile.GFile(os.path.join(extra, EXPLANATION_FILE), "w") as f:  # read when uploaded to Vertex AI
        json.dump(explain.vertex_explanation_spec(list(spec.raw_inputs()), output), f, indent=2)
    if schema_path:
        tf.io.gfile.copy(schema_path, os.path.join(extra, SCHEMA_FILE), overwrite=True)
