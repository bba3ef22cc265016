"""Each side's pushed model scored on the trips that every side held out (make bench-reference's AUC).

TFX's example splits its rows by hash (CsvExampleGen's default output config: a row's serialized tf.Example,
SHA-256, two buckets of three to train, one to eval); this project's chicago_taxi config splits by time (the
newest 20 % to eval). A row in both eval splits is unseen by every model compared: each model is scored on
those rows through its `serving_default`, with tf.Examples built from the raw cells with the types its own
schema gives (SchemaGen's output, as tf.Transform reads it).
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd

EXAMPLE_MISSING = frozenset({""})  # TFX's CSV decoding: an empty cell is a missing value, nothing else
EVAL_SPLIT = "Split-eval"  # where ExampleGen writes its eval split in its Examples artifact
BATCH = 4096


def source_frame() -> pd.DataFrame:
    """The 15,002 trips as text, row for row what both sides read: the example's `simple/data.csv` is the
    `big_tipper_label/data.csv` this project's table is written from, without its `big_tipper` column."""
    from importlib import resources

    from datagen.public_tables import chicago_taxi

    frame = chicago_taxi()
    simple_csv = resources.files("tfx") / "examples" / "chicago_taxi_pipeline" / "data" / "simple" / "data.csv"
    simple = pd.read_csv(simple_csv, dtype=str, keep_default_na=False)
    if list(frame.columns[: len(simple.columns)]) != list(simple.columns) or not frame[simple.columns].equals(simple):
        raise RuntimeError("TFX's simple/data.csv and big_tipper_label/data.csv no longer hold the same trips")
    return frame


def feature_types(schema_uri: str) -> dict:
    """Each feature's dtype as the schema in SchemaGen's output directory `schema_uri` gives it."""
    import tensorflow_data_validation as tfdv
    from tensorflow_transform.tf_metadata import schema_utils

    schema = tfdv.load_schema_text(os.path.join(schema_uri, "schema.pbtxt"))
    return {name: spec.dtype for name, spec in schema_utils.schema_as_feature_spec(schema).feature_spec.items()}


def typed_cells(row: Mapping[str, str], types: Mapping, missing: frozenset[str]) -> dict:
    """The row's cells that the schema names and that are not missing, as the schema types them (a float as
    the float32 a tf.Example holds)."""
    values = {}
    for name, dtype in types.items():
        cell = row.get(name)
        if cell is None or cell.strip() in missing:
            continue
        try:
            values[name] = float(np.float32(cell)) if dtype.is_floating else int(cell) if dtype.is_integer else cell
        except ValueError:
            raise ValueError(f"column '{name}': {cell!r} is not the {dtype.name} the schema says") from None
    return values


def row_key(values: Mapping) -> tuple:
    return tuple(sorted(values.items()))


def eval_records(examples_uri: str) -> list[bytes]:
    """The serialized tf.Examples of an Examples artifact's eval split."""
    import tensorflow as tf

    files = sorted(glob.glob(os.path.join(examples_uri, EVAL_SPLIT, "*")))
    if not files:
        raise FileNotFoundError(f"no eval split under {examples_uri}")
    return [r.numpy() for r in tf.data.TFRecordDataset(files, compression_type="GZIP")]


def example_keys(records: Iterable[bytes]) -> set[tuple]:
    """Each distinct record's content (its present features' values) as `row_key` gives it."""
    from components.file_example_gen import example_to_row

    return {row_key(example_to_row(r)) for r in set(records)}


def in_hash_eval(frame: pd.DataFrame, types: Mapping, keys: set[tuple]) -> np.ndarray:
    """Which rows the example's ExampleGen put in its eval split. Its split hashes a row's content, so a
    row's content says where every copy of it went: a row is in eval when its cells, typed by the example's
    schema, are those of an eval record."""
    return np.array([row_key(typed_cells(row, types, EXAMPLE_MISSING)) in keys for row in _rows(frame)], bool)


def in_time_eval(frame: pd.DataFrame, column: str, cutoff: float) -> np.ndarray:
    """Which rows this project's time split put in eval: every row at or after the cut-off (its ExampleGen's
    `SplitByTime`: train before the cut-off, eval from it on; the cut-off is the earliest eval timestamp)."""
    return (frame[column].astype(float) >= cutoff).to_numpy()


def common_eval_rows(frame: pd.DataFrame, example_types: Mapping, example_eval: set[tuple], timestamp: str,
                     cutoff: float) -> pd.DataFrame:  # fmt: skip
    return frame[in_hash_eval(frame, example_types, example_eval) & in_time_eval(frame, timestamp, cutoff)]


