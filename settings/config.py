"""The pipeline's one typed configuration, loaded from `configs/*.yaml`.

Every section is a frozen pydantic model. Loading is strict: an unknown key, a
missing required key or a value of the wrong type raises `ConfigError` naming
the key and the file. Nothing here reads the environment.
"""

from __future__ import annotations

import os
from typing import Any, Literal

import yaml
from pydantic import ValidationError, ValidationInfo, model_validator
from pydantic.json_schema import SkipJsonSchema

from models.features import safe_name
from settings.errors import config_error
from settings.metrics import GATING_METRICS, higher_is_better
from settings.profile_checks import check_profile
from settings.sections import (
    ConfigError,
    DataConfig,
    EdgeConfig,
    EvaluationConfig,
    FeaturesConfig,
    FramingConfig,
    ModelConfig,
    MonitoringConfig,
    PipelineConfig,
    ProblemType,
    ScreeningConfig,
    Section,
    ServingConfig,
    SimplificationConfig,
    SplitConfig,
    StreamingConfig,
    TrainerConfig,
    TuningConfig,
    VertexConfig,
)
from settings.yaml_files import deep_merge, repo_root, with_base


class Config(Section):
    problem_type: ProblemType
    label: str
    data: DataConfig
    features: FeaturesConfig
    pipeline: PipelineConfig
    split: SplitConfig = SplitConfig()
    num_classes: int | None = None  # multiclass: labels are the integers 0 .. num_classes - 1
    # text labels (or numbers other than 0..n-1): the classes in order, mapped to 0..n-1 at ingestion (binary: the
    # second is the positive class); with features.infer, the sorted distinct labels when left empty
    label_classes: tuple[str, ...] = ()
    model: ModelConfig = ModelConfig()
    trainer: TrainerConfig = TrainerConfig()
    tuning: TuningConfig = TuningConfig()
    framing: FramingConfig | None = None
    evaluation: EvaluationConfig = EvaluationConfig()
    simplification: SimplificationConfig | None = None  # None: no distilled model
    edge: EdgeConfig | None = None  # None: no TFLite export
    screening: ScreeningConfig | None = ScreeningConfig()  # null: the configured features go to Transform unscreened
    serving: ServingConfig = ServingConfig()
    monitoring: MonitoringConfig = MonitoringConfig()
    streaming: StreamingConfig = StreamingConfig()
    vertex: VertexConfig | None = None  # a deployment profile (configs/vertex-*.yaml)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"  # JSON logs of every entry point
    source: SkipJsonSchema[str] = ""  # the file this was loaded from
    # set by feature inference: columns that cannot be features, with why
    left_out: SkipJsonSchema[tuple[dict, ...]] = ()

    def decision_threshold(self) -> float | None:
        """From the costs in `framing:`, else 0.5; None where there is no yes/no decision."""
        if self.problem_type != "binary_classification":
            return None
        return self.framing.decision_threshold if self.framing else 0.5

    def fairness_thresholds(self) -> list[float]:
        """Where the group rates are computed: the decision threshold and the reported ones."""
        return sorted({round(t, 6) for t in (*self.evaluation.fairness_thresholds, self.decision_threshold() or 0.5)})

    @model_validator(mode="after")
    def _cross_field_rules(self, info: ValidationInfo) -> Config:
        _check(self, (info.context or {}).get("path", "config"))
        return self


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
    raw = with_base(raw, path)
    if overrides:
        raw = deep_merge(raw, overrides)
    raw = _derive_from_framing(raw, path)
    raw["source"] = os.path.abspath(path)
    config = validate(raw, path)
    return _resolve_paths(config, repo_root(path))


def _check_column_names(config: Config, path: str) -> None:
    """Ingestion names a column as `safe_name` does; with `features.infer` the label, key, personal and feature
    lists are renamed alike, every other place must name a column as it is read."""
    f, d, e, m = config.features, config.data, config.evaluation, config.monitoring
    renamed = [config.label, d.key_column, *d.personal_columns, *d.hash_columns, *f.numeric, *f.categorical,
               *f.hashed, f.timestamp, *f.exclude]  # fmt: skip
    crossed = [c for key in f.crosses if len(key.split(" x ")) == 2 for c in key.split(" x ")]  # else named below
    fixed = [*f.buckets, *crossed, *e.slices, *e.fairness_features,
             *m.exclude, *m.retrain.important_features, *(config.screening.keep if config.screening else ()),
             e.baselines.heuristic_feature if e.baselines else None]  # fmt: skip
    for column in fixed if f.infer else [*renamed, *fixed]:
        if column and safe_name(column.strip()) != column.strip():
            raise ConfigError(f"{path}: column '{column}' is read as '{safe_name(column)}' (characters TensorFlow "
                              "does not take in a name become _): write that")  # fmt: skip


