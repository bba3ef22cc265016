"""The pipeline's one typed configuration, loaded from `configs/*.yaml`.

Every section is a frozen pydantic model. Loading is strict: an unknown key, a
missing required key or a value of the wrong type raises `ConfigError` naming
the key and the file. Nothing here reads the environment.
"""

from __future__ import annotations

import os
import re
import typing
import warnings
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, model_validator
from pydantic.json_schema import SkipJsonSchema

from models.features import MISSING_TOKENS, safe_name

ProblemType = Literal["binary_classification", "multiclass_classification", "regression"]


class ConfigError(ValueError):
    """A configuration file that cannot be used as written."""


class Section(BaseModel):
    """A frozen part of the config; unknown keys are errors."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    def replace(self, **changes: Any):
        """A copy with these fields replaced (like dataclasses.replace)."""
        return self.model_copy(update=changes)


class GenerateConfig(Section):
    """Synthetic data written to `data.path` before the run (the project's sample data)."""

    rows: int = 20000
    seed: int = 42
    label_signal: bool = True


# BaseModel has a deprecated `schema()` method; the YAML key is `data.schema` all the same
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message='Field name "schema"', category=UserWarning)

    class DataConfig(Section):
        path: str = ""  # a directory of files (local or gs://); unused for BigQuery
        format: Literal["csv", "json", "parquet", "tfrecord", "bigquery"] = "csv"  # json: JSON lines (*.jsonl)
        query: str | None = None  # BigQuery SQL (format: bigquery), e.g. SELECT * FROM `project.dataset.table`
        schema: str | None = None  # curated schema (ImportSchemaGen); None infers it (SchemaGen)
        personal_columns: tuple[str, ...] = ()  # dropped at ingestion, never stored
        hash_columns: tuple[str, ...] = ()  # personal identifiers replaced at ingestion by a keyed hash ($PII_HASH_KEY)
        key_column: str | None = None  # identifies a row; kept through batch prediction, never a feature
        spans: bool = False  # data arrives as span-<N>/ folders under path; each run reads the newest span
        # drift of the train split against the last data that passed validation (the schema's drift_comparators):
        # stop the run, or report it and go on
        span_drift: Literal["stop", "report"] = "stop"
        generate: GenerateConfig | None = None
        missing_values: tuple[str, ...] = MISSING_TOKENS  # text that means "no value" (pandas' NA strings)


class SplitConfig(Section):
    """Train / eval split: by time where there is a timestamp (eval is the newest rows), else by hash."""

    by: Literal["auto", "time", "hash"] = "auto"  # auto: time with features.timestamp, else hash
    train_fraction: float = 0.8  # time split: the share of rows, oldest first, that train
    train_buckets: int = 4  # hash split: train : eval buckets
    eval_buckets: int = 1

    def by_time(self, timestamp: str | None) -> bool:
        return self.by == "time" or (self.by == "auto" and timestamp is not None)


class FeaturesConfig(Section):
    numeric: tuple[str, ...] = ()
    categorical: tuple[str, ...] = ()  # vocabulary with an OOV bucket
    hashed: dict[str, int] = Field(default_factory=dict)  # column -> hash buckets
    timestamp: str | None = None  # seconds since epoch -> hour and weekday features
    top_k: int = 100
    oov_buckets: int = 1
    buckets: dict[str, int] = Field(default_factory=dict)  # numeric column -> quantile buckets, an extra id feature
    # "a x b" -> hash buckets: a cross of two id features (categorical, hashed, <ts>_hour, <ts>_weekday, <col>_bucket)
    crosses: dict[str, int] = Field(default_factory=dict)
    infer: bool = False  # the columns not listed above (nor label, key, personal, timestamp, exclude) are
    # features too, typed from the data (tables/feature_inference.py)
    exclude: tuple[str, ...] = ()  # columns inference leaves out (e.g. known only after the outcome)

    def inputs(self) -> tuple[str, ...]:
        """Raw columns the model reads, in a stable order."""
        ts = (self.timestamp,) if self.timestamp else ()
        return tuple(self.numeric) + tuple(self.categorical) + tuple(self.hashed) + ts


