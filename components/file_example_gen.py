"""File ExampleGen executors for CSV, JSON lines, Parquet and TFRecord, with two additions.

- Personal-data columns are removed from each tf.Example as it is read, so they are
  never stored. The readers are TFX's and Beam's own (the stock CSV and Parquet
  conversions, `dict_to_example`, TFRecord of serialized tf.Examples).
- A time split: with `time_split` in the custom config, the train split is every row
  before a cut-off and eval every row from it on, the cut-off being the timestamp below
  which `train_fraction` of the rows fall (Beam's approximate quantiles). Otherwise the
  output config's hash buckets split the rows, as in any ExampleGen.

The settings arrive in ExampleGen's `custom_config` as a Struct:
`{"drop_columns": [...], "time_split": {"feature": "...", "train_fraction": 0.8}}`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from typing import Any

import apache_beam as beam
import tensorflow as tf
from apache_beam.transforms.stats import ApproximateQuantiles
from google.protobuf import json_format, struct_pb2
from tfx.components.example_gen import utils
from tfx.components.example_gen.base_example_gen_executor import BaseExampleGenExecutor
from tfx.components.example_gen.csv_example_gen import executor as csv_executor
from tfx.components.example_gen.custom_executors import parquet_executor
from tfx.proto import example_gen_pb2
from tfx.types import standard_component_specs
from tfx.utils import proto_utils

DROP_KEY = "drop_columns"
TIME_SPLIT_KEY = "time_split"
FILE_PATTERNS = {"csv": "*.csv", "json": "*.jsonl", "parquet": "*.parquet", "tfrecord": "*.tfrecord*"}


def custom_config(drop_columns: Iterable[str], time_feature: str | None = None,
                  train_fraction: float = 0.8) -> example_gen_pb2.CustomConfig:  # fmt: skip
    """ExampleGen's `custom_config` for these executors."""
    struct = struct_pb2.Struct()
    struct.update({DROP_KEY: sorted(drop_columns)})
    if time_feature:
        struct.update({TIME_SPLIT_KEY: {"feature": time_feature, "train_fraction": train_fraction}})
    config = example_gen_pb2.CustomConfig()
    config.custom_config.Pack(struct)
    return config


def settings(exec_properties: dict[str, Any]) -> dict:
    raw = exec_properties.get("custom_config")
    if not raw:
        return {}
    config = json_format.Parse(raw, example_gen_pb2.CustomConfig()) if isinstance(raw, str) else raw
    struct = struct_pb2.Struct()
    if not config.custom_config.Unpack(struct):
        raise ValueError("ExampleGen custom_config must pack a google.protobuf.Struct")
    return json_format.MessageToDict(struct)


def columns_to_drop(exec_properties: dict[str, Any]) -> frozenset[str]:
    return frozenset(settings(exec_properties).get(DROP_KEY, ()))


def drop_features(example: tf.train.Example, columns: frozenset[str]) -> tf.train.Example:
    out = tf.train.Example()
    out.CopyFrom(example)
    for name in columns:
        if name in out.features.feature:
            del out.features.feature[name]
    return out


def json_line_to_example(line: str) -> tf.train.Example:
    """One JSON object per line; null or absent values are missing."""
    try:
        row = json.loads(line)
    except json.JSONDecodeError as e:
        raise ValueError(f"a line of the input is not JSON ({e.msg}): {line[:80]!r}") from None
    if not isinstance(row, dict):
        raise ValueError(f"a line of the input is not a JSON object: {line[:80]!r}")
    return utils.dict_to_example({k: v for k, v in row.items() if v is not None})


@beam.ptransform_fn
@beam.typehints.with_input_types(beam.Pipeline)
@beam.typehints.with_output_types(tf.train.Example)
def _json_to_example(pipeline, exec_properties: dict[str, Any], split_pattern: str):
    pattern = os.path.join(exec_properties[standard_component_specs.INPUT_BASE_KEY], split_pattern)
    return pipeline | "ReadJsonLines" >> beam.io.ReadFromText(pattern) | "ToTFExample" >> beam.Map(json_line_to_example)


