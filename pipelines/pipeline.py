"""`create_pipeline`: the one definition of the training pipeline, for every runner."""

from __future__ import annotations

import hashlib
import json
import os

import tensorflow_data_validation as tfdv
import tensorflow_model_analysis as tfma
from google.protobuf import json_format
from tensorflow_model_analysis.proto import config_pb2 as tfma_config
from tfx import v1 as tfx
from tfx.components import FileBasedExampleGen
from tfx.dsl.components.base import executor_spec

from components import file_example_gen, idempotent_pusher, provenance
from components.blessing_gate import BlessingGate, fairness_settings
from components.feature_screen import FeatureScreen, settings_json
from components.serving_infra_validator import ServingInfraValidator
from components.validation_gate import HISTOGRAM_BUCKETS, DataValidationGate, LatestOrNoneStrategy, SpanDriftCheck
from metadata.mlmd import connection_config
from models import screening
from models.features import FeatureSpec
from models.trainer import SLICE_SIGNATURE, month_name
from settings.code_version import code_commit
from settings.config import GATING_METRICS, Config, MachineConfig, default_margin, higher_is_better

MODEL_CODE_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "models")
PREPROCESSING_FN = "models.preprocessing.preprocessing_fn"
RUN_FN = "models.trainer.run_fn"
TUNER_FN = "models.tuning.tuner_fn"
LINEAR_RUN_FN = "models.baselines.linear_run_fn"
DISTILL_RUN_FN = "models.distill.run_fn"
HEURISTIC_RUN_FN = "models.baselines.heuristic_run_fn"
BOOSTED_RUN_FN = "models.baselines.boosted_run_fn"
TUNING_ARGS_KEY = tfx.extensions.google_cloud_ai_platform.experimental.TUNING_ARGS_KEY
SERVING_SIGNATURE = "serving_default"
# what the Evaluator computes, per problem type (TFMA metrics or tf_keras metric class names)
METRICS = {
    # calibration: mean prediction / mean label (1.0 when scores are calibrated probabilities, which the
    # cost-derived decision threshold assumes); the plots hold the confusion matrices and the reliability curve
    "binary_classification": ("ExampleCount", *GATING_METRICS["binary_classification"], "Calibration",
                              "ConfusionMatrixPlot", "CalibrationPlot"),
    "multiclass_classification": ("ExampleCount", "SparseCategoricalAccuracy", "SparseCategoricalCrossentropy",
                                  "MultiClassConfusionMatrixPlot"),
    "regression": ("ExampleCount", "RootMeanSquaredError", "MeanAbsoluteError", "MeanSquaredError"),
}  # fmt: skip


def direction(metric: str):
    return tfma.MetricDirection.HIGHER_IS_BETTER if higher_is_better(metric) else tfma.MetricDirection.LOWER_IS_BETTER


