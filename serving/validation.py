"""Request validation against the model's serving schema (the SERVING environment).

Every instance is a JSON object of raw feature values. A field the model reads
must have the schema's type; a field present in every training example is
required; categorical values must be in the schema's domain and numbers in its
range; NaN and infinities are rejected. Personal columns are accepted and
dropped before anything reads them; any other unknown field is an error.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from tensorflow_metadata.proto.v0 import schema_pb2

SERVING_ENVIRONMENT = "SERVING"


class InvalidRequestError(ValueError):
    """A request the server answers with 4xx; the message names the field and the problem."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


def request_instances(payload: Any, max_instances: int) -> list:
    """The instances of a decoded Vertex AI predict request body (`{"instances": [...], "parameters": ...}`)."""
    if not isinstance(payload, dict) or "instances" not in payload:
        raise InvalidRequestError('request body must be a JSON object with an "instances" list')
    extra = sorted(set(payload) - {"instances", "parameters"})
    if extra:
        raise InvalidRequestError(f"unknown top-level field '{str(extra[0])[:60]}'")
    instances = payload["instances"]
    if not isinstance(instances, list) or not instances:
        raise InvalidRequestError('"instances" must be a non-empty list')
    if len(instances) > max_instances:
        raise InvalidRequestError(f"{len(instances)} instances exceed the limit of {max_instances}", 413)
    return instances


@dataclass(frozen=True)
class FieldRule:
    name: str
    kind: str  # "int" | "float" | "string"
    required: bool
    domain: frozenset[str] | None = None
    low: float | None = None
    high: float | None = None


def _in_serving(feature: schema_pb2.Feature, defaults: list[str]) -> bool:
    if SERVING_ENVIRONMENT in feature.not_in_environment:
        return False
    if feature.in_environment:
        return SERVING_ENVIRONMENT in feature.in_environment
    return SERVING_ENVIRONMENT in defaults or not defaults


