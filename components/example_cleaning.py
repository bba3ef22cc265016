"""How ExampleGen makes rows consistent as it reads them: one form of "missing", safe column names, numbers
stored as text, text timestamps and text labels converted, rows without a label counted and left out."""

from __future__ import annotations

import math
from collections.abc import Iterable

import apache_beam as beam
import tensorflow as tf

from models.features import safe_name

ROWS_WITHOUT_LABEL = "rows_without_label"  # ExampleGen's Beam counter, and the property its examples carry


def cleaning_settings(numeric: Iterable[str] = (), timestamp: str | None = None, label: str | None = None,
                      label_classes: Iterable[str] = ()) -> dict:  # fmt: skip
    """What `clean_example` does beyond the missing values: numbers stored as text become numbers,
    a text timestamp becomes seconds since the epoch, a text label becomes its class id."""
    return {"numeric": sorted(numeric), "timestamp": timestamp, "label": label, "label_classes": list(label_classes)}


def seconds_since_epoch(text: str) -> int:
    """An ISO-like date or date-time ("2012/01/31", "2012-01-31 10:15", "...T10:15:00Z"; UTC unless it says)."""
    import datetime

    value = datetime.datetime.fromisoformat(text.strip().replace("/", "-").replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=datetime.UTC)
    return int(value.timestamp())


def clean_example(example: tf.train.Example, clean: dict, missing: frozenset[bytes]) -> tf.train.Example:
    """One representation of "missing": a feature with no value, a value in MISSING_TOKENS, or an empty cell
    (which TFX's CSV reader gives as a present feature with an empty list) leaves the feature out of the row,
    so statistics count it as missing. Column names are made `safe_name`s; `clean` (from
    `cleaning_settings`) converts numbers stored as text, text timestamps and text labels. A value that
    cannot be converted stops the run, naming the column and the value."""
    if len(example.features.feature) == 1:
        (only,) = example.features.feature
        if any(sep in only for sep in ";\t|"):
            raise ValueError(f"the file has one column, {only[:60]!r}, whose name holds a separator: is it delimited "
                             "by something other than commas?")  # fmt: skip
    numeric = set(clean.get("numeric", ()))
    timestamp, label = clean.get("timestamp"), clean.get("label")
    classes = {c.encode(): i for i, c in enumerate(clean.get("label_classes") or ())}
    out = tf.train.Example()
    for raw_name, feature in example.features.feature.items():
        kind = feature.WhichOneof("kind")
        values = list(getattr(feature, kind).value) if kind else []
        if kind == "bytes_list":
            values = [v for v in values if v.strip() not in missing]
        elif kind == "float_list":
            values = [v for v in values if not math.isnan(v)]
        if not values:
            continue
        name = safe_name(raw_name)
        if name in out.features.feature:
            raise ValueError(f"columns '{raw_name}' and another both read as '{name}' (characters TensorFlow does "
                             "not take in a name become _): rename one")  # fmt: skip
        target = out.features.feature[name]
        if name == label and classes:
            keys = [v if isinstance(v, bytes) else str(int(v) if float(v).is_integer() else v).encode() for v in values]
            unknown = [k for k in keys if k not in classes]
            if unknown:
                raise ValueError(f"label '{name}': value {unknown[0].decode(errors='replace')!r} is not one of the "
                                 f"classes {list(clean['label_classes'])} (config: label_classes)")  # fmt: skip
            target.int64_list.value.extend(classes[k] for k in keys)
        elif kind == "bytes_list" and name == timestamp:
            target.int64_list.value.extend(_converted(name, values, seconds_since_epoch, "a date or date-time"))
        elif kind == "bytes_list" and name in numeric:
            target.float_list.value.extend(_converted(name, values, float, "a number"))
        else:
            getattr(target, kind).value.extend(values)
    return out


def has_label(example: tf.train.Example, label: str, missing: frozenset[bytes]) -> bool:
    """False for a row whose label cell holds nothing (counted); a file without the label column passes, for
    validation to name."""
    found = {safe_name(n): f for n, f in example.features.feature.items()}
    if label not in found:
        return True
    kind = found[label].WhichOneof("kind")
    values = list(getattr(found[label], kind).value) if kind else []
    if any(not (isinstance(v, bytes) and v.strip() in missing) and not (isinstance(v, float) and math.isnan(v))
           for v in values):  # fmt: skip
        return True
    beam.metrics.Metrics.counter("ExampleGen", ROWS_WITHOUT_LABEL).inc()
    return False


def _converted(column: str, values: list[bytes], convert, what: str) -> list:
    try:
        return [convert(v.decode("utf-8").strip()) for v in values]
    except (ValueError, UnicodeDecodeError):
        bad = next(v for v in values if not _converts(v, convert))
        raise ValueError(f"column '{column}': {bad.decode(errors='replace')!r} is not {what}; list it in "
                         "data.missing_values if it means missing, or exclude the column") from None  # fmt: skip


def _converts(value: bytes, convert) -> bool:
    try:
        convert(value.decode("utf-8").strip())
        return True
    except (ValueError, UnicodeDecodeError):
        return False
