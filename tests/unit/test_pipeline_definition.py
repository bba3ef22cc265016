"""What create_pipeline builds, checked without running it."""

import json
import shutil

import pytest
import tensorflow_model_analysis as tfma

from pipelines import custom_configs
from pipelines.custom_configs import code_fingerprint
from pipelines.eval_configs import eval_config
from pipelines.pipeline import create_pipeline
from settings.config import load_config

pytestmark = pytest.mark.unit

EXPECTED_ORDER = [
    "CsvExampleGen", "StatisticsGen", "ImportSchemaGen", "ExampleValidator", "DataValidationGate",
    "Transform", "Tuner", "Trainer", "latest_blessed_model_resolver", "Leaderboard", "ServingInfraValidator", "Pusher",
    "Trainer_linear", "Trainer_boosted", "HeuristicBaseline", "BlessingGate",
    "DistilledModel", "FeatureScreen", "last_accepted_statistics_resolver", "SpanDriftCheck",
]  # fmt: skip


def test_components_and_wiring(taxi_config_path):
    p = create_pipeline(load_config(taxi_config_path))
    ids = [c.id for c in p.components]
    assert sorted(ids) == sorted(EXPECTED_ORDER)
    by_id = {c.id: c for c in p.components}
    # Transform reads the schema only through the validation gate, then the feature screen
    assert by_id["FeatureScreen"].inputs["schema"].producer_component_id == "DataValidationGate"
    assert by_id["Transform"].inputs["schema"].producer_component_id == "FeatureScreen"
    assert by_id["Trainer"].inputs["schema"].producer_component_id == "FeatureScreen"
    assert by_id["Pusher"].inputs["model_blessing"].producer_component_id == "BlessingGate"
    # one pass scores every candidate, the heuristic floor and the last blessed model; the gate, the infra check
    # and the Pusher take the leaderboard's winner
    board = by_id["Leaderboard"]
    assert {k: ch.producer_component_id for k, ch in board.inputs.items()} == {
        "examples": "CsvExampleGen", "candidate_network": "Trainer", "candidate_boosted": "Trainer_boosted",
        "candidate_linear": "Trainer_linear", "heuristic": "HeuristicBaseline",
        "baseline_model": "latest_blessed_model_resolver",
    }  # fmt: skip
    for reader in ("BlessingGate", "ServingInfraValidator", "Pusher"):
        assert by_id[reader].inputs["model"].producer_component_id == "Leaderboard"
    settings = json.loads(board.exec_properties["settings"])
    assert (settings["metric"], settings["higher_is_better"], settings["heuristic_margin"]) == ("auc", True, 0.0)
    ec = tfma.EvalConfig()
    from google.protobuf import json_format

    json_format.Parse(board.exec_properties["eval_config"], ec)
    assert [s.name for s in ec.model_specs] == ["network", "boosted", "linear", "heuristic", "baseline"]
    # each candidate runs its own Trainer with the shared run_fn, named in its custom_config
    for trainer, name in (("Trainer", "network"), ("Trainer_boosted", "boosted"), ("Trainer_linear", "linear")):
        assert json.loads(by_id[trainer].exec_properties["custom_config"])["candidate"]["name"] == name
    # drift stops the run before Transform through an ordering edge, not an input (Transform stays cached)
    assert "SpanDriftCheck" in {n.id for n in by_id["Transform"].upstream_nodes} and "SpanDriftCheck" not in {
        ch.producer_component_id for ch in by_id["Transform"].inputs.values()
    }
    assert by_id["SpanDriftCheck"].inputs["previous_statistics"].producer_component_id == (
        "last_accepted_statistics_resolver"
    )
    # Transform writes no analyzer cache: no run reads one back
    assert "updated_analyzer_cache" not in by_id["Transform"].outputs
    # the distilled model learns from the candidate; it is compared, never pushed
    assert by_id["DistilledModel"].inputs["base_model"].producer_component_id == "Trainer"
    assert all(ch.producer_component_id != "DistilledModel" for ch in by_id["Pusher"].inputs.values())
    # the next run's baseline is a model the gate blessed, not one the main Evaluator alone blessed
    from tfx.dsl.compiler import compiler

    ir = compiler.Compiler().compile(p)
    (resolver,) = [n.pipeline_node for n in ir.nodes if n.pipeline_node.node_info.id == "latest_blessed_model_resolver"]
    queries = [
        (q.name.field_value.string_value, c.output_key)
        for i in resolver.inputs.inputs.values() for c in i.channels
        if c.artifact_query.type.name == "ModelBlessing" for q in c.context_queries
    ]  # fmt: skip
    assert ("taxi-tips.BlessingGate", "blessing") in queries
    assert by_id["Pusher"].inputs["infra_blessing"].producer_component_id == "ServingInfraValidator"
    assert by_id["Trainer"].inputs["hyperparameters"].producer_component_id == "Tuner"
    custom = json.loads(by_id["Trainer"].exec_properties["custom_config"])
    assert custom["features"]["label"] == "big_tip"
    assert "rider_email" not in json.dumps(custom)


