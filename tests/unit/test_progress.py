"""A run you can follow: one line per component as it starts and ends, from the records LocalDagRunner logs;
the JSON logs go to a file unless asked for."""

import io
import json
import logging

import pytest

from pipelines import progress
from settings import logs

pytestmark = pytest.mark.unit


def test_each_component_gets_a_line_when_it_starts_and_one_with_its_time_when_it_ends():
    out = io.StringIO()
    absl = logging.getLogger("absl")
    with progress.shown(out, live=False) as handler:
        absl.info("Component %s is running.", "Transform")
        absl.info("Using connection config:\n %s", "sqlite")  # narration: not a line of its own
        absl.info("Component %s is finished.", "Transform")
        absl.info("Component %s is running.", "Trainer")
    lines = out.getvalue().splitlines()
    assert lines[0].split() == ["Transform", "started"]
    assert lines[1].split()[:2] == ["Transform", "done"] and lines[1].endswith(" s")
    assert lines[2].split() == ["Trainer", "started"] and len(lines) == 3
    assert [c for c, _ in handler.finished] == ["Transform"]
    absl.info("Component %s is running.", "Pusher")  # after the block the handler is gone
    assert len(out.getvalue().splitlines()) == 3


def test_json_logs_go_to_the_file_and_absl_narration_stays_out(tmp_path, capsys):
    path = tmp_path / "logs" / "run.jsonl"
    logs.setup("INFO", path=str(path), stream=False, pipeline="p", run_id="r1")
    logging.getLogger("tfx.x").info("a step")
    logging.getLogger("absl").info("Component X is running.")
    logging.getLogger("absl").warning("worth reading")
    for handler in logging.getLogger().handlers:
        handler.flush()
    entries = [json.loads(line) for line in path.read_text().splitlines()]
    assert [e["message"] for e in entries] == ["a step", "worth reading"]
    assert all(e["run_id"] == "r1" for e in entries)
    assert capsys.readouterr().err == ""  # not streamed
    logs.setup("INFO")  # back to stderr for the tests after this one


def test_a_failed_component_is_named_from_the_runners_record_else_as_the_one_that_did_not_end():
    absl = logging.getLogger("absl")
    with progress.shown(io.StringIO(), live=False) as handler:
        absl.info("Component %s is running.", "Transform")
        absl.info("Component %s is running.", "Tuner")
        absl.info("Component %s is finished.", "Tuner")
    assert handler.unfinished == ["Transform"]  # LocalDagRunner: the error ends the run, no record names it
    with progress.shown(io.StringIO(), live=False) as handler:
        absl.info("Component %s is running.", "Transform")
        absl.info("Component %s is running.", "Tuner")
        absl.error("Component %s failed: %s", "Tuner", "ValueError('x')")
    assert handler.unfinished == ["Tuner"]


def test_a_failure_is_one_line_with_its_component_its_error_and_what_to_do():
    from pipelines.local_runner import failure_line

    line = failure_line(ValueError("feature 'fare': out of range\n  more detail"), ["DataValidationGate"])
    assert line.startswith("run failed in DataValidationGate: ValueError: feature 'fare': out of range - fix")
    assert "\n" not in line and "more detail" not in line and line.endswith("the traceback is in the log:")
    assert failure_line(KeyError(), []).startswith("run failed before any component ran: KeyError - ")


def _standing(name: str, capabilities: list[str], winner: bool) -> dict:
    return {"name": name, "rank": 1 if winner else 2, "value": 0.8, "size_bytes": None, "latency_ms_per_row": None,
            "winner": winner, "lost_because": "" if winner else "AUC", "capabilities": capabilities}  # fmt: skip


def test_rows_left_out_and_what_the_winner_cannot_do_are_one_summary_line_each(taxi_config_path, tmp_path):
    from metadata.run_summary import RunSummary
    from pipelines.local_runner import print_summary, warning_lines
    from settings.config import load_config

    config = load_config(taxi_config_path, {"trainer": {"warm_start": True}})  # edge: is on in the quickstart
    board = (_standing("boosted", [], True), _standing("network", ["attributions", "tflite", "warm_start"], False))
    summary = RunSummary(
        "r1", (), True, "build/serving/1", winner="boosted", leaderboard=board, rows_without_label=1234
    )
    lines = warning_lines(summary, config)
    assert lines == [
        "1,234 rows without a label (big_tip) were left out of the data (ExampleGen)",
        "the winner (boosted) has no attributions (serving's :explain), warm_start (trainer.warm_start), "
        "tflite (edge): off for this model",
    ]
    # the network wins with every capability, nothing left out: no warning
    network_wins = RunSummary("r2", (), True, "x", winner="network",
                              leaderboard=(_standing("network", ["attributions", "tflite", "warm_start"], True),))  # fmt: skip
    assert warning_lines(network_wins, config) == []
    # a capability the config does not ask for is not missed
    plain = load_config(taxi_config_path, {"edge": None})
    assert warning_lines(RunSummary("r3", (), True, "x", winner="boosted", leaderboard=board[:1]), plain) == [
        "the winner (boosted) has no attributions (serving's :explain): off for this model"
    ]
    out = io.StringIO()
    print_summary(summary, config.replace(pipeline=config.pipeline.replace(root=str(tmp_path))), "run.log", out)
    printed = [line for line in out.getvalue().splitlines() if line.startswith("warning:")]
    assert printed == [f"warning:        {line}" for line in lines]
