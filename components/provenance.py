"""Transform and Trainer that carry the data span and version from ExampleGen to the model.

Transform's stock executor leaves its transformed examples without the span and
version of the examples they came from, so the Trainer cannot tell which data it
was trained on. These executors copy them across and hand them to `run_fn`,
which writes them, with the code commit, into the model's metadata file.
"""

from __future__ import annotations

from tfx.components.trainer import component as trainer_component
from tfx.components.trainer import executor as trainer_executor
from tfx.components.transform import component as transform_component
from tfx.components.transform import executor as transform_executor
from tfx.dsl.components.base import executor_spec
from tfx.extensions.google_cloud_ai_platform.trainer import component as vertex_trainer_component
from tfx.extensions.google_cloud_ai_platform.trainer import executor as vertex_trainer_executor
from tfx.types import standard_component_specs as keys

SPAN_KEY = "data_span"
VERSION_KEY = "data_version"
SOURCE_SPANS = "source_spans"  # on transformed examples: every span they were made from


def _int(artifact, name: str) -> int | None:
    """A property, or the custom property FileBasedExampleGen's driver writes span and version to."""
    if artifact.has_custom_property(name):
        return int(artifact.get_int_custom_property(name))
    return int(getattr(artifact, name)) if artifact.has_property(name) else None


def span_and_version(artifacts) -> dict:
    """`{"data_span": [...], "data_version": [...]}` of the input examples (several when
    a resolver hands over a range of spans)."""
    spans = {_int(a, "span") for a in artifacts}
    versions = {_int(a, "version") for a in artifacts}
    return {SPAN_KEY: sorted(s if s is not None else 0 for s in spans),
            VERSION_KEY: sorted(v for v in versions if v is not None)}  # fmt: skip


class TransformExecutor(transform_executor.Executor):
    def Do(self, input_dict, output_dict, exec_properties) -> None:  # noqa: N802 (TFX's name)
        super().Do(input_dict, output_dict, exec_properties)
        sources = input_dict[keys.EXAMPLES_KEY]
        for out in output_dict.get(keys.TRANSFORMED_EXAMPLES_KEY, []):
            found = span_and_version(sources)
            out.span = max(found[SPAN_KEY])
            if found[VERSION_KEY]:
                out.version = max(found[VERSION_KEY])
            out.set_string_custom_property(SOURCE_SPANS, ",".join(str(s) for s in found[SPAN_KEY]))


class TrainerExecutor(trainer_executor.GenericExecutor):
    def _GetFnArgs(self, input_dict, output_dict, exec_properties):  # noqa: N802 (TFX's name)
        fn_args = super()._GetFnArgs(input_dict, output_dict, exec_properties)
        examples = input_dict[keys.EXAMPLES_KEY]
        spans = examples[0].get_string_custom_property(SOURCE_SPANS) if examples else ""
        provenance = span_and_version(examples)
        if spans:
            provenance[SPAN_KEY] = [int(s) for s in spans.split(",")]
        fn_args.custom_config = {**(fn_args.custom_config or {}), **provenance}
        return fn_args


class VertexTrainerExecutor(vertex_trainer_executor.GenericExecutor):
    """The Vertex AI Trainer's executor, running `TrainerExecutor` in its CustomJob."""

    def _GetExecutorClass(self):  # noqa: N802 (TFX's name)
        return TrainerExecutor


class Transform(transform_component.Transform):
    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(TransformExecutor)


class Trainer(trainer_component.Trainer):
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(TrainerExecutor)


class VertexTrainer(vertex_trainer_component.Trainer):
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(VertexTrainerExecutor)
