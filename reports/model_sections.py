"""The report's sections on the models: evaluation against the baselines, slices and fairness,
feature importance, the simplified model, the TensorFlow Lite files."""

from __future__ import annotations

from reports.artifacts import RunArtifacts
from reports.charts import bar_chart, grouped_bars
from reports.templating import render_section


def margin_text(gate, margin: float | None) -> str:
    """How the candidate must stand against a baseline, as the words before "the ... baseline"."""
    from settings.metrics import default_margin, higher_is_better

    higher = higher_is_better(gate.metric)
    trail = -(margin if margin is not None else default_margin(gate.metric))
    if trail == 0:
        return "at least level with" if higher else "at most the error of"
    if higher:
        return f"within {trail:g} {gate.metric} of" if trail > 0 else f"ahead by {-trail:g} {gate.metric} of"
    return f"within {100 * trail:g} % of the error of" if trail > 0 else f"{100 * -trail:g} % below the error of"


def _with_interval(standing: dict):
    """The gating metric, and its 95 % interval when it was measured on an eval sample."""
    low_high = standing.get("interval")
    return standing["value"] if not low_high else f"{standing['value']:.4f} [{low_high[0]:.4f}, {low_high[1]:.4f}]"


def evaluation_section(artifacts: RunArtifacts, config, out_dir: str) -> str:
    """The leaderboard (every candidate's gating metric overall and per slice, size, latency per row, what it
    can do, and why it lost), then every metric of every model of the one pass."""
    from components.blessing_gate import RESULT_FILE
    from components.tfma_results import overall_metrics
    from models.candidate import CAPABILITIES

    uri = artifacts.first("Leaderboard", "ModelEvaluation")
    board = artifacts.json("Leaderboard", "ModelEvaluation", RESULT_FILE)
    if not uri or board is None:
        return render_section("evaluation", rows=None)
    standings = board["standings"]
    slices = sorted({k for s in standings for k in s["slices"]})
    leaders = [[s["rank"] or "-", s["name"], _with_interval(s), *[s["slices"].get(k, float("nan")) for k in slices],
                "-" if s["size_bytes"] is None else f"{s['size_bytes'] / 1e6:.2f} MB",
                "-" if s["latency_ms_per_row"] is None else f"{s['latency_ms_per_row']:.4f}",
                "winner" if s["winner"] else s["lost_because"]] for s in standings]  # fmt: skip
    missing = [[s["name"], ", ".join(c for c in CAPABILITIES if c not in s["capabilities"]) or "none"]
               for s in standings if s["value"] is not None]  # fmt: skip
    labels = {s["name"]: s["name"] for s in standings} | {"heuristic": "heuristic", "baseline": "last blessed"}
    table: dict[str, dict[str, float]] = {}
    for model, metrics in overall_metrics(uri).items():
        for metric, value in metrics.items():
            table.setdefault(metric, {})[labels.get(model, model)] = value
    models = [m for m in [*(s["name"] for s in standings), "heuristic", "last blessed"]
              if any(m in v for v in table.values())]  # fmt: skip
    rows = [[metric, *[values.get(m, float("nan")) for m in models]] for metric, values in sorted(table.items())]
    shown = {m: table[m] for m in ("auc", "auc_precision_recall", "precision", "recall", "sparse_categorical_accuracy",
                                   "root_mean_squared_error", "mean_absolute_error") if m in table}  # fmt: skip
    chart = (
        grouped_bars(shown, "Eval split: candidates, floor, last blessed", out_dir, "evaluation.png") if shown else None
    )
    return render_section("evaluation", rows=rows, models=models, chart=chart, first="last blessed" not in models,
                          board=board, leaders=leaders, slice_names=slices, missing=missing)  # fmt: skip


def slices_section(artifacts: RunArtifacts, config, out_dir: str) -> str:
    import tensorflow_model_analysis as tfma

    from components.group_rates import group_rates
    from components.tfma_results import slice_value
    from models.fairness import FairnessLimits, gaps
    from settings.metrics import METRIC_KEYS

    uri = artifacts.first("Leaderboard", "ModelEvaluation")
    if not uri:
        return render_section("slices", rows=None)
    board = artifacts.json("Leaderboard", "ModelEvaluation", "leaderboard.json") or {"winner": "", "standings": []}
    # the winner's slices, or the best-ranked candidate's when none won ("": a lone model's, stored unnamed)
    shown = board["winner"] or next((s["name"] for s in board["standings"] if s["value"] is not None), "")
    gating = METRIC_KEYS[config.evaluation.metric]
    rows, by_slice = [], {}
    for metrics in tfma.load_metrics(uri):
        keys = metrics.slice_key.single_slice_keys
        if not keys:
            continue
        where = ", ".join(f"{k.column}={slice_value(k)}" for k in keys)
        values = {kv.key.name: kv.value.double_value.value for kv in metrics.metric_keys_and_values
                  if not kv.key.is_diff and kv.key.model_name in ("", shown)}  # fmt: skip
        rows.append([where, values.get(gating, float("nan")), values.get("example_count", float("nan"))])
        if gating in values:
            by_slice[where] = values[gating]
    e = config.evaluation
    if not rows and not e.fairness_features:
        return ""  # nothing sliced: the section is not drawn
    rows.sort()
    chart = bar_chart(dict(sorted(by_slice.items())), f"{gating} by slice", out_dir, "slices.png", gating)
    rates = group_rates(uri, e.fairness_features, shown) if e.fairness_features else []
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
        model=shown,
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


def winner_of(artifacts: RunArtifacts) -> str | None:
    """The leaderboard's winner (None: no winner, or no leaderboard in this run)."""
    board = artifacts.json("Leaderboard", "ModelEvaluation", "leaderboard.json")
    return board["winner"] if board else None


def importance_section(artifacts: RunArtifacts, out_dir: str) -> str:
    """The attributions of the model that was chosen: the winner's, when it can give them; else it says so."""
    from models.candidate import trainer_id
    from models.explain import IMPORTANCE_FILE

    winner = winner_of(artifacts)
    importance = artifacts.json(trainer_id(winner or "network"), "ModelRun", IMPORTANCE_FILE)
    if importance is None:
        return render_section("importance", importance=None, winner=winner)
    ranked = dict(sorted(importance["mean_abs_attribution"].items(), key=lambda kv: -kv[1]))
    chart = bar_chart(ranked, "Mean |integrated gradients| per raw feature", out_dir, "importance.png")
    return render_section("importance", importance=importance, chart=chart, winner=winner)


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
    raw = []
    for kind in ("float", "quantized"):
        f = r["formats"][f"tflite_raw_{kind}"]
        raw.append(f"{kind}: not converted ({f['error']})" if "error" in f else
                   f"{kind}: {f['bytes']} bytes, converted in {r['conversion_seconds'][f'raw_{kind}']} s"
                   + (f", by {f['quantizer']}" if "quantizer" in f else ""))  # fmt: skip
    return render_section("edge", r=r, rows=rows, raw=raw)
