"""The prediction server on the model the pipeline pushed: Vertex JSON, validation, logs,
hot swap, traffic split, cache, and reliability under malformed input. Loopback only."""

import dataclasses
import json
import os
import random
import shutil
import threading

import pytest
import tensorflow as tf

from components import serving_infra_validator
from datagen import taxi
from serving import instances, model_store, rollout, server
from serving.client import PredictionClient

pytestmark = pytest.mark.e2e

PERSONAL = ["rider_name", "rider_email", "rider_phone"]
NOT_SENT = [*taxi.OUTCOMES, "trip_id"]  # the label and what only the trip's end tells; the identifier


@pytest.fixture(scope="module")
def rows():
    frame = taxi.generate(300, seed=11)
    return instances.from_frame(frame.drop(columns=NOT_SENT))  # includes personal columns, as a client might


def serve(config, tmp_path, **serving):
    """A server on a free loopback port over a copy of the pushed models."""
    serving_dir = tmp_path / "serving"
    if not serving_dir.exists():
        shutil.copytree(config.pipeline.serving_dir, serving_dir)
    settings = config.serving.replace(log_path=str(tmp_path / "log.jsonl"), poll_seconds=0.2, **serving)
    return server.build(config.replace(serving=settings), port=0, serving_dir=str(serving_dir)).start()


@pytest.fixture
def running(first_run, tmp_path):
    config, _ = first_run
    srv = serve(config, tmp_path)
    yield srv, PredictionClient(srv.url), tmp_path
    srv.stop()


def test_predictions_match_the_pushed_model_in_vertex_format(running, first_run, rows):
    """The server scores through the `serving_columns` signature; it must equal `serving_default`
    on serialized tf.Examples of the same rows, with optional values missing too."""
    srv, client, _ = running
    optional = [n for n, r in srv.app.store.pick().validator.rules.items() if not r.required]
    assert optional
    sample = rows[:18] + [{k: v for k, v in r.items() if k not in optional} for r in rows[18:20]]
    status, body = client.predict(sample)
    assert status == 200
    version = os.path.basename(first_run[1].pushed_model)
    assert body["deployedModelId"] == version and body["model"] == "taxi-tips"
    scores = [p["probability"] for p in body["predictions"]]
    # the same rows through the SavedModel directly, as serialized raw tf.Examples
    signature = tf.saved_model.load(first_run[1].pushed_model).signatures["serving_default"]
    inputs = srv.app.store.pick().validator.rules
    examples = [model_store.to_example({k: v for k, v in r.items() if k in inputs}) for r in sample]
    direct = signature(examples=tf.constant(examples))["probability"].numpy().ravel()
    assert scores == pytest.approx(direct.tolist(), abs=1e-6)
    # a request of a few rows takes the serialized path instead: the same scores
    assert len(sample) >= model_store.COLUMNS_FROM_ROWS > 2
    for start, end in ((0, 1), (18, 20)):  # the last two miss their optional values
        status, few = client.predict(sample[start:end])
        assert status == 200
        assert [p["probability"] for p in few["predictions"]] == pytest.approx(scores[start:end], abs=1e-6)
    assert len(set(round(s, 6) for s in scores)) > 5  # real, varied scores
    # the decision uses the threshold the problem's costs set (framing: 1 / (1 + 3))
    assert all(p["decision"] == (p["probability"] >= 0.25) for p in body["predictions"])
    assert {p["decision"] for p in body["predictions"]} == {True, False}


def test_explain_route_attributes_each_prediction_to_the_raw_inputs(running, rows):
    """Integrated gradients from the model's own `explain_columns` signature: one attribution per
    raw input, adding up to the score's distance from the baseline, and the same scores as predict."""
    srv, client, _ = running
    status, predicted = client.predict(rows[:8])
    status, body = client.explain(rows[:8])
    assert status == 200, body
    assert [p["probability"] for p in body["predictions"]] == [p["probability"] for p in predicted["predictions"]]
    inputs = set(srv.app.store.pick().validator.rules)
    for prediction, explanation in zip(body["predictions"], body["explanations"], strict=True):
        a = explanation["attributions"][0]
        assert set(a["featureAttributions"]) == inputs
        assert a["instanceOutputValue"] == pytest.approx(prediction["probability"], abs=1e-5)
        assert a["approximationError"] < 0.05 * max(0.05, abs(a["instanceOutputValue"] - a["baselineOutputValue"]))
        assert any(abs(v) > 1e-4 for v in a["featureAttributions"].values())


