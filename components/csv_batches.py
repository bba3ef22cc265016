"""CSV files to serialized tf.Examples a record batch at a time: pyarrow parses each file in blocks,
tfx_bsl's encoder writes the Examples, and the cleaning of `example_cleaning.clean_example` is done per
column instead of per row.

The rows come out as `clean_example` makes them from TFX's CSV reader: a column's type is inferred over
every file as TFX infers it (int if every filled cell is an int64, else float if every one is a number,
else text); empty cells, the missing tokens in text columns and NaN leave the feature out of the row;
numbers and dates stored as text and text labels are converted; a row without a label is dropped and
counted; personal columns are dropped or hashed.
"""

from __future__ import annotations

import enum
import io
import re
from collections.abc import Iterator, Sequence
from typing import Any

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from tensorflow.core.example import example_pb2
from tfx_bsl.coders import example_coder

from components.example_cleaning import ROWS_WITHOUT_LABEL, seconds_since_epoch
from models.features import safe_name

BLOCK_BYTES = 4 << 20  # a record batch per 4 MiB of CSV: tens of thousands of rows


class Kind(enum.IntEnum):
    """A column's type, in the order TFX's inference widens it (tfx_bsl csv_decoder.ColumnType)."""

    UNKNOWN = 0  # every cell empty: the column is left out
    INT = 1
    FLOAT = 2
    STRING = 3


LIST_TYPES = {Kind.INT: pa.large_list(pa.int64()), Kind.FLOAT: pa.large_list(pa.float32()),
              Kind.STRING: pa.large_list(pa.large_binary())}  # fmt: skip
_INT = r"^\s*[+-]?[0-9]+\s*$"


def read_file(path: str, column_names: Sequence[str]) -> Iterator[pa.RecordBatch]:
    """`read_string_batches` of a file on any filesystem Beam reads (local, gs://), compressed or not."""
    try:
        with beam.io.filesystems.FileSystems.open(path) as file:
            yield from read_string_batches(file, column_names, BLOCK_BYTES)
    except pa.ArrowInvalid as e:  # pyarrow's message quotes the row: it may hold personal data
        count = re.search(r"Expected (\d+) columns, got (\d+)", str(e))
        if count:
            raise ValueError(f"Columns do not match the header in {path}: a row has {count[2]} cells where the header "
                             f"names {count[1]} columns (the row is not shown: it may hold personal data)") from None  # fmt: skip
        if "UTF8" in str(e):
            raise ValueError(f"{path} is not UTF-8 text throughout: a cell holds other bytes") from None
        raise ValueError(f"{path} cannot be read as CSV: {str(e).split(':')[0]}") from None


def read_string_batches(file: io.IOBase, column_names: Sequence[str], block_bytes: int = BLOCK_BYTES,
                        ) -> Iterator[pa.RecordBatch]:  # fmt: skip
    """The file's rows after its header, every cell as text (an empty cell as ""); quoted cells may hold
    newlines; blank lines are skipped."""
    reader = pacsv.open_csv(
        file,
        read_options=pacsv.ReadOptions(column_names=list(column_names), skip_rows=1, block_size=block_bytes),
        parse_options=pacsv.ParseOptions(newlines_in_values=True),
        convert_options=pacsv.ConvertOptions(
            column_types={c: pa.string() for c in column_names}, null_values=[], strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        ),
    )  # fmt: skip
    for batch in reader:
        if batch.num_rows:
            yield batch


def no_column_message(name: str, columns: Sequence[str]) -> str:
    """A time split's feature missing from the rows (an Example's features or a file's columns)."""
    columns = sorted(columns)
    hint = ""
    if len(columns) == 1 and any(sep in columns[0] for sep in ";\t|"):
        hint = " The only column's name holds a separator: is the file delimited by something other than commas?"
    return f"time split: a row has no column '{name}'; its columns are {columns[:8]}.{hint}"


def column_kinds(batch: pa.RecordBatch) -> list[int]:
    """Each column's Kind over this batch's filled cells."""
    return [int(_kind(column)) for column in batch.columns]


def _kind(column: pa.Array) -> Kind:
    filled = column.filter(pc.not_equal(column, ""))
    if not len(filled):
        return Kind.UNKNOWN
    if pc.all(pc.match_substring_regex(filled, _INT)).as_py():
        try:
            pc.cast(pc.utf8_trim_whitespace(filled), pa.int64())
            return Kind.INT
        except pa.ArrowInvalid:  # beyond int64: TFX reads it as text
            return Kind.STRING
    try:
        pc.cast(pc.utf8_trim_whitespace(filled), pa.float64())
        return Kind.FLOAT
    except pa.ArrowInvalid:
        return Kind.STRING


