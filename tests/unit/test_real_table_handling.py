"""What real tables bring that generated ones do not: cells that hold nothing in many spellings, names with
spaces, numbers and dates stored as text, text labels, columns that cannot be features, a row count that
the training plan must adapt to, and validation messages that stay consistent."""

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
from tensorflow_metadata.proto.v0 import schema_pb2, statistics_pb2

from components import example_cleaning, file_example_gen
from components.validation_gate import empty_value_floods
from models.features import MISSING_TOKENS
from models.training import ROUND_ROWS, training_plan
from tables import feature_inference

pytestmark = pytest.mark.data

MISSING = frozenset(t.encode() for t in MISSING_TOKENS)


def example(**features) -> tf.train.Example:
    e = tf.train.Example()
    for name, value in features.items():
        feature = e.features.feature[name.replace("__", " ")]
        if value is None:
            feature.SetInParent()
        elif isinstance(value, list):
            feature.int64_list.SetInParent()  # an empty cell as TFX's CSV reader gives it
        elif isinstance(value, bytes):
            feature.bytes_list.value.append(value)
        elif isinstance(value, float):
            feature.float_list.value.append(value)
        else:
            feature.int64_list.value.append(value)
    return e


def values(e: tf.train.Example, name: str) -> list:
    feature = e.features.feature[name]
    return list(getattr(feature, feature.WhichOneof("kind")).value)


def test_every_spelling_of_nothing_is_a_missing_feature_and_names_are_made_safe():
    clean = example_cleaning.cleaning_settings()
    out = example_cleaning.clean_example(
        example(a=[], b=None, c=b"NA", d=b" ", e=float("nan"), Body__Mass=b"3750", f=0), clean, MISSING
    )
    assert sorted(out.features.feature) == ["Body_Mass", "f"]  # zeros stay; absent is the one way to be missing
    assert values(out, "f") == [0]
    assert file_example_gen.safe_name("Culmen Length (mm)") == "Culmen_Length_mm"
    assert file_example_gen.safe_name("od280/od315_of_diluted_wines") == "od280_od315_of_diluted_wines"
    assert file_example_gen.safe_name("_x") == "x" and file_example_gen.safe_name("(1)") == "1"


def test_numbers_dates_and_labels_stored_as_text_are_converted_and_bad_ones_named():
    clean = example_cleaning.cleaning_settings(["Delta_15_N"], "Date_Egg", "Species", ["Adelie", "Gentoo"])
    out = example_cleaning.clean_example(
        example(Delta__15__N=b"8.94956", Date__Egg=b"2007/11/11", Species=b"Gentoo"), clean, MISSING
    )
    assert values(out, "Delta_15_N") == [pytest.approx(8.94956)]
    assert values(out, "Date_Egg") == [1194739200]  # 2007-11-11T00:00:00Z
    assert values(out, "Species") == [1]
    assert example_cleaning.seconds_since_epoch("2007-11-11T01:00:00+01:00") == 1194739200
    with pytest.raises(ValueError, match=r"column 'Delta_15_N': 'about 9' is not a number"):
        example_cleaning.clean_example(example(Delta__15__N=b"about 9"), clean, MISSING)
    with pytest.raises(ValueError, match=r"column 'Date_Egg': 'soon' is not a date"):
        example_cleaning.clean_example(example(Date__Egg=b"soon"), clean, MISSING)
    with pytest.raises(ValueError, match=r"label 'Species': value 'Emperor' is not one of the classes"):
        example_cleaning.clean_example(example(Species=b"Emperor"), clean, MISSING)


