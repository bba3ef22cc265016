"""The config's sections: each a frozen pydantic model whose unknown keys are errors."""

from __future__ import annotations

import re
import warnings
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.json_schema import SkipJsonSchema

from models.features import MISSING_TOKENS

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
        public_table: str | None = None  # a table of datagen/public_tables.py, written to path when path is missing
        missing_values: tuple[str, ...] = MISSING_TOKENS  # text that means "no value" (pandas' NA strings)


class SplitConfig(Section):
    """Train / eval split: by time where there is a timestamp (eval is the newest rows), else by hash."""

    by: Literal["auto", "time", "hash"] = "auto"  # auto: time with features.timestamp, else hash
    train_fraction: float = Field(0.8, gt=0, lt=1)  # time split: the share of rows, oldest first, that train
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
    epochs: int | None = Field(None, ge=1)  # train_steps are spread over this many epochs, each followed by an eval
    early_stopping_patience: int | None = Field(
        None, ge=0
    )  # epochs without eval-objective gain before stopping; 0: off
    warm_start: bool = False  # start from the last blessed model's weights (new data, same model)
    # tf.distribute strategy: default (one device), mirrored (local GPUs), multi_worker (a Vertex job's replicas)
    distribution: Literal["default", "mirrored", "multi_worker"] = "default"
    cache_input: bool = True  # keep parsed batches in memory after the first pass (8x the steps/s: make bench-input)
    # class imbalance: balanced weights every class as if equally frequent (the scores are then no longer
    # calibrated probabilities, which the cost-derived decision threshold assumes)
    class_weight: Literal["none", "balanced"] = "none"
    # seeds every candidate's training and the Tuner's search (weights, shuffling, trees, trials); the data's own
    # seed is data.generate.seed. The same data, config and seed give the same model (make bench-seeds: the spread)
    seed: int = Field(0, ge=0)


class TuningConfig(Section):
    """KerasTuner random search run by the TFX Tuner; the Trainer uses the best trial.

    `max_trials: 0` leaves the Tuner out and the Trainer uses `trainer:` as written.
    """

    max_trials: int = Field(0, ge=0)
    trial_steps: int = 200
    learning_rate: tuple[float, ...] = (0.001, 0.01)  # [low, high], sampled on a log scale
    hidden_units: tuple[tuple[int, ...], ...] = ((64, 32), (128, 64), (32,))
    embedding_dim: tuple[int, ...] = (4, 8)
    dropout: tuple[float, ...] = ()  # choices; empty: trainer.dropout
    l2: tuple[float, ...] = ()  # choices; empty: trainer.l2


class ScreeningConfig(Section):
    """Leakage and feature selection before Transform (components/feature_screen.py)."""

    leak_power: float | None = None  # a column that determines the label this well on held-out rows (AUC / accuracy /
    # R^2), alone or with one other column (difference, ratio, or the two together), is leakage; null: 0.99
    near_constant: float = 0.99  # share of the most frequent value from which a column carries nothing
    redundant_correlation: float = 0.99  # |r| between two numeric features from which the weaker goes
    keep: tuple[str, ...] = ()  # features kept whatever the screen finds
    max_rows: int = 20000  # rows of the train split screened: a uniform sample of all of it, never its head


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
    cost_false_positive: float = Field(1.0, gt=0)  # cost of acting on a wrong positive, any unit
    cost_false_negative: float = Field(1.0, gt=0)  # cost of missing a real positive, same unit
    success_metric: str = "AUC"  # the metric the business accepts as its measure of success
    success_level: float = 0.65  # worse than this (below; above for an error metric) the model is not pushed

    @property
    def decision_threshold(self) -> float:
        """The score above which acting costs less than not acting, for calibrated probabilities:
        act when p * cost_fn > (1 - p) * cost_fp, i.e. p > cost_fp / (cost_fp + cost_fn)."""
        return self.cost_false_positive / (self.cost_false_positive + self.cost_false_negative)


class BaselinesConfig(Section):
    """The heuristic floor, trained and evaluated in the same run: every candidate must beat it by `margin`."""

    # on the gating metric; negative allows a candidate to trail by that much: points of AUC / accuracy, or for an
    # error metric a fraction of the heuristic's error (-0.03 = 3 % more RMSE); null: -0.01, or -0.03 for an error
    margin: float | None = None
    linear_learning_rate: float = 0.05  # the linear candidate takes larger steps than the network
    heuristic_feature: str | None = None  # the rule: score 1 when this feature is one of...
    heuristic_values: tuple[str, ...] = ()  # ...these values; no rule: the prior (positive rate)

    boosted_margin: SkipJsonSchema[float | None] = None  # gone: named in an error, not in the schema

    @model_validator(mode="after")
    def _moved(self) -> BaselinesConfig:
        if self.boosted_margin is not None:
            raise ConfigError("'evaluation.baselines.boosted_margin' is gone: the gradient-boosted trees are a "
                              "candidate on the leaderboard (model.candidates), and the best candidate is pushed")  # fmt: skip
        return self


