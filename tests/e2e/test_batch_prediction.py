"""Batch prediction with Beam RunInference on the pushed model: keys kept, version and
prediction on every row, invalid rows reported, scores equal to the online path."""

import glob
import json
import os

import pytest

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
    frame.loc[frame.index[7], "payment_type"] = "Bitcoin"  # one row outside the schema's domain
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
    assert "payment_type" in by_error[bad_key] and "Bitcoin" in by_error[bad_key]
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
