"""Group rates and gaps: counts against scikit-learn's confusion matrix, and the gap rules."""

import numpy as np
import pytest
from sklearn.metrics import confusion_matrix

from models.fairness import FairnessLimits, GroupRates, gaps, rates_from_predictions

pytestmark = pytest.mark.unit


def test_rates_per_group_match_a_confusion_matrix():
    rng = np.random.default_rng(0)
    labels, scores = rng.integers(0, 2, 500), rng.random(500)
    groups = rng.choice(["a", "b", "c"], 500)
    rates = rates_from_predictions(labels, scores, {"g": groups}, [0.3, 0.5])
    assert {(r.group, r.threshold) for r in rates} == {(g, t) for g in "abc" for t in (0.3, 0.5)}
    for r in rates:
        mask = groups == r.group
        tn, fp, fn, tp = confusion_matrix(labels[mask], scores[mask] > r.threshold, labels=[0, 1]).ravel()
        assert (r.tp, r.fp, r.tn, r.fn) == (tp, fp, tn, fn)
        assert r.fpr == pytest.approx(fp / (fp + tn)) and r.fnr == pytest.approx(fn / (fn + tp))
        assert r.positive_rate == pytest.approx((scores[mask] > r.threshold).mean())


def test_a_missing_value_is_in_no_group():
    rates = rates_from_predictions([1, 0, 1], [0.9, 0.8, 0.1], {"g": ["a", None, float("nan")]}, [0.5])
    assert [(r.group, r.size, r.tp) for r in rates] == [("a", 1, 1)]


def rates(fpr_a: float, fpr_b: float, negatives_b: int = 100) -> list[GroupRates]:
    """Two groups with 100 positives each (FNR 0.2) and the given FPRs."""
    return [GroupRates("g", "a", 0.5, 80, fpr_a * 100, (1 - fpr_a) * 100, 20),
            GroupRates("g", "b", 0.5, 80, fpr_b * negatives_b, (1 - fpr_b) * negatives_b, 20)]  # fmt: skip


def test_a_gap_over_its_limit_is_violated_and_named():
    [fpr] = gaps(rates(0.1, 0.45), FairnessLimits(max_fpr_gap=0.3), 0.5)
    assert fpr.violated and fpr.value == pytest.approx(0.35)
    assert (fpr.high_group, fpr.low_group) == ("b", "a")
    assert fpr.message() == ("g: false positive rate of b is 0.450 against 0.100 for a at threshold 0.5, "
                             "a gap of 0.350 over the largest allowed 0.3")  # fmt: skip
    [within] = gaps(rates(0.1, 0.3), FairnessLimits(max_fpr_gap=0.3), 0.5)
    assert not within.violated and "largest allowed 0.3" in within.message() and "over" not in within.message()


def test_small_groups_and_other_thresholds_do_not_count():
    assert gaps(rates(0.1, 0.9, negatives_b=20), FairnessLimits(max_fpr_gap=0.3, min_group_size=30), 0.5) == []
    assert gaps(rates(0.1, 0.9), FairnessLimits(max_fpr_gap=0.3), 0.25) == []
    # the FNR of both groups counts (100 positives each) and is equal
    [fnr] = gaps(rates(0.1, 0.9, negatives_b=20), FairnessLimits(max_fnr_gap=0.1, min_group_size=30), 0.5)
    assert fnr.value == pytest.approx(0.0) and not fnr.violated


def test_positive_rate_ratio_is_lowest_over_highest():
    [ratio] = gaps(rates(0.0, 0.5), FairnessLimits(min_positive_rate_ratio=0.8), 0.5)
    # a: 80 of 200 rows predicted yes; b: 130 of 200
    assert ratio.value == pytest.approx(80 / 130) and ratio.violated
    assert (ratio.low_group, ratio.high_group) == ("a", "b") and "below the smallest allowed 0.8" in ratio.message()
