"""Batch prediction with Apache Beam RunInference over a file set, with the pushed model.

  python -m pipelines.batch_prediction --config configs/taxi.yaml --input 'build/data/taxi/*.csv' --output build/batch/taxi

Rows are read from CSV (with a header) or JSON lines, checked against the
model's serving schema like online requests, and scored by RunInference with a
TensorFlow model handler in batches. Each output line keeps the row's key and
carries the model version and the prediction; rows that fail validation go to
`<output>-errors*` with the reason. The Beam runner comes from the config: the
in-process runner locally, Dataflow with a profile that sets `vertex.dataflow`.
"""

from __future__ import annotations

import csv as std_csv
import io
import json
import os
import sys
from collections.abc import Iterable, Sequence

import apache_beam as beam
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from apache_beam.io import fileio
from apache_beam.ml.inference.base import ModelHandler, PredictionResult, RunInference
from apache_beam.options.pipeline_options import PipelineOptions
from pyarrow import csv

from components.example_cleaning import seconds_since_epoch
from models.features import safe_name
from serving import model_store
from serving.validation import InvalidRequestError
from settings import entry

ERRORS = "errors"
# rows per model call: the taxi model scored 1 M rows in 1.3-1.6 s in chunks of 131,072, 2.0-2.4 s in 8,192
CHUNK_ROWS = 65536


Chunk = tuple[np.ndarray, pd.DataFrame]  # the rows' keys, their model inputs


class FrameModelHandler(ModelHandler[Chunk, PredictionResult, model_store.LoadedModel]):
    """A RunInference model handler whose elements are chunks of rows (DataFrames, as Beam's own
    `SklearnModelHandlerPandas` takes, with their keys): the pushed model scores each chunk column by
    column through its `serving_columns` signature, with no tf.Example or dict per row. A result's
    `example` is the chunk's keys.

    Beam's `TFModelHandlerTensor` loads models with Keras (Keras 3 here cannot load this SavedModel)
    and imports tensorflow_hub, which needs `pkg_resources` that setuptools >= 81 no longer ships.
    """

    def __init__(self, model_dir: str, personal_columns: list[str]):
        super().__init__()
        self._model_dir = model_dir
        self._personal = personal_columns

    def load_model(self) -> model_store.LoadedModel:
        return model_store.load(self._model_dir, self._personal)

    def run_inference(self, batch: Sequence[Chunk], model, inference_args: dict | None = None
                      ) -> Iterable[PredictionResult]:  # fmt: skip
        return [PredictionResult(keys, model.score_frame(frame), model.version) for keys, frame in batch]

    def get_num_bytes(self, batch: Sequence[Chunk]) -> int:
        return int(sum(frame.memory_usage(index=False).sum() for _, frame in batch))  # Beam's default pickles

    def batch_elements_kwargs(self) -> dict:
        return {"min_batch_size": 1, "max_batch_size": 1}  # an element is already a batch of rows

    def get_metrics_namespace(self) -> str:
        return "FrameModelHandler"


