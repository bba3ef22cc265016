"""The streaming pipeline's windows with Beam's TestStream: rows fall into the fixed window of their arrival time,
drift compares each window with the one before, and a row arriving after its window was measured is listed as
late (with its window), not lost. No model needed: the window statistics take any WindowMonitor."""

import glob
import json
import os

import apache_beam as beam
import pandas as pd
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.test_stream import TestStream
from apache_beam.utils.timestamp import MAX_TIMESTAMP

from pipelines import landing, streaming

pytestmark = pytest.mark.unit


class MeanMonitor:
    """Statistics: row count and mean of x; drift: the change of the mean (alert above 1)."""

    def statistics(self, frame: pd.DataFrame) -> bytes:
        return json.dumps({"rows": len(frame), "mean": float(frame["x"].mean())}).encode()

    def checks(self, current: bytes, previous: bytes | None) -> list[dict]:
        if previous is None:
            return []
        change = abs(json.loads(current)["mean"] - json.loads(previous)["mean"])
        return [{"feature": "x", "kind": "drift", "value": change, "threshold": 1.0, "alert": change > 1.0}]


def chunk(keys: list[str], xs: list[float], arrived: float):
    return beam.window.TimestampedValue((keys, pd.DataFrame({"x": xs}), arrived), arrived)


def read_records(folder) -> list[dict]:
    return [json.loads(line) for path in sorted(glob.glob(os.path.join(folder, "*.jsonl"))) for line in open(path)]


def run_windows(events, out, window_seconds=10.0, min_rows=1):
    with beam.Pipeline(options=PipelineOptions(streaming.LOCAL_RUNNER)) as p:
        got = p | events | streaming.WindowStatistics(MeanMonitor(), window_seconds, min_rows)
        for name in ("windows", streaming.LATE):
            got[name] | f"Write{name}" >> beam.ParDo(streaming.WriteJsonLines(str(out / name)))
    return read_records(out / "windows"), read_records(out / streaming.LATE)


def test_rows_fall_into_the_window_of_their_arrival_and_drift_compares_consecutive_windows(tmp_path):
    events = (
        TestStream()
        .advance_watermark_to(0)
        .add_elements([chunk(["a", "b"], [1.0, 3.0], 1.0), chunk(["c"], [2.0], 9.5)])
        .add_elements([chunk(["d"], [10.0], 10.0)])  # a window's start belongs to it
        .advance_watermark_to(30)
        .add_elements([chunk(["e"], [10.5], 31.0)])
        .advance_watermark_to_infinity()
    )
    windows, late = run_windows(events, tmp_path)
    by_start = {w["window"][0]: w for w in windows}
    assert sorted(by_start) == [0.0, 10.0, 30.0]
    assert [by_start[s]["rows"] for s in (0.0, 10.0, 30.0)] == [3, 1, 1]
    assert by_start[0.0]["checks"] == []  # the first window has nothing to drift from
    assert by_start[10.0]["checks"][0]["value"] == pytest.approx(8.0) and by_start[10.0]["alerts"] == ["x"]
    assert by_start[30.0]["checks"][0]["value"] == pytest.approx(0.5) and by_start[30.0]["alerts"] == []
    assert late == []


def test_rows_after_the_watermark_are_listed_late_with_their_window_and_leave_its_statistics_alone(tmp_path):
    events = (
        TestStream()
        .advance_watermark_to(0)
        .add_elements([chunk(["a"], [1.0], 2.0)])
        .advance_watermark_to(15)  # [0, 10) is measured
        .add_elements([chunk(["late1", "late2"], [100.0, 100.0], 4.0), chunk(["b"], [5.0], 12.0)])
        .advance_watermark_to_infinity()
    )
    windows, late = run_windows(events, tmp_path)
    by_start = {w["window"][0]: w for w in windows}
    assert by_start[0.0]["rows"] == 1 and by_start[10.0]["rows"] == 1  # the late rows are in no window's statistics
    assert len(windows) == 2  # no second report for [0, 10)
    assert sorted(r["key"] for r in late) == ["late1", "late2"]
    assert all(r["window"] == [0.0, 10.0] and r["arrived_at"] == 4.0 and "watermark" in r["reason"] for r in late)


def test_small_windows_get_a_row_count_and_no_verdict(tmp_path):
    events = TestStream().add_elements([chunk(["a"], [1.0], 1.0)]).advance_watermark_to_infinity()
    windows, _ = run_windows(events, tmp_path, min_rows=5)
    assert windows == [{"window": [0.0, 10.0], "rows": 1, "checks": [], "alerts": []}]


def test_landing_folder_lists_whole_files_once_oldest_first(tmp_path):
    (tmp_path / "b.csv").write_text("k\n1\n")
    (tmp_path / "a.jsonl").write_text("{}\n")
    (tmp_path / "c.csv.tmp").write_text("k\n")  # still being written
    (tmp_path / ".d.csv").write_text("k\n")
    os.utime(tmp_path / "b.csv", (100, 100))
    os.utime(tmp_path / "a.jsonl", (200, 200))
    seen: set[str] = set()
    assert [os.path.basename(p) for p, _ in landing.landed(str(tmp_path), seen)] == ["b.csv", "a.jsonl"]
    assert landing.landed(str(tmp_path), seen) == []
    (tmp_path / "e.csv").write_text("k\n")
    assert [os.path.basename(p) for p, _ in landing.landed(str(tmp_path), seen)] == ["e.csv"]


def test_landing_folder_events_end_with_the_watermark_at_infinity(tmp_path):
    (tmp_path / "a.csv").write_text("k\n1\n")
    events = list(landing.LandingFolderEvents(str(tmp_path), 0.01, stop_at=0).read_multiple(None))
    added = [e for e in events if e.HasField("element_event")]
    assert len(added) == 1 and len(added[0].element_event.elements) == 1
    assert events[-1].watermark_event.new_watermark == MAX_TIMESTAMP.micros
