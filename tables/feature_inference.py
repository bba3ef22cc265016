"""Features of a table nobody has described yet: every column but the label, the key, the
personal columns, the timestamp and `features.exclude`, typed from statistics over every row of the data (read
in chunks; a uniform sample of the rows where rows are needed, never the first rows of a file).

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

import glob
import json
import os
import sys
from dataclasses import dataclass

import numpy as np
import pandas as pd
import yaml

from settings import entry
from settings.config import Config

PERSONAL_PATTERNS = {  # what a personal column looks like, whatever its name
    "e-mail addresses": r"^[\w.+-]+@[\w-]+\.[\w.-]+$",
    "phone numbers": r"^(?!\d{4}[-/]\d{1,2}[-/]\d{1,2}\b)\+?[\d ()-]{7,}$",  # not a date such as 2007-11-11
}
MAX_CATEGORY_NUMBERS = 20
MAX_VOCABULARY = 1000
HASH_BUCKETS = 256
SAMPLE_ROWS = 20000  # rows of the uniform sample (personal data, the screen's row-wise tests)
SAMPLE_SEED = 0
CHUNK_ROWS = 100_000
MIN_ROWS_FOR_IDENTIFIER = 20
BUCKET_MIN_ROWS = 1000  # from this many rows each inferred numeric feature also gets quantile-bucket ids
NUMERIC_BUCKETS = 10


@dataclass
class Table:
    """What feature inference knows of a table: `stats` and `labels` (its distinct label values) over all `rows`,
    `sample` a uniform sample of them."""

    sample: pd.DataFrame
    stats: dict[str, ColumnStats]
    labels: pd.Series
    rows: int


def read_table(config: Config, rows: int = SAMPLE_ROWS) -> Table:
    """The configured files read whole, in chunks (the newest span when data comes in spans): every column's
    statistics over all rows, a uniform seeded sample of up to `rows` rows, and the label's distinct values.

    Statistics are counted here rather than by TFDV: a column's distinct count (codes or a measure, an identifier)
    is needed for numbers too, and TFDV's numeric statistics have none."""
    from models.features import safe_name

    files, fmt = data_files(config)
    label = safe_name(config.label)
    stats: dict[str, ColumnStats] = {}
    labels, sample, seen = [], None, 0
    rng = np.random.default_rng(SAMPLE_SEED)
    for path in files:
        for chunk in _chunks(path, fmt, config.data.missing_values):
            chunk = chunk.rename(columns=safe_name).reset_index(drop=True)
            for column in chunk.columns:
                stats.setdefault(column, ColumnStats()).add(chunk[column])
            if label in chunk.columns:
                labels.append(pd.Series(chunk[label].dropna().unique()))
            # a uniform sample: each row draws a random key, the `rows` smallest keys are kept (reservoir sampling)
            chunk["__key__"] = rng.random(len(chunk))
            both = chunk if sample is None else pd.concat([sample, chunk], ignore_index=True)
            sample = both.nsmallest(rows, "__key__")
            seen += len(chunk)
    for column in stats:
        stats[column].finish()
    if sample is None:
        raise ValueError(f"{config.source}: no rows in {config.data.path}")
    sample = sample.sort_index().drop(columns="__key__").reset_index(drop=True)  # in file order
    distinct_labels = pd.concat(labels, ignore_index=True).drop_duplicates() if labels else pd.Series(dtype=object)
    return Table(sample, stats, distinct_labels, seen)


def read_sample(config: Config, rows: int = SAMPLE_ROWS) -> pd.DataFrame:
    """A uniform sample of up to `rows` rows across all of the configured files (not their first rows)."""
    return read_table(config, rows).sample


def data_files(config: Config) -> tuple[list[str], str]:
    """The files feature inference reads, and their format."""
    from components.file_example_gen import FILE_PATTERNS

    fmt, base = config.data.format, config.data.path
    if fmt == "bigquery":
        raise ValueError("features.infer reads files; for BigQuery list the features in the config")
    if config.data.spans:
        spans = sorted(glob.glob(os.path.join(base, "span-*")), key=lambda p: int(p.rsplit("-", 1)[-1]))
        base = spans[-1] if spans else base
    files = sorted(glob.glob(os.path.join(base, FILE_PATTERNS[fmt])))
    if not files:
        raise FileNotFoundError(f"{config.source}: no {fmt} file under {base} (data.path, data.format)")
    return files, fmt


