"""Feature screening before training: leakage, near-constant and redundant columns.

Each column's power to predict the label on its own is measured out of fold: the
column is binned (quantiles for numbers, frequent values for categories), each bin's
label statistic is learnt on one half of the rows and scored on the other. Power is
AUC (binary), accuracy (multiclass) or R^2 (regression). A column that predicts the
label almost perfectly, alone or divided by / subtracted from another numeric column
(a tip and the fare give the tip rate), is leakage: it was most likely computed from
the outcome. A column that barely varies carries nothing; of two numeric columns that
move together almost exactly, the weaker one is redundant.

Plain numpy/pandas: no TFX here; components/feature_screen.py runs it in the pipeline.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

BINS = 20
TOP_VALUES = 50


# Real measurements can rank a binary label almost perfectly on their own (a tumour's perimeter: AUC ~0.95), so
# only a near-perfect AUC is leakage; binned accuracy and R^2 top out lower even for a column made from the label.
LEAK_POWER = {"binary_classification": 0.99, "multiclass_classification": 0.95, "regression": 0.95}


@dataclass(frozen=True)
class Settings:
    # AUC / accuracy / R^2 at or above which a column is leakage; None: LEAK_POWER for the problem type
    leak_power: float | None = None
    near_constant: float = 0.99  # share of the most frequent value at or above which a column carries nothing
    redundant_correlation: float = 0.99  # |Pearson r| between two numeric features at or above which one goes
    keep: tuple[str, ...] = ()  # features kept whatever the screen finds
    max_rows: int = 20000


@dataclass(frozen=True)
class Finding:
    column: str
    finding: str  # leaky | near_constant | redundant | ok
    power: float  # alone, out of fold
    is_feature: bool  # configured as a model input
    excluded: bool  # taken out of the model's inputs by the screen
    reason: str


def power(values: pd.Series, label: np.ndarray, problem_type: str, bins: int = BINS) -> float:
    """Out-of-fold predictive power of one column (or derived column) for the label."""
    bins = _bins(values, bins)
    halves = np.arange(len(label)) % 2 == 0
    predicted = np.empty(
        (len(label),) + ((int(label.max()) + 1,) if problem_type == "multiclass_classification" else ())
    )
    for fit, score in ((halves, ~halves), (~halves, halves)):
        predicted[score] = _bin_statistic(bins[fit], label[fit], bins[score], problem_type)
    return _score(predicted, label, problem_type)


def _bins(values: pd.Series, count: int = BINS) -> np.ndarray:
    """An integer bin per row: quantile bins for numbers, frequent values for the rest; missing is its own bin."""
    if pd.api.types.is_numeric_dtype(values) and values.nunique() > BINS:
        numbers = values.astype(float)
        edges = np.unique(np.nanquantile(numbers, np.linspace(0, 1, count + 1)[1:-1]))
        out = np.searchsorted(edges, numbers.to_numpy(), side="right")
        return np.where(numbers.isna().to_numpy(), -1, out)
    tokens = values.astype("string").fillna("__missing__")
    frequent = tokens.value_counts().index[:TOP_VALUES]
    codes = pd.Categorical(tokens.where(tokens.isin(frequent), "__other__")).codes
    return np.asarray(codes, dtype=int)


def _bin_statistic(fit_bins, fit_label, score_bins, problem_type: str) -> np.ndarray:
    frame = pd.DataFrame({"bin": fit_bins, "y": fit_label})
    if problem_type == "multiclass_classification":
        classes = int(max(fit_label.max(), 0)) + 1
        counts = pd.crosstab(frame["bin"], frame["y"]).reindex(columns=range(classes), fill_value=0)
        rates = counts.div(counts.sum(axis=1), axis=0)
        prior = np.bincount(fit_label.astype(int), minlength=classes) / len(fit_label)
        table = {b: rates.loc[b].to_numpy() for b in rates.index}
        return np.stack([table.get(b, prior) for b in score_bins])
    means = frame.groupby("bin")["y"].mean()
    return means.reindex(score_bins).fillna(float(np.mean(fit_label))).to_numpy()


def _score(predicted: np.ndarray, label: np.ndarray, problem_type: str) -> float:
    if problem_type == "binary_classification":
        return auc(predicted, label)
    if problem_type == "multiclass_classification":
        width = predicted.shape[1]
        return float(np.mean(predicted.argmax(axis=1) == label)) if width else 0.0
    total = float(np.sum((label - label.mean()) ** 2))
    return 1.0 - float(np.sum((label - predicted) ** 2)) / total if total else 0.0


def auc(score: np.ndarray, label: np.ndarray) -> float:
    ranks = pd.Series(score).rank().to_numpy()
    positives = int(label.sum())
    negatives = len(label) - positives
    if not positives or not negatives:
        return 0.5
    return float((ranks[label == 1].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def screen(frame: pd.DataFrame, label: str, problem_type: str, features: list[str], settings: Settings,
           ignore: tuple[str, ...] = ()) -> list[Finding]:  # fmt: skip
    """Findings for every column of `frame` but the label and `ignore` (identifiers, personal data).

    Configured `features` that are leaky, near-constant or redundant are excluded unless
    listed in `settings.keep`; other columns are reported only (they are not inputs anyway).
    """
    if len(frame) > settings.max_rows:  # a uniform sample, never the first rows (a table sorted by time)
        frame = frame.sample(n=settings.max_rows, random_state=0).sort_index()
    frame = frame.reset_index(drop=True)
    leak_power = settings.leak_power if settings.leak_power is not None else LEAK_POWER[problem_type]
    y = frame[label].to_numpy()
    y = y.astype(float) if problem_type == "regression" else y.astype(int)
    columns = [c for c in frame.columns if c != label and c not in ignore]
    single = {c: power(frame[c], y, problem_type) for c in columns}
    numeric = [c for c in columns if pd.api.types.is_numeric_dtype(frame[c]) and frame[c].nunique() > BINS]
    leaks: dict[str, str] = {}
    for c in columns:
        if single[c] >= leak_power:
            leaks[c] = f"alone predicts {label} with {_measure(problem_type)} {single[c]:.3f}"
    # a rate or a difference of two columns: finer bins, as such a leak is sharp
    fine = int(min(100, max(BINS, len(frame) // 200)))
    strongest = sorted((c for c in numeric if c not in leaks), key=lambda c: -single[c])[:3]
    best: dict[str, tuple[float, str]] = {}
    for a in strongest:
        for b in numeric:
            if a == b:
                continue
            for op, derived in (("/", frame[a] / frame[b].replace(0, np.nan)), ("-", frame[a] - frame[b])):
                value = power(derived, y, problem_type, fine)
                culprit = a if single[a] >= single[b] else b
                if value >= leak_power and value > best.get(culprit, (0.0, ""))[0]:
                    best[culprit] = (value, f"{a} {op} {b} predicts {label} with {_measure(problem_type)} "
                                            f"{value:.3f}: likely computed from the outcome")  # fmt: skip
    leaks.update({c: reason for c, (_, reason) in best.items() if c not in leaks})
    findings: dict[str, tuple[str, str]] = {c: ("leaky", r) for c, r in leaks.items()}
    for c in columns:
        if c in findings:
            continue
        top_share = frame[c].value_counts(dropna=False, normalize=True).iloc[0] if len(frame) else 1.0
        if top_share >= settings.near_constant:
            findings[c] = ("near_constant", f"one value in {100 * top_share:.1f} % of rows")
    numeric_features = [c for c in features if c in numeric and c not in findings]
    correlation = frame[numeric_features].astype(float).corr().abs() if numeric_features else pd.DataFrame()
    for i, a in enumerate(numeric_features):
        for b in numeric_features[i + 1 :]:
            r = correlation.loc[a, b]
            if r >= settings.redundant_correlation and a not in findings and b not in findings:
                weaker, stronger = (a, b) if single[a] < single[b] else (b, a)
                findings[weaker] = ("redundant", f"|r| = {r:.3f} with {stronger}, which predicts {label} better")
    out = []
    for c in columns:
        kind, reason = findings.get(c, ("ok", ""))
        is_feature = c in features
        excluded = is_feature and kind != "ok" and c not in settings.keep
        if is_feature and kind != "ok" and c in settings.keep:
            reason += " (kept: listed in screening.keep)"
        out.append(Finding(c, kind, round(single[c], 4), is_feature, excluded, reason))
    return out


def _measure(problem_type: str) -> str:
    return {"binary_classification": "AUC", "multiclass_classification": "accuracy"}.get(problem_type, "R^2")


def as_dicts(findings: list[Finding]) -> list[dict]:
    return [asdict(f) for f in findings]