def _check(config: Config, path: str) -> None:
    """Rules that span keys."""
    _check_column_names(config, path)
    inputs = config.features.inputs()
    if not inputs and not config.features.infer:
        raise ConfigError(f"{path}: 'features' names no feature (list them, or set 'features.infer: true')")
    if config.features.infer and config.data.format == "bigquery":
        raise ConfigError(f"{path}: 'features.infer' reads files; for BigQuery list the features")
    duplicates = sorted({n for n in inputs if inputs.count(n) > 1})
    if duplicates:
        raise ConfigError(f"{path}: 'features' lists '{duplicates[0]}' more than once")
    if config.label in inputs:
        raise ConfigError(f"{path}: 'label' column '{config.label}' is also listed under 'features'")
    both = sorted(set(config.data.personal_columns) & set(config.data.hash_columns))
    if both:
        raise ConfigError(f"{path}: '{both[0]}' is in both 'data.personal_columns' (dropped) and 'data.hash_columns'")
    hashed_inputs = sorted(set(config.data.hash_columns) & set(inputs + (config.label,)))
    if hashed_inputs:
        raise ConfigError(f"{path}: hashed column '{hashed_inputs[0]}' cannot be a feature or the label (requests "
                          "would carry the raw value); it can be the key column")  # fmt: skip
    personal = sorted(set(config.data.personal_columns) & set(inputs + (config.label,)))
    if personal:
        raise ConfigError(f"{path}: 'data.personal_columns' entry '{personal[0]}' is used as a feature or label")
    if config.data.format == "bigquery" and not config.data.query:
        raise ConfigError(f"{path}: 'data.format: bigquery' needs 'data.query'")
    if config.data.format != "bigquery" and not config.data.path:
        raise ConfigError(f"{path}: 'data.path' is required for 'data.format: {config.data.format}'")
    _check_feature_engineering(config, path)
    split = config.split
    if split.by == "time" and not config.features.timestamp:
        raise ConfigError(f"{path}: 'split.by: time' needs 'features.timestamp'")
    if config.data.format == "bigquery" and split.by == "time":
        raise ConfigError(f"{path}: 'split.by: time' is for files; for BigQuery split in the query or use 'hash'")
    if config.data.spans and config.data.format == "bigquery":
        raise ConfigError(f"{path}: 'data.spans' is for files; a BigQuery query selects its own rows")
    t = config.tuning
    if len(t.learning_rate) != 2 or not 0 < t.learning_rate[0] < t.learning_rate[1]:
        raise ConfigError(f"{path}: 'tuning.learning_rate' must be [low, high] with 0 < low < high")
    if not t.hidden_units or not t.embedding_dim:
        raise ConfigError(f"{path}: 'tuning.hidden_units' and 'tuning.embedding_dim' need at least one choice")
    _check_vertex(config, path)
    m = config.monitoring
    if m.window_rows < m.min_rows:
        raise ConfigError(f"{path}: 'monitoring.window_rows' must be at least 'monitoring.min_rows'")
    unknown = sorted((set(m.exclude) | set(m.retrain.important_features)) - set(inputs))
    if unknown:
        raise ConfigError(f"{path}: 'monitoring' names '{unknown[0]}', which is not a feature")
    e = config.evaluation
    unknown = sorted(set(e.slices + e.fairness_features) - set(inputs))
    if unknown:
        raise ConfigError(f"{path}: 'evaluation' slices by '{unknown[0]}', which is not a feature")
    b = e.baselines
    if b and b.heuristic_feature and (b.heuristic_feature not in config.features.categorical or not b.heuristic_values):
        raise ConfigError(f"{path}: 'evaluation.baselines.heuristic_feature' must be a categorical feature with values")
    if e.time_slice and not config.features.timestamp:
        raise ConfigError(f"{path}: 'evaluation.time_slice' needs 'features.timestamp'")
    if not all(0 < t < 1 for t in e.fairness_thresholds):
        raise ConfigError(f"{path}: 'evaluation.fairness_thresholds' must be in (0, 1)")
    fair = e.fairness
    gaps = {"max_fpr_gap": fair.max_fpr_gap, "max_fnr_gap": fair.max_fnr_gap,
            "min_positive_rate_ratio": fair.min_positive_rate_ratio}  # fmt: skip
    if any(v is not None for v in gaps.values()) and not e.fairness_features:
        raise ConfigError(f"{path}: 'evaluation.fairness' sets limits but 'evaluation.fairness_features' is empty")
    if any(v is not None for v in gaps.values()) and not e.baselines:
        raise ConfigError(f"{path}: 'evaluation.fairness' limits are checked by the BlessingGate, which runs with "
                          "'evaluation.baselines': set them too")  # fmt: skip
    _check_problem_type(config, path)


