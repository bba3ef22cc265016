"""Canary rollout: the decision on recorded metrics, the metric queries, and the KFP pipeline."""

import json

import pytest
import yaml

from pipelines import canary
from serving.rollout import CanaryPolicy, WindowMetrics, decide, metrics_from_log, metrics_queries

pytestmark = pytest.mark.cloud

# Windows recorded from the local server's prediction log (see tests/e2e/test_serving.py) and
# from an endpoint, rounded: current model vs canary.
CURRENT = WindowMetrics(requests=9000, errors=3, p95_latency_ms=41.0, mean_score=0.212)
POLICY = CanaryPolicy()


@pytest.mark.parametrize(
    "canary, action, reason",
    [
        (WindowMetrics(1000, 0, 43.5, 0.219), "promote", "within every limit"),
        (WindowMetrics(120, 0, 40.0, 0.21), "rollback", "fewer than the 500 required"),
        (WindowMetrics(1000, 25, 42.0, 0.21), "rollback", "error rate 0.0250 > 0.01"),
        (WindowMetrics(1000, 4, 42.0, 0.21), "rollback", "exceeds the current model's"),
        (WindowMetrics(1000, 0, 60.0, 0.21), "rollback", "p95 latency 60.0 ms is over 1.3x"),
        (WindowMetrics(1000, 0, 42.0, 0.35), "rollback", "mean score moved by 0.1380"),
        (WindowMetrics(1000, 0, 42.0, float("nan")), "promote", "within every limit"),  # scores not observed
    ],
)  # fmt: skip
def test_decision_on_recorded_windows(canary, action, reason):
    decision = decide(canary, CURRENT, POLICY)
    assert decision.action == action
    assert any(reason in r for r in decision.reasons), decision.reasons
    assert json.loads(decision.to_json())["action"] == action


def test_every_failed_check_is_named():
    decision = decide(WindowMetrics(10, 5, 100.0, 0.9), CURRENT, POLICY)
    assert decision.action == "rollback" and len(decision.reasons) == 5


def test_metrics_from_the_server_log():
    log = [
        {"model_version": "1", "status": 200, "latency_ms": 2.0, "predictions": [0.1, 0.3]},
        {"model_version": "1", "status": 200, "latency_ms": 4.0, "predictions": [0.2]},
        {"model_version": "2", "status": 500, "latency_ms": 9.0},
        {"status": 400, "latency_ms": 0.1, "error": "bad"},  # rejected before a model was picked
    ]
    m = metrics_from_log(log)
    assert m["1"] == WindowMetrics(requests=2, errors=0, p95_latency_ms=4.0, mean_score=pytest.approx(0.2))
    assert m["2"].errors == 1 and m["2"].error_rate == 1.0


def test_monitoring_queries_select_one_deployed_model():
    q = metrics_queries("example-mlops-prod", "123", "456", 1000, 4600)
    assert set(q) == {"requests", "errors", "latency"}
    f = q["latency"].filter
    assert 'prediction/online/prediction_latencies"' in f and 'deployed_model_id = "456"' in f
    assert 'endpoint_id = "123"' in f and q["requests"].name == "projects/example-mlops-prod"
    assert q["latency"].aggregation.per_series_aligner.name == "ALIGN_PERCENTILE_95"
    assert q["errors"].interval.end_time.timestamp() == 4600


def test_rollout_pipeline_compiles_with_the_image(tmp_path):
    image = "us-central1-docker.pkg.dev/example-mlops-dev/mlops/tfx-pipeline:abc1234"
    path = canary.compile_rollout(image, str(tmp_path / "canary.yaml"))
    with open(path) as f:
        spec = yaml.safe_load(f)
    tasks = spec["root"]["dag"]["tasks"]
    assert set(tasks) == {"upload", "deploy-canary", "observe-and-decide", "apply"}
    assert tasks["apply"]["dependentTasks"] == ["deploy-canary", "observe-and-decide"]
    images = {e["container"]["image"] for e in spec["deploymentSpec"]["executors"].values()}
    assert images == {image}
    params = spec["root"]["inputDefinitions"]["parameters"]
    assert params["canary_percent"]["defaultValue"] == 10 and params["observe_minutes"]["defaultValue"] == 60


def test_upload_carries_the_models_commit_span_and_explanation_spec(tmp_path):
    """The Model Registry version is labelled with the commit and data span the Trainer recorded,
    and gets the Explainable AI spec the Trainer wrote, as the SDK's own types."""
    from models import explain, trainer

    extra = tmp_path / trainer.CONTRACT_DIR
    extra.mkdir()
    (extra / trainer.METADATA_FILE).write_text(json.dumps({"code_commit": "AbC123-dirty", "data_span": [3, 4]}))
    (extra / trainer.EXPLANATION_FILE).write_text(json.dumps(explain.vertex_explanation_spec(["fare"], "probability")))
    settings = canary.model_upload_settings(str(tmp_path), {"team": "ml"})
    assert settings["labels"] == {"team": "ml", "code_commit": "abc123-dirty", "data_span": "3-4"}
    assert settings["version_description"] == "commit AbC123-dirty, data span 3-4"
    assert settings["explanation_metadata"].inputs["fare"].input_tensor_name == "fare"
    assert settings["explanation_parameters"].sampled_shapley_attribution.path_count == 10
    bare = canary.model_upload_settings(str(tmp_path / "missing"), {})  # a model from before these files
    assert bare["labels"] == {"code_commit": "unknown", "data_span": "none"} and "explanation_metadata" not in bare
