"""The one blessing the Pusher and the next run's baseline resolver read: the leaderboard found a candidate
that passed every check (models/leaderboard.py), and the model it hands over is that candidate.

The blessing carries what TFX's Evaluator writes (`blessed`, `current_model_id`, `current_model`), so
`LatestBlessedModelStrategy` resolves the pushed model as the next run's baseline, plus the winner's name
(`candidate`), the leaderboard (`leaderboard.json` and the `leaderboard` property) and each failed check
(`failures`, a JSON list; when no candidate qualified, every candidate's reasons, named).

`fairness_failures` is what the leaderboard holds each candidate to: the gaps in FPR, FNR and positive rate
between the groups of each fairness feature, at the decision threshold, on the eval split.
"""

import json
import os

from tfx import types
from tfx.components.evaluator import executor as evaluator_executor
from tfx.dsl.components.base import base_beam_component, executor_spec
from tfx.types import artifact_utils, standard_artifacts, standard_component_specs
from tfx.types.component_spec import ChannelParameter, ComponentSpec
from tfx.utils import io_utils

from components import produced_by
from components.group_rates import group_rates
from models.fairness import FairnessLimits, gaps
from models.leaderboard import Result

RESULT_FILE = "leaderboard.json"  # in the Leaderboard's evaluation, copied into the blessing


def fairness_settings(features, threshold: float | None, limits: dict) -> str:
    """The gate's `fairness` parameter."""
    return json.dumps({"features": list(features), "threshold": threshold, "limits": limits}, sort_keys=True)


def fairness_failures(evaluation_uri: str, settings: str, model: str = "candidate") -> list[str]:
    """One message per gap over its limit of `model`, naming the feature, the groups and the gap."""
    s = json.loads(settings)
    limits = FairnessLimits(**s.get("limits", {}))
    if not s.get("features") or s.get("threshold") is None or not limits.any:
        return []
    found = gaps(group_rates(evaluation_uri, s["features"], model), limits, s["threshold"])
    return [f"fairness: {g.message()}" for g in found if g.violated]


def blessed_model(model, mlmd_ids: bool = True) -> tuple[int, str]:
    """The model the blessing names. Under a TFX launcher (`mlmd_ids`: the ids are ML Metadata's), the winner's own
    Trainer output (`source_model_id`): the next run's baseline is then the same artifact while the winner's Trainer
    is cached, so an unchanged re-run is cached through the leaderboard too (a new copy each run would make every
    re-run evaluate again). Under TFX's Kubeflow V2 entrypoint (Vertex, any KFP v2 backend, `make vertex-local`) the
    gate's input itself: the entrypoint rewrites the id to a resource name, and only the task's inputs have one."""
    source_id = model.get_int_custom_property("source_model_id") if model.has_custom_property("source_model_id") else 0
    if mlmd_ids and source_id and model.has_custom_property("source_model"):
        return source_id, model.get_string_custom_property("source_model")
    return model.id, model.uri


def bless(model, evaluation_result, blessing, mlmd_ids: bool = True) -> bool:
    """Writes the blessing of `model` (the Leaderboard's `model` output) from the leaderboard in
    `evaluation_result`: blessed when the leaderboard has a winner and `model` is that winner. `mlmd_ids`: see
    blessed_model."""
    result = Result.from_dict(json.loads(io_utils.read_string_file(os.path.join(evaluation_result.uri, RESULT_FILE))))
    handed_over = model.get_string_custom_property("candidate")
    ok = result.winner is not None and handed_over == result.winner
    messages = [] if ok else result.failures() or ["no candidate was evaluated"]
    failed = [] if ok else sorted({s.name for s in result.standings if s.failures} or {"leaderboard"})
    io_utils.write_string_file(os.path.join(blessing.uri, RESULT_FILE), json.dumps(result.to_dict()))
    io_utils.write_string_file(os.path.join(blessing.uri, "BLESSED" if ok else "NOT_BLESSED"),
                               json.dumps({"winner": result.winner, "failed": failed, "failures": messages}))  # fmt: skip
    blessing.set_int_custom_property("blessed", 1 if ok else 0)
    blessing.set_string_custom_property("candidate", result.winner or "")
    blessing.set_string_custom_property("leaderboard", json.dumps(result.to_dict()))
    blessing.set_string_custom_property("failures", json.dumps(messages))
    blessed_id, blessed_uri = blessed_model(model, mlmd_ids)
    blessing.set_int_custom_property("current_model_id", blessed_id)
    blessing.set_string_custom_property("current_model", blessed_uri)
    produced_by.stamp(blessing, "BlessingGate", standard_component_specs.BLESSING_KEY)
    print(json.dumps({"component": "BlessingGate", "blessed": ok, "winner": result.winner, "failures": messages}))
    return ok


class Executor(evaluator_executor.Executor):
    """Not TFMA's Evaluator: the class is the Evaluator's so that, on Kubeflow V2 (Vertex), TFX's container
    entrypoint (kubeflow_v2_run_executor) treats the `blessing` as the Evaluator's and rewrites its integer
    `current_model_id` as the model's resource name, which the compiled latest_blessed_model_resolver matches
    on (`name="{{...metadata['current_model_id']}}"`). Locally it stays the MLMD id LatestBlessedModelStrategy
    reads."""

    def Do(self, input_dict, output_dict, exec_properties) -> None:  # noqa: N802 (TFX's name)
        # a TFX launcher (local runs) gives its executors their pipeline node; the Kubeflow V2 entrypoint does not.
        # Not the URI's scheme: a KFP v2 backend may hand out local paths (gcsfuse, `make vertex-local`)
        launched = self._context is not None and self._context.pipeline_node is not None
        bless(artifact_utils.get_single_instance(input_dict["model"]),
              artifact_utils.get_single_instance(input_dict["evaluation_result"]),
              artifact_utils.get_single_instance(output_dict[standard_component_specs.BLESSING_KEY]),
              mlmd_ids=launched)  # fmt: skip


class BlessingGateSpec(ComponentSpec):
    PARAMETERS = {}
    INPUTS = {
        "model": ChannelParameter(type=standard_artifacts.Model),
        "evaluation_result": ChannelParameter(type=standard_artifacts.ModelEvaluation),
    }
    OUTPUTS = {standard_component_specs.BLESSING_KEY: ChannelParameter(type=standard_artifacts.ModelBlessing)}


class BlessingGate(base_beam_component.BaseBeamComponent):
    """Blesses the Leaderboard's `model` when it is the leaderboard's winner."""

    SPEC_CLASS = BlessingGateSpec
    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(Executor)

    def __init__(self, model: types.BaseChannel, evaluation_result: types.BaseChannel):
        super().__init__(spec=BlessingGateSpec(model=model, evaluation_result=evaluation_result,
                                               blessing=types.Channel(type=standard_artifacts.ModelBlessing)))  # fmt: skip
