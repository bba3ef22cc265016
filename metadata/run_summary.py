"""What a finished run produced, read back from ML Metadata."""

from __future__ import annotations

import dataclasses
import json

from ml_metadata.proto import metadata_store_pb2

from components.tfma_results import slice_value
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
    failures: tuple[str, ...] = ()  # failed thresholds and comparisons, naming metric and slice, and fairness gaps

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
    blessed = pushed = None
    failures: tuple[str, ...] = ()
    blessings: dict[str, bool] = {}
    for execution, component in zip(executions, components, strict=True):
        for artifact in mlmd.outputs(store, execution.id):
            type_name = mlmd.type_name(store, artifact)
            if type_name == "ModelEvaluation":
                prefix = "" if component.component == "Evaluator" else f"{component.component}: "
                failures += tuple(prefix + line for line in validation_failures(artifact.uri))
            if type_name == "ModelBlessing":
                blessings[component.component] = artifact.custom_properties["blessed"].int_value == 1
                if "failures" in artifact.custom_properties:  # the baseline comparisons; the gate's fairness
                    prefix = "" if component.component == "BlessingGate" else f"{component.component}: "
                    lines = json.loads(artifact.custom_properties["failures"].string_value)
                    failures += tuple(prefix + line for line in lines)
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
        where = ", ".join(f"{k.column}={slice_value(k)}" for k in per_slice.slice_key.single_slice_keys) or "overall"
        for f in per_slice.failures:
            value = f.metric_value.double_value.value
            lines.append(f"[{where}] {f.metric_key.name} = {value:.4f} fails {_threshold(f.metric_threshold)}")
    return tuple(lines)


def _threshold(threshold) -> str:
    if threshold.HasField("value_threshold"):
        bound = threshold.value_threshold
        if bound.HasField("upper_bound"):
            return f"upper bound {bound.upper_bound.value}"
        return f"lower bound {bound.lower_bound.value}"
    if threshold.HasField("change_threshold"):
        return f"change vs the baseline model (absolute {threshold.change_threshold.absolute.value:+.4f})"
    return str(threshold).replace("\n", " ")
