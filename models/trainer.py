"""The Trainer component's `run_fn`: fit on transformed examples, export a raw-input model."""

from __future__ import annotations

import dataclasses
import json
import math
import os

import keras_tuner
import numpy as np
import tensorflow as tf
import tensorflow_transform as tft
import tf_keras as keras

from models import candidate, edge, explain
from models.candidate import TrainingInputs
from models.features import FeatureSpec
from models.model import OBJECTIVE, HParams, head_of, output_name
from models.training import count_rows, deterministic, feature_spec, tuned_input
from models.tuning import hparams_from_values

SERVING_OUTPUT = "probability"  # the binary head's output; see `output_name`


def run_fn(fn_args) -> None:
    """The Trainer's entry: trains the configured candidate and exports it with the shared contract.

    TFX's FnArgs is unpacked here, once (`training_inputs`); the candidate sees only `TrainingInputs`.
    A candidate that fails to train or export writes `CANDIDATE_FAILED` (its name and the cause) in place
    of a model, so that the run's other candidates still compete; the leaderboard lists it as failed.
    """
    inputs = training_inputs(fn_args)
    deterministic(int(inputs.custom_config.get("seed", 0)))
    entry = fn_args.custom_config.get("candidate") or {"name": "network"}
    try:
        module = candidate.load(entry["name"], entry.get("module"))
        trained = module.train(inputs)
        export(trained, inputs, candidate.capabilities(module))
    except Exception as e:  # noqa: BLE001 (any failure of a forker's code is reported, named, not raised)
        cause = f"{type(e).__name__}: {e}"
        print(json.dumps({"event": "candidate_failed", "candidate": inputs.name, "cause": cause[:2000]}))
        write_failure(inputs.serving_model_dir, inputs.name, cause)


def training_inputs(fn_args) -> TrainingInputs:
    """What a candidate receives, from TFX's FnArgs; the Tuner's best trial, when there is one, overrides the
    configured hyperparameters."""
    config = dict(fn_args.custom_config or {})
    entry = config.get("candidate") or {"name": "network"}
    hparams = dict(config.get("hparams", {}))
    if fn_args.hyperparameters:
        best = keras_tuner.HyperParameters.from_config(fn_args.hyperparameters)
        tuned = hparams_from_values(best.values, HParams.from_dict(hparams))
        hparams = {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(tuned).items()}
    return TrainingInputs(
        name=entry["name"], train_files=list(fn_args.train_files), eval_files=list(fn_args.eval_files),
        transform_output=fn_args.transform_output, serving_model_dir=fn_args.serving_model_dir,
        model_run_dir=fn_args.model_run_dir, schema_path=fn_args.schema_path, custom_config=config,
        hparams=hparams, train_steps=fn_args.train_steps or None, eval_steps=fn_args.eval_steps or None,
        base_model=fn_args.base_model,
    )  # fmt: skip


FAILURE_FILE = "CANDIDATE_FAILED"


def write_failure(model_dir: str, name: str, cause: str) -> None:
    if tf.io.gfile.exists(model_dir):
        tf.io.gfile.rmtree(model_dir)  # a half-written export is not a model
    tf.io.gfile.makedirs(model_dir)
    with tf.io.gfile.GFile(os.path.join(model_dir, FAILURE_FILE), "w") as f:
        json.dump({"candidate": name, "cause": cause}, f)


def read_failure(model_dir: str) -> str | None:
    """The cause a candidate failed with, or None for a model."""
    path = os.path.join(model_dir, FAILURE_FILE)
    if not tf.io.gfile.exists(path):
        return None
    with tf.io.gfile.GFile(path) as f:
        return json.load(f)["cause"]