class ColumnStats:
    """One column's statistics over every row: rows with a value, distinct values (exact), its kind."""

    def __init__(self) -> None:
        self.present = 0
        self.numeric = self.whole = self.boolean = True
        self.first = None
        self._hashes: list[np.ndarray] = []
        self.distinct = 0

    def add(self, values: pd.Series) -> None:
        present = values.dropna()
        if present.empty:
            return
        self.present += len(present)
        if self.first is None:
            self.first = present.iloc[0]
        boolean = pd.api.types.is_bool_dtype(present)
        self.boolean &= boolean
        numeric = pd.api.types.is_numeric_dtype(present) and not boolean
        self.numeric &= numeric
        self.whole &= numeric and (pd.api.types.is_integer_dtype(present) or bool((present == present.round()).all()))
        text = present if numeric or boolean else present.astype(str)  # a number read as text in one chunk only
        hashes = pd.util.hash_pandas_object(text, index=False).to_numpy()
        self._hashes.append(np.unique(hashes))
        if sum(len(h) for h in self._hashes) > 4 * MAX_VOCABULARY:
            self._hashes = [np.unique(np.concatenate(self._hashes))]

    def finish(self) -> None:
        self.distinct = len(np.unique(np.concatenate(self._hashes))) if self._hashes else 0
        self._hashes = []
        self.numeric &= self.present > 0
        self.boolean &= self.present > 0

    @classmethod
    def of(cls, values: pd.Series) -> ColumnStats:
        """Statistics of the rows given (a table already in memory)."""
        out = cls()
        out.add(values)
        out.finish()
        return out


def _chunks(path: str, fmt: str, missing: tuple[str, ...]):
    """The file's rows in frames of up to CHUNK_ROWS, read as ingestion reads them."""
    if fmt == "csv":  # the same cells are missing as at ingestion
        yield from pd.read_csv(path, keep_default_na=False, na_values=list(missing), low_memory=False,
                               chunksize=CHUNK_ROWS)  # fmt: skip
    elif fmt == "json":
        yield from pd.read_json(path, lines=True, chunksize=CHUNK_ROWS)
    elif fmt == "parquet":
        import pyarrow.parquet as pq

        for batch in pq.ParquetFile(path).iter_batches(batch_size=CHUNK_ROWS):
            yield batch.to_pandas()
    else:
        yield _tfrecord_rows(path)


def _tfrecord_rows(path: str) -> pd.DataFrame:
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


def unusable(column: pd.Series | ColumnStats) -> tuple[str, str] | None:
    """(finding, reason) for a column that cannot be a feature, else None; from its statistics over every row."""
    stats = column if isinstance(column, ColumnStats) else ColumnStats.of(column)
    if not stats.present:
        return "empty", "no row has a value"
    if stats.distinct == 1:
        return "constant", f"every row with a value holds {str(stats.first)[:40]!r}"
    text = not stats.numeric and not stats.boolean
    share = stats.distinct / stats.present
    if (stats.whole or text) and stats.present >= MIN_ROWS_FOR_IDENTIFIER and share >= 0.95:
        kind = "whole numbers" if stats.whole else "text"
        return "identifier", f"{kind} different in {100 * share:.0f} % of rows: an identifier"
    return None


def numbers_in_text(values: pd.Series) -> float:
    """Share of a text column's values that read as numbers."""
    present = values.dropna().astype(str)
    return float(pd.to_numeric(present, errors="coerce").notna().mean()) if len(present) else 0.0


def infer(sample: pd.DataFrame, config: Config, stats: dict[str, ColumnStats] | None = None,
          rows: int | None = None) -> tuple[dict[str, object], list[dict]]:  # fmt: skip
    """`features` lists for every column the config leaves open, and the columns left out, with why.

    `stats`: each column's statistics over all `rows` of the table (default: those of `sample`, when it is the
    whole table); types, cardinality and the left-out columns come from them, never from the sample alone."""
    f = config.features
    listed = set(f.inputs())
    skip = {config.label, config.data.key_column, f.timestamp, *config.data.personal_columns, *f.exclude}
    numeric, categorical, hashed = list(f.numeric), list(f.categorical), dict(f.hashed)
    stats = stats if stats is not None else {c: ColumnStats.of(sample[c]) for c in sample.columns}
    rows = rows if rows is not None else len(sample)
    left_out = []
    for column in stats:
        if column in skip or column in listed:
            continue
        column_stats = stats[column]
        problem = unusable(column_stats)
        if problem:
            left_out.append({"column": column, "finding": problem[0], "reason": problem[1]})
            continue
        if column_stats.boolean:
            categorical.append(column)
        elif column_stats.numeric:
            (categorical if column_stats.whole and column_stats.distinct <= MAX_CATEGORY_NUMBERS else numeric).append(
                column
            )
        elif column_stats.distinct <= MAX_VOCABULARY:
            categorical.append(column)
            share = numbers_in_text(sample[column]) if column in sample.columns else 0.0
            if 0.5 <= share < 1.0:  # mixed: named, and kept as categories rather than guessed at
                print(json.dumps({"event": "mixed_column", "column": column, "numbers": round(share, 3),
                                  "treated_as": "categorical"}))  # fmt: skip
        else:
            hashed[column] = HASH_BUCKETS
    buckets = dict(f.buckets)
    if rows >= BUCKET_MIN_ROWS:  # enough rows to learn a shape per bucket: a z-score alone is one slope
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


