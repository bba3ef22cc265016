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

from tfx import v1 as tfx
from tfx.utils import io_utils

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


@tfx.dsl.components.component
def BlessingGate(  # noqa: N802 (component names are classes in TFX)
    model: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.Model],
    evaluation_result: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.ModelEvaluation],
    blessing: tfx.dsl.components.OutputArtifact[tfx.types.standard_artifacts.ModelBlessing],
) -> None:
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
    blessing.set_int_custom_property("current_model_id", model.id)
    blessing.set_string_custom_property("current_model", model.uri)
    print(json.dumps({"component": "BlessingGate", "blessed": ok, "winner": result.winner, "failures": messages}))