class TrainerConfig(Section):
    # left out (null), these adapt to the table's rows (models/training.py `training_plan`): a batch of about
    # 1/20 of the rows (16-256), real epochs with early stopping, the whole eval split each epoch
    train_steps: int | None = None
    eval_steps: int | None = None
    batch_size: int | None = None
    hidden_units: tuple[int, ...] = (64, 32)
    learning_rate: float = 0.003
    embedding_dim: int = 8
    dropout: float = 0.0
    l2: float = 0.0
    epochs: int | None = None  # train_steps are spread over this many epochs, each followed by an eval
    early_stopping_patience: int | None = None  # epochs without eval-objective gain before stopping; 0: off
    warm_start: bool = False  # start from the last blessed model's weights (new data, same model)
    # tf.distribute strategy: default (one device), mirrored (local GPUs), multi_worker (a Vertex job's replicas)
    distribution: Literal["default", "mirrored", "multi_worker"] = "default"
    cache_input: bool = True  # keep parsed batches in memory after the first pass (8x the steps/s: make bench-input)
    # class imbalance: balanced weights every class as if equally frequent (the scores are then no longer
    # calibrated probabilities, which the cost-derived decision threshold assumes)
    class_weight: Literal["none", "balanced"] = "none"


class TuningConfig(Section):
    """KerasTuner random search run by the TFX Tuner; the Trainer uses the best trial.

    `max_trials: 0` leaves the Tuner out and the Trainer uses `trainer:` as written.
    """

    max_trials: int = 0
    trial_steps: int = 200
    learning_rate: tuple[float, ...] = (0.001, 0.01)  # [low, high], sampled on a log scale
    hidden_units: tuple[tuple[int, ...], ...] = ((64, 32), (128, 64), (32,))
    embedding_dim: tuple[int, ...] = (4, 8)
    dropout: tuple[float, ...] = ()  # choices; empty: trainer.dropout
    l2: tuple[float, ...] = ()  # choices; empty: trainer.l2


class ScreeningConfig(Section):
    """Leakage and feature selection before Transform (components/feature_screen.py)."""

    leak_power: float | None = None  # a column predicting the label this well (AUC / accuracy / R^2), alone or as a
    # rate or difference with another column, is leakage; null: 0.99 AUC, 0.95 accuracy or R^2 (models/screening.py)
    near_constant: float = 0.99  # share of the most frequent value from which a column carries nothing
    redundant_correlation: float = 0.99  # |r| between two numeric features from which the weaker goes
    keep: tuple[str, ...] = ()  # features kept whatever the screen finds
    max_rows: int = 20000  # rows of the train split screened


class SimplificationConfig(Section):
    """A smaller model distilled from the candidate and compared with it (quality, size, latency)."""

    hidden_units: tuple[int, ...] = (16,)
    embedding_dim: int = 2
    learning_rate: float = 0.005
    alpha: float = 0.7  # weight of the candidate's probabilities in the student's targets (the rest: labels)


class EdgeConfig(Section):
    """TensorFlow Lite files beside the SavedModel (float32 and dynamic-range quantized), compared with it."""

    eval_rows: int = Field(512, ge=1)  # eval rows the TFLite scores are compared on


class FramingConfig(Section):
    """The business problem as config: how a prediction is used, what a wrong one costs, what success is.

    The Evaluator's gate (`evaluation.metric`, `evaluation.lower_bound`) is derived from
    `success_metric` / `success_level`; writing them under `evaluation` too is an error.
    """

    prediction_use: str  # what acts on a prediction, in one sentence
    cost_false_positive: float = 1.0  # cost of acting on a wrong positive, any unit
    cost_false_negative: float = 1.0  # cost of missing a real positive, same unit
    success_metric: str = "AUC"  # the metric the business accepts as its measure of success
    success_level: float = 0.65  # worse than this (below; above for an error metric) the model is not pushed

    @property
    def decision_threshold(self) -> float:
        """The score above which acting costs less than not acting, for calibrated probabilities:
        act when p * cost_fn > (1 - p) * cost_fp, i.e. p > cost_fp / (cost_fp + cost_fn)."""
        return self.cost_false_positive / (self.cost_false_positive + self.cost_false_negative)


