"""`create_pipeline`: the one definition of the training pipeline, for every runner."""

from __future__ import annotations

import hashlib
import os

import tensorflow_model_analysis as tfma
from tfx import v1 as tfx
from tfx.components import FileBasedExampleGen
from tfx.dsl.components.base import executor_spec

from components import csv_without_personal_data, idempotent_pusher
from components.validation_gate import DataValidationGate
from models.features import FeatureSpec
from pipelines.config import GATING_METRICS, Config

MODEL_CODE_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "models")
PREPROCESSING_FN = "models.preprocessing.preprocessing_fn"
RUN_FN = "models.trainer.run_fn"
SERVING_SIGNATURE = "serving_default"
METRICS = ("ExampleCount", *GATING_METRICS)


def create_pipeline(config: Config) -> tfx.dsl.Pipeline:
    """ExampleGen -> StatisticsGen -> SchemaGen -> ExampleValidator (gated) -> Transform
    -> Trainer -> latest blessed model -> Evaluator -> Pusher, configured by `config`."""
    example_gen = FileBasedExampleGen(
        input_base=config.data.path,
        custom_executor_spec=executor_spec.BeamExecutorSpec(csv_without_personal_data.Executor),
        custom_config=csv_without_personal_data.custom_config(config.data.personal_columns),
        output_config=_split_config(config),
    ).with_id("CsvExampleGen")
    statistics_gen = tfx.components.StatisticsGen(examples=example_gen.outputs["examples"])
    if config.data.schema:
        schema_gen = tfx.components.ImportSchemaGen(schema_file=config.data.schema)
    else:
        schema_gen = tfx.components.SchemaGen(statistics=statistics_gen.outputs["statistics"], infer_feature_shape=True)
    example_validator = tfx.components.ExampleValidator(
        statistics=statistics_gen.outputs["statistics"], schema=schema_gen.outputs["schema"]
    )
    gate = DataValidationGate(anomalies=example_validator.outputs["anomalies"], schema=schema_gen.outputs["schema"])
    schema = gate.outputs["validated_schema"]

    transform = tfx.components.Transform(
        examples=example_gen.outputs["examples"],
        schema=schema,
        preprocessing_fn=PREPROCESSING_FN,
        custom_config=transform_custom_config(config),
        disable_statistics=True,  # StatisticsGen already profiles the raw data
        force_tf_compat_v1=True,
    )
    trainer = tfx.components.Trainer(
        run_fn=RUN_FN,
        examples=transform.outputs["transformed_examples"],
        transform_graph=transform.outputs["transform_graph"],
        schema=schema,
        train_args=tfx.proto.TrainArgs(num_steps=config.trainer.train_steps),
        eval_args=tfx.proto.EvalArgs(num_steps=config.trainer.eval_steps),
        custom_config=trainer_custom_config(config),
    )
    baseline = tfx.dsl.Resolver(
        strategy_class=tfx.dsl.experimental.LatestBlessedModelStrategy,
        model=tfx.dsl.Channel(type=tfx.types.standard_artifacts.Model),
        model_blessing=tfx.dsl.Channel(type=tfx.types.standard_artifacts.ModelBlessing),
    ).with_id("latest_blessed_model_resolver")
    evaluator = tfx.components.Evaluator(
        examples=example_gen.outputs["examples"],
        model=trainer.outputs["model"],
        baseline_model=baseline.outputs["model"],
        eval_config=eval_config(config),
    )
    pusher = tfx.components.Pusher(
        custom_executor_spec=executor_spec.ExecutorClassSpec(idempotent_pusher.Executor),
        model=trainer.outputs["model"],
        model_blessing=evaluator.outputs["blessing"],
        push_destination=tfx.proto.PushDestination(
            filesystem=tfx.proto.PushDestination.Filesystem(base_directory=config.pipeline.serving_dir)
        ),
    )
    components = [
        example_gen, statistics_gen, schema_gen, example_validator, gate,
        transform, trainer, baseline, evaluator, pusher,
    ]  # fmt: skip
    metadata = (
        tfx.orchestration.metadata.sqlite_metadata_connection_config(config.pipeline.metadata_path)
        if config.pipeline.metadata_path
        else None
    )
    return tfx.dsl.Pipeline(
        pipeline_name=config.pipeline.name,
        pipeline_root=config.pipeline.root,
        components=components,
        enable_cache=config.pipeline.enable_cache,
        metadata_connection_config=metadata,
        beam_pipeline_args=list(config.pipeline.beam_args),
    )


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
        timestamp=f.timestamp, top_k=f.top_k, oov_buckets=f.oov_buckets,
    )  # fmt: skip
    return {"features": spec.to_dict(), "code_fingerprint": code_fingerprint()}


def trainer_custom_config(config: Config) -> dict:
    """What `run_fn` receives: the Transform settings plus the trainer's own."""
    t = config.trainer
    hparams = {"hidden_units": list(t.hidden_units), "learning_rate": t.learning_rate, "embedding_dim": t.embedding_dim}
    return {**transform_custom_config(config), "hparams": hparams, "batch_size": t.batch_size}


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
    """TFMA config: the gating metric must clear `lower_bound`, and must not drop by more
    than `max_regression` against the last blessed model (ignored for the first model)."""
    e = config.evaluation
    threshold = tfma.MetricThreshold(
        value_threshold=tfma.GenericValueThreshold(lower_bound={"value": e.lower_bound}),
        change_threshold=tfma.GenericChangeThreshold(
            direction=tfma.MetricDirection.HIGHER_IS_BETTER, absolute={"value": -e.max_regression - 1e-10}
        ),
    )
    return tfma.EvalConfig(
        model_specs=[tfma.ModelSpec(signature_name=SERVING_SIGNATURE, label_key=config.label)],
        slicing_specs=[tfma.SlicingSpec()],
        metrics_specs=[
            tfma.MetricsSpec(
                metrics=[
                    tfma.MetricConfig(class_name=m, threshold=threshold if m == e.metric else None) for m in METRICS
                ]
            )
        ],
    )
