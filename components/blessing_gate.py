"""The one blessing the Pusher and the next run's baseline resolver read: the model passed
the main evaluation (thresholds, slices, the last blessed model) AND beat every baseline
(the BaselineEvaluator's comparisons, each named when it fails).

Each evaluator blesses on its own checks only; if the resolver read those blessings, a
model that lost to the linear baseline could become the next run's baseline. So the
resolver reads only this component's output, which carries the same properties the
Evaluator writes (`blessed`, `current_model_id`, `current_model`).

It also holds the model to `evaluation.fairness`: the gaps in FPR, FNR and positive rate
between the groups of each fairness feature, at the decision threshold, on the Evaluator's
eval split. Each failed check is named in `failures` (a JSON list on the blessing).
"""

import json
import os

from tfx import v1 as tfx

from components.group_rates import group_rates
from models.fairness import FairnessLimits, gaps

# each baseline comparison of the BaselineEvaluator, as the gate names it when it fails
CHECKS = {"linear": "beats the linear baseline", "boosted": "comes close to the gradient-boosted reference",
          "heuristic": "beats the heuristic baseline"}  # fmt: skip


def fairness_settings(features, threshold: float | None, limits: dict) -> str:
    """The gate's `fairness` parameter."""
    return json.dumps({"features": list(features), "threshold": threshold, "limits": limits}, sort_keys=True)


def fairness_failures(evaluation_uri: str, settings: str) -> list[str]:
    """One message per gap over its limit, naming the feature, the groups and the gap."""
    s = json.loads(settings)
    limits = FairnessLimits(**s.get("limits", {}))
    if not s.get("features") or s.get("threshold") is None or not limits.any:
        return []
    found = gaps(group_rates(evaluation_uri, s["features"]), limits, s["threshold"])
    return [f"fairness: {g.message()}" for g in found if g.violated]


def baseline_failures(baselines) -> list[str]:
    """The name of each baseline comparison the candidate failed, in the BaselineEvaluator's order."""
    comparisons = json.loads(baselines.get_string_custom_property("comparisons") or "[]")
    failed = [CHECKS[c["baseline"]] for c in comparisons if not c["passed"]]
    if not _blessed(baselines) and not failed:  # a blessing written otherwise names no comparison
        failed.append("beats the baselines")
    return failed


def _blessed(artifact) -> bool:
    return artifact.get_int_custom_property("blessed") == 1


@tfx.dsl.components.component
def BlessingGate(  # noqa: N802 (component names are classes in TFX)
    model: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.Model],
    evaluation: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.ModelBlessing],
    baselines: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.ModelBlessing],
    evaluation_result: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.ModelEvaluation],
    blessing: tfx.dsl.components.OutputArtifact[tfx.types.standard_artifacts.ModelBlessing],
    fairness: tfx.dsl.components.Parameter[str] = "{}",
) -> None:
    failed = ([] if _blessed(evaluation) else ["evaluation"]) + baseline_failures(baselines)
    unfair = fairness_failures(evaluation_result.uri, fairness)
    if unfair:
        failed.append("treats the groups of its fairness features within the limits")
    ok = not failed
    with open(os.path.join(blessing.uri, "BLESSED" if ok else "NOT_BLESSED"), "w") as f:
        f.write(json.dumps({"failed": failed, "failures": unfair}))
    blessing.set_int_custom_property("blessed", 1 if ok else 0)
    blessing.set_string_custom_property("failures", json.dumps(unfair))
    blessing.set_int_custom_property("current_model_id", model.id)
    blessing.set_string_custom_property("current_model", model.uri)
    print(json.dumps({"component": "BlessingGate", "blessed": ok, "failed": failed, "failures": unfair}))
