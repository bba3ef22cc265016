"""The curated schema and the rules that make it from an inferred one."""

import pytest
from google.protobuf import text_format
from tensorflow_metadata.proto.v0 import schema_pb2

from pipelines.config import load_config
from pipelines.schema_proposal import SERVING, TRAINING, curate

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


def test_committed_schema_has_no_personal_columns_and_serves_without_label(taxi_config_path):
    config = load_config(taxi_config_path)
    schema = load_schema(config.data.schema)
    names = {f.name for f in schema.feature}
    assert not names & set(config.data.personal_columns)
    assert set(config.features.inputs()) | {config.label} <= names
    serving = {f.name for f in schema.feature if SERVING not in f.not_in_environment}
    assert serving == set(config.features.inputs())