class ReadChunks(beam.DoFn):
    """A matched file -> DataFrames of `rows` rows (CSV with a header, or JSON lines), without the `skip`
    columns (`ignored_columns`: never converted, and personal data never held).

    A file may be the table the model was trained on: a column is known by the name ExampleGen gave it
    (`safe_name`: "Body Mass (g)" is `Body_Mass_g`), the `missing` texts are missing values, and dates in
    the `timestamp` column become seconds since the epoch, as ExampleGen made them.

    CSV is parsed by Arrow (multi-threaded), with the model inputs' types from the serving schema; a
    file Arrow cannot convert that way (text in a numeric column) is read by pandas instead, so that
    each bad value is reported on its own row rather than failing the file. With `categories`, Arrow
    reads the string inputs as dictionaries, which become pandas Categoricals: each distinct value is a
    Python string once per chunk, not once per row."""

    def __init__(self, rows: int, column_types: dict[str, str], skip: frozenset[str] = frozenset(),
                 categories: bool = False, timestamp: str | None = None, missing: Sequence[str] | None = None):  # fmt: skip
        self._rows = rows
        self._types = column_types
        self._skip = skip
        self._categories = categories
        self._timestamp = timestamp if timestamp in column_types else None
        self._missing = None if missing is None else sorted({"", *missing})

    def _model_names(self, columns: Sequence[str]) -> dict[str, str]:
        """A column's name -> the one the model knows it by, where they differ."""
        known = set(self._types) | self._skip
        return {c: safe_name(c) for c in columns if c not in known and safe_name(c) in known}

    def process(self, readable):
        with readable.open() as f:
            data = f.read()
        if readable.metadata.path.endswith((".jsonl", ".json")):
            for chunk in pd.read_json(io.BytesIO(data), lines=True, chunksize=self._rows, dtype=False):
                chunk = chunk.rename(columns=self._model_names(chunk.columns))
                yield self._seconds_from_text(chunk.drop(columns=[c for c in chunk.columns if c in self._skip]))
            return
        end = data.find(b"\n")
        header = next(std_csv.reader([data[: end if end >= 0 else None].rstrip(b"\r").decode("utf-8-sig")]), [])
        renamed = self._model_names(header)
        keep = [c for c in header if renamed.get(c, c) not in self._skip]
        kinds = {c: self._types[renamed.get(c, c)] for c in keep if renamed.get(c, c) in self._types}
        types = {c: getattr(pa, kind)() for c, kind in kinds.items()}
        if self._categories:
            types.update({c: pa.dictionary(pa.int32(), pa.string()) for c, kind in kinds.items() if kind == "string"})
        # a timestamp column of dates is read as text the second time
        dates = {**types, **{c: pa.string() for c in types if renamed.get(c, c) == self._timestamp}}
        table = self._arrow(data, keep, types)
        if table is None and dates != types:
            table = self._arrow(data, keep, dates)
        if table is None:
            na = {} if self._missing is None else {"na_values": self._missing, "keep_default_na": False}
            for chunk in pd.read_csv(io.BytesIO(data), chunksize=self._rows, usecols=keep, **na):
                yield self._seconds_from_text(self._numbers_from_text(chunk.rename(columns=renamed)))
            return
        table = table.rename_columns([renamed.get(c, c) for c in table.column_names])
        # one contiguous table (Arrow parses in blocks of about 1 MB), cut into chunks of `rows`
        for chunk in table.unify_dictionaries().combine_chunks().to_batches(max_chunksize=self._rows):
            yield self._seconds_from_text(chunk.to_pandas())

    def _arrow(self, data: bytes, columns: list[str], types: dict) -> pa.Table | None:
        """The CSV as Arrow reads it with these types, or None where a cell does not convert."""
        nulls = {} if self._missing is None else {"null_values": self._missing}
        options = csv.ConvertOptions(column_types=types, strings_can_be_null=True, include_columns=columns, **nulls)
        try:
            return csv.read_csv(pa.py_buffer(data), convert_options=options)
        except pa.ArrowInvalid:
            return None

    def _numbers_from_text(self, chunk: pd.DataFrame) -> pd.DataFrame:
        """In a numeric input column pandas read as text, every value that is a number becomes one; the
        rest stay text, for the validator to name (a CSV cell is text either way)."""
        for name, kind in self._types.items():
            if kind != "string" and name != self._timestamp and name in chunk and chunk[name].dtype == object:
                numbers = pd.to_numeric(chunk[name], errors="coerce")
                chunk[name] = numbers.astype(object).where(numbers.notna() | chunk[name].isna(), chunk[name])
        return chunk

    def _seconds_from_text(self, chunk: pd.DataFrame) -> pd.DataFrame:
        """The timestamp column's dates (and numbers) read as text -> seconds since the epoch, each distinct
        text once; a text that is neither stays, for the validator to name."""
        name = self._timestamp
        if name is None or name not in chunk or pd.api.types.is_numeric_dtype(chunk[name]):
            return chunk
        values = chunk[name].astype(object)
        seconds = {v: _seconds(v) for v in pd.unique(values) if isinstance(v, str)}
        chunk[name] = values.map(lambda v: seconds.get(v, v) if isinstance(v, str) else v)
        return chunk


def _seconds(text: str) -> int | str:
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return seconds_since_epoch(text)
    except ValueError:
        return text


