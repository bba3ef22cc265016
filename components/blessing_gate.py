"""The one blessing the Pusher and the next run's baseline resolver read: the model passed
the main evaluation (thresholds, slices, the last blessed model) AND beat every baseline.

Each Evaluator blesses on its own checks only; if the resolver read those blessings, a
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


def _blessed(artifact) -> bool:
    return artifact.get_int_custom_property("blessed") == 1


@tfx.dsl.components.component
def BlessingGate(  # noqa: N802 (component names are classes in TFX)
    model: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.Model],
    evaluation: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.ModelBlessing],
    vs_linear: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.ModelBlessing],
    vs_boosted: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.ModelBlessing],
    vs_heuristic: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.ModelBlessing],
    evaluation_result: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.ModelEvaluation],
    blessing: tfx.dsl.components.OutputArtifact[tfx.types.standard_artifacts.ModelBlessing],
    fairness: tfx.dsl.components.Parameter[str] = "{}",
) -> None:
    checks = {"evaluation": evaluation, "beats the linear baseline": vs_linear,
              "comes close to the gradient-boosted reference": vs_boosted,
              "beats the heuristic baseline": vs_heuristic}  # fmt: skip
    failed = [name for name, artifact in checks.items() if not _blessed(artifact)]
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
