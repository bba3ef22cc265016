"""The same data, config and seed give the same models and the same metrics, run after run, from scratch."""

import glob
import json
import os

import pytest

from tests.conftest import TAXI_CONFIG, small_overrides

pytestmark = pytest.mark.e2e


def test_two_runs_from_scratch_give_the_same_leaderboard(tmp_path):
    from pipelines import local_runner
    from settings.config import load_config
    from settings.yaml_files import deep_merge

    boards, searches = [], []
    for name in ("first", "second"):
        # two candidates (a network and the trees) and the Tuner's search (2 trials): the search draws its trials
        # from trainer.seed too (KerasTuner drew a random seed for seed 0), so it picks the same network
        overrides = deep_merge(small_overrides(str(tmp_path / name)), {"model": {"candidates": ["network", "boosted"]}})
        config = load_config(TAXI_CONFIG, overrides)
        assert config.tuning.max_trials == 2
        summary = local_runner.run(config)
        boards.append({s["name"]: s["value"] for s in summary.leaderboard})
        searches.append(tuner_results(config))
        assert summary.winner, summary.failures
    assert searches[0] == searches[1] and len(searches[0]) == 2
    assert boards[0].keys() == boards[1].keys() == {"network", "boosted"}
    for name, value in boards[0].items():
        assert boards[1][name] == pytest.approx(value, abs=1e-6), (name, boards)


def tuner_results(config) -> list[dict]:
    """The Tuner's trials of the run (values and score), as TFX wrote them."""
    [path] = glob.glob(os.path.join(config.pipeline.root, "Tuner", "tuner_results", "*", "tuner_results.json"))
    with open(path) as f:
        return json.load(f)
