"""Features of a table nobody has described yet: every column but the label, the key, the
personal columns, the timestamp and `features.exclude`, typed from a sample of the data.

- numbers with more than `MAX_CATEGORY_NUMBERS` distinct values -> numeric (scaled, with a
  missing indicator); integers with fewer -> categorical (codes such as an area number);
- text with at most `MAX_VOCABULARY` distinct values -> categorical (vocabulary + OOV);
  more -> hashed (an id such as a taxi or a customer).

Columns that cannot be features are left out with a reason (shown in the run report's screening
table): always empty, one value only, or an identifier (whole numbers or text, different in
every row). Column names are made TensorFlow-safe (`safe_name`) here and at ingestion alike;
a text label (or class numbers other than 0..n-1) gets its `label_classes` from the data.

Columns listed under `features:` keep the type written there; inference fills in the rest.
Text columns that hold e-mail addresses or phone numbers are detected as personal data
and dropped at ingestion, like `data.personal_columns`.
Runs where the data is readable (the local runner, before the pipeline is built).

    python -m tables.feature_inference --config my-table.yaml   (make features): prints the result
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import sys

import pandas as pd
import yaml

from models.features import MISSING_TOKENS
from settings.config import Config

PERSONAL_PATTERNS = {  # what a personal column looks like, whatever its name
    "e-mail addresses": r"^[\w.+-]+@[\w-]+\.[\w.-]+$",
    "phone numbers": r"^(?!\d{4}[-/]\d{1,2}[-/]\d{1,2}\b)\+?[\d ()-]{7,}$",  # not a date such as 2007-11-11
}
MAX_CATEGORY_NUMBERS = 20
MAX_VOCABULARY = 1000
HASH_BUCKETS = 256
SAMPLE_ROWS = 20000
MIN_ROWS_FOR_IDENTIFIER = 20
BUCKET_MIN_ROWS = 1000  # from this many rows each inferred numeric feature also gets quantile-bucket ids
NUMERIC_BUCKETS = 10


def read_sample(config: Config, rows: int = SAMPLE_ROWS) -> pd.DataFrame:
    """Up to `rows` rows of the configured files (the newest span when data comes in spans)."""
    from components.file_example_gen import FILE_PATTERNS

    fmt, base = config.data.format, config.data.path
    if fmt == "bigquery":
        raise ValueError("features.infer reads files; for BigQuery list the features in the config")
    if config.data.spans:
        spans = sorted(glob.glob(os.path.join(base, "span-*")), key=lambda p: int(p.rsplit("-", 1)[-1]))
        base = spans[-1] if spans else base
    files = sorted(glob.glob(os.path.join(base, FILE_PATTERNS[fmt])))
    if not files:
        raise FileNotFoundError(f"features.infer: no {fmt} file under {base}")
    frames, total = [], 0
    for path in files:
        frame = _read(path, fmt, config.data.missing_values)
        frames.append(frame)
        total += len(frame)
        if total >= rows:
            break
    return pd.concat(frames, ignore_index=True).head(rows)


def _read(path: str, fmt: str, missing: tuple[str, ...] = MISSING_TOKENS) -> pd.DataFrame:
    from models.features import safe_name

    return _read_raw(path, fmt, missing).rename(columns=safe_name)


def _read_raw(path: str, fmt: str, missing: tuple[str, ...]) -> pd.DataFrame:
    if fmt == "csv":  # the same cells are missing as at ingestion
        return pd.read_csv(path, keep_default_na=False, na_values=list(missing), low_memory=False)
    if fmt == "json":
        return pd.read_json(path, lines=True)
    if fmt == "parquet":
        return pd.read_parquet(path)
    import tensorflow as tf

    from components.file_example_gen import example_to_row

    return pd.DataFrame([example_to_row(tf.train.Example.FromString(r.numpy())) for r in tf.data.TFRecordDataset(path)])


def detect_personal(sample: pd.DataFrame, share: float = 0.5) -> dict[str, str]:
    """Text columns most of whose values look like e-mail addresses or phone numbers -> what they hold."""
    found = {}
    for column in sample.columns:
        values = sample[column].dropna()
        if values.empty or pd.api.types.is_numeric_dtype(values):
            continue
        text = values.astype(str).str.strip()
        for what, pattern in PERSONAL_PATTERNS.items():
            if text.str.match(pattern).mean() >= share:
                found[column] = what
                break
    return found


def unusable(values: pd.Series) -> tuple[str, str] | None:
    """(finding, reason) for a column that cannot be a feature, else None."""
    present = values.dropna()
    if present.empty:
        return "empty", "no row has a value"
    distinct = present.nunique()
    if distinct == 1:
        return "constant", f"every row with a value holds {str(present.iloc[0])[:40]!r}"
    whole = pd.api.types.is_integer_dtype(present) or (
        pd.api.types.is_numeric_dtype(present) and bool((present == present.round()).all())
    )
    text = not pd.api.types.is_numeric_dtype(present) and not pd.api.types.is_bool_dtype(present)
    if (whole or text) and len(present) >= MIN_ROWS_FOR_IDENTIFIER and distinct >= 0.95 * len(present):
        kind = "whole numbers" if whole else "text"
        return "identifier", f"{kind} different in {100 * distinct / len(present):.0f} % of rows: an identifier"
    return None


def numbers_in_text(values: pd.Series) -> float:
    """Share of a text column's values that read as numbers."""
    present = values.dropna().astype(str)
    return float(pd.to_numeric(present, errors="coerce").notna().mean()) if len(present) else 0.0


