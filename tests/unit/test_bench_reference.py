"""The anchor benchmark (make bench-reference): its data and TFX's example pipeline as it builds them."""

import os

import pytest

from benchmarks import reference

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


def test_the_report_gives_both_runs_and_the_ratio_of_their_totals():
    project = {"total_seconds": 90.0, "components_seconds": {"Transform": 30.0, "Evaluator": 12.0}}
    tfx_example = {"total_seconds": 60.0, "components_seconds": {"Transform": 20.0, "Trainer": 10.0}}
    result = reference.compare(15002, project, tfx_example)
    assert result["ratio"] == 1.5
    text = reference.report(result)
    assert "TFX's Chicago taxi example: 2 components, 60.00 s" in text
    assert "this project's pipeline: 2 components, 90.00 s" in text and text.endswith("1.50")