class BaselinesConfig(Section):
    """Baselines trained and evaluated in the same run: the candidate must beat the heuristic and the linear
    model by `margin`, and come within `boosted_margin` of the gradient-boosted reference."""

    # on the gating metric, against the linear and heuristic baselines; negative allows the candidate to trail by
    # that much: points of AUC / accuracy, or for an error metric a fraction of the baseline's error (-0.03 = 3 %
    # more RMSE); null: -0.01, or -0.03 for an error metric
    margin: float | None = None
    # against the gradient-boosted reference: the candidate may trail it by this much (AUC / accuracy points; for an
    # error metric, a fraction of the reference's error: -0.03 = 3 % more RMSE); null: -0.01, or -0.03 for an error
    boosted_margin: float | None = None
    linear_learning_rate: float = 0.05  # a linear model takes larger steps than the deep one
    heuristic_feature: str | None = None  # the rule: score 1 when this feature is one of...
    heuristic_values: tuple[str, ...] = ()  # ...these values; no rule: the prior (positive rate)


class FairnessConfig(Section):
    """Largest allowed differences between the groups of each `fairness_features` column, at the decision
    threshold; a model over any of them is not blessed. null: reported, not gated."""

    max_fpr_gap: float | None = None  # highest minus lowest false positive rate
    max_fnr_gap: float | None = None  # highest minus lowest false negative rate
    min_positive_rate_ratio: float | None = None  # lowest / highest positive rate (0.8: the four-fifths rule)
    min_group_size: int = 30  # a rate counts for a group with this many rows in its denominator (eval split)


class EvaluationConfig(Section):
    metric: str = "AUC"  # the metric that gates blessing
    lower_bound: float = 0.65  # absolute floor of a higher-is-better metric, for any model
    upper_bound: float | None = None  # absolute ceiling of a lower-is-better metric (an error)
    max_regression: float = 0.0  # allowed drop against the last blessed model
    slices: tuple[str, ...] = ()  # categorical features: metrics per value, reported
    time_slice: bool = False  # metrics per calendar month of features.timestamp, held to slice_lower_bound
    slice_lower_bound: float | None = None  # the gating metric's floor in every month; None: reported only
    fairness_features: tuple[str, ...] = ()  # sensitive slices: FPR, FNR and positive rate per value
    fairness_thresholds: tuple[float, ...] = (0.5,)  # more thresholds at which those rates are reported
    fairness: FairnessConfig = FairnessConfig()  # the gaps between groups that stop a model (and alert in monitoring)
    # a heuristic, a linear and a gradient-boosted model trained on the same split, to beat; null: none
    baselines: BaselinesConfig | None = BaselinesConfig()


class PipelineConfig(Section):
    name: str
    root: str
    metadata_path: str
    serving_dir: str
    enable_cache: bool = True
    beam_args: tuple[str, ...] = ("--runner=FnApiRunner", "--direct_running_mode=in_memory", "--direct_num_workers=1")


class ServingConfig(Section):
    """The local prediction server (`make serve`), which speaks Vertex AI's predict JSON."""

    host: str = "127.0.0.1"
    port: int = 8080
    max_body_bytes: int = 1_000_000  # larger requests get 413
    max_instances: int = 1000  # per request
    max_batch: int = 512  # rows per model call when requests are batched together
    cache_size: int = 10000  # predictions of repeated rows kept per model version; 0 turns it off
    canary_percent: int = 0  # share of requests for the newest version, the rest to the one before; 0 = newest only
    poll_seconds: float = 2.0  # how often to look for a newly pushed version
    log_path: str = "build/prediction_logs/predictions.jsonl"  # JSON lines, the input of monitoring
    reject_out_of_domain: bool = True  # a categorical value outside the schema's domain is a 400


