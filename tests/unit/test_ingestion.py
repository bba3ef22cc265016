"""File ingestion: each format's ExampleGen executor, run through Beam on files the generator
writes, drops personal columns, keeps every row, and splits by time or by hash."""

import json

import apache_beam as beam
import numpy as np
import pytest
from google.protobuf import json_format
from tfx.proto import example_gen_pb2

from components import file_example_gen
from datagen import taxi

pytestmark = pytest.mark.data

ROWS = 400


def exec_properties(directory: str, fmt: str, time_feature: str | None) -> dict:
    split = example_gen_pb2.Output(split_config=example_gen_pb2.SplitConfig(splits=[
        example_gen_pb2.SplitConfig.Split(name="train", hash_buckets=4),
        example_gen_pb2.SplitConfig.Split(name="eval", hash_buckets=1)]))  # fmt: skip
    inputs = example_gen_pb2.Input(splits=[example_gen_pb2.Input.Split(
        name="single_split", pattern=file_example_gen.FILE_PATTERNS[fmt])])  # fmt: skip
    config = file_example_gen.custom_config(taxi.PERSONAL_COLUMNS, time_feature, 0.75)
    return {
        "input_base": directory, "input_config": json_format.MessageToJson(inputs),
        "output_config": json_format.MessageToJson(split), "custom_config": json_format.MessageToJson(config),
        "output_data_format": example_gen_pb2.FORMAT_TF_EXAMPLE,
    }  # fmt: skip


def split_rows(directory: str, fmt: str, time_feature: str | None) -> dict[str, list[dict]]:
    """Runs the executor's Beam graph and returns each split's rows (written out as JSON lines,
    as Beam runs the graph in pickled copies)."""
    import glob
    import os

    executor = file_example_gen.EXECUTORS[fmt]()
    out = os.path.join(directory, "_out")
    with beam.Pipeline() as pipeline:
        splits = executor.GenerateExamplesByBeam(pipeline, exec_properties(directory, fmt, time_feature))
        for name, examples in splits.items():
            _ = (examples | f"ToJson{name}" >> beam.Map(lambda e: json.dumps(file_example_gen.example_to_row(e)))
                 | f"Write{name}" >> beam.io.WriteToText(os.path.join(out, name)))  # fmt: skip
    found: dict[str, list[dict]] = {"train": [], "eval": []}
    for name, rows in found.items():
        for path in glob.glob(os.path.join(out, f"{name}-*")):
            with open(path) as f:
                rows += [json.loads(line) for line in f]
    return found


@pytest.mark.parametrize("fmt", sorted(file_example_gen.FILE_PATTERNS))
def test_every_format_reads_every_row_without_personal_columns_split_by_time(fmt, tmp_path):
    frame = taxi.generate(ROWS, seed=9)
    taxi.write_table(frame, str(tmp_path), fmt)
    found = split_rows(str(tmp_path), fmt, "trip_start_timestamp")
    train, evaluation = found["train"], found["eval"]
    assert len(train) + len(evaluation) == ROWS
    assert abs(len(train) / ROWS - 0.75) < 0.05  # the configured fraction, by approximate quantiles
    newest_train = max(r["trip_start_timestamp"] for r in train)
    assert newest_train < min(r["trip_start_timestamp"] for r in evaluation)  # eval is strictly later
    for row in train + evaluation:
        assert not set(taxi.PERSONAL_COLUMNS) & set(row)
    ids = sorted(r["trip_id"] for r in train + evaluation)
    assert ids == sorted(frame["trip_id"])
    # zeros stay zeros (TFX's dict_to_example would drop them) and a missing value stays missing
    assert all("big_tip" in r for r in train + evaluation)
    assert sorted(r["big_tip"] for r in train + evaluation) == sorted(frame["big_tip"])
    missing = frame["company"].isna().sum()  # whatever the format
    assert missing and sum("company" not in r for r in train + evaluation) == missing


def test_hash_split_without_a_timestamp_and_a_bad_json_line_is_named(tmp_path):
    frame = taxi.generate(ROWS, seed=9)
    taxi.write_table(frame, str(tmp_path), "json")
    found = split_rows(str(tmp_path), "json", None)
    assert abs(len(found["train"]) / ROWS - 0.8) < 0.1
    times = [r["trip_start_timestamp"] for r in found["eval"]]
    assert np.min(times) < np.median([r["trip_start_timestamp"] for r in found["train"]])  # mixed in time
    with pytest.raises(ValueError, match="not JSON"):
        file_example_gen.json_line_to_example('{"fare": 3.5,')
    with pytest.raises(ValueError, match="not a JSON object"):
        file_example_gen.json_line_to_example(json.dumps([1, 2]))


def test_time_split_errors_name_the_problem():
    import tensorflow as tf

    example = tf.train.Example()
    example.features.feature["trip_id;trip_start_timestamp;fare"].bytes_list.value.append(b"t1;1767225600;3.5")
    with pytest.raises(ValueError, match="delimited by something other than commas"):
        file_example_gen.timestamp_of(example, "trip_start_timestamp")
    with pytest.raises(ValueError, match="has no rows"):
        file_example_gen.cutoff_of([], 0.8)
    assert file_example_gen.cutoff_of([0.0, 10.0, 20.0, 30.0, 40.0], 0.75) == 30.0


