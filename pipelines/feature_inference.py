"""Features of a table nobody has described yet: every column but the label, the key, the
personal columns, the timestamp and `features.exclude`, typed from a sample of the data.

- numbers with more than `MAX_CATEGORY_NUMBERS` distinct values -> numeric (scaled, with a
  missing indicator); integers with fewer -> categorical (codes such as an area number);
- text with at most `MAX_VOCABULARY` distinct values -> categorical (vocabulary + OOV);
  more -> hashed (an id such as a taxi or a customer).

Columns listed under `features:` keep the type written there; inference fills in the rest.
Text columns that hold e-mail addresses or phone numbers are detected as personal data
and dropped at ingestion, like `data.personal_columns`.
Runs where the data is readable (the local runner, before the pipeline is built).

    python -m pipelines.feature_inference --config my-table.yaml   (make features): prints the result
"""

from __future__ import annotations

import argparse
import dataclasses
import glob
import json
import os
import sys

import pandas as pd
import yaml

from pipelines.config import Config

PERSONAL_PATTERNS = {  # what a personal column looks like, whatever its name
    "e-mail addresses": r"^[\w.+-]+@[\w-]+\.[\w.-]+$",
    "phone numbers": r"^\+?[\d ()-]{7,}$",
}
MAX_CATEGORY_NUMBERS = 20
MAX_VOCABULARY = 1000
HASH_BUCKETS = 256
SAMPLE_ROWS = 20000


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
        frame = _read(path, fmt)
        frames.append(frame)
        total += len(frame)
        if total >= rows:
            break
    return pd.concat(frames, ignore_index=True).head(rows)


def _read(path: str, fmt: str) -> pd.DataFrame:
    if fmt == "csv":
        return pd.read_csv(path)
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


def infer(sample: pd.DataFrame, config: Config) -> dict[str, object]:
    """`features` lists for every column the config leaves open."""
    f = config.features
    listed = set(f.inputs())
    skip = {config.label, config.data.key_column, f.timestamp, *config.data.personal_columns, *f.exclude}
    numeric, categorical, hashed = list(f.numeric), list(f.categorical), dict(f.hashed)
    for column in sample.columns:
        if column in skip or column in listed:
            continue
        values = sample[column].dropna()
        distinct = values.nunique()
        if pd.api.types.is_bool_dtype(values):
            categorical.append(column)
        elif pd.api.types.is_numeric_dtype(values):
            whole = pd.api.types.is_integer_dtype(values) or bool((values == values.round()).all())
            (categorical if whole and distinct <= MAX_CATEGORY_NUMBERS else numeric).append(column)
        elif distinct <= MAX_VOCABULARY:
            categorical.append(column)
        else:
            hashed[column] = HASH_BUCKETS
    return {"numeric": tuple(numeric), "categorical": tuple(categorical), "hashed": hashed}


def with_inferred_features(config: Config) -> Config:
    """The config with its features filled in from the data (unchanged unless `features.infer`)."""
    if not config.features.infer:
        return config
    sample = read_sample(config)
    personal = detect_personal(sample.drop(columns=[config.label], errors="ignore"))
    new = sorted(set(personal) - set(config.data.personal_columns) - set(config.data.hash_columns))
    for column in new:  # dropped at ingestion like the columns the config names
        print(json.dumps({"event": "personal_column_detected", "column": column, "holds": personal[column]}))
    data = dataclasses.replace(config.data, personal_columns=(*config.data.personal_columns, *new))
    config = config.replace(data=data)
    found = infer(sample, config)
    features = dataclasses.replace(config.features, infer=False, **found)
    if not features.inputs():
        raise ValueError(f"{config.source}: features.infer found no feature column in {config.data.path}")
    return config.replace(features=features)


def main(argv: list[str] | None = None) -> int:
    from pipelines.config import load_config
    from pipelines.local_runner import prepare_data

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True)
    args = parser.parse_args(argv)
    config = load_config(args.config)
    prepare_data(config)
    found = with_inferred_features(dataclasses.replace(config, features=dataclasses.replace(config.features,
                                                                                            infer=True)))  # fmt: skip
    f = found.features
    print(yaml.safe_dump({"features": {"numeric": list(f.numeric), "categorical": list(f.categorical),
                                       "hashed": dict(f.hashed), "timestamp": f.timestamp}}, sort_keys=False))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
