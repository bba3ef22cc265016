"""Monitoring run: prediction log -> skew, drift, live metrics -> report -> retraining decision.

  python -m monitoring.run --config configs/taxi.yaml [--labels labels.csv] [--retrain-data DIR]
  (make monitor)

Reads the server's JSON-lines log, splits it into windows of `monitoring.window_rows`
rows (oldest first), measures skew of the newest window against the served model's
training statistics (found by lineage in ML Metadata) and drift against the window
before, joins labels (a CSV or JSON-lines file of `<key_column>,<label>`) to compute
the live gating metric per window, applies the retraining policy and writes
`result.json` and `report.html` under `monitoring.output_dir/<time>/`. With
`--retrain-data DIR` (a new span) a firing policy runs the training pipeline on it
(locally; `--profile` submits it to Vertex AI instead) and records why in
`monitoring.output_dir/retraining.jsonl`.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import logging
import os
import sys
import time

import pandas as pd
from google.protobuf import text_format
from tensorflow_metadata.proto.v0 import schema_pb2

from monitoring import baseline, checks, policy, report
from monitoring.live import evaluate
from settings import entry, logs
from settings.config import Config, ConfigError, load_config
from settings.metrics import higher_is_better


def bigquery_log_query(table: str, limit_rows: int) -> str:
    """The query over a Vertex AI endpoint's request-response logging table (bq://project.dataset.table)."""
    name = table[len("bq://") :]
    return (
        "SELECT UNIX_SECONDS(logging_time) AS time, deployed_model_id, request_payload, response_payload "
        f"FROM `{name}` ORDER BY logging_time DESC LIMIT {int(limit_rows)}"
    )


def records_from_bigquery_rows(rows) -> list[dict]:
    """Request-response logging rows -> the local server's log records."""
    out = []
    for row in rows:
        requests = [json.loads(p) for p in row["request_payload"]]
        responses = [json.loads(p) for p in row["response_payload"]]
        for request, response in zip(requests, responses, strict=True):
            predictions = [_score(p) for p in response["predictions"]]
            out.append({"time": row["time"], "status": 200, "model_version": row["deployed_model_id"],
                        "instances": request["instances"], "predictions": predictions})  # fmt: skip
    return out


def _score(prediction):
    """A prediction's score: the binary probability, the class probabilities or the regression value."""
    if not isinstance(prediction, dict):
        return prediction
    return next(prediction[k] for k in ("probability", "probabilities", "prediction") if k in prediction)


def _log_records(path: str):
    if path.startswith("bq://"):
        from google.cloud import bigquery

        rows = bigquery.Client().query(bigquery_log_query(path, 1_000_000)).result()
        yield from records_from_bigquery_rows(rows)
        return
    with open(path, encoding="utf-8") as f:
        for line in f:
            yield json.loads(line)


def read_log(path: str) -> pd.DataFrame:
    """One row per scored instance of the answered requests, oldest first. `path` is the
    server's JSON-lines log, or bq://project.dataset.table for a Vertex AI endpoint's
    request-response logging table."""
    rows = []
    for record in _log_records(path):
        if record.get("status") != 200:
            continue
        keys = record.get("keys") or [None] * len(record["instances"])
        for instance, score, key in zip(record["instances"], record["predictions"], keys, strict=True):
            rows.append({**instance, "_time": record["time"], "_model_version": record["model_version"],
                         "_key": key, "_prediction": score})  # fmt: skip
    if not rows:
        raise ValueError(f"{path}: no answered predictions to monitor")
    return pd.DataFrame(rows).sort_values("_time", kind="stable").reset_index(drop=True)


def windows(frame: pd.DataFrame, size: int, min_rows: int) -> list[pd.DataFrame]:
    """Consecutive windows of `size` rows; a last partial window counts if it has `min_rows`."""
    out = [frame.iloc[i : i + size] for i in range(0, len(frame), size)]
    return [w for w in out if len(w) >= min_rows]


def read_labels(path: str, key_column: str, label: str) -> pd.DataFrame:
    frame = pd.read_json(path, lines=True) if path.endswith((".jsonl", ".json")) else pd.read_csv(path)
    missing = {key_column, label} - set(frame.columns)
    if missing:
        raise ValueError(f"{path}: labels need the columns {sorted(missing)}")
    return frame[[key_column, label]].rename(columns={key_column: "_key", label: "_label"}).astype({"_key": str})


def live_bound(config: Config) -> float:
    """The live gating metric's floor (its ceiling for an error metric): the policy's, else the Evaluator's."""
    r, e = config.monitoring.retrain, config.evaluation
    if higher_is_better(e.metric):
        return r.min_live_metric if r.min_live_metric is not None else e.lower_bound
    return r.max_live_error if r.max_live_error is not None else e.upper_bound


def served_baseline(config: Config, served: str) -> tuple[baseline.Baseline, schema_pb2.Schema, list[str]]:
    """The served version's training statistics (by lineage), its schema, and the monitored features."""
    from metadata.mlmd import open_store
    from serving import model_store

    base = baseline.find(open_store(config.pipeline.metadata_path), served)
    schema = schema_pb2.Schema()
    with open(os.path.join(served, model_store.SCHEMA)) as f:
        text_format.Parse(f.read(), schema)
    contract = model_store.read_contract(served)
    return base, schema, [f for f in contract["inputs"] if f not in config.monitoring.exclude]