def create_pipeline(config: Config, runtime_parameters: bool = False) -> tfx.dsl.Pipeline:
    """ExampleGen -> StatisticsGen -> SchemaGen -> ExampleValidator (gated) -> Transform
    -> [Tuner] -> Trainer -> latest blessed model -> Evaluator -> infra validation -> Pusher.

    Args:
        config: the loaded config; `vertex:` (a deployment profile) switches the Trainer
            and Tuner to Vertex AI jobs and Beam to Dataflow where it asks for them.
        runtime_parameters: expose `data_root` and `train_args` as pipeline parameters
            that a run can set (for the compiled Vertex / Kubeflow pipeline).
    """
    example_gen = _example_gen(config, runtime_parameters)
    statistics_gen = tfx.components.StatisticsGen(
        examples=example_gen.outputs["examples"],
        stats_options=tfdv.StatsOptions(num_histogram_buckets=HISTOGRAM_BUCKETS),  # as monitoring compares them
    )
    if config.data.schema:
        schema_gen = tfx.components.ImportSchemaGen(schema_file=config.data.schema)
    else:
        schema_gen = tfx.components.SchemaGen(statistics=statistics_gen.outputs["statistics"], infer_feature_shape=True)
    example_validator = tfx.components.ExampleValidator(
        statistics=statistics_gen.outputs["statistics"], schema=schema_gen.outputs["schema"]
    )
    gate = DataValidationGate(
        anomalies=example_validator.outputs["anomalies"],
        schema=schema_gen.outputs["schema"],
        statistics=statistics_gen.outputs["statistics"],
    )
    # the statistics of the last data that passed: what a new span's drift is measured against
    previous_statistics = tfx.dsl.Resolver(
        strategy_class=tfx.dsl.experimental.LatestArtifactStrategy if config.vertex else LatestOrNoneStrategy,
        statistics=tfx.dsl.Channel(type=tfx.types.standard_artifacts.ExampleStatistics,
                                   producer_component_id="SpanDriftCheck", output_key="accepted_statistics"),
    ).with_id("last_accepted_statistics_resolver")  # fmt: skip
    span_drift = config.data.span_drift
    if runtime_parameters:
        span_drift = tfx.dsl.experimental.RuntimeParameter(name="span_drift", ptype=str, default=span_drift)
    drift_check = SpanDriftCheck(
        statistics=statistics_gen.outputs["statistics"],
        schema=gate.outputs["validated_schema"],
        previous_statistics=previous_statistics.outputs["statistics"],
        span_drift_policy=span_drift,
    )
    schema = gate.outputs["validated_schema"]
    screen = None
    if config.screening:
        screen = FeatureScreen(
            examples=example_gen.outputs["examples"], schema=schema, settings=screen_settings(config)
        )
        schema = screen.outputs["screened_schema"]  # excluded features are DEPRECATED: Transform skips them

    transform = provenance.Transform(
        examples=example_gen.outputs["examples"],
        schema=schema,
        preprocessing_fn=PREPROCESSING_FN,
        custom_config=transform_custom_config(config),
        disable_statistics=True,  # StatisticsGen already profiles the raw data
        force_tf_compat_v1=True,
    )
    transform.add_upstream_node(drift_check)  # drift stops the run before Transform, without being its input
    # with baselines, only the BlessingGate's blessing (all checks passed) makes a model the next baseline
    blessing_source = (
        {"producer_component_id": "BlessingGate", "output_key": "blessing"} if config.evaluation.baselines else {}
    )
    baseline = tfx.dsl.Resolver(
        strategy_class=tfx.dsl.experimental.LatestBlessedModelStrategy,
        model=tfx.dsl.Channel(type=tfx.types.standard_artifacts.Model),
        model_blessing=tfx.dsl.Channel(type=tfx.types.standard_artifacts.ModelBlessing, **blessing_source),
    ).with_id("latest_blessed_model_resolver")
    tuner = _tuner(config, transform) if config.tuning.max_trials else None
    trainer_cls, cloud_config = _trainer_class(config)
    train_args = tfx.proto.TrainArgs(num_steps=config.trainer.train_steps)
    if runtime_parameters:
        train_args = tfx.dsl.experimental.RuntimeParameter(
            name="train_args", ptype=str, default=json_format.MessageToJson(train_args, indent=None)
        )
    trainer = trainer_cls(
        run_fn=RUN_FN,
        examples=transform.outputs["transformed_examples"],
        transform_graph=transform.outputs["transform_graph"],
        schema=schema,
        hyperparameters=tuner.outputs["best_hyperparameters"] if tuner else None,
        base_model=baseline.outputs["model"] if config.trainer.warm_start else None,
        train_args=train_args,
        eval_args=tfx.proto.EvalArgs(num_steps=config.trainer.eval_steps),
        custom_config={**trainer_custom_config(config), "code_commit": code_commit(), **cloud_config},
    ).with_id("Trainer")
    evaluator = tfx.components.Evaluator(
        examples=example_gen.outputs["examples"],
        model=trainer.outputs["model"],
        baseline_model=baseline.outputs["model"],
        eval_config=eval_config(config),
    )
    blessing = evaluator.outputs["blessing"]
    baseline_nodes = []
    if config.evaluation.baselines:
        baseline_nodes = _baselines(config, example_gen, transform, schema, trainer, evaluator)
        blessing = baseline_nodes[-1].outputs["blessing"]
    infra_validator = ServingInfraValidator(
        model=trainer.outputs["model"],
        examples=example_gen.outputs["examples"],
        personal_columns=json.dumps(sorted(config.data.personal_columns)),
    )
    pusher = tfx.components.Pusher(
        custom_executor_spec=executor_spec.ExecutorClassSpec(idempotent_pusher.Executor),
        model=trainer.outputs["model"],
        model_blessing=blessing,
        infra_blessing=infra_validator.outputs["blessing"],
        push_destination=tfx.proto.PushDestination(
            filesystem=tfx.proto.PushDestination.Filesystem(base_directory=config.pipeline.serving_dir)
        ),
    )
    distilled = [_distilled(config, transform, schema, trainer)] if config.simplification else []
    components = [
        previous_statistics, example_gen, statistics_gen, schema_gen, example_validator, gate, drift_check,
        *([screen] if screen else []), transform,
        *([tuner] if tuner else []),
        trainer, *distilled, baseline, evaluator, *baseline_nodes, infra_validator, pusher,
    ]  # fmt: skip
    metadata = (
        connection_config(config.pipeline.metadata_path)
        if config.pipeline.metadata_path and config.vertex is None
        else None
    )
    return tfx.dsl.Pipeline(
        pipeline_name=config.pipeline.name,
        pipeline_root=config.pipeline.root,
        components=components,
        enable_cache=config.pipeline.enable_cache,
        metadata_connection_config=metadata,
        beam_pipeline_args=beam_args(config),
    )


