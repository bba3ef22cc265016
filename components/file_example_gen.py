"""File ExampleGen executors for CSV, JSON lines, Parquet and TFRecord, with two additions.

- Personal-data columns are removed from each tf.Example as it is read, so they are
  never stored; or, for an identifier that must still join (`data.hash_columns`),
  replaced by a keyed hash (HMAC-SHA256 with a secret from `$PII_HASH_KEY`). CSV is read,
  cleaned and encoded a record batch at a time (components/csv_batches.py: pyarrow and
  tfx_bsl's encoder); JSON lines, Parquet and TFRecord by Beam's sources, a row at a time,
  rows becoming tf.Examples by `row_to_example`, which unlike TFX's `dict_to_example` keeps zeros.
- A time split: with `time_split` in the custom config, the train split is every row
  before a cut-off and eval every row from it on, the cut-off being the timestamp below
  which `train_fraction` of the rows fall (Beam's approximate quantiles). Otherwise the
  output config's hash buckets split the rows, as in any ExampleGen.

The settings arrive in ExampleGen's `custom_config` as a Struct:
`{"drop_columns": [...], "time_split": {"feature": "...", "train_fraction": 0.8}}`.
"""

from __future__ import annotations

import json
import math
import operator
import os
from collections.abc import Iterable
from typing import Any

import apache_beam as beam
import numpy as np
import tensorflow as tf
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions
from apache_beam.transforms.stats import ApproximateQuantiles
from google.protobuf import json_format, struct_pb2
from tfx.components.example_gen import utils, write_split
from tfx.components.example_gen.base_example_gen_executor import BaseExampleGenExecutor
from tfx.components.util import examples_utils
from tfx.dsl.io import fileio
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import io_utils, proto_utils

from components import csv_batches
from components.example_cleaning import ROWS_WITHOUT_LABEL, clean_example, has_label
from models.features import MISSING_TOKENS, safe_name

DROP_KEY = "drop_columns"
HASH_KEY = "hash_columns"
HASH_SECRET_ENV = "PII_HASH_KEY"  # the HMAC key for hashed columns: a secret, never in config or the repo
TIME_SPLIT_KEY = "time_split"
CLEAN_KEY = "clean"
MISSING_KEY = "missing_values"
FILE_PATTERNS = {"csv": "*.csv", "json": "*.jsonl", "parquet": "*.parquet", "tfrecord": "*.tfrecord*"}


def custom_config(drop_columns: Iterable[str], time_feature: str | None = None, train_fraction: float = 0.8,
                  hash_columns: Iterable[str] = (), clean: dict | None = None) -> example_gen_pb2.CustomConfig:  # fmt: skip
    """ExampleGen's `custom_config` for these executors; `clean` is `cleaning_settings(...)`."""
    struct = struct_pb2.Struct()
    struct.update({DROP_KEY: sorted(drop_columns), HASH_KEY: sorted(hash_columns)})
    if clean:
        struct.update({CLEAN_KEY: clean})
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


def hash_secret() -> bytes:
    secret = os.environ.get(HASH_SECRET_ENV, "")
    if len(secret) < 16:
        raise ValueError(f"data.hash_columns needs a secret key of at least 16 characters in ${HASH_SECRET_ENV} "
                         "(from a secret manager; the same key keeps hashes comparable across runs)")  # fmt: skip
    return secret.encode()


def hash_features(example: tf.train.Example, columns: frozenset[str], secret: bytes) -> tf.train.Example:
    """Each value of `columns` replaced by its keyed hash (HMAC-SHA256, hex): the same value gives
    the same token, so the column still joins and counts, but without the key it cannot be
    reversed by hashing guesses."""
    import hashlib
    import hmac

    out = tf.train.Example()
    out.CopyFrom(example)
    for name in columns:
        if name not in out.features.feature:
            continue
        feature = out.features.feature[name]
        kind = feature.WhichOneof("kind")
        values = [v if isinstance(v, bytes) else str(v).encode() for v in getattr(feature, kind).value] if kind else []
        tokens = [hmac.new(secret, v, hashlib.sha256).hexdigest()[:32].encode() for v in values]
        out.features.feature[name].CopyFrom(tf.train.Feature(bytes_list=tf.train.BytesList(value=tokens)))
    return out


