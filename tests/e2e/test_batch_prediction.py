"""Batch prediction with Beam RunInference on the pushed model: keys kept, version and
prediction on every row, invalid rows reported, scores equal to the online path."""

import glob
import json
import os

import numpy as np
import pytest
from apache_beam.io import fileio
from apache_beam.io.filesystem import FileMetadata

from datagen import taxi
from pipelines import batch_prediction as batch
from serving import instances, model_store

pytestmark = pytest.mark.e2e


def read_lines(pattern: str) -> list[dict]:
    out = []
    for path in glob.glob(pattern):
        with open(path) as f:
            out += [json.loads(line) for line in f]
    return out


def test_batch_prediction_keeps_keys_and_matches_online_scores(first_run, tmp_path):
    config, summary = first_run
    frame = taxi.generate(400, seed=21)
    frame.loc[frame.index[7], "fare"] = -5.0  # one row outside the schema's range
    frame.loc[frame.index[8], "payment_type"] = "Bitcoin"  # unseen: the vocabulary's OOV bucket scores it
    frame.loc[frame.index[9], "fare"] = np.nan  # an empty cell, in a column every training row had: imputed
    taxi.write_csv(frame, str(tmp_path / "in"))
    # a second file with text in a numeric column: Arrow cannot type it, pandas reads it, the row is named
    text = taxi.generate(3, seed=22)
    text["fare"] = text["fare"].astype(object)
    text.loc[text.index[1], "fare"] = "twelve"
    taxi.write_csv(text, str(tmp_path / "in"), "more.csv")
    output = str(tmp_path / "out" / "predictions")
    used = batch.run(config, str(tmp_path / "in" / "*.csv"), output)
    assert used == summary.pushed_model

    rows, errors = read_lines(output + "-0*.jsonl"), read_lines(output + "-errors*.jsonl")
    bad_key, text_key = frame["trip_id"].iloc[7], text["trip_id"].iloc[1]
    by_error = {e["key"]: e["error"] for e in errors}
    assert sorted(by_error) == sorted([bad_key, text_key])
    assert by_error[bad_key] == "field 'fare' value -5.0 is outside [0.0, 10000.0]"
    assert by_error[text_key] == "field 'fare' must be a number, got str"
    scored = [*frame["trip_id"], *text["trip_id"]]
    assert sorted(r["key"] for r in rows) == sorted(k for k in scored if k not in (bad_key, text_key))
    version = os.path.basename(summary.pushed_model)
    assert {r["model_version"] for r in rows} == {version}

    model = model_store.load(summary.pushed_model, list(config.data.personal_columns))
    sample = frame[frame["trip_id"] != bad_key].head(50)
    raw = instances.from_frame(sample[list(model.validator.rules)])
    online = model.predict([model.validator.instance(r, 0) for r in raw])
    by_key = {r["key"]: r["probability"] for r in rows}
    assert [by_key[k] for k in sample["trip_id"]] == pytest.approx(online, abs=1e-6)
    assert sample["fare"].isna().sum() == 1  # the row without a fare is scored as the server scores it

    # the reader's string inputs as categories score exactly as the same values as text, a missing one too
    inputs = sample[list(model.validator.rules)].copy()
    inputs.loc[inputs.index[0], "company"] = None
    strings = [n for n, r in model.validator.rules.items() if r.kind == "string"]
    categorical = inputs.assign(**{n: inputs[n].astype("category") for n in strings})
    assert np.array_equal(model.score_frame(categorical), model.score_frame(inputs))
    checked = [model.validator.instance(r, 0) for r in instances.from_frame(inputs)]
    assert model.predict_frame(inputs) == pytest.approx(model.predict(checked), abs=1e-6)


def test_scoring_reads_no_column_it_would_drop_and_names_an_unknown_one(first_run, tmp_path):
    config, summary = first_run
    model_dir, personal = summary.pushed_model, list(config.data.personal_columns)
    contract = model_store.read_contract(model_dir)
    skip = batch.ignored_columns(model_dir, personal, config.data.key_column, [contract["label"]])
    assert set(personal) | {contract["label"]} <= skip
    assert config.data.key_column not in skip and not skip & set(contract["inputs"])

    frame = taxi.generate(20, seed=23)
    frame["colour"] = "red"  # not in the schema: read, so that each row's error names it
    taxi.write_csv(frame, str(tmp_path / "in"), "typed.csv")
    text = frame.copy()
    text["fare"] = text["fare"].astype(object)
    text.loc[text.index[0], "fare"] = "twelve"  # Arrow cannot type it: the pandas path
    taxi.write_csv(text, str(tmp_path / "in"), "text.csv")
    text.to_json(tmp_path / "in" / "lines.jsonl", orient="records", lines=True)
    read = batch.ReadChunks(8, batch.column_types(model_dir, personal), skip)
    kept = [c for c in frame.columns if c not in skip]
    assert "colour" in kept and config.data.key_column in kept
    for name in ("typed.csv", "text.csv", "lines.jsonl"):
        path = str(tmp_path / "in" / name)
        chunks = list(read.process(fileio.ReadableFile(FileMetadata(path, os.path.getsize(path)))))
        assert [len(c) for c in chunks] == [8, 8, 4], name
        assert all(list(c.columns) == kept for c in chunks), name

    output = str(tmp_path / "out" / "p")
    batch.run(config, str(tmp_path / "in" / "typed.csv"), output)
    errors = read_lines(output + "-errors*.jsonl")
    assert sorted(e["key"] for e in errors) == sorted(frame["trip_id"])
    assert all("colour" in e["error"] for e in errors), errors[0]
    assert read_lines(output + "-0*.jsonl") == []
