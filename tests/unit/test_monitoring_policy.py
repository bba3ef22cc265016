"""The retraining policy fires exactly when it says, and the Vertex AI Model Monitoring job
is the local monitoring's configuration."""

import os

import pytest

from monitoring.policy import Observations, decide
from monitoring.vertex_monitoring import job_request
from settings.config import load_config
from settings.sections import RetrainPolicyConfig
from tests.conftest import REPO, TAXI_CONFIG

pytestmark = pytest.mark.unit

POLICY = RetrainPolicyConfig(important_features=("fare", "payment_type"), min_new_labeled_rows=1000,
                             max_model_age_days=30)  # fmt: skip


@pytest.mark.parametrize(
    "seen, reasons",
    [
        (Observations(), []),
        (Observations(skew_alerts=["company"]), []),  # not an important feature
        (Observations(skew_alerts=["fare", "company"]), ["training-serving skew on fare"]),
        (Observations(drift_alerts=["payment_type"]), ["drift between serving windows on payment_type"]),
        (Observations(live_metric=0.69), ["live AUC 0.6900 is below 0.7"]),
        (Observations(live_metric=0.70), []),
        (Observations(new_labeled_rows=999), []),
        (Observations(new_labeled_rows=1000), ["1000 new labelled rows (at least 1000)"]),
        (Observations(model_age_days=30.5), ["the served model is 30.5 days old (limit 30)"]),
        (Observations(skew_alerts=["fare"], live_metric=0.5), ["training-serving skew on fare", "live AUC 0.5000 is below 0.7"]),
    ],
)  # fmt: skip
def test_retraining_fires_exactly_when_the_policy_says(seen, reasons):
    decision = decide(seen, POLICY, "AUC", 0.7)
    assert decision.reasons == reasons and decision.retrain == bool(reasons)


def test_disabled_rules_do_not_fire():
    off = RetrainPolicyConfig(on_skew=False, on_drift=False)
    seen = Observations(skew_alerts=["fare"], drift_alerts=["fare"], new_labeled_rows=10**6, model_age_days=400)
    assert decide(seen, off, "AUC", 0.7).retrain is False


def test_vertex_model_monitoring_job_from_the_same_config():
    config = load_config(os.path.join(REPO, "configs", "vertex-prod.yaml"),
                         {"monitoring": {"alert_emails": ["ml-oncall@example.com"]}})  # fmt: skip
    endpoint = "projects/example-mlops-prod/locations/europe-west4/endpoints/42"
    request = job_request(config, endpoint, ["7", "8"], "bq://example-mlops-prod.taxi.trips",
                          categorical={"payment_type", "company", "taxi_id"})  # fmt: skip
    assert request.parent == "projects/example-mlops-prod/locations/europe-west4"
    job = request.model_deployment_monitoring_job
    assert job.endpoint == endpoint and job.display_name == "taxi-tips-monitoring"
    assert [c.deployed_model_id for c in job.model_deployment_monitoring_objective_configs] == ["7", "8"]
    objective = job.model_deployment_monitoring_objective_configs[0].objective_config
    skew = objective.training_prediction_skew_detection_config.skew_thresholds
    drift = objective.prediction_drift_detection_config.drift_thresholds
    m = config.monitoring
    assert skew["payment_type"].value == m.skew_linf and skew["fare"].value == m.skew_js
    assert drift["company"].value == m.drift_linf and "trip_start_timestamp" not in drift  # excluded
    assert objective.training_dataset.bigquery_source.input_uri == "bq://example-mlops-prod.taxi.trips"
    assert objective.training_dataset.target_field == "big_tip"
    assert job.logging_sampling_strategy.random_sample_config.sample_rate == m.sample_rate
    assert job.model_deployment_monitoring_schedule_config.monitor_interval.seconds == 3600
    assert list(job.model_monitoring_alert_config.email_alert_config.user_emails) == ["ml-oncall@example.com"]
    assert job.encryption_spec.kms_key_name == config.vertex.encryption_key


def test_monitoring_config_names_real_features(tmp_path):
    from settings.config import ConfigError

    with pytest.raises(ConfigError, match="'monitoring' names 'shoe_size', which is not a feature"):
        load_config(TAXI_CONFIG, {"monitoring": {"exclude": ["shoe_size"]}})


def test_monitoring_pipeline_compiles(tmp_path):
    import yaml

    from monitoring.pipeline import compile_monitoring

    image = "europe-west4-docker.pkg.dev/example-mlops-prod/mlops/tfx-pipeline:v1"
    with open(compile_monitoring(image, str(tmp_path / "m.yaml"))) as f:
        spec = yaml.safe_load(f)
    assert set(spec["root"]["dag"]["tasks"]) == {"monitor", "retrain"}
    assert spec["root"]["dag"]["tasks"]["retrain"]["dependentTasks"] == ["monitor"]
    assert {e["container"]["image"] for e in spec["deploymentSpec"]["executors"].values()} == {image}


