"""Request validation against the model's serving schema (the SERVING environment).

Every instance is a JSON object of raw feature values. A field the model reads
must have the schema's type; numbers must be in the schema's range; NaN and
infinities are rejected. Personal columns are accepted and dropped before
anything reads them; any other unknown field is an error. Every problem of every
instance is named in one 400.

What the model's preprocessing handles is served, per feature as the serving
contract (`features`, written with the model) says: a category outside the
training vocabulary where Transform gives out-of-vocabulary buckets ("values":
"open"), and a missing value the preprocessing fills ("missing": "imputed": the
model gets it absent, or, for an input the export reads as always present (a
fixed `shape` in the schema), the contract's `fill`). Such a row
is served and counted per field (`Validated.unseen`, `Validated.imputed`), for the
prediction log. Otherwise (a model without that contract, a closed vocabulary, or
`strict`: `serving.strict_domains`) the value is refused, as the schema says.
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
    open_domain: bool = False  # a value outside `domain` is served (an out-of-vocabulary bucket)
    imputed: bool = False  # a missing value is served (the preprocessing fills it)
    fill: Any = None  # what a missing value becomes, for an input the export reads as always present

    @property
    def may_be_absent(self) -> bool:
        """Whether a row without this value goes to the model as it is (a value the schema lets be missing, or
        one the preprocessing imputes in its graph)."""
        return not self.required or (self.imputed and self.fill is None)


@dataclass
class Validated:
    """Validated instances, and per field how many values were served as unseen (out of vocabulary) or imputed."""

    rows: list[dict[str, Any]]
    unseen: dict[str, int]
    imputed: dict[str, int]

    def counts(self) -> dict:
        """The prediction log's record of values served that training did not have (empty if none)."""
        return {k: v for k, v in (("unseen", self.unseen), ("imputed", self.imputed)) if v}


def _in_serving(feature: schema_pb2.Feature, defaults: list[str]) -> bool:
    if SERVING_ENVIRONMENT in feature.not_in_environment:
        return False
    if feature.in_environment:
        return SERVING_ENVIRONMENT in feature.in_environment
    return SERVING_ENVIRONMENT in defaults or not defaults


