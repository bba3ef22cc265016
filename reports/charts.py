"""The report's PNG charts (matplotlib, headless): each function writes one file and returns its name."""

from __future__ import annotations

import os


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
