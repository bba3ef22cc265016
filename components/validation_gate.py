"""A gate after ExampleValidator: stop the pipeline on any data anomaly.

No standard component consumes ExampleValidator's output, so on its own it
never stops a run. This component fails, naming every anomalous feature, when
any split has anomalies; otherwise it passes the schema on, and Transform and
Trainer read the schema from here, so nothing downstream runs unvalidated.

It adds two checks:
- an empty field (a CSV cell with nothing in it) gives a feature with no value,
  which TFDV counts as present; a flood of empty values is caught here against
  the schema's `presence.min_fraction`;
- drift between spans: the train split is compared, with the schema's
  `drift_comparator`s (L-infinity, Jensen-Shannon), to the statistics of the last
  data that passed this gate (its `accepted_statistics`). With `span_drift="stop"`
  drift stops the run like any anomaly; with "report" it is recorded and the run
  goes on (a retraining started because monitoring saw drift expects it).
"""

import json
import os

from google.protobuf import text_format
from tensorflow_metadata.proto.v0 import anomalies_pb2, schema_pb2, statistics_pb2
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


def empty_value_floods(split: str, stats: statistics_pb2.DatasetFeatureStatistics,
                       schema: schema_pb2.Schema) -> list[str]:  # fmt: skip
    """Features whose rows with a value fall below the schema's `presence.min_fraction`."""
    wanted = {f.name: f.presence.min_fraction for f in schema.feature if f.presence.min_fraction > 0}
    lines = []
    for feature in stats.features:
        name = ".".join(feature.path.step)
        if name not in wanted or not stats.num_examples:
            continue
        which = feature.WhichOneof("stats")
        common = getattr(feature, which).common_stats if which in ("num_stats", "string_stats") else None
        if common is None:
            continue
        filled = min(common.tot_num_values, common.num_non_missing) / stats.num_examples
        if filled < wanted[name]:
            lines.append(f"[{split}] feature '{name}': too many missing values - {100 * (1 - filled):.1f} % of rows "
                         f"have none; the schema allows at most {100 * (1 - wanted[name]):.0f} %")  # fmt: skip
    return lines


DRIFT_FILE = "span_drift.json"


def span_drift(current: statistics_pb2.DatasetFeatureStatisticsList, previous: statistics_pb2.DatasetFeatureStatisticsList,
               schema: schema_pb2.Schema) -> list[dict]:  # fmt: skip
    """Every drift measurement the schema's comparators ask for, with the ones over threshold marked."""
    import tensorflow_data_validation as tfdv
    from tensorflow_metadata.proto.v0 import anomalies_pb2 as pb

    anomalies = tfdv.validate_statistics(statistics=current, schema=schema, previous_statistics=previous)
    return [
        {"feature": ".".join(info.path.step), "measure": pb.DriftSkewInfo.Measurement.Type.Name(m.type),
         "value": round(m.value, 4), "threshold": m.threshold, "drifted": m.value > m.threshold}
        for info in anomalies.drift_skew_info for m in info.drift_measurements
    ]  # fmt: skip


def drift_lines(measurements: list[dict]) -> list[str]:
    return [f"[train] feature '{m['feature']}': drift from the last accepted data - {m['measure']} {m['value']:.3f} "
            f"> {m['threshold']}" for m in measurements if m["drifted"]]  # fmt: skip


@tfx.dsl.components.component
def DataValidationGate(  # noqa: N802 (component names are classes in TFX)
    anomalies: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.ExampleAnomalies],
    schema: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.Schema],
    statistics: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.ExampleStatistics],
    validated_schema: tfx.dsl.components.OutputArtifact[tfx.types.standard_artifacts.Schema],
    accepted_statistics: tfx.dsl.components.OutputArtifact[tfx.types.standard_artifacts.ExampleStatistics],
    previous_statistics: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.ExampleStatistics] = None,
    span_drift_policy: tfx.dsl.components.Parameter[str] = "stop",
) -> None:
    splits = artifact_utils.decode_split_names(anomalies.split_names)
    problems = [
        line
        for split, found in read_anomalies(anomalies.uri, splits).items()
        for line in describe_anomalies(split, found)
    ]
    curated = schema_pb2.Schema()
    text_format.Parse(io_utils.read_string_file(io_utils.get_only_uri_in_dir(schema.uri)), curated)
    for split in splits:
        path = os.path.join(statistics.uri, f"Split-{split}", "FeatureStats.pb")
        if os.path.exists(path):
            found = statistics_pb2.DatasetFeatureStatisticsList.FromString(io_utils.read_bytes_file(path))
            problems += empty_value_floods(split, found.datasets[0], curated)
    measurements = []
    if previous_statistics is not None and any(f.HasField("drift_comparator") for f in curated.feature):
        paths = [os.path.join(a.uri, "Split-train", "FeatureStats.pb") for a in (statistics, previous_statistics)]
        if all(os.path.exists(p) for p in paths):
            current, previous = (statistics_pb2.DatasetFeatureStatisticsList.FromString(io_utils.read_bytes_file(p))
                                 for p in paths)  # fmt: skip
            measurements = span_drift(current, previous, curated)
            for line in drift_lines(measurements):
                print(json.dumps({"component": "DataValidationGate", "span_drift": line, "policy": span_drift_policy}))
            if span_drift_policy == "stop":
                problems += drift_lines(measurements)
    if problems:
        raise DataAnomaliesError(
            f"ExampleValidator found {len(problems)} anomalies; stopping before Transform:\n  " + "\n  ".join(problems)
        )
    io_utils.copy_dir(schema.uri, validated_schema.uri)
    io_utils.copy_dir(statistics.uri, accepted_statistics.uri)  # the next run's drift reference
    accepted_statistics.split_names = statistics.split_names
    io_utils.write_string_file(os.path.join(accepted_statistics.uri, DRIFT_FILE), json.dumps(measurements, indent=2))