class ValidateChunk(beam.DoFn):
    """(keys, inputs) of a chunk's valid rows; each invalid row to the `errors` output with its reason.
    Rows are checked column by column, and the ones that check does not clear one by one (the
    online server's messages)."""

    def __init__(self, model_dir: str, key_column: str, personal_columns: list[str], drop_columns: list[str]):
        self._model_dir = model_dir
        self._key = key_column
        self._personal = personal_columns
        self._drop = set(drop_columns)
        self._validator = None

    def setup(self):
        self._validator = model_store.load_validator(self._model_dir, self._personal, ignore_other_schema_columns=True)

    def process(self, chunk: pd.DataFrame):
        keys = chunk[self._key].to_numpy() if self._key in chunk else np.full(len(chunk), None)
        inputs = chunk.drop(columns=[c for c in chunk.columns if c == self._key or c in self._drop])
        passing = self._validator.passing_rows(inputs)
        rules = list(self._validator.rules)
        frame, rescued, rescued_at = inputs.reindex(columns=rules)[passing], [], []
        for i in np.flatnonzero(~passing):
            row = {k: _plain(v) for k, v in inputs.iloc[i].items() if not _missing(v)}
            key = _plain(keys[i])
            try:
                rescued.append(self._validator.instance(row, 0))
                rescued_at.append(i)
            except InvalidRequestError as e:
                yield beam.pvalue.TaggedOutput(ERRORS, {"key": key, "error": str(e).replace("instances[0]: ", "")})
        if rescued:
            frame = pd.concat([frame, pd.DataFrame(rescued, columns=rules)], ignore_index=True)
        if len(frame):
            yield np.concatenate([keys[passing], keys[rescued_at]]), frame


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and value != value)


def _plain(value):
    """A numpy scalar as the Python value json.dumps and the validator expect."""
    return value.item() if hasattr(value, "item") else value


def to_json_lines(keys: Sequence, scores: np.ndarray, version: str, output: str) -> str:
    """One JSON line per row: key, model version, prediction (the element WriteToText writes). Arrow's
    string kernels build the lines column by column; a score is the shortest text that reads back as
    the model's float."""
    scores = np.asarray(scores)
    if scores.ndim == 2 and scores.shape[1] > 1:  # one output per class: a list per row
        columns = [_json_texts(scores[:, i]) for i in range(scores.shape[1])]
        score_texts = pc.binary_join_element_wise("[", *[x for c in columns for x in (",", c)][1:], "]", "")
    else:
        score_texts = _json_texts(scores.reshape(-1))
    middle = f',"model_version":{json.dumps(version)},{json.dumps(output)}:'
    lines = pc.binary_join_element_wise('{"key":', _json_texts(keys), middle, score_texts, "}\n", "")
    if not len(lines):
        return ""
    offsets = np.frombuffer(lines.buffers()[1], np.int64 if pa.types.is_large_string(lines.type) else np.int32)
    start, end = offsets[lines.offset], offsets[lines.offset + len(lines)]
    return lines.buffers()[2].slice(start, end - start - 1).to_pybytes().decode()


_NEEDS_ESCAPE = r'["\\\x00-\x1f]'