class RetrainPolicyConfig(Section):
    """When monitoring triggers the training pipeline; any one reason is enough."""

    on_skew: bool = True  # training-serving skew beyond threshold on an important feature
    on_drift: bool = True  # serving drift between windows beyond threshold on an important feature
    important_features: tuple[str, ...] = ()  # empty: every monitored feature
    min_live_metric: float | None = None  # live gating metric below this; None: evaluation.lower_bound
    max_live_error: float | None = None  # an error metric (regression): live value above this; None: upper_bound
    on_bias: bool = True  # a fairness gap over evaluation.fairness's limits on labelled live windows
    min_new_labeled_rows: int = 0  # this many newly labelled rows since the last training; 0: off
    max_model_age_days: float = 0  # retrain on schedule when the served model is older; 0: off


class MonitoringConfig(Section):
    """Skew and drift checks on the prediction log, live evaluation, and the retraining policy."""

    log_path: str | None = None  # default: serving.log_path
    output_dir: str = "build/monitoring"
    exclude: tuple[str, ...] = ()  # features not checked (e.g. a timestamp that moves by nature)
    window_rows: int = 2000  # rows per window, oldest first; drift compares the last two
    min_rows: int = 200  # fewer rows than this in a window: no verdict on it
    skew_linf: float = 0.1  # L-infinity distance, categorical features (TFDV skew_comparator)
    skew_js: float = 0.1  # Jensen-Shannon divergence, numeric features
    drift_linf: float = 0.1
    drift_js: float = 0.1
    sample_rate: float = 0.8  # Vertex AI Model Monitoring request sampling
    monitor_interval_hours: int = 1  # Vertex AI Model Monitoring schedule
    alert_emails: tuple[str, ...] = ()
    retrain: RetrainPolicyConfig = RetrainPolicyConfig()


class StreamingConfig(Section):
    """The streaming prediction pipeline (`make run-stream`): landing folder or Pub/Sub in, files or BigQuery out."""

    landing_dir: str = "build/stream/landing"  # local source: CSV / JSON-lines files renamed into place here
    output_dir: str = "build/stream/out"  # predictions/, errors/, late/, windows/
    window_seconds: float = Field(60.0, gt=0)  # fixed windows of feature statistics (skew and drift)
    poll_seconds: float = Field(1.0, gt=0)  # landing folder and serving dir
    chunk_rows: int = Field(8192, gt=0)  # rows per model call
    min_rows: int = Field(50, gt=0)  # fewer rows in a window: statistics only, no skew or drift verdict
    pubsub_subscription: str | None = None  # projects/<p>/subscriptions/<s>: one JSON event per message
    pubsub_topic: str | None = None  # read from a topic instead (Dataflow makes a subscription)
    bigquery_table: str | None = None  # <project>:<dataset>.<table> for the predictions

    @model_validator(mode="after")
    def _one_source(self) -> StreamingConfig:
        if self.pubsub_subscription and self.pubsub_topic:
            raise ValueError("set pubsub_subscription or pubsub_topic, not both")
        if self.bigquery_table and not re.fullmatch(r"[\w-]+[:.][\w]+\.[\w$-]+", self.bigquery_table):
            raise ValueError(f"bigquery_table {self.bigquery_table!r} is not <project>:<dataset>.<table>")
        return self


class MachineConfig(Section):
    """A Vertex AI CustomJob worker pool (`machineSpec` + `replicaCount`)."""

    machine_type: str = "n1-standard-4"
    replica_count: int = 1
    accelerator_type: str | None = None  # e.g. NVIDIA_TESLA_T4, NVIDIA_L4, TPU_V3
    accelerator_count: int = 0


