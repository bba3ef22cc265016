"""One static HTML page per run, with PNG charts, read back from ML Metadata and the run's artifacts.

python -m reports.run_report --config configs/taxi.yaml   (the newest run; `make run` writes it too)

Sections: the push decision and why; data statistics and anomalies; feature screening;
tuning trials; learning curves; evaluation against the baselines and the last blessed
model; slices and fairness; feature importance; the simplified model against the full one; the TensorFlow Lite files. No server, no external script: it opens
from disk. A small inline script marks the page as rendered, which the e2e test checks
in headless Chromium.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import os
import sys
from dataclasses import dataclass, field

from metadata import mlmd

SECTIONS = ("decision", "data", "screening", "tuning", "training", "evaluation", "slices", "importance",
            "simplification", "edge")  # fmt: skip


@dataclass
class RunArtifacts:
    """The outputs of one run that the report reads, by component id and artifact type."""

    run: str
    components: list = field(default_factory=list)  # RunSummary components
    by_component: dict[str, dict[str, list[str]]] = field(default_factory=dict)

    def uris(self, component: str, kind: str) -> list[str]:
        return self.by_component.get(component, {}).get(kind, [])

    def first(self, component: str, kind: str) -> str | None:
        found = self.uris(component, kind)
        return found[0] if found else None

    def json(self, component: str, kind: str, name: str):
        """The JSON file `name` in the component's first artifact of `kind`; None when there is none."""
        uri = self.first(component, kind)
        path = os.path.join(uri, name) if uri else None
        if not path or not os.path.exists(path):
            return None
        with open(path) as f:
            return json.load(f)


def collect(store, run, pipeline_name: str) -> RunArtifacts:
    artifacts = RunArtifacts(run=run.name)
    for execution in store.get_executions_by_context(run.id):
        component = mlmd.node_id(store, execution.id, pipeline_name) or "?"
        for artifact in mlmd.outputs(store, execution.id):
            kinds = artifacts.by_component.setdefault(component, {})
            kinds.setdefault(mlmd.type_name(store, artifact), []).append(artifact.uri)
    return artifacts


# ---------------------------------------------------------------- charts


def _figure(width: float = 6.0, height: float = 3.2):
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    return plt.subplots(figsize=(width, height), dpi=90)


def _save(fig, out_dir: str, name: str) -> str:
    from matplotlib import pyplot as plt

    fig.tight_layout()
    fig.savefig(os.path.join(out_dir, name), format="png")
    plt.close(fig)
    return name


def bar_chart(values: dict[str, float], title: str, out_dir: str, name: str, xlabel: str = "") -> str:
    fig, ax = _figure(6.0, max(1.6, 0.28 * len(values) + 0.8))
    labels = list(values)
    ax.barh(labels, [values[k] for k in labels], color="#4a7bb7")
    ax.invert_yaxis()
    ax.set_title(title, fontsize=10)
    ax.set_xlabel(xlabel, fontsize=9)
    ax.tick_params(labelsize=8)
    return _save(fig, out_dir, name)


def grouped_bars(groups: dict[str, dict[str, float]], title: str, out_dir: str, name: str) -> str:
    """groups: metric -> model -> value."""
    import numpy as np

    fig, ax = _figure(6.5, 3.0)
    metrics = list(groups)
    models = sorted({m for values in groups.values() for m in values})
    width = 0.8 / max(1, len(models))
    for i, model in enumerate(models):
        ax.bar(np.arange(len(metrics)) + i * width, [groups[m].get(model, 0.0) for m in metrics], width, label=model)
    ax.set_xticks(np.arange(len(metrics)) + 0.4 - width / 2, metrics, fontsize=8)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    return _save(fig, out_dir, name)


def line_chart(series: dict[str, list[float]], title: str, out_dir: str, name: str, xlabel: str) -> str:
    fig, ax = _figure()
    for label, values in series.items():
        ax.plot(range(1, len(values) + 1), values, marker="o", label=label)
    ax.set_title(title, fontsize=10)
    ax.set_xlabel(xlabel, fontsize=9)
    ax.legend(fontsize=8)
    return _save(fig, out_dir, name)