def screen_settings(config: Config) -> str:
    s = config.screening
    settings = screening.Settings(leak_power=s.leak_power, near_constant=s.near_constant,
                                  redundant_correlation=s.redundant_correlation, keep=s.keep, max_rows=s.max_rows)  # fmt: skip
    ignore = [c for c in (config.data.key_column, *config.data.personal_columns) if c]
    return settings_json(
        settings,
        config.label,
        config.problem_type,
        list(config.features.inputs()),
        ignore,
        left_out=list(config.left_out),
    )


def _distilled(config: Config, transform, schema, trainer) -> tfx.components.Trainer:
    """A narrower student trained on the candidate's probabilities, compared with it in the run's output."""
    s = config.simplification
    student = {"hidden_units": list(s.hidden_units), "embedding_dim": s.embedding_dim,
               "learning_rate": s.learning_rate, "alpha": s.alpha}  # fmt: skip
    return tfx.components.Trainer(
        run_fn=DISTILL_RUN_FN,
        examples=transform.outputs["transformed_examples"],
        transform_graph=transform.outputs["transform_graph"],
        schema=schema,
        base_model=trainer.outputs["model"],
        train_args=tfx.proto.TrainArgs(num_steps=config.trainer.train_steps),
        eval_args=tfx.proto.EvalArgs(num_steps=config.trainer.eval_steps),
        custom_config={**trainer_custom_config(config), "student": student},
    ).with_id("DistilledModel")


