"""What a finished run produced, read back from ML Metadata."""

from __future__ import annotations

import dataclasses

from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2
from tfx import v1 as tfx


@dataclasses.dataclass(frozen=True)
class ComponentRun:
    component: str
    state: str
    seconds: float


@dataclasses.dataclass(frozen=True)
class RunSummary:
    run_id: str
    components: tuple[ComponentRun, ...]
    blessed: bool | None
    pushed_model: str | None
    failures: tuple[str, ...] = ()  # the Evaluator's failed thresholds, naming metric and slice

    def component(self, name: str) -> ComponentRun | None:
        return next((c for c in self.components if c.component == name), None)


def open_store(metadata_path: str) -> metadata_store.MetadataStore:
    return metadata_store.MetadataStore(tfx.orchestration.metadata.sqlite_metadata_connection_config(metadata_path))


def latest_run(store: metadata_store.MetadataStore, pipeline_name: str) -> RunSummary:
    """The components, blessing and push of the newest run of `pipeline_name`."""
    newest_first = sorted(store.get_contexts_by_type("pipeline_run"), key=lambda c: -c.create_time_since_epoch)
    run = next((c for c in newest_first if _belongs(store, c, pipeline_name)), None)
    if run is None:
        raise LookupError(f"no run of pipeline '{pipeline_name}' in the metadata store")
    executions = sorted(store.get_executions_by_context(run.id), key=lambda e: e.create_time_since_epoch)
    components = tuple(
        ComponentRun(
            component=_node_id(store, e.id, pipeline_name) or e.type,
            state=metadata_store_pb2.Execution.State.Name(e.last_known_state),
            seconds=(e.last_update_time_since_epoch - e.create_time_since_epoch) / 1000.0,
        )
        for e in executions
    )
    blessed = pushed = None
    failures: tuple[str, ...] = ()
    blessings: dict[str, bool] = {}
    for execution, component in zip(executions, components, strict=True):
        for artifact in _outputs(store, execution.id):
            type_name = store.get_artifact_types_by_id([artifact.type_id])[0].name
            if type_name == "ModelEvaluation":
                prefix = "" if component.component == "Evaluator" else f"{component.component}: "
                failures += tuple(prefix + line for line in validation_failures(artifact.uri))
            if type_name == "ModelBlessing":
                blessings[component.component] = artifact.custom_properties["blessed"].int_value == 1
            if type_name == "PushedModel" and artifact.custom_properties["pushed"].int_value == 1:
                pushed = artifact.custom_properties["pushed_destination"].string_value
    # with baselines, the gate's blessing is the one that counts (every check passed)
    blessed = blessings.get("BlessingGate", blessings.get("Evaluator", blessed))
    return RunSummary(run.name, components, blessed, pushed, failures)


def validation_failures(evaluation_uri: str) -> tuple[str, ...]:
    """One line per failed threshold: the slice, the metric, its value and the threshold."""
    import os

    import tensorflow_model_analysis as tfma

    if not os.path.isdir(evaluation_uri) or not any(n.startswith("validations") for n in os.listdir(evaluation_uri)):
        return ()
    result = tfma.load_validation_result(evaluation_uri)
    lines = []
    for per_slice in result.metric_validations_per_slice:
        where = ", ".join(f"{k.column}={_value(k)}" for k in per_slice.slice_key.single_slice_keys) or "overall"
        for f in per_slice.failures:
            value = f.metric_value.double_value.value
            lines.append(f"[{where}] {f.metric_key.name} = {value:.4f} fails {_threshold(f.metric_threshold)}")
    return tuple(lines)


def _value(key) -> str:
    kind = key.WhichOneof("kind")
    value = getattr(key, kind) if kind else ""
    return value.decode() if isinstance(value, bytes) else str(value)


def _threshold(threshold) -> str:
    if threshold.HasField("value_threshold"):
        return f"lower bound {threshold.value_threshold.lower_bound.value}"
    if threshold.HasField("change_threshold"):
        return f"change vs the baseline model (absolute {threshold.change_threshold.absolute.value:+.4f})"
    return str(threshold).replace("\n", " ")


def _belongs(store, run_context, pipeline_name: str) -> bool:
    executions = store.get_executions_by_context(run_context.id)
    return bool(executions) and any(c.name == pipeline_name for c in store.get_contexts_by_execution(executions[0].id))


def _node_id(store, execution_id: int, pipeline_name: str) -> str | None:
    """The component id, from the execution's `node` context (`<pipeline>.<id>`)."""
    prefix = pipeline_name + "."
    for context in store.get_contexts_by_execution(execution_id):
        if context.name.startswith(prefix):
            return context.name[len(prefix) :]
    return None


def _outputs(store, execution_id: int) -> list:
    events = store.get_events_by_execution_ids([execution_id])
    ids = [e.artifact_id for e in events if e.type == metadata_store_pb2.Event.OUTPUT]
    return store.get_artifacts_by_id(ids) if ids else []
