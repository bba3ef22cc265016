"""The report's sections on the run and its data: push decision, statistics and anomalies, feature
screening, tuning trials, learning curves."""

from __future__ import annotations

import json
import math
import os

from reports.artifacts import RunArtifacts
from reports.charts import bar_chart, histogram_chart, line_chart
from reports.model_sections import margin_text
from reports.templating import render_section


def gate_terms(gate) -> dict[str, str]:
    """The gate as the Evaluator applies it (pipelines/eval_configs.py): a floor and no drop for a
    higher-is-better metric, a ceiling and no rise for an error."""
    from settings.metrics import higher_is_better

    change = f"of more than {gate.max_regression:g}"
    if higher_is_better(gate.metric):
        return {"bound": f"{gate.metric} ≥ {gate.lower_bound:g}", "change": f"no drop {change}"}
    return {"bound": f"{gate.metric} ≤ {gate.upper_bound:g}", "change": f"no rise {change}"}


def decision_section(summary, config) -> str:
    gate = config.evaluation
    baselines = None
    if gate.baselines:
        baselines = {"heuristic": margin_text(gate, gate.baselines.margin)}
    return render_section(
        "decision", pushed=summary.pushed_model, blessed=summary.blessed, failures=list(summary.failures),
        failed_components=[c.component for c in summary.components if c.state == "FAILED"], gate=gate,
        baselines=baselines, terms=gate_terms(gate), components=[[c.component, c.state, f"{c.seconds:.1f} s"] for c in summary.components],
    )  # fmt: skip


def data_section(artifacts: RunArtifacts, out_dir: str) -> str:
    import tensorflow_data_validation as tfdv

    from components.validation_gate import DRIFT_FILE

    stats_uri = artifacts.first("StatisticsGen", "ExampleStatistics")
    splits = []
    for split in ("train", "eval") if stats_uri else ():
        path = os.path.join(stats_uri, f"Split-{split}", "FeatureStats.pb")
        if not os.path.exists(path):
            continue
        dataset = tfdv.load_stats_binary(path).datasets[0]
        rows, charts = [], []
        for feature in dataset.features:
            name = ".".join(feature.path.step)
            if feature.HasField("num_stats"):
                s = feature.num_stats
                common = s.common_stats
                rows.append([name, "numeric", _missing(common), s.mean, s.std_dev, s.min, s.max, ""])
                if split == "train" and s.histograms:
                    buckets = [(b.low_value, b.high_value, b.sample_count) for b in s.histograms[0].buckets]
                    if buckets and all(math.isfinite(lo) and math.isfinite(hi) for lo, hi, _ in buckets):
                        charts.append(histogram_chart(buckets, name, out_dir, f"hist_{safe_name(name)}.png"))
            elif feature.HasField("string_stats"):
                s = feature.string_stats
                top = ", ".join(f"{v.value} ({v.frequency:.0f})" for v in s.top_values[:3])
                rows.append([name, f"categorical ({s.unique} values)", _missing(s.common_stats), "", "", "", "", top])
        splits.append({"name": split, "examples": dataset.num_examples, "rows": rows, "charts": charts})
    return render_section("data", splits=splits, anomalies=anomaly_rows(artifacts.first("ExampleValidator",
                          "ExampleAnomalies")), drift=drift_rows(artifacts.json("SpanDriftCheck", "ExampleStatistics", DRIFT_FILE)))  # fmt: skip


def drift_rows(measurements: list[dict] | None) -> list[list] | None:
    """The drift measurements of the run's SpanDriftCheck as rows; None when it did not measure."""
    if measurements is None:
        return None
    return [[m["feature"], m["measure"], m["value"], m["threshold"], "drifted" if m["drifted"] else ""]
            for m in measurements]  # fmt: skip


def _missing(common) -> str:
    """Rows without a value: the feature absent, or present and empty (a blank CSV cell)."""
    total = common.num_missing + common.num_non_missing
    filled = min(common.tot_num_values, common.num_non_missing)
    return f"{100.0 * (total - filled) / total:.1f} %" if total else "—"


def safe_name(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name)


def anomaly_rows(uri: str | None) -> list[list] | None:
    """(split, feature, problem, detail) per anomaly ExampleValidator found; None when it did not run."""
    from tensorflow_metadata.proto.v0 import anomalies_pb2

    if not uri:
        return None
    rows = []
    for split in sorted(os.listdir(uri)):
        path = os.path.join(uri, split, "SchemaDiff.pb")
        if not os.path.exists(path):
            continue
        with open(path, "rb") as f:
            anomalies = anomalies_pb2.Anomalies.FromString(f.read())
        for feature, info in anomalies.anomaly_info.items():
            rows.append([split.removeprefix("Split-"), feature, info.short_description, info.description])
        if anomalies.HasField("dataset_anomaly_info"):
            info = anomalies.dataset_anomaly_info
            rows.append([split.removeprefix("Split-"), "(dataset)", info.short_description, info.description])
    return rows


def screening_section(artifacts: RunArtifacts) -> str:
    """Leakage and feature-selection findings of the FeatureScreen step."""
    from components.feature_screen import RESULT_FILE, FeatureScreening

    found = artifacts.json("FeatureScreen", FeatureScreening.TYPE_NAME, RESULT_FILE)
    if found is None:
        return render_section("screening", found=None, rows=[])
    rows = [[r["column"], "yes" if r["is_feature"] else "no", r["finding"], r["power"],
             "excluded" if r["excluded"] else "kept: check it" if r["finding"] == "strong" and r["is_feature"] else "",
             r["reason"]]
            for r in sorted(found["features"], key=lambda r: (r["finding"] == "ok", -r["power"]))]  # fmt: skip
    return render_section("screening", found=found, rows=rows)


def tuning_section(artifacts: RunArtifacts, out_dir: str) -> str:
    trials = artifacts.json("Tuner", "TunerResults", "tuner_results.json")
    if trials is None:
        return render_section("tuning", trials=None)
    keys = [k for k in trials[0] if k not in ("trial_id", "score")] if trials else []
    rows = [[t["trial_id"], t["score"], *[t.get(k) for k in keys]] for t in trials]
    chart = bar_chart({f"trial {t['trial_id']}": t["score"] for t in trials}, "Tuner: eval AUC per trial", out_dir,
                      "tuning.png", "eval AUC")  # fmt: skip
    return render_section("tuning", trials=trials, best=json.dumps(trials[0]) if trials else "", keys=keys, rows=rows,
                          chart=chart)  # fmt: skip


def training_section(artifacts: RunArtifacts, out_dir: str) -> str:
    from models.trainer import LEARNING_CURVES

    models = []
    for component in ("Trainer", "LinearBaseline"):
        curves = artifacts.json(component, "ModelRun", LEARNING_CURVES)
        if curves is None:
            continue
        loss = line_chart({k: curves[k] for k in ("loss", "val_loss") if k in curves}, f"{component}: loss",
                          out_dir, f"loss_{component}.png", "epoch")  # fmt: skip
        metric = next((m for m in ("auc", "accuracy", "rmse") if f"val_{m}" in curves), "loss")
        chart = line_chart({k: curves[k] for k in (metric, f"val_{metric}") if k in curves},
                           f"{component}: {metric}", out_dir, f"metric_{component}.png", "epoch")  # fmt: skip
        models.append({"component": component, "epochs": curves.get("epochs"), "loss": loss, "metric": chart,
                       "metric_name": metric})  # fmt: skip
    return render_section("training", models=models)