def _baselines(config: Config, example_gen, transform, schema, trainer, evaluator) -> list:
    """Linear, gradient-boosted and heuristic baselines, an Evaluator against each, and the gate over all."""
    b = config.evaluation.baselines
    common = {
        "examples": transform.outputs["transformed_examples"],
        "transform_graph": transform.outputs["transform_graph"],
        "schema": schema,
        "train_args": tfx.proto.TrainArgs(num_steps=config.trainer.train_steps),
        "eval_args": tfx.proto.EvalArgs(num_steps=config.trainer.eval_steps),
    }
    heuristic_rule = {"feature": b.heuristic_feature, "positive_values": list(b.heuristic_values)}
    linear = tfx.components.Trainer(
        run_fn=LINEAR_RUN_FN,
        custom_config={**trainer_custom_config(config), "linear_learning_rate": b.linear_learning_rate},
        **common,
    ).with_id("LinearBaseline")
    boosted = tfx.components.Trainer(
        run_fn=BOOSTED_RUN_FN, custom_config=trainer_custom_config(config), **common
    ).with_id("BoostedBaseline")
    heuristic = tfx.components.Trainer(
        run_fn=HEURISTIC_RUN_FN, custom_config={**trainer_custom_config(config), "heuristic": heuristic_rule}, **common
    ).with_id("HeuristicBaseline")
    versus = {}
    for name, base in (("Linear", linear), ("Boosted", boosted), ("Heuristic", heuristic)):
        versus[name] = tfx.components.Evaluator(
            examples=example_gen.outputs["examples"],
            model=trainer.outputs["model"],
            baseline_model=base.outputs["model"],
            eval_config=baseline_eval_config(config, boosted=name == "Boosted"),
        ).with_id(f"EvaluatorVs{name}")
    gate = BlessingGate(
        model=trainer.outputs["model"],
        evaluation=evaluator.outputs["blessing"],
        vs_linear=versus["Linear"].outputs["blessing"],
        vs_boosted=versus["Boosted"].outputs["blessing"],
        vs_heuristic=versus["Heuristic"].outputs["blessing"],
        evaluation_result=evaluator.outputs["evaluation"],
        fairness=fairness_settings(
            config.evaluation.fairness_features, config.decision_threshold(), config.evaluation.fairness.model_dump()
        ),
    )
    return [linear, boosted, heuristic, *versus.values(), gate]


def baseline_eval_config(config: Config, boosted: bool = False) -> tfma.EvalConfig:
    """The candidate's gating metric must exceed the baseline's by `baselines.margin` (overall), or the
    gradient-boosted reference's by `baselines.boosted_margin`. A negative margin lets it trail by that much:
    points of a higher-is-better metric; for an error metric, a fraction of the baseline's error. Unset, each
    lets the candidate trail by 0.01 or by 3 % of the error (within the noise of a small eval split)."""
    e = config.evaluation
    higher = higher_is_better(e.metric)
    margin = e.baselines.boosted_margin if boosted else e.baselines.margin
    if margin is None:
        margin = default_margin(e.metric)
    # an error may exceed the baseline's by a fraction of it
    change = {"absolute": {"value": margin}} if higher else {"relative": {"value": -margin}}
    beat = tfma.MetricThreshold(change_threshold=tfma.GenericChangeThreshold(direction=direction(e.metric), **change))
    return tfma.EvalConfig(
        model_specs=[tfma.ModelSpec(signature_name=SERVING_SIGNATURE, label_key=config.label)],
        slicing_specs=[tfma.SlicingSpec()],
        metrics_specs=[tfma.MetricsSpec(metrics=[tfma.MetricConfig(class_name=e.metric, threshold=beat)])],
    )


def _example_gen(config: Config, runtime_parameters: bool):
    if config.data.format == "bigquery":
        return tfx.extensions.google_cloud_big_query.BigQueryExampleGen(
            query=bigquery_query(config), output_config=_split_config(config)
        )
    input_base = config.data.path
    if runtime_parameters:
        input_base = tfx.dsl.experimental.RuntimeParameter(name="data_root", ptype=str, default=input_base)
    fmt = config.data.format
    # only the data files: a span folder may also hold a `_SUCCESS` marker (triggers/)
    pattern = file_example_gen.FILE_PATTERNS[fmt]
    if config.data.spans:
        pattern = "span-{SPAN}/" + pattern  # ExampleGen reads the newest span and records its number
    time_feature = config.features.timestamp if config.split.by_time(config.features.timestamp) else None
    return FileBasedExampleGen(
        input_base=input_base,
        input_config=tfx.proto.Input(splits=[tfx.proto.Input.Split(name="single_split", pattern=pattern)]),
        custom_executor_spec=executor_spec.BeamExecutorSpec(file_example_gen.EXECUTORS[fmt]),
        custom_config=file_example_gen.custom_config(
            config.data.personal_columns,
            time_feature,
            config.split.train_fraction,
            config.data.hash_columns,
            clean=example_cleaning(config),
        ),
        output_config=_split_config(config),
    ).with_id(EXAMPLE_GEN_IDS[fmt])