def header(config: Config) -> list[str]:
    """The columns of the configured files, as ingestion names them (every file's header, in order)."""
    from models.features import safe_name

    files, fmt = data_files(config)
    columns: dict[str, None] = {}
    for path in files:
        if fmt == "csv":
            names = pd.read_csv(path, nrows=0).columns
            if len(names) == 1 and any(sep in str(names[0]) for sep in ";\t|"):  # before any name is checked
                raise ValueError(f"{path}: the only column's name holds a separator: is the file delimited by "
                                 "something other than commas?")  # fmt: skip
        elif fmt == "parquet":
            import pyarrow.parquet as pq

            names = pq.read_schema(path).names
        else:
            names = next(iter(_chunks(path, fmt, ())), pd.DataFrame()).columns
        columns.update(dict.fromkeys(safe_name(str(c)) for c in names))
    return list(columns)


def named_columns(config: Config) -> list[tuple[str, str]]:
    """(key, column) for every column the config names that the data must have."""
    d, f, e, m = config.data, config.features, config.evaluation, config.monitoring
    named = [("label", config.label), ("data.key_column", d.key_column), ("features.timestamp", f.timestamp)]
    lists = {"data.personal_columns": d.personal_columns, "data.hash_columns": d.hash_columns,
             "features.numeric": f.numeric, "features.categorical": f.categorical, "features.hashed": f.hashed,
             "features.exclude": f.exclude, "features.buckets": f.buckets, "evaluation.slices": e.slices,
             "evaluation.fairness_features": e.fairness_features, "monitoring.exclude": m.exclude,
             "monitoring.retrain.important_features": m.retrain.important_features,
             "screening.keep": config.screening.keep if config.screening else ()}  # fmt: skip
    named += [(key, column) for key, columns in lists.items() for column in columns]
    if e.baselines and e.baselines.heuristic_feature:
        named.append(("evaluation.baselines.heuristic_feature", e.baselines.heuristic_feature))
    return [(key, column) for key, column in named if column]


def check_columns(config: Config) -> None:
    """A ConfigError naming every column the config names that the data does not have, with the closest real
    names; nothing for BigQuery (its columns are the query's)."""
    import difflib

    from models.features import safe_name
    from settings.config import ConfigError

    if config.data.format == "bigquery" or "://" in config.data.path:  # a query's columns; remote files: the run's
        return
    columns = header(config)
    problems = []
    for key, column in named_columns(config):
        if safe_name(column) in columns:
            continue
        close = difflib.get_close_matches(safe_name(column), columns, n=3, cutoff=0.6)
        hint = f"closest: {', '.join(repr(c) for c in close)}" if close else f"columns: {columns[:12]}"
        problems.append(f"{key} '{column}' is not a column of the data ({hint})")
    if problems:
        raise ConfigError(f"{config.source}: " + "; ".join(problems) + f" [{config.data.path}]")


def with_inferred_features(config: Config) -> Config:
    """The config checked against the data's columns (`check_columns`), with its features filled in from the data
    (unchanged unless `features.infer`)."""
    check_columns(config)
    if not config.features.infer:
        return config
    config = with_safe_names(config)
    table = read_table(config)
    sample, stats, labels = table.sample, table.stats, table.labels
    if config.label not in stats:
        raise ValueError(f"{config.source}: the label '{config.label}' is not a column of {config.data.path} "
                         f"(columns: {sorted(stats)[:12]})")  # fmt: skip
    named = [c for c in (config.label, config.features.timestamp, config.data.key_column) if c]
    personal = detect_personal(sample.drop(columns=named, errors="ignore"))
    new = sorted(set(personal) - set(config.data.personal_columns) - set(config.data.hash_columns))
    for column in new:  # dropped at ingestion like the columns the config names
        print(json.dumps({"event": "personal_column_detected", "column": column, "holds": personal[column]}))
    data = config.data.replace(personal_columns=(*config.data.personal_columns, *new))
    config = config.replace(data=data)
    if not config.label_classes:
        classes = label_classes(labels, config.problem_type)  # every label of the table, not the sample's
        if classes and config.problem_type == "binary_classification" and len(classes) != 2:
            raise ValueError(f"{config.source}: binary_classification needs a label with 2 values; "
                             f"'{config.label}' has {len(classes)}: {list(classes)[:8]}")  # fmt: skip
        if classes or (config.problem_type == "multiclass_classification" and config.num_classes is None):
            classes = classes or tuple(str(c) for c in sorted(labels.astype(int).unique()))
            config = config.replace(label_classes=classes)
            if config.problem_type == "multiclass_classification":
                config = config.replace(num_classes=len(classes))
            print(json.dumps({"event": "label_classes", "label": config.label, "classes": list(classes)}))
    found, left_out = infer(sample, config, stats, table.rows)
    for item in left_out:
        print(json.dumps({"event": "column_left_out", **item}))
    features = config.features.replace(infer=False, **found)
    if not features.inputs():
        raise ValueError(f"{config.source}: features.infer found no feature column in {config.data.path}")
    return config.replace(features=features, left_out=tuple(left_out))


@entry.config_errors_exit
def main(argv: list[str] | None = None) -> int:
    from tables.sample_data import prepare_data

    parser = entry.parser(__doc__, None)
    args = parser.parse_args(argv)
    config = entry.load(args)
    prepare_data(config)
    found = with_inferred_features(config.replace(features=config.features.replace(infer=True)))
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
