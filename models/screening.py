"""Feature screening before training: leakage, near-constant and redundant columns.

Each column's power to predict the label on its own is measured out of fold: the
column is binned (quantiles for numbers, frequent values for categories), each bin's
label statistic is learnt on one half of the rows and scored on the other. Power is
AUC (binary), accuracy (multiclass) or R^2 (regression). A column that predicts the
label almost perfectly on held-out rows, alone or with one other column (divided by or
subtracted from it: a tip and the fare give the tip rate, an actual and a scheduled time
a delay; or the two together), is leakage: it was most likely computed from the outcome.
Predicting it well is not enough: an honest measurement may. A column that barely varies carries nothing; of two numeric columns that
move together almost exactly, the weaker one is redundant.

A kept column that predicts the label very well (alone, or with one other column, at STRONG_POWER or above) is
flagged "strong", not excluded: the screen cannot tell an honest measurement from one recorded after the
outcome (a flight's arrival time predicts its delay at AUC ~0.95 without determining it), the user can.

Plain numpy/pandas: no TFX here; components/feature_screen.py runs it in the pipeline.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

BINS = 20
TOP_VALUES = 50


# A leak nearly determines the label; an honest measurement may predict it well (a tumour's perimeter: AUC ~0.97; a
# penguin's bill length / depth: species with accuracy ~0.96) without determining it.
LEAK_POWER = {"binary_classification": 0.99, "multiclass_classification": 0.99, "regression": 0.99}
# Strong: 0.9 is the conventional bar of outstanding discrimination (AUC; Hosmer & Lemeshow), and for accuracy and
# R^2 as much of the label as a single column rarely gives unless it is close to the outcome. A column recorded
# after the outcome without determining it (arr_time for a delay: AUC ~0.95) lands between this and the leak level.
STRONG_POWER = 0.9
# A pair is flagged strong only where it predicts this much better than its better column alone: a column close to
# STRONG_POWER reaches it beside almost any other (breast_cancer's worst concavity, 0.89, with each of a dozen)
PAIR_GAIN = 0.1
EXCLUDING = ("leaky", "near_constant", "redundant")  # findings that take a feature out of the model
MAX_PAIR_COLUMNS = 40  # columns tried in pairs, the strongest alone first
SHARP_MARGIN = 0.1  # binned power this close to leak_power: measured again through a decision tree
SHARP_LEAVES = 64
PAIR_GRID = 10  # bins a side of the grid on which two columns together are scored


@dataclass(frozen=True)
class Settings:
    # AUC / accuracy / R^2 at or above which a column is leakage; None: LEAK_POWER for the problem type
    leak_power: float | None = None
    near_constant: float = 0.99  # share of the most frequent value at or above which a column carries nothing
    redundant_correlation: float = 0.99  # |Pearson r| between two numeric features at or above which one goes
    keep: tuple[str, ...] = ()  # features kept whatever the screen finds
    max_rows: int = 20000
    strong_power: float = STRONG_POWER  # power at or above which a kept column is flagged "strong"


@dataclass(frozen=True)
class Finding:
    column: str
    finding: str  # leaky | near_constant | redundant (excluded) | strong (flagged, kept) | ok
    power: float  # alone, out of fold
    is_feature: bool  # configured as a model input
    excluded: bool  # taken out of the model's inputs by the screen
    reason: str


def power(values: pd.Series, label: np.ndarray, problem_type: str, bins: int = BINS) -> float:
    """Out-of-fold predictive power of one column (or derived column) for the label."""
    return power_of_bins(_bins(values, bins), label, problem_type)


def power_of_bins(bins: np.ndarray, label: np.ndarray, problem_type: str) -> float:
    """Out-of-fold power of a bin id per row: each bin's label statistic learnt on one half, scored on the other."""
    halves = np.arange(len(label)) % 2 == 0
    predicted = np.empty(
        (len(label),) + ((int(label.max()) + 1,) if problem_type == "multiclass_classification" else ())
    )
    for fit, score in ((halves, ~halves), (~halves, halves)):
        predicted[score] = _bin_statistic(bins[fit], label[fit], bins[score], problem_type)
    return _score(predicted, label, problem_type)


