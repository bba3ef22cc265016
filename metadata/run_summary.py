"""What a finished run produced, read back from ML Metadata."""

from __future__ import annotations

import dataclasses
import json

from ml_metadata.proto import metadata_store_pb2

from metadata import mlmd


@dataclasses.dataclass(frozen=True)
class ComponentRun:
    component: str
    state: str
    seconds: float
    started: float = 0.0  # epoch seconds, from ML Metadata
    finished: float = 0.0


@dataclasses.dataclass(frozen=True)
class RunSummary:
    run_id: str
    components: tuple[ComponentRun, ...]
    blessed: bool | None
    pushed_model: str | None
    failures: tuple[str, ...] = ()  # why nothing was blessed: each candidate's failed checks, named
    winner: str | None = None  # the leaderboard's winner (the candidate the gate blessed)
    leaderboard: tuple[dict, ...] = ()  # models.leaderboard.Standing fields, best first
    strong: tuple[dict, ...] = ()  # features the screen kept that predict the label very well: {column, power}
    rows_without_label: int = 0  # rows ExampleGen left out for want of a label

    def component(self, name: str) -> ComponentRun | None:
        return next((c for c in self.components if c.component == name), None)


def latest_run(store, pipeline_name: str) -> RunSummary:
    """The components, blessing and push of the newest run of `pipeline_name`."""
    runs = mlmd.runs(store, pipeline_name)
    if not runs:
        raise LookupError(f"no run of pipeline '{pipeline_name}' in the metadata store")
    return summarize(store, runs[0], pipeline_name)


def summarize(store, run, pipeline_name: str) -> RunSummary:
    """The components, blessing and push of one `pipeline_run` context."""
    executions = sorted(store.get_executions_by_context(run.id), key=lambda e: e.create_time_since_epoch)
    components = tuple(
        ComponentRun(
            component=mlmd.node_id(store, e.id, pipeline_name) or e.type,
            state=metadata_store_pb2.Execution.State.Name(e.last_known_state),
            seconds=(e.last_update_time_since_epoch - e.create_time_since_epoch) / 1000.0,
            started=e.create_time_since_epoch / 1000.0,
            finished=e.last_update_time_since_epoch / 1000.0,
        )
        for e in executions
    )
    blessed = pushed = winner = None
    standings: tuple[dict, ...] = ()
    failures: tuple[str, ...] = ()
    strong: tuple[dict, ...] = ()
    blessings: dict[str, bool] = {}
    rows_without_label = 0
    for execution, component in zip(executions, components, strict=True):
        for artifact in mlmd.outputs(store, execution.id):
            type_name = mlmd.type_name(store, artifact)
            if type_name == "ModelBlessing":
                blessings[component.component] = artifact.custom_properties["blessed"].int_value == 1
                if "failures" in artifact.custom_properties:  # the leaderboard's reasons, per candidate
                    failures += tuple(json.loads(artifact.custom_properties["failures"].string_value))
                if "leaderboard" in artifact.custom_properties:
                    board = json.loads(artifact.custom_properties["leaderboard"].string_value)
                    winner, standings = board["winner"], tuple(board["standings"])
            if type_name == "mlops_artifacts.FeatureScreening" and "strong" in artifact.custom_properties:
                strong = tuple(json.loads(artifact.custom_properties["strong"].string_value))
            if type_name == "Examples":  # ExampleGen's count (components/example_cleaning.py ROWS_WITHOUT_LABEL)
                rows_without_label += int(mlmd.property_value(artifact, "rows_without_label") or 0)
            if type_name == "PushedModel" and artifact.custom_properties["pushed"].int_value == 1:
                pushed = artifact.custom_properties["pushed_destination"].string_value
    blessed = blessings.get("BlessingGate", blessed)
    return RunSummary(run.name, components, blessed, pushed, failures, winner, standings, strong, rows_without_label)
