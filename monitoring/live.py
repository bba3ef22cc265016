"""Live quality on the serving windows whose labels have arrived, for every problem type, and the
fairness gaps on them (bias alerts, with the limits of the evaluation gate)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from models.fairness import FairnessLimits, Gap, gaps, rates_from_predictions
from settings.config import Config


def labels_as_ids(config: Config, labels: pd.Series) -> np.ndarray:
    """Ground truth as the model's targets: class ids for classification (text labels mapped through
    `label_classes`, as ingestion does), floats for regression."""
    if config.problem_type == "regression":
        return labels.astype(float).to_numpy()
    if config.label_classes and labels.dtype == object:
        index = {c: i for i, c in enumerate(config.label_classes)}
        unknown = sorted(set(labels) - set(index))
        if unknown:
            raise ValueError(f"labels: {unknown[0]!r} is not one of label_classes {list(config.label_classes)}")
        return labels.map(index).to_numpy().astype(int)
    return labels.astype(int).to_numpy()


def quality(config: Config, labels: np.ndarray, predictions: list) -> dict[str, float] | None:
    """The gating metric (under its config name) and its companions on labelled live rows; None when
    the rows cannot measure it (AUC needs both classes)."""
    from sklearn import metrics as skm

    metric = config.evaluation.metric
    if config.problem_type == "regression":
        scores = np.asarray(predictions, dtype=float)
        mse = skm.mean_squared_error(labels, scores)
        out = {"RootMeanSquaredError": float(np.sqrt(mse)), "MeanAbsoluteError": skm.mean_absolute_error(labels, scores),
               "MeanSquaredError": mse}  # fmt: skip
        return {metric: out[metric], **out}
    if config.problem_type == "multiclass_classification":
        predicted = np.asarray(predictions, dtype=float).argmax(axis=1)
        classes = sorted(set(labels.tolist()))  # per class with labelled rows
        recall = skm.recall_score(labels, predicted, labels=classes, average=None)
        return {metric: skm.accuracy_score(labels, predicted),
                **{f"recall_class_{c}": float(r) for c, r in zip(classes, recall, strict=True)}}  # fmt: skip
    scores = np.asarray(predictions, dtype=float)
    if metric in ("AUC", "AUCPrecisionRecall"):
        if len(set(labels)) < 2:
            return None
        value = skm.roc_auc_score(labels, scores) if metric == "AUC" else skm.average_precision_score(labels, scores)
        return {metric: value}
    yes = scores > config.decision_threshold()  # as the Evaluator counts at its threshold
    value = {"BinaryAccuracy": skm.accuracy_score, "Precision": skm.precision_score, "Recall": skm.recall_score}
    kwargs = {} if metric == "BinaryAccuracy" else {"zero_division": 0}
    return {metric: value[metric](labels, yes, **kwargs)}


def bias(config: Config, joined: pd.DataFrame, labels: np.ndarray) -> list[Gap]:
    """The gaps between the groups of each fairness feature on labelled live rows, at the decision threshold,
    with the gate's limits (binary classification with `evaluation.fairness` limits only)."""
    e = config.evaluation
    limits = FairnessLimits(**e.fairness.model_dump())
    if config.problem_type != "binary_classification" or not limits.any:
        return []
    present = [f for f in e.fairness_features if f in joined]
    threshold = config.decision_threshold()
    groups = {f: joined[f].tolist() for f in present}
    return gaps(rates_from_predictions(labels, joined["_prediction"].to_numpy(float), groups, [threshold]),
                limits, threshold)  # fmt: skip


def evaluate(config: Config, parts: list[pd.DataFrame], labels: pd.DataFrame | None) -> list[dict]:
    """Per window: rows, labelled rows, the quality metrics and the fairness gaps on the labelled rows."""
    metric = config.evaluation.metric
    out = []
    for i, w in enumerate(parts):
        entry = {"window": f"w{i}", "rows": len(w), "labelled": 0, metric: None, "bias": []}
        if labels is not None:
            joined = w.assign(_key=w["_key"].astype(str)).merge(labels, on="_key", how="inner")
            entry["labelled"] = len(joined)
            if len(joined):
                truth = labels_as_ids(config, joined["_label"])
                measured = quality(config, truth, joined["_prediction"].tolist())
                entry.update({k: round(float(v), 6) for k, v in (measured or {}).items()})
                entry["bias"] = [g.to_dict() for g in bias(config, joined, truth)]
        out.append(entry)
    return out
