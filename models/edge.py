"""The trained model for devices: TensorFlow Lite files beside the SavedModel, checked against it.

Each model is written as float32 and dynamic-range quantized (int8 weights, float activations):
on a phone or board CPU that is the quantization that needs no calibration data and runs int8
kernels (float16 halves the size too, but a CPU dequantizes it back to float32; it is for GPU
delegates).

- `raw_input*.tflite`: the `serving_columns` signature, the Transform graph inside, so the
  device keeps the raw-input contract. What TFLite's builtin ops cannot do of the Transform
  graph (measured, listed in `edge.json` as `flex_ops`): string hashing (`StringToHashBucketFast`,
  the out-of-vocabulary buckets and hashed ids), `AsString` and `StringJoin` (integer categories
  and crosses), `SelectV2` on strings (the missing token), `SparseToDense` (optional inputs),
  int64 `FloorDiv` (hour, weekday) and `UpperBound` (quantile buckets). The vocabulary tables
  themselves are builtin. These run as Select TF ops: the device must link the Flex delegate
  (`tensorflow-lite-select-tf-ops` on Android). The TFLite interpreter of the TensorFlow pip
  package (2.21) links no Flex delegate, so these two are converted and inspected, not scored here.
- `features*.tflite`: the network over the transformed features, builtin ops only; the device
  computes the transformed features itself (`device_preprocessing` in `edge.json` says which,
  from which raw column, how). These are scored against the SavedModel on eval rows.
"""

from __future__ import annotations

import json
import os
import time

import numpy as np
import tensorflow as tf

from models import features as names
from models.features import FeatureSpec
from models.measure import directory_bytes, latency_ms, median_ms

QUANTIZATION = "dynamic_range"
TFLITE_DIR = "tflite"  # under the model's assets.extra, so the Pusher copies it with the SavedModel
RESULT_FILE = "edge.json"
RAW_SIGNATURE = "serving_columns"
FILES = {"float": "features.tflite", "quantized": "features_quant.tflite",
         "raw_float": "raw_input.tflite", "raw_quantized": "raw_input_quant.tflite"}  # fmt: skip
FLEX_PREFIX = "Flex"


def convert(converter: tf.lite.TFLiteConverter, quantize: bool, flex: bool) -> bytes:
    """The converter's model; with `flex`, ops outside the builtins become Select TF ops."""
    ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    converter.target_spec.supported_ops = [*ops, tf.lite.OpsSet.SELECT_TF_OPS] if flex else ops
    converter.optimizations = [tf.lite.Optimize.DEFAULT] if quantize else []  # dynamic range: int8 weights
    return converter.convert()


def network_function(model, output: str):
    """The Keras network alone, over its transformed inputs, as a traced function to convert."""
    spec = {name: tf.TensorSpec(t.shape, t.dtype, name=name) for name, t in zip(model.input_names, model.inputs,
                                                                                strict=True)}  # fmt: skip
    return tf.function(lambda x: {output: model(x, training=False)}, input_signature=[spec]).get_concrete_function()


def convert_network(model, output: str, quantize: bool) -> bytes:
    """The Keras network over its transformed inputs, builtin ops only."""
    weights = tf.Module()  # what the converter freezes: the network's variables, not the whole model (with
    weights.variables_ = list(model.variables)  # its Transform layer, ten times slower to convert)
    converter = tf.lite.TFLiteConverter.from_concrete_functions([network_function(model, output)], weights)
    return convert(converter, quantize, flex=False)


def raw_input_converter(saved_model_dir: str) -> tf.lite.TFLiteConverter:
    """A converter of the SavedModel's raw-column signature (it loads the SavedModel once: both raw files
    come from it)."""
    return tf.lite.TFLiteConverter.from_saved_model(saved_model_dir, signature_keys=[RAW_SIGNATURE])