def example_cleaning(config: Config) -> dict:
    """How ExampleGen makes the rows consistent: missing values, numbers stored as text, a text timestamp and
    text labels (components/file_example_gen.py)."""
    clean = file_example_gen.cleaning_settings(
        numeric=config.features.numeric, timestamp=config.features.timestamp, label=config.label,
        label_classes=config.label_classes,
    )  # fmt: skip
    return {**clean, "missing_values": list(config.data.missing_values)}


EXAMPLE_GEN_IDS = {"csv": "CsvExampleGen", "json": "JsonExampleGen", "parquet": "ParquetExampleGen",
                   "tfrecord": "TFRecordExampleGen", "bigquery": "BigQueryExampleGen"}  # fmt: skip


def bigquery_query(config: Config) -> str:
    """The configured query, with the personal columns removed inside BigQuery."""
    query = config.data.query.strip().rstrip(";")
    if not config.data.personal_columns:
        return query
    dropped = ", ".join(f"`{c}`" for c in sorted(config.data.personal_columns))
    return f"SELECT * EXCEPT({dropped}) FROM ({query})"


def _tuner(config: Config, transform) -> tfx.components.Tuner:
    t = config.tuning
    custom = {
        **trainer_custom_config(config),
        "tuning": {
            "max_trials": t.max_trials,
            "learning_rate": list(t.learning_rate),
            "hidden_units": [list(u) for u in t.hidden_units],
            "embedding_dim": list(t.embedding_dim),
            "dropout": list(t.dropout),
            "l2": list(t.l2),
        },
    }
    tuner_cls = tfx.components.Tuner
    tune_args = None
    v = config.vertex
    if v and v.tuning:
        tuner_cls = tfx.extensions.google_cloud_ai_platform.Tuner
        tune_args = tfx.proto.TuneArgs(num_parallel_trials=v.tuning.replica_count)
        custom.update(vertex_job_config(config, v.tuning, TUNING_ARGS_KEY))
    return tuner_cls(
        tuner_fn=TUNER_FN,
        examples=transform.outputs["transformed_examples"],
        transform_graph=transform.outputs["transform_graph"],
        train_args=tfx.proto.TrainArgs(num_steps=t.trial_steps),
        eval_args=tfx.proto.EvalArgs(num_steps=config.trainer.eval_steps),
        tune_args=tune_args,
        custom_config=custom,
    )


def _trainer_class(config: Config) -> tuple[type, dict]:
    """The stock Trainer, or the Vertex AI one with its CustomJob settings."""
    v = config.vertex
    if v is None or v.training is None:
        return provenance.Trainer, {}
    return provenance.VertexTrainer, vertex_job_config(
        config, v.training, tfx.extensions.google_cloud_ai_platform.TRAINING_ARGS_KEY
    )


def vertex_job_config(config: Config, machine: MachineConfig, args_key: str) -> dict:
    """custom_config entries that make a Trainer or Tuner run as a Vertex AI CustomJob.

    The job spec is Vertex's CustomJob (worker pool 0 is the chief; further replicas go
    to pool 1), run as the profile's service account, on its network, with its CMEK key.
    """
    v = config.vertex
    machine_spec: dict = {"machine_type": machine.machine_type}
    if machine.accelerator_type:
        machine_spec["accelerator_type"] = machine.accelerator_type
        machine_spec["accelerator_count"] = machine.accelerator_count
    container = {"image_uri": v.image}
    pools = [{"machine_spec": machine_spec, "replica_count": 1, "container_spec": container}]
    if machine.replica_count > 1:
        pools.append(
            {"machine_spec": machine_spec, "replica_count": machine.replica_count - 1, "container_spec": container}
        )
    job_spec: dict = {"worker_pool_specs": pools, "service_account": v.service_account}
    if v.network:
        job_spec["network"] = v.network
    job: dict = {"project": v.project, "job_spec": job_spec, "labels": dict(v.labels)}
    if v.encryption_key:
        job["encryption_spec"] = {"kms_key_name": v.encryption_key}
    return {
        tfx.extensions.google_cloud_ai_platform.ENABLE_VERTEX_KEY: True,
        tfx.extensions.google_cloud_ai_platform.VERTEX_REGION_KEY: v.region,
        args_key: job,
    }