def file_kinds(path: str, column_names: Sequence[str]) -> list[int]:
    """Each column's Kind over one file, read block by block (nothing of it kept)."""
    return merge_kinds([column_kinds(batch) for batch in read_file(path, column_names)])


def merge_kinds(kinds: Sequence[Sequence[int]]) -> list[int]:
    """The widest kind of each column over batches (CombineGlobally's function)."""
    kinds = [k for k in kinds if k]
    return [max(column) for column in zip(*kinds, strict=True)] if kinds else []


class Cleaner:
    """Converts string batches to cleaned, typed batches and encodes them. `clean` is `cleaning_settings(...)`
    with its `missing_values`; `drop`/`hashed` hold safe names; `secret` keys the hashes."""

    def __init__(self, column_names: Sequence[str], clean: dict, missing: frozenset[bytes],
                 drop: frozenset[str] = frozenset(), hashed: frozenset[str] = frozenset(), secret: bytes = b""):  # fmt: skip
        if len(column_names) == 1 and any(sep in column_names[0] for sep in ";\t|"):
            raise ValueError(f"the file has one column, {column_names[0][:60]!r}, whose name holds a separator: is "
                             "it delimited by something other than commas?")  # fmt: skip
        self.column_names = list(column_names)
        self.names = [safe_name(c) for c in column_names]
        seen: dict[str, str] = {}
        for raw, name in zip(column_names, self.names, strict=True):
            if name in seen:
                raise ValueError(f"columns '{raw}' and '{seen[name]}' both read as '{name}' (characters TensorFlow "
                                 "does not take in a name become _): rename one")  # fmt: skip
            seen[name] = raw
        self.numeric = set(clean.get("numeric", ()))
        self.timestamp, self.label = clean.get("timestamp"), clean.get("label")
        self.label_classes = list(clean.get("label_classes") or ())
        self.missing = pa.array(sorted(m.decode() for m in missing), pa.string())
        self.drop, self.hashed, self.secret = drop, hashed, secret

    def typed(self, batch: pa.RecordBatch, kinds: Sequence[int], only: frozenset[str] | None = None) -> pa.RecordBatch:
        """The batch with each kept column (or only those named) converted (missing cells null) and the rows
        without a label dropped (counted as `rows_without_label`)."""
        arrays, names = [], []
        for name, column, kind in zip(self.names, batch.columns, kinds, strict=True):
            if kind == Kind.UNKNOWN or name in self.drop or (only is not None and name not in only):
                continue
            values = self._values(name, column, Kind(kind))
            if name in self.hashed:
                values = self._hashed(values)
            arrays.append(values)
            names.append(name)
        typed = pa.RecordBatch.from_arrays(arrays, names)
        if self.label in names:
            has_label = pc.is_valid(typed.column(names.index(self.label)))
            dropped = len(typed) - pc.sum(has_label).as_py()
            if dropped:
                beam.metrics.Metrics.counter("ExampleGen", ROWS_WITHOUT_LABEL).inc(dropped)
                typed = typed.filter(has_label)
        if self.label in names and self.label_classes:
            at = names.index(self.label)
            typed = typed.set_column(at, self.label, self._class_ids(typed.column(at)))
        return typed

    def _values(self, name: str, column: pa.Array, kind: Kind) -> pa.Array:
        if kind in (Kind.INT, Kind.FLOAT):
            filled = pc.if_else(pc.equal(column, ""), None, column)
            values = pc.cast(pc.utf8_trim_whitespace(filled), pa.int64() if kind == Kind.INT else pa.float32())
            return pc.if_else(pc.is_nan(values), None, values) if kind == Kind.FLOAT else values
        text = pc.if_else(pc.is_in(pc.ascii_trim_whitespace(column), value_set=self.missing), None, column)
        if name == self.label and self.label_classes:
            return text  # its class ids come after the rows without one are dropped
        if name == self.timestamp:
            return _converted(name, text, pa.int64(), seconds_since_epoch, "a date or date-time")
        if name in self.numeric:
            return _converted(name, text, pa.float32(), float, "a number")
        return pc.cast(text, pa.large_binary())

    def _class_ids(self, labels: pa.Array) -> pa.Array:
        if pa.types.is_floating(labels.type):  # as `clean_example` spells a number label: 1.0 -> "1"
            keys = [str(int(v) if v.is_integer() else v) for v in labels.to_pylist()]
            labels = pa.array(keys, pa.string())
        labels = pc.cast(labels, pa.string())
        ids = pc.index_in(labels, value_set=pa.array(self.label_classes, pa.string()))
        if ids.null_count:
            unknown = labels.filter(pc.is_null(ids))[0].as_py()
            raise ValueError(f"label '{self.label}': value {unknown!r} is not one of the classes "
                             f"{self.label_classes} (config: label_classes)")  # fmt: skip
        return pc.cast(ids, pa.int64())

    def _hashed(self, values: pa.Array) -> pa.Array:
        import hashlib
        import hmac

        def token(v: Any) -> bytes | None:
            if v is None:
                return None
            data = v if isinstance(v, bytes) else str(v).encode()
            return hmac.new(self.secret, data, hashlib.sha256).hexdigest()[:32].encode()

        return pa.array([token(v) for v in values.to_pylist()], pa.large_binary())

    def file_examples(self, path: str, kinds: Sequence[int]) -> Iterator[bytes]:
        """A file's rows as cleaned, serialized tf.Examples, a block at a time; `kinds` from `file_kinds`
        merged over every file."""
        for batch in read_file(path, self.column_names):
            yield from self.examples(batch, kinds)

    def file_timed_examples(self, path: str, kinds: Sequence[int], name: str) -> Iterator[tuple[float, bytes]]:
        """`file_examples` with each row's `name` (converted as `file_column` gives it, null as NaN): a time
        split then assigns a row by its time without parsing the Example back."""
        if not kinds:  # no rows in any file
            return
        self._check_column(kinds, name)
        for batch in read_file(path, self.column_names):
            typed = self.typed(batch, kinds)
            times = typed.column(typed.schema.names.index(name)).to_numpy(zero_copy_only=False).astype(np.float64)
            yield from zip(times.tolist(), self.encode(typed), strict=True)

    def _check_column(self, kinds: Sequence[int], name: str) -> None:
        if name not in self.names or kinds[self.names.index(name)] == Kind.UNKNOWN:
            raise ValueError(no_column_message(name, self.names))

    def file_column(self, path: str, kinds: Sequence[int], name: str) -> Iterator[np.ndarray]:
        """One column of the rows `file_examples` gives (their safe name), converted as in those rows (null
        as NaN), a block at a time: what a time split needs, without the rest of each row."""
        if not kinds:  # no rows in any file: no times (the cutoff then says the input has no rows)
            return
        self._check_column(kinds, name)
        for batch in read_file(path, self.column_names):
            typed = self.typed(batch, kinds, frozenset({name, self.label}))
            yield typed.column(typed.schema.names.index(name)).to_numpy(zero_copy_only=False).astype(np.float64)

    def examples(self, batch: pa.RecordBatch, kinds: Sequence[int]) -> list[bytes]:
        """A string batch from `read_string_batches` as cleaned, serialized tf.Examples."""
        return self.encode(self.typed(batch, kinds))

    def encode(self, batch: pa.RecordBatch) -> list[bytes]:
        """Serialized tf.Examples in the batch's row order, a row's null cells left out of it: rows are encoded
        in groups that share the same filled columns (TFX's encoder would write a null as a present, empty
        feature). Each is serialized deterministically, its features by name, as ExampleGen's hash split
        needs (it hashes the bytes; the encoder's map order changes from one run to the next)."""
        if not batch.num_columns or not batch.num_rows:
            return [b""] * batch.num_rows  # an Example with no features serializes to no bytes
        offsets = pa.array(np.arange(batch.num_rows + 1), pa.int64())
        lists = [pa.LargeListArray.from_arrays(offsets, column) for column in batch.columns]
        encoder = example_coder.RecordBatchToExamplesEncoder()
        filled = np.column_stack([column.is_valid().to_numpy(zero_copy_only=False) for column in batch.columns])
        patterns, group = np.unique(filled, axis=0, return_inverse=True)
        order = np.argsort(group.reshape(-1), kind="stable")
        bounds = np.searchsorted(group.reshape(-1)[order], np.arange(len(patterns) + 1))
        out: list[bytes] = [b""] * batch.num_rows
        for at, pattern in enumerate(patterns):
            rows = order[bounds[at] : bounds[at + 1]]
            keep = np.flatnonzero(pattern)
            if not len(keep):
                continue
            indices = pa.array(rows)
            part = pa.RecordBatch.from_arrays(
                [lists[i].take(indices) for i in keep], [batch.schema.names[i] for i in keep]
            )
            for row, record in zip(rows.tolist(), encoder.encode(part), strict=True):
                out[row] = example_pb2.Example.FromString(record).SerializeToString(deterministic=True)
        return out


def _converted(column: str, text: pa.Array, to: pa.DataType, convert, what: str) -> pa.Array:
    """Text to numbers: every distinct value once, the first bad one named."""
    encoded = pc.dictionary_encode(text)
    found = []
    for value in encoded.dictionary.to_pylist():
        try:
            found.append(convert(value.strip()))
        except ValueError:
            raise ValueError(f"column '{column}': {value!r} is not {what}; list it in data.missing_values if it means "
                             "missing, or exclude the column") from None  # fmt: skip
    return pc.take(pa.array(found, to), encoded.indices)