def _check_feature_engineering(config: Config, path: str) -> None:
    from models.features import FeatureSpec, cross_members

    f = config.features
    for name, count in f.buckets.items():
        if name not in f.numeric or count < 2:
            raise ConfigError(f"{path}: 'features.buckets' {name}: {count} needs a numeric feature and >= 2 buckets")
    ids = FeatureSpec(label=config.label, numeric=f.numeric, categorical=f.categorical, hashed=f.hashed,
                      timestamp=f.timestamp, buckets=f.buckets).categorical_outputs()  # fmt: skip
    for key, count in f.crosses.items():
        try:
            members = cross_members(key)
        except ValueError as e:
            raise ConfigError(f"{path}: 'features.crosses': {e}") from None
        unknown = [m for m in members if m not in ids]
        if unknown or count < 2:
            raise ConfigError(f"{path}: 'features.crosses' {key!r}: {unknown[0] if unknown else count} is not an id "
                              f"feature ({', '.join(ids)}) or a bucket count >= 2")  # fmt: skip


def _check_problem_type(config: Config, path: str) -> None:
    """What each problem type supports: its metrics, and the parts that only make sense for a
    binary decision (a cost-derived threshold, fairness rates, a rule baseline, distillation)."""
    kind, e = config.problem_type, config.evaluation
    allowed = GATING_METRICS[kind]
    if e.metric not in allowed:
        raise ConfigError(f"{path}: 'evaluation.metric' for {kind} must be one of {list(allowed)}, got {e.metric!r}")
    if not allowed[e.metric] and e.upper_bound is None:
        raise ConfigError(f"{path}: {e.metric} is lower-is-better: set its ceiling ('framing.success_level')")
    if not allowed[e.metric] and e.slice_lower_bound is not None:
        raise ConfigError(f"{path}: 'evaluation.slice_lower_bound' needs a higher-is-better metric, not {e.metric}")
    if config.label_classes:
        want = {"binary_classification": 2, "multiclass_classification": config.num_classes}.get(kind)
        if want is None:
            raise ConfigError(f"{path}: 'label_classes' is only for classification, not {kind}")
        if len(set(config.label_classes)) != len(config.label_classes) or len(config.label_classes) != want:
            raise ConfigError(
                f"{path}: 'label_classes' must list {want} distinct classes, got {list(config.label_classes)}"
            )
    inferred = config.features.infer and not config.label_classes
    if kind == "multiclass_classification" and config.num_classes is None and inferred:
        pass  # features.infer counts the classes in the data
    elif kind == "multiclass_classification" and (config.num_classes is None or config.num_classes < 3):
        raise ConfigError(f"{path}: multiclass_classification needs 'num_classes' of at least 3")
    if kind != "multiclass_classification" and config.num_classes is not None:
        raise ConfigError(f"{path}: 'num_classes' is only for multiclass_classification")
    if kind != "binary_classification":
        binary_only = {
            "evaluation.fairness_features": bool(e.fairness_features),
            "evaluation.fairness": e.fairness.max_fpr_gap is not None
            or e.fairness.max_fnr_gap is not None
            or e.fairness.min_positive_rate_ratio is not None,
            "evaluation.baselines.heuristic_feature": bool(e.baselines and e.baselines.heuristic_feature),
            "simplification": config.simplification is not None,
        }
        for key, used in binary_only.items():
            if used:
                raise ConfigError(f"{path}: '{key}' is only supported for binary_classification, not {kind}")


