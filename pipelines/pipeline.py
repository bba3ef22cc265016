"""`create_pipeline`: the one definition of the training pipeline, for every runner."""

from __future__ import annotations

import json

import tensorflow_data_validation as tfdv
from google.protobuf import json_format
from tfx import v1 as tfx
from tfx.dsl.components.base import executor_spec

from components import idempotent_pusher, provenance
from components.blessing_gate import BlessingGate, fairness_settings
from components.feature_screen import FeatureScreen, settings_json
from components.leaderboard import Leaderboard
from components.serving_infra_validator import ServingInfraValidator
from components.validation_gate import HISTOGRAM_BUCKETS, DataValidationGate, LatestOrNoneStrategy, SpanDriftCheck
from metadata.mlmd import connection_config
from models import screening
from models.candidate import ATTRIBUTIONS, TEACHER, TFLITE, TUNING, WARM_START, source_fingerprint, trainer_id
from pipelines import ingestion
from pipelines.beam_options import beam_args
from pipelines.custom_configs import trainer_custom_config, transform_custom_config
from pipelines.eval_configs import eval_config, heuristic_margin
from pipelines.runtime import vertex_job_config
from settings.code_version import code_commit
from settings.config import Config
from settings.metrics import METRIC_KEYS, higher_is_better

RUN_FN = "models.trainer.run_fn"
TUNER_FN = "models.tuning.tuner_fn"
DISTILL_RUN_FN = "models.distill.run_fn"
HEURISTIC_RUN_FN = "models.baselines.heuristic_run_fn"
# the built-in candidates' CAPABILITIES (models/network.py, linear.py, boosted.py; a unit test holds them equal)
BUILT_IN_CAPABILITIES = {
    "network": frozenset({TUNING, ATTRIBUTIONS, TEACHER, WARM_START, TFLITE}),
    "linear": frozenset({ATTRIBUTIONS, WARM_START}),
    "boosted": frozenset(),
}
TUNING_ARGS_KEY = tfx.extensions.google_cloud_ai_platform.experimental.TUNING_ARGS_KEY


