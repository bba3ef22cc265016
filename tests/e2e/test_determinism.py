"""The same data, config and seed give the same models and the same metrics, run after run, from scratch."""

import pytest

from tests.conftest import TAXI_CONFIG, small_overrides

pytestmark = pytest.mark.e2e


def test_two_runs_from_scratch_give_the_same_leaderboard(tmp_path):
    from pipelines import local_runner
    from settings.config import load_config
    from settings.yaml_files import deep_merge

    boards = []
    for name in ("first", "second"):
        # two candidates (a network and the trees), no search: what varies between runs is the training itself
        overrides = deep_merge(small_overrides(str(tmp_path / name)),
                               {"model": {"candidates": ["network", "boosted"]}, "tuning": {"max_trials": 0}})  # fmt: skip
        summary = local_runner.run(load_config(TAXI_CONFIG, overrides))
        boards.append({s["name"]: s["value"] for s in summary.leaderboard})
        assert summary.winner, summary.failures
    assert boards[0].keys() == boards[1].keys() == {"network", "boosted"}
    for name, value in boards[0].items():
        assert boards[1][name] == pytest.approx(value, abs=1e-6), (name, boards)
