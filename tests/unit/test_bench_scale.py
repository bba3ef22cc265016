"""make bench-scale's arithmetic: growth per component against the rows, and its table."""

import pytest

from benchmarks.scale import growth, table

pytestmark = pytest.mark.unit


def test_growth_is_time_ratio_over_rows_ratio_per_component():
    runs = [
        {"rows": 15000, "total_seconds": 40.0, "peak_rss_sampled_mb": 1900, "largest_process_mb": 900,
         "components_seconds": {"CsvExampleGen": 4.0, "Trainer": 10.0, "Pusher": 1.0},
         "components_peak_rss_mb": {"CsvExampleGen": 700, "Trainer": 900, "Pusher": None}},
        {"rows": 150000, "total_seconds": 100.0, "peak_rss_sampled_mb": 2500, "largest_process_mb": 1500,
         "components_seconds": {"CsvExampleGen": 80.0, "Trainer": 10.0}},
    ]  # fmt: skip
    [g] = growth(runs)
    assert (g["from_rows"], g["to_rows"]) == (15000, 150000)
    assert g["components"] == {"CsvExampleGen": 2.0, "Trainer": 0.1}  # twice as dear per row; a fixed cost
    assert g["total"] == 0.25
    text = table(runs, [g])
    assert "growth 15k->150k" in text
    row = next(line for line in text.splitlines() if line.startswith("CsvExampleGen"))
    assert row.split()[1:] == ["4.0s", "80.0s", "2.00"]
    assert next(line for line in text.splitlines() if line.startswith("Pusher")).split()[1:] == ["1.0s", "-", "-"]
    lines = text.splitlines()
    assert next(line for line in lines if line.startswith("peak memory, all")).split()[-2:] == ["1,900", "2,500"]
    assert next(line for line in lines if line.startswith("largest one")).split()[-2:] == ["900", "1,500"]
    memory = text.split("within each component")[1].splitlines()
    assert next(line for line in memory if line.startswith("Trainer")).split()[1:] == ["900", "-"]
    assert next(line for line in memory if line.startswith("Pusher")).split()[1:] == ["-", "-"]