def _derive_from_framing(raw: dict, path: str) -> dict:
    """The Evaluator's gate comes from `framing:` when there is one, and only from there."""
    framing = raw.get("framing")
    if not isinstance(framing, dict):
        return raw
    evaluation = dict(raw.get("evaluation") or {})
    metric = framing.get("success_metric", FramingConfig.model_fields["success_metric"].default)
    known = {m for metrics in GATING_METRICS.values() for m in metrics}
    bound = "lower_bound" if metric not in known or higher_is_better(metric) else "upper_bound"
    for key, source in (("metric", "success_metric"), (bound, "success_level")):
        if key in evaluation:
            raise ConfigError(f"{path}: 'evaluation.{key}' is derived from 'framing.{source}'; set it there only")
        if source in framing:
            evaluation[key] = framing[source]
    return {**raw, "evaluation": evaluation}


def _check_vertex(config: Config, path: str) -> None:
    """Rules between the profile and the rest of the config; then the profile's own (settings/profile_checks.py)."""
    v = config.vertex
    replicas = v.training.replica_count if v is not None and v.training is not None else 1
    if config.trainer.distribution == "multi_worker" and replicas < 2:
        raise ConfigError(f"{path}: 'trainer.distribution: multi_worker' needs 'vertex.training.replica_count' >= 2")
    if replicas > 1 and config.trainer.distribution != "multi_worker":
        raise ConfigError(
            f"{path}: 'vertex.training.replica_count' is {replicas}, but only 'trainer.distribution: multi_worker' "
            "uses more than one machine"
        )
    if v is not None and config.features.infer:
        raise ConfigError(f"{path}: 'features.infer' reads local data; run `make features CONFIG=...` on a sample "
                          "and write the features into the profile")  # fmt: skip
    if v is None:
        if config.data.format == "bigquery":
            raise ConfigError(f"{path}: 'data.format: bigquery' needs a 'vertex' section (project, region)")
        return
    gcs = {"pipeline.root": config.pipeline.root, "pipeline.serving_dir": config.pipeline.serving_dir}
    if config.data.format != "bigquery":
        gcs["data.path"] = config.data.path
    if v.dataflow:
        gcs["vertex.dataflow.temp_location"] = v.dataflow.temp_location
    check_profile(v, gcs, path)


def _resolve_paths(config: Config, root: str) -> Config:
    def absolute(p: str | None) -> str | None:
        return p if not p or os.path.isabs(p) or "://" in p else os.path.join(root, p)

    data = config.data.replace(path=absolute(config.data.path), schema=absolute(config.data.schema))
    pipe = config.pipeline
    pipe = pipe.replace(
        root=absolute(pipe.root),
        metadata_path=absolute(pipe.metadata_path),
        serving_dir=absolute(pipe.serving_dir),
    )
    serving = config.serving.replace(log_path=absolute(config.serving.log_path))
    m = config.monitoring
    monitoring = m.replace(log_path=absolute(m.log_path) or serving.log_path, output_dir=absolute(m.output_dir))
    st = config.streaming
    streaming = st.replace(landing_dir=absolute(st.landing_dir), output_dir=absolute(st.output_dir))
    return config.replace(data=data, pipeline=pipe, serving=serving, monitoring=monitoring, streaming=streaming)


def validate(raw: dict, path: str) -> Config:
    """`raw` (the merged YAML) as a Config, strictly typed as in JSON (a number where a number is asked,
    lists for tuples); every problem raised as a ConfigError naming the file and the key."""
    import json

    multiclass = raw.get("problem_type") == "multiclass_classification"
    if multiclass and raw.get("label_classes") and raw.get("num_classes") is None:
        raw = {**raw, "num_classes": len(raw["label_classes"])}  # as many classes as it lists
    evaluation = raw.get("evaluation") or {}
    if isinstance(evaluation, dict) and evaluation.get("time_slice") is None:  # monthly slices wherever there is a
        features = raw.get("features")  # timestamp, unless the config turns them off
        timestamp = isinstance(features, dict) and bool(features.get("timestamp"))
        raw = {**raw, "evaluation": {**evaluation, "time_slice": timestamp}}
    try:
        return Config.model_validate_json(json.dumps(raw), strict=True, context={"path": path})
    except ValidationError as e:
        raise config_error(e, path, Config) from None