DEPENDENCY_FLAGS = ("--extra_package", "--setup_file", "--requirements_file", "--sdk_container_image")


def beam_args(config: Config) -> list[str]:
    """The configured Beam args, or Dataflow's when the profile asks for it."""
    v = config.vertex
    if v is None or v.dataflow is None:
        args = list(config.pipeline.beam_args)
        if v is not None and config.data.format == "bigquery":
            args += [f"--project={v.project}", f"--temp_location={config.pipeline.root}/tmp"]
        if not any(a.startswith(DEPENDENCY_FLAGS) for a in args):
            # Beam runs in the step's own process, where the project is importable. Without a dependency
            # flag, TFX builds a 50 MB sdist of itself into /tmp for every Beam step and never removes it.
            root = v.image_workdir if v is not None else os.path.dirname(MODEL_CODE_DIR)
            args.append(f"--setup_file={root}/setup.py")
        return args
    d = v.dataflow
    args = [
        "--runner=DataflowRunner",
        f"--project={v.project}",
        f"--region={d.region or v.region}",
        f"--temp_location={d.temp_location}",
        f"--machine_type={d.machine_type}",
        f"--max_num_workers={d.max_num_workers}",
        f"--service_account_email={v.service_account}",
        f"--sdk_container_image={v.image}",  # the pipeline image carries the Beam SDK boot
        "--experiments=use_runner_v2",
    ]
    if d.subnetwork:
        args += [f"--subnetwork={d.subnetwork}", "--no_use_public_ips"]
    if v.encryption_key:
        args.append(f"--dataflow_kms_key={v.encryption_key}")
    args += [f"--labels={k}={val}" for k, val in sorted(v.labels.items())]
    return args


def _split_config(config: Config) -> tfx.proto.Output:
    return tfx.proto.Output(
        split_config=tfx.proto.SplitConfig(
            splits=[
                tfx.proto.SplitConfig.Split(name="train", hash_buckets=config.split.train_buckets),
                tfx.proto.SplitConfig.Split(name="eval", hash_buckets=config.split.eval_buckets),
            ]
        )
    )


def transform_custom_config(config: Config) -> dict:
    """What `preprocessing_fn` receives. The code fingerprint makes a change to the model
    code invalidate the cached Transform and Trainer runs."""
    f = config.features
    spec = FeatureSpec(
        label=config.label, numeric=f.numeric, categorical=f.categorical, hashed=f.hashed,
        timestamp=f.timestamp, top_k=f.top_k, oov_buckets=f.oov_buckets, buckets=f.buckets, crosses=f.crosses,
    )  # fmt: skip
    return {"features": spec.to_dict(), "problem_type": config.problem_type, "code_fingerprint": code_fingerprint()}


def trainer_custom_config(config: Config) -> dict:
    """What `run_fn` receives: the Transform settings plus the trainer's own."""
    t = config.trainer
    hparams = {
        "hidden_units": list(t.hidden_units), "learning_rate": t.learning_rate, "embedding_dim": t.embedding_dim,
        "dropout": t.dropout, "l2": t.l2,
    }  # fmt: skip
    return {
        **transform_custom_config(config), "hparams": hparams, "batch_size": t.batch_size, "epochs": t.epochs,
        "early_stopping_patience": t.early_stopping_patience, "decision_threshold": config.decision_threshold(),
        "warm_start": t.warm_start, "distribution": t.distribution, "cache_input": t.cache_input,
        "num_classes": config.num_classes, "class_weight": t.class_weight, "label_classes": list(config.label_classes),
        "edge": config.edge.model_dump() if config.edge else None,
    }  # fmt: skip


