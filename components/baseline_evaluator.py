"""BaselineEvaluator: every baseline scored in one TFMA pass over the eval split.

TFX's Evaluator compares two models, so one per baseline would read the split and run the candidate
once per baseline. This component loads the baselines the way the Evaluator does (`tfma.default_eval_shared_model`
on each serving model) and runs one `tfma.ExtractEvaluateAndWriteResults` with the pipeline's Beam args. It
does not need the candidate: the BlessingGate compares the baselines' values with the candidate's from the
Evaluator's pass over the same split, so the two passes can run at the same time.

Output: the TFMA result (a standard ModelEvaluation, one model name per baseline).
"""

import apache_beam as beam
from google.protobuf import json_format
from tfx import v1 as tfx
from tfx.components.util import tfxio_utils
from tfx.types import artifact_utils
from tfx.utils import io_utils, path_utils

SPLIT = "eval"


@tfx.dsl.components.component(use_beam=True)
def BaselineEvaluator(  # noqa: N802 (component names are classes in TFX)
    examples: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.Examples],
    linear: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.Model],
    boosted: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.Model],
    heuristic: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.Model],
    evaluation: tfx.dsl.components.OutputArtifact[tfx.types.standard_artifacts.ModelEvaluation],
    eval_config: tfx.dsl.components.Parameter[str],
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