def infer(sample: pd.DataFrame, config: Config) -> tuple[dict[str, object], list[dict]]:
    """`features` lists for every column the config leaves open, and the columns left out, with why."""
    f = config.features
    listed = set(f.inputs())
    skip = {config.label, config.data.key_column, f.timestamp, *config.data.personal_columns, *f.exclude}
    numeric, categorical, hashed = list(f.numeric), list(f.categorical), dict(f.hashed)
    left_out = []
    for column in sample.columns:
        if column in skip or column in listed:
            continue
        values = sample[column].dropna()
        problem = unusable(sample[column])
        if problem:
            left_out.append({"column": column, "finding": problem[0], "reason": problem[1]})
            continue
        distinct = values.nunique()
        if pd.api.types.is_bool_dtype(values):
            categorical.append(column)
        elif pd.api.types.is_numeric_dtype(values):
            whole = pd.api.types.is_integer_dtype(values) or bool((values == values.round()).all())
            (categorical if whole and distinct <= MAX_CATEGORY_NUMBERS else numeric).append(column)
        elif distinct <= MAX_VOCABULARY:
            categorical.append(column)
            share = numbers_in_text(values)
            if 0.5 <= share < 1.0:  # mixed: named, and kept as categories rather than guessed at
                print(json.dumps({"event": "mixed_column", "column": column, "numbers": round(share, 3),
                                  "treated_as": "categorical"}))  # fmt: skip
        else:
            hashed[column] = HASH_BUCKETS
    buckets = dict(f.buckets)
    if len(sample) >= BUCKET_MIN_ROWS:  # enough rows to learn a shape per bucket: a z-score alone is one slope
        buckets.update({c: NUMERIC_BUCKETS for c in numeric if c not in buckets})
    return {"numeric": tuple(numeric), "categorical": tuple(categorical), "hashed": hashed,
            "buckets": buckets}, left_out  # fmt: skip


def label_classes(labels: pd.Series, problem_type: str) -> tuple[str, ...]:
    """The classes of a classification label that is not already 0..n-1 (sorted as text); () when it is."""
    if problem_type == "regression":
        return ()
    present = labels.dropna()
    numbers = pd.api.types.is_numeric_dtype(present) and not pd.api.types.is_bool_dtype(present)
    if numbers and bool((present == present.round()).all()):
        ids = set(present.astype(int))
        if ids <= set(range(len(ids) if problem_type != "binary_classification" else 2)):
            return ()
        present = present.astype(int)
    return tuple(sorted(present.astype(str).unique()))