class CandidateConfig(Section):
    """One model that competes: a built-in (network, boosted, linear) or any importable module with a
    `train(inputs)` function (models/candidate.py, docs/MODELS.md)."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,30}$")  # its name on the leaderboard and in component ids
    module: str | None = Field(None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")

    @model_validator(mode="before")
    @classmethod
    def _from_name(cls, data: Any) -> Any:
        return {"name": data} if isinstance(data, str) else data


class ModelConfig(Section):
    """The candidates that compete on one leaderboard (the best that passes every check is pushed), and the
    preprocessing they share."""

    candidates: tuple[CandidateConfig, ...] = Field(
        (CandidateConfig(name="network"), CandidateConfig(name="boosted"), CandidateConfig(name="linear")),
        min_length=1,
    )
    # the Transform module's preprocessing_fn (dotted path); the default builds it from the (inferred) features
    preprocessing_fn: str = Field("models.preprocessing.preprocessing_fn", pattern=r"^[A-Za-z_][\w.]*\.\w+$")

    @model_validator(mode="after")
    def _unique(self) -> ModelConfig:
        names = [c.name for c in self.candidates]
        if len(set(names)) != len(names):
            raise ConfigError(f"'model.candidates' names a candidate twice: {names}")
        return self


class FairnessConfig(Section):
    """Largest allowed differences between the groups of each `fairness_features` column, at the decision
    threshold; a model over any of them is not blessed. null: reported, not gated."""

    max_fpr_gap: float | None = Field(None, ge=0, le=1)  # highest minus lowest false positive rate
    max_fnr_gap: float | None = Field(None, ge=0, le=1)  # highest minus lowest false negative rate
    min_positive_rate_ratio: float | None = Field(
        None, ge=0, le=1
    )  # lowest / highest positive rate (0.8: the four-fifths rule)
    min_group_size: int = Field(
        30, ge=1
    )  # a rate counts for a group with this many rows in its denominator (eval split)


class EvaluationConfig(Section):
    metric: str = "AUC"  # the metric that gates blessing
    lower_bound: float = 0.65  # absolute floor of a higher-is-better metric, for any model
    upper_bound: float | None = None  # absolute ceiling of a lower-is-better metric (an error)
    max_regression: float = 0.0  # allowed drop against the last blessed model
    slices: tuple[str, ...] = ()  # categorical features: metrics per value, reported
    # metrics per calendar month of features.timestamp, held to slice_lower_bound; null: on when there is a timestamp
    time_slice: bool | None = None
    # eval rows the leaderboard scores: past this, a seeded uniform sample of this many (its size and the gating
    # metric's 95 % interval in the leaderboard); null: every row
    max_eval_rows: int | None = Field(100_000, ge=1000)
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
    # components run at once, each in a process of its own (pipelines/parallel_runner.py; docs/PIPELINE.md,
    # "Local runs"); None: one per core; 1: TFX's LocalDagRunner, one after another in the runner's process
    parallel_components: int | None = Field(default=None, ge=1)
    beam_args: tuple[str, ...] = ("--runner=FnApiRunner", "--direct_running_mode=in_memory", "--direct_num_workers=1")


class ServingConfig(Section):
    """The local prediction server (`make serve`), which speaks Vertex AI's predict JSON."""

    host: str = "127.0.0.1"
    port: int = 8080
    max_body_bytes: int = Field(1_000_000, ge=1)  # larger requests get 413
    max_instances: int = Field(1000, ge=1)  # per request
    max_batch: int = Field(512, ge=1)  # rows per model call when requests are batched together
    cache_size: int = Field(10000, ge=0)  # predictions of repeated rows kept per model version; 0 turns it off
    canary_percent: int = Field(
        0, ge=0, le=100
    )  # share of requests for the newest version, the rest to the one before; 0 = newest only
    poll_seconds: float = Field(2.0, gt=0)  # how often to look for a newly pushed version
    log_path: str = "build/prediction_logs/predictions.jsonl"  # JSON lines, the input of monitoring
    # false: what the model's preprocessing handles is served and counted in the log (an unseen category with
    # an OOV bucket, a missing value it imputes: the serving contract's `features`); true: refused, a 400
    strict_domains: bool = False


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
    min_rows: int = Field(200, ge=1)  # fewer rows than this in a window: no verdict on it
    skew_linf: float = Field(0.1, gt=0)  # L-infinity distance, categorical features (TFDV skew_comparator)
    skew_js: float = Field(0.1, gt=0)  # Jensen-Shannon divergence, numeric features
    drift_linf: float = Field(0.1, gt=0)
    drift_js: float = Field(0.1, gt=0)
    sample_rate: float = Field(0.8, gt=0, le=1)  # Vertex AI Model Monitoring request sampling
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