def monitor(config: Config, labels_path: str | None = None, now: float | None = None) -> dict:
    """One monitoring pass; writes result.json and report.html and returns the result."""
    m = config.monitoring
    frame = read_log(m.log_path)
    version = str(frame["_model_version"].iloc[-1])
    logs.bind(model_version=version)
    served = os.path.join(config.pipeline.serving_dir, version)
    base, schema, features = served_baseline(config, served)

    parts = windows(frame[frame["_model_version"] == version], m.window_rows, m.min_rows)
    if not parts:
        raise ValueError(f"fewer than monitoring.min_rows={m.min_rows} logged rows for model {version}")
    current = checks.statistics(parts[-1][features])
    previous = checks.statistics(parts[-2][features]) if len(parts) > 1 else None
    found = checks.compare(checks.with_comparators(schema, features, m), base.training_statistics, current, previous)

    metric = config.evaluation.metric
    labels = read_labels(labels_path, config.data.key_column, config.label) if labels_path else None
    live = evaluate(config, parts, labels)
    latest_metric = next((w[metric] for w in reversed(live) if w[metric] is not None), None)
    latest_bias = next((w["bias"] for w in reversed(live) if w["labelled"]), [])
    now = now or time.time()
    seen = policy.Observations(
        skew_alerts=sorted({c.feature for c in found if c.kind == "skew" and c.alert}),
        drift_alerts=sorted({c.feature for c in found if c.kind == "drift" and c.alert}),
        live_metric=latest_metric,
        bias_alerts=[g["message"] for g in latest_bias if g["violated"]],
        new_labeled_rows=sum(w["labelled"] for w in live),
        model_age_days=(now - base.trained_at) / 86400.0,
    )
    decision = policy.decide(seen, m.retrain, metric, live_bound(config), higher_is_better(metric))
    result = {
        "time": datetime.datetime.fromtimestamp(now, datetime.UTC).isoformat(),
        "model_version": version,
        "model_uri": base.model_uri,
        "training_statistics": base.statistics_uri,
        "rows": int(len(frame)),
        "windows": [len(w) for w in parts],
        "current_window_rows": len(parts[-1]),
        "features": features,
        "checks": [c.to_dict() for c in found],
        "metric": metric,
        "training_metric": baseline.evaluated_metric(base.evaluation_uri, metric, base.candidate),
        "live_evaluation": live,
        "observations": dataclasses.asdict(seen),
        "retraining": decision.to_dict(),
    }
    out_dir = os.path.join(m.output_dir, datetime.datetime.fromtimestamp(now, datetime.UTC).strftime("%Y%m%dT%H%M%S"))
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "result.json"), "w") as f:
        json.dump(result, f, indent=2)
    with open(os.path.join(out_dir, "report.html"), "w") as f:
        f.write(report.render(result, base.training_statistics, current))
    result["output_dir"] = out_dir
    logging.info(
        "monitoring: %d alerts; retrain=%s %s", sum(c.alert for c in found), decision.retrain, decision.reasons
    )
    return result


def retrain(config: Config, result: dict, new_data: str, profile: str | None = None, dry_run: bool = False) -> dict:
    """Runs (or submits) the training pipeline on `new_data` and records why."""
    record = {"time": result["time"], "model_version": result["model_version"], "data": new_data,
              "reasons": result["retraining"]["reasons"]}  # fmt: skip
    if profile:
        from pipelines import vertex

        cloud = load_config(profile)
        # monitoring retrains because the data moved: the gate reports that drift instead of stopping
        request = vertex.submit(cloud, vertex.template_file(cloud), {"data_root": new_data, "span_drift": "report"},
                                labels={"trigger": "monitoring"}, dry_run=dry_run)  # fmt: skip
        record.update(runner="vertex", job=request["pipelineJobId"])
    else:
        from pipelines import local_runner

        data = config.data.replace(path=new_data, generate=None, span_drift="report")
        summary = local_runner.run(config.replace(data=data))
        record.update(runner="local", run_id=summary.run_id, blessed=summary.blessed, pushed=summary.pushed_model)
    os.makedirs(config.monitoring.output_dir, exist_ok=True)
    with open(os.path.join(config.monitoring.output_dir, "retraining.jsonl"), "a") as f:
        f.write(json.dumps(record) + "\n")
    return record


def main(argv: list[str] | None = None) -> int:
    parser = entry.parser(__doc__)
    parser.add_argument("--labels", help="ground truth: CSV or JSON lines with the key column and the label")
    parser.add_argument("--retrain-data", help="a new span to train on if the policy fires")
    parser.add_argument("--profile", help="submit the retraining to Vertex AI with this profile")
    parser.add_argument("--dry-run", action="store_true", help="with --profile: print the request only")
    args = parser.parse_args(argv)
    try:
        config = entry.load(args)
        logs.setup(config.log_level, pipeline=config.pipeline.name, entry="monitoring")
        result = monitor(config, args.labels)
    except (ConfigError, ValueError, LookupError, FileNotFoundError) as e:
        print(f"monitoring error: {e}", file=sys.stderr)
        return 2
    alerts = [c for c in result["checks"] if c["alert"]]
    print(json.dumps({"model_version": result["model_version"], "alerts": alerts,
                      "retraining": result["retraining"], "report": result["output_dir"]}, indent=2))  # fmt: skip
    if result["retraining"]["retrain"] and args.retrain_data:
        print(json.dumps(retrain(config, result, args.retrain_data, args.profile, args.dry_run), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
