"""Uniform samples and counts of GZIP TFRecord rows, each in one pass over the files.

A sample is drawn bottom-k: every record gets a seeded random key and the `rows` smallest keys stay. That is a
uniform sample without replacement whatever the count, so it needs no counting pass first, and it holds at most
`rows` records at any time. The drawn records come back in file order.
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import tensorflow as tf

READ_BATCH = 8192  # records per step: one step per record costs about ten times as much in tf.data


def _records(file_patterns: list[str]) -> tf.data.Dataset:
    files = sorted({f for pattern in file_patterns for f in tf.io.gfile.glob(pattern)})  # gs:// on Vertex
    return tf.data.TFRecordDataset(files, compression_type="GZIP")


def count_records(file_patterns: list[str]) -> int:
    """Records in GZIP TFRecord files, without parsing them."""
    batches = _records(file_patterns).batch(READ_BATCH)
    return int(batches.reduce(np.int64(0), lambda n, b: n + tf.shape(b, out_type=tf.int64)[0]))


def uniform_records(file_patterns: list[str], rows: int, seed: int = 0) -> tuple[list[bytes], int]:
    """Up to `rows` serialized records drawn uniformly (seeded) from every record of the files, in file order,
    and the files' record count."""
    random = np.random.default_rng(seed)
    keys, kept, index = np.empty(0), np.empty(0, object), np.empty(0, np.int64)
    total = 0
    for batch in _records(file_patterns).batch(READ_BATCH).prefetch(2).as_numpy_iterator():
        keys = np.concatenate([keys, random.random(len(batch))])
        kept = np.concatenate([kept, batch])
        index = np.concatenate([index, np.arange(total, total + len(batch))])
        total += len(batch)
        if len(keys) > rows:
            smallest = np.argpartition(keys, rows - 1)[:rows] if rows > 0 else np.empty(0, np.int64)
            keys, kept, index = keys[smallest], kept[smallest], index[smallest]
    return list(kept[np.argsort(index)]), total


def write_records(records: list[bytes], directory: str, name: str = "sample.gz") -> str:
    """`records` as one GZIP TFRecord file in `directory` (made if missing); a file pattern of it."""
    tf.io.gfile.makedirs(directory)
    path = os.path.join(directory, name)
    with tf.io.TFRecordWriter(path, options="GZIP") as writer:
        for record in records:
            writer.write(record)
    return path


def sampled_files(file_patterns: list[str], rows: int, directory: str, seed: int = 0) -> tuple[list[str], int, int]:
    """The files themselves when they hold at most `rows` records, else a uniform sample of `rows` of them
    written to `directory`: (file patterns to read, rows in them, rows in the originals)."""
    records, total = uniform_records(file_patterns, rows, seed)
    if total <= rows:
        return list(file_patterns), total, total
    return [write_records(records, directory)], len(records), total


def sampled_inputs(inputs, train_rows: int, eval_rows: int, directory: str, seed: int = 0):
    """A candidate's `TrainingInputs` on uniform samples of at most `train_rows` train and `eval_rows` eval rows
    (written to `directory`, which must outlive the training), and what was sampled."""
    train, fitted, of_train = sampled_files(inputs.train_files, train_rows, os.path.join(directory, "train"), seed)
    evaluation, validated, of_eval = sampled_files(inputs.eval_files, eval_rows, os.path.join(directory, "eval"), seed)
    sample = {"train_rows": of_train, "fitted_rows": fitted, "eval_rows": of_eval, "validated_rows": validated}
    return dataclasses.replace(inputs, train_files=train, eval_files=evaluation), sample