def test_vertex_request_response_log_rows_become_log_records():
    import json

    from monitoring.run import bigquery_log_query, records_from_bigquery_rows

    q = bigquery_log_query("bq://p.d.req_resp", 5000)
    assert "FROM `p.d.req_resp`" in q and q.endswith("LIMIT 5000")
    row = {
        "time": 1795300000, "deployed_model_id": "77",
        "request_payload": [json.dumps({"instances": [{"fare": 3.0}, {"fare": 4.0}]})],
        "response_payload": [json.dumps({"predictions": [{"probability": 0.1}, {"probability": 0.9}]})],
    }  # fmt: skip
    (record,) = records_from_bigquery_rows([row])
    assert record["model_version"] == "77" and record["predictions"] == [0.1, 0.9]
    assert record["instances"][1] == {"fare": 4.0} and record["status"] == 200
    # multiclass and regression answers: the class probabilities, the value
    row["response_payload"] = [json.dumps({"predictions": [{"probabilities": [0.2, 0.8], "class": 1},
                                                           {"prediction": 2.5}]})]  # fmt: skip
    assert records_from_bigquery_rows([row])[0]["predictions"] == [[0.2, 0.8], 2.5]


def test_an_error_metric_fires_above_its_ceiling_and_bias_is_a_reason():
    seen = Observations(live_metric=2.3, bias_alerts=["company: false positive rate of Company 2 is 0.9 ..."])
    decision = decide(seen, RetrainPolicyConfig(), "RootMeanSquaredError", 2.0, higher_is_better=False)
    assert decision.reasons == ["live RootMeanSquaredError 2.3000 is above 2.0",
                                "bias on live labels: company: false positive rate of Company 2 is 0.9 ..."]  # fmt: skip
    assert (
        decide(Observations(live_metric=1.9), RetrainPolicyConfig(), "MeanAbsoluteError", 2.0, False).retrain is False
    )
    assert decide(seen, RetrainPolicyConfig(on_bias=False), "RootMeanSquaredError", 2.5, False).retrain is False


@pytest.mark.parametrize("config_file", ["taxi-multiclass.yaml", "taxi-regression.yaml"])
def test_live_quality_for_multiclass_and_regression(config_file):
    import numpy as np

    from monitoring.live import quality

    config = load_config(os.path.join(REPO, "configs", config_file))
    rng = np.random.default_rng(3)
    if config.problem_type == "regression":
        truth, predicted = rng.gamma(2.0, 1.0, 300), rng.gamma(2.0, 1.0, 300)
        found = quality(config, truth, list(predicted))
        assert found["RootMeanSquaredError"] == pytest.approx(np.sqrt(np.mean((truth - predicted) ** 2)))
        assert found["MeanAbsoluteError"] == pytest.approx(np.mean(np.abs(truth - predicted)))
        assert found[config.evaluation.metric] == found["RootMeanSquaredError"]
        return
    truth = rng.integers(0, 3, 300)
    probabilities = rng.dirichlet([1, 1, 1], 300)
    found = quality(config, truth, probabilities.tolist())
    predicted = probabilities.argmax(axis=1)
    assert found["SparseCategoricalAccuracy"] == pytest.approx(np.mean(predicted == truth))
    for c in range(3):
        assert found[f"recall_class_{c}"] == pytest.approx(np.mean(predicted[truth == c] == c))


def test_text_labels_arrive_as_class_ids():
    import pandas as pd

    from monitoring.live import labels_as_ids

    config = load_config(
        os.path.join(REPO, "configs", "taxi-multiclass.yaml"), {"label_classes": ["low", "mid", "high"]}
    )
    assert labels_as_ids(config, pd.Series(["high", "low", "mid"], dtype=object)).tolist() == [2, 0, 1]
    with pytest.raises(ValueError, match="'huge' is not one of label_classes"):
        labels_as_ids(config, pd.Series(["huge"], dtype=object))


@pytest.mark.parametrize("config_file", ["taxi-multiclass.yaml", "taxi-regression.yaml"])
def test_vertex_model_monitoring_job_for_each_problem_type(config_file):
    config = load_config(os.path.join(REPO, "configs", config_file))
    request = job_request(config, "projects/p/locations/l/endpoints/1", ["3"], "bq://p.taxi.trips",
                          categorical={"payment_type", "company"})  # fmt: skip
    objective = request.model_deployment_monitoring_job.model_deployment_monitoring_objective_configs[
        0
    ].objective_config
    assert objective.training_dataset.target_field == config.label  # tip_class / tip_amount
    skew = objective.training_prediction_skew_detection_config.skew_thresholds
    assert set(skew) == set(config.features.inputs()) - set(config.monitoring.exclude)
    assert config.label not in skew and skew["company"].value == config.monitoring.skew_linf