def row_to_example(row: dict[str, Any]) -> tf.train.Example:
    """A row (column -> scalar) as a tf.Example; None and NaN are missing.

    TFX's `dict_to_example` tests `if not value`, so it also empties every 0, 0.0 and ""
    (tensorflow/tfx#6407): a 0 label or a zero fare would read as missing.
    """
    features = {}
    for name, value in row.items():
        value = value.item() if hasattr(value, "item") else value
        if value is None or (isinstance(value, float) and math.isnan(value)):
            features[name] = tf.train.Feature()
        elif isinstance(value, bytes | str):
            data = value.encode("utf-8") if isinstance(value, str) else value
            features[name] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[data]))
        elif isinstance(value, bool | int):
            features[name] = tf.train.Feature(int64_list=tf.train.Int64List(value=[int(value)]))
        elif isinstance(value, float):
            features[name] = tf.train.Feature(float_list=tf.train.FloatList(value=[value]))
        else:
            raise ValueError(f"column '{name}': unsupported value of type {type(value).__name__}")
    return tf.train.Example(features=tf.train.Features(feature=features))


def example_to_row(example: tf.train.Example | bytes) -> dict[str, Any]:
    """The first value of each feature (text decoded); a feature with no value is left out."""
    if isinstance(example, bytes):
        example = tf.train.Example.FromString(example)
    row = {}
    for name, feature in example.features.feature.items():
        kind = feature.WhichOneof("kind")
        values = getattr(feature, kind).value if kind else []
        if values:
            value = values[0]
            row[name] = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
    return row


def json_line_to_example(line: str) -> tf.train.Example:
    """One JSON object per line; null or absent values are missing."""
    try:
        row = json.loads(line)
    except json.JSONDecodeError as e:
        raise ValueError(f"a line of the input is not JSON ({e.msg}): {line[:80]!r}") from None
    if not isinstance(row, dict):
        raise ValueError(f"a line of the input is not a JSON object: {line[:80]!r}")
    return row_to_example(row)


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


@beam.ptransform_fn
@beam.typehints.with_input_types(beam.Pipeline)
@beam.typehints.with_output_types(tf.train.Example)
def _parquet_to_example(pipeline, exec_properties: dict[str, Any], split_pattern: str):
    pattern = os.path.join(exec_properties[standard_component_specs.INPUT_BASE_KEY], split_pattern)
    return pipeline | "ReadParquet" >> beam.io.ReadFromParquet(pattern) | "ToTFExample" >> beam.Map(row_to_example)


def csv_files_and_header(pattern: str) -> tuple[list[str], list[str]]:
    """The files the pattern matches and their header, which must be the same in each (as TFX's CSV reader)."""
    files = fileio.glob(pattern)
    if not files:
        raise RuntimeError(f"split pattern {pattern} does not match any files")
    names = io_utils.load_csv_column_names(files[0])
    for other in files[1:]:
        if io_utils.load_csv_column_names(other) != names:
            raise RuntimeError(f"files in the same split {pattern} have different headers: {files[0]}, {other}")
    return files, names


@beam.ptransform_fn
@beam.typehints.with_input_types(beam.Pipeline)
@beam.typehints.with_output_types(bytes)
def csv_to_clean_examples(pipeline, exec_properties: dict[str, Any], split_pattern: str):
    """CSV to cleaned, serialized tf.Examples a record batch at a time (components/csv_batches.py)."""
    paths, kinds, cleaner = _csv_sources(pipeline, exec_properties, split_pattern)
    return paths | "ToTFExamples" >> beam.FlatMap(cleaner.file_examples, beam.pvalue.AsSingleton(kinds))


@beam.ptransform_fn
def csv_examples_and_times(pipeline, exec_properties: dict[str, Any], split_pattern: str, feature: str):
    """`csv_to_clean_examples` as (`feature` in seconds, example) pairs, and the rows' `feature` from a read of
    that column alone: the time split's cutoff then comes without holding every example until it is known."""
    paths, kinds, cleaner = _csv_sources(pipeline, exec_properties, split_pattern)
    timed = paths | "ToTimedTFExamples" >> beam.FlatMap(cleaner.file_timed_examples, beam.pvalue.AsSingleton(kinds),
                                                        feature)  # fmt: skip
    times = paths | "TimeColumn" >> beam.FlatMap(cleaner.file_column, beam.pvalue.AsSingleton(kinds), feature)
    return timed, times | "Times" >> beam.FlatMap(_present_times, feature)


def _present_times(times, feature: str):
    if np.isnan(times).any():
        raise ValueError(f"time split: a row has no value for '{feature}'")
    return times.tolist()