def histogram_chart(buckets: list[tuple[float, float, float]], title: str, out_dir: str, name: str) -> str:
    fig, ax = _figure(3.2, 2.0)
    ax.bar([lo for lo, _, _ in buckets], [c for _, _, c in buckets], width=[hi - lo for lo, hi, _ in buckets],
           align="edge", color="#6a9f58")  # fmt: skip
    ax.set_title(title, fontsize=9)
    ax.tick_params(labelsize=7)
    return _save(fig, out_dir, name)


# ---------------------------------------------------------------- sections


TEMPLATES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "templates")


def cell(value) -> str:
    """A table cell: floats to 4 places, NaN as a dash."""
    if isinstance(value, float):
        return "—" if math.isnan(value) else f"{value:.4f}"
    return str(value)


@functools.cache
def environment():
    """Jinja2 over reports/templates, autoescaped: every value from the data is escaped."""
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)  # fmt: skip
    env.filters["cell"] = cell
    return env


def render_section(name: str, **context):
    """One section's HTML (markup, so the page does not escape it again)."""
    from markupsafe import Markup

    return Markup(environment().get_template(f"sections/{name}.html.j2").render(**context))


def decision_section(summary, config) -> str:
    gate = config.evaluation
    baselines = None
    if gate.baselines:
        baselines = {"linear": margin_text(gate, gate.baselines.margin),
                     "boosted": margin_text(gate, gate.baselines.boosted_margin)}  # fmt: skip
    return render_section(
        "decision", pushed=summary.pushed_model, blessed=summary.blessed, failures=list(summary.failures),
        failed_components=[c.component for c in summary.components if c.state == "FAILED"], gate=gate,
        baselines=baselines, components=[[c.component, c.state, f"{c.seconds:.1f} s"] for c in summary.components],
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
                        charts.append(histogram_chart(buckets, name, out_dir, f"hist_{_safe(name)}.png"))
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


def _safe(name: str) -> str:
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
             "excluded" if r["excluded"] else "", r["reason"]]
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


def margin_text(gate, margin: float | None) -> str:
    """How the candidate must stand against a baseline, as the words before "the ... baseline"."""
    from settings.config import default_margin, higher_is_better

    higher = higher_is_better(gate.metric)
    trail = -(margin if margin is not None else default_margin(gate.metric))
    if trail == 0:
        return "at least level with" if higher else "at most the error of"
    if higher:
        return f"within {trail:g} {gate.metric} of" if trail > 0 else f"ahead by {-trail:g} {gate.metric} of"
    return f"within {100 * trail:g} % of the error of" if trail > 0 else f"{100 * -trail:g} % below the error of"


def reference_gap(table: dict[str, dict[str, float]], config) -> dict | None:
    """The candidate beside the better of the linear and gradient-boosted references, on the gating metric."""
    from settings.config import METRIC_KEYS, higher_is_better

    values = table.get(METRIC_KEYS.get(config.evaluation.metric, ""), {})
    refs = {m: values[m] for m in ("linear", "gradient-boosted") if m in values}
    if "candidate" not in values or not refs:
        return None
    higher = higher_is_better(config.evaluation.metric)
    name, best = (max if higher else min)(refs.items(), key=lambda kv: kv[1])
    gap = best - values["candidate"] if higher else values["candidate"] / best - 1
    how = (f"trails it by {gap:.4f}" if higher else f"has {100 * gap:.1f} % more error") if gap > 0 else (
        "matches or beats it")  # fmt: skip
    return {"metric": config.evaluation.metric, "name": name, "best": best, "candidate": values["candidate"],
            "how": how}  # fmt: skip


def evaluation_section(artifacts: RunArtifacts, config, out_dir: str) -> str:
    from metadata.lineage import overall_metrics

    names = {"Evaluator": ("candidate", "last blessed"), "EvaluatorVsLinear": (None, "linear"),
             "EvaluatorVsBoosted": (None, "gradient-boosted"), "EvaluatorVsHeuristic": (None, "heuristic")}  # fmt: skip
    table: dict[str, dict[str, float]] = {}
    for component, (candidate_name, baseline_name) in names.items():
        uri = artifacts.first(component, "ModelEvaluation")
        if not uri:
            continue
        for model, metrics in overall_metrics(uri).items():
            label = candidate_name if model == "candidate" else baseline_name
            if label:
                for metric, value in metrics.items():
                    table.setdefault(metric, {})[label] = value
    models = [m for m in ("candidate", "linear", "gradient-boosted", "heuristic", "last blessed")
              if any(m in v for v in table.values())]  # fmt: skip
    rows = [[metric, *[values.get(m, float("nan")) for m in models]] for metric, values in sorted(table.items())]
    shown = {m: table[m] for m in ("auc", "auc_precision_recall", "precision", "recall", "sparse_categorical_accuracy",
                                   "root_mean_squared_error", "mean_absolute_error") if m in table}  # fmt: skip
    chart = grouped_bars(shown, "Eval split: candidate vs baselines", out_dir, "evaluation.png") if shown else None
    return render_section("evaluation", rows=rows, models=models, chart=chart, first="last blessed" not in models,
                          gap=reference_gap(table, config))  # fmt: skip


