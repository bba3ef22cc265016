"""The pipeline's one typed configuration, loaded from `configs/*.yaml`.

Every section is a frozen dataclass. Loading is strict: an unknown key, a
missing required key or a value of the wrong type raises `ConfigError` naming
the key and the file. Nothing here reads the environment.
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Literal

import yaml

ProblemType = Literal["binary_classification"]


class ConfigError(ValueError):
    """A configuration file that cannot be used as written."""


@dataclass(frozen=True)
class GenerateConfig:
    """Synthetic data written to `data.path` before the run (the project's sample data)."""

    rows: int = 20000
    seed: int = 42
    label_signal: bool = True


@dataclass(frozen=True)
class DataConfig:
    path: str
    format: Literal["csv"] = "csv"
    schema: str | None = None  # curated schema (ImportSchemaGen); None infers it (SchemaGen)
    personal_columns: tuple[str, ...] = ()  # dropped at ingestion, never stored
    generate: GenerateConfig | None = None


@dataclass(frozen=True)
class SplitConfig:
    train_buckets: int = 4
    eval_buckets: int = 1


@dataclass(frozen=True)
class FeaturesConfig:
    numeric: tuple[str, ...] = ()
    categorical: tuple[str, ...] = ()  # vocabulary with an OOV bucket
    hashed: dict[str, int] = field(default_factory=dict)  # column -> hash buckets
    timestamp: str | None = None  # seconds since epoch -> hour and weekday features
    top_k: int = 100
    oov_buckets: int = 1

    def inputs(self) -> tuple[str, ...]:
        """Raw columns the model reads, in a stable order."""
        ts = (self.timestamp,) if self.timestamp else ()
        return tuple(self.numeric) + tuple(self.categorical) + tuple(self.hashed) + ts


@dataclass(frozen=True)
class TrainerConfig:
    train_steps: int = 1000
    eval_steps: int = 100
    batch_size: int = 128
    hidden_units: tuple[int, ...] = (64, 32)
    learning_rate: float = 0.003
    embedding_dim: int = 8


@dataclass(frozen=True)
class EvaluationConfig:
    metric: str = "AUC"  # the metric that gates blessing
    lower_bound: float = 0.65  # absolute threshold for any model
    max_regression: float = 0.0  # allowed drop against the last blessed model


@dataclass(frozen=True)
class PipelineConfig:
    name: str
    root: str
    metadata_path: str
    serving_dir: str
    enable_cache: bool = True
    beam_args: tuple[str, ...] = ("--runner=FnApiRunner", "--direct_running_mode=in_memory", "--direct_num_workers=1")


@dataclass(frozen=True)
class Config:
    problem_type: ProblemType
    label: str
    data: DataConfig
    features: FeaturesConfig
    pipeline: PipelineConfig
    split: SplitConfig = SplitConfig()
    trainer: TrainerConfig = TrainerConfig()
    evaluation: EvaluationConfig = EvaluationConfig()
    source: str = ""  # the file this was loaded from

    def replace(self, **sections: Any) -> Config:
        """Returns a copy with whole sections or top-level values replaced."""
        return dataclasses.replace(self, **sections)


def load_config(path: str, overrides: dict[str, Any] | None = None) -> Config:
    """Loads and validates `path`; relative paths in it resolve against the repository root.

    Args:
        path: a YAML file under `configs/`.
        overrides: nested values merged over the file's before validation,
            e.g. `{"trainer": {"train_steps": 10}}`.
    """
    try:
        with open(path) as f:
            raw = yaml.safe_load(f)
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    if overrides:
        raw = deep_merge(raw, overrides)
    raw["source"] = os.path.abspath(path)
    config = _build(Config, raw, path, "")
    _check(config, path)
    return _resolve_paths(config, _repo_root(path))


GATING_METRICS = ("AUC", "AUCPrecisionRecall", "BinaryAccuracy", "Precision", "Recall")


def _check(config: Config, path: str) -> None:
    """Rules that span keys."""
    inputs = config.features.inputs()
    if not inputs:
        raise ConfigError(f"{path}: 'features' names no feature")
    duplicates = sorted({n for n in inputs if inputs.count(n) > 1})
    if duplicates:
        raise ConfigError(f"{path}: 'features' lists '{duplicates[0]}' more than once")
    if config.label in inputs:
        raise ConfigError(f"{path}: 'label' column '{config.label}' is also listed under 'features'")
    personal = sorted(set(config.data.personal_columns) & set(inputs + (config.label,)))
    if personal:
        raise ConfigError(f"{path}: 'data.personal_columns' entry '{personal[0]}' is used as a feature or label")
    if config.evaluation.metric not in GATING_METRICS:
        raise ConfigError(
            f"{path}: 'evaluation.metric' must be one of {list(GATING_METRICS)}, got {config.evaluation.metric!r}"
        )


def _repo_root(config_path: str) -> str:
    return os.path.dirname(os.path.dirname(os.path.abspath(config_path)))


def _resolve_paths(config: Config, root: str) -> Config:
    def absolute(p: str | None) -> str | None:
        return p if p is None or os.path.isabs(p) or "://" in p else os.path.join(root, p)

    data = dataclasses.replace(config.data, path=absolute(config.data.path), schema=absolute(config.data.schema))
    pipe = config.pipeline
    pipe = dataclasses.replace(
        pipe,
        root=absolute(pipe.root),
        metadata_path=absolute(pipe.metadata_path),
        serving_dir=absolute(pipe.serving_dir),
    )
    return dataclasses.replace(config, data=data, pipeline=pipe)


def deep_merge(base: dict, extra: dict) -> dict:
    """`extra` over `base`, mapping by mapping; neither input is changed."""
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def _build(cls: type, raw: Any, path: str, where: str) -> Any:
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: '{where or '<top>'}' must be a mapping, got {type(raw).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        key = f"{where}.{unknown[0]}" if where else unknown[0]
        raise ConfigError(f"{path}: unknown key '{key}' (allowed here: {', '.join(sorted(fields))})")
    values = {}
    for name, f in fields.items():
        key = f"{where}.{name}" if where else name
        if name not in raw:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ConfigError(f"{path}: missing required key '{key}'")
            continue
        values[name] = _coerce(hints[name], raw[name], path, key)
    return cls(**values)


def _coerce(hint: Any, value: Any, path: str, key: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _coerce(inner, value, path, key)
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, path, key)
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"{path}: '{key}' must be one of {list(args)}, got {value!r}")
        return value
    if origin is tuple:
        if not isinstance(value, list):
            raise ConfigError(f"{path}: '{key}' must be a list, got {type(value).__name__}")
        return tuple(_coerce(args[0], v, path, f"{key}[{i}]") for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: '{key}' must be a mapping, got {type(value).__name__}")
        return {_coerce(args[0], k, path, key): _coerce(args[1], v, path, f"{key}.{k}") for k, v in value.items()}
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, hint) or (hint is int and isinstance(value, bool)):
        raise ConfigError(f"{path}: '{key}' must be {hint.__name__}, got {type(value).__name__} {value!r}")
    return value