class RequestValidator:
    """Checks and normalizes instances for a model with the given inputs and schema."""

    def __init__(self, rules: dict[str, FieldRule], dropped: frozenset[str], reject_out_of_domain: bool = True):
        self.rules = rules
        self.dropped = dropped
        self.reject_out_of_domain = reject_out_of_domain

    @classmethod
    def from_schema(cls, schema: schema_pb2.Schema, inputs: list[str], personal: list[str],
                    reject_out_of_domain: bool = True) -> RequestValidator:  # fmt: skip
        domains = {d.name: frozenset(d.value) for d in schema.string_domain}
        defaults = list(schema.default_environment)
        features = {f.name: f for f in schema.feature}
        rules = {}
        for name in inputs:
            f = features.get(name)
            if f is None:
                raise ValueError(f"model input '{name}' is not in the schema")
            if not _in_serving(f, defaults):
                raise ValueError(f"model input '{name}' is not in the schema's SERVING environment")
            kind = {schema_pb2.INT: "int", schema_pb2.FLOAT: "float", schema_pb2.BYTES: "string"}[f.type]
            required = f.presence.min_fraction >= 1.0 or f.HasField("shape")
            domain = None
            if f.HasField("string_domain"):
                domain = frozenset(f.string_domain.value)
            elif f.domain:
                domain = domains.get(f.domain)
            low = high = None
            if f.HasField("int_domain"):
                low = f.int_domain.min if f.int_domain.HasField("min") else None
                high = f.int_domain.max if f.int_domain.HasField("max") else None
            elif f.HasField("float_domain"):
                low = f.float_domain.min if f.float_domain.HasField("min") else None
                high = f.float_domain.max if f.float_domain.HasField("max") else None
            if f.HasField("bool_domain"):
                kind = "int"
                low, high = 0, 1
            rules[name] = FieldRule(name, kind, required, domain, low, high)
        # columns the server accepts and ignores: other serving features of the schema and personal data
        ignorable = {n for n, f in features.items() if _in_serving(f, defaults)} - set(rules)
        return cls(rules, frozenset((ignorable | set(personal)) - set(rules)), reject_out_of_domain)

    def instance(self, raw: Any, index: int) -> dict[str, Any]:
        """The instance's model inputs (None for a missing optional value), or InvalidRequestError."""
        where = f"instances[{index}]"
        if not isinstance(raw, dict):
            raise InvalidRequestError(f"{where} must be a JSON object of feature values, got {type(raw).__name__}")
        unknown = sorted(k for k in raw if k not in self.rules and k not in self.dropped)
        if unknown:
            raise InvalidRequestError(f"{where}: unknown field '{_short(unknown[0])}'")
        out = {}
        for name, rule in self.rules.items():
            value = raw.get(name)
            if value is None:
                if rule.required:
                    raise InvalidRequestError(f"{where}: required field '{name}' is missing")
                out[name] = None
                continue
            out[name] = self._check(rule, value, where)
        return out

    def _check(self, rule: FieldRule, value: Any, where: str) -> Any:
        name = rule.name
        if rule.kind == "string":
            if not isinstance(value, str):
                raise InvalidRequestError(f"{where}: field '{name}' must be a string, got {type(value).__name__}")
            if rule.domain is not None and self.reject_out_of_domain and value not in rule.domain:
                raise InvalidRequestError(f"{where}: field '{name}' value '{_short(value)}' is not in its domain")
            return value
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InvalidRequestError(f"{where}: field '{name}' must be a number, got {type(value).__name__}")
        if isinstance(value, float) and not math.isfinite(value):
            raise InvalidRequestError(f"{where}: field '{name}' must be finite, got {value}")
        if rule.kind == "int":
            if isinstance(value, float) and not value.is_integer():
                raise InvalidRequestError(f"{where}: field '{name}' must be an integer, got {value}")
            value = int(value)
            if not -(2**63) <= value < 2**63:
                raise InvalidRequestError(f"{where}: field '{name}' is out of the 64-bit integer range")
        else:
            value = float(value)
            if not math.isfinite(value):
                raise InvalidRequestError(f"{where}: field '{name}' is out of the float range")
        if (rule.low is not None and value < rule.low) or (rule.high is not None and value > rule.high):
            raise InvalidRequestError(f"{where}: field '{name}' value {value} is outside [{rule.low}, {rule.high}]")
        return value

    def passing_rows(self, frame) -> np.ndarray:
        """Rows of a pandas DataFrame (one row per instance, NaN for a missing value) that certainly pass
        `instance`, checked column by column; False only means "check this row with `instance`", whose
        message is the one reported. Batch prediction scores the passing rows without a per-row call."""
        import pandas as pd

        ok = np.ones(len(frame), dtype=bool)
        if any(c not in self.rules and c not in self.dropped for c in frame.columns):
            return ~ok  # an unknown column: every row gets its own message
        for name, rule in self.rules.items():
            if name not in frame:
                if rule.required:
                    return ~ok
                continue
            column = frame[name]
            present = column.notna().to_numpy()
            if rule.required:
                ok &= present
            if rule.kind == "string" and isinstance(column.dtype, pd.CategoricalDtype):
                categories = column.cat.categories
                kinds = np.full(len(categories), True)
                if pd.api.types.infer_dtype(categories, skipna=True) != "string":
                    kinds = categories.map(lambda v: isinstance(v, str)).to_numpy(dtype=bool)
                if rule.domain is not None and self.reject_out_of_domain:
                    kinds &= categories.isin(rule.domain)
                ok &= ~present | np.append(kinds, False)[column.cat.codes.to_numpy()]  # code -1: missing
                continue
            if rule.kind == "string":
                if pd.api.types.infer_dtype(column, skipna=True) not in ("string", "empty"):
                    ok &= ~present | column.map(lambda v: isinstance(v, str)).to_numpy()
                if rule.domain is not None and self.reject_out_of_domain:
                    ok &= ~present | column.isin(rule.domain).to_numpy()
                continue
            if pd.api.types.is_bool_dtype(column):
                ok &= ~present
                continue
            if pd.api.types.is_numeric_dtype(column):
                values = column.to_numpy(dtype=float, na_value=np.nan)
                checked = np.isfinite(values)
            else:  # mixed: numbers pass here, text and booleans go row by row
                number = column.map(_is_number).to_numpy(dtype=bool)
                values = pd.to_numeric(column.where(number), errors="coerce").to_numpy(dtype=float, na_value=np.nan)
                checked = number & np.isfinite(values)
            if rule.kind == "int":
                checked &= (values == np.floor(values)) & (np.abs(values) < 2**62)
            if rule.low is not None:
                checked &= values >= rule.low
            if rule.high is not None:
                checked &= values <= rule.high
            ok &= ~present | checked
        return ok

    def example_instance(self) -> dict[str, Any]:
        """A valid instance with every required field (for warm-up and canary requests)."""
        out: dict[str, Any] = {}
        for name, r in self.rules.items():
            if not r.required:
                continue
            if r.kind == "string":
                out[name] = min(r.domain) if r.domain else ""
            else:
                low = r.low if r.low is not None else 0
                out[name] = int(low) if r.kind == "int" else float(low)
        return out

    def describe(self) -> dict:
        """The input contract, for the metadata route."""
        return {
            name: {
                "type": r.kind,
                "required": r.required,
                **({"domain": sorted(r.domain)} if r.domain is not None else {}),
                **({"min": r.low} if r.low is not None else {}),
                **({"max": r.high} if r.high is not None else {}),
            }
            for name, r in self.rules.items()
        }


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def _short(text: str, limit: int = 60) -> str:
    text = "".join(c if c.isprintable() else "?" for c in text)
    return text if len(text) <= limit else text[:limit] + "..."