@beam.ptransform_fn
@beam.typehints.with_input_types(beam.Pipeline)
@beam.typehints.with_output_types(tf.train.Example)
def _tfrecord_to_example(pipeline, exec_properties: dict[str, Any], split_pattern: str):
    pattern = os.path.join(exec_properties[standard_component_specs.INPUT_BASE_KEY], split_pattern)
    return (pipeline | "ReadTFRecord" >> beam.io.ReadFromTFRecord(pattern)
            | "Parse" >> beam.Map(tf.train.Example.FromString))  # fmt: skip


READERS = {
    "csv": csv_executor._CsvToExample,  # noqa: SLF001 (TFX's own CSV conversion)
    "json": _json_to_example,
    "parquet": parquet_executor._ParquetToExample,  # noqa: SLF001
    "tfrecord": _tfrecord_to_example,
}


def _reader_without_columns(fmt: str):
    read = READERS[fmt]

    @beam.ptransform_fn
    @beam.typehints.with_input_types(beam.Pipeline)
    @beam.typehints.with_output_types(tf.train.Example)
    def transform(pipeline, exec_properties: dict[str, Any], split_pattern: str):
        examples = pipeline | f"Read{fmt}" >> read(exec_properties, split_pattern)
        drop = columns_to_drop(exec_properties)
        if not drop:
            return examples
        return examples | "DropPersonalColumns" >> beam.Map(drop_features, drop)

    return transform


def timestamp_of(example: tf.train.Example, feature: str) -> float:
    values = example.features.feature[feature]
    kind = values.WhichOneof("kind")
    found = list(getattr(values, kind).value) if kind else []
    if not found:
        raise ValueError(f"time split: a row has no value for '{feature}'")
    return float(found[0])


class _Executor(BaseExampleGenExecutor):
    FORMAT = "csv"

    def GetInputSourceToExamplePTransform(self) -> beam.PTransform:  # noqa: N802 (TFX's name)
        return _reader_without_columns(self.FORMAT)

    def GenerateExamplesByBeam(self, pipeline, exec_properties):  # noqa: N802 (TFX's name)
        time_split = settings(exec_properties).get(TIME_SPLIT_KEY)
        if not time_split:
            return super().GenerateExamplesByBeam(pipeline, exec_properties)
        input_config = example_gen_pb2.Input()
        proto_utils.json_to_proto(exec_properties[standard_component_specs.INPUT_CONFIG_KEY], input_config)
        output_config = example_gen_pb2.Output()
        proto_utils.json_to_proto(exec_properties[standard_component_specs.OUTPUT_CONFIG_KEY], output_config)
        names = utils.generate_output_split_names(input_config, output_config)
        if len(input_config.splits) != 1 or names != ["train", "eval"]:
            raise ValueError(f"a time split needs one input split and the output splits train, eval; got {names}")
        feature, fraction = time_split["feature"], float(time_split["train_fraction"])
        examples = pipeline | "InputToRecord" >> self.GetInputSourceToExamplePTransform()(
            exec_properties, input_config.splits[0].pattern
        )
        steps = 100
        quantiles = (
            examples
            | "Timestamps" >> beam.Map(timestamp_of, feature)
            | "Quantiles" >> ApproximateQuantiles.Globally(steps + 1)
        )
        cutoff = quantiles | "Cutoff" >> beam.Map(lambda q: q[min(len(q) - 1, round(fraction * (len(q) - 1)))])
        train, evaluation = examples | "SplitByTime" >> beam.Partition(
            lambda example, _, cut: 0 if timestamp_of(example, feature) < cut else 1,
            2,
            cut=beam.pvalue.AsSingleton(cutoff),
        )
        return {"train": train, "eval": evaluation}


class CsvExecutor(_Executor):
    FORMAT = "csv"


class JsonExecutor(_Executor):
    FORMAT = "json"


class ParquetExecutor(_Executor):
    FORMAT = "parquet"


class TFRecordExecutor(_Executor):
    FORMAT = "tfrecord"


EXECUTORS = {"csv": CsvExecutor, "json": JsonExecutor, "parquet": ParquetExecutor, "tfrecord": TFRecordExecutor}
