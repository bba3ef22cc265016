"""pydantic's validation errors in the loader's words: `<file>: <what> '<key>' ...`."""

from __future__ import annotations

import typing

from pydantic import BaseModel, ValidationError

from settings.sections import ConfigError

TYPE_NAMES = {"int_type": "int", "int_parsing": "int", "float_type": "float", "float_parsing": "float",
              "string_type": "str", "bool_type": "bool", "bool_parsing": "bool"}  # fmt: skip
BOUNDS = {"greater_than": (">", "gt"), "greater_than_equal": (">=", "ge"), "less_than": ("<", "lt"),
          "less_than_equal": ("<=", "le")}  # pydantic's Field(gt=, ge=, lt=, le=)  # fmt: skip


def config_error(error: ValidationError, path: str, root: type[BaseModel]) -> ConfigError:
    """The first problem pydantic found, in the loader's words: `<file>: <what> '<key>' ...`."""
    first = error.errors()[0]
    original = (first.get("ctx") or {}).get("error")
    if isinstance(original, ConfigError):  # a cross-field rule: already worded
        return original
    loc = [part for part in first["loc"] if part not in ("function-after[_cross_field_rules()]",)]
    key = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".")
    kind, value = first["type"], first.get("input")
    if kind == "extra_forbidden":
        allowed = sorted(_model_at(root, loc[:-1]).model_fields)
        return ConfigError(f"{path}: unknown key '{key}' (allowed here: {', '.join(allowed)})")
    if kind == "missing":
        return ConfigError(f"{path}: missing required key '{key}'")
    if kind in TYPE_NAMES:
        return ConfigError(f"{path}: '{key}' must be {TYPE_NAMES[kind]}, got {type(value).__name__} {value!r}")
    if kind == "literal_error":
        return ConfigError(f"{path}: '{key}' must be one of {first['ctx']['expected']}, got {value!r}")
    if kind in ("model_type", "dict_type", "model_attributes_type"):
        return ConfigError(f"{path}: '{key or '<top>'}' must be a mapping, got {type(value).__name__}")
    if kind in ("list_type", "tuple_type"):
        return ConfigError(f"{path}: '{key}' must be a list, got {type(value).__name__}")
    if kind in BOUNDS:
        op, bound = BOUNDS[kind]
        return ConfigError(f"{path}: '{key}' must be {op} {first['ctx'][bound]:g}, got {value!r}")
    return ConfigError(f"{path}: '{key}': {first['msg']}")


def _model_at(root: type[BaseModel], loc: list) -> type[BaseModel]:
    """The section class at a key path of `root` (for the keys allowed there)."""
    model: type[BaseModel] = root
    for part in loc:
        if isinstance(part, int) or part not in model.model_fields:
            continue
        hint = model.model_fields[part].annotation
        inner = [a for a in typing.get_args(hint) if isinstance(a, type) and issubclass(a, BaseModel)]
        if isinstance(hint, type) and issubclass(hint, BaseModel):
            model = hint
        elif inner:
            model = inner[0]
    return model
