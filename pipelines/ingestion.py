"""ExampleGen as the config asks for it: files (with spans, cleaning and the personal columns dropped)
or a BigQuery query, split by hash buckets."""

from __future__ import annotations

from tfx import v1 as tfx
from tfx.components import FileBasedExampleGen
from tfx.dsl.components.base import executor_spec

from components import file_example_gen
from components.example_cleaning import cleaning_settings
from settings.config import Config


def example_gen(config: Config, runtime_parameters: bool):
    if config.data.format == "bigquery":
        return tfx.extensions.google_cloud_big_query.BigQueryExampleGen(
            query=bigquery_query(config), output_config=split_config(config)
        )
    input_base = config.data.path
    if runtime_parameters:
        input_base = tfx.dsl.experimental.RuntimeParameter(name="data_root", ptype=str, default=input_base)
    fmt = config.data.format
    # only the data files: a span folder may also hold a `_SUCCESS` marker (triggers/)
    pattern = file_example_gen.FILE_PATTERNS[fmt]
    if config.data.spans:
        pattern = "span-{SPAN}/" + pattern  # ExampleGen reads the newest span and records its number
    time_feature = config.features.timestamp if config.split.by_time(config.features.timestamp) else None
    return FileBasedExampleGen(
        input_base=input_base,
        input_config=tfx.proto.Input(splits=[tfx.proto.Input.Split(name="single_split", pattern=pattern)]),
        custom_executor_spec=executor_spec.BeamExecutorSpec(file_example_gen.EXECUTORS[fmt]),
        custom_config=file_example_gen.custom_config(
            config.data.personal_columns,
            time_feature,
            config.split.train_fraction,
            config.data.hash_columns,
            clean=example_cleaning(config),
        ),
        output_config=split_config(config),
    ).with_id(EXAMPLE_GEN_IDS[fmt])


def example_cleaning(config: Config) -> dict:
    """How ExampleGen makes the rows consistent: missing values, numbers stored as text, a text timestamp and
    text labels (components/example_cleaning.py)."""
    clean = cleaning_settings(
        numeric=config.features.numeric, timestamp=config.features.timestamp, label=config.label,
        label_classes=config.label_classes,
    )  # fmt: skip
    return {**clean, "missing_values": list(config.data.missing_values)}


EXAMPLE_GEN_IDS = {"csv": "CsvExampleGen", "json": "JsonExampleGen", "parquet": "ParquetExampleGen",
                   "tfrecord": "TFRecordExampleGen", "bigquery": "BigQueryExampleGen"}  # fmt: skip


def bigquery_query(config: Config) -> str:
    """The configured query, with the personal columns removed inside BigQuery."""
    query = config.data.query.strip().rstrip(";")
    if not config.data.personal_columns:
        return query
    dropped = ", ".join(f"`{c}`" for c in sorted(config.data.personal_columns))
    return f"SELECT * EXCEPT({dropped}) FROM ({query})"


def split_config(config: Config) -> tfx.proto.Output:
    return tfx.proto.Output(
        split_config=tfx.proto.SplitConfig(
            splits=[
                tfx.proto.SplitConfig.Split(name="train", hash_buckets=config.split.train_buckets),
                tfx.proto.SplitConfig.Split(name="eval", hash_buckets=config.split.eval_buckets),
            ]
        )
    )
