"""A smaller model distilled from the candidate, compared with it on quality, size and latency.

The student is the same model code with a narrower network and thinner embeddings. It
learns from the candidate's (the teacher's) probabilities mixed with the true labels,
`alpha * teacher + (1 - alpha) * label`, on the same transformed examples. The
comparison goes to `simplification.json` in the run's output; the student is exported
like any model, so it can be evaluated, pushed or served in the candidate's place.
"""

from __future__ import annotations

import json
import os

import tensorflow as tf
import tensorflow_transform as tft
import tf_keras as keras

from models.measure import directory_bytes, latency_ms
from models.model import HParams, build_model
from models.trainer import (
    CONTRACT_DIR,
    METADATA_FILE,
    WEIGHTS_FILE,
    export_serving_model,
    read_failure,
    write_failure,
    write_serving_contract,
)
from models.training import (
    cardinalities,
    deterministic,
    feature_spec,
    fit,
    make_datasets,
    plan_for,
    validation_split,
)

RESULT_FILE = "simplification.json"


def run_fn(fn_args) -> None:
    teacher_failed = read_failure(fn_args.base_model)
    if teacher_failed:  # nothing to distil: say so where the model would be
        write_failure(fn_args.serving_model_dir, "distilled", f"the teacher (network) failed: {teacher_failed}")
        return
    config = fn_args.custom_config
    deterministic(int(config.get("seed", 0)))
    student_config = config["student"]
    transform_output = tft.TFTransformOutput(fn_args.transform_output)
    spec = feature_spec(config, transform_output)
    sizes = cardinalities(spec, transform_output)
    teacher = load_teacher(fn_args.base_model, spec.dense_outputs(), sizes)
    keras.utils.set_random_seed(int(config.get("seed", 0)))
    student = build_model(spec.dense_outputs(), sizes, HParams.from_dict(student_config))
    plan = plan_for(fn_args)
    with validation_split(fn_args, plan) as eval_files:  # past VALIDATION_ROWS eval rows: a uniform sample
        train, evaluation = make_datasets(fn_args, transform_output, spec.label, plan.batch_size, eval_files)
        alpha = float(student_config.get("alpha", 0.7))
        soft = train.map(lambda features, label: (features, soft_labels(teacher, features, label, alpha)))
        fit(
            student,
            soft,
            evaluation,
            plan.train_steps,
            plan.eval_steps,
            callbacks=[],
            epochs=plan.epochs,
            patience=plan.patience,
        )
        export_serving_model(student, transform_output, spec, fn_args.serving_model_dir)
        write_serving_contract(fn_args.serving_model_dir, spec, fn_args.schema_path, config.get("decision_threshold"))
        result = compare(teacher, student, evaluation, plan.eval_steps, fn_args.base_model, fn_args.serving_model_dir)
    result["alpha"] = alpha
    tf.io.gfile.makedirs(fn_args.model_run_dir)
    with tf.io.gfile.GFile(os.path.join(fn_args.model_run_dir, RESULT_FILE), "w") as f:
        json.dump(result, f, indent=2)
    print(json.dumps({"event": "distilled", **result}))


def load_teacher(model_dir: str, dense: tuple[str, ...], sizes: dict[str, int]) -> keras.Model:
    """The candidate as a Keras model: its architecture from its metadata, its trained weights."""
    with tf.io.gfile.GFile(os.path.join(model_dir, CONTRACT_DIR, METADATA_FILE)) as f:
        hparams = HParams.from_dict(json.load(f)["hparams"])
    teacher = build_model(dense, sizes, hparams)
    teacher.load_weights(os.path.join(model_dir, CONTRACT_DIR, WEIGHTS_FILE))
    return teacher


def soft_labels(teacher: keras.Model, features: dict, label: tf.Tensor, alpha: float) -> tf.Tensor:
    inputs = {name: features[name] for name in teacher.input_names}
    predicted = tf.reshape(teacher(inputs, training=False), [-1])
    return alpha * predicted + (1.0 - alpha) * tf.cast(tf.reshape(label, [-1]), tf.float32)


def compare(teacher: keras.Model, student: keras.Model, evaluation: tf.data.Dataset, eval_steps: int,
            teacher_dir: str, student_dir: str) -> dict:  # fmt: skip
    """Eval AUC, parameter count, SavedModel size and network latency of both models."""
    batch = next(iter(evaluation))[0]
    found = {}
    for name, model, path in (("full", teacher, teacher_dir), ("distilled", student, student_dir)):
        metrics = model.evaluate(evaluation, steps=eval_steps, return_dict=True, verbose=0)
        found[name] = {
            "eval_auc": round(float(metrics["auc"]), 4),
            "parameters": int(model.count_params()),
            "saved_model_bytes": directory_bytes(path, CONTRACT_DIR),
            "latency_ms_1_row": latency_ms(model, {k: v[:1] for k, v in batch.items() if k in model.input_names}),
            "latency_ms_batch": latency_ms(model, {k: v for k, v in batch.items() if k in model.input_names}),
            "hidden_units": [model.get_layer(n).units for n in _hidden(model)],
        }
    found["batch_rows"] = int(next(iter(batch.values())).shape[0])
    found["auc_change"] = round(found["distilled"]["eval_auc"] - found["full"]["eval_auc"], 4)
    found["parameter_ratio"] = round(found["distilled"]["parameters"] / found["full"]["parameters"], 3)
    return found


def _hidden(model: keras.Model) -> list[str]:
    return [layer.name for layer in model.layers if layer.name.startswith("hidden_")]
