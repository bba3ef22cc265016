"""Per-group confusion counts of the candidate, read from an Evaluator's output.

The Evaluator computes TFMA's `ConfusionMatrixAtThresholds` on every slice; the slices of
the fairness features are the groups. The BlessingGate checks their gaps, and the run's
report shows them.
"""

from __future__ import annotations

from components.tfma_results import slice_value
from models.fairness import GroupRates

CONFUSION_MATRIX = "confusion_matrix_at_thresholds"  # TFMA's metric name


def group_rates(
    evaluation_uri: str, features: tuple[str, ...] | list[str], model: str = "candidate"
) -> list[GroupRates]:
    """One GroupRates per value of each feature in `features` and threshold, for `model` (a lone model's
    results carry no name)."""
    import tensorflow_model_analysis as tfma

    out = []
    for metrics in tfma.load_metrics(evaluation_uri):
        keys = metrics.slice_key.single_slice_keys
        if len(keys) != 1 or keys[0].column not in features:
            continue
        for kv in metrics.metric_keys_and_values:
            k = kv.key
            if k.name != CONFUSION_MATRIX or k.is_diff or k.model_name not in ("", model):
                continue
            for m in kv.value.confusion_matrix_at_thresholds.matrices:
                out.append(GroupRates(keys[0].column, slice_value(keys[0]), round(m.threshold, 6), m.true_positives,
                                      m.false_positives, m.true_negatives, m.false_negatives))  # fmt: skip
    return sorted(out, key=lambda r: (r.feature, r.group, r.threshold))
