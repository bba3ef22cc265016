"""BaselineEvaluator: every baseline scored in one TFMA pass over the eval split, against the candidate.

TFX's Evaluator compares two models, so one per baseline would read the split and run the candidate
once per baseline. This component loads the baselines the way the Evaluator does (`tfma.default_eval_shared_model`
on each serving model), runs one `tfma.ExtractEvaluateAndWriteResults` with the pipeline's Beam args, and
compares their overall values with the candidate's, which the Evaluator already computed on the same split
(`candidate_evaluation`), with `models.baseline_comparison` (TFMA's change-threshold rule).

Outputs: the TFMA result (a standard ModelEvaluation, one model name per model) and one ModelBlessing:
`blessed`, `comparisons` (a JSON list, also `comparisons.json`), `failures` (a line per failed
comparison), `current_model` and `current_model_id`.
"""

import dataclasses
import json
import os

import apache_beam as beam
from google.protobuf import json_format
from tfx import v1 as tfx
from tfx.components.util import tfxio_utils
from tfx.types import artifact_utils
from tfx.utils import io_utils, path_utils

from components.tfma_results import overall_metrics
from models.baseline_comparison import Comparison, compare

CANDIDATE = "candidate"  # tfma.CANDIDATE_KEY, as `overall_metrics` names a lone model
COMPARISONS_FILE = "comparisons.json"
SPLIT = "eval"


def comparison_settings(metric: str, higher_is_better: bool, margins: dict[str, float]) -> str:
    """The component's `comparison` parameter: TFMA's name of the gating metric, its direction, and each
    baseline model's margin."""
    return json.dumps({"metric": metric, "higher_is_better": higher_is_better, "margins": margins})


def write_blessing(blessing, model, comparisons: list[Comparison]) -> bool:
    """Blesses when every comparison passed; writes them on the artifact and in `comparisons.json`."""
    ok = all(c.passed for c in comparisons)
    found = json.dumps([dataclasses.asdict(c) for c in comparisons])
    with open(os.path.join(blessing.uri, COMPARISONS_FILE), "w") as f:
        f.write(found)
    with open(os.path.join(blessing.uri, "BLESSED" if ok else "NOT_BLESSED"), "w") as f:
        f.write("")
    blessing.set_int_custom_property("blessed", 1 if ok else 0)
    blessing.set_string_custom_property("comparisons", found)
    blessing.set_string_custom_property("failures", json.dumps([c.message() for c in comparisons if not c.passed]))
    blessing.set_int_custom_property("current_model_id", model.id)
    blessing.set_string_custom_property("current_model", model.uri)
    return ok


def candidate_metrics(evaluator_uri: str) -> dict[str, float]:
    """The candidate's overall metrics in the Evaluator's result (beside the last blessed model's, if any)."""
    return overall_metrics(evaluator_uri).get(CANDIDATE, {})


@tfx.dsl.components.component(use_beam=True)
def BaselineEvaluator(  # noqa: N802 (component names are classes in TFX)
    examples: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.Examples],
    model: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.Model],
    linear: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.Model],
    boosted: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.Model],
    heuristic: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.Model],
    candidate_evaluation: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.ModelEvaluation],
    evaluation: tfx.dsl.components.OutputArtifact[tfx.types.standard_artifacts.ModelEvaluation],
    blessing: tfx.dsl.components.OutputArtifact[tfx.types.standard_artifacts.ModelBlessing],
    eval_config: tfx.dsl.components.Parameter[str],
    comparison: tfx.dsl.components.Parameter[str],
    beam_pipeline: tfx.dsl.components.BeamComponentParameter[beam.Pipeline] = None,
) -> None:
    import tensorflow_model_analysis as tfma

    config = tfma.utils.update_eval_config_with_defaults(json_format.Parse(eval_config, tfma.EvalConfig()))
    tfma.utils.verify_eval_config(config)
    artifacts = {"linear": linear, "boosted": boosted, "heuristic": heuristic}
    shared = [
        tfma.default_eval_shared_model(
            eval_saved_model_path=path_utils.serving_model_path(
                artifacts[spec.name].uri, path_utils.is_old_model_artifact(artifacts[spec.name])
            ),
            model_name=spec.name,
            eval_config=config,
        )
        for spec in config.model_specs
    ]
    # serving SavedModels take batches of serialized examples, read as Arrow as the Evaluator reads them
    tfxio_factory = tfxio_utils.get_tfxio_factory_from_artifact(
        examples=[examples], telemetry_descriptors=["BaselineEvaluator"],
        raw_record_column_name=tfma.ARROW_INPUT_COLUMN,
    )  # fmt: skip
    with beam_pipeline as pipeline:
        reads = [
            pipeline | f"ReadFromTFRecordToArrow[{SPLIT}][{i}]" >> tfxio_factory(io_utils.all_files_pattern(uri)).BeamSource()
            for i, uri in enumerate(artifact_utils.get_split_uris([examples], SPLIT))
        ]  # fmt: skip
        _ = (
            reads
            | "FlattenExamples" >> beam.Flatten()
            | "ExtractEvaluateAndWriteResults"
            >> tfma.ExtractEvaluateAndWriteResults(eval_shared_model=shared, eval_config=config,
                                                   output_path=evaluation.uri)
        )  # fmt: skip
    s = json.loads(comparison)
    scores = {**overall_metrics(evaluation.uri), CANDIDATE: candidate_metrics(candidate_evaluation.uri)}
    found = compare(scores, s["metric"], s["margins"], s["higher_is_better"])
    ok = write_blessing(blessing, model, found)
    print(json.dumps({"component": "BaselineEvaluator", "blessed": ok,
                      "comparisons": [dataclasses.asdict(c) for c in found]}))  # fmt: skip
