"""The same data, config and seed give the same model and the same metrics, run after run, from scratch."""

import glob
import json
import os

import pytest

from tests.conftest import TAXI_CONFIG, first_run_overrides

pytestmark = pytest.mark.e2e


def test_a_second_run_from_scratch_gives_the_first_runs_search_and_leaderboard(first_run, tmp_path):
    """The shared first run (the Tuner's search of 2 trials, the network, its TFLite files) against the same
    settings run again from scratch in a root of its own: the search draws its trials from trainer.seed
    (KerasTuner drew a random seed for seed 0), so it picks the same network, trained to the same weights.
    (The trees' part: tests/unit/test_boosted.py.)"""
    from pipelines import local_runner
    from settings.config import load_config

    first_config, first = first_run
    config = load_config(TAXI_CONFIG, first_run_overrides(str(tmp_path)))
    assert config.tuning.max_trials == 2 and config.model.candidates == first_config.model.candidates
    again = local_runner.run(config)
    assert first.winner and again.winner == first.winner, again.failures
    assert tuner_results(config) == tuner_results(first_config) and len(tuner_results(config)) == 2
    boards = [{s["name"]: s["value"] for s in summary.leaderboard} for summary in (first, again)]
    assert boards[0].keys() == boards[1].keys() and boards[0]
    for name, value in boards[0].items():
        assert boards[1][name] == pytest.approx(value, abs=1e-6), (name, boards)


def tuner_results(config) -> list[dict]:
    """The Tuner's trials of the root's first run (values and score), as TFX wrote them."""
    paths = glob.glob(os.path.join(config.pipeline.root, "Tuner", "tuner_results", "*", "tuner_results.json"))
    with open(min(paths, key=lambda p: int(p.split(os.sep)[-2]))) as f:
        return json.load(f)
