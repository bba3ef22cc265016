"""The curated schema and the rules that make it from an inferred one."""

import os
from pathlib import Path

import pytest
from google.protobuf import text_format
from tensorflow_metadata.proto.v0 import schema_pb2

from settings.config import load_config
from tables.schema_proposal import SERVING, TRAINING, curate
from tests.conftest import REPO

pytestmark = pytest.mark.data


def load_schema(path: str) -> schema_pb2.Schema:
    with open(path) as f:
        return text_format.Parse(f.read(), schema_pb2.Schema())


def test_curate_marks_non_inputs_training_only_and_allows_gaps(taxi_config_path):
    config = load_config(taxi_config_path)
    inferred = schema_pb2.Schema()
    for name, min_fraction in (("fare", 1.0), ("company", 0.0), ("big_tip", 1.0), ("tip_amount", 1.0)):
        feature = inferred.feature.add(name=name)
        feature.value_count.min = 1
        if min_fraction:
            feature.presence.min_fraction = min_fraction
    out = {f.name: f for f in curate(inferred, config).feature}
    assert list(curate(inferred, config).default_environment) == [TRAINING, SERVING]
    assert list(out["big_tip"].not_in_environment) == [SERVING]
    assert list(out["tip_amount"].not_in_environment) == [SERVING]
    assert list(out["fare"].not_in_environment) == []
    assert out["company"].value_count.min == 0 and out["fare"].value_count.min == 1
    assert inferred.feature[1].value_count.min == 1  # the input is not mutated


def test_curate_lets_a_serving_input_be_parsed_as_optional(taxi_config_path):
    """A serving input loses its fixed shape (Transform then reads it as sparse and imputes it); a
    TRAINING-only column keeps it; presence still requires the value in training data."""
    config = load_config(taxi_config_path)
    inferred = schema_pb2.Schema()
    for name in ("fare", "big_tip"):
        feature = inferred.feature.add(name=name)
        feature.presence.min_fraction = 1.0
        feature.shape.dim.add(size=1)
    out = {f.name: f for f in curate(inferred, config).feature}
    assert not out["fare"].HasField("shape") and (out["fare"].value_count.min, out["fare"].value_count.max) == (1, 1)
    assert out["fare"].presence.min_fraction == 1.0
    assert out["big_tip"].HasField("shape")


def test_committed_schema_parses_every_serving_input_as_optional(taxi_config_path):
    import tensorflow as tf
    from tensorflow_transform.tf_metadata import schema_utils

    config = load_config(taxi_config_path)
    spec = schema_utils.schema_as_feature_spec(load_schema(config.data.schema)).feature_spec
    fixed = sorted(n for n in config.features.inputs() if not isinstance(spec[n], tf.io.VarLenFeature))
    assert fixed == []


def test_committed_schema_has_no_personal_columns_and_serves_without_label(taxi_config_path):
    config = load_config(taxi_config_path)
    schema = load_schema(config.data.schema)
    names = {f.name for f in schema.feature}
    assert not names & set(config.data.personal_columns)
    assert set(config.features.inputs()) | {config.label} <= names
    serving = {f.name for f in schema.feature if SERVING not in f.not_in_environment}
    assert serving == set(config.features.inputs())


def test_span_drift_against_the_last_accepted_data_uses_the_schema_comparators():
    """The curated schema's drift comparators on generated spans: another draw of the same
    distribution passes; a drifted one is named, feature by feature."""
    from google.protobuf import text_format
    from tensorflow_metadata.proto.v0 import schema_pb2

    from components.validation_gate import drift_lines, span_drift
    from datagen import taxi
    from monitoring.checks import statistics

    schema = schema_pb2.Schema()
    with open(os.path.join(REPO, "schemas", "taxi", "schema.pbtxt")) as f:
        text_format.Parse(f.read(), schema)
    compared = {f.name for f in schema.feature if f.HasField("drift_comparator")}
    assert compared == {"payment_type", "company", "fare", "trip_miles"}
    reference = statistics(taxi.generate(4000, seed=1))
    same = span_drift(statistics(taxi.generate(4000, seed=2)), reference, schema)
    assert {m["feature"] for m in same} == compared and not drift_lines(same), same
    moved = span_drift(statistics(taxi.generate(4000, seed=3, drift=0.8)), reference, schema)
    named = " ".join(drift_lines(moved))
    assert "'payment_type'" in named and "'trip_miles'" in named and "'company'" not in named, moved


def test_a_schema_is_staged_under_its_content_hash_once_and_a_staged_one_is_used_in_place(tmp_path):
    from tables import schema_staging

    source = tmp_path / "schemas" / "schema.pbtxt"
    source.parent.mkdir()
    source.write_text('feature { name: "a" type: INT }\n')
    staged = schema_staging.stage(str(source), str(tmp_path / "root" / "_schemas"))
    assert staged != str(source) and Path(staged).read_text() == source.read_text()
    assert schema_staging.is_staged(staged) and not schema_staging.is_staged(str(source))
    assert schema_staging.stage(staged, str(tmp_path / "copy" / "_schemas")) == staged  # in place: the same key
    source.write_text('feature { name: "b" type: INT }\n')  # an edit: a new path
    assert schema_staging.stage(str(source), str(tmp_path / "root" / "_schemas")) != staged