class DataflowConfig(Section):
    """Runs the Beam components (ExampleGen, StatisticsGen, Transform, Evaluator) on Dataflow."""

    temp_location: str
    region: str | None = None  # defaults to vertex.region
    machine_type: str = "n1-standard-4"
    max_num_workers: int = 4
    subnetwork: str | None = None  # regions/REGION/subnetworks/NAME, needed with a VPC


class ScheduleConfig(Section):
    cron: str  # e.g. "TZ=Europe/Paris 0 3 * * 1"
    max_concurrent_run_count: int = 1
    max_run_count: int | None = None


class VertexConfig(Section):
    """Where and how the compiled pipeline runs on Vertex AI Pipelines (a deployment profile)."""

    project: str
    region: str
    image: str  # REGION-docker.pkg.dev/PROJECT/REPO/IMAGE:TAG, built from the Dockerfile
    service_account: str
    encryption_key: str | None = None  # CMEK: projects/P/locations/L/keyRings/R/cryptoKeys/K
    network: str | None = None  # projects/NUMBER/global/networks/NAME (VPC peering)
    labels: dict[str, str] = Field(default_factory=dict)
    template_repository: str | None = None  # https://REGION-kfp.pkg.dev/PROJECT/REPO
    experiment: str | None = None  # Vertex AI Experiments: each submitted run is logged as a run of it
    training: MachineConfig | None = None  # Trainer as a Vertex AI CustomJob; None runs it in the pipeline step
    tuning: MachineConfig | None = None  # Tuner as a Vertex AI CustomJob; replica_count = parallel trials
    dataflow: DataflowConfig | None = None  # None runs Beam in-process in each step
    schedule: ScheduleConfig | None = None
    image_workdir: str = "/pipeline"  # where the Dockerfile puts the checkout


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
    raw = _with_base(raw, path)
    if overrides:
        raw = deep_merge(raw, overrides)
    raw = _derive_from_framing(raw, path)
    raw["source"] = os.path.abspath(path)
    config = validate(raw, path)
    return _resolve_paths(config, _repo_root(path))


# The metrics that may gate blessing, per problem type, and whether higher is better.
GATING_METRICS: dict[str, dict[str, bool]] = {
    "binary_classification": {"AUC": True, "AUCPrecisionRecall": True, "BinaryAccuracy": True, "Precision": True,
                              "Recall": True},
    "multiclass_classification": {"SparseCategoricalAccuracy": True},
    "regression": {"RootMeanSquaredError": False, "MeanAbsoluteError": False, "MeanSquaredError": False},
}  # fmt: skip


# the name TFMA gives each gating metric in its results
METRIC_KEYS = {"AUC": "auc", "AUCPrecisionRecall": "auc_precision_recall", "BinaryAccuracy": "binary_accuracy",
               "Precision": "precision", "Recall": "recall", "SparseCategoricalAccuracy": "sparse_categorical_accuracy",
               "RootMeanSquaredError": "root_mean_squared_error", "MeanAbsoluteError": "mean_absolute_error",
               "MeanSquaredError": "mean_squared_error"}  # fmt: skip


def default_margin(metric: str) -> float:
    """How far the candidate may trail a baseline when the config does not say: 0.01 points of a higher-is-better
    metric, or 3 % of the baseline's error (within the noise of a small eval split)."""
    return -0.01 if higher_is_better(metric) else -0.03


