"""The reliability drills (make drills runs them all, at full size), each at a size the suite affords:
on the session's first run, copied before anything is changed. Loopback only; every drill bounded. That each drill's check reports the
fault it guards against (planted: a push in place, a lock not taken, a log writer that dies...) is shown in
tests/unit/test_drills.py."""

import os
import shutil
import subprocess

import pytest

from drills import bad_model, disk_full, hot_swap, housekeeping, killed_run, runs
from settings.yaml_files import deep_merge
from tests.conftest import first_run_overrides

pytestmark = pytest.mark.e2e


def test_a_run_killed_during_the_evaluator_reruns_from_the_cache(first_run, e2e_root, tmp_path):
    """A copy of the first run's workdir, seen by the runs at its own path (so the cache holds), with a new
    regression bound: the Evaluator runs again and is killed; the re-run takes the rest from the cache and
    leaves nothing in its TMPDIR. (Two runs at once: tests/unit/test_run_lock.py here, make drills in full.)"""
    copy = str(tmp_path / "copy")
    shutil.copytree(e2e_root, copy, symlinks=True)
    config_path = runs.write_yaml(str(tmp_path), deep_merge(first_run_overrides(e2e_root), {"evaluation": {"max_regression": 0.049}}))  # fmt: skip
    result = killed_run.kill_and_rerun(config_path, "Leaderboard", 1.0, view=(copy, e2e_root),
                                       local=lambda p: p.replace(e2e_root, copy, 1), tmpdir=str(tmp_path / "tmpdir"))  # fmt: skip
    assert result["problems"] == []
    assert {"CsvExampleGen", "Transform", "Trainer"} <= set(result["cached_on_rerun"])
    assert "Leaderboard" not in result["cached_on_rerun"]
    assert os.listdir(first_run[0].pipeline.serving_dir)  # the original is untouched


def test_a_full_disk_fails_the_push_cleanly_and_the_old_model_stays_served(first_run, tmp_path):
    config, summary = first_run
    result = disk_full.push_on_full_disk(config, summary.pushed_model, str(tmp_path))
    assert result["problems"] == []
    assert "No space left on device" in result["error"]


def test_a_full_disk_under_the_prediction_log_does_not_fail_requests(first_run, tmp_path):
    config, _ = first_run
    result = disk_full.log_on_full_disk(config, config.pipeline.serving_dir, str(tmp_path), requests=300)
    assert result["problems"] == []
    assert result["answered_200"] == result["requests"] == 300 and result["lines_lost"] > 0


def test_the_disk_drill_fails_loudly_if_it_cannot_mount(tmp_path):
    with pytest.raises(subprocess.CalledProcessError), disk_full.small_disk(str(tmp_path / "d"), -1):
        pass


def test_hot_swap_under_load_names_the_version_that_scored_each_answer(first_run, tmp_path):
    config, _ = first_run
    new = hot_swap.distilled_model(config.pipeline.root)
    result = hot_swap.run_drill(config, config.pipeline.serving_dir, new, str(tmp_path), requests=5000)
    assert result["problems"] == []
    assert result["errors"] == 0 and sum(result["by_version"].values()) == 5000


def test_broken_versions_are_refused_and_the_last_good_one_served(first_run, tmp_path):
    config, _ = first_run
    result = bad_model.run_drill(config, config.pipeline.serving_dir, str(tmp_path), requests_per_case=30)
    assert result["problems"] == []
    assert all("saved_model.pb" in why or "SavedModel" in why for why in result["refused"].values())


def test_make_schema_leaves_nothing_outside_its_workdir(tmp_path):
    """What make schema does, in this process with its own temporary directory (TFDV and Beam left theirs)."""
    from tables import schema_proposal

    config = runs.load(runs.write_config(str(tmp_path / "tool")))
    result = housekeeping.leftovers("make schema", lambda: schema_proposal.propose(config, str(tmp_path / "csv")),
                                    str(tmp_path))  # fmt: skip
    assert result["problems"] == []