def test_thresholds_come_from_config(taxi_config_path):
    config = load_config(
        taxi_config_path,
        {"framing": {"success_metric": "AUCPrecisionRecall", "success_level": 0.4},
         "evaluation": {"max_regression": 0.02, "slice_lower_bound": 0.35}},
    )  # fmt: skip
    ec = eval_config(config)
    gated = [m for m in ec.metrics_specs[0].metrics if m.per_slice_thresholds]
    assert [m.class_name for m in gated] == ["AUCPrecisionRecall"]
    assert not any(m.HasField("threshold") for m in ec.metrics_specs[0].metrics)  # it would hold every slice
    overall, months = gated[0].per_slice_thresholds
    assert list(overall.slicing_specs) == [tfma.SlicingSpec()]
    t = overall.threshold
    assert t.value_threshold.lower_bound.value == 0.4
    assert t.change_threshold.absolute.value == pytest.approx(-0.02)
    assert t.change_threshold.direction == tfma.MetricDirection.HIGHER_IS_BETTER
    assert list(months.slicing_specs[0].feature_keys) == ["trip_start_timestamp_month"]
    assert months.threshold.value_threshold.lower_bound.value == 0.35
    assert ec.model_specs[0].label_key == "big_tip"
    candidate, baseline = ec.model_specs
    assert list(candidate.preprocessing_function_names) == ["slice_features"]
    # the last blessed model may predate that signature; every model has serving_default
    assert baseline.is_baseline and list(baseline.preprocessing_function_names) == ["serving_default"]
    sliced = {tuple(s.feature_keys) for s in ec.slicing_specs}
    assert sliced == {(), ("payment_type",), ("company",), ("trip_start_timestamp_month",)}  # company: fairness
    # TFMA's class names (the counts come from the AUC histogram at these thresholds: test_histogram_metrics)
    names = {m.class_name.removesuffix("FromHistogram") for m in ec.metrics_specs[0].metrics}
    at = {
        m.class_name.removesuffix("FromHistogram"): json.loads(m.config)
        for m in ec.metrics_specs[0].metrics
        if m.class_name.startswith(("Precision", "Recall"))
    }
    assert at == {"Precision": {"thresholds": [0.25]}, "Recall": {"thresholds": [0.25]}}  # 1 / (1 + 3) from framing
    # per fairness group: the counts at the decision threshold and at the reported ones
    [counts] = [m for m in ec.metrics_specs[0].metrics if m.class_name.startswith("ConfusionMatrixAtThresholds")]
    assert json.loads(counts.config) == {"thresholds": [0.25, 0.5]}
    # calibration and the confusion matrices are computed for every binary evaluation
    assert {"Calibration", "ConfusionMatrixPlot", "CalibrationPlot"} <= names


@pytest.mark.parametrize(
    "config_file, metrics, direction",
    [
        ("taxi-multiclass.yaml", {"SparseCategoricalAccuracy", "MultiClassConfusionMatrixPlot"}, "HIGHER_IS_BETTER"),
        ("taxi-regression.yaml", {"RootMeanSquaredError", "MeanAbsoluteError"}, "LOWER_IS_BETTER"),
    ],
)  # fmt: skip
def test_metrics_and_gate_direction_follow_the_problem_type(taxi_config_path, config_file, metrics, direction):
    config = load_config(taxi_config_path.replace("taxi.yaml", config_file))
    ec = eval_config(config)
    names = {m.class_name for m in ec.metrics_specs[0].metrics}
    assert metrics <= names and not {"AUC", "FPR", "Calibration"} & names
    [gated] = [m for m in ec.metrics_specs[0].metrics if m.per_slice_thresholds]
    threshold = gated.per_slice_thresholds[0].threshold
    assert tfma.MetricDirection.Name(threshold.change_threshold.direction) == direction
    if direction == "LOWER_IS_BETTER":  # an error: a ceiling, and a regression is a rise
        assert threshold.value_threshold.upper_bound.value == config.evaluation.upper_bound
        assert threshold.change_threshold.absolute.value > 0
    else:
        assert threshold.value_threshold.lower_bound.value == config.evaluation.lower_bound


def test_month_of_a_timestamp():
    import numpy as np
    import tensorflow as tf

    from models.trainer import month_of

    # 1970-01-01, 2026-01-01, 2026-02-28 23:59:59, 2026-03-01, 2024-02-29 (leap), 2026-12-31
    seconds = np.array([0, 1767225600, 1772323199, 1772323200, 1709164800, 1798675200], dtype=np.int64)
    assert month_of(tf.constant(seconds)).numpy().tolist() == [1, 1, 2, 3, 2, 12]