def test_columns_that_cannot_be_features_are_left_out_with_a_reason():
    rows = 100
    frame = pd.DataFrame({
        "empty": [np.nan] * rows, "constant": ["Anvers"] * rows, "row_id": np.arange(rows) * 7,
        "code": [f"N{i}A{i % 2}" for i in range(rows)], "measure": np.linspace(0, 1, rows),
        "area": np.arange(rows) % 5, "island": ["Biscoe", "Dream"] * (rows // 2),
    })  # fmt: skip
    found = {c: feature_inference.unusable(frame[c]) for c in frame.columns}
    assert found["empty"][0] == "empty" and found["constant"][0] == "constant"
    assert found["row_id"][0] == "identifier" and "whole numbers" in found["row_id"][1]
    assert found["code"][0] == "identifier" and "text" in found["code"][1]
    assert found["measure"] is None and found["area"] is None and found["island"] is None  # floats are not ids


def test_text_labels_get_their_classes_and_ids_already_0_to_n_do_not():
    assert feature_inference.label_classes(pd.Series(["sun", "rain", "fog", "rain"]), "multiclass_classification") == (
        "fog", "rain", "sun")  # fmt: skip
    assert feature_inference.label_classes(pd.Series([0, 2, 1]), "multiclass_classification") == ()
    assert feature_inference.label_classes(pd.Series([1, 2, 3]), "multiclass_classification") == ("1", "2", "3")
    assert feature_inference.label_classes(pd.Series([True, False]), "binary_classification") == ("False", "True")
    assert feature_inference.label_classes(pd.Series([1.5, 2.0]), "regression") == ()


def test_the_training_plan_adapts_to_the_rows_and_keeps_what_the_config_sets():
    small, mid, large = training_plan(270, 74), training_plan(80_000, 20_000), training_plan(1_200_000, 300_000)
    assert small.batch_size == 16 and mid.batch_size == 256 and large.batch_size == 2048
    assert training_plan(270_000, 68_000).batch_size == 512  # twice the batch for twice the rows past 100,000
    assert small.train_steps >= 2500 and small.epochs >= 100 and small.patience == 10  # many real epochs
    assert large.train_steps <= 20_000 and large.epochs >= 1  # a few epochs of a big table, bounded
    # past 100,000 rows early stopping looks every ROUND_ROWS rows, on a 50,000-row sample of the eval split
    rows_per_round = large.train_steps // large.epochs * large.batch_size
    assert rows_per_round <= ROUND_ROWS < 2 * rows_per_round and large.patience == 3
    assert large.train_steps * large.batch_size >= 5 * 1_200_000  # as many passes over the rows as before
    assert (large.validation_rows, large.eval_steps) == (50_000, 25)
    assert (mid.validation_rows, mid.eval_steps) == (0, 79)  # a mid-sized table: every eval row, every epoch
    given = training_plan(1_200_000, 300_000, epochs=2)  # epochs set: whole passes, validated on the sample
    assert (given.epochs, given.train_steps, given.validation_rows) == (2, 2 * 586, 50_000)
    trial = training_plan(1_200_000, 300_000, train_steps=200)  # a tuning trial's plan: one short epoch
    assert (trial.epochs, trial.train_steps, trial.validation_rows, trial.eval_steps) == (1, 200, 50_000, 25)
    assert training_plan(1_200_000, 300_000, eval_steps=40).validation_rows == 0  # its eval steps: the split itself
    assert small.eval_steps == 5  # the whole eval split: 74 rows in batches of 16
    fixed = training_plan(270, 74, batch_size=128, train_steps=600, epochs=6, patience=2, eval_steps=50)
    assert (fixed.batch_size, fixed.train_steps, fixed.epochs, fixed.patience, fixed.eval_steps) == (128, 600, 6, 2, 50)


def test_a_missing_value_message_never_says_the_share_found_equals_the_share_allowed():
    stats = statistics_pb2.DatasetFeatureStatistics(num_examples=15002)
    feature = stats.features.add()
    feature.path.step.append("pickup_community_area")
    feature.num_stats.common_stats.num_non_missing = 15001
    feature.num_stats.common_stats.tot_num_values = 15001
    schema = schema_pb2.Schema()
    schema.feature.add(name="pickup_community_area").presence.min_fraction = 1.0
    (line,) = empty_value_floods("train", stats, schema)
    assert "1 of 15002 rows (0.00667 %) have none; the schema allows at most 0 %" in line


def test_a_row_whose_label_cell_is_empty_is_dropped_but_a_file_without_the_label_column_is_not():
    assert not example_cleaning.has_label(example(mpg=[], hp=130), "mpg", MISSING)
    assert not example_cleaning.has_label(example(mpg=b"NA"), "mpg", MISSING)
    assert example_cleaning.has_label(example(mpg=18.0), "mpg", MISSING)
    assert example_cleaning.has_label(example(hp=130), "mpg", MISSING)  # validation names the missing column


def test_a_file_read_with_the_wrong_delimiter_is_named_before_its_columns_are_renamed():
    wrong = example(**{"trip_id;fare;big_tip": b"1;2.5;0"})
    with pytest.raises(ValueError, match="delimited by something other than commas"):
        example_cleaning.clean_example(wrong, example_cleaning.cleaning_settings(), MISSING)


def test_numeric_features_of_a_large_enough_table_are_also_bucketized(taxi_config_path):
    from settings.config import load_config

    config = load_config(taxi_config_path)
    blank = config.replace(features=config.features.replace(numeric=(), categorical=(), hashed={}, buckets={},
                                                            crosses={}, infer=True))  # fmt: skip
    rng = np.random.default_rng(0)
    for rows, expected in ((feature_inference.BUCKET_MIN_ROWS, {"fare": feature_inference.NUMERIC_BUCKETS}), (300, {})):
        frame = pd.DataFrame({"fare": rng.gamma(2.0, 5.0, rows), "payment_type": rng.choice(["Cash", "Card"], rows),
                              "big_tip": rng.integers(0, 2, rows)})  # fmt: skip
        found, _ = feature_inference.infer(frame, blank)
        assert found["numeric"] == ("fare",) and found["buckets"] == expected


def test_a_config_names_a_column_as_ingestion_reads_it(tmp_path, taxi_config_path):
    from settings.config import ConfigError, load_config

    with pytest.raises(ConfigError, match=r"column 'Body Mass \(g\)' is read as 'Body_Mass_g'"):
        load_config(taxi_config_path, {"features": {"numeric": ["trip_miles", "Body Mass (g)"]}})
    two = example(**{"a b": b"1", "a_b": b"2"})
    with pytest.raises(ValueError, match="both read as 'a_b'"):
        example_cleaning.clean_example(two, example_cleaning.cleaning_settings(), MISSING)


def test_a_public_table_config_writes_its_table_when_its_data_is_missing_and_names_a_bad_one(tmp_path):
    """`make run CONFIG=configs/tables/penguins.yaml` on a fresh clone: the table is written from its installed
    package before the run; data already there is left as it is; an unknown table is named with the known ones."""
    import os

    from settings.config import load_config
    from tables.sample_data import prepare_data
    from tests.conftest import REPO

    path = str(tmp_path / "penguins")
    config = load_config(os.path.join(REPO, "configs", "tables", "penguins.yaml"), {"data": {"path": path}})
    prepare_data(config)
    written = pd.read_csv(os.path.join(path, "penguins.csv"))
    assert len(written) == 344 and "Body Mass (g)" in written.columns
    stamp = os.path.getmtime(os.path.join(path, "penguins.csv"))
    prepare_data(config)
    assert os.path.getmtime(os.path.join(path, "penguins.csv")) == stamp  # not rewritten (the cache keys on it)
    bad = load_config(os.path.join(REPO, "configs", "tables", "penguins.yaml"),
                      {"data": {"path": str(tmp_path / "x"), "public_table": "pinguins"}})  # fmt: skip
    with pytest.raises(ValueError, match=r"data.public_table 'pinguins' is not one of \[.*'penguins'"):
        prepare_data(bad)
    assert not os.path.exists(tmp_path / "x")


def test_columns_the_config_names_that_the_data_lacks_stop_make_features_and_make_run_naming_the_closest(
    tmp_path, capfd
):
    """The example config copied for a price list: its key and personal columns are not in the data, nor is the
    misspelt column it excludes. `make features` and `make run` both stop, naming each with the closest names."""
    import os

    import yaml

    from pipelines import local_runner
    from tests.conftest import REPO

    rng = np.random.default_rng(0)
    data = tmp_path / "data"
    data.mkdir()
    pd.DataFrame({"item_id": np.arange(300), "color": rng.choice(["D", "E", "F"], 300), "carat": rng.random(300),
                  "expensive": rng.integers(0, 2, 300)}).to_csv(data / "prices.csv", index=False)  # fmt: skip
    with open(os.path.join(REPO, "configs", "own-table.example.yaml")) as f:
        raw = yaml.safe_load(f)
    raw["label"] = "expensive"
    raw["data"].update(format="csv", path=str(data))
    raw["features"].update(timestamp=None, exclude=["colour"])
    path = tmp_path / "prices.yaml"
    path.write_text(yaml.safe_dump(raw))
    found = feature_inference.main(["--config", str(path)])
    message = capfd.readouterr().err
    assert found == 2 and message.startswith("config error:"), message
    for expected in ("data.key_column 'trip_id'", "data.personal_columns 'rider_email'",
                     "features.exclude 'colour' is not a column of the data (closest: 'color')"):  # fmt: skip
        assert expected in message, message
    ran = local_runner.main(["--config", str(path), "--workdir", str(tmp_path)])
    message = capfd.readouterr().err
    assert ran == 2 and "data.key_column 'trip_id'" in message and "'colour'" in message, message


def test_the_example_config_leaves_the_training_plan_to_the_table():
    """A copy of the example runs the plan that adapts to the rows (models/training.py), not fixed steps."""
    import os

    from settings.config import load_config
    from tests.conftest import REPO

    trainer = load_config(os.path.join(REPO, "configs", "own-table.example.yaml")).trainer
    fixed = {k: getattr(trainer, k) for k in ("train_steps", "eval_steps", "batch_size", "epochs",
                                               "early_stopping_patience")}  # fmt: skip
    assert set(fixed.values()) == {None}, fixed
