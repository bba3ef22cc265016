"""The monitoring HTML report: per-feature distributions (training vs serving) and the metric trend.

Static HTML with inline SVG: it opens from disk, with no server, script or network.
"""

from __future__ import annotations

import html

from tensorflow_metadata.proto.v0 import statistics_pb2

TRAIN, SERVE = "#4c78a8", "#f58518"


def _feature(stats: statistics_pb2.DatasetFeatureStatisticsList, name: str):
    for f in stats.datasets[0].features:
        if ".".join(f.path.step) == name or f.name == name:
            return f
    return None


def distribution(stats: statistics_pb2.DatasetFeatureStatisticsList, name: str) -> dict[str, float]:
    """Share of rows per bucket (numeric: the standard histogram; categorical: the top values)."""
    f = _feature(stats, name)
    if f is None:
        return {}
    if f.HasField("string_stats"):
        counts = {v.value: v.frequency for v in f.string_stats.top_values[:12]}
    else:
        hist = next((h for h in f.num_stats.histograms if h.type == statistics_pb2.Histogram.STANDARD), None)
        counts = {f"{b.low_value:.4g}..{b.high_value:.4g}": b.sample_count for b in (hist.buckets if hist else [])}
    total = sum(counts.values()) or 1.0
    return {k: v / total for k, v in counts.items()}


def _bars(train: dict[str, float], serve: dict[str, float], width: int = 560, height: int = 160) -> str:
    keys = list(dict.fromkeys([*train, *serve]))[:24]
    if not keys:
        return "<p>no distribution</p>"
    top = max([*train.values(), *serve.values(), 1e-9])
    slot = width / len(keys)
    parts = [f'<svg width="{width}" height="{height + 40}" role="img">']
    for i, k in enumerate(keys):
        for j, (series, color) in enumerate(((train, TRAIN), (serve, SERVE))):
            h = series.get(k, 0.0) / top * height
            x = i * slot + j * slot / 2.2
            parts.append(f'<rect x="{x:.1f}" y="{height - h:.1f}" width="{slot / 2.4:.1f}" height="{h:.1f}" '
                         f'fill="{color}"><title>{html.escape(k)}: {series.get(k, 0.0):.3f}</title></rect>')  # fmt: skip
        if len(keys) <= 12:
            parts.append(f'<text x="{i * slot:.1f}" y="{height + 14}" font-size="9">{html.escape(k[:14])}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _trend(points: list[tuple[str, float]], reference: float | None, width: int = 560, height: int = 140) -> str:
    if not points:
        return "<p>no labelled windows yet</p>"
    values = [v for _, v in points] + ([reference] if reference is not None else [])
    low, high = min(values) - 0.02, max(values) + 0.02

    def y(v):  # noqa: E306
        return height - (v - low) / (high - low) * height

    step = width / max(1, len(points) - 1) if len(points) > 1 else 0
    path = " ".join(f"{'M' if i == 0 else 'L'}{i * step:.1f},{y(v):.1f}" for i, (_, v) in enumerate(points))
    parts = [f'<svg width="{width}" height="{height + 20}" role="img"><path d="{path}" stroke="{SERVE}" fill="none"/>']
    for i, (label, v) in enumerate(points):
        parts.append(f'<circle cx="{i * step:.1f}" cy="{y(v):.1f}" r="3" fill="{SERVE}"><title>{html.escape(label)}: '
                     f"{v:.4f}</title></circle>")  # fmt: skip
    if reference is not None:
        parts.append(f'<line x1="0" x2="{width}" y1="{y(reference):.1f}" y2="{y(reference):.1f}" stroke="{TRAIN}" '
                     f'stroke-dasharray="4"><title>at training: {reference:.4f}</title></line>')  # fmt: skip
    parts.append("</svg>")
    return "".join(parts)


def _live_table(windows: list[dict]) -> str:
    """Every live metric of each window (the gating one, per-class recall, or the regression errors)."""
    names = list(dict.fromkeys(k for w in windows for k in w if k not in ("window", "rows", "labelled", "bias")))
    head = "".join(f"<th>{html.escape(n)}</th>" for n in ["window", "rows", "labelled", *names])
    rows = "".join(
        "<tr>" + "".join(f"<td>{_cell(w.get(k))}</td>" for k in ["window", "rows", "labelled", *names]) + "</tr>"
        for w in windows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"


def _cell(value) -> str:
    if value is None:
        return "-"
    return f"{value:.4f}" if isinstance(value, float) else html.escape(str(value))


def render(result: dict, training: statistics_pb2.DatasetFeatureStatisticsList,
           serving: statistics_pb2.DatasetFeatureStatisticsList) -> str:  # fmt: skip
    """The page for one monitoring run (`result` is what monitoring.run writes as JSON)."""
    checks = {}
    for c in result["checks"]:
        checks.setdefault(c["feature"], []).append(c)
    decision = result["retraining"]
    rows = []
    for feature in result["features"]:
        cells = " ".join(
            f'<span class="{"alert" if c["alert"] else "ok"}">{c["kind"]} {c["measure"]} {c["value"]:.4f} '
            f"(limit {c['threshold']})</span>"
            for c in checks.get(feature, [])
        )
        rows.append(
            f"<section><h3>{html.escape(feature)}</h3><p>{cells or 'not measured'}</p>"
            f"{_bars(distribution(training, feature), distribution(serving, feature))}</section>"
        )
    trend = [
        (w["window"], w[result["metric"]]) for w in result["live_evaluation"] if w.get(result["metric"]) is not None
    ]
    bias = next((w["bias"] for w in reversed(result["live_evaluation"]) if w["labelled"]), [])
    gaps = "".join(f'<li class="{"alert" if g["violated"] else "ok"}">{html.escape(g["message"])}</li>' for g in bias)
    live = _live_table(result["live_evaluation"])
    verdict = "RETRAIN" if decision["retrain"] else "no retraining"
    reasons = "".join(f"<li>{html.escape(r)}</li>" for r in decision["reasons"]) or "<li>no rule fired</li>"
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>Monitoring {html.escape(result["model_version"])}</title>
<style>body{{font-family:sans-serif;max-width:980px;margin:2em auto}} .alert{{color:#b00;font-weight:bold}}
.ok{{color:#262}} section{{border-top:1px solid #ddd;margin-top:1em}}</style></head><body>
<h1>Monitoring: model {html.escape(result["model_version"])}</h1>
<p>{result["rows"]} logged rows in {len(result["windows"])} windows; current window {result["current_window_rows"]} rows.
<span style="color:{TRAIN}">■ training</span> <span style="color:{SERVE}">■ serving (current window)</span></p>
<h2>Decision: {verdict}</h2><ul>{reasons}</ul>
<h2>Live {html.escape(result["metric"])} per window</h2>{_trend(trend, result.get("training_metric"))}{live}
<h2>Bias on live labels (latest labelled window)</h2><ul>{gaps or "<li>no fairness limits, or too few labelled rows per group</li>"}</ul>
<h2>Features</h2>{"".join(rows)}
</body></html>"""