def export(trained, inputs: TrainingInputs, capabilities: frozenset[str]) -> None:
    """Exports what a candidate's `train` returned, with the Transform graph inside and the shared signatures
    and contract; what its capabilities allow (attributions, warm-start weights, TensorFlow Lite) comes with it."""
    config = inputs.custom_config
    transform_output = tft.TFTransformOutput(inputs.transform_output)
    spec = feature_spec(config, transform_output)
    output, path = output_name(config), inputs.serving_model_dir
    keras_model = isinstance(trained, keras.Model)
    explains = keras_model and candidate.ATTRIBUTIONS in capabilities
    if keras_model:
        export_serving_model(trained, transform_output, spec, path, output, explains=explains)
        if candidate.WARM_START in capabilities:
            tf.io.gfile.makedirs(os.path.join(path, CONTRACT_DIR))
            trained.save_weights(os.path.join(path, CONTRACT_DIR, WEIGHTS_FILE))
    elif isinstance(trained, tf.Module) and callable(trained) and hasattr(trained, "input_names"):
        export_module(trained, transform_output, spec, path, output)
    else:
        raise candidate.CandidateError(f"candidate '{inputs.name}': train() returned {type(trained).__name__}; "
                                       "expected a tf_keras.Model or a tf.Module with input_names and __call__")  # fmt: skip
    write_serving_contract(path, spec, inputs.schema_path, config.get("decision_threshold"), output,
                           config.get("label_classes") or (), explains=explains)  # fmt: skip
    write_model_metadata(path, config, inputs, trained, capabilities)
    if explains:
        batch = 256
        evaluation = tuned_input(inputs.eval_files, transform_output.transformed_feature_spec(), spec.label, batch,
                                 shuffle=False)  # fmt: skip
        batches = math.ceil(count_rows(inputs.eval_files) / batch)  # one pass over the eval split
        write_feature_importance(trained, spec, evaluation, inputs.model_run_dir, eval_batches=batches)
    edge_settings = config.get("edge")
    if edge_settings and keras_model and candidate.TFLITE in capabilities:
        # TFLite files in the model's assets.extra (pushed with it), compared in edge.json
        rows = edge.eval_features(inputs.eval_files, transform_output.transformed_feature_spec(),
                                  list(trained.input_names), int(edge_settings["eval_rows"]))  # fmt: skip
        tflite_dir = os.path.join(path, CONTRACT_DIR, edge.TFLITE_DIR)
        result = edge.export(trained, spec, path, tflite_dir, rows, output)
        edge.write_result(result, inputs.model_run_dir)
        print(json.dumps({"event": "edge_export", "conversion_seconds": result["conversion_seconds"]}))


def raw_signatures(predict_transformed, tft_layer, spec: FeatureSpec, parse_spec: dict, output: str) -> dict:
    """The signatures every candidate exports, over raw values, given its function of the transformed features:

    - `serving_default`: serialized tf.Examples (no label) -> `{output: [batch, 1 or classes]}`;
      what TF Serving, TFMA and batch prediction call.
    - `serving_columns`: one 1-D tensor per raw input, plus `<name>__present` (bool) for an
      optional input -> the same output; what the prediction server calls, which saves
      building a tf.Example per row.
    - `slice_features` (with a timestamp): the month of each row, which TFMA slices by.
    """

    def predict_raw(raw):
        return {output: predict_transformed(tft_layer(raw))}

    @tf.function(input_signature=[tf.TensorSpec(shape=[None], dtype=tf.string, name="examples")])
    def serve_examples(serialized):
        return predict_raw(tf.io.parse_example(serialized, parse_spec))

    @tf.function(input_signature=[column_specs(parse_spec)])
    def serve_columns(columns):
        return predict_raw(columns_to_raw(columns, parse_spec))

    signatures = {"serving_default": serve_examples, "serving_columns": serve_columns}
    if spec.timestamp:
        # a missing timestamp is 0, as the preprocessing reads it
        timestamp_spec = {spec.timestamp: tf.io.FixedLenFeature([1], parse_spec[spec.timestamp].dtype, [0])}

        @tf.function(input_signature=[tf.TensorSpec(shape=[None], dtype=tf.string, name="examples")])
        def slice_features(serialized):
            seconds = tf.io.parse_example(serialized, timestamp_spec)[spec.timestamp]
            return {month_name(spec.timestamp): month_of(seconds)}

        signatures[SLICE_SIGNATURE] = slice_features
    return signatures


