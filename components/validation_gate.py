"""A gate after ExampleValidator: stop the pipeline on any data anomaly.

No standard component consumes ExampleValidator's output, so on its own it
never stops a run. This component fails, naming every anomalous feature, when
any split has anomalies; otherwise it passes the schema on, and Transform and
Trainer read the schema from here, so nothing downstream runs unvalidated.

It adds two checks:
- an empty field (a CSV cell with nothing in it) gives a feature with no value,
  which TFDV counts as present; a flood of empty values is caught here against
  the schema's `presence.min_fraction`;
- drift between spans (`SpanDriftCheck`): the train split is compared, with the
  schema's `drift_comparator`s (L-infinity, Jensen-Shannon), to the statistics of the
  last data that passed (its `accepted_statistics`). With `span_drift="stop"` drift
  stops the run before Transform; with "report" it is recorded and the run goes on (a
  retraining started because monitoring saw drift expects it).
"""

import json
import os

from google.protobuf import text_format
from tensorflow_metadata.proto.v0 import anomalies_pb2, schema_pb2, statistics_pb2
from tfx import v1 as tfx
from tfx.dsl.input_resolution.strategies import latest_artifact_strategy
from tfx.dsl.io import fileio
from tfx.types import artifact_utils
from tfx.utils import io_utils

from components import produced_by

ANOMALIES_FILE = "SchemaDiff.pb"
# statistics histograms: the same buckets for the pipeline's statistics and monitoring's windows, so they compare
HISTOGRAM_BUCKETS = 200  # with 2,000-row windows: noise JS <= 0.04, the generator's drift >= 0.12


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
        filled = min(common.tot_num_values, common.num_non_missing)
        if filled < wanted[name] * stats.num_examples:
            empty = stats.num_examples - filled
            lines.append(f"[{split}] feature '{name}': too many missing values - {empty} of {stats.num_examples} rows "
                         f"({percent(empty / stats.num_examples)}) have none; the schema allows at most "
                         f"{percent(1 - wanted[name])}")  # fmt: skip
    return lines


def percent(share: float) -> str:
    """3 significant digits: 0.02 % and 0 % never print the same."""
    return f"{100 * share:.3g} %"


DRIFT_FILE = "span_drift.json"


class LatestOrNoneStrategy(latest_artifact_strategy.LatestArtifactStrategy):
    """LatestArtifactStrategy that resolves to nothing, rather than failing, before the first
    accepted data exists. (Vertex's compiler takes only the stock strategy, whose empty case is
    the backend's; locally the stock one marks the resolver FAILED on a first run.)"""

    def resolve_artifacts(self, store, input_dict):
        return self._resolve(input_dict)


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


def read_statistics(artifact, split: str) -> statistics_pb2.DatasetFeatureStatisticsList | None:
    path = os.path.join(artifact.uri, f"Split-{split}", "FeatureStats.pb")
    if not fileio.exists(path):
        return None
    return statistics_pb2.DatasetFeatureStatisticsList.FromString(io_utils.read_bytes_file(path))


def read_schema(artifact) -> schema_pb2.Schema:
    schema = schema_pb2.Schema()
    text_format.Parse(io_utils.read_string_file(io_utils.get_only_uri_in_dir(artifact.uri)), schema)
    return schema


@tfx.dsl.components.component
def DataValidationGate(  # noqa: N802 (component names are classes in TFX)
    anomalies: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.ExampleAnomalies],
    schema: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.Schema],
    statistics: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.ExampleStatistics],
    validated_schema: tfx.dsl.components.OutputArtifact[tfx.types.standard_artifacts.Schema],
) -> None:
    splits = artifact_utils.decode_split_names(anomalies.split_names)
    problems = [
        line
        for split, found in read_anomalies(anomalies.uri, splits).items()
        for line in describe_anomalies(split, found)
    ]
    curated = read_schema(schema)
    for split in splits:
        found = read_statistics(statistics, split)
        if found is not None:
            problems += empty_value_floods(split, found.datasets[0], curated)
    if problems:
        raise DataAnomaliesError(
            f"ExampleValidator found {len(problems)} anomalies; stopping before Transform:\n  " + "\n  ".join(problems)
        )
    io_utils.copy_dir(schema.uri, validated_schema.uri)


class SpanDriftError(RuntimeError):
    """The new data moved from the last accepted data beyond the schema's drift thresholds."""


@tfx.dsl.components.component
def SpanDriftCheck(  # noqa: N802 (component names are classes in TFX)
    statistics: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.ExampleStatistics],
    schema: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.Schema],
    accepted_statistics: tfx.dsl.components.OutputArtifact[tfx.types.standard_artifacts.ExampleStatistics],
    previous_statistics: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.ExampleStatistics] = None,
    span_drift_policy: tfx.dsl.components.Parameter[str] = "stop",
) -> None:
    """Transform waits for this node (an ordering edge, not an input, so that Transform's cache
    does not depend on which earlier data was accepted)."""
    curated = read_schema(schema)
    measurements = []
    if previous_statistics is not None and any(f.HasField("drift_comparator") for f in curated.feature):
        current, previous = read_statistics(statistics, "train"), read_statistics(previous_statistics, "train")
        if current is not None and previous is not None:
            measurements = span_drift(current, previous, curated)
    lines = drift_lines(measurements)
    for line in lines:
        print(json.dumps({"component": "SpanDriftCheck", "span_drift": line, "policy": span_drift_policy}))
    if lines and span_drift_policy == "stop":
        raise SpanDriftError(
            "the data drifted from the last accepted data; stopping before Transform:\n  "
            + "\n  ".join(lines)
            + "\n(a retraining that expects this drift runs with data.span_drift: report)"
        )
    io_utils.copy_dir(statistics.uri, accepted_statistics.uri)  # the next run's drift reference
    accepted_statistics.split_names = statistics.split_names
    produced_by.stamp(accepted_statistics, "SpanDriftCheck", "accepted_statistics")
    io_utils.write_string_file(os.path.join(accepted_statistics.uri, DRIFT_FILE), json.dumps(measurements, indent=2))
