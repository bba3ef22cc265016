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


def mixed_rows(n: int = 400):
    """`n` valid rows, then runs of 5 rows with one bad value each (a DataFrame of object columns)."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(4)
    good = {"trip_seconds": rng.uniform(60, 3000, n), "fare": rng.uniform(3, 80, n),
            "payment_type": rng.choice(["Cash", "Credit Card", "Mobile"], n).astype(object),
            "pickup_community_area": rng.integers(1, 77, n), "trip_start_timestamp": rng.integers(1, 2**31, n)}  # fmt: skip
    bad_values = {"trip_seconds": [np.nan, np.inf, -5.0], "fare": [np.nan, -1.0, 1e300, np.inf],
                  "payment_type": [None, "Gold", 7, ""], "pickup_community_area": [2.5, -3.0, np.nan, 2.0**70],
                  "trip_start_timestamp": [np.nan, 0.5]}  # fmt: skip
    frames = [pd.DataFrame(good)]
    for column, values in bad_values.items():
        for v in values:
            frame = pd.DataFrame(good).head(5).astype(object)
            frame[column] = [v] * 5
            frames.append(frame)
    frame = pd.concat(frames, ignore_index=True)
    frame["rider_email"] = "x@y.z"  # dropped on arrival
    return frame


def test_rows_passed_column_by_column_pass_one_by_one(validator):
    """Batch prediction's column check never passes a row the per-row check refuses, and passes the
    valid rows without one; every other row gets the per-row check's own message."""
    n = 400
    frame = mixed_rows(n)
    passing = validator.passing_rows(frame)
    assert passing[:n].all()  # valid rows: no per-row check
    for i, row in enumerate(frame.to_dict("records")):
        row = {k: v.item() if hasattr(v, "item") else v for k, v in row.items()}
        row = {k: v for k, v in row.items() if not (v is None or (isinstance(v, float) and v != v))}
        try:
            validator.instance(row, 0)
            valid = True
        except InvalidRequestError:
            valid = False
        assert valid or not passing[i], (i, row)
    assert not validator.passing_rows(frame.assign(tip_amount=1.0)).any()  # an unknown column: row by row


def test_a_categorical_string_column_passes_the_rows_its_text_column_passes(validator):
    """Batch prediction reads string inputs as categories (Arrow dictionaries): the column check reads their
    categories once and gives each row what it gives the same values as text, missing, out-of-domain and
    non-string values included."""
    import pandas as pd

    frame = mixed_rows()
    expected = validator.passing_rows(frame)
    assert not expected.all() and expected.any()
    as_categories = frame.assign(payment_type=frame["payment_type"].astype("category"))
    assert (validator.passing_rows(as_categories) == expected).all()
    text_only = frame[frame["payment_type"].map(lambda v: isinstance(v, str) or v is None)]
    text_categories = text_only.assign(payment_type=pd.Categorical(text_only["payment_type"]))
    assert (validator.passing_rows(text_categories) == validator.passing_rows(text_only)).all()
    assert not validator.passing_rows(text_categories)[text_only["payment_type"].isin(["Gold", ""]).to_numpy()].any()


def taxi_schema() -> schema_pb2.Schema:
    schema = schema_pb2.Schema()
    with open(os.path.join(REPO, "schemas", "taxi", "schema.pbtxt")) as f:
        text_format.Parse(f.read(), schema)
    return schema


@pytest.fixture(scope="module")
def contract_features():
    """What the trainer writes in the serving contract for these inputs (payment_type a vocabulary with an OOV
    bucket, company hashed, trip_seconds optional in the schema, fare required)."""
    from models.features import FeatureSpec
    from models.trainer import preprocessing_handles

    spec = FeatureSpec(label="big_tip", numeric=("trip_seconds", "fare"), categorical=("payment_type",),
                       hashed={"company": 8}, timestamp="trip_start_timestamp", oov_buckets=1)  # fmt: skip
    return preprocessing_handles(spec, os.path.join(REPO, "schemas", "taxi", "schema.pbtxt"))


def following_the_model(features, strict=False) -> RequestValidator:
    return RequestValidator.from_schema(taxi_schema(), [*INPUTS, "company"], ["rider_email"], strict, features)


GOOD = {"trip_seconds": 300, "fare": 10.0, "payment_type": "Cash", "pickup_community_area": 8, "company": "Company 0",
        "trip_start_timestamp": 1_700_000_000}  # fmt: skip


def test_every_bad_instance_and_field_is_named_in_one_error(contract_features):
    bad_first = {**GOOD, "fare": "ten", "shoe_size": 1}
    bad_third = {**GOOD, "trip_seconds": float("inf"), "pickup_community_area": 2.5, "payment_type": 7}
    with pytest.raises(InvalidRequestError) as e:
        following_the_model(contract_features).instances([bad_first, GOOD, bad_third])
    message = str(e.value)
    assert e.value.status == 400 and "instances[1]" not in message
    for where, field in [(0, "'fare' must be a number"), (0, "unknown field 'shoe_size'"),
                         (2, "'trip_seconds' must be finite"), (2, "'pickup_community_area' must be an integer"),
                         (2, "'payment_type' must be a string")]:  # fmt: skip
        part = next(p for p in message.split("instances[")[1:] if p.startswith(f"{where}]"))
        assert field in part, (where, field, message)


def test_an_unseen_category_with_an_oov_bucket_is_served_and_counted(contract_features):
    assert contract_features["payment_type"]["values"] == "open" and contract_features["company"]["values"] == "open"
    got = following_the_model(contract_features).instances([{**GOOD, "payment_type": "Gold"}, GOOD])
    assert got.rows[0]["payment_type"] == "Gold" and got.counts() == {"unseen": {"payment_type": 1}}
    with pytest.raises(InvalidRequestError, match=r"instances\[0\]: field 'payment_type' value 'Gold' is not in"):
        following_the_model(contract_features, strict=True).instances([{**GOOD, "payment_type": "Gold"}])