def column_specs(parse_spec: dict) -> dict:
    specs = {}
    for name, feature in parse_spec.items():
        specs[name] = tf.TensorSpec([None], feature.dtype, name=name)
        if isinstance(feature, tf.io.VarLenFeature):
            specs[present_name(name)] = tf.TensorSpec([None], tf.bool, name=present_name(name))
    return specs


def parse_spec_of(transform_output, spec: FeatureSpec) -> dict:
    raw_spec = transform_output.raw_feature_spec()
    return {name: raw_spec[name] for name in spec.raw_inputs()}


def export_serving_model(model: keras.Model, transform_output, spec: FeatureSpec, path: str,
                         output: str = SERVING_OUTPUT, explains: bool = True) -> None:  # fmt: skip
    """Saves a Keras candidate with the Transform graph inside it, with `raw_signatures` and, when it
    `explains`, `explain_columns` (the prediction with its integrated-gradients attributions per raw input)."""
    model.tft_layer = transform_output.transform_features_layer()
    parse_spec = parse_spec_of(transform_output, spec)

    def model_inputs(transformed):
        return {name: transformed[name] for name in model.input_names}

    signatures = raw_signatures(lambda t: model(model_inputs(t)), model.tft_layer, spec, parse_spec, output)
    if explains:
        encoder, head = explain.split_model(model)
        groups = explain.column_groups(model.feature_columns, raw_inputs_of(spec))

        @tf.function(input_signature=[column_specs(parse_spec)])
        def explain_columns(columns):
            vector = encoder(model_inputs(model.tft_layer(columns_to_raw(columns, parse_spec))), training=False)
            found = explain.grouped(explain.integrated_gradients(head, vector), groups)
            predicted = head(vector)
            baseline = tf.broadcast_to(head(tf.zeros_like(vector[:1])), tf.shape(predicted))
            return {output: predicted, f"baseline_{output}": baseline,
                    **{explain.ATTRIBUTION_PREFIX + raw: values for raw, values in found.items()}}  # fmt: skip

        signatures[explain.EXPLAIN_SIGNATURE] = explain_columns
    # No per-layer traces: serving, TFMA and the TFLite converter call its signatures, a warm start reads the
    # weights file, and tf_keras.models.load_model still rebuilds the network from its config; the traces made
    # the export and the raw-input TFLite conversion (it imports every function of the SavedModel) twice as slow.
    model.save(path, save_format="tf", signatures=signatures, save_traces=False)


class _Servable(tf.Module):
    """A non-Keras candidate with the Transform graph, saved with the same signatures."""

    def __init__(self, model: tf.Module, tft_layer):
        super().__init__()
        self.model = model
        self.tft_layer = tft_layer


def export_module(model: tf.Module, transform_output, spec: FeatureSpec, path: str, output: str) -> None:
    """Saves a `tf.Module` candidate (`__call__` over a dict of its `input_names`) with `raw_signatures`."""
    servable = _Servable(model, transform_output.transform_features_layer())
    names = list(model.input_names)
    signatures = raw_signatures(lambda t: model({n: t[n] for n in names}), servable.tft_layer, spec,
                                parse_spec_of(transform_output, spec), output)  # fmt: skip
    tf.saved_model.save(servable, path, signatures=signatures)


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


def write_feature_importance(model: keras.Model, spec: FeatureSpec, evaluation: tf.data.Dataset, run_dir: str,
                             eval_batches: int | None = None) -> dict:  # fmt: skip
    """Global importance (mean |integrated gradients| per raw input) on eval rows, in the run's output.
    `evaluation` repeats: `eval_batches` (one pass over the eval split) keeps each row from counting twice."""
    groups = explain.column_groups(model.feature_columns, raw_inputs_of(spec))
    rows = evaluation.take(eval_batches) if eval_batches else evaluation
    importance = explain.global_importance(model, groups, rows)
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