def _csv_sources(pipeline, exec_properties: dict[str, Any], split_pattern: str):
    """The CSV files, their columns' kinds over all of them, and the Cleaner that converts their rows."""
    pattern = os.path.join(exec_properties[standard_component_specs.INPUT_BASE_KEY], split_pattern)
    files, names = csv_files_and_header(pattern)
    found = settings(exec_properties)
    clean = found.get(CLEAN_KEY, {})
    missing = frozenset(t.encode() for t in clean.get(MISSING_KEY, MISSING_TOKENS))
    hashed = frozenset(safe_name(c) for c in found.get(HASH_KEY, ()))
    cleaner = csv_batches.Cleaner(names, clean, missing, frozenset(safe_name(c) for c in columns_to_drop(exec_properties)),
                                  hashed, hash_secret() if hashed else b"")  # fmt: skip
    # two reads of each file, one for the column types over all of them, one to convert: memory stays a block
    paths = pipeline | "CsvFiles" >> beam.Create(files)
    kinds = (paths | "ColumnKinds" >> beam.Map(csv_batches.file_kinds, names)
             | "MergeKinds" >> beam.CombineGlobally(csv_batches.merge_kinds))  # fmt: skip
    return paths, kinds, cleaner


READERS = {
    "json": _json_to_example,
    "parquet": _parquet_to_example,
    "tfrecord": _tfrecord_to_example,
}


def _reader_without_columns(fmt: str):
    read = READERS[fmt]

    @beam.ptransform_fn
    @beam.typehints.with_input_types(beam.Pipeline)
    @beam.typehints.with_output_types(tf.train.Example)
    def transform(pipeline, exec_properties: dict[str, Any], split_pattern: str):
        examples = pipeline | f"Read{fmt}" >> read(exec_properties, split_pattern)
        found = settings(exec_properties)
        clean = found.get(CLEAN_KEY, {})
        missing = frozenset(t.encode() for t in clean.get(MISSING_KEY, MISSING_TOKENS))
        if clean.get("label"):  # a row with no label can neither train nor be scored against one
            examples = examples | "DropRowsWithoutLabel" >> beam.Filter(has_label, clean["label"], missing)
        examples = examples | "CleanValues" >> beam.Map(clean_example, clean, missing)
        drop = frozenset(safe_name(c) for c in columns_to_drop(exec_properties))  # as `clean_example` names them
        hashed = frozenset(safe_name(c) for c in found.get(HASH_KEY, ()))
        if drop:
            examples = examples | "DropPersonalColumns" >> beam.Map(drop_features, drop)
        if hashed:
            examples = examples | "HashPersonalColumns" >> beam.Map(hash_features, hashed, hash_secret())
        return examples

    return transform


def timestamp_of(example: tf.train.Example | bytes, feature: str) -> float:
    if isinstance(example, bytes):
        example = tf.train.Example.FromString(example)
    if feature not in example.features.feature:
        raise ValueError(csv_batches.no_column_message(feature, list(example.features.feature)))
    values = example.features.feature[feature]
    kind = values.WhichOneof("kind")
    found = list(getattr(values, kind).value) if kind else []
    if not found:
        raise ValueError(f"time split: a row has no value for '{feature}'")
    return float(found[0])


def cutoff_of(quantiles: list[float], fraction: float) -> float:
    if not quantiles:
        raise ValueError("the input has no rows: the data files hold a header at most")
    return quantiles[min(len(quantiles) - 1, round(fraction * (len(quantiles) - 1)))]


LOCAL_RUNNERS = frozenset({None, "DirectRunner", "FnApiRunner", "SwitchingDirectRunner", "BundleBasedDirectRunner"})


@beam.ptransform_fn
def write_split_in_order(examples, output_split_path: str):
    """TFX's `WriteSplit` (serialized records, gzipped TFRecord) without its Reshuffle."""
    prefix = os.path.join(output_split_path, write_split.DEFAULT_FILE_NAME)
    serialized = examples | "MaybeSerialize" >> beam.ParDo(write_split.MaybeSerialize())
    return serialized | "Write" >> beam.io.WriteToTFRecord(prefix, file_name_suffix=".gz")


def counter_total(result, name: str) -> int:
    """A Beam counter's committed total in a finished pipeline's result (0 when nothing counted)."""
    from apache_beam.metrics.metric import MetricsFilter

    found = result.metrics().query(MetricsFilter().with_name(name))["counters"]
    return int(sum(c.committed or 0 for c in found))