def with_safe_names(config: Config) -> Config:
    """Every column the config names, as ingestion names it (`safe_name`)."""
    from models.features import safe_name

    def safe(columns):
        return tuple(safe_name(c) for c in columns)

    data = config.data.replace(personal_columns=safe(config.data.personal_columns),
                               hash_columns=safe(config.data.hash_columns),
                               key_column=config.data.key_column and safe_name(config.data.key_column))  # fmt: skip
    f = config.features
    features = f.replace(
        numeric=safe(f.numeric), categorical=safe(f.categorical), exclude=safe(f.exclude),
        hashed={safe_name(k): v for k, v in f.hashed.items()}, timestamp=f.timestamp and safe_name(f.timestamp),
    )  # fmt: skip
    return config.replace(label=safe_name(config.label), data=data, features=features)


def with_inferred_features(config: Config) -> Config:
    """The config with its features filled in from the data (unchanged unless `features.infer`)."""
    if not config.features.infer:
        return config
    config = with_safe_names(config)
    sample = read_sample(config)
    if config.label not in sample.columns:
        raise ValueError(f"{config.source}: the label '{config.label}' is not a column of {config.data.path} "
                         f"(columns: {sorted(sample.columns)[:12]})")  # fmt: skip
    named = [c for c in (config.label, config.features.timestamp, config.data.key_column) if c]
    personal = detect_personal(sample.drop(columns=named, errors="ignore"))
    new = sorted(set(personal) - set(config.data.personal_columns) - set(config.data.hash_columns))
    for column in new:  # dropped at ingestion like the columns the config names
        print(json.dumps({"event": "personal_column_detected", "column": column, "holds": personal[column]}))
    data = config.data.replace(personal_columns=(*config.data.personal_columns, *new))
    config = config.replace(data=data)
    if not config.label_classes:
        classes = label_classes(sample[config.label], config.problem_type)
        if classes and config.problem_type == "binary_classification" and len(classes) != 2:
            raise ValueError(f"{config.source}: binary_classification needs a label with 2 values; "
                             f"'{config.label}' has {len(classes)}: {list(classes)[:8]}")  # fmt: skip
        if classes or (config.problem_type == "multiclass_classification" and config.num_classes is None):
            classes = classes or tuple(str(c) for c in sorted(sample[config.label].dropna().astype(int).unique()))
            config = config.replace(label_classes=classes)
            if config.problem_type == "multiclass_classification":
                config = config.replace(num_classes=len(classes))
            print(json.dumps({"event": "label_classes", "label": config.label, "classes": list(classes)}))
    found, left_out = infer(sample, config)
    for item in left_out:
        print(json.dumps({"event": "column_left_out", **item}))
    features = config.features.replace(infer=False, **found)
    if not features.inputs():
        raise ValueError(f"{config.source}: features.infer found no feature column in {config.data.path}")
    return config.replace(features=features, left_out=tuple(left_out))


def main(argv: list[str] | None = None) -> int:
    from settings.config import load_config
    from tables.sample_data import prepare_data

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True)
    args = parser.parse_args(argv)
    config = load_config(args.config)
    prepare_data(config)
    found = with_inferred_features(config.replace(features=config.features.replace(infer=True)))  # fmt: skip
    f = found.features
    written = {"features": {"numeric": list(f.numeric), "categorical": list(f.categorical), "hashed": dict(f.hashed),
                            "timestamp": f.timestamp, "buckets": dict(f.buckets)},
               "data": {"personal_columns": list(found.data.personal_columns)}}  # fmt: skip
    if found.label_classes:
        written["label_classes"] = list(found.label_classes)
    print(yaml.safe_dump(written, sort_keys=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
