"""The real-tables suite: five public tables read from their installed packages (datagen/public_tables.py), each
through the bring-your-own path with its one YAML (configs/tables/) and no code of its own. Every first run
succeeds and pushes the leaderboard's winner, which is within 0.005 AUC / accuracy, or 2 % RMSE, of the best of the
linear and gradient-boosted candidates trained in the same run on the same split. `make bench-tables` prints the
same rows with wall times."""

import json
import os

import pytest

from benchmarks import real_tables
from datagen import public_tables
from tests.conftest import REPO

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> str:
    return str(tmp_path_factory.mktemp("tables"))


# `make test` runs the quick three; `make test-tables` (ALL_TABLES=1) every table of the suite
@pytest.mark.parametrize("table", public_tables.SUITE if os.environ.get("ALL_TABLES") else public_tables.QUICK)
def test_first_run_on_a_real_table_pushes_the_best_candidate(table, workdir):
    row = real_tables.run_table(table, workdir, repo=REPO)
    assert row["error"] is None, row
    assert None not in (row["network"], row["linear"], row["boosted"]), row  # every candidate was evaluated
    assert row["pushed"] and row["winner"], row
    assert row["within_bar"], row


def screening(workdir: str, table: str) -> dict:
    from components.feature_screen import RESULT_FILE

    root = os.path.join(workdir, table, "pipeline", "FeatureScreen")
    (path,) = [os.path.join(d, RESULT_FILE) for d, _, files in os.walk(root) if RESULT_FILE in files]
    with open(path) as f:
        return {r["column"]: r for r in json.load(f)["features"]}


def test_the_leaky_column_added_to_a_table_is_excluded_with_its_reason(workdir):
    if not os.path.isdir(os.path.join(workdir, "breast_cancer")):
        real_tables.run_table("breast_cancer", workdir, repo=REPO)
    found = screening(workdir, "breast_cancer")[public_tables.LEAK_COLUMN]
    assert found["finding"] == "leaky" and found["excluded"], found
    assert "determines diagnosis" in found["reason"]


def test_the_raw_penguins_columns_that_cannot_be_features_are_reported_not_raised(workdir):
    """Constant study and region columns, an id per row: left out with a reason in the report's screening table;
    the "NA" cells are missing values, the date is the timestamp, and the species are the classes."""
    if not os.path.isdir(os.path.join(workdir, "penguins")):
        real_tables.run_table("penguins", workdir, repo=REPO)
    found = screening(workdir, "penguins")
    assert found["Region"]["finding"] == "constant" and found["Region"]["excluded"]
    assert found["Stage"]["finding"] == "constant"
    assert {"Culmen_Length_mm", "Delta_15_N_o_oo", "Island", "Sex"} <= {c for c, r in found.items() if r["is_feature"]}
    from reports import run_report
    from settings.config import load_config
    from settings.yaml_files import workdir_overrides

    config = load_config(real_tables.config_path("penguins", REPO),
                         workdir_overrides(os.path.join(workdir, "penguins")))  # fmt: skip
    with open(run_report.write_latest(config)) as f:
        page = f.read()
    assert "The winner, <strong>" in page and "boosted" in page  # the leaderboard, every candidate on it
    assert "every row with a value holds" in page  # the left-out columns, with their reasons


def test_the_raw_penguins_file_is_batch_scored_as_the_model_scores_its_cleaned_rows(workdir, tmp_path):
    """Batch prediction reads the very file the model was trained on: its raw column names ("Body Mass (g)"),
    "NA" cells and text dates are taken as ExampleGen took them, every row is scored, and the scores are the
    model's on the rows cleaned by hand."""
    import glob

    import numpy as np
    import pandas as pd

    from components.example_cleaning import seconds_since_epoch
    from models.features import safe_name
    from pipelines import batch_prediction
    from serving import instances, model_store
    from settings.config import load_config
    from settings.yaml_files import workdir_overrides

    if not os.path.isdir(os.path.join(workdir, "penguins")):
        real_tables.run_table("penguins", workdir, repo=REPO)
    config = load_config(real_tables.config_path("penguins", REPO),
                         workdir_overrides(os.path.join(workdir, "penguins")))  # fmt: skip
    (path,) = glob.glob(os.path.join(config.data.path, "*.csv"))
    used = batch_prediction.run(config, path, str(tmp_path / "p"))
    read = [json.loads(line) for f in sorted(tmp_path.glob("p*.jsonl")) for line in f.read_text().splitlines()]
    scored = [r for r in read if "error" not in r]
    assert len(scored) == len(read) == len(pd.read_csv(path)), [r for r in read if "error" in r][:3]

    model = model_store.load(used)
    raw = pd.read_csv(path)
    frame = raw.rename(columns={c: safe_name(c) for c in raw.columns})
    frame[safe_name(config.features.timestamp)] = frame[safe_name(config.features.timestamp)].map(seconds_since_epoch)
    rows = instances.from_frame(frame, [c for c in frame.columns if c in model.validator.rules])
    expected = np.array(model.predict([model.validator.instance(r, 0) for r in rows]))
    got = np.array([r[model.output] for r in scored])
    assert np.abs(got - expected).max() < 1e-6
    classes = model_store.read_contract(used)["classes"]
    assert np.mean(np.array(classes)[got.argmax(axis=1)] == raw[config.label].to_numpy()) > 0.9


def test_a_later_run_validates_new_data_against_the_first_accepted_schema(workdir):
    """No curated schema: the first accepted run's schema governs later runs (ImportSchemaGen of it), so new
    data that breaks it stops the run, named, instead of becoming the new normal; `make schema` promotes it."""
    from metadata.mlmd import open_store
    from metadata.run_summary import latest_run
    from pipelines import local_runner
    from settings.config import load_config
    from settings.yaml_files import workdir_overrides
    from tables import schema_proposal, schema_staging

    if not os.path.isdir(os.path.join(workdir, "breast_cancer")):  # the suite's first table: its run is shared
        real_tables.run_table("breast_cancer", workdir, repo=REPO)
    config = load_config(real_tables.config_path("breast_cancer", REPO),
                         workdir_overrides(os.path.join(workdir, "breast_cancer")))  # fmt: skip
    accepted = schema_staging.accepted_schema(config)
    assert accepted and "DataValidationGate" in accepted
    path = os.path.join(config.data.path, "breast_cancer.csv")
    with open(path) as f:
        lines = f.read().splitlines()
    column = lines[0].split(",").index("mean texture")
    holes = [",".join("" if i == column else v for i, v in enumerate(line.split(","))) for line in lines[1:60]]
    with open(os.path.join(config.data.path, "more.csv"), "w") as f:  # new rows without a value the first never lacked
        f.write("\n".join([lines[0], *holes]) + "\n")
    with pytest.raises(Exception, match="feature 'mean_texture'"):
        local_runner.run(config)
    summary = latest_run(open_store(config.pipeline.metadata_path), config.pipeline.name)
    assert summary.component("ImportSchemaGen") and not summary.pushed_model
    os.remove(os.path.join(config.data.path, "more.csv"))
    summary = local_runner.run(config)
    assert summary.component("ImportSchemaGen") and not summary.component("SchemaGen")
    assert summary.pushed_model
    schemas = os.path.join(workdir, "schemas")
    assert schema_proposal.promote_accepted(config, write=True, schemas_dir=schemas) == 0
    assert os.path.exists(os.path.join(schemas, config.pipeline.name, "schema.pbtxt"))