def test_a_missing_value_the_preprocessing_imputes_is_served_and_counted(contract_features):
    """Every serving input of the curated schema is parsed as optional: a missing number (fare, present in every
    training row) or category goes to the model absent, the Transform graph imputes it, the log counts it."""
    assert contract_features["fare"] == {"values": "closed", "missing": "imputed"}
    rows = [{k: v for k, v in GOOD.items() if k not in ("payment_type", "trip_seconds", "fare")}, GOOD]
    got = following_the_model(contract_features).instances(rows)
    assert [got.rows[0][k] for k in ("payment_type", "trip_seconds", "fare")] == [None, None, None]
    assert got.counts() == {"imputed": {"payment_type": 1, "trip_seconds": 1, "fare": 1}}
    with pytest.raises(InvalidRequestError, match="required field 'fare' is missing"):
        following_the_model(contract_features, strict=True).instances(rows)
    with pytest.raises(InvalidRequestError, match="required field 'payment_type' is missing"):
        following_the_model(contract_features, strict=True).instances(rows)
    # batch prediction: a row with the fare cell empty is scored without a per-row check
    import pandas as pd

    frame = pd.DataFrame([GOOD, {**GOOD, "fare": float("nan")}])
    assert following_the_model(contract_features).passing_rows(frame).tolist() == [True, True]
    assert following_the_model(contract_features, strict=True).passing_rows(frame).tolist() == [True, False]
    assert following_the_model(contract_features).describe()["fare"]["required"] is False


def test_an_instance_with_no_model_input_is_refused_though_each_could_be_imputed(contract_features):
    """`{}` (or personal fields alone) is a client's mistake, not a row to score at every input's mean."""
    model = following_the_model(contract_features)
    with pytest.raises(InvalidRequestError, match=r"instances\[1\]: no model input given \(expected "):
        model.instances([GOOD, {}])
    with pytest.raises(InvalidRequestError, match="no model input given"):
        model.instances([{"rider_email": "a@example.com"}])


def test_a_closed_vocabulary_without_an_oov_bucket_still_refuses_a_missing_value():
    from models.features import FeatureSpec
    from models.trainer import preprocessing_handles

    spec = FeatureSpec(label="big_tip", numeric=("fare",), categorical=("payment_type",), oov_buckets=0)
    features = preprocessing_handles(spec, os.path.join(REPO, "schemas", "taxi", "schema.pbtxt"))
    assert features["payment_type"] == {"values": "closed", "missing": "refused"}
    with pytest.raises(InvalidRequestError, match="required field 'payment_type' is missing"):
        following_the_model(features).instances([{k: v for k, v in GOOD.items() if k != "payment_type"}])
    assert following_the_model(features).instances([{k: v for k, v in GOOD.items() if k != "fare"}]).imputed == {
        "fare": 1
    }


def test_an_input_the_export_reads_as_always_present_gets_the_fill_or_is_refused(tmp_path):
    """A schema with fixed shapes (a hand-curated one) makes the export parse fare and payment_type as
    FixedLenFeatures: a missing category is sent as the preprocessing's missing token, a missing number has no
    value to stand in for it (the training mean is in the Transform graph only) and is refused."""
    from models.features import FeatureSpec
    from models.preprocessing import MISSING_TOKEN
    from models.trainer import preprocessing_handles

    schema = taxi_schema()
    for feature in schema.feature:
        if feature.name in ("fare", "payment_type"):
            feature.shape.dim.add(size=1)
    path = tmp_path / "schema.pbtxt"
    path.write_text(text_format.MessageToString(schema))
    spec = FeatureSpec(label="big_tip", numeric=("trip_seconds", "fare"), categorical=("payment_type",),
                       hashed={"company": 8}, timestamp="trip_start_timestamp", oov_buckets=1)  # fmt: skip
    features = preprocessing_handles(spec, str(path))
    assert features["fare"]["missing"] == "refused" and features["payment_type"]["fill"] == MISSING_TOKEN
    shaped = RequestValidator.from_schema(schema, [*INPUTS, "company"], [], False, features)
    got = shaped.instances([{k: v for k, v in GOOD.items() if k != "payment_type"}])
    assert got.rows[0]["payment_type"] == MISSING_TOKEN and got.imputed == {"payment_type": 1}
    with pytest.raises(InvalidRequestError, match="required field 'fare' is missing"):
        shaped.instances([{k: v for k, v in GOOD.items() if k != "fare"}])


def test_the_prediction_log_counts_what_was_served_unseen_or_imputed(contract_features, tmp_path):
    import json

    from serving.app import App
    from serving.model_store import LoadedModel

    class Scored(LoadedModel):
        def predict(self, instances):
            return [0.5] * len(instances)

    model = Scored("7", str(tmp_path), following_the_model(contract_features), "probability", None)

    class Store:
        def pick(self):
            return model

    app = App(Store(), "taxi-tips", 100_000, 10, 8, 0, str(tmp_path / "log.jsonl"))
    rows = [{**GOOD, "payment_type": "Gold"}, {k: v for k, v in GOOD.items() if k != "company"}]
    status, answer = app.predict(json.dumps({"instances": rows}).encode())
    app.log.close()
    assert status == 200 and len(answer["predictions"]) == 2
    record = json.loads((tmp_path / "log.jsonl").read_text())
    assert record["unseen"] == {"payment_type": 1} and record["imputed"] == {"company": 1}