def _json_texts(values: Sequence) -> pa.Array:
    """Each value as JSON text ("null" for a missing or non-finite one): by Arrow's kernels for numbers and
    for strings that need no escaping, else by json.dumps."""
    try:
        array = pa.array(values, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # mixed types
        array = None
    if array is not None and pa.types.is_integer(array.type):
        texts = pc.cast(array, pa.string())
    elif array is not None and pa.types.is_floating(array.type):
        texts = pc.if_else(pc.is_finite(array), pc.cast(array, pa.string()), None)
    elif (
        array is not None
        and pa.types.is_string(array.type)
        and not pc.any(pc.match_substring_regex(array, _NEEDS_ESCAPE)).as_py()
    ):
        texts = pc.binary_join_element_wise('"', array, '"', "")
    else:
        plain = [None if _missing(v) else _plain(v) for v in values]
        texts = pa.array([json.dumps(v, ensure_ascii=False, default=str) for v in plain], pa.string())
    return pc.fill_null(texts, "null")


def column_types(model_dir: str, personal_columns: list[str]) -> dict[str, str]:
    """The model inputs' Arrow types, from the serving schema (what ReadChunks parses CSV with)."""
    rules = model_store.load_validator(model_dir, personal_columns).rules
    return {n: {"string": "string", "int": "int64", "float": "float64"}[r.kind] for n, r in rules.items()}


def ignored_columns(model_dir: str, personal_columns: list[str], key_column: str, not_inputs: Sequence[str]
                    ) -> frozenset[str]:  # fmt: skip
    """Columns a scoring file may carry that are neither its key nor a model input: the schema's other
    features, personal data and `not_inputs` (the label). Any other column is unknown and is read, so that
    each row's error names it."""
    validator = model_store.load_validator(model_dir, personal_columns, ignore_other_schema_columns=True)
    return frozenset((validator.dropped | set(not_inputs)) - set(validator.rules) - {key_column})


def newest_model_dir(serving_dir: str) -> str:
    available = model_store.versions(serving_dir)
    if not available:
        raise model_store.ModelUnavailableError(f"no pushed model in {serving_dir}")
    return os.path.join(serving_dir, available[-1])


def build(pipeline, model_dir: str, input_pattern: str, output: str, key_column: str,
          personal_columns: list[str], drop_columns: list[str] = (), chunk_rows: int = CHUNK_ROWS,
          timestamp: str | None = None, missing: Sequence[str] | None = None) -> None:  # fmt: skip
    """Adds read -> validate -> RunInference -> write to `pipeline`. `timestamp` (the safe name of a column
    that may hold dates) and `missing` (texts that mean no value) read files as ExampleGen did."""
    contract = model_store.read_contract(model_dir)
    version = os.path.basename(model_dir.rstrip("/"))
    types = column_types(model_dir, personal_columns)
    skip = ignored_columns(model_dir, personal_columns, key_column, drop_columns)
    chunks = (
        pipeline
        | "Match" >> fileio.MatchFiles(input_pattern)
        | "Open" >> fileio.ReadMatches()
        | "ReadChunks" >> beam.ParDo(ReadChunks(chunk_rows, types, skip, True, timestamp, missing))
    )
    validated = chunks | "Validate" >> beam.ParDo(
        ValidateChunk(model_dir, key_column, personal_columns, list(drop_columns))
    ).with_outputs(ERRORS, main="valid")
    (
        validated.valid
        | "RunInference" >> RunInference(FrameModelHandler(model_dir, personal_columns))
        | "Format" >> beam.Map(lambda r: to_json_lines(r.example, r.inference, version, contract["output"]))
        | "WritePredictions" >> beam.io.WriteToText(output, file_name_suffix=".jsonl")
    )
    (
        validated[ERRORS]
        | "FormatErrors" >> beam.Map(json.dumps)
        | "WriteErrors" >> beam.io.WriteToText(f"{output}-{ERRORS}", file_name_suffix=".jsonl")
    )


def run(config, input_pattern: str, output: str, model_dir: str | None = None, key_column: str | None = None) -> str:
    """Runs batch prediction with the newest pushed model (or `model_dir`); returns the model used."""
    from pipelines.beam_options import beam_args

    model_dir = model_dir or newest_model_dir(config.pipeline.serving_dir)
    contract = model_store.read_contract(model_dir)
    not_inputs = [contract["label"]]
    timestamp = safe_name(config.features.timestamp) if config.features.timestamp else None
    with beam.Pipeline(options=PipelineOptions(beam_args(config))) as p:
        build(p, model_dir, input_pattern, output, key_column or config.data.key_column,
              list(config.data.personal_columns), not_inputs, timestamp=timestamp,
              missing=config.data.missing_values)  # fmt: skip
    return model_dir


@entry.config_errors_exit
def main(argv: list[str] | None = None) -> int:
    parser = entry.parser(__doc__)
    parser.add_argument("--input", required=True, help="file pattern: *.csv with a header, or *.jsonl")
    parser.add_argument("--output", required=True, help="output prefix")
    parser.add_argument("--model-dir", help="default: the newest pushed version")
    args = parser.parse_args(argv)
    config = entry.load(args)
    model_dir = run(config, args.input, args.output, args.model_dir)
    print(json.dumps({"model": model_dir, "output": args.output}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
