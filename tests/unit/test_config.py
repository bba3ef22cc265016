import pytest
import yaml

from settings.config import Config, ConfigError, load_config

pytestmark = pytest.mark.unit


def write(tmp_path, raw: dict) -> str:
    path = tmp_path / "configs" / "c.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(yaml.safe_dump(raw))
    return str(path)


def base(taxi_config_path) -> dict:
    with open(taxi_config_path) as f:
        return yaml.safe_load(f)


def test_project_config_loads_typed_with_absolute_paths(taxi_config_path):
    config = load_config(taxi_config_path)
    assert isinstance(config, Config)
    assert config.label == "big_tip"
    assert config.features.hashed == {"taxi_id": 64}
    assert isinstance(config.features.numeric, tuple)
    assert config.pipeline.root.startswith("/") and config.pipeline.root.endswith("build/pipeline")
    assert config.data.schema.endswith("schemas/taxi/schema.pbtxt")
    assert "--runner=FnApiRunner" in config.pipeline.beam_args


def test_unknown_key_is_named_with_the_file(tmp_path, taxi_config_path):
    raw = base(taxi_config_path)
    raw["trainer"]["learning_rat"] = 0.1
    path = write(tmp_path, raw)
    with pytest.raises(ConfigError, match=r"c\.yaml: unknown key 'trainer\.learning_rat'"):
        load_config(path)


def test_missing_required_key_is_named(tmp_path, taxi_config_path):
    raw = base(taxi_config_path)
    del raw["pipeline"]["metadata_path"]
    with pytest.raises(ConfigError, match=r"c\.yaml: missing required key 'pipeline\.metadata_path'"):
        load_config(write(tmp_path, raw))


def test_wrong_type_and_bad_choice_are_named(tmp_path, taxi_config_path):
    raw = base(taxi_config_path)
    raw["trainer"]["train_steps"] = "many"
    with pytest.raises(ConfigError, match=r"'trainer\.train_steps' must be int, got str"):
        load_config(write(tmp_path, raw))
    raw = base(taxi_config_path)
    raw["problem_type"] = "clustering"
    with pytest.raises(ConfigError, match=r"'problem_type' must be one of"):
        load_config(write(tmp_path, raw))


def test_label_used_as_feature_is_rejected(tmp_path, taxi_config_path):
    raw = base(taxi_config_path)
    raw["features"]["numeric"].append("big_tip")
    with pytest.raises(ConfigError, match="'big_tip' is also listed under 'features'"):
        load_config(write(tmp_path, raw))


def test_personal_column_as_feature_is_rejected(tmp_path, taxi_config_path):
    raw = base(taxi_config_path)
    raw["features"]["categorical"].append("rider_email")
    with pytest.raises(ConfigError, match="'rider_email' is used as a feature"):
        load_config(write(tmp_path, raw))


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(str(tmp_path / "nope.yaml"))
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: [1, 2")
    with pytest.raises(ConfigError, match="bad.yaml: not valid YAML"):
        load_config(str(bad))


def test_overrides_merge_into_sections(taxi_config_path):
    config = load_config(taxi_config_path, {"trainer": {"train_steps": 7}})
    assert config.trainer.train_steps == 7
    assert config.trainer.batch_size == load_config(taxi_config_path).trainer.batch_size


def test_profile_extends_a_base_and_rejects_loops(tmp_path, taxi_config_path):
    profile = tmp_path / "p.yaml"
    profile.write_text(f"extends: {taxi_config_path}\ntrainer: {{train_steps: 7}}\n")
    config = load_config(str(profile))
    assert config.trainer.train_steps == 7 and config.label == "big_tip"
    loop = tmp_path / "loop.yaml"
    loop.write_text("extends: loop.yaml\n")
    with pytest.raises(ConfigError, match="'extends' loops back"):
        load_config(str(loop))
    missing = tmp_path / "m.yaml"
    missing.write_text("extends: nowhere.yaml\n")
    with pytest.raises(ConfigError, match="'extends' names nowhere.yaml, which does not exist"):
        load_config(str(missing))


def test_logs_are_json_lines_with_the_run_context(capsys):
    import json
    import logging

    from settings import logs

    logs.setup("INFO", pipeline="taxi-tips", run_id="abc")
    logs.bind(model_version="17")
    logging.getLogger("tfx.some.component").info("hello %s", "world")
    logging.getLogger("tfx.some.component").debug("hidden at INFO")
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1
    record = json.loads(lines[0])
    assert record["message"] == "hello world" and record["level"] == "INFO"
    assert record["run_id"] == "abc" and record["model_version"] == "17" and record["pipeline"] == "taxi-tips"
    logging.getLogger().handlers.clear()


def test_framing_sets_the_gate_and_the_decision_threshold(taxi_config_path):
    config = load_config(taxi_config_path, {"framing": {"cost_false_positive": 2.0, "cost_false_negative": 6.0}})
    assert config.framing.decision_threshold == pytest.approx(0.25)
    assert (config.evaluation.metric, config.evaluation.lower_bound) == ("AUC", 0.70)  # from framing
    with pytest.raises(ConfigError, match="'evaluation.lower_bound' is derived from 'framing.success_level'"):
        load_config(taxi_config_path, {"evaluation": {"lower_bound": 0.5}})
    with pytest.raises(ConfigError, match="'framing.cost_false_negative' must be > 0, got 0"):
        load_config(taxi_config_path, {"framing": {"cost_false_negative": 0}})


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"features": {"buckets": {"payment_type": 5}}}, "'features.buckets' payment_type: 5 needs a numeric"),
        ({"features": {"crosses": {"fare x company": 10}}}, "'features.crosses' 'fare x company': fare is not an id"),
        ({"features": {"crosses": {"company,taxi_id": 10}}}, "a cross is written 'a x b'"),
        ({"split": {"by": "time", "train_fraction": 1.5}}, "'split.train_fraction' must be < 1, got 1.5"),
        ({"problem_type": "regression"}, "'evaluation.metric' for regression must be one of"),
        ({"problem_type": "multiclass_classification"}, "'evaluation.metric' for multiclass_classification"),
        ({"num_classes": 3}, "'num_classes' is only for multiclass_classification"),
        ({"trainer": {"distribution": "multi_worker"}}, "needs 'vertex.training.replica_count' >= 2"),
        ({"data": {"format": "xml"}}, "'data.format' must be one of"),
    ],
)  # fmt: skip
def test_rules_across_keys_are_named(taxi_config_path, overrides, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_config(taxi_config_path, overrides)


def test_problem_type_rules_for_non_binary(taxi_config_path):
    regression = load_config(taxi_config_path.replace("taxi.yaml", "taxi-regression.yaml"))
    assert regression.evaluation.metric == "RootMeanSquaredError" and regression.evaluation.upper_bound == 2.0
    with pytest.raises(ConfigError, match="'evaluation.fairness_features' is only supported for binary"):
        load_config(taxi_config_path.replace("taxi.yaml", "taxi-regression.yaml"),
                    {"evaluation": {"fairness_features": ["payment_type"]}})  # fmt: skip
    with pytest.raises(ConfigError, match="slice_lower_bound' needs a higher-is-better metric"):
        load_config(taxi_config_path.replace("taxi.yaml", "taxi-regression.yaml"),
                    {"evaluation": {"slice_lower_bound": 1.0}})  # fmt: skip
    multi = load_config(taxi_config_path.replace("taxi.yaml", "taxi-multiclass.yaml"))
    assert multi.num_classes == 3 and multi.evaluation.lower_bound == 0.58
