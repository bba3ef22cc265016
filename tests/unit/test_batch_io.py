"""Batch prediction's reading and writing without a model: Arrow reads a file into chunks of the asked size
(past Arrow's own blocks), string inputs as categories; the JSON lines Arrow builds parse back to the keys
and to the model's exact float scores."""

import json

import numpy as np
import pandas as pd
import pytest
from apache_beam.io import fileio
from apache_beam.io.filesystem import FileMetadata

from pipelines.batch_prediction import ReadChunks, to_json_lines

pytestmark = pytest.mark.unit


def parse(text: str) -> list[dict]:
    return [json.loads(line) for line in text.split("\n")]


def test_scores_read_back_as_the_models_floats_and_keys_as_given():
    rng = np.random.default_rng(3)
    scores = rng.random(1000).astype(np.float32)
    scores[:4] = [1e-7, 0.0, 1.0, 3.4e-5]
    keys = np.array([f"t{i:06d}" for i in range(1000)], dtype=object)
    rows = parse(to_json_lines(keys, scores, "1700000000", "probability"))
    assert [r["key"] for r in rows] == list(keys)
    assert {r["model_version"] for r in rows} == {"1700000000"}
    assert np.array_equal(np.array([r["probability"] for r in rows], np.float32), scores)


def test_keys_that_need_escaping_missing_values_and_mixed_types_are_valid_json():
    keys = np.array(['say "hi"', "back\\slash", "tab\there", "é", None, np.nan], dtype=object)
    scores = np.array([0.5, np.nan, np.inf, 0.25, 0.125, 1.0], np.float32)
    rows = parse(to_json_lines(keys, scores, "7", "p"))
    assert [r["key"] for r in rows] == ['say "hi"', "back\\slash", "tab\there", "é", None, None]
    assert [r["p"] for r in rows] == [0.5, None, None, 0.25, 0.125, 1.0]  # not finite: null, as pandas wrote it
    mixed = parse(to_json_lines(np.array([1, "b", 2.5], dtype=object), np.zeros(3, np.float32), "7", "p"))
    assert [r["key"] for r in mixed] == [1, "b", 2.5]
    numbers = parse(to_json_lines(np.array([10, 11]), np.zeros(2, np.float32), "7", "p"))
    assert [r["key"] for r in numbers] == [10, 11]


def test_one_output_per_class_is_a_list_per_row():
    scores = np.array([[0.1, 0.2, 0.7], [0.5, 0.25, 0.25]], np.float32)
    rows = parse(to_json_lines(np.array(["a", "b"], dtype=object), scores, "7", "probabilities"))
    assert np.array_equal(np.array([r["probabilities"] for r in rows], np.float32), scores)
    single = parse(to_json_lines(np.array(["a"], dtype=object), np.array([[0.75]], np.float32), "7", "p"))
    assert single[0]["p"] == 0.75


def test_a_file_is_read_in_chunks_of_the_asked_size_with_string_inputs_as_categories(tmp_path):
    n = 50_000  # about 2 MB: Arrow parses it in blocks of about 1 MB
    rng = np.random.default_rng(5)
    frame = pd.DataFrame({
        "trip_id": [f"t{i:07d}" for i in range(n)],
        "fare": rng.uniform(3, 80, n).round(2),
        "company": rng.choice(["Company 0", "Company 1", ""], n),
        "pickup_community_area": rng.integers(1, 77, n),
        "rider_email": "x@y.z",
    })  # fmt: skip
    path = tmp_path / "in.csv"
    frame.to_csv(path, index=False)
    types = {"fare": "float64", "company": "string", "pickup_community_area": "int64"}
    read = ReadChunks(20_000, types, frozenset({"rider_email"}), categories=True)
    chunks = list(read.process(fileio.ReadableFile(FileMetadata(str(path), path.stat().st_size))))
    assert [len(c) for c in chunks] == [20_000, 20_000, 10_000]
    whole = pd.concat(chunks, ignore_index=True)
    assert list(whole.columns) == ["trip_id", "fare", "company", "pickup_community_area"]
    assert all(isinstance(c["company"].dtype, pd.CategoricalDtype) for c in chunks)
    assert whole["trip_id"].tolist() == frame["trip_id"].tolist()
    assert np.array_equal(whole["fare"].to_numpy(), frame["fare"].to_numpy())
    empty = (frame["company"] == "").to_numpy()
    assert whole["company"].isna().to_numpy().tolist() == empty.tolist()  # an empty cell is a missing value
    assert whole["company"].astype(object)[~empty].tolist() == frame["company"][~empty].tolist()
    plain = ReadChunks(20_000, types, frozenset({"rider_email"}))
    first = next(iter(plain.process(fileio.ReadableFile(FileMetadata(str(path), path.stat().st_size)))))
    assert first["company"].dtype == object


def test_the_training_table_is_read_by_the_names_and_values_example_gen_gave_it(tmp_path):
    """Raw column names become the model's (`safe_name`), the config's missing texts are missing values and the
    timestamp's dates are seconds since the epoch, as ExampleGen made them; a text that is no date stays."""
    path = tmp_path / "penguins.csv"
    path.write_text(
        "Culmen Length (mm),Island,Date Egg,Comments\n"
        "39.1,Torgersen,2007-11-11,x\n"
        "?,Biscoe,2007-11-12,y\n"
        "40.3,?,not a date,z\n"
    )
    types = {"Culmen_Length_mm": "float64", "Island": "string", "Date_Egg": "int64"}
    read = ReadChunks(10, types, frozenset({"Comments"}), True, "Date_Egg", ["?"])
    (chunk,) = read.process(fileio.ReadableFile(FileMetadata(str(path), path.stat().st_size)))
    assert list(chunk.columns) == ["Culmen_Length_mm", "Island", "Date_Egg"]
    assert chunk["Culmen_Length_mm"].isna().tolist() == [False, True, False]
    assert chunk["Island"].isna().tolist() == [False, False, True]
    assert chunk["Date_Egg"].tolist() == [1194739200, 1194825600, "not a date"]
    lines = tmp_path / "rows.jsonl"
    lines.write_text('{"Culmen Length (mm)": 39.1, "Island": "Dream", "Date Egg": "2007-11-11", "Comments": "x"}\n')
    (chunk,) = read.process(fileio.ReadableFile(FileMetadata(str(lines), lines.stat().st_size)))
    assert chunk.to_dict("records") == [{"Culmen_Length_mm": 39.1, "Island": "Dream", "Date_Egg": 1194739200}]
