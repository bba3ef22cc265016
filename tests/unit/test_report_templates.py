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
