"""The leaderboard's decision, the candidate contract and the `model:` config, without running a pipeline."""

import pytest

from models import candidate
from models.leaderboard import Result, Standing, decide
from settings.config import load_config
from settings.sections import ConfigError

pytestmark = pytest.mark.unit


def _board(**values):
    return [Standing(name, value=v) for name, v in values.items()]


def test_the_best_candidate_that_passes_every_check_wins():
    standings = _board(network=0.80, boosted=0.86, linear=0.78)
    standings[1].failures.append("[overall] auc = 0.8600 fails change vs the last blessed model")
    result = decide(standings, "auc", True, heuristic=0.70, heuristic_margin=0.0)
    assert result.winner == "network"
    by_name = {s.name: s for s in result.standings}
    assert [s.name for s in result.standings] == ["boosted", "network", "linear"]  # ranked by the metric
    assert by_name["boosted"].rank == 1 and not by_name["boosted"].winner
    assert "last blessed" in by_name["boosted"].lost_because
    assert by_name["linear"].lost_because == "auc 0.7800 against the winner's 0.8000"


def test_on_a_tie_the_smaller_model_wins():
    standings = _board(network=1.0, linear=1.0, boosted=0.98)
    standings[0].size_bytes, standings[1].size_bytes = 900_000, 40_000
    assert decide(standings, "sparse_categorical_accuracy", True).winner == "linear"
    standings = _board(network=1.0, linear=1.0)
    standings[0].size_bytes, standings[1].size_bytes = 40_000, 900_000
    assert decide(standings, "sparse_categorical_accuracy", True).winner == "network"


def test_an_error_metric_ranks_lowest_first_and_the_floor_is_relative():
    standings = _board(network=966.0, boosted=555.0, linear=1314.0)
    # the heuristic (mean price) errs 1,400: a 3 % lead is asked of every candidate
    result = decide(standings, "root_mean_squared_error", False, heuristic=1400.0, heuristic_margin=0.03)
    assert result.winner == "boosted"
    linear = next(s for s in result.standings if s.name == "linear")
    assert linear.failures == []  # 1314 is 6 % below 1400
    result = decide(_board(linear=1390.0), "root_mean_squared_error", False, heuristic=1400.0, heuristic_margin=0.03)
    assert result.winner is None and "heuristic floor" in result.failures()[0]


def test_the_canary_runs_in_rank_order_until_one_serves():
    asked = []

    def canary(name):
        asked.append(name)
        return ["canary request 0: HTTP 500: broken"] if name == "boosted" else []

    result = decide(_board(network=0.80, boosted=0.86, linear=0.70), "auc", True, canary=canary)
    assert result.winner == "network" and asked == ["boosted", "network"]  # linear is never served
    assert "serving canary" in next(s for s in result.standings if s.name == "boosted").lost_because


def test_nothing_qualifies_every_reason_is_named_and_a_failed_candidate_ranks_last():
    standings = _board(network=0.60, boosted=None)
    standings[0].failures.append("[overall] auc = 0.6000 fails lower bound 0.65")
    standings[1].failures.append("failed to train or export: ValueError: the training rows hold a single class")
    result = decide(standings, "auc", True)
    assert result.winner is None
    assert [s.name for s in result.standings] == ["network", "boosted"] and result.standings[1].rank is None
    assert result.failures() == ["network: [overall] auc = 0.6000 fails lower bound 0.65",
                                 "boosted: failed to train or export: ValueError: the training rows hold a single "
                                 "class"]  # fmt: skip
    assert Result.from_dict(result.to_dict()) == result  # what the gate reads back


def test_the_built_in_capabilities_the_pipeline_reads_are_the_modules_own():
    from pipelines.pipeline import BUILT_IN_CAPABILITIES

    for name in candidate.BUILT_IN:
        assert BUILT_IN_CAPABILITIES[name] == candidate.capabilities(candidate.load(name)), name