def higher_is_better(metric: str) -> bool:
    return next(m[metric] for m in GATING_METRICS.values() if metric in m)


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
    if not 0 < split.train_fraction < 1:
        raise ConfigError(f"{path}: 'split.train_fraction' must be between 0 and 1, got {split.train_fraction}")
    if config.data.format == "bigquery" and split.by == "time":
        raise ConfigError(f"{path}: 'split.by: time' is for files; for BigQuery split in the query or use 'hash'")
    if config.data.spans and config.data.format == "bigquery":
        raise ConfigError(f"{path}: 'data.spans' is for files; a BigQuery query selects its own rows")
    t = config.tuning
    if t.max_trials < 0 or len(t.learning_rate) != 2 or not 0 < t.learning_rate[0] < t.learning_rate[1]:
        raise ConfigError(f"{path}: 'tuning.learning_rate' must be [low, high] with 0 < low < high")
    if (config.trainer.epochs or 1) < 1 or (config.trainer.early_stopping_patience or 0) < 0:
        raise ConfigError(f"{path}: 'trainer.epochs' must be >= 1 and 'trainer.early_stopping_patience' >= 0")
    if not t.hidden_units or not t.embedding_dim:
        raise ConfigError(f"{path}: 'tuning.hidden_units' and 'tuning.embedding_dim' need at least one choice")
    _check_vertex(config, path)
    s = config.serving
    if not 0 <= s.canary_percent <= 100:
        raise ConfigError(f"{path}: 'serving.canary_percent' must be between 0 and 100")
    if min(s.max_body_bytes, s.max_instances, s.max_batch) < 1 or s.cache_size < 0 or s.poll_seconds <= 0:
        raise ConfigError(f"{path}: 'serving' sizes and intervals must be positive")
    m = config.monitoring
    if min(m.skew_linf, m.skew_js, m.drift_linf, m.drift_js) <= 0 or not 0 < m.sample_rate <= 1:
        raise ConfigError(f"{path}: 'monitoring' thresholds must be positive and sample_rate in (0, 1]")
    if m.min_rows < 1 or m.window_rows < m.min_rows:
        raise ConfigError(f"{path}: 'monitoring.window_rows' must be at least 'monitoring.min_rows' (>= 1)")
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
    for key, value in gaps.items():
        if value is not None and not 0 <= value <= 1:
            raise ConfigError(f"{path}: 'evaluation.fairness.{key}' must be between 0 and 1, got {value}")
    if any(v is not None for v in gaps.values()) and not e.fairness_features:
        raise ConfigError(f"{path}: 'evaluation.fairness' sets limits but 'evaluation.fairness_features' is empty")
    if any(v is not None for v in gaps.values()) and not e.baselines:
        raise ConfigError(f"{path}: 'evaluation.fairness' limits are checked by the BlessingGate, which runs with "
                          "'evaluation.baselines': set them too")  # fmt: skip
    if fair.min_group_size < 1:
        raise ConfigError(f"{path}: 'evaluation.fairness.min_group_size' must be at least 1")
    f = config.framing
    if f and (f.cost_false_positive <= 0 or f.cost_false_negative <= 0):
        raise ConfigError(f"{path}: 'framing' costs must be positive")
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


def _with_base(raw: dict, path: str, seen: tuple[str, ...] = ()) -> dict:
    """A profile may start with `extends: other.yaml` (relative to itself) and override any key."""
    base_name = raw.pop("extends", None)
    if base_name is None:
        return raw
    base_path = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(path)), base_name))
    if base_path in seen:
        raise ConfigError(f"{path}: 'extends' loops back to {base_path}")
    try:
        with open(base_path) as f:
            base = yaml.safe_load(f)
    except FileNotFoundError:
        raise ConfigError(f"{path}: 'extends' names {base_name}, which does not exist") from None
    if not isinstance(base, dict):
        raise ConfigError(f"{base_path}: expected a mapping at the top level")
    return deep_merge(_with_base(base, base_path, (*seen, base_path)), raw)