def convert_raw_input(converter: tf.lite.TFLiteConverter, quantize: bool) -> tuple[bytes, str | None]:
    """The raw-column signature, Transform graph inside, with Select TF ops where needed; and, where the
    MLIR dynamic-range quantizer failed and TFLite's older one converted it, the first one's error (else None).
    (The MLIR one fails on some networks of the same code: the features' concatenation gets an int8 input.)"""
    from tensorflow.lite.python.convert_phase import ConverterError

    try:
        return convert(converter, quantize, flex=True), None
    except ConverterError as e:
        if not quantize:
            raise
        converter.experimental_new_dynamic_range_quantizer = False
        try:
            return convert(converter, quantize, flex=True), conversion_error(str(e))
        finally:
            converter.experimental_new_dynamic_range_quantizer = True


def conversion_error(message: str) -> str:
    """The converter's own error lines (MLIR's `error:` lines, not the trace around them), else its last line."""
    lines = [line.strip() for line in message.strip().splitlines() if line.strip()]
    errors = [line for line in lines if "error:" in line]
    return " | ".join(dict.fromkeys(errors or lines[-1:] or ["?"]))[:600]


def flex_ops(content: bytes) -> list[str]:
    """The TensorFlow ops a converted model runs through the Flex delegate (none: builtins only)."""
    from tensorflow.lite.python import schema_py_generated as schema

    model = schema.Model.GetRootAsModel(content, 0)
    found = set()
    for i in range(model.OperatorCodesLength()):
        code = model.OperatorCodes(i).CustomCode()
        if code and code.decode().startswith(FLEX_PREFIX):
            found.add(code.decode()[len(FLEX_PREFIX) :])
    return sorted(found)


def runner(content: bytes, signature: str | None = None):
    """A TFLite signature runner of the model (`signature` None: its only one)."""
    return tf.lite.Interpreter(model_content=content).get_signature_runner(signature)


def scores(run, inputs: dict[str, np.ndarray]) -> np.ndarray:
    """One score per row (a row of class scores for a multiclass model) from a signature runner."""
    details = run.get_input_details()
    out = run(**{k: np.asarray(inputs[k]).astype(d["dtype"]) for k, d in details.items()})
    values = next(iter(out.values()))
    return values.reshape(len(values), -1)


def eval_features(eval_files: list[str], transformed_spec: dict, input_names: list[str],
                  rows: int) -> dict[str, np.ndarray]:  # fmt: skip
    """The first `rows` transformed eval rows (one pass, no repeats), the network's inputs only."""
    files = tf.data.Dataset.list_files(eval_files, shuffle=False)
    records = tf.data.TFRecordDataset(files, compression_type="GZIP").take(rows).batch(rows)
    parsed = tf.io.parse_example(next(iter(records)), {k: transformed_spec[k] for k in input_names})
    return {k: v.numpy() for k, v in parsed.items()}