def example_label(frame: pd.DataFrame) -> np.ndarray:
    """The example's label as its `preprocessing_fn` computes it: tips over 20 % of the fare, in float32;
    0 with no fare, a missing tip as 0."""
    fare = pd.to_numeric(frame["fare"].replace("", np.nan)).to_numpy(np.float32)
    tips = pd.to_numeric(frame["tips"].replace("", np.nan)).fillna(0).to_numpy(np.float32)
    return np.where(np.isnan(fare), 0, tips > fare * np.float32(0.2)).astype(int)


def a_fifth_of_the_fare(frame: pd.DataFrame) -> np.ndarray:
    """Trips whose tip is exactly 20 % of a nonzero fare, in decimal."""
    from decimal import Decimal

    fifth = Decimal("0.2")
    return np.array([bool(f) and bool(t) and Decimal(f) > 0 and Decimal(t) == Decimal(f) * fifth
                     for t, f in zip(frame["tips"], frame["fare"], strict=True)], bool)  # fmt: skip


def serialized(frame: pd.DataFrame, types: Mapping, missing: frozenset[str]) -> list[bytes]:
    import tensorflow as tf

    def feature(value):
        if isinstance(value, float):
            return tf.train.Feature(float_list=tf.train.FloatList(value=[value]))
        if isinstance(value, int):
            return tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value.encode()]))

    return [tf.train.Example(features=tf.train.Features(feature={n: feature(v) for n, v in
                                                                  typed_cells(row, types, missing).items()}))
            .SerializeToString() for row in _rows(frame)]  # fmt: skip


def scores(model_dir: str, records: list[bytes]) -> np.ndarray:
    """The positive class's score for each record, from the model's `serving_default` (one output)."""
    import tensorflow as tf

    serve = tf.saved_model.load(model_dir).signatures["serving_default"]
    out = []
    for start in range(0, len(records), BATCH):
        outputs = serve(examples=tf.constant(records[start : start + BATCH]))
        if len(outputs) != 1:
            raise ValueError(f"{model_dir}: serving_default has outputs {sorted(outputs)}, not one")
        (value,) = outputs.values()
        value = value.numpy().reshape(value.shape[0], -1)
        if value.shape[1] not in (1, 2):
            raise ValueError(f"{model_dir}: a binary model's output has 1 or 2 columns, not {value.shape[1]}")
        out.append(value[:, -1])
    return np.concatenate(out) if out else np.array([])


def _rows(frame: pd.DataFrame):
    columns = list(frame.columns)
    for values in frame.itertuples(index=False, name=None):
        yield dict(zip(columns, values, strict=True))


def quality(runs: Mapping[str, dict], repeat: int, label: str, timestamp: str, project_missing: frozenset[str]) -> dict:
    """The rows in every side's eval split, and each side's AUC on them. `runs`: each side's `artifacts`
    (`examples`, `schema`: ExampleGen's and SchemaGen's output directories; `pushed_model`), `project` being
    this project's (time split, its `label` and `timestamp` columns) and the others TFX's example's."""
    from sklearn.metrics import roc_auc_score

    from components.file_example_gen import timestamp_of
    from models.features import safe_name

    frame = source_frame()
    types = {side: feature_types(run["schema"]) for side, run in runs.items()}
    masks = []
    for side, run in runs.items():
        records = eval_records(run["examples"])
        if side == "project":
            mask = in_time_eval(frame, timestamp, min(timestamp_of(r, safe_name(timestamp)) for r in set(records)))
        else:
            mask = in_hash_eval(frame, types[side], example_keys(records))
        if mask.sum() * repeat != len(records):  # every copy of a row goes where the row goes, on both sides
            raise RuntimeError(f"{side}: {mask.sum()} trips x {repeat} recomputed in eval, {len(records)} eval records")
        masks.append(mask)
    rows = frame[np.logical_and.reduce(masks)]
    # the two labels differ only on a tip of exactly 20 % of the fare, which the example's float32 calls above
    # it: those trips are left out, so that every model is scored against the label it was trained for
    agree = example_label(rows) == rows[label].astype(int).to_numpy()
    if (~agree & ~a_fifth_of_the_fare(rows)).any():
        raise RuntimeError(f"the example's label and '{label}' differ on {(~agree).sum()} of {len(rows)} eval rows, "
                           "not only where the tip is exactly a fifth of the fare")  # fmt: skip
    rows = rows[agree]
    labels = rows[label].astype(int).to_numpy()
    features = rows.drop(columns=[label])
    auc = {}
    for side, run in runs.items():
        if not run.get("pushed_model"):
            auc[side] = None  # nothing pushed: no model to score
            continue
        if side == "project":
            records = serialized(features.rename(columns=safe_name), types[side], project_missing)
        else:
            records = serialized(features, types[side], EXAMPLE_MISSING)
        auc[side] = round(float(roc_auc_score(labels, scores(run["pushed_model"], records))), 4)
    return {"eval_rows": len(rows), "eval_rows_repeated": len(rows) * repeat, "positives": int(labels.sum()),
            "labels_differ": int((~agree).sum()), "auc": auc}  # fmt: skip
