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


def _runtime_artifact(artifact_type, name: str, uri: str, metadata: dict | None = None) -> dict:
    from tfx.orchestration.kubeflow.v2 import compiler_utils

    schema = compiler_utils.get_artifact_schema(artifact_type)  # bytes for TFX's own types
    schema = {"instanceSchema": schema.decode() if isinstance(schema, bytes) else schema}
    return {"artifacts": [{"name": name, "uri": uri, "type": schema, "metadata": metadata or {}}]}


def test_blessing_gate_names_the_model_as_each_orchestrator_resolves_it(tmp_path):
    """Run by TFX's Kubeflow V2 entrypoint (Vertex), the blessing's current_model_id is the model's resource
    name, which the compiled latest_blessed_model_resolver matches (`name="{{...current_model_id}}"`); run as
    the local runner runs it, the MLMD id LatestBlessedModelStrategy matches. Both stamped with their producer."""
    import argparse
    import json

    from tfx.dsl.components.base import base_beam_executor
    from tfx.orchestration.kubeflow.v2.container import kubeflow_v2_run_executor
    from tfx.proto.orchestration import pipeline_pb2
    from tfx.types import standard_artifacts

    from components import blessing_gate
    from models.leaderboard import Result, Standing

    evaluation = tmp_path / "evaluation"
    evaluation.mkdir()
    winner = Result("auc", True, [Standing("network", value=0.9, rank=1)], "network")
    (evaluation / blessing_gate.RESULT_FILE).write_text(json.dumps(winner.to_dict()))
    store = "projects/p/locations/us-central1/metadataStores/default/artifacts"
    executor_input = {
        "inputs": {"artifacts": {
            # the winner's copy, as the Leaderboard hands it over: its Trainer output is not this task's input, and
            # its URI is local (as a KFP v2 backend with gcsfuse, or `make vertex-local`, hands it out)
            "model": _runtime_artifact(standard_artifacts.Model, f"{store}/41", str(tmp_path / "model"),
                                       {"candidate": "network", "source_model_id": 17,
                                        "source_model": str(tmp_path / "Trainer" / "model")}),
            "evaluation_result": _runtime_artifact(standard_artifacts.ModelEvaluation, f"{store}/42", str(evaluation)),
        }},
        "outputs": {"artifacts": {"blessing": _runtime_artifact(standard_artifacts.ModelBlessing, f"{store}/43",
                                                                str(tmp_path / "blessing"))},
                    "outputFile": str(tmp_path / "task" / "executor_output.json")},
    }  # fmt: skip
    kubeflow_v2_run_executor._run_executor(  # what `python -m ...kubeflow_v2_run_executor` runs
        argparse.Namespace(executor_class_path=f"{blessing_gate.__name__}.Executor",
                           json_serialized_invocation_args=json.dumps(executor_input)), [])  # fmt: skip
    written = json.loads((tmp_path / "task" / "executor_output.json").read_text())
    metadata = written["artifacts"]["blessing"]["artifacts"][0]["metadata"]
    assert (metadata["blessed"], metadata["current_model_id"]) == (1, f"{store}/41")
    assert metadata["produced_by"] == "BlessingGate.blessing"
    assert (tmp_path / "blessing" / "BLESSED").exists()

    model, result, blessing = (
        standard_artifacts.Model(),
        standard_artifacts.ModelEvaluation(),
        standard_artifacts.ModelBlessing(),
    )
    model.id, model.uri, result.uri, blessing.uri = 7, str(tmp_path / "model"), str(evaluation), str(tmp_path / "local")
    model.set_string_custom_property("candidate", "network")
    model.set_int_custom_property("source_model_id", 5)
    model.set_string_custom_property("source_model", str(tmp_path / "Trainer" / "model"))
    launched = blessing_gate.Executor(base_beam_executor.BaseBeamExecutor.Context(  # as TFX's Launcher starts it
        pipeline_node=pipeline_pb2.PipelineNode()))  # fmt: skip
    launched.Do({"model": [model], "evaluation_result": [result]}, {"blessing": [blessing]}, {})
    assert blessing.get_int_custom_property("current_model_id") == 5  # the winner's Trainer output, in MLMD


def test_the_blessing_gate_reads_and_writes_artifacts_through_tfx_filesystems():
    """Artifact URIs on Vertex are gs://, which only TFX's filesystems (tf.io.gfile) open: with every URI on
    TensorFlow's in-memory filesystem, registered the way gs:// is, the gate still reads and writes."""
    import json

    from tfx.dsl.io import fileio, filesystem_registry
    from tfx.dsl.io.plugins import tensorflow_gfile
    from tfx.types import standard_artifacts

    from components import blessing_gate
    from models.leaderboard import Result, Standing

    class InMemory(tensorflow_gfile.TensorflowFilesystem):
        SUPPORTED_SCHEMES = ["ram://"]

    filesystem_registry.DEFAULT_FILESYSTEM_REGISTRY.register(InMemory, priority=50)
    root = "ram://bucket/test_the_blessing_gate"
    fileio.makedirs(f"{root}/evaluation")
    with fileio.open(f"{root}/evaluation/{blessing_gate.RESULT_FILE}", "w") as f:
        f.write(json.dumps(Result("auc", True, [Standing("network", value=0.9, rank=1)], "network").to_dict()))
    model, result, blessing = (
        standard_artifacts.Model(),
        standard_artifacts.ModelEvaluation(),
        standard_artifacts.ModelBlessing(),
    )
    model.id, model.uri, result.uri, blessing.uri = 7, f"{root}/model", f"{root}/evaluation", f"{root}/blessing"
    model.set_string_custom_property("candidate", "network")
    assert blessing_gate.bless(model, result, blessing)
    assert fileio.exists(f"{root}/blessing/BLESSED") and fileio.exists(f"{root}/blessing/{blessing_gate.RESULT_FILE}")