# what the Evaluator computes, per problem type (TFMA metrics or tf_keras metric class names)
def create_pipeline(config: Config, runtime_parameters: bool = False) -> tfx.dsl.Pipeline:
    """ExampleGen -> StatisticsGen -> SchemaGen -> ExampleValidator (gated) -> Transform -> [Tuner]
    -> a Trainer per candidate (+ the heuristic floor) -> Leaderboard (one TFMA pass: every candidate, the floor
    and the last blessed model) -> BlessingGate -> infra validation of the winner -> Pusher.

    Args:
        config: the loaded config; `vertex:` (a deployment profile) switches the Trainer
            and Tuner to Vertex AI jobs and Beam to Dataflow where it asks for them.
        runtime_parameters: expose `data_root` and `train_args` as pipeline parameters
            that a run can set (for the compiled Vertex / Kubeflow pipeline).
    """
    example_gen = ingestion.example_gen(config, runtime_parameters)
    statistics_gen = tfx.components.StatisticsGen(
        examples=example_gen.outputs["examples"],
        stats_options=tfdv.StatsOptions(num_histogram_buckets=HISTOGRAM_BUCKETS),  # as monitoring compares them
    )
    if config.data.schema:
        schema_gen = tfx.components.ImportSchemaGen(schema_file=config.data.schema)
    else:
        # no fixed shapes: every column is parsed as optional, so a serving row without a number the training
        # rows all had is imputed in the Transform graph, as `tables.schema_proposal.curate` does for curated ones
        schema_gen = tfx.components.SchemaGen(
            statistics=statistics_gen.outputs["statistics"], infer_feature_shape=False
        )
    example_validator = tfx.components.ExampleValidator(
        statistics=statistics_gen.outputs["statistics"], schema=schema_gen.outputs["schema"]
    )
    data_gate = DataValidationGate(
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
        schema=data_gate.outputs["validated_schema"],
        previous_statistics=previous_statistics.outputs["statistics"],
        span_drift_policy=span_drift,
    )
    schema = data_gate.outputs["validated_schema"]
    screen = None
    if config.screening:
        screen = FeatureScreen(
            examples=example_gen.outputs["examples"], schema=schema, settings=screen_settings(config)
        )
        schema = screen.outputs["screened_schema"]  # excluded features are DEPRECATED: Transform skips them

    transform = provenance.Transform(
        examples=example_gen.outputs["examples"],
        schema=schema,
        preprocessing_fn=config.model.preprocessing_fn,
        custom_config=transform_custom_config(config),
        disable_statistics=True,  # StatisticsGen already profiles the raw data
        disable_analyzer_cache=True,  # nothing reads it back (no `analyzer_cache` input): writing it only cost time
        force_tf_compat_v1=True,
    )
    transform.add_upstream_node(drift_check)  # drift stops the run before Transform, without being its input
    # only the BlessingGate's blessing (the leaderboard's winner, every check passed) makes a model the next baseline
    baseline = tfx.dsl.Resolver(
        strategy_class=tfx.dsl.experimental.LatestBlessedModelStrategy,
        model=tfx.dsl.Channel(type=tfx.types.standard_artifacts.Model),
        model_blessing=tfx.dsl.Channel(
            type=tfx.types.standard_artifacts.ModelBlessing, producer_component_id="BlessingGate", output_key="blessing"
        ),
    ).with_id("latest_blessed_model_resolver")
    names = [c.name for c in config.model.candidates]
    tuner = _tuner(config, transform) if config.tuning.max_trials and "network" in names else None
    train_args = tfx.proto.TrainArgs(num_steps=config.trainer.train_steps)
    if runtime_parameters:
        train_args = tfx.dsl.experimental.RuntimeParameter(
            name="train_args", ptype=str, default=json_format.MessageToJson(train_args, indent=None)
        )
    trainers = {c.name: _candidate_trainer(config, c, transform, schema, tuner, baseline, train_args)
                for c in config.model.candidates}  # fmt: skip
    heuristic = _heuristic(config, transform, schema) if config.evaluation.baselines else None
    e = config.evaluation
    settings = {
        "metric": METRIC_KEYS[e.metric], "higher_is_better": higher_is_better(e.metric),
        "heuristic_margin": heuristic_margin(config),
        "fairness": fairness_settings(e.fairness_features, config.decision_threshold(), e.fairness.model_dump()),
        "personal_columns": sorted(config.data.personal_columns),
        "max_eval_rows": e.max_eval_rows,
    }  # fmt: skip
    board = Leaderboard(
        examples=example_gen.outputs["examples"],
        candidates={name: t.outputs["model"] for name, t in trainers.items()},
        heuristic=heuristic.outputs["model"] if heuristic else None,
        baseline_model=baseline.outputs["model"],
        eval_config=json_format.MessageToJson(eval_config(config, names, heuristic is not None), indent=None),
        settings=json.dumps(settings, sort_keys=True),
    ).with_id("Leaderboard")
    gate = BlessingGate(model=board.outputs["model"], evaluation_result=board.outputs["evaluation"])
    infra_validator = ServingInfraValidator(
        model=board.outputs["model"],
        examples=example_gen.outputs["examples"],
        personal_columns=json.dumps(sorted(config.data.personal_columns)),
    )
    pusher = tfx.components.Pusher(
        custom_executor_spec=executor_spec.ExecutorClassSpec(idempotent_pusher.Executor),
        model=board.outputs["model"],
        model_blessing=gate.outputs["blessing"],
        infra_blessing=infra_validator.outputs["blessing"],
        push_destination=tfx.proto.PushDestination(
            filesystem=tfx.proto.PushDestination.Filesystem(base_directory=config.pipeline.serving_dir)
        ),
    )
    teacher = trainers.get("network")
    distilled = [_distilled(config, transform, schema, teacher)] if config.simplification and teacher else []
    components = [
        previous_statistics, example_gen, statistics_gen, schema_gen, example_validator, data_gate, drift_check,
        *([screen] if screen else []), transform,
        *([tuner] if tuner else []),
        *trainers.values(), *distilled, *([heuristic] if heuristic else []), baseline, board, gate,
        infra_validator, pusher,
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


def _candidate_trainer(config: Config, candidate, transform, schema, tuner, baseline, train_args):
    """One candidate's Trainer (`Trainer` for the network, `Trainer_<name>` for the others): the shared `run_fn`
    with the candidate named in its custom_config; the Tuner's best trial goes to a candidate that tunes."""
    caps = candidate_capabilities(candidate)
    trainer_cls, cloud_config = _trainer_class(config)
    custom = {
        **trainer_custom_config(config),
        "candidate": {"name": candidate.name, "module": candidate.module},
        "candidate_source": source_fingerprint(candidate.name, candidate.module),
        "code_commit": code_commit(),
        **cloud_config,
    }
    if config.evaluation.baselines:
        custom["linear_learning_rate"] = config.evaluation.baselines.linear_learning_rate
    return trainer_cls(
        run_fn=RUN_FN,
        examples=transform.outputs["transformed_examples"],
        transform_graph=transform.outputs["transform_graph"],
        schema=schema,
        hyperparameters=tuner.outputs["best_hyperparameters"] if tuner and TUNING in caps else None,
        base_model=baseline.outputs["model"] if config.trainer.warm_start and WARM_START in caps else None,
        train_args=train_args,
        eval_args=tfx.proto.EvalArgs(num_steps=config.trainer.eval_steps),
        custom_config=custom,
    ).with_id(trainer_id(candidate.name))


def candidate_capabilities(candidate) -> frozenset[str]:
    """A built-in's declared capabilities, read without importing TensorFlow here; a forker's module is imported
    (its capabilities decide the Tuner's and the warm start's inputs)."""
    from models import candidate as contract

    if candidate.module is None and candidate.name in BUILT_IN_CAPABILITIES:
        return BUILT_IN_CAPABILITIES[candidate.name]
    return contract.capabilities(contract.load(candidate.name, candidate.module))


def _heuristic(config: Config, transform, schema) -> tfx.components.Trainer:
    """The floor every candidate must beat: a configured rule, or the prior."""
    b = config.evaluation.baselines
    rule = {"feature": b.heuristic_feature, "positive_values": list(b.heuristic_values)}
    return tfx.components.Trainer(
        run_fn=HEURISTIC_RUN_FN,
        examples=transform.outputs["transformed_examples"],
        transform_graph=transform.outputs["transform_graph"],
        schema=schema,
        train_args=tfx.proto.TrainArgs(num_steps=config.trainer.train_steps),
        eval_args=tfx.proto.EvalArgs(num_steps=config.trainer.eval_steps),
        custom_config={**trainer_custom_config(config), "heuristic": rule},
    ).with_id("HeuristicBaseline")


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
