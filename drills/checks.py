"""What the drills check after a run: ML Metadata holds nothing a run could misread, and every version
directory a model server can see is a whole copy of the model it names."""

from __future__ import annotations

import os

from ml_metadata.proto import metadata_store_pb2

FINISHED = (metadata_store_pb2.Execution.COMPLETE, metadata_store_pb2.Execution.CACHED)
ACTIVE = (metadata_store_pb2.Execution.NEW, metadata_store_pb2.Execution.RUNNING)


def store_problems(metadata_path: str, pipeline_name: str, local=lambda p: p, allow_active: bool = False) -> list[str]:
    """What in ML Metadata a run could misread: a finished execution with an output that is not LIVE or not
    on disk, a LIVE artifact that no finished execution produced, an execution still NEW or RUNNING.
    `local` maps a recorded path to where it is now (a copied workdir); `allow_active`: right after a kill,
    the killed execution is still RUNNING (the next run marks it CANCELED)."""
    from metadata import mlmd

    store = mlmd.open_store(metadata_path)
    problems = []
    states = {e.id: e.last_known_state for e in store.get_executions()}
    for execution_id, state in states.items():
        if mlmd.node_id(store, execution_id, pipeline_name) is None:
            continue
        name = f"execution {execution_id} ({mlmd.node_id(store, execution_id, pipeline_name)})"
        if state in ACTIVE and not allow_active:
            problems.append(f"{name} is still {metadata_store_pb2.Execution.State.Name(state)}")
        if state in FINISHED:
            for artifact in mlmd.outputs(store, execution_id):
                if artifact.state != metadata_store_pb2.Artifact.LIVE or not os.path.exists(local(artifact.uri)):
                    problems.append(f"{name} finished but its output {artifact.uri} is missing or not LIVE")
    for artifact in store.get_artifacts():
        producer = mlmd.producer(store, artifact.id)
        if artifact.state == metadata_store_pb2.Artifact.LIVE and producer and states.get(producer) not in FINISHED:
            problems.append(f"artifact {artifact.id} ({artifact.uri}) is LIVE but execution {producer} never finished")
    return problems


def served_problems(serving_dir: str, local=lambda p: p) -> list[str]:
    """A version directory that is not a whole copy of the model it names (its source marker)."""
    from components.idempotent_pusher import SOURCE_FILE

    problems = []
    for version in served(serving_dir):
        path = os.path.join(serving_dir, version)
        marker = os.path.join(path, "assets.extra", SOURCE_FILE)
        if not os.path.exists(marker):
            problems.append(f"version {version} has no source marker: a partial push")
            continue
        with open(marker) as f:
            source = local(f.read().strip())
        if os.path.isdir(os.path.join(source, "Format-Serving")):  # a Trainer's Model artifact
            source = os.path.join(source, "Format-Serving")
        if _tree(path, skip=SOURCE_FILE) != _tree(source, skip=SOURCE_FILE):
            problems.append(f"version {version} differs from its source {source}: a partial copy")
    return problems


def served(serving_dir: str) -> list[str]:
    """What a model server sees: the version directories (names that are numbers)."""
    names = os.listdir(serving_dir) if os.path.isdir(serving_dir) else []
    return sorted((n for n in names if n.isdigit()), key=int)


def _tree(root: str, skip: str) -> dict[str, int]:
    return {os.path.relpath(os.path.join(d, n), root): os.path.getsize(os.path.join(d, n))
            for d, _, names in os.walk(root) for n in names if n != skip}  # fmt: skip