def write_model_metadata(model_dir: str, config: dict, inputs: TrainingInputs, trained, capabilities) -> dict:
    """Where the model came from, versioned with it: the candidate and its capabilities, the code commit, the
    data span(s) and version(s) it was trained on, its hyperparameters and its best eval objective in training."""
    metadata = {
        "candidate": inputs.name,
        "capabilities": sorted(capabilities),
        "code_commit": config.get("code_commit", "unknown"),
        "data_span": config.get("data_span", []),
        "data_version": config.get("data_version", []),
        "problem_type": config.get("problem_type", "binary_classification"),
        **getattr(trained, "metadata", {}),
    }
    if hasattr(trained, "hparams"):
        metadata["hparams"] = trained.hparams
    history = getattr(trained, "history", None)
    if history is not None and getattr(history, "history", None):
        monitor, mode = OBJECTIVE[head_of(config)]
        values = history.history.get(monitor) or [float("nan")]
        metadata["epochs_run"] = len(values)
        metadata[f"best_{monitor}"] = float(max(values) if mode == "max" else min(values))
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
    present (a fixed `shape` in the schema: a FixedLenFeature; `tables.schema_proposal.curate` and SchemaGen
    give serving inputs none)."""
    from google.protobuf import text_format
    from tensorflow_metadata.proto.v0 import schema_pb2

    from models.preprocessing import MISSING_TOKEN

    schema = schema_pb2.Schema()
    if schema_path:
        with tf.io.gfile.GFile(schema_path) as f:
            text_format.Parse(f.read(), schema)
    always_present = {f.name for f in schema.feature if f.HasField("shape")}
    token = {"missing": "imputed", "fill": MISSING_TOKEN}
    found = {n: {"values": "open", **token} if spec.oov_buckets > 0 else {"values": "closed", "missing": "refused"}
             for n in spec.categorical}  # fmt: skip
    found.update({n: {"values": "open", **token} for n in spec.hashed})
    for n in spec.numeric:
        found[n] = {"values": "closed", "missing": "refused" if n in always_present else "imputed"}
    if spec.timestamp:
        found[spec.timestamp] = {"values": "closed", "missing": "imputed", "fill": 0}
    return found


def write_serving_contract(model_dir: str, spec: FeatureSpec, schema_path: str | None,
                           decision_threshold: float | None = None, output: str = SERVING_OUTPUT,
                           classes: list[str] = (), explains: bool = True) -> None:  # fmt: skip
    """Writes what a server needs to validate requests, versioned with the model:
    the raw inputs it reads, the output name, the class names of a text label (output column i is class i),
    what the preprocessing handles per input (`features`: `serving.validation` serves those values), and the
    validated schema (domains, presence, environments) the model was trained against."""
    extra = os.path.join(model_dir, CONTRACT_DIR)
    tf.io.gfile.makedirs(extra)
    contract = {"inputs": list(spec.raw_inputs()), "label": spec.label, "output": output,
                "columns_signature": "serving_columns",
                "explain_signature": explain.EXPLAIN_SIGNATURE if explains else None,
                "decision_threshold": decision_threshold, "classes": list(classes),
                "features": preprocessing_handles(spec, schema_path)}  # fmt: skip
    with tf.io.gfile.GFile(os.path.join(extra, CONTRACT_FILE), "w") as f:
        json.dump(contract, f, indent=2)
    # read when uploaded to Vertex AI: sampled Shapley through the predict route, for any candidate
    with tf.io.gfile.GFile(os.path.join(extra, EXPLANATION_FILE), "w") as f:
        json.dump(explain.vertex_explanation_spec(list(spec.raw_inputs()), output), f, indent=2)
    if schema_path:
        tf.io.gfile.copy(schema_path, os.path.join(extra, SCHEMA_FILE), overwrite=True)
