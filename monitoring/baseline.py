"""What the served model was trained and evaluated on, found through ML Metadata lineage.

served version -> its source model (the Pusher's marker) -> Trainer -> Transform ->
the raw examples -> StatisticsGen's statistics of their train split; and the
Evaluator's result for that model (the training-time metric live metrics are
compared with).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from tensorflow_metadata.proto.v0 import statistics_pb2

from components.idempotent_pusher import SOURCE_FILE
from metadata.mlmd import consumers, inputs, outputs, producer
from metadata.mlmd import type_name as _type
from settings.metrics import METRIC_KEYS


@dataclass(frozen=True)
class Baseline:
    model_uri: str  # the Trainer's model artifact
    training_statistics: statistics_pb2.DatasetFeatureStatisticsList  # raw train split
    statistics_uri: str
    evaluation_uri: str | None
    trained_at: float  # seconds since epoch
    candidate: str = "candidate"  # its name in the leaderboard's evaluation


def candidate_name(served_version_dir: str) -> str:
    """The served model's name on the leaderboard (its metadata file), or TFMA's lone-model name."""
    import json

    path = os.path.join(served_version_dir, "assets.extra", "model_metadata.json")
    if not os.path.exists(path):
        return "candidate"
    with open(path) as f:
        return json.load(f).get("candidate", "candidate")


def source_model_uri(served_version_dir: str) -> str:
    with open(os.path.join(served_version_dir, "assets.extra", SOURCE_FILE)) as f:
        return f.read().strip()


def find(store, served_version_dir: str) -> Baseline:
    """The served model's training statistics and evaluation, by lineage."""
    import tensorflow_data_validation as tfdv

    uri = source_model_uri(served_version_dir)
    models = [a for a in store.get_artifacts_by_uri(uri) if _type(store, a) == "Model"]
    if not models:
        raise LookupError(f"model {uri} is not in the metadata store")
    model = models[0]
    trainer = producer(store, model.id)
    examples = None
    for artifact in inputs(store, trainer):
        if _type(store, artifact) == "Examples":  # the transformed examples
            transform = producer(store, artifact.id)
            examples = next((a for a in inputs(store, transform) if _type(store, a) == "Examples"), None)
    if examples is None:
        raise LookupError(f"no raw examples upstream of {uri}")
    statistics = None
    for execution_id in consumers(store, examples.id):
        found = [a for a in outputs(store, execution_id) if _type(store, a) == "ExampleStatistics"]
        if found:
            statistics = found[0]
    if statistics is None:
        raise LookupError(f"no statistics of the examples {examples.uri}")
    evaluation = None
    for execution_id in consumers(store, model.id):  # the leaderboard's pass that ranked it (the newest)
        found = [a for a in outputs(store, execution_id) if _type(store, a) == "ModelEvaluation"]
        if found:
            evaluation = found[0].uri
    stats_path = os.path.join(statistics.uri, "Split-train", "FeatureStats.pb")
    return Baseline(
        model_uri=uri,
        training_statistics=tfdv.load_stats_binary(stats_path),
        statistics_uri=stats_path,
        evaluation_uri=evaluation,
        trained_at=model.create_time_since_epoch / 1000.0,
        candidate=candidate_name(served_version_dir),
    )


def evaluated_metric(evaluation_uri: str | None, metric: str, model: str = "candidate") -> float | None:
    """The gating metric (a class name from config) the leaderboard's pass measured for `model` (the served
    candidate's name) on the eval split, overall."""
    if not evaluation_uri:
        return None
    import tensorflow_model_analysis as tfma

    metric = METRIC_KEYS[metric]
    for metrics in tfma.load_metrics(evaluation_uri):
        if metrics.slice_key.single_slice_keys:
            continue  # only the overall slice
        for kv in metrics.metric_keys_and_values:
            k = kv.key
            if k.name == metric and not k.is_diff and k.model_name in ("", model):
                return kv.value.double_value.value
    return None