def code_fingerprint(directory: str = MODEL_CODE_DIR) -> str:
    """sha256 over the model package's Python sources."""
    digest = hashlib.sha256()
    for name in sorted(os.listdir(directory)):
        if name.endswith(".py"):
            digest.update(name.encode())
            with open(os.path.join(directory, name), "rb") as f:
                digest.update(f.read())
    return digest.hexdigest()[:16]


def eval_config(config: Config) -> tfma.EvalConfig:
    """TFMA config. Overall, the gating metric must clear `lower_bound` and must not drop by more
    than `max_regression` against the last blessed model (ignored for the first model); in each
    calendar month it must clear `slice_lower_bound`. Categorical and fairness slices are reported.
    (A MetricConfig's plain `threshold` would hold every slice to the overall bound.)"""
    e = config.evaluation
    higher = higher_is_better(e.metric)
    bound = {"lower_bound": {"value": e.lower_bound}} if higher else {"upper_bound": {"value": e.upper_bound}}
    allowed_change = -e.max_regression - 1e-10 if higher else e.max_regression + 1e-10
    threshold = tfma.MetricThreshold(
        value_threshold=tfma.GenericValueThreshold(**bound),
        change_threshold=tfma.GenericChangeThreshold(direction=direction(e.metric), absolute={"value": allowed_change}),
    )
    slices = [tfma.SlicingSpec(feature_keys=[f]) for f in dict.fromkeys(e.slices + e.fairness_features)]
    gated = [tfma_config.PerSliceMetricThreshold(slicing_specs=[tfma.SlicingSpec()], threshold=threshold)]
    if e.time_slice:
        month = tfma.SlicingSpec(feature_keys=[month_name(config.features.timestamp)])
        slices.append(month)
        if e.slice_lower_bound is not None:  # months are large and balanced; category values may not be
            gated.append(
                tfma_config.PerSliceMetricThreshold(
                    slicing_specs=[month],
                    threshold=tfma.MetricThreshold(
                        value_threshold=tfma.GenericValueThreshold(lower_bound={"value": e.slice_lower_bound})
                    ),
                )
            )
    t = config.decision_threshold()
    at_threshold = {  # Keras metric arguments
        "BinaryAccuracy": json.dumps({"threshold": t}),
        "Precision": json.dumps({"thresholds": [t]}),
        "Recall": json.dumps({"thresholds": [t]}),
    } if t is not None else {}  # fmt: skip
    metrics = [
        tfma.MetricConfig(
            class_name=m,
            config=at_threshold.get(m),
            per_slice_thresholds=gated if m == e.metric else None,
        )
        for m in METRICS[config.problem_type]
    ]
    if e.fairness_features:  # per group: FPR, FNR and positive rate come from its counts
        counts = json.dumps({"thresholds": config.fairness_thresholds()})
        metrics.append(tfma.MetricConfig(class_name="ConfusionMatrixAtThresholds", config=counts))
    return tfma.EvalConfig(
        # Two specs: the candidate computes the slice features; the baseline (the last blessed model,
        # which may predate that signature) runs `serving_default` in that step instead, so that both
        # models have outputs there: TFMA stores a lone model's outputs without its name, and the
        # slicer then finds no month under "candidate". With no baseline, TFX drops its spec.
        model_specs=[
            tfma.ModelSpec(
                name=tfma.CANDIDATE_KEY,
                signature_name=SERVING_SIGNATURE,
                label_key=config.label,
                preprocessing_function_names=[SLICE_SIGNATURE] if e.time_slice else None,
            ),
            tfma.ModelSpec(
                name=tfma.BASELINE_KEY,
                signature_name=SERVING_SIGNATURE,
                label_key=config.label,
                is_baseline=True,
                preprocessing_function_names=[SERVING_SIGNATURE] if e.time_slice else None,
            ),
        ],
        slicing_specs=[tfma.SlicingSpec(), *slices],
        metrics_specs=[tfma.MetricsSpec(metrics=metrics)],
    )
