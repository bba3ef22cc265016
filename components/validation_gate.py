"""A gate after ExampleValidator: stop the pipeline on any data anomaly.

No standard component consumes ExampleValidator's output, so on its own it
never stops a run. This component fails, naming every anomalous feature, when
any split has anomalies; otherwise it passes the schema on, and Transform and
Trainer read the schema from here, so nothing downstream runs unvalidated.
"""

import os

from tensorflow_metadata.proto.v0 import anomalies_pb2
from tfx import v1 as tfx
from tfx.types import artifact_utils
from tfx.utils import io_utils

ANOMALIES_FILE = "SchemaDiff.pb"


class DataAnomaliesError(RuntimeError):
    """The examples do not match the schema."""


def describe_anomalies(split: str, anomalies: anomalies_pb2.Anomalies) -> list[str]:
    """One readable line per anomalous feature: split, feature, what was found."""
    lines = []
    for feature, info in sorted(anomalies.anomaly_info.items()):
        reasons = "; ".join(r.description or r.short_description for r in info.reason) or info.description
        lines.append(f"[{split}] feature '{feature}': {info.short_description} - {reasons}")
    if anomalies.HasField("dataset_anomaly_info"):
        info = anomalies.dataset_anomaly_info
        lines.append(f"[{split}] dataset: {info.short_description} - {info.description}")
    return lines


def read_anomalies(uri: str, split_names: list[str]) -> dict[str, anomalies_pb2.Anomalies]:
    out = {}
    for split in split_names:
        path = os.path.join(uri, f"Split-{split}", ANOMALIES_FILE)
        out[split] = anomalies_pb2.Anomalies.FromString(io_utils.read_bytes_file(path))
    return out


@tfx.dsl.components.component
def DataValidationGate(  # noqa: N802 (component names are classes in TFX)
    anomalies: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.ExampleAnomalies],
    schema: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.Schema],
    validated_schema: tfx.dsl.components.OutputArtifact[tfx.types.standard_artifacts.Schema],
) -> None:
    splits = artifact_utils.decode_split_names(anomalies.split_names)
    problems = [
        line
        for split, found in read_anomalies(anomalies.uri, splits).items()
        for line in describe_anomalies(split, found)
    ]
    if problems:
        raise DataAnomaliesError(
            f"ExampleValidator found {len(problems)} anomalies; stopping before Transform:\n  " + "\n  ".join(problems)
        )
    io_utils.copy_dir(schema.uri, validated_schema.uri)
