"""CsvExampleGen that drops personal-data columns as it reads, so they are never stored.

The stock CSV executor's conversion is reused unchanged; this only removes the
configured columns from each tf.Example before ExampleGen writes it. Columns
arrive in ExampleGen's `custom_config` as a Struct `{"drop_columns": [...]}`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import apache_beam as beam
import tensorflow as tf
from google.protobuf import json_format, struct_pb2
from tfx.components.example_gen.csv_example_gen import executor as csv_executor
from tfx.proto import example_gen_pb2

DROP_KEY = "drop_columns"


def custom_config(drop_columns: Iterable[str]) -> example_gen_pb2.CustomConfig:
    """The ExampleGen `custom_config` that makes this executor drop `drop_columns`."""
    struct = struct_pb2.Struct()
    struct.update({DROP_KEY: sorted(drop_columns)})
    config = example_gen_pb2.CustomConfig()
    config.custom_config.Pack(struct)
    return config


def columns_to_drop(exec_properties: dict[str, Any]) -> frozenset[str]:
    raw = exec_properties.get("custom_config")
    if not raw:
        return frozenset()
    config = json_format.Parse(raw, example_gen_pb2.CustomConfig()) if isinstance(raw, str) else raw
    struct = struct_pb2.Struct()
    if not config.custom_config.Unpack(struct):
        raise ValueError("ExampleGen custom_config must pack a google.protobuf.Struct")
    return frozenset(struct[DROP_KEY]) if DROP_KEY in struct else frozenset()


def drop_features(example: tf.train.Example, columns: frozenset[str]) -> tf.train.Example:
    out = tf.train.Example()
    out.CopyFrom(example)
    for name in columns:
        if name in out.features.feature:
            del out.features.feature[name]
    return out


@beam.typehints.with_input_types(beam.Pipeline)
@beam.typehints.with_output_types(tf.train.Example)
class _CsvToExampleWithoutColumns(beam.PTransform):
    def __init__(self, exec_properties: dict[str, Any], split_pattern: str):
        self._read = csv_executor._CsvToExample(exec_properties, split_pattern)  # noqa: SLF001
        self._drop = columns_to_drop(exec_properties)

    def expand(self, pipeline: beam.Pipeline):
        examples = pipeline | "ReadCsv" >> self._read
        if not self._drop:
            return examples
        return examples | "DropPersonalColumns" >> beam.Map(drop_features, self._drop)


class Executor(csv_executor.Executor):
    """CSV ExampleGen executor that never writes the columns named in `custom_config`."""

    def GetInputSourceToExamplePTransform(self) -> beam.PTransform:  # noqa: N802 (TFX's name)
        return _CsvToExampleWithoutColumns