_REGION = re.compile(r"^[a-z]+-[a-z]+[0-9]+$")
_PROJECT = re.compile(r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$")
_SERVICE_ACCOUNT = re.compile(r"^[a-z0-9-]+@[a-z0-9-]+\.iam\.gserviceaccount\.com$")
_KMS_KEY = re.compile(r"^projects/[^/]+/locations/[^/]+/keyRings/[^/]+/cryptoKeys/[^/]+$")
_NETWORK = re.compile(r"^projects/[0-9]+/global/networks/[a-z0-9-]+$")
_LABEL = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
_LABEL_VALUE = re.compile(r"^[a-z0-9_-]{0,63}$")


def _check_vertex(config: Config, path: str) -> None:
    """Profile rules, checked before anything is compiled or sent."""
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
    if not _PROJECT.match(v.project):
        raise ConfigError(f"{path}: 'vertex.project' {v.project!r} is not a valid project id")
    if not _REGION.match(v.region):
        raise ConfigError(f"{path}: 'vertex.region' {v.region!r} is not a region such as us-central1")
    tail = v.image.rsplit("/", 1)[-1]
    if "@sha256:" not in tail and ":" not in tail:
        raise ConfigError(f"{path}: 'vertex.image' {v.image!r} has no tag or digest (e.g. ...:v1 or ...@sha256:...)")
    if not _SERVICE_ACCOUNT.match(v.service_account):
        raise ConfigError(
            f"{path}: 'vertex.service_account' {v.service_account!r} is not a service account e-mail "
            "(NAME@PROJECT.iam.gserviceaccount.com)"
        )
    if v.encryption_key and not _KMS_KEY.match(v.encryption_key):
        raise ConfigError(
            f"{path}: 'vertex.encryption_key' must be projects/P/locations/L/keyRings/R/cryptoKeys/K, "
            f"got {v.encryption_key!r}"
        )
    if v.network and not _NETWORK.match(v.network):
        raise ConfigError(
            f"{path}: 'vertex.network' must be projects/PROJECT_NUMBER/global/networks/NAME, got {v.network!r}"
        )
    for key, value in v.labels.items():
        if not _LABEL.match(key) or not _LABEL_VALUE.match(value):
            raise ConfigError(f"{path}: 'vertex.labels' {key}={value!r} is not a valid label (lowercase, digits, _-)")
    if v.experiment is not None and not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,127}", v.experiment):
        raise ConfigError(f"{path}: 'vertex.experiment' {v.experiment!r} must be lowercase letters, digits and -")
    gcs = {"pipeline.root": config.pipeline.root, "pipeline.serving_dir": config.pipeline.serving_dir}
    if config.data.format != "bigquery":
        gcs["data.path"] = config.data.path
    if v.dataflow:
        gcs["vertex.dataflow.temp_location"] = v.dataflow.temp_location
        if v.dataflow.region and not _REGION.match(v.dataflow.region):
            raise ConfigError(f"{path}: 'vertex.dataflow.region' {v.dataflow.region!r} is not a region")
        if v.dataflow.max_num_workers < 1:
            raise ConfigError(f"{path}: 'vertex.dataflow.max_num_workers' must be at least 1")
    for key, value in gcs.items():
        if not value.startswith("gs://"):
            raise ConfigError(f"{path}: '{key}' must be a gs:// path on Vertex AI, got {value!r}")
    for name, machine in (("training", v.training), ("tuning", v.tuning)):
        if machine is not None:
            _check_machine(machine, f"vertex.{name}", path)
    if v.schedule:
        fields = v.schedule.cron.split()
        if fields and fields[0].startswith(("TZ=", "CRON_TZ=")):
            fields = fields[1:]
        if len(fields) != 5:
            raise ConfigError(f"{path}: 'vertex.schedule.cron' {v.schedule.cron!r} must have 5 fields")
        if v.schedule.max_concurrent_run_count < 1:
            raise ConfigError(f"{path}: 'vertex.schedule.max_concurrent_run_count' must be at least 1")


def _check_machine(m: MachineConfig, key: str, path: str) -> None:
    from google.cloud.aiplatform_v1.types import AcceleratorType

    if m.replica_count < 1:
        raise ConfigError(f"{path}: '{key}.replica_count' must be at least 1, got {m.replica_count}")
    if m.accelerator_type is None:
        if m.accelerator_count:
            raise ConfigError(f"{path}: '{key}.accelerator_count' is set but '{key}.accelerator_type' is not")
        return
    known = [a.name for a in AcceleratorType if a.name != "ACCELERATOR_TYPE_UNSPECIFIED"]
    if m.accelerator_type not in known:
        raise ConfigError(
            f"{path}: '{key}.accelerator_type' {m.accelerator_type!r} is not a Vertex AI accelerator "
            f"(e.g. NVIDIA_TESLA_T4, NVIDIA_L4, TPU_V3)"
        )
    if m.accelerator_count < 1:
        raise ConfigError(f"{path}: '{key}.accelerator_type' {m.accelerator_type} needs '{key}.accelerator_count' >= 1")


