"""The anchor benchmark (make bench-reference): its data and TFX's example pipeline as it builds them."""

import os

import pytest

from benchmarks import reference, reference_quality

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("ending", [b"\n", b""])
def test_repeated_csv_has_one_header_and_the_rows_that_many_times(tmp_path, ending):
    source = tmp_path / "in.csv"
    source.write_bytes(b"a,b\n1,x\n2,y" + ending)
    target = reference.repeat_csv(str(source), str(tmp_path / "out"), 3)
    with open(target, "rb") as f:
        assert f.read() == b"a,b\n" + b"1,x\n2,y\n" * 3


def test_the_reference_is_tfx_own_example_cache_off_on_the_given_data_and_beam(tmp_path):
    pipeline = reference.reference_pipeline(str(tmp_path), str(tmp_path / "data"), ["--runner=FnApiRunner"])
    components = {c.id: c for c in pipeline.components}
    assert sorted(components) == ["CsvExampleGen", "Evaluator", "ExampleValidator", "Pusher", "SchemaGen",
                                  "StatisticsGen", "Trainer", "Transform", "latest_blessed_model_resolver"]  # fmt: skip
    assert pipeline.enable_cache is False and pipeline.beam_pipeline_args == ["--runner=FnApiRunner"]
    assert components["CsvExampleGen"].exec_properties["input_base"] == str(tmp_path / "data")
    module = components["Transform"].exec_properties["module_file"]
    assert os.path.isfile(module) and module.endswith("taxi_utils_native_keras.py")


def test_the_shipped_side_is_the_example_with_the_beam_arguments_its_module_sets(tmp_path):
    from tfx.examples.chicago_taxi_pipeline import taxi_pipeline_native_keras as example

    pipeline = reference.shipped_pipeline(str(tmp_path), str(tmp_path / "data"))
    assert pipeline.beam_pipeline_args == example._beam_pipeline_args  # noqa: SLF001
    assert pipeline.beam_pipeline_args == ["--direct_running_mode=multi_processing", "--direct_num_workers=0"]
    assert pipeline.enable_cache is False and len(pipeline.components) == 9


def run(total: float, components: dict, peak: int | None = None) -> dict:
    return {"total_seconds": total, "components_seconds": components, "peak_mib": peak}


@pytest.mark.parametrize(("in_process", "shipped", "faster", "ratio"), [(60.0, 40.0, "shipped", 1.25),
                                                                      (40.0, 60.0, "reference", 1.25)])  # fmt: skip
def test_the_ratio_is_over_the_faster_example_run_and_both_ratios_are_kept(in_process, shipped, faster, ratio):
    runs = {"reference": run(in_process, {}), "shipped": run(shipped, {}), "project": run(50.0, {})}
    result = reference.compare(15002, runs)
    assert result["faster_example"] == faster and result["ratio"] == ratio
    assert result["ratios"] == {"reference": round(50 / in_process, 3), "shipped": round(50 / shipped, 3)}


def test_the_report_gives_every_side_per_component_with_totals_memory_auc_and_ratios():
    runs = {
        "reference": run(60.0, {"CsvExampleGen": 5.0, "Trainer": 10.0}, 1500),
        "shipped": run(40.0, {"CsvExampleGen": 7.0, "Trainer": 9.0}, 2600),
        "project": run(50.0, {"CsvExampleGen": 3.0, "Leaderboard": 4.5}, 1900),
    }
    quality = {"eval_rows": 1234, "labels_differ": 2,
               "auc": {"reference": 0.7512, "shipped": 0.7431, "project": 0.8123}}  # fmt: skip
    lines = reference.report(reference.compare(15002, runs, quality)).splitlines()

    def row(title):
        (found,) = [line.split() for line in lines if line.strip().startswith(title)]
        return found[-3:]

    assert row("CsvExampleGen") == ["5.00", "7.00", "3.00"]
    assert row("Leaderboard") == ["-", "-", "4.50"] and row("Trainer") == ["10.00", "9.00", "-"]
    assert row("total") == ["60.00", "40.00", "50.00"] and row("peak memory") == ["1,500", "2,600", "1,900"]
    assert row("AUC, 1,234 trips") == ["0.7512", "0.7431", "0.8123"]
    assert any(line.startswith("  AUC without 2 trips whose labels differ") for line in lines)
    assert lines[-1].endswith("over the faster (as shipped): 1.25")
    assert "over in-process 0.83" in lines[-1] and "over as shipped 1.25" in lines[-1]
    for title in reference.SIDES.values():
        assert any(title in line for line in lines)


