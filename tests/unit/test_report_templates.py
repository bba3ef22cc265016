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
