"""The one blessing the Pusher and the next run's baseline resolver read: the model passed
the main evaluation (thresholds, slices, the last blessed model) AND beat every baseline.

Each Evaluator blesses on its own checks only; if the resolver read those blessings, a
model that lost to the linear baseline could become the next run's baseline. So the
resolver reads only this component's output, which carries the same properties the
Evaluator writes (`blessed`, `current_model_id`, `current_model`).
"""

import json
import os

from tfx import v1 as tfx


def _blessed(artifact) -> bool:
    return artifact.get_int_custom_property("blessed") == 1


@tfx.dsl.components.component
def BlessingGate(  # noqa: N802 (component names are classes in TFX)
    model: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.Model],
    evaluation: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.ModelBlessing],
    vs_linear: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.ModelBlessing],
    vs_boosted: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.ModelBlessing],
    vs_heuristic: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.ModelBlessing],
    blessing: tfx.dsl.components.OutputArtifact[tfx.types.standard_artifacts.ModelBlessing],
) -> None:
    checks = {"evaluation": evaluation, "beats the linear baseline": vs_linear,
              "comes close to the gradient-boosted reference": vs_boosted,
              "beats the heuristic baseline": vs_heuristic}  # fmt: skip
    failed = [name for name, artifact in checks.items() if not _blessed(artifact)]
    ok = not failed
    with open(os.path.join(blessing.uri, "BLESSED" if ok else "NOT_BLESSED"), "w") as f:
        f.write(json.dumps({"failed": failed}))
    blessing.set_int_custom_property("blessed", 1 if ok else 0)
    blessing.set_int_custom_property("current_model_id", model.id)
    blessing.set_string_custom_property("current_model", model.uri)
    print(json.dumps({"component": "BlessingGate", "blessed": ok, "failed": failed}))
