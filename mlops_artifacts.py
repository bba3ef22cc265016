"""The pipeline's own artifact types, in a top-level module because of how Vertex finds them.

TFX compiles a custom type for Kubeflow V2 as the generic artifact schema titled with its TYPE_NAME, which
must read `<module>.<Class>` (compiler_utils._SCHEMA_TITLE_RE: one dot, a module of 3-21 lower-case
characters); in the container, kubeflow_v2_run_executor imports that title as the class path. So TYPE_NAME
is this module's name and the class's: the class is importable by its type name wherever the image runs.
"""

from tfx.types import artifact


class FeatureScreening(artifact.Artifact):
    """The feature screen's findings (`screening.json`): components/feature_screen.py."""

    TYPE_NAME = "mlops_artifacts.FeatureScreening"
