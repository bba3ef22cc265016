"""The run report's Jinja2 templates: every value from the data is escaped, tables format numbers alike, and a
section that cannot be built says why in place."""

import math

import pytest

from reports import model_sections, templating

pytestmark = pytest.mark.unit


def test_values_from_the_data_are_escaped_not_interpreted():
    found = {"rows": 10, "split": "train", "excluded": ["<script>alert(1)</script>"], "features": []}
    page = templating.render_section("screening", found=found, rows=[["<b>col</b>", "yes", "leaky", 0.99, "", "x"]])
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;b&gt;col&lt;/b&gt;" in page and "<td>0.9900</td>" in page


def test_cells_and_missing_sections():
    assert templating.cell(math.nan) == "—" and templating.cell(0.123456) == "0.1235" and templating.cell(3) == "3"
    assert "Tuning did not run" in templating.render_section("tuning", trials=None)
    error = templating.render_section("error", kind="KeyError", message="'auc' <missing>")
    assert "KeyError" in error and "&lt;missing&gt;" in error


def test_the_gate_is_described_in_words_that_match_the_margins():
    from settings.config import load_config
    from tests.conftest import TAXI_CONFIG

    gate = load_config(TAXI_CONFIG).evaluation
    assert model_sections.margin_text(gate, 0.0) == "at least level with"
    assert model_sections.margin_text(gate, None) == "within 0.01 AUC of"
    assert model_sections.margin_text(gate, 0.02) == "ahead by 0.02 AUC of"


def test_the_screening_section_says_what_it_tested_and_what_ok_means():
    from models import screening

    found = {"rows": 20000, "split_rows": 240000, "split": "train", "excluded": ["actual_departure"],
             **screening.method(screening.Settings(), "binary_classification"), "features": []}  # fmt: skip
    page = templating.render_section("screening", found=found, rows=[])
    assert "20000 rows of the train split (240000 rows" in page and "drawn uniformly" in page
    assert "alone or with one other column" in page and "AUC ≥ 0.99" in page
    assert "Predicting the label well is not a leak" in page
    assert "flagged <i>strong</i> when it predicts the label with AUC ≥ 0.9" in page


def test_the_run_summary_names_the_strong_features_it_kept():
    """`make run`'s summary: one line naming the kept features that predict the label very well, strongest first,
    read from the FeatureScreen's findings artifact in ML Metadata."""
    import io
    from types import SimpleNamespace

    from pipelines import local_runner
    from settings.config import load_config
    from tests.conftest import TAXI_CONFIG

    summary = SimpleNamespace(**vars(run_summary()), leaderboard=(), winner=None,
                              strong=({"column": "dep_time", "power": 0.91}, {"column": "arr_time", "power": 0.95}))  # fmt: skip
    out = io.StringIO()
    config = load_config(TAXI_CONFIG, {"pipeline": {"root": "/nonexistent/root"}})
    local_runner.print_summary(summary, config, "log.txt", out)
    lines = [line for line in out.getvalue().splitlines() if line.startswith("warning:") and "very well" in line]
    assert len(lines) == 1 and "arr_time, dep_time predict big_tip very well" in lines[0], out.getvalue()
    assert "known when you predict" in lines[0]


def run_summary():
    from types import SimpleNamespace

    return SimpleNamespace(
        run_id="r1", pushed_model=None, blessed=False, failures=(), components=(), rows_without_label=0
    )


def test_the_decision_states_the_gate_as_the_evaluator_applies_it():
    """A regression gate is a ceiling on the error and a limit on its rise, not a floor."""
    import os

    from reports.data_sections import decision_section
    from settings.config import load_config
    from tests.conftest import REPO

    cars = load_config(os.path.join(REPO, "configs", "tables", "cars.yaml"))  # RMSE, success_level 7
    page = decision_section(run_summary(), cars)
    assert "RootMeanSquaredError ≤ 7 overall" in page and "no rise of more than 0" in page
    assert "≥" not in page, page
    wine = decision_section(run_summary(), load_config(os.path.join(REPO, "configs", "tables", "wine.yaml")))
    assert "SparseCategoricalAccuracy ≥ 0.8 overall" in wine and "no drop of more than 0" in wine


def test_a_timestamp_turns_monthly_slices_on_unless_the_config_turns_them_off():
    import os

    from settings.config import load_config
    from tests.conftest import REPO

    tables = os.path.join(REPO, "configs", "tables")
    assert load_config(os.path.join(tables, "cars.yaml")).evaluation.time_slice is True  # features.timestamp: Year
    assert load_config(os.path.join(tables, "wine.yaml")).evaluation.time_slice is False  # no timestamp
    off = load_config(os.path.join(tables, "cars.yaml"), {"evaluation": {"time_slice": False}})
    assert off.evaluation.time_slice is False


def test_a_section_with_nothing_in_it_is_not_drawn(tmp_path, monkeypatch):
    """No slice and no fairness feature: the slices section is empty, and the page has no such heading."""
    import os
    from types import SimpleNamespace

    import tensorflow_model_analysis as tfma
    from tensorflow_model_analysis.proto import metrics_for_slice_pb2

    from reports import run_report
    from settings.config import load_config
    from tests.conftest import REPO

    config = load_config(os.path.join(REPO, "configs", "tables", "wine.yaml"),
                         {"pipeline": {"root": str(tmp_path)}})  # fmt: skip
    overall = metrics_for_slice_pb2.MetricsForSlice()  # the overall slice only
    monkeypatch.setattr(tfma, "load_metrics", lambda uri: [overall])
    artifacts = SimpleNamespace(first=lambda *a: str(tmp_path), json=lambda *a: None)
    assert model_sections.slices_section(artifacts, config, str(tmp_path)) == ""
    with open(run_report.render(run_summary(), artifacts, config, str(tmp_path))) as f:
        page = f.read()
    assert "Slices and fairness" not in page and "Push decision" in page


def test_the_strong_line_names_the_strongest_three_and_counts_the_rest():
    from pipelines.local_runner import strong_line

    strong = tuple({"column": f"c{i}", "power": 0.9 + i / 100} for i in range(5))
    assert strong_line(strong, "y").startswith("c4, c3, c2 and 2 more predict y very well")
    assert strong_line(strong[:1], "y").startswith("c0 predicts y very well")


def test_a_leaderboard_on_an_eval_sample_says_how_large_with_each_interval():
    from models.leaderboard import Result, Standing

    standings = [Standing("network", value=0.91, interval=(0.905, 0.915), rank=1, winner=True),
                 Standing("linear", value=0.88, rank=2, lost_because="auc 0.8800 against the winner's 0.9100")]  # fmt: skip
    sample = {"rows": 100_000, "split_rows": 300_040, "seed": 0, "positives": 31_000}
    board = Result("auc", True, standings, "network", eval_sample=sample).to_dict()
    leaders = [[s["rank"], s["name"], model_sections._with_interval(s), "-", "-", ""] for s in board["standings"]]
    page = templating.render_section("evaluation", rows=[["auc", 0.91, 0.88]], models=["network", "linear"],
                                     chart=None, first=True, board=board, leaders=leaders, slice_names=[], missing=[])  # fmt: skip
    assert "a seeded uniform sample of 100,000 of its 300,040 rows" in page
    assert "0.9100 [0.9050, 0.9150]" in page and "<td>0.8800</td>" in page
    whole = Result("auc", True, standings, "network").to_dict()
    assert "sample" not in templating.render_section("evaluation", rows=[["auc", 0.91]], models=["network"], chart=None,
                                                     first=True, board=whole, leaders=leaders, slice_names=[], missing=[])  # fmt: skip
