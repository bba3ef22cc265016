"""What the served model was trained and evaluated on, found through ML Metadata lineage.

served version -> its source model (the Pusher's marker) -> Trainer -> Transform ->
the raw examples -> StatisticsGen's statistics of their train split; and the
Evaluator's result for that model (the training-time metric live metrics are
compared with).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from ml_metadata.proto import metadata_store_pb2
from tensorflow_metadata.proto.v0 import statistics_pb2

from components.idempotent_pusher import SOURCE_FILE

INPUT = metadata_store_pb2.Event.INPUT
OUTPUT = metadata_store_pb2.Event.OUTPUT


@dataclass(frozen=True)
class Baseline:
    model_uri: str  # the Trainer's model artifact
    training_statistics: statistics_pb2.DatasetFeatureStatisticsList  # raw train split
    statistics_uri: str
    evaluation_uri: str | None
    trained_at: float  # seconds since epoch


def source_model_uri(served_version_dir: str) -> str:
    with open(os.path.join(served_version_dir, "assets.extra", SOURCE_FILE)) as f:
        return f.read().strip()


def _producer(store, artifact_id: int) -> int | None:
    events = [e for e in store.get_events_by_artifact_ids([artifact_id]) if e.type == OUTPUT]
    return events[0].execution_id if events else None


def _inputs(store, execution_id: int) -> list:
    ids = [e.artifact_id for e in store.get_events_by_execution_ids([execution_id]) if e.type == INPUT]
    return store.get_artifacts_by_id(ids)


def _consumers(store, artifact_id: int) -> list[int]:
    return [e.execution_id for e in store.get_events_by_artifact_ids([artifact_id]) if e.type == INPUT]


def _outputs(store, execution_id: int) -> list:
    ids = [e.artifact_id for e in store.get_events_by_execution_ids([execution_id]) if e.type == OUTPUT]
    return store.get_artifacts_by_id(ids)


def _type(store, artifact) -> str:
    return store.get_artifact_types_by_id([artifact.type_id])[0].name


def find(store, served_version_dir: str) -> Baseline:
    """The served model's training statistics and evaluation, by lineage."""
    import tensorflow_data_validation as tfdv

    uri = source_model_uri(served_version_dir)
    models = [a for a in store.get_artifacts_by_uri(uri) if _type(store, a) == "Model"]
    if not models:
        raise LookupError(f"model {uri} is not in the metadata store")
    model = models[0]
    trainer = _producer(store, model.id)
    examples = None
    for artifact in _inputs(store, trainer):
        if _type(store, artifact) == "Examples":  # the transformed examples
            transform = _producer(store, artifact.id)
            examples = next((a for a in _inputs(store, transform) if _type(store, a) == "Examples"), None)
    if examples is None:
        raise LookupError(f"no raw examples upstream of {uri}")
    statistics = None
    for execution_id in _consumers(store, examples.id):
        found = [a for a in _outputs(store, execution_id) if _type(store, a) == "ExampleStatistics"]
        if found:
            statistics = found[0]
    if statistics is None:
        raise LookupError(f"no statistics of the examples {examples.uri}")
    evaluation = None
    for execution_id in _consumers(store, model.id):
        found = [a for a in _outputs(store, execution_id) if _type(store, a) == "ModelEvaluation"]
        if found:
            evaluation = found[0].uri
    stats_path = os.path.join(statistics.uri, "Split-train", "FeatureStats.pb")
    return Baseline(
        model_uri=uri,
        training_statistics=tfdv.load_stats_binary(stats_path),
        statistics_uri=stats_path,
        evaluation_uri=evaluation,
        trained_at=model.create_time_since_epoch / 1000.0,
    )


# TFMA stores a Keras metric under its instance name
METRIC_NAMES = {"AUC": "auc", "AUCPrecisionRecall": "auc_precision_recall", "BinaryAccuracy": "binary_accuracy",
                "Precision": "precision", "Recall": "recall"}  # fmt: skip


def evaluated_metric(evaluation_uri: str | None, metric: str) -> float | None:
    """The gating metric (a class name from config) the Evaluator measured on the eval split, overall."""
    if not evaluation_uri:
        return None
    import tensorflow_model_analysis as tfma

    metric = METRIC_NAMES[metric]
    for metrics in tfma.load_metrics(evaluation_uri):
        if metrics.slice_key.single_slice_keys:
            continue  # only the overall slice
        for kv in metrics.metric_keys_and_values:
            k = kv.key
            if k.name == metric and not k.is_diff and k.model_name in ("", "candidate"):
                return kv.value.double_value.value
    return None
