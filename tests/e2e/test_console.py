"""A run from scratch as `make run` starts it. Its console: the progress lines and the summary, nothing else;
TensorFlow's, absl's, Beam's and TFMA's output of every component's process goes to the run's log file. A failure
is one line, then the log. Its result: the same search and leaderboard as the shared first run, to 1e-6 (the same
data, config and seed; another process, another root)."""

import glob
import json
import os
import re
import subprocess

import pytest

from drills import runs
from pipelines import local_runner
from settings import logs
from tests.conftest import REPO, first_run_overrides, small_overrides

pytestmark = pytest.mark.e2e

PROGRESS = (
    r"run [0-9a-f]{12} of \S+: one line per component \(all logs: \S+\)",
    r"  \S+ +started",
    r"  \S+ +done +\d+\.\d s",
)
SUMMARY = (
    r"",
    r"run: +\S+",
    r"  \S+ +[A-Z]+ +\d+\.\d s",
    r"leaderboard:",
    r"  +(\d+|-) \S+ +\S+ +\S+( MB)? +\S+ ms/row +(winner|lost: .+)",  # a candidate's line
    r"blessed: +\S+( \(winner: \S+\))?",
    r"  failed: +.+",
    r"pushed model: +\S.*",
    r"warning: +.+",  # rows left out, a capability the winner lacks: one line each
    r"metadata store: +\S+",
    r"outputs: +\S+",
    r"report: +\S+",
    r"logs: +\S+",
)


def foreign(lines: list[str]) -> list[str]:
    return [line for line in lines if not any(re.fullmatch(p, line) for p in PROGRESS + SUMMARY)]


def user_shell() -> dict:
    """A user's shell: none of the variables `make test`'s own make sets for the commands it starts."""
    return runs.outside_make(runs.shell_env())


@pytest.fixture(scope="module")
def fresh_run(tmp_path_factory):
    """`make run CONFIG=…` as the README shows it, with the shared first run's settings (2,000 rows, a search of 2
    trials, the TFLite files, the distilled model) in a root of its own: its config and the finished process."""
    from settings.config import load_config

    tmp_path = tmp_path_factory.mktemp("fresh")
    overrides = first_run_overrides(str(tmp_path / "work"))
    config_path = runs.write_yaml(str(tmp_path), overrides)
    done = subprocess.run(
        ["make", "run", f"CONFIG={config_path}"], cwd=REPO, env=user_shell(), capture_output=True, text=True,
        timeout=900,
    )  # fmt: skip
    return load_config(config_path), done


def test_a_healthy_run_shows_only_its_progress_and_summary(fresh_run):
    _, done = fresh_run
    out = done.stdout.splitlines()
    assert done.returncode == 0, done.stdout + done.stderr
    assert foreign(out) == [] and done.stderr == ""
    assert any(re.fullmatch(r"  Pusher +done +\d+\.\d s", line) for line in out)
    assert "blessed:        True (winner: network)" in out
    (log_path,) = re.findall(r"^logs: +(\S+)$", done.stdout, flags=re.M)
    with open(log_path) as f:
        lines = f.read().splitlines()

    def is_json(line: str) -> bool:
        try:
            return isinstance(json.loads(line), dict)
        except ValueError:
            return False

    # what the processes wrote outside the JSON logs (TensorFlow's warnings and C++ logging) is there, not lost
    assert any("tensorflow" in line.lower() and not is_json(line) for line in lines)
    assert any(is_json(line) for line in lines)


def test_a_failed_run_prints_one_line_naming_it_then_the_log(tmp_path, capfd):
    """In the runner's own process (no component starts): the console shows the header, the failure and the log."""
    overrides = {**small_overrides(str(tmp_path / "work")), "data": {"path": str(tmp_path / "nowhere")}}
    config_path = runs.write_yaml(str(tmp_path), {**overrides, "data": {**overrides["data"], "generate": None}})
    try:
        code = local_runner.main(["--config", config_path])
    finally:
        logs.setup("INFO")  # back to stderr for the tests after this one
    out, err = capfd.readouterr()
    assert code == 1
    assert foreign(out.splitlines()) == []
    failure, log_line = err.splitlines()
    assert failure.startswith("run failed before any component ran: FileNotFoundError: ")
    assert f"data.path '{tmp_path / 'nowhere'}' does not exist" in failure and "run again" in failure
    log_path = os.path.join(str(tmp_path / "work"), "pipeline", "logs")
    assert re.fullmatch(rf"logs: +{re.escape(log_path)}/[0-9a-f]{{12}}\.jsonl", log_line)
    with open(log_line.split()[-1]) as f:
        assert "Traceback" in f.read()


def test_a_second_run_from_scratch_gives_the_first_runs_search_and_leaderboard(first_run, fresh_run):
    """The search draws its trials from trainer.seed (KerasTuner drew a random seed for seed 0), so it picks the
    same network, trained to the same weights (op determinism, seeded sampling). The trees' part of it:
    tests/unit/test_boosted.py."""
    from metadata.mlmd import open_store
    from metadata.run_summary import latest_run

    (first_config, first), (config, done) = first_run, fresh_run
    assert done.returncode == 0, done.stdout + done.stderr
    again = latest_run(open_store(config.pipeline.metadata_path), config.pipeline.name)
    assert config.tuning.max_trials == 2 and config.model.candidates == first_config.model.candidates
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