class RequestValidator:
    """Checks and normalizes instances for a model with the given inputs and schema."""

    def __init__(self, rules: dict[str, FieldRule], dropped: frozenset[str]):
        self.rules = rules
        self.dropped = dropped

    @classmethod
    def from_schema(cls, schema: schema_pb2.Schema, inputs: list[str], personal: list[str], strict: bool = False,
                    policies: dict[str, dict] | None = None) -> RequestValidator:  # fmt: skip
        """Rules from the schema; `policies` (the contract's `features`) opens a feature's values or lets its
        missing values through, unless `strict`."""
        policies = {} if strict or policies is None else policies
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
            always_present = f.HasField("shape")  # the export parses it as a FixedLenFeature
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
            policy = policies.get(name, {})
            imputed = policy.get("missing") == "imputed" and (not always_present or "fill" in policy)
            rules[name] = FieldRule(name, kind, required, domain, low, high, policy.get("values") == "open",
                                    imputed, policy.get("fill") if always_present and imputed else None)  # fmt: skip
        # columns the server accepts and ignores: other serving features of the schema and personal data
        ignorable = {n for n, f in features.items() if _in_serving(f, defaults)} - set(rules)
        return cls(rules, frozenset((ignorable | set(personal)) - set(rules)))

    def instances(self, raws: list) -> Validated:
        """Every instance's model inputs, or one InvalidRequestError naming every bad instance and field."""
        found = Validated([], {}, {})
        problems = []
        for i, raw in enumerate(raws):
            try:
                found.rows.append(self._instance(raw, i, found))
            except InvalidRequestError as e:
                problems.append(str(e))
        if problems:
            raise InvalidRequestError("; ".join(problems))
        return found

    def instance(self, raw: Any, index: int) -> dict[str, Any]:
        """The instance's model inputs (None for a missing optional value), or InvalidRequestError naming each
        of its problems."""
        return self._instance(raw, index, Validated([], {}, {}))

    def _instance(self, raw: Any, index: int, counts: Validated) -> dict[str, Any]:
        where = f"instances[{index}]"
        if not isinstance(raw, dict):
            raise InvalidRequestError(f"{where} must be a JSON object of feature values, got {type(raw).__name__}")
        problems = [
            f"unknown field '{_short(k)}'" for k in sorted(raw) if k not in self.rules and k not in self.dropped
        ]
        if self.rules and not any(raw.get(name) is not None for name in self.rules):
            # every input may be imputed, but an instance with none is a client's mistake, not a row to score
            problems.append(f"no model input given (expected {', '.join(sorted(self.rules)[:5])}"
                            f"{', …' if len(self.rules) > 5 else ''})")  # fmt: skip
        out = {}
        for name, rule in self.rules.items():
            value = raw.get(name)
            try:
                out[name] = self._value(rule, value, counts)
            except InvalidRequestError as e:
                problems.append(str(e))
        if problems:
            raise InvalidRequestError(f"{where}: " + "; ".join(problems))
        return out

    def _value(self, rule: FieldRule, value: Any, counts: Validated) -> Any:
        if value is None:
            if rule.required and not rule.imputed:
                raise InvalidRequestError(f"required field '{rule.name}' is missing")
            if rule.imputed:
                counts.imputed[rule.name] = counts.imputed.get(rule.name, 0) + 1
            return rule.fill
        return self._check(rule, value, counts)

    def _check(self, rule: FieldRule, value: Any, counts: Validated) -> Any:
        name = rule.name
        if rule.kind == "string":
            if not isinstance(value, str):
                raise InvalidRequestError(f"field '{name}' must be a string, got {type(value).__name__}")
            if rule.domain is not None and value not in rule.domain:
                if not rule.open_domain:
                    raise InvalidRequestError(f"field '{name}' value '{_short(value)}' is not in its domain")
                counts.unseen[name] = counts.unseen.get(name, 0) + 1
            return value
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InvalidRequestError(f"field '{name}' must be a number, got {type(value).__name__}")
        if isinstance(value, float) and not math.isfinite(value):
            raise InvalidRequestError(f"field '{name}' must be finite, got {value}")
        if rule.kind == "int":
            if isinstance(value, float) and not value.is_integer():
                raise InvalidRequestError(f"field '{name}' must be an integer, got {value}")
            value = int(value)
            if not -(2**63) <= value < 2**63:
                raise InvalidRequestError(f"field '{name}' is out of the 64-bit integer range")
        else:
            value = float(value)
            if not math.isfinite(value):
                raise InvalidRequestError(f"field '{name}' is out of the float range")
        if (rule.low is not None and value < rule.low) or (rule.high is not None and value > rule.high):
            raise InvalidRequestError(f"field '{name}' value {value} is outside [{rule.low}, {rule.high}]")
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
                if not rule.may_be_absent:
                    return ~ok
                continue
            column = frame[name]
            present = column.notna().to_numpy()
            if not rule.may_be_absent:
                ok &= present
            if rule.kind == "string" and isinstance(column.dtype, pd.CategoricalDtype):
                categories = column.cat.categories
                kinds = np.full(len(categories), True)
                if pd.api.types.infer_dtype(categories, skipna=True) != "string":
                    kinds = categories.map(lambda v: isinstance(v, str)).to_numpy(dtype=bool)
                if rule.domain is not None and not rule.open_domain:
                    kinds &= categories.isin(rule.domain)
                ok &= ~present | np.append(kinds, False)[column.cat.codes.to_numpy()]  # code -1: missing
                continue
            if rule.kind == "string":
                if pd.api.types.infer_dtype(column, skipna=True) not in ("string", "empty"):
                    ok &= ~present | column.map(lambda v: isinstance(v, str)).to_numpy()
                if rule.domain is not None and not rule.open_domain:
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
                "required": r.required and not r.imputed,
                **({"domain": sorted(r.domain)} if r.domain is not None else {}),
                **({"min": r.low} if r.low is not None else {}),
                **({"max": r.high} if r.high is not None else {}),
                **({"values": "open"} if r.open_domain else {}),
                **({"missing": "imputed"} if r.imputed else {}),
            }
            for name, r in self.rules.items()
        }


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def _short(text: str, limit: int = 60) -> str:
    text = "".join(c if c.isprintable() else "?" for c in text)
    return text if len(text) <= limit else text[:limit] + "..."