def export(model, spec: FeatureSpec, saved_model_dir: str, out_dir: str, eval_inputs: dict[str, np.ndarray],
           output: str, batch_rows: int = 256) -> dict:  # fmt: skip
    """Writes the four TFLite files to `out_dir` and returns their comparison with the TF model:
    size, median latency on 1 and `batch_rows` rows, and the largest score difference on the eval rows
    `eval_inputs` (transformed, as `eval_features` reads them)."""
    tf.io.gfile.makedirs(out_dir)
    seconds, contents, failed, fallbacks = {}, {}, {}, {}
    raw = None
    for kind, file in FILES.items():
        start = time.perf_counter()
        quantize = kind.endswith("quantized")
        if kind.startswith("raw"):
            try:
                raw = raw or raw_input_converter(saved_model_dir)
                contents[kind], mlir_error = convert_raw_input(raw, quantize)
            except Exception as e:  # some Transform graphs do not convert; the network files still serve devices
                failed[kind] = f"{type(e).__name__}: {conversion_error(str(e))}"
                continue
            if mlir_error:
                fallbacks[kind] = f"the older quantizer (the MLIR one failed: {mlir_error})"
        else:
            contents[kind] = convert_network(model, output, quantize)
        seconds[kind] = round(time.perf_counter() - start, 2)
        with tf.io.gfile.GFile(os.path.join(out_dir, file), "wb") as f:
            f.write(contents[kind])
    inputs = eval_inputs
    one = {k: v[:1] for k, v in inputs.items()}
    batch = {k: v[:batch_rows] for k, v in inputs.items()}
    reference = model(inputs, training=False).numpy().reshape(len(inputs[model.input_names[0]]), -1)
    formats = {"saved_model": {
        "bytes": directory_bytes(saved_model_dir, "assets.extra"),
        "latency_ms_1_row": latency_ms(model, one), "latency_ms_batch": latency_ms(model, batch),
        "max_abs_diff": 0.0,
    }}  # fmt: skip
    for kind in ("float", "quantized"):
        run = runner(contents[kind])
        formats[f"tflite_{kind}"] = {
            "bytes": len(contents[kind]),
            "latency_ms_1_row": median_ms(lambda run=run: scores(run, one)),
            "latency_ms_batch": median_ms(lambda run=run: scores(run, batch)),
            "max_abs_diff": float(np.max(np.abs(scores(run, inputs) - reference))),
        }
    for kind in ("raw_float", "raw_quantized"):
        formats[f"tflite_{kind}"] = {"bytes": len(contents[kind])} if kind in contents else {"error": failed[kind]}
        if kind in fallbacks:
            formats[f"tflite_{kind}"]["quantizer"] = fallbacks[kind]
    return {
        "quantization": QUANTIZATION, "eval_rows": len(reference), "batch_rows": min(batch_rows, len(reference)),
        "files": FILES, "conversion_seconds": seconds, "formats": formats,
        "flex_ops": flex_ops(contents["raw_float"]) if "raw_float" in contents else None,
        "network_flex_ops": flex_ops(contents["float"]),
        "device_preprocessing": device_preprocessing(spec, list(model.input_names)),
    }  # fmt: skip


def write_result(result: dict, run_dir: str) -> None:
    tf.io.gfile.makedirs(run_dir)
    with tf.io.gfile.GFile(os.path.join(run_dir, RESULT_FILE), "w") as f:
        json.dump(result, f, indent=2)


def device_preprocessing(spec: FeatureSpec, input_names: list[str]) -> list[dict]:
    """What a device feeding `features*.tflite` computes, per network input, from the raw columns.
    Constants (means, variances, vocabularies, bucket boundaries) are the Transform graph's."""
    how = {}
    for n in spec.numeric:
        how[n] = (n, "(x - mean) / stddev, clipped at ±5; the mean where missing; float32")
        how[names.missing_name(n)] = (n, "1.0 where missing, else 0.0")
    for n in spec.categorical:
        how[n] = (n, f"index in vocabulary '{n}' (top {spec.top_k}); else {spec.oov_buckets} OOV bucket(s) past "
                     "its end by tf.strings.to_hash_bucket_fast (FarmHash64); missing is '__missing__'")  # fmt: skip
    for n, count in spec.hashed.items():
        how[n] = (n, f"tf.strings.to_hash_bucket_fast (FarmHash64) into {count}; missing is '__missing__'")
    if spec.timestamp:
        how[names.hour_name(spec.timestamp)] = (spec.timestamp, "(seconds // 3600) mod 24, UTC")
        how[names.weekday_name(spec.timestamp)] = (spec.timestamp, "(seconds // 86400 + 3) mod 7, Monday 0")
    for n, count in spec.buckets.items():
        how[names.bucket_name(n)] = (n, f"quantile bucket of {count} (Transform's boundaries); missing is {count}")
    for key, count in spec.crosses.items():
        a, b = names.cross_members(key)
        how[names.cross_name(key)] = (key, f"hash of '<{a} id>x<{b} id>' into {count} (FarmHash64)")
    return [{"input": n, "from": how.get(n, (n, "?"))[0], "how": how.get(n, (n, "as Transform outputs it"))[1]}
            for n in input_names]  # fmt: skip