def sharp_power(values: pd.Series, label: np.ndarray, problem_type: str) -> float:
    """Out-of-fold power of a numeric column through a one-column decision tree: its cut points fall where the
    label changes, so a label computed from the column by a threshold (a tip rate above 20 %, a delay over 15
    minutes) scores near-perfectly, where fixed quantile bins straddle the threshold."""
    from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

    x = values.astype(float).to_numpy()
    finite = np.isfinite(x)
    if not finite.any():
        return 0.0
    x = np.where(finite, x, np.min(x[finite]) - 1.0)[:, None]  # missing (or x / 0): a value of its own
    halves = np.arange(len(label)) % 2 == 0
    leaf = max(3, len(label) // 2000)
    multiclass = problem_type == "multiclass_classification"
    predicted = np.zeros((len(label),) + ((int(label.max()) + 1,) if multiclass else ()))
    for fit, score in ((halves, ~halves), (~halves, halves)):
        if multiclass:
            tree = DecisionTreeClassifier(min_samples_leaf=leaf, max_leaf_nodes=SHARP_LEAVES, random_state=0)
            tree.fit(x[fit], label[fit])
            predicted[np.ix_(score, tree.classes_)] = tree.predict_proba(x[score])
        else:
            tree = DecisionTreeRegressor(min_samples_leaf=leaf, max_leaf_nodes=SHARP_LEAVES, random_state=0)
            predicted[score] = tree.fit(x[fit], label[fit]).predict(x[score])
    return _score(predicted, label, problem_type)


def determines(values: pd.Series, label: np.ndarray, problem_type: str, binned: float, leak_power: float) -> float:
    """The larger of a column's binned power and, when that comes close to `leak_power`, its decision-tree power."""
    close = binned >= leak_power - SHARP_MARGIN and pd.api.types.is_numeric_dtype(values)
    return max(binned, sharp_power(values, label, problem_type)) if close else binned


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
    ids, index = np.unique(np.concatenate([fit_bins, score_bins]), return_inverse=True)
    fit_ids, score_ids = index[: len(fit_bins)], index[len(fit_bins) :]
    counts = np.bincount(fit_ids, minlength=len(ids))
    seen = counts[score_ids] > 0  # a bin with no fitted row gets the prior
    if problem_type == "multiclass_classification":
        classes = int(max(fit_label.max(), 0)) + 1
        labels = fit_label.astype(int)
        table = np.bincount(fit_ids * classes + labels, minlength=len(ids) * classes).reshape(len(ids), classes)
        prior = np.bincount(labels, minlength=classes) / len(labels)
        rates = table / np.maximum(counts, 1)[:, None]
        return np.where(seen[:, None], rates[score_ids], prior)
    sums = np.bincount(fit_ids, weights=fit_label.astype(float), minlength=len(ids))
    means = sums / np.maximum(counts, 1)
    return np.where(seen, means[score_ids], float(np.mean(fit_label)))


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
    A strong column (see STRONG_POWER) is kept and flagged with the reason.
    """
    if len(frame) > settings.max_rows:  # a uniform sample, never the first rows (a table sorted by time)
        frame = frame.sample(n=settings.max_rows, random_state=0).sort_index()
    frame = frame.reset_index(drop=True)
    leak_power = settings.leak_power if settings.leak_power is not None else LEAK_POWER[problem_type]
    y = frame[label].to_numpy()
    y = y.astype(float) if problem_type == "regression" else y.astype(int)
    columns = [c for c in frame.columns if c != label and c not in ignore]
    fine = fine_bins(len(frame))  # a column the label is computed from is sharp: fine bins show it
    single = {c: power(frame[c], y, problem_type, fine) for c in columns}
    alone = {c: determines(frame[c], y, problem_type, single[c], leak_power) for c in columns}
    leaks = {c: f"alone determines {label}: {_measure(problem_type)} {alone[c]:.3f} on held-out rows"
             for c in columns if alone[c] >= leak_power}  # fmt: skip
    pairs = pair_powers(frame, y, problem_type, [c for c in columns if c not in leaks], single, leak_power)
    leaks.update(pair_leaks(pairs, single, leak_power, label, problem_type))
    findings: dict[str, tuple[str, str]] = {c: ("leaky", r) for c, r in leaks.items()}
    numeric = [c for c in columns if pd.api.types.is_numeric_dtype(frame[c]) and frame[c].nunique() > BINS]
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
    unflagged = {c: alone[c] for c in columns if c not in findings}
    findings.update({c: ("strong", reason) for c, reason in
                     strong_columns(unflagged, pairs, settings.strong_power, leak_power, label, problem_type).items()})  # fmt: skip
    out = []
    for c in columns:
        kind, reason = findings.get(c, ("ok", ""))
        is_feature = c in features
        excluded = is_feature and kind in EXCLUDING and c not in settings.keep
        if is_feature and kind in EXCLUDING and c in settings.keep:
            reason += " (kept: listed in screening.keep)"
        out.append(Finding(c, kind, round(single[c], 4), is_feature, excluded, reason))
    return out


def method(settings: Settings, problem_type: str) -> dict:
    """How the screen decides, for its report: the measure, the leak threshold, how many columns are paired."""
    leak_power = settings.leak_power if settings.leak_power is not None else LEAK_POWER[problem_type]
    return {"measure": _measure(problem_type), "leak_power": leak_power, "strong_power": settings.strong_power,
            "pair_columns": MAX_PAIR_COLUMNS}  # fmt: skip


def fine_bins(rows: int) -> int:
    return int(min(100, max(BINS, rows // 200)))


def pair_powers(frame: pd.DataFrame, y: np.ndarray, problem_type: str, columns: list[str],
                single: dict[str, float], leak_power: float) -> list[tuple[float, str, str, str]]:  # fmt: skip
    """The power of each pair of columns, (power, how, a, b), with its best form: the difference or the ratio of
    two numeric columns (fine bins), or the two together (a grid of their bins), scored on held-out rows; the
    MAX_PAIR_COLUMNS columns strongest alone are paired."""
    columns = sorted(columns, key=lambda c: -single[c])[:MAX_PAIR_COLUMNS]
    numeric = [c for c in columns if pd.api.types.is_numeric_dtype(frame[c]) and frame[c].nunique() > BINS]
    fine = fine_bins(len(frame))
    coarse = {c: _bins(frame[c], PAIR_GRID) for c in columns}
    found: list[tuple[float, str, str, str]] = []
    for i, a in enumerate(columns):
        for b in columns[i + 1 :]:
            scores = [(power_of_bins(coarse[a] * 1000 + coarse[b], y, problem_type), f"{a} and {b} together")]
            if a in numeric and b in numeric:
                for op, derived in (("-", frame[a] - frame[b]), ("/", frame[a] / frame[b].replace(0, np.nan))):
                    binned = power(derived, y, problem_type, fine)
                    scores.append((determines(derived, y, problem_type, binned, leak_power), f"{a} {op} {b}"))
            best = max(scores)
            found.append((best[0], best[1], a, b))
    return found


def pair_leaks(pairs: list[tuple[float, str, str, str]], single: dict[str, float], leak_power: float, label: str,
               problem_type: str) -> dict[str, str]:  # fmt: skip
    """Columns that with one other nearly determine the label (an actual time that, with the scheduled one, defines
    a delay), each with the reason naming its pair (`pair_powers`).

    Of such a pair, the column that predicts the label better alone is the one computed from the outcome (a tip,
    beside the fare it is a share of); when neither does (within 0.01), nothing tells which was known before the
    outcome and both are excluded (`screening.keep` keeps the one that was)."""
    leaks: dict[str, str] = {}
    for value, name, a, b in sorted((p for p in pairs if p[0] >= leak_power), reverse=True):
        if a in leaks or b in leaks:  # the pair is broken already
            continue
        gap = single[a] - single[b]
        culprits = [a] if gap > 0.01 else [b] if gap < -0.01 else [a, b]
        for c in culprits:
            other = b if c == a else a
            both = " (nothing tells which was known before the outcome: both excluded)" if len(culprits) == 2 else ""
            leaks[c] = (f"with {other}, determines {label}: {name} predicts it with {_measure(problem_type)} "
                        f"{value:.3f} on held-out rows{both}")  # fmt: skip
    return leaks


def strong_columns(alone: dict[str, float], pairs: list[tuple[float, str, str, str]], strong_power: float,
                   leak_power: float, label: str, problem_type: str) -> dict[str, str]:  # fmt: skip
    """Columns of `alone` (their power alone) that predict the label at `strong_power` or above without determining
    it, each with the reason: alone, or with one other column of `alone` where neither alone reaches it and the pair
    predicts PAIR_GAIN better than the better of the two (their pair is what predicts: both are named)."""
    measure = _measure(problem_type)
    advice = "keep it only if it is known when you predict; features.exclude otherwise"
    found = {c: f"predicts {label} with {measure} {p:.3f} alone: {advice}"
             for c, p in sorted(alone.items(), key=lambda x: -x[1]) if strong_power <= p < leak_power}  # fmt: skip
    for value, name, a, b in sorted(pairs, reverse=True):
        if a not in alone or b not in alone or not strong_power <= value < leak_power:
            continue
        if max(alone[a], alone[b]) < strong_power and value - max(alone[a], alone[b]) >= PAIR_GAIN:
            for c, other in ((a, b), (b, a)):
                found.setdefault(c, f"with {other}, predicts {label}: {name} with {measure} {value:.3f}: keep each "
                                    f"only if it is known when you predict; features.exclude the one that is not")  # fmt: skip
    return found


def _measure(problem_type: str) -> str:
    return {"binary_classification": "AUC", "multiclass_classification": "accuracy"}.get(problem_type, "R^2")


def as_dicts(findings: list[Finding]) -> list[dict]:
    return [asdict(f) for f in findings]