class _Executor(BaseExampleGenExecutor):
    FORMAT = "csv"

    def Do(self, input_dict, output_dict, exec_properties) -> None:  # noqa: N802 (TFX's name)
        """TFX's `Do`, except that on the local runner each split is written without TFX's Reshuffle: the
        in-process runner holds a Reshuffle's whole input in memory and keeps the rows' order anyway, so the
        files hold the same records in the same order. On Dataflow, where the Reshuffle spreads the write
        over the workers, it is TFX's own `Do`."""
        runner = PipelineOptions(self._beam_pipeline_args or []).view_as(StandardOptions).runner
        file_format = exec_properties.get(standard_component_specs.OUTPUT_FILE_FORMAT_KEY,
                                          example_gen_pb2.FILE_FORMAT_UNSPECIFIED)  # fmt: skip
        payload = exec_properties.get(standard_component_specs.OUTPUT_DATA_FORMAT_KEY)
        if runner not in LOCAL_RUNNERS or payload == example_gen_pb2.FORMAT_PARQUET:
            return super().Do(input_dict, output_dict, exec_properties)
        self._log_startup(input_dict, output_dict, exec_properties)
        input_config = example_gen_pb2.Input()
        proto_utils.json_to_proto(exec_properties[standard_component_specs.INPUT_CONFIG_KEY], input_config)
        output_config = example_gen_pb2.Output()
        proto_utils.json_to_proto(exec_properties[standard_component_specs.OUTPUT_CONFIG_KEY], output_config)
        outputs = output_dict[standard_component_specs.EXAMPLES_KEY]
        artifact_utils.get_single_instance(outputs).split_names = artifact_utils.encode_split_names(
            utils.generate_output_split_names(input_config, output_config)
        )
        pipeline = self._make_beam_pipeline()
        for name, examples in self.GenerateExamplesByBeam(pipeline, exec_properties).items():
            uri = artifact_utils.get_split_uri(outputs, name)
            _ = examples | f"WriteSplit[{name}]" >> write_split_in_order(uri)
        result = pipeline.run()
        result.wait_until_finish()
        dropped = counter_total(result, ROWS_WITHOUT_LABEL)
        for artifact in outputs:
            artifact.set_int_custom_property(ROWS_WITHOUT_LABEL, dropped)  # the run's summary warns of them
            if payload:
                examples_utils.set_payload_format(artifact, payload)
            if file_format:
                examples_utils.set_file_format(artifact, write_split.to_file_format_str(file_format))

    def GetInputSourceToExamplePTransform(self) -> beam.PTransform:  # noqa: N802 (TFX's name)
        return csv_to_clean_examples if self.FORMAT == "csv" else _reader_without_columns(self.FORMAT)

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
        pattern = input_config.splits[0].pattern
        # (time, example) pairs: each row's time is read once, not again to assign it to a split
        if self.FORMAT == "csv":  # the cutoff from the time column alone: the examples stream past it
            timed, times = pipeline | "InputToRecord" >> csv_examples_and_times(exec_properties, pattern, feature)
        else:  # the examples are held until the cutoff is known
            examples = pipeline | "InputToRecord" >> self.GetInputSourceToExamplePTransform()(exec_properties, pattern)
            timed = examples | "Timestamps" >> beam.Map(lambda example: (timestamp_of(example, feature), example))
            times = timed | "Times" >> beam.Map(operator.itemgetter(0))
        steps = 100
        quantiles = times | "Quantiles" >> ApproximateQuantiles.Globally(steps + 1)
        cutoff = quantiles | "Cutoff" >> beam.Map(cutoff_of, fraction)
        train, evaluation = timed | "SplitByTime" >> beam.Partition(
            lambda pair, _, cut: 0 if pair[0] < cut else 1, 2, cut=beam.pvalue.AsSingleton(cutoff)
        )
        example = operator.itemgetter(1)
        return {"train": train | "TrainExamples" >> beam.Map(example),
                "eval": evaluation | "EvalExamples" >> beam.Map(example)}  # fmt: skip


class CsvExecutor(_Executor):
    FORMAT = "csv"


class JsonExecutor(_Executor):
    FORMAT = "json"


class ParquetExecutor(_Executor):
    FORMAT = "parquet"


class TFRecordExecutor(_Executor):
    FORMAT = "tfrecord"


EXECUTORS = {"csv": CsvExecutor, "json": JsonExecutor, "parquet": ParquetExecutor, "tfrecord": TFRecordExecutor}
