"""Whether a candidate stands far enough ahead of a reference (the heuristic floor) on the gating metric.

The rule is TFMA's change threshold, as an Evaluator with that reference as its baseline would apply it: the
change is the candidate's value minus the reference's. For a higher-is-better metric it must be at least the margin
(absolute); for an error metric, the change as a fraction of the baseline's error must be at most
-margin (relative), and a baseline error of exactly 0 fails it, as in TFMA (the ratio is NaN).
A negative margin lets the candidate trail by that much.
"""

from __future__ import annotations

import math


def passes(candidate: float, baseline: float, margin: float, higher_is_better: bool) -> bool:
    """TFMA's check of a change threshold: absolute `margin` when higher is better, else relative `-margin`."""
    change = candidate - baseline
    if higher_is_better:
        return change >= margin
    ratio = float("nan") if math.isclose(baseline, 0.0) else change / baseline
    return ratio <= -margin
