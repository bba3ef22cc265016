"""A forker's model, in a module outside models/, through the whole path: trained by the shared run_fn, ranked on
the leaderboard beside a built-in, pushed, served, run by batch prediction and compiled for Vertex."""

import json
import math
import os

import pytest

from tests.conftest import TAXI_CONFIG, small_overrides

pytestmark = pytest.mark.e2e

OWN = {"name": "wide_deep", "module": "examples.my_models.wide_and_deep"}


@pytest.fixture(scope="module")
def own_run(tmp_path_factory):
    from pipelines import local_runner
    from settings.config import load_config
    from settings.yaml_files import deep_merge

    root = str(tmp_path_factory.mktemp("own_model"))
    # the forker's model beside the linear one, which it must out-rank to be pushed
    overrides = deep_merge(
        small_overrides(root), {"model": {"candidates": [OWN, "linear"]}, "tuning": {"max_trials": 0}}
    )
    config = load_config(TAXI_CONFIG, overrides)
    return config, local_runner.run(config)


def test_a_forkers_model_competes_and_is_pushed_and_served(own_run, tmp_path):
    from components.serving_infra_validator import canary_check
    from datagen import taxi
    from pipelines import batch_prediction

    config, summary = own_run
    names = [s["name"] for s in summary.leaderboard]
    assert sorted(names) == ["linear", "wide_deep"]
    own = next(s for s in summary.leaderboard if s["name"] == "wide_deep")
    assert own["value"] > 0.65 and own["size_bytes"] > 0 and own["latency_ms_per_row"] > 0
    assert own["capabilities"] == []  # it declared none: no attributions, warm start or TFLite for it
    assert summary.blessed and summary.winner in names and summary.pushed_model
    # the pushed model carries the shared contract, whichever candidate won
    contract_dir = os.path.join(summary.pushed_model, "assets.extra")
    with open(os.path.join(contract_dir, "serving_contract.json")) as f:
        contract = json.load(f)
    with open(os.path.join(contract_dir, "model_metadata.json")) as f:
        assert json.load(f)["candidate"] == summary.winner
    if summary.winner == "wide_deep":
        assert contract["explain_signature"] is None
    # served as `make serve` serves it: the server on loopback, predict requests of raw rows
    rows = [{k: v for k, v in r.items() if not (isinstance(v, float) and math.isnan(v))}  # missing: absent
            for r in taxi.generate(20, seed=3).to_dict("records")]  # fmt: skip
    assert canary_check(summary.pushed_model, rows, list(config.data.personal_columns)) == []
    # batch prediction over a CSV
    taxi.write_csv(taxi.generate(50, seed=4), str(tmp_path / "in"))
    assert batch_prediction.run(config, str(tmp_path / "in" / "*.csv"), str(tmp_path / "out" / "p")) == (
        summary.pushed_model
    )


def test_a_forkers_model_compiles_for_vertex(tmp_path):
    from pipelines import vertex
    from settings.config import load_config

    config = load_config(os.path.join(os.path.dirname(TAXI_CONFIG), "vertex-dev.yaml"),
                         {"model": {"candidates": [OWN, "network"]}})  # fmt: skip
    target = str(tmp_path / "job.json")
    vertex.compile_pipeline(config, target)
    with open(target) as f:
        spec = json.load(f)["pipelineSpec"]
    tasks = spec["root"]["dag"]["tasks"]
    assert "Trainer-wide-deep" in tasks or any(t.lower().replace("_", "-") == "trainer-wide-deep" for t in tasks)
    leaderboard = next(t for name, t in tasks.items() if name.lower().startswith("leaderboard"))
    assert {"candidate_wide_deep", "candidate_network"} <= set(leaderboard["inputs"]["artifacts"])