def test_health_and_metadata_routes(running):
    _, client, _ = running
    assert client.get("/health") == (200, {"status": "ok"})
    status, meta = client.get("/v1/models/taxi-tips")
    assert status == 200
    assert meta["inputs"]["payment_type"]["domain"][0] == "Cash"
    assert meta["inputs"]["fare"] == {
        "type": "float",
        "required": False,
        "min": 0.0,
        "max": 10000.0,
        "missing": "imputed",
    }  # the schema's range; every training row had a fare, a missing one is imputed
    assert not any(p in meta["inputs"] for p in PERSONAL)


def test_a_missing_number_every_training_row_had_is_imputed_and_logged(running, first_run, rows):
    """fare is in every training row; without it the Transform graph gives its training mean (z = 0) and the
    missing indicator: the same score on the tf.Example path (TFMA, batch prediction), and the log counts it.
    A value that stands in for the mean would not do: the indicator tells the network it is missing."""
    srv, client, tmp_path = running
    assert srv.app.store.pick().validator.rules["fare"].imputed  # present in every training row, imputed by the model
    without = {k: v for k, v in rows[0].items() if k != "fare"}
    status, body = client.predict([rows[1], without])
    assert status == 200, body
    served = body["predictions"][1]["probability"]
    signature = tf.saved_model.load(first_run[1].pushed_model).signatures["serving_default"]
    inputs = srv.app.store.pick().validator.rules
    example = model_store.to_example({k: v for k, v in without.items() if k in inputs})
    direct = signature(examples=tf.constant([example]))["probability"].numpy().ravel()[0]
    assert 0.0 < served < 1.0 and served == pytest.approx(float(direct), abs=1e-6)
    status, with_fare = client.predict([rows[0]])
    assert with_fare["predictions"][0]["probability"] != pytest.approx(served, abs=1e-9)
    srv.app.log.close()
    with open(tmp_path / "log.jsonl") as f:
        records = [json.loads(line) for line in f]
    assert any(r.get("imputed") == {"fare": 1} for r in records), records


@pytest.mark.parametrize(
    "change, status, message",
    [
        (lambda r: r.update(fare="twelve"), 400, "field 'fare' must be a number, got str"),
        (lambda r: r.update(fare=-5.0), 400, "field 'fare' value -5.0 is outside [0.0, 10000.0]"),
        (lambda r: r.update(pickup_community_area=3.5), 400, "field 'pickup_community_area' must be an integer"),
        (lambda r: r.update(shoe_size=42), 400, "unknown field 'shoe_size'"),
        (lambda r: r.update(payment_type=7), 400, "field 'payment_type' must be a string"),
        (lambda r: r.update(trip_miles=True), 400, "field 'trip_miles' must be a number, got bool"),
    ],
)  # fmt: skip
def test_bad_instances_get_a_4xx_naming_the_field(running, rows, change, status, message):
    _, client, _ = running
    bad = dict(rows[0])
    change(bad)
    code, body = client.predict([rows[1], bad])
    assert code == status
    assert body["error"] == f"instances[1]: {message}" or body["error"].startswith(f"instances[1]: {message}")


def test_request_level_errors(running, rows):
    srv, client, _ = running
    assert client.post_raw(b'{"instances": [{"fare": NaN}]}')[0] == 400
    assert "NaN is not a valid number" in client.post_raw(b'{"instances": [{"fare": NaN}]}')[1]["error"]
    assert client.post_raw(b"{not json")[0] == 400
    assert client.post_raw(b'{"rows": []}')[1]["error"].startswith(
        'request body must be a JSON object with an "instances"'
    )
    assert client.post_raw(b'{"instances": []}')[0] == 400
    big = json.dumps({"instances": rows * 20}).encode()  # 6,000 rows: over max_instances and max_body_bytes
    assert len(big) > srv.app.max_body_bytes
    assert client.post_raw(big)[0] == 413
    assert client.predict(rows[:2])[0] == 200  # the client reconnects; the server is fine


def test_each_request_is_logged_without_personal_data(running, rows):
    srv, client, tmp_path = running
    client.predict(rows[:5])
    client.predict([{"fare": "x"}])
    srv.app.log.close()
    with open(tmp_path / "log.jsonl") as f:
        records = [json.loads(line) for line in f]
    assert [r["status"] for r in records] == [200, 400]
    ok = records[0]
    assert ok["model_version"] and len(ok["predictions"]) == 5 and len(ok["instances"]) == 5
    assert ok["instances"][0]["fare"] == rows[0]["fare"]
    text = json.dumps(records)
    for r in rows[:5]:
        for column in PERSONAL:
            assert column not in text and str(r[column]) not in text


