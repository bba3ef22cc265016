"""Walking ML Metadata's graph: artifacts, the executions that made or read them, and runs."""

from __future__ import annotations

from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2

INPUT = metadata_store_pb2.Event.INPUT
OUTPUT = metadata_store_pb2.Event.OUTPUT


def connection_config(metadata_path: str) -> metadata_store_pb2.ConnectionConfig:
    """The local SQLite store's connection (TFX's sqlite_metadata_connection_config, without its mkdir: defining a
    pipeline touches no disk; the runner makes the directory)."""
    config = metadata_store_pb2.ConnectionConfig()
    config.sqlite.filename_uri = metadata_path
    config.sqlite.connection_mode = metadata_store_pb2.SqliteMetadataSourceConfig.READWRITE_OPENCREATE
    return config


def open_store(metadata_path: str) -> metadata_store.MetadataStore:
    """The local SQLite store; opening an absent file creates it, so callers check first."""
    return metadata_store.MetadataStore(connection_config(metadata_path))


def type_name(store, artifact) -> str:
    return store.get_artifact_types_by_id([artifact.type_id])[0].name


def producer(store, artifact_id: int) -> int | None:
    """The execution that output the artifact."""
    events = [e for e in store.get_events_by_artifact_ids([artifact_id]) if e.type == OUTPUT]
    return events[0].execution_id if events else None


def consumers(store, artifact_id: int) -> list[int]:
    """The executions that read the artifact."""
    return [e.execution_id for e in store.get_events_by_artifact_ids([artifact_id]) if e.type == INPUT]


def execution_type(store, execution_id: int) -> str:
    """The execution's type: its component's class path (`tfx.components.evaluator.component.Evaluator`)."""
    [execution] = store.get_executions_by_id([execution_id])
    return store.get_execution_types_by_id([execution.type_id])[0].name


def inputs(store, execution_id: int) -> list:
    ids = [e.artifact_id for e in store.get_events_by_execution_ids([execution_id]) if e.type == INPUT]
    return store.get_artifacts_by_id(ids) if ids else []


def outputs(store, execution_id: int) -> list:
    ids = [e.artifact_id for e in store.get_events_by_execution_ids([execution_id]) if e.type == OUTPUT]
    return store.get_artifacts_by_id(ids) if ids else []


def of_type(store, artifacts, name: str) -> list:
    return [a for a in artifacts if type_name(store, a) == name]


def node_id(store, execution_id: int, pipeline_name: str) -> str | None:
    """The component id, from the execution's `node` context (`<pipeline>.<id>`)."""
    prefix = pipeline_name + "."
    for context in store.get_contexts_by_execution(execution_id):
        if context.name.startswith(prefix):
            return context.name[len(prefix) :]
    return None


def runs(store, pipeline_name: str) -> list:
    """The `pipeline_run` contexts of `pipeline_name`, newest first."""
    newest_first = sorted(store.get_contexts_by_type("pipeline_run"), key=lambda c: -c.create_time_since_epoch)
    return [c for c in newest_first if _belongs(store, c, pipeline_name)]


def _belongs(store, run_context, pipeline_name: str) -> bool:
    executions = store.get_executions_by_context(run_context.id)
    return bool(executions) and any(c.name == pipeline_name for c in store.get_contexts_by_execution(executions[0].id))


def property_value(artifact, name: str):
    """A property or custom property of an artifact or execution, as a plain value (None if unset)."""
    for props in (artifact.properties, artifact.custom_properties):
        if name in props:
            value = props[name]
            kind = value.WhichOneof("value")
            if kind == "proto_value" or kind is None:
                return None
            return getattr(value, kind)
    return None


def abandon_unfinished(store, pipeline_name: str, reason: str) -> list[int]:
    """Marks the pipeline's executions still NEW or RUNNING as CANCELED, with `reason`; their ids. Only
    for a caller that holds the run lock: then no live run owns them (they belong to a killed one)."""
    active = (metadata_store_pb2.Execution.NEW, metadata_store_pb2.Execution.RUNNING)
    stale = [e for e in store.get_executions() if e.last_known_state in active]
    stale = [e for e in stale if node_id(store, e.id, pipeline_name) is not None]
    for execution in stale:
        execution.last_known_state = metadata_store_pb2.Execution.CANCELED
        execution.custom_properties["abandoned"].string_value = reason
    if stale:
        store.put_executions(stale)
    return [e.id for e in stale]
