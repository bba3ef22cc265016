"""make bench-seeds' arithmetic (each limit against the seeds' spread), and the demo config's limits written
with the spread they were set from."""

import re

import pytest

from benchmarks.seeds import LIMITS, candidate_row, check_limits, margin_to, parse_comment
from models.fairness import Gap

pytestmark = pytest.mark.unit


def _run(seed: int, winner: str | None, network: dict, boosted: dict) -> dict:
    return {"seed": seed, "winner": winner, "pushed": winner is not None,
            "candidates": {"network": {"failures": [], **network}, "boosted": {"failures": [], **boosted}}}  # fmt: skip


def test_each_limit_gets_every_candidates_spread_and_the_pushed_models_worst_margin():
    runs = [
        _run(0, "network", {"value": 0.80, "fnr_gap:company": 0.30, "fnr_gap:area": 0.35, "heuristic_margin": 0.05},
             {"value": 0.82, "fnr_gap:company": 0.45, "heuristic_margin": 0.07}),
        _run(1, "boosted", {"value": 0.79, "fnr_gap:company": 0.41, "heuristic_margin": 0.04},
             {"value": 0.81, "fnr_gap:company": 0.38, "heuristic_margin": 0.06}),
        _run(2, None, {"value": 0.78, "fnr_gap:company": 0.50}, {"value": 0.80, "fnr_gap:company": 0.47}),
    ]  # fmt: skip
    limits = {"framing.success_level": 0.7, "evaluation.baselines.margin": 0.0, "evaluation.fairness.max_fnr_gap": 0.4,
              "evaluation.fairness.max_fpr_gap": None}  # fmt: skip
    checks = {c.key: c for c in check_limits(runs, limits)}
    assert set(checks) == {"framing.success_level", "evaluation.baselines.margin", "evaluation.fairness.max_fnr_gap"}
    fnr = checks["evaluation.fairness.max_fnr_gap"]
    # a candidate's gap is its worst feature's; the spread counts every seed, pushed or not
    assert fnr.spread == {"network": (0.35, 0.5), "boosted": (0.38, 0.47)}
    # the pushed models: network's 0.35 on seed 0, boosted's 0.38 on seed 1 (seed 2 pushed nothing)
    assert (fnr.pushed_worst, fnr.margin) == (0.38, 0.02)
    floor = checks["framing.success_level"]
    assert (floor.pushed_worst, floor.margin) == (0.80, 0.1)  # a floor: the lowest pushed value, above it
    assert checks["evaluation.baselines.margin"].margin == 0.05
    comment = fnr.comment(3)
    assert (
        comment
        == "3 seeds (make bench-seeds): network 0.350-0.500, boosted 0.380-0.470; pushed 2 of 3, worst 0.380, margin 0.020"
    )
    assert parse_comment(comment) == {"seeds": 3, "spread": {"network": (0.35, 0.5), "boosted": (0.38, 0.47)},
                                      "pushed": 2, "pushed_worst": 0.38, "margin": 0.02}  # fmt: skip
    assert "nothing pushed" in check_limits([runs[2]], limits)[0].comment(1)
    assert margin_to(0.41, 0.4, "max") == -0.01  # over the limit: a negative margin


def test_a_candidates_row_holds_its_gated_numbers():
    gap = Gap("company", "fnr", 0.25, "a", 0.1, "b", 0.45, 5, 0.4, True)
    ratio = Gap("company", "positive_rate", 0.25, "a", 0.4, "b", 0.5, 5, None, False)
    standing = {"name": "network", "value": 0.8, "failures": ["fairness: ..."],
                "slices": {"trip_start_timestamp_month=3": 0.7, "trip_start_timestamp_month=4": 0.75,
                           "payment_type=Cash": 0.5}}  # fmt: skip
    row = candidate_row(standing, 0.72, [gap, ratio], "trip_start_timestamp_month", True)
    assert row == {"value": 0.8, "failures": ["fairness: ..."], "heuristic_margin": 0.08, "worst_month": 0.7,
                   "fnr_gap:company": 0.35, "positive_rate_ratio:company": 0.8}  # fmt: skip


def test_the_demo_configs_limits_carry_the_spread_they_were_set_from(taxi_config_path):
    """Each gated limit of configs/taxi.yaml has its make bench-seeds comment, and the margin written agrees
    with the limit: a limit changed without measuring again fails here."""
    from benchmarks.seeds import config_limits
    from settings.config import load_config

    with open(taxi_config_path) as f:
        lines = f.read().splitlines()
    limits = config_limits(load_config(taxi_config_path))
    kinds = {key: kind for key, _, kind in LIMITS}
    for key, limit in limits.items():
        if limit is None:
            continue
        leaf = key.rsplit(".", 1)[1]
        [line] = [line for line in lines if re.match(rf"\s*{leaf}:", line)]
        found = parse_comment(line)
        assert found is not None, f"{key}: no make bench-seeds comment in {line!r}"
        assert found["seeds"] >= 5, key
        assert abs(margin_to(found["pushed_worst"], limit, kinds[key]) - found["margin"]) < 1e-3, (key, line)
        assert found["margin"] >= 0, f"{key}: a pushed model measured over the limit"