def test_a_candidate_module_that_breaks_the_contract_is_named(tmp_path, monkeypatch):
    (tmp_path / "no_train.py").write_text("X = 1\n")
    (tmp_path / "odd_caps.py").write_text("CAPABILITIES = ('teleport',)\ndef train(inputs):\n    return None\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(candidate.CandidateError, match="candidate 'mine': module 'no_train' has no train"):
        candidate.load("mine", "no_train")
    with pytest.raises(candidate.CandidateError, match="unknown capabilities \\['teleport'\\]"):
        candidate.load("mine", "odd_caps")
    with pytest.raises(candidate.CandidateError, match="cannot find module 'not_there'"):
        candidate.source_fingerprint("mine", "not_there")
    with pytest.raises(candidate.CandidateError, match="no built-in of that name"):
        candidate.load("forest")


def test_the_candidates_config(taxi_config_path):
    default = load_config(taxi_config_path)
    assert [c.name for c in default.model.candidates] == ["network", "boosted", "linear"]
    one = load_config(taxi_config_path, {"model": {"candidates": ["network"]}})
    assert [(c.name, c.module) for c in one.model.candidates] == [("network", None)]
    mine = load_config(taxi_config_path, {"model": {"candidates": [{"name": "mine", "module": "my_models.wide"}]}})
    assert mine.model.candidates[0].module == "my_models.wide"
    with pytest.raises(ConfigError, match="names a candidate twice"):
        load_config(taxi_config_path, {"model": {"candidates": ["network", "network"]}})
    with pytest.raises(ConfigError, match="boosted_margin' is gone"):
        load_config(taxi_config_path, {"evaluation": {"baselines": {"boosted_margin": -0.01}}})


def test_a_config_with_one_candidate_builds_todays_network_only_pipeline(taxi_config_path):
    from pipelines.pipeline import create_pipeline

    p = create_pipeline(load_config(taxi_config_path, {"model": {"candidates": ["network"]}}))
    ids = {c.id for c in p.components}
    assert {"Trainer", "Tuner", "DistilledModel", "Leaderboard", "BlessingGate", "Pusher"} <= ids
    assert not {"Trainer_boosted", "Trainer_linear"} & ids
    # without the network there is nothing to tune or distil
    p = create_pipeline(load_config(taxi_config_path, {"model": {"candidates": ["boosted"]}}))
    ids = {c.id for c in p.components}
    assert "Trainer_boosted" in ids and not {"Trainer", "Tuner", "DistilledModel"} & ids


def test_the_tables_benchmark_measures_the_pushed_model_against_the_best_reference():
    from benchmarks.real_tables import distance

    assert distance(0.851, [0.85, 0.853], "AUC") == {"best_reference": 0.853, "gap": 0.002, "within_bar": True}
    assert distance(0.84, [0.85, 0.853], "AUC")["within_bar"] is False  # 0.013 behind
    rmse = distance(560.0, [1314.0, 555.0], "RootMeanSquaredError")
    assert rmse["best_reference"] == 555.0 and rmse["within_bar"] and rmse["gap"] == pytest.approx(0.009, abs=1e-4)
    assert distance(580.0, [1314.0, 555.0], "RootMeanSquaredError")["within_bar"] is False  # 4.5 % more error
    assert distance(None, [0.85], "AUC") == {"best_reference": 0.85, "gap": None, "within_bar": False}  # no push


def test_a_candidate_that_fails_to_train_leaves_its_name_and_cause_not_a_model(tmp_path, monkeypatch):
    from types import SimpleNamespace

    from models import trainer

    (tmp_path / "broken_model.py").write_text("def train(inputs):\n    raise ValueError('no rows with a label')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    out = tmp_path / "model"
    args = SimpleNamespace(custom_config={"candidate": {"name": "broken", "module": "broken_model"}, "seed": 0},
                           train_files=[], eval_files=[], transform_output="", serving_model_dir=str(out),
                           model_run_dir=str(tmp_path / "run"), schema_path=None, hyperparameters=None,
                           train_steps=0, eval_steps=0, base_model=None)  # fmt: skip
    trainer.run_fn(args)  # does not raise: the other candidates still compete
    assert trainer.read_failure(str(out)) == "ValueError: no rows with a label"
    assert not (out / "saved_model.pb").exists()


def test_the_blessing_names_the_winners_trainer_output_locally_and_the_gates_input_on_vertex():
    from tfx.types import standard_artifacts

    from components.blessing_gate import blessed_model
    from components.idempotent_pusher import source_of

    copy = standard_artifacts.Model()
    copy.id, copy.uri = 41, "/root/pipeline/Leaderboard/model/41"
    copy.set_int_custom_property("source_model_id", 17)
    copy.set_string_custom_property("source_model", "/root/pipeline/Trainer/model/17")
    assert blessed_model(copy) == (17, "/root/pipeline/Trainer/model/17")  # stable while the Trainer is cached
    assert source_of(copy) == "/root/pipeline/Trainer/model/17"  # a copy of a served model is not pushed again
    # under the Kubeflow V2 entrypoint (Vertex) only the task's inputs get a resource name, whatever the URI
    assert blessed_model(copy, mlmd_ids=False) == (41, "/root/pipeline/Leaderboard/model/41")
    plain = standard_artifacts.Model()
    plain.id, plain.uri = 5, "/root/pipeline/Trainer/model/5"
    assert blessed_model(plain) == (5, plain.uri) and source_of(plain) == plain.uri
