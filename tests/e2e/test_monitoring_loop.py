"""The loop, offline: serve predictions on a drifted span, monitor the log, see drift caught
and retraining triggered on the new span, and the new model go through the normal gates."""

import json
import os
import shutil

import pytest

from datagen import taxi
from monitoring import run as monitoring
from serving import instances, server
from serving.client import PredictionClient
from settings.config import load_config
from settings.yaml_files import deep_merge
from tests.conftest import TAXI_CONFIG, small_overrides

pytestmark = pytest.mark.e2e

WINDOW = 2000


def send(client, frame, batch=50):
    rows = instances.from_frame(frame.drop(columns=list(taxi.OUTCOMES)))  # trip_id goes along as the key
    for i in range(0, len(rows), batch):
        status, body = client.predict(rows[i : i + batch])
        assert status == 200, body


@pytest.fixture
def loop(first_run, tmp_path):
    """A copy of the first run's store and served model, with its own log and outputs."""
    config, _ = first_run
    shutil.copytree(config.pipeline.serving_dir, tmp_path / "serving")
    os.makedirs(tmp_path / "metadata")
    shutil.copy(config.pipeline.metadata_path, tmp_path / "metadata" / "metadata.sqlite")
    overrides = deep_merge(small_overrides(str(tmp_path)), {
        "serving": {"log_path": str(tmp_path / "log.jsonl")},
        "monitoring": {"output_dir": str(tmp_path / "monitoring"), "window_rows": WINDOW, "min_rows": 500},
    })  # fmt: skip
    return load_config(TAXI_CONFIG, overrides), tmp_path


def test_drifted_span_is_detected_and_retraining_runs_through_the_gates(loop):
    config, tmp_path = loop
    srv = server.build(config, port=0).start()
    client = PredictionClient(srv.url)
    reference, drifted = taxi.generate(WINDOW, seed=41), taxi.generate(WINDOW, seed=42, drift=0.8)
    send(client, reference)
    send(client, drifted)
    srv.stop()
    labels = tmp_path / "labels.csv"
    drifted[["trip_id", "big_tip"]].to_csv(labels, index=False)  # ground truth arrives for the second window

    result = monitoring.monitor(config, str(labels))
    fired = {(c["kind"], c["feature"]) for c in result["checks"] if c["alert"]}
    for kind in ("skew", "drift"):
        assert {f for k, f in fired if k == kind} == set(taxi.DRIFTED_FEATURES), (kind, fired)
    live = result["live_evaluation"]
    assert [w["labelled"] for w in live] == [0, WINDOW] and live[1]["AUC"] > 0.5
    assert result["training_metric"] is not None
    decision = result["retraining"]
    assert decision["retrain"] is True
    assert any(r.startswith("training-serving skew on fare, payment_type, trip_miles") for r in decision["reasons"])
    assert any(r.startswith("drift between serving windows on") for r in decision["reasons"])
    with open(os.path.join(result["output_dir"], "report.html")) as f:
        page = f.read()
    assert "Decision: RETRAIN" in page and page.count("<section>") == len(result["features"])

    span = tmp_path / "span-1"
    taxi.write_csv(taxi.generate(800, seed=43, drift=0.8), str(span))
    record = monitoring.retrain(config, result, str(span))
    assert record["runner"] == "local" and record["reasons"] == decision["reasons"]
    with open(tmp_path / "monitoring" / "retraining.jsonl") as f:
        assert json.loads(f.readlines()[-1])["data"] == str(span)
    from metadata.mlmd import open_store
    from metadata.run_summary import latest_run

    summary = latest_run(open_store(config.pipeline.metadata_path), config.pipeline.name)
    states = {c.component: c.state for c in summary.components}
    for gate in ("CsvExampleGen", "DataValidationGate", "Trainer", "Leaderboard", "ServingInfraValidator", "Pusher"):
        assert states[gate] == "COMPLETE", states  # new data: every gate ran again
    assert record["blessed"] == summary.blessed


def test_same_distribution_does_not_trigger_retraining(loop):
    config, _ = loop
    quiet = config.replace(monitoring=config.monitoring.replace(retrain=config.monitoring.retrain.replace(min_new_labeled_rows=0, max_model_age_days=0),
    ))  # fmt: skip
    srv = server.build(quiet, port=0).start()
    client = PredictionClient(srv.url)
    send(client, taxi.generate(WINDOW, seed=51))
    send(client, taxi.generate(WINDOW, seed=52))
    srv.stop()
    result = monitoring.monitor(quiet)
    assert [c for c in result["checks"] if c["alert"]] == []
    assert result["retraining"] == {"retrain": False, "reasons": []}


def test_live_labels_that_fail_one_group_raise_a_bias_alert(loop):
    """One company's ground truth contradicts every decision the model makes for it: on the live window
    its false positive rate is 1, the gap to the other companies is over the gate's limit, and the
    policy retrains for it. The gap is checked against numpy on the logged scores."""
    import numpy as np

    config, tmp_path = loop
    srv = server.build(config, port=0).start()
    client = PredictionClient(srv.url)
    frame = taxi.generate(WINDOW, seed=71)
    rows = instances.from_frame(frame.drop(columns=list(taxi.OUTCOMES)))
    scores = []
    for i in range(0, len(rows), 100):
        status, body = client.predict(rows[i : i + 100])
        assert status == 200, body
        scores += [p["probability"] for p in body["predictions"]]
    srv.stop()
    threshold = config.decision_threshold()
    scores, labels = np.array(scores), frame["big_tip"].to_numpy().copy()
    failed = (frame["company"] == "Company 2").to_numpy()
    labels[failed] = (scores[failed] <= threshold).astype(int)  # every yes is wrong, every no is wrong
    frame.assign(big_tip=labels)[["trip_id", "big_tip"]].to_csv(tmp_path / "labels.csv", index=False)

    result = monitoring.monitor(config, str(tmp_path / "labels.csv"))
    [window] = result["live_evaluation"]
    [fpr] = [g for g in window["bias"] if g["rate"] == "fpr"]
    assert fpr["violated"] and fpr["high_group"] == "Company 2" and fpr["high"] == 1.0
    limits = config.evaluation.fairness
    companies = frame["company"].to_numpy()
    rates = {}
    for company in set(frame["company"].dropna()):
        negatives = (companies == company) & (labels == 0)
        if negatives.sum() >= limits.min_group_size:
            rates[company] = np.mean(scores[negatives] > threshold)
    assert fpr["low_group"] == min(rates, key=rates.get)
    assert fpr["value"] == pytest.approx(1.0 - min(rates.values()))
    reasons = result["retraining"]["reasons"]
    assert f"bias on live labels: {fpr['message']}" in reasons and result["retraining"]["retrain"] is True
    with open(os.path.join(result["output_dir"], "report.html")) as f:
        assert "false positive rate of Company 2 is 1.000" in f.read()