def test_code_fingerprint_changes_with_model_code(tmp_path):
    copy = tmp_path / "models"
    shutil.copytree(custom_configs.MODEL_CODE_DIR, copy, ignore=shutil.ignore_patterns("__pycache__"))
    before = code_fingerprint(str(copy))
    assert before == code_fingerprint(custom_configs.MODEL_CODE_DIR)
    with open(copy / "model.py", "a") as f:
        f.write("\n# changed\n")
    assert code_fingerprint(str(copy)) != before


def test_no_tuner_when_the_budget_is_zero(taxi_config_path):
    p = create_pipeline(load_config(taxi_config_path, {"tuning": {"max_trials": 0}}))
    by_id = {c.id: c for c in p.components}
    assert "Tuner" not in by_id and "hyperparameters" not in by_id["Trainer"].inputs


def test_an_inferred_schema_parses_every_column_as_optional(taxi_config_path):
    """A table with no curated schema: SchemaGen infers no fixed shapes, so the export reads a serving input
    as optional and a missing number is imputed in the Transform graph, not refused."""
    config = load_config(taxi_config_path, {"data": {"schema": None}})
    by_id = {c.id: c for c in create_pipeline(config).components}
    assert "ImportSchemaGen" not in by_id and by_id["SchemaGen"].exec_properties["infer_feature_shape"] in (0, False)


def test_tuner_search_space_from_config(taxi_config_path):
    from models.model import HParams
    from models.tuning import hparams_from_values, search_space

    p = create_pipeline(load_config(taxi_config_path, {"tuning": {"max_trials": 5, "hidden_units": [[16], [8, 4]]}}))
    tuner = {c.id: c for c in p.components}["Tuner"]
    space = json.loads(tuner.exec_properties["custom_config"])["tuning"]
    assert space["max_trials"] == 5
    hp = search_space(space)
    assert hp.get("hidden_units") in ("16", "8-4")
    assert {c["config"]["name"]: c for c in hp.get_config()["space"]}["hidden_units"]["config"]["values"] == [
        "16",
        "8-4",
    ]
    assert hparams_from_values({"hidden_units": "8-4", "learning_rate": 0.01}, HParams()) == HParams(
        hidden_units=(8, 4), learning_rate=0.01, embedding_dim=HParams().embedding_dim
    )


def test_local_beam_steps_name_a_dependency_so_tfx_builds_no_package(taxi_config_path):
    """Without a dependency flag TFX builds a ~50 MB sdist of itself into /tmp for every Beam step
    and leaves it there; the in-process runner needs none, so the args name the project's setup.py."""
    import os

    from tfx.utils import dependency_utils

    from pipelines.beam_options import beam_args

    args = beam_args(load_config(taxi_config_path))
    [setup] = [a for a in args if a.startswith("--setup_file=")]
    assert os.path.exists(setup.split("=", 1)[1])
    assert dependency_utils.make_beam_dependency_flags(args) == args  # TFX's own check: nothing to build
    dev = beam_args(load_config(taxi_config_path.replace("taxi.yaml", "vertex-dev.yaml")))
    assert "--setup_file=/pipeline/setup.py" in dev  # the checkout's place in the image


def test_batch_and_stream_prediction_start_without_tfx():
    """Importing TFX (and the aiplatform SDK it pulls in) took about 4 s of every batch prediction run:
    the prediction pipelines and their Beam args must not import it."""
    import subprocess
    import sys

    code = ("import sys, pipelines.batch_prediction, pipelines.streaming, pipelines.beam_options; "
            "print(sorted(m for m in ('tfx', 'google.cloud.aiplatform') if m in sys.modules))")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"


def test_tfma_runs_every_model_through_its_signatures(taxi_config_path):
    """Every model spec names its type. Unset, TFMA guesses it by loading the model with whichever Keras
    `tf.keras` is in that process: Keras 3 cannot load the SavedModel, tf_keras can, and then TFMA runs it
    as a Keras model instead (TF_USE_LEGACY_KERAS would decide how the models are evaluated)."""
    config = load_config(taxi_config_path)
    specs = eval_config(config, ["network", "boosted", "linear"], heuristic=True).model_specs
    assert len(specs) == 5 and {spec.model_type for spec in specs} == {tfma.TF_GENERIC}


def test_the_search_draws_the_same_trials_from_the_same_seed_zero_included():
    """KerasTuner reads a seed of 0 as none and draws a random one: the default seed must still give one search."""
    from models.tuning import oracle

    space = {"max_trials": 3, "learning_rate": [0.001, 0.01], "hidden_units": [[64, 32], [32]], "embedding_dim": [4, 8]}

    def trials(seed: int) -> list[dict]:
        search = oracle(space, "binary", seed)
        return [search.populate_space(f"t{i}")["values"] for i in range(3)]

    assert trials(0) == trials(0)
    assert trials(1) == trials(1)
    assert trials(0) != trials(1)
