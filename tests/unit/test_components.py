import pytest
import tensorflow as tf
from google.protobuf import json_format
from tensorflow_metadata.proto.v0 import anomalies_pb2

from components import file_example_gen as pii
from components.validation_gate import describe_anomalies

pytestmark = pytest.mark.unit


def test_personal_columns_round_trip_through_example_gen_config():
    config = pii.custom_config(["rider_email", "rider_name"])
    assert pii.columns_to_drop({"custom_config": json_format.MessageToJson(config)}) == {"rider_email", "rider_name"}
    assert pii.columns_to_drop({}) == frozenset()


def test_personal_features_are_removed_from_examples():
    example = tf.train.Example()
    example.features.feature["rider_email"].bytes_list.value.append(b"a@example.com")
    example.features.feature["fare"].float_list.value.append(3.5)
    out = pii.drop_features(example, frozenset({"rider_email", "rider_phone"}))
    assert list(out.features.feature) == ["fare"]
    assert "rider_email" in example.features.feature  # the input is not mutated


def test_anomalies_are_described_by_split_and_feature():
    anomalies = anomalies_pb2.Anomalies()
    info = anomalies.anomaly_info["payment_type"]
    info.short_description = "Unexpected string values"
    reason = info.reason.add()
    reason.description = "Examples contain values missing from the schema: Bitcoin (~30%)."
    lines = describe_anomalies("eval", anomalies)
    assert lines == [
        "[eval] feature 'payment_type': Unexpected string values - "
        "Examples contain values missing from the schema: Bitcoin (~30%)."
    ]
    assert describe_anomalies("train", anomalies_pb2.Anomalies()) == []


def test_served_version_is_found_by_source_model_uri(tmp_path):
    from components.idempotent_pusher import SOURCE_FILE, served_version_of

    base = tmp_path / "serving"
    assert served_version_of(str(base), "/models/1") is None
    for version, uri in (("100", "/models/1"), ("200", "/models/2")):
        (base / version / "assets.extra").mkdir(parents=True)
        (base / version / "assets.extra" / SOURCE_FILE).write_text(uri)
    (base / "300").mkdir()  # pushed by something else: no marker
    assert served_version_of(str(base), "/models/2") == "200"
    assert served_version_of(str(base), "/models/3") is None


@pytest.mark.parametrize(
    "output, value, ok",
    [
        ("probability", 0.3, True), ("probability", 1.2, False), ("probability", float("nan"), False),
        ("probability", "0.3", False), ("probabilities", [0.2, 0.5, 0.3], True), ("probabilities", [0.2, 0.5], False),
        ("probabilities", [0.9, 0.5, -0.4], False), ("probabilities", 0.5, False), ("prediction", 12.5, True),
        ("prediction", -3.0, True), ("prediction", float("inf"), False),
    ],
)  # fmt: skip
def test_infra_validation_checks_the_heads_output(output, value, ok):
    from components.serving_infra_validator import valid_prediction

    assert valid_prediction(output, value) is ok


def test_hashed_columns_become_keyed_tokens(monkeypatch):
    example = tf.train.Example()
    example.features.feature["rider_email"].bytes_list.value.append(b"ana.silva12@example.com")
    example.features.feature["fare"].float_list.value.append(3.5)
    monkeypatch.delenv(pii.HASH_SECRET_ENV, raising=False)
    with pytest.raises(ValueError, match=r"\$PII_HASH_KEY"):
        pii.hash_secret()
    monkeypatch.setenv(pii.HASH_SECRET_ENV, "a-test-key-of-32-characters-----")
    out = pii.hash_features(example, frozenset({"rider_email"}), pii.hash_secret())
    token = out.features.feature["rider_email"].bytes_list.value[0]
    assert len(token) == 32 and b"@" not in token and b"silva" not in token
    again = pii.hash_features(example, frozenset({"rider_email"}), pii.hash_secret())
    assert again.features.feature["rider_email"].bytes_list.value[0] == token  # joins across runs
    other_key = pii.hash_features(example, frozenset({"rider_email"}), b"another-key-of-32-characters----")
    assert other_key.features.feature["rider_email"].bytes_list.value[0] != token  # no key, no dictionary attack
    assert out.features.feature["fare"].float_list.value[0] == 3.5