def _repo_root(config_path: str) -> str:
    """The directory above the `configs/` folder the file is in (at any depth below it)."""
    here = os.path.dirname(os.path.abspath(config_path))
    parts = here.split(os.sep)
    if "configs" in parts:
        return os.sep.join(parts[: len(parts) - 1 - parts[::-1].index("configs")]) or os.sep
    return os.path.dirname(here)


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


def workdir_overrides(workdir: str) -> dict:
    """Config overrides that keep every path of a run under `workdir`."""
    return {
        "data": {"path": os.path.join(workdir, "data")},
        "pipeline": {
            "root": os.path.join(workdir, "pipeline"),
            "metadata_path": os.path.join(workdir, "metadata", "metadata.sqlite"),
            "serving_dir": os.path.join(workdir, "serving"),
        },
    }


def deep_merge(base: dict, extra: dict) -> dict:
    """`extra` over `base`, mapping by mapping; neither input is changed."""
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def validate(raw: dict, path: str) -> Config:
    """`raw` (the merged YAML) as a Config, strictly typed as in JSON (a number where a number is asked,
    lists for tuples); every problem raised as a ConfigError naming the file and the key."""
    import json

    multiclass = raw.get("problem_type") == "multiclass_classification"
    if multiclass and raw.get("label_classes") and raw.get("num_classes") is None:
        raw = {**raw, "num_classes": len(raw["label_classes"])}  # as many classes as it lists
    try:
        return Config.model_validate_json(json.dumps(raw), strict=True, context={"path": path})
    except ValidationError as e:
        raise config_error(e, path) from None


TYPE_NAMES = {"int_type": "int", "int_parsing": "int", "float_type": "float", "float_parsing": "float",
              "string_type": "str", "bool_type": "bool", "bool_parsing": "bool"}  # fmt: skip


def config_error(error: ValidationError, path: str) -> ConfigError:
    """The first problem pydantic found, in the loader's words: `<file>: <what> '<key>' ...`."""
    first = error.errors()[0]
    original = (first.get("ctx") or {}).get("error")
    if isinstance(original, ConfigError):  # a cross-field rule: already worded
        return original
    loc = [part for part in first["loc"] if part not in ("function-after[_cross_field_rules()]",)]
    key = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".")
    kind, value = first["type"], first.get("input")
    if kind == "extra_forbidden":
        allowed = sorted(_model_at(loc[:-1]).model_fields)
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
    return ConfigError(f"{path}: '{key}': {first['msg']}")


def _model_at(loc: list) -> type[BaseModel]:
    """The section class at a key path of Config (for the keys allowed there)."""
    model: type[BaseModel] = Config
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


SCHEMA_FILE = "configs/config.schema.json"


def json_schema() -> dict:
    """The JSON Schema of a config file (`make config-schema`), for editors and checks. No key is required at the
    top: a profile that `extends` a base sets only what it changes (the merged file must be whole)."""
    schema = Config.model_json_schema()
    schema["title"] = "TFX MLOps pipeline config (configs/*.yaml)"
    schema["properties"]["extends"] = {"type": "string", "description": "a base config, relative to this file"}
    schema.pop("required", None)
    return schema


def main(argv: list[str] | None = None) -> int:
    import argparse
    import json

    parser = argparse.ArgumentParser(description="Writes the config's JSON Schema (for editors and checks).")
    parser.add_argument("--out", default=SCHEMA_FILE)
    args = parser.parse_args(argv)
    with open(args.out, "w") as f:
        json.dump(json_schema(), f, indent=2, sort_keys=True)
        f.write("\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main())