def slices_section(artifacts: RunArtifacts, config, out_dir: str) -> str:
    import tensorflow_model_analysis as tfma

    from components.group_rates import group_rates, slice_value
    from models.fairness import FairnessLimits, gaps
    from settings.config import METRIC_KEYS

    uri = artifacts.first("Evaluator", "ModelEvaluation")
    if not uri:
        return render_section("slices", rows=None)
    gating = METRIC_KEYS[config.evaluation.metric]
    rows, by_slice = [], {}
    for metrics in tfma.load_metrics(uri):
        keys = metrics.slice_key.single_slice_keys
        if not keys:
            continue
        where = ", ".join(f"{k.column}={slice_value(k)}" for k in keys)
        values = {kv.key.name: kv.value.double_value.value for kv in metrics.metric_keys_and_values
                  if not kv.key.is_diff and kv.key.model_name in ("", "candidate")}  # fmt: skip
        rows.append([where, values.get(gating, float("nan")), values.get("example_count", float("nan"))])
        if gating in values:
            by_slice[where] = values[gating]
    rows.sort()
    chart = bar_chart(dict(sorted(by_slice.items())), f"{gating} by slice", out_dir, "slices.png", gating)
    e = config.evaluation
    rates = group_rates(uri, e.fairness_features) if e.fairness_features else []
    decision = config.decision_threshold()
    limits = FairnessLimits(**e.fairness.model_dump())
    groups = [[f"{r.feature}={r.group}", r.threshold, int(r.size), int(r.positives), r.fpr, r.fnr, r.positive_rate]
              for r in rates if r.size >= limits.min_group_size]  # fmt: skip
    small = len({(r.feature, r.group) for r in rates if r.size < limits.min_group_size})
    measured = gaps(rates, limits, decision, every_rate=True) if rates else []
    names = {"fpr": "FPR gap", "fnr": "FNR gap", "positive_rate": "positive rate ratio"}
    gap_rows = [[g.feature, names[g.rate],
                 f"{g.low_group} / {g.high_group}" if g.rate == "positive_rate" else f"{g.high_group} vs {g.low_group}",
                 g.value, "not gated" if g.limit is None else g.limit,
                 "-" if g.limit is None else "fails" if g.violated else "ok"] for g in measured]  # fmt: skip
    return render_section(
        "slices",
        rows=rows,
        gating=gating,
        chart=chart,
        fairness=list(e.fairness_features),
        groups=groups,
        small=small,
        gaps=gap_rows,
        decision=decision,
        min_group_size=limits.min_group_size,
    )


def importance_section(artifacts: RunArtifacts, out_dir: str) -> str:
    from models.explain import IMPORTANCE_FILE

    importance = artifacts.json("Trainer", "ModelRun", IMPORTANCE_FILE)
    if importance is None:
        return render_section("importance", importance=None)
    ranked = dict(sorted(importance["mean_abs_attribution"].items(), key=lambda kv: -kv[1]))
    chart = bar_chart(ranked, "Mean |integrated gradients| per raw feature", out_dir, "importance.png")
    return render_section("importance", importance=importance, chart=chart)


def simplification_section(artifacts: RunArtifacts) -> str:
    from models.distill import RESULT_FILE

    r = artifacts.json("DistilledModel", "ModelRun", RESULT_FILE)
    if r is None:
        return render_section("simplification", r=None)
    keys = ["eval_auc", "parameters", "saved_model_bytes", "latency_ms_1_row", "latency_ms_batch", "hidden_units"]
    return render_section("simplification", r=r, rows=[[k, r["full"][k], r["distilled"][k]] for k in keys])