def run_do(directory: str, out: str, stock: bool, beam_args: list[str]) -> tuple[dict[str, list[bytes]], dict]:
    """Runs the CSV executor's `Do` (or TFX's own, with its Reshuffle) into `out`; each split's records in
    file order, and the artifact's properties."""
    import glob
    import os

    import tensorflow as tf
    from tfx.components.example_gen.base_example_gen_executor import BaseExampleGenExecutor
    from tfx.types import standard_artifacts

    artifact = standard_artifacts.Examples()
    artifact.uri = out
    executor = file_example_gen.CsvExecutor(file_example_gen.CsvExecutor.Context(beam_pipeline_args=beam_args))
    do = BaseExampleGenExecutor.Do if stock else file_example_gen.CsvExecutor.Do
    do(executor, {}, {"examples": [artifact]}, exec_properties(directory, "csv", None))
    records = {}
    for split in ("train", "eval"):
        paths = sorted(glob.glob(os.path.join(out, f"Split-{split}", "*.gz")))
        records[split] = [bytes(r) for p in paths for r in tf.compat.v1.io.tf_record_iterator(p, "GZIP")]
    props = {k: artifact.get_string_custom_property(k) for k in ("payload_format", "file_format")}
    return records, {**props, "split_names": artifact.split_names}


def test_local_write_without_the_reshuffle_matches_tfx_record_for_record(tmp_path):
    frame = taxi.generate(ROWS, seed=4)
    taxi.write_table(frame, str(tmp_path / "in"), "csv")
    local = ["--runner=FnApiRunner", "--direct_running_mode=in_memory", "--direct_num_workers=1"]
    ours, our_props = run_do(str(tmp_path / "in"), str(tmp_path / "ours"), False, local)
    stock, stock_props = run_do(str(tmp_path / "in"), str(tmp_path / "stock"), True, local)
    assert ours == stock  # the same records in the same order, in each split
    assert len(ours["train"]) + len(ours["eval"]) == ROWS and ours["eval"]
    assert our_props == stock_props and our_props["payload_format"] == "FORMAT_TF_EXAMPLE"


def test_csv_time_split_streams_the_examples_past_the_cutoff(tmp_path):
    """The cutoff comes from the time column alone: the examples feed only the split, so the runner does not
    hold them all until the cutoff is known (1.5 M rows: 2.6 GB more at the peak)."""
    taxi.write_table(taxi.generate(50, seed=1), str(tmp_path), "csv")
    pipeline = beam.Pipeline()
    props = exec_properties(str(tmp_path), "csv", "trip_start_timestamp")
    file_example_gen.CsvExecutor().GenerateExamplesByBeam(pipeline, props)
    transforms = pipeline.to_runner_api().components.transforms
    (examples,) = (t.outputs.values() for t in transforms.values() if t.unique_name.endswith("ToTimedTFExamples"))
    examples = next(iter(examples))
    readers = [t.unique_name for t in transforms.values() if not t.subtransforms and examples in t.inputs.values()]
    assert len(readers) == 1 and "SplitByTime" in readers[0]


def test_csv_time_split_assigns_rows_by_the_time_read_with_them(tmp_path, monkeypatch):
    """Each row's time comes with its example from the record batch: no Example is parsed back to split it."""
    taxi.write_table(taxi.generate(60, seed=3), str(tmp_path), "csv")

    def parsed(*_):
        raise AssertionError("an Example was parsed back for its time")

    monkeypatch.setattr(file_example_gen, "timestamp_of", parsed)
    found = split_rows(str(tmp_path), "csv", "trip_start_timestamp")
    assert len(found["train"]) + len(found["eval"]) == 60
    train, evaluation = ([r["trip_start_timestamp"] for r in found[s]] for s in ("train", "eval"))
    assert max(train) < min(evaluation)


@pytest.mark.parametrize(
    ("cell", "message"),
    [("", "a row has no value for 'trip_start_timestamp'"), (None, "a row has no column 'trip_start_timestamp'")],
)
def test_csv_time_split_names_a_missing_timestamp(cell, message, tmp_path):
    frame = taxi.generate(40, seed=2)
    if cell is None:
        frame = frame.drop(columns=["trip_start_timestamp"])
    else:
        frame["trip_start_timestamp"] = frame["trip_start_timestamp"].astype(object)
        frame.loc[7, "trip_start_timestamp"] = cell
    taxi.write_table(frame, str(tmp_path), "csv")
    with pytest.raises(Exception, match=message):
        split_rows(str(tmp_path), "csv", "trip_start_timestamp")


def test_rows_without_a_label_are_counted_on_the_examples_for_the_runs_summary(tmp_path):
    from tfx.types import standard_artifacts

    from components.example_cleaning import ROWS_WITHOUT_LABEL, cleaning_settings

    frame = taxi.generate(ROWS, seed=5)
    frame["big_tip"] = frame["big_tip"].astype("object")
    frame.loc[frame.index[::50], "big_tip"] = None  # 8 rows of 400 without a label
    taxi.write_table(frame, str(tmp_path / "in"), "csv")
    props = exec_properties(str(tmp_path / "in"), "csv", None)
    clean = cleaning_settings(label="big_tip")
    props["custom_config"] = json_format.MessageToJson(file_example_gen.custom_config(taxi.PERSONAL_COLUMNS,
                                                                                      clean=clean))  # fmt: skip
    artifact = standard_artifacts.Examples()
    artifact.uri = str(tmp_path / "out")
    local = ["--runner=FnApiRunner", "--direct_running_mode=in_memory", "--direct_num_workers=1"]
    executor = file_example_gen.CsvExecutor(file_example_gen.CsvExecutor.Context(beam_pipeline_args=local))
    executor.Do({}, {"examples": [artifact]}, props)
    assert artifact.get_int_custom_property(ROWS_WITHOUT_LABEL) == 8
