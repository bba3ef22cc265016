"""Training steps shared by the Trainer's `run_fn` and the Tuner's trials."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass

import tensorflow as tf
import tensorflow_transform as tft
import tf_keras as keras

from models import sampling
from models.features import HOURS, WEEKDAYS, FeatureSpec, bucket_name, cross_name, hour_name, weekday_name
from models.model import OBJECTIVE


def deterministic(seed: int) -> None:
    """The same data, config and seed give the same model: seeded Python, NumPy and TensorFlow, and TensorFlow's
    deterministic kernels (on this CPU they cost little; multi-threaded reductions otherwise differ run to run)."""
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def make_datasets(fn_args, transform_output: tft.TFTransformOutput, label: str, batch_size: int,
                  eval_files: list[str] | None = None):  # fmt: skip
    """Repeating (train, eval) datasets of transformed examples from a TFX FnArgs (the eval split, or
    `eval_files`: `validation_split`'s); parsed batches are cached in memory when `custom_config["cache_input"]`
    is set."""
    spec = transform_output.transformed_feature_spec()
    cache = bool((fn_args.custom_config or {}).get("cache_input", False))
    train = tuned_input(fn_args.train_files, spec, label, batch_size, shuffle=True, cache=cache)
    evaluation = tuned_input(eval_files or fn_args.eval_files, spec, label, batch_size, shuffle=False, cache=cache)
    return train, evaluation


SHUFFLE_ROWS = 10_000


@dataclass(frozen=True)
class Plan:
    """How long and in what batches to train: what the config sets, the rest adapted to the row count."""

    batch_size: int
    train_steps: int
    epochs: int
    patience: int
    eval_steps: int
    train_rows: int = 0  # counted when the plan needed it (0: every setting was given)
    eval_rows: int = 0  # counted when the plan needed it
    validation_rows: int = 0  # each epoch validates on a uniform sample of this many eval rows (0: all of them)


STEP_BUDGET = 3000  # steps a small table trains for at most (early stopping usually ends it sooner)
MAX_STEPS = 20_000  # steps a large table trains for at most: a few epochs
LARGE_ROWS = 100_000  # from here the batch doubles with each doubling of the rows (up to MAX_BATCH)
MAX_BATCH = 2048
# Past LARGE_ROWS an epoch of early stopping is ROUND_ROWS training rows, not the whole split, validated on a uniform
# sample of VALIDATION_ROWS eval rows: a large table that stops gaining in its first pass stops then, not after
# `patience` more passes over every row.
ROUND_ROWS = 250_000
VALIDATION_ROWS = 50_000


def batch_size_for(train_rows: int) -> int:
    """About 1/20 of the rows (16-256, a power of two) up to LARGE_ROWS; beyond, twice the batch for twice the
    rows, so that a large table takes as many steps per epoch as a mid-sized one and each step sees more rows."""
    if train_rows <= LARGE_ROWS:
        return 2 ** round(math.log2(min(256, max(16, train_rows / 20))))
    return min(MAX_BATCH, 256 * 2 ** math.floor(math.log2(train_rows / LARGE_ROWS)))


def training_plan(train_rows: int, eval_rows: int, batch_size: int | None = None, train_steps: int | None = None,
                  epochs: int | None = None, patience: int | None = None, eval_steps: int | None = None) -> Plan:  # fmt: skip
    """Settings given win; the rest adapt to the rows. A batch of about 1/20 of the rows (16 to 256, a power of
    two; larger past LARGE_ROWS: `batch_size_for`), so a small table still takes many steps per epoch; real epochs
    (every row once) until STEP_BUDGET steps or 5 epochs, whichever is more, capped at MAX_STEPS; early stopping
    after a tenth of the epochs (3 to 10) without gain; the whole eval split every epoch. Past LARGE_ROWS, with
    the epochs and steps left to the plan, early stopping's epochs are rounds of ROUND_ROWS rows; with the eval
    steps left to it, every validation there reads a uniform sample of VALIDATION_ROWS eval rows
    (`validation_rows`: `validation_split` draws it)."""
    if not batch_size:
        batch_size = batch_size_for(train_rows)
    per_epoch = max(1, math.ceil(train_rows / batch_size))
    if not epochs and train_steps:
        epochs = max(1, train_steps // per_epoch)
    elif not epochs:
        epochs = min(max(5, math.ceil(STEP_BUDGET / per_epoch)), max(1, MAX_STEPS // per_epoch))
        if train_rows > LARGE_ROWS:  # the same passes, in rounds
            train_steps = epochs * per_epoch
            epochs *= math.ceil(train_rows / ROUND_ROWS)
    if not train_steps:
        train_steps = epochs * per_epoch
    if patience is None:
        patience = min(10, max(3, epochs // 10)) if epochs > 1 else 0
    large = train_rows > LARGE_ROWS and eval_rows > VALIDATION_ROWS
    validation_rows = VALIDATION_ROWS if large and not eval_steps else 0
    if not eval_steps:
        eval_steps = max(1, math.ceil((validation_rows or eval_rows) / batch_size))
    return Plan(batch_size, train_steps, epochs, patience, eval_steps, validation_rows=validation_rows)


def count_rows(file_patterns: list[str]) -> int:
    """Examples in GZIP TFRecord files (one pass over the records, no parsing)."""
    return sampling.count_records(file_patterns)


@contextlib.contextmanager
def validation_split(fn_args, plan: Plan) -> Iterator[list[str]]:
    """The eval files each epoch validates on: the eval split, or a uniform sample of `plan.validation_rows` of it
    (seeded by the config's seed), written to a directory that lasts as long as the block."""
    if not plan.validation_rows:
        yield list(fn_args.eval_files)
        return
    seed = int((fn_args.custom_config or {}).get("seed", 0))
    with tempfile.TemporaryDirectory(prefix="validation-") as scratch:
        files, rows, of = sampling.sampled_files(fn_args.eval_files, plan.validation_rows, scratch, seed)
        print(json.dumps({"event": "validation_sample", "rows": rows, "of": of}))
        yield files


def plan_for(fn_args) -> Plan:
    """The training plan of a Trainer or Tuner run: its custom_config's settings, its own step counts."""
    config = fn_args.custom_config or {}
    known = {"batch_size": config.get("batch_size"), "train_steps": fn_args.train_steps or None,
             "epochs": config.get("epochs"), "patience": config.get("early_stopping_patience"),
             "eval_steps": fn_args.eval_steps or None}  # fmt: skip
    need_rows = not (known["batch_size"] and known["train_steps"] and known["epochs"] and known["eval_steps"])
    train_rows = count_rows(fn_args.train_files) if need_rows else 0
    eval_rows = count_rows(fn_args.eval_files) if need_rows and not known["eval_steps"] else 0
    plan = dataclasses.replace(training_plan(train_rows, eval_rows, **known), train_rows=train_rows,
                               eval_rows=eval_rows)  # fmt: skip
    print(json.dumps({"event": "training_plan", "train_rows": train_rows, **plan.__dict__}))
    return plan


def tuned_input(file_patterns: list[str], feature_spec: dict, label: str, batch_size: int, shuffle: bool = True,
                cache: bool = False, seed: int = 0) -> tf.data.Dataset:  # fmt: skip
    """(features, label) batches from GZIP TFRecords of tf.Examples, repeating.

    Files are read in parallel, rows shuffled, then whole batches parsed at once on parallel
    threads (one `parse_example` per batch costs far less than one per row), and the next
    batches prefetched while the model trains. With `cache`, parsed batches are kept in
    memory after the first pass (for data that fits), and batches are reshuffled each pass.
    """
    files = tf.data.Dataset.list_files(file_patterns, shuffle=shuffle, seed=seed)
    rows = files.interleave(lambda f: tf.data.TFRecordDataset(f, compression_type="GZIP"),
                            cycle_length=tf.data.AUTOTUNE, num_parallel_calls=tf.data.AUTOTUNE)  # fmt: skip
    if shuffle and not cache:
        rows = rows.shuffle(SHUFFLE_ROWS, seed=seed, reshuffle_each_iteration=True)

    def parse(serialized):
        features = tf.io.parse_example(serialized, feature_spec)
        return features, features.pop(label)

    batches = rows.batch(batch_size).map(parse, num_parallel_calls=tf.data.AUTOTUNE)
    if cache:
        batches = batches.cache()
        if shuffle:
            batches = batches.shuffle(256, seed=seed, reshuffle_each_iteration=True)
    return batches.repeat().prefetch(tf.data.AUTOTUNE)


def feature_spec(config: dict, transform_output: tft.TFTransformOutput) -> FeatureSpec:
    """The configured features that reached Transform (a feature screen may have excluded some)."""
    return FeatureSpec.from_dict(config["features"]).restricted_to(transform_output.raw_feature_spec())


def cardinalities(spec: FeatureSpec, transform_output: tft.TFTransformOutput) -> dict[str, int]:
    """Number of ids of each integer feature Transform emits."""
    sizes = {n: transform_output.vocabulary_size_by_name(n) + spec.oov_buckets for n in spec.categorical}
    sizes.update(spec.hashed)
    if spec.timestamp:
        sizes[hour_name(spec.timestamp)] = HOURS
        sizes[weekday_name(spec.timestamp)] = WEEKDAYS
    sizes.update({bucket_name(n): count + 1 for n, count in spec.buckets.items()})  # + the missing id
    sizes.update({cross_name(k): count for k, count in spec.crosses.items()})
    return sizes


def fit(model: keras.Model, train: tf.data.Dataset, evaluation: tf.data.Dataset, train_steps: int,
        eval_steps: int, callbacks: list, epochs: int = 1, patience: int = 0,
        class_weight: dict[int, float] | None = None) -> keras.callbacks.History:  # fmt: skip
    """`train_steps` batches in `epochs` epochs, each validated on `eval_steps` eval batches.

    With `patience` > 0, training stops when the eval objective of the model's head (AUC,
    accuracy or loss) has not improved for that many epochs and the weights of the best
    epoch are kept (early stopping).
    """
    if patience:
        monitor, mode = OBJECTIVE[getattr(model, "head", "binary")]
        callbacks = [*callbacks, keras.callbacks.EarlyStopping(
            monitor=monitor, mode=mode, patience=patience, restore_best_weights=True)]  # fmt: skip
    return model.fit(
        train,
        steps_per_epoch=max(1, train_steps // epochs),
        validation_data=evaluation,
        validation_steps=eval_steps,
        epochs=epochs,
        callbacks=callbacks,
        class_weight=class_weight,
        verbose=2,
    )


def eval_objective(model: keras.Model, evaluation: tf.data.Dataset, eval_steps: int) -> float:
    """The eval value of what early stopping and the Tuner watch for the model's head."""
    monitor, _ = OBJECTIVE[getattr(model, "head", "binary")]
    return float(
        model.evaluate(evaluation, steps=eval_steps, return_dict=True, verbose=0)[monitor.removeprefix("val_")]
    )


STRATEGIES = ("default", "mirrored", "multi_worker")


def strategy_for(name: str, devices: list[str] | None = None) -> tf.distribute.Strategy:
    """The `tf.distribute` strategy named in config.

    - `default`: one device.
    - `mirrored`: synchronous data parallelism over the local GPUs, or over `devices`
      (with none, one replica per GPU, else the CPU).
    - `multi_worker`: synchronous over the machines of a Vertex AI job (it reads TF_CONFIG,
      which Vertex sets for a worker pool with more than one replica).
    """
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy(devices)
    if name == "multi_worker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise ValueError(f"distribution must be one of {STRATEGIES}, got {name!r}")


def label_prior(fn_args, head: str, num_classes: int = 2, batches: int = 50) -> list[float]:
    """From (up to) `batches` batches of the transformed train split: the label's mean (binary:
    the positive rate; regression: the mean), or each class's frequency (multiclass)."""
    spec = FeatureSpec.from_dict(fn_args.custom_config["features"])
    train, _ = make_datasets(fn_args, tft.TFTransformOutput(fn_args.transform_output), spec.label, 256)
    labels = tf.concat([tf.reshape(y, [-1]) for _, y in train.take(batches)], axis=0)
    if head == "multiclass":
        counts = tf.math.bincount(tf.cast(labels, tf.int32), minlength=num_classes, maxlength=num_classes)
        return [float(c) for c in (tf.cast(counts, tf.float32) / tf.cast(tf.size(labels), tf.float32)).numpy()]
    return [float(tf.reduce_mean(tf.cast(labels, tf.float32)))]


def label_scale(fn_args, batches: int = 50) -> tuple[float, float]:
    """The (mean, std) of the label over (up to) `batches` batches of the transformed train split."""
    spec = FeatureSpec.from_dict(fn_args.custom_config["features"])
    train, _ = make_datasets(fn_args, tft.TFTransformOutput(fn_args.transform_output), spec.label, 256)
    labels = tf.concat([tf.cast(tf.reshape(y, [-1]), tf.float64) for _, y in train.take(batches)], axis=0)
    return float(tf.reduce_mean(labels)), float(tf.math.reduce_std(labels))


def class_weights(prior: list[float]) -> dict[int, float]:
    """`balanced` weights: each class weighs 1 / (classes x its share), so every class counts
    as much in the loss as if the classes were equally frequent."""
    if len(prior) == 1:  # binary: the positive rate
        prior = [1.0 - prior[0], prior[0]]
    return {k: 1.0 / (len(prior) * max(p, 1e-6)) for k, p in enumerate(prior)}