def test_hot_swap_to_a_new_version_without_dropping_requests(first_run, tmp_path, rows):
    config, summary = first_run
    srv = serve(config, tmp_path)
    old = os.path.basename(summary.pushed_model)
    seen, errors = [], []
    stop = threading.Event()

    def load_loop():
        c = PredictionClient(srv.url)
        for i in range(20000):  # bounded; stopped once the new version answers
            if stop.is_set():
                break
            status, body = c.predict([rows[i % len(rows)]])
            (seen if status == 200 else errors).append(body.get("deployedModelId", body))

    thread = threading.Thread(target=load_loop)
    thread.start()
    new = str(int(old) + 1)
    staging = tmp_path / "staging"
    shutil.copytree(summary.pushed_model, staging)
    os.rename(staging, tmp_path / "serving" / new)  # a push lands atomically, like the Pusher's copy
    for _ in range(100):
        if new in seen[-5:]:
            break
        threading.Event().wait(0.1)
    stop.set()
    thread.join()
    srv.stop()
    assert errors == []
    assert seen[0] == old and seen[-1] == new


def test_traffic_split_between_two_versions(first_run, tmp_path, rows):
    config, summary = first_run
    serving_dir = tmp_path / "serving"
    shutil.copytree(config.pipeline.serving_dir, serving_dir)
    old = os.path.basename(summary.pushed_model)
    new = str(int(old) + 1)
    shutil.copytree(summary.pushed_model, serving_dir / new)
    srv = serve(config, tmp_path, canary_percent=25, cache_size=0)
    client = PredictionClient(srv.url)
    versions = [client.predict([random.choice(rows)])[1]["deployedModelId"] for _ in range(600)]
    srv.stop()
    share = versions.count(new) / len(versions)
    assert set(versions) == {old, new}
    assert 0.18 < share < 0.32, share
    # the rollout decision on this window, from the server's own log: the canary is the same model
    with open(tmp_path / "log.jsonl") as f:
        window = rollout.metrics_from_log([json.loads(line) for line in f])
    assert window[new].requests + window[old].requests == 600
    policy = rollout.CanaryPolicy(min_requests=100, max_latency_ratio=5.0, max_mean_score_shift=0.15)
    assert rollout.decide(window[new], window[old], policy).action == "promote"
    broken = dataclasses.replace(window[new], errors=window[new].requests // 10)
    assert rollout.decide(broken, window[old], policy).action == "rollback"


def test_infra_validation_serves_the_model_and_catches_a_broken_one(first_run, tmp_path, rows):
    config, summary = first_run
    personal = list(config.data.personal_columns)
    canaries = [{**r, "trip_id": "t", "big_tip": 0} for r in rows[:20]]  # eval rows carry id and label
    assert serving_infra_validator.canary_check(summary.pushed_model, canaries, personal) == []
    broken = tmp_path / "broken"
    shutil.copytree(summary.pushed_model, broken)
    contract = broken / "assets.extra" / "serving_contract.json"
    contract.write_text(json.dumps({**json.loads(contract.read_text()), "output": "no_such_output"}))
    problems = serving_infra_validator.canary_check(str(broken), canaries, personal)
    assert len(problems) == 1 and "loading the model as the server does failed" in problems[0]
    assert "no_such_output" in problems[0]


def test_repeated_rows_come_from_the_cache(running, rows):
    srv, client, _ = running
    first = client.predict(rows[:10])[1]["predictions"]
    hits = srv.app.cache.hits
    again = client.predict(rows[:10])[1]["predictions"]
    assert again == first and srv.app.cache.hits == hits + 10


def test_1000_malformed_then_10000_valid_requests(running, rows):
    """Zero 5xx, no crash, every valid request answered."""
    srv, client, _ = running
    good = rows[0]
    malformed = [
        b"", b"{", b"[]", b"null", b'{"instances": null}', b'{"instances": "x"}', b'{"instances": [1, 2]}',
        b'{"instances": [{"fare": Infinity}]}', b'{"instances": [{"fare": -Infinity}]}', "\ud800".encode("utf-8", "surrogatepass"),
        b"\xff\xfe\x00garbage", b'{"instances": [{}]}', b'{"instances": [[]]}', ("[" * 5000 + "]" * 5000).encode(),
        json.dumps({"instances": [{**good, "Ünïcødé 🚕": "x"}]}).encode(),  # (an unseen company is served)
        json.dumps({"instances": [{**good, "fare": "F"}]}).replace('"F"', "1e400").encode(),
        json.dumps({"instances": [{**good, "pickup_community_area": 2**70}]}).encode(),
        json.dumps({"instances": [{**good, "fare": [1, 2]}]}).encode(),
        json.dumps({"instances": [{**good, "fare": {"a": 1}}]}).encode(),
        json.dumps({"instances": [{**good, "x" * 10000: 1}]}).encode(),
        json.dumps({"instances": [good], "extra": 1}).encode(),
    ]  # fmt: skip
    statuses = []
    for i in range(1000):
        body = malformed[i % len(malformed)]
        if i % 50 == 0:
            body = b'{"instances": [' + b"1," * 600_000 + b"1]}"  # huge payload
        statuses.append(client.post_raw(body)[0])
        if i % 97 == 0:  # a wrong Content-Length header is a client error too
            statuses.append(client.post_raw(b"", headers={"Content-Length": "abc"})[0])
    assert all(400 <= s < 500 for s in statuses), sorted(set(statuses))

    answered = []
    lock = threading.Lock()

    def valid(n: int, seed: int):
        c = PredictionClient(srv.url)
        r = random.Random(seed)
        for _ in range(n):
            batch = [rows[r.randrange(len(rows))] for _ in range(r.choice((1, 1, 1, 5)))]
            status, body = c.predict(batch)
            with lock:
                answered.append((status, len(body.get("predictions", [])) == len(batch)))

    threads = [threading.Thread(target=valid, args=(2500, s)) for s in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(answered) == 10000
    assert all(status == 200 and complete for status, complete in answered)
    assert srv.app.counts[500] == 0 and srv.app.counts[503] == 0
    assert client.get("/health")[0] == 200


def test_fuzzed_from_its_openapi_spec_no_request_gets_a_5xx_or_hangs(running):
    """schemathesis generates requests from the server's own OpenAPI spec, valid and invalid by the spec, for every
    operation: at least 2,000 in all; each must be answered within the timeout, and none with a 5xx."""
    import schemathesis
    from hypothesis import HealthCheck, given, settings

    srv, client, _ = running
    schema = schemathesis.openapi.from_url(f"{srv.url}/openapi.json")
    calls, failures = [], []
    per_operation = 300
    for result in schema.get_all_operations():
        operation = result.ok()
        modes = [schemathesis.GenerationMode.POSITIVE]
        if operation.method.upper() == "POST":  # a GET here takes nothing that could be made invalid
            modes.append(schemathesis.GenerationMode.NEGATIVE)
        for mode in modes:

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(max_examples=per_operation, deadline=None, database=None, derandomize=True,
                      suppress_health_check=list(HealthCheck))  # fmt: skip
            def check(case):
                response = case.call(base_url=srv.url, timeout=10)  # a hang is a timeout: the test fails
                calls.append(response.status_code)
                if response.status_code >= 500:
                    failures.append((case.method, case.path, case.body, response.status_code, response.text[:200]))

            check()
    assert not failures, failures[:5]
    assert len(calls) >= 2000, len(calls)
    assert any(s == 200 for s in calls) and any(400 <= s < 500 for s in calls)  # both kinds were generated
    assert srv.app.counts[500] == 0 and client.get("/health")[0] == 200


def test_the_aiplatform_sdks_own_model_server_serves_the_predictor(first_run, monkeypatch):
    """The custom prediction routine: the SDK's CprModelServer and PredictionHandler load ServingPredictor
    from the pushed version, and answer as this project's server does (scores, decisions, a 400 naming the
    field)."""
    from fastapi.testclient import TestClient
    from google.cloud.aiplatform.prediction.model_server import CprModelServer

    config, summary = first_run
    env = {"HANDLER_MODULE": "google.cloud.aiplatform.prediction.handler", "HANDLER_CLASS": "PredictionHandler",
           "PREDICTOR_MODULE": "serving.cpr", "PREDICTOR_CLASS": "ServingPredictor",
           "AIP_STORAGE_URI": summary.pushed_model, "PERSONAL_COLUMNS": ",".join(config.data.personal_columns),
           "KEY_COLUMN": config.data.key_column,
           "AIP_HTTP_PORT": "8080", "AIP_HEALTH_ROUTE": "/health", "AIP_PREDICT_ROUTE": "/predict"}  # fmt: skip
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    cpr = TestClient(CprModelServer().app)
    assert cpr.get("/health").status_code == 200
    rows = instances.from_frame(taxi.generate(20, seed=31).drop(columns=list(taxi.OUTCOMES)))
    ours = server.build(config, port=0).start()
    try:
        status, expected = PredictionClient(ours.url).predict(rows)
        _, refused = PredictionClient(ours.url).predict([{**rows[0], "fare": -5.0}])
    finally:
        ours.stop()
    answer = cpr.post("/predict", json={"instances": rows})
    assert status == answer.status_code == 200
    got = answer.json()
    assert got["deployedModelId"] == expected["deployedModelId"] == os.path.basename(summary.pushed_model)
    assert [p["decision"] for p in got["predictions"]] == [p["decision"] for p in expected["predictions"]]
    assert [p["probability"] for p in got["predictions"]] == pytest.approx(
        [p["probability"] for p in expected["predictions"]], abs=1e-6
    )
    bad = cpr.post("/predict", json={"instances": [{**rows[0], "fare": -5.0}]})
    assert bad.status_code == 400 and bad.json()["detail"] == refused["error"]