def test_the_report_says_why_there_is_no_auc():
    runs = {side: run(10.0, {"Trainer": 1.0}) for side in reference.SIDES}
    text = reference.report(reference.compare(15002, runs, {"error": "RuntimeError: no eval split"}))
    assert "no AUC: RuntimeError: no eval split" in text and "AUC," not in text


def example_record(**features) -> bytes:
    """A tf.Example as TFX's CSV decoding writes one: an empty cell a feature with an empty list."""
    import tensorflow as tf

    def feature(value):
        if value is None:
            return tf.train.Feature(bytes_list=tf.train.BytesList())
        if isinstance(value, float):
            return tf.train.Feature(float_list=tf.train.FloatList(value=[value]))
        if isinstance(value, int):
            return tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value.encode()]))

    return tf.train.Example(features=tf.train.Features(feature={k: feature(v) for k, v in features.items()})
                            ).SerializeToString()  # fmt: skip


def test_the_common_eval_rows_are_in_the_example_hash_eval_split_and_at_or_after_the_time_cut_off():
    import pandas as pd
    import tensorflow as tf

    frame = pd.DataFrame({"ts": ["100", "200", "300", "400", "500"], "fare": ["12.45", "3.1", "7", "0.1", "2.2"],
                          "company": ["A", "", "B", "C", ""]})  # fmt: skip
    types = {"ts": tf.int64, "fare": tf.float32, "company": tf.string}
    # the example's eval split: rows 1, 3, 4, and a record like row 2 but for its company
    records = [example_record(ts=200, fare=3.1, company=None), example_record(ts=400, fare=0.1, company="C"),
               example_record(ts=500, fare=2.2, company=None), example_record(ts=300, fare=7.0, company="X")]  # fmt: skip
    keys = reference_quality.example_keys(records * 2)
    assert reference_quality.in_hash_eval(frame, types, keys).tolist() == [False, True, False, True, True]
    assert reference_quality.in_time_eval(frame, "ts", 300.0).tolist() == [False, False, True, True, True]
    common = reference_quality.common_eval_rows(frame, types, keys, "ts", 300.0)
    assert common.index.tolist() == [3, 4]


def test_a_cell_the_schema_types_otherwise_is_named():
    import tensorflow as tf

    with pytest.raises(ValueError, match="column 'ts': '1.5' is not the int64"):
        reference_quality.typed_cells({"ts": "1.5"}, {"ts": tf.int64}, frozenset({""}))


def test_the_example_label_is_the_project_label_but_on_tips_of_exactly_a_fifth_of_the_fare():
    """The example computes tips > 0.2 * fare in float32 (its preprocessing_fn), which calls a tip of exactly
    20 % above it; `big_tipper` does not. The scoring leaves those trips out."""
    from decimal import Decimal

    frame = reference_quality.source_frame()
    differ = reference_quality.example_label(frame) != frame["big_tipper"].astype(int)
    fifth = [
        Decimal(t) == Decimal(f) * Decimal("0.2") and Decimal(f) > 0
        for t, f in zip(frame.tips, frame.fare, strict=True)
    ]
    assert len(frame) == 15002 and 0 < differ.sum() <= sum(fifth)
    assert all(fifth[i] for i in frame.index[differ])
    assert reference_quality.a_fifth_of_the_fare(frame).tolist() == fifth
