"""The one blessing the Pusher and the next run's baseline resolver read: the model passed
the main evaluation (thresholds, slices, the last blessed model) AND beat every baseline.

The baselines' values come from the BaselineEvaluator's pass (`baselines_evaluation`), the
candidate's from the Evaluator's pass over the same split (`evaluation_result`: the candidate is
scored once, and the two passes do not wait for each other). Each is compared by TFMA's
change-threshold rule (`models.baseline_comparison`), listed in the blessing's `comparisons.json`
and `comparisons` property, and named in `failures` when it fails.

Each evaluator blesses on its own checks only; if the resolver read those blessings, a
model that lost to the linear baseline could become the next run's baseline. So the
resolver reads only this component's output, which carries the same properties the
Evaluator writes (`blessed`, `current_model_id`, `current_model`).

It also holds the model to `evaluation.fairness`: the gaps in FPR, FNR and positive rate
between the groups of each fairness feature, at the decision threshold, on the Evaluator's
eval split. Each failed check is named in `failures` (a JSON list on the blessing).
"""

import dataclasses
import json
import os

from tfx import v1 as tfx

from components.group_rates import group_rates
from components.tfma_results import overall_metrics
from models.baseline_comparison import CANDIDATE, Comparison, compare
from models.fairness import FairnessLimits, gaps

COMPARISONS_FILE = "comparisons.json"

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


def comparison_settings(metric: str, higher_is_better: bool, margins: dict[str, float]) -> str:
    """The gate's `comparison` parameter: TFMA's name of the gating metric, its direction, and each
    baseline model's margin."""
    return json.dumps({"metric": metric, "higher_is_better": higher_is_better, "margins": margins})


def baseline_comparisons(baselines_uri: str, candidate_uri: str, settings: str) -> list[Comparison]:
    """The candidate's overall value (the Evaluator's result) against each baseline's (the baselines' pass)."""
    s = json.loads(settings)
    scores = {**overall_metrics(baselines_uri), CANDIDATE: overall_metrics(candidate_uri).get(CANDIDATE, {})}
    return compare(scores, s["metric"], s["margins"], s["higher_is_better"])


def baseline_failures(comparisons: list[Comparison]) -> list[str]:
    """The name of each baseline comparison the candidate failed, in the comparisons' order."""
    return [CHECKS[c.baseline] for c in comparisons if not c.passed]


def _blessed(artifact) -> bool:
    return artifact.get_int_custom_property("blessed") == 1


@tfx.dsl.components.component
def BlessingGate(  # noqa: N802 (component names are classes in TFX)
    model: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.Model],
    evaluation: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.ModelBlessing],
    evaluation_result: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.ModelEvaluation],
    baselines_evaluation: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.ModelEvaluation],
    blessing: tfx.dsl.components.OutputArtifact[tfx.types.standard_artifacts.ModelBlessing],
    comparison: tfx.dsl.components.Parameter[str],
    fairness: tfx.dsl.components.Parameter[str] = "{}",
) -> None:
    comparisons = baseline_comparisons(baselines_evaluation.uri, evaluation_result.uri, comparison)
    failed = ([] if _blessed(evaluation) else ["evaluation"]) + baseline_failures(comparisons)
    unfair = fairness_failures(evaluation_result.uri, fairness)
    if unfair:
        failed.append("treats the groups of its fairness features within the limits")
    ok = not failed
    found = [dataclasses.asdict(c) for c in comparisons]
    messages = [f"baselines: {c.message()}" for c in comparisons if not c.passed] + unfair
    with open(os.path.join(blessing.uri, COMPARISONS_FILE), "w") as f:
        json.dump(found, f)
    with open(os.path.join(blessing.uri, "BLESSED" if ok else "NOT_BLESSED"), "w") as f:
        f.write(json.dumps({"failed": failed, "failures": messages}))
    blessing.set_int_custom_property("blessed", 1 if ok else 0)
    blessing.set_string_custom_property("comparisons", json.dumps(found))
    blessing.set_string_custom_property("failures", json.dumps(messages))
    blessing.set_int_custom_property("current_model_id", model.id)
    blessing.set_string_custom_property("current_model", model.uri)
    print(json.dumps({"component": "BlessingGate", "blessed": ok, "failed": failed, "failures": messages}))
