"""Corrupted inputs on real runs: each stops the pipeline, named, pushes nothing and leaves the last blessed model.

`make corruption-suite` runs all ten kinds of bad data; the suite runs four of them (a column gone, the label
gone, a number written as text, garbled rows), which reach the three places a case can be caught: the
ExampleGen's reading, the schema's comparison and the validation gate."""

import pytest

from tests.conftest import TAXI_CONFIG

pytestmark = pytest.mark.e2e

IN_THE_SUITE = ("missing_column", "missing_label", "type_change", "garbled_rows")


def test_corrupted_inputs_stop_the_run_named_and_the_last_blessed_model_stays(tmp_path):
    from drills import corruption_suite

    cases = tuple(c for c in corruption_suite.CASES if c.name in IN_THE_SUITE)
    assert len(cases) == len(IN_THE_SUITE)  # a renamed case is not silently left out
    overrides = {"tuning": {"max_trials": 0}, "simplification": None, "edge": None, "framing": {"success_level": 0.6},
                 "evaluation": {"slice_lower_bound": None, "baselines": {"margin": -0.1}},
                 "trainer": {"train_steps": 100, "eval_steps": 10, "batch_size": 64}}  # fmt: skip
    results = corruption_suite.run_suite(TAXI_CONFIG, str(tmp_path), 1200, overrides, cases)
    assert sorted(r["case"] for r in results) == sorted(IN_THE_SUITE)
    missed = [r for r in results if not r["caught"]]
    assert not missed, missed
    assert all(r["stopped"] and not r["pushed"] and r["last_blessed_intact"] for r in results)