def edge_section(artifacts: RunArtifacts) -> str:
    from models.edge import RESULT_FILE

    r = artifacts.json("Trainer", "ModelRun", RESULT_FILE)
    if r is None:
        return render_section("edge", r=None)
    formats = [r["formats"][k] for k in ("saved_model", "tflite_float", "tflite_quantized")]
    rows = [[key, *[f[key] for f in formats]] for key in ("bytes", "latency_ms_1_row", "latency_ms_batch")]
    rows.append(["largest score difference", *[f"{f['max_abs_diff']:.2e}" for f in formats]])
    rows.append(["conversion seconds", "—", r["conversion_seconds"]["float"], r["conversion_seconds"]["quantized"]])
    raw = [f"{kind}: {r['formats'][f'tflite_raw_{kind}']['bytes']} bytes, converted in "
           f"{r['conversion_seconds'][f'raw_{kind}']} s" for kind in ("float", "quantized")]  # fmt: skip
    return render_section("edge", r=r, rows=rows, raw=raw)


# ---------------------------------------------------------------- page

TITLES = {"decision": "Push decision", "data": "Data statistics and anomalies",
          "screening": "Leakage and feature selection", "tuning": "Tuning trials", "training": "Learning curves",
          "evaluation": "Evaluation vs baselines and the last blessed model", "slices": "Slices and fairness",
          "importance": "Feature importance", "simplification": "Simplified model vs the full one",
          "edge": "On-device model (TensorFlow Lite)"}  # fmt: skip


def render(summary, artifacts: RunArtifacts, config, out_dir: str) -> str:
    """Writes `out_dir/index.html` and its charts; returns the page's path.

    A section whose inputs are unreadable says so in place rather than failing the report."""
    os.makedirs(out_dir, exist_ok=True)
    builders = {
        "decision": lambda: decision_section(summary, config),
        "data": lambda: data_section(artifacts, out_dir),
        "screening": lambda: screening_section(artifacts),
        "tuning": lambda: tuning_section(artifacts, out_dir),
        "training": lambda: training_section(artifacts, out_dir),
        "evaluation": lambda: evaluation_section(artifacts, config, out_dir),
        "slices": lambda: slices_section(artifacts, config, out_dir),
        "importance": lambda: importance_section(artifacts, out_dir),
        "simplification": lambda: simplification_section(artifacts),
        "edge": lambda: edge_section(artifacts),
    }
    sections = []
    for key in SECTIONS:
        try:
            content = builders[key]()
        except Exception as e:  # one unreadable artifact must not cost the whole report
            content = render_section("error", kind=type(e).__name__, message=str(e))
        sections.append({"key": key, "title": TITLES[key], "html": content})
    page = (
        environment()
        .get_template("page.html.j2")
        .render(run_id=summary.run_id, pipeline=config.pipeline.name, sections=sections)
    )
    path = os.path.join(out_dir, "index.html")
    with open(path, "w") as f:
        f.write(page)
    return path


def report_dir(config, run_id: str) -> str:
    return os.path.join(config.pipeline.root, "reports", _safe(run_id))


def write_latest(config) -> str:
    """The report of the newest run of the configured pipeline; returns its path."""
    from metadata.run_summary import summarize

    store = mlmd.open_store(config.pipeline.metadata_path)
    runs = mlmd.runs(store, config.pipeline.name)
    if not runs:
        raise LookupError(f"no run of pipeline '{config.pipeline.name}' in {config.pipeline.metadata_path}")
    summary = summarize(store, runs[0], config.pipeline.name)
    artifacts = collect(store, runs[0], config.pipeline.name)
    return render(summary, artifacts, config, report_dir(config, summary.run_id))


def main(argv: list[str] | None = None) -> int:
    from settings.config import ConfigError, load_config, workdir_overrides

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="configs/taxi.yaml")
    parser.add_argument("--workdir", help="the --workdir the pipeline ran with")
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config, workdir_overrides(os.path.abspath(args.workdir)) if args.workdir else None)
    except ConfigError as e:
        print(f"config error: {e}", file=sys.stderr)
        return 2
    if not os.path.exists(config.pipeline.metadata_path):
        print(f"no metadata store at {config.pipeline.metadata_path}: run the pipeline first", file=sys.stderr)
        return 1
    print(write_latest(config))
    return 0


if __name__ == "__main__":
    sys.exit(main())
