"""Request validation from the curated schema, without a model."""

import os

import pytest
from google.protobuf import text_format
from tensorflow_metadata.proto.v0 import schema_pb2

from serving.validation import InvalidRequestError, RequestValidator
from tests.conftest import REPO

pytestmark = pytest.mark.unit

INPUTS = ["trip_seconds", "fare", "payment_type", "pickup_community_area", "trip_start_timestamp"]


@pytest.fixture(scope="module")
def validator():
    schema = schema_pb2.Schema()
    with open(os.path.join(REPO, "schemas", "taxi", "schema.pbtxt")) as f:
        text_format.Parse(f.read(), schema)
    return RequestValidator.from_schema(schema, INPUTS, ["rider_email"])


def test_valid_instance_keeps_model_inputs_and_drops_the_rest(validator):
    row = {"fare": 10, "payment_type": "Cash", "pickup_community_area": 8.0, "trip_start_timestamp": 1,
           "rider_email": "a@b.c", "company": "Company 0"}  # fmt: skip
    out = validator.instance(row, 0)
    assert out == {"trip_seconds": None, "fare": 10.0, "payment_type": "Cash", "pickup_community_area": 8,
                   "trip_start_timestamp": 1}  # fmt: skip
    assert isinstance(out["fare"], float) and isinstance(out["pickup_community_area"], int)


@pytest.mark.parametrize(
    "row, message",
    [
        ({"payment_type": "Cash", "trip_start_timestamp": 1}, "required field 'fare' is missing"),
        ({"fare": float("nan"), "payment_type": "Cash", "trip_start_timestamp": 1}, "'fare' must be finite"),
        ({"fare": 1, "payment_type": "Gold", "trip_start_timestamp": 1}, "'payment_type' value 'Gold' is not in"),
        ({"fare": 1, "payment_type": "Cash", "trip_start_timestamp": 2**64}, "out of the 64-bit integer range"),
        ({"fare": 1, "payment_type": "Cash", "trip_start_timestamp": 1, "tip_amount": 3}, "unknown field 'tip_amount'"),
        ("a string", "must be a JSON object"),
    ],
)  # fmt: skip
def test_invalid_instances_name_the_problem(validator, row, message):
    if isinstance(row, dict):
        row = {"pickup_community_area": 8, **row}
    with pytest.raises(InvalidRequestError, match=message) as e:
        validator.instance(row, 3)
    assert str(e.value).startswith("instances[3]") and e.value.status == 400


def test_schema_without_a_model_input_is_refused():
    with pytest.raises(ValueError, match="model input 'nope' is not in the schema"):
        RequestValidator.from_schema(schema_pb2.Schema(), ["nope"], [])


def test_example_instance_is_valid(validator):
    assert validator.instance(validator.example_instance(), 0)["payment_type"] == "Cash"
