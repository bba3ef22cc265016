"""ExampleGen's CSV path, a record batch at a time, against TFX's own CSV reader followed by the per-row
cleaning it replaced: the same tf.Examples, byte for byte, on cells real tables hold."""

import glob
import os

import apache_beam as beam
import pytest
import tensorflow as tf
from tfx.components.example_gen.csv_example_gen import executor as tfx_csv

from components import csv_batches, example_cleaning, file_example_gen
from models.features import MISSING_TOKENS

pytestmark = pytest.mark.data

MISSING = frozenset(t.encode() for t in MISSING_TOKENS)
CLEAN = {**example_cleaning.cleaning_settings(["Body_Mass"], "Date_Egg", "Species", ["Adelie", "Gentoo"]),
         "missing_values": list(MISSING_TOKENS)}  # fmt: skip
HEADER = "Species,Body Mass,Date Egg,Island,count,ratio,empty,Name\n"
FIRST = [  # ints in `ratio` here, a float in the second file: the column is float in both
    "Adelie,3750,2007/11/11,Torgersen,1,2,,Ann\n",
    'Gentoo, 4100 ,2007-11-16,"Biscoe\nnorth",0,3,,Bo\n',  # a quoted newline; spaces around a number
    "Adelie,NA,2007-11-16T10:15:00Z, ,-3,0,,Cy\n",  # a missing token and a blank text cell
    ",3800,2008/01/02,Dream,7,1,,Di\n",  # no label: dropped
]
SECOND = ["Gentoo,nan,2009-01-01,N/A,12,0.5,,Ed\n", "Adelie,,2009-01-02,Dream,,,,\n"]


def write(tmp_path, first=FIRST, second=SECOND):
    (tmp_path / "runs").mkdir()
    (tmp_path / "data").mkdir()
    for name, rows in (("a.csv", first), ("b.csv", second)):
        (tmp_path / "data" / name).write_text(HEADER + "".join(rows))
    return {"input_base": str(tmp_path / "data")}


def run(transform, out_dir) -> list[bytes]:
    """The transform's tf.Examples, each serialized deterministically (a feature map has no order)."""
    prefix = os.path.join(out_dir, f"out-{len(os.listdir(out_dir))}")
    with beam.Pipeline() as p:
        out = p | transform | beam.Map(lambda e: tf.train.Example.FromString(e) if isinstance(e, bytes) else e)
        _ = out | beam.Map(lambda e: e.SerializeToString(deterministic=True).hex()) | beam.io.WriteToText(prefix)
    return sorted(bytes.fromhex(line.strip()) for name in glob.glob(prefix + "*") for line in open(name))


def tfx_then_per_row(props: dict, drop=frozenset(), hashed=frozenset(), secret=b"") -> beam.PTransform:
    @beam.ptransform_fn
    def transform(pipeline):
        rows = pipeline | tfx_csv._CsvToExample(props, "*.csv")  # noqa: SLF001
        rows = rows | beam.Filter(example_cleaning.has_label, "Species", MISSING)
        rows = rows | beam.Map(example_cleaning.clean_example, CLEAN, MISSING)
        rows = rows | "Drop" >> beam.Map(file_example_gen.drop_features, drop)
        return rows | "Hash" >> beam.Map(file_example_gen.hash_features, hashed, secret) if hashed else rows

    return transform()


def by_batches(props: dict, drop=frozenset(), hashed=frozenset()) -> beam.PTransform:
    """ExampleGen's own CSV transform, its settings in the custom config as the pipeline writes them."""
    config = file_example_gen.custom_config(drop, hash_columns=hashed, clean=CLEAN)
    return file_example_gen.csv_to_clean_examples({**props, "custom_config": config}, "*.csv")


def test_batches_give_the_examples_tfx_and_the_per_row_cleaning_gave(tmp_path, monkeypatch):
    monkeypatch.setattr(csv_batches, "BLOCK_BYTES", 64)  # a batch per row or two: types merge across batches
    props = write(tmp_path)
    new = run(by_batches(props), tmp_path / "runs")
    assert new == run(tfx_then_per_row(props), tmp_path / "runs")
    rows = [tf.train.Example.FromString(e) for e in new]
    assert len(rows) == 5  # the row without a label is left out
    ratio = {v for r in rows for v in r.features.feature["ratio"].float_list.value}
    assert ratio == {2.0, 3.0, 0.0, 0.5}  # one type for the column, though the first file holds only ints
    assert all("empty" not in r.features.feature for r in rows)
    assert sum("Body_Mass" in r.features.feature for r in rows) == 2  # NA, nan and an empty cell are missing


def test_records_keep_the_row_order_and_serialize_deterministically():
    import io

    names = ["Species", "Body Mass", "Date Egg"]
    text = "h\n" + "".join(f"Adelie,{'' if i % 3 else 3000 + i},2007/11/{10 + i % 19}\n" for i in range(60))
    (batch,) = csv_batches.read_string_batches(io.BytesIO(text.encode()), names)
    records = csv_batches.Cleaner(names, CLEAN, MISSING).examples(batch, csv_batches.column_kinds(batch))
    rows = [tf.train.Example.FromString(r).features.feature for r in records]
    mass = [list(r["Body_Mass"].int64_list.value) if "Body_Mass" in r else None for r in rows]
    assert mass == [[3000 + i] if i % 3 == 0 else None for i in range(60)]  # row order, not fill-group order
    # the hash split hashes these bytes: they must not depend on the encoder's map order
    assert records == [tf.train.Example.FromString(r).SerializeToString(deterministic=True) for r in records]


def test_personal_columns_are_dropped_or_hashed_as_the_per_row_path_does(tmp_path, monkeypatch):
    props = write(tmp_path)
    secret = b"k" * 16
    monkeypatch.setenv(file_example_gen.HASH_SECRET_ENV, secret.decode())
    drop, hashed = frozenset({"Island"}), frozenset({"Name", "count"})
    new = run(by_batches(props, drop, hashed), tmp_path / "runs")
    assert new == run(tfx_then_per_row(props, drop, hashed, secret), tmp_path / "runs")
    text = b"".join(new)
    assert b"Torgersen" not in text and b"Ann" not in text


def test_bad_cells_and_bad_headers_are_named(tmp_path):
    names = ["Species", "Body Mass", "Date Egg"]
    cleaner = csv_batches.Cleaner(names, CLEAN, MISSING)

    def batch(line: str):
        import io

        (one,) = csv_batches.read_string_batches(io.BytesIO(f"h\n{line}\n".encode()), names)
        return cleaner.examples(one, csv_batches.column_kinds(one))

    with pytest.raises(ValueError, match=r"column 'Body_Mass': 'about 9' is not a number"):
        batch("Adelie,about 9,2007/11/11")
    with pytest.raises(ValueError, match=r"column 'Date_Egg': 'soon' is not a date"):
        batch("Adelie,3750,soon")
    with pytest.raises(ValueError, match=r"label 'Species': value 'Emperor' is not one of the classes"):
        batch("Emperor,3750,2007/11/11")
    with pytest.raises(ValueError, match=r"columns 'a_b' and 'a b' both read as 'a_b'"):
        csv_batches.Cleaner(["a b", "a_b"], CLEAN, MISSING)
    with pytest.raises(ValueError, match=r"delimited by something other than commas"):
        csv_batches.Cleaner(["a;b;c"], CLEAN, MISSING)
    (tmp_path / "short.csv").write_text("Species,Body Mass,Date Egg\nAdelie,3750,2007/11/11\nSecret Name,\n")
    with pytest.raises(ValueError, match=r"Columns do not match the header in .*short.csv: a row has 2 cells") as e:
        list(csv_batches.read_file(str(tmp_path / "short.csv"), names))
    assert "Secret" not in str(e.value)  # the row is not quoted: it may hold personal data
    (tmp_path / "noise.csv").write_bytes(b"Species,Body Mass,Date Egg\n\xff\xfe,1,2\n")
    with pytest.raises(ValueError, match=r"noise.csv is not UTF-8 text throughout"):
        list(csv_batches.read_file(str(tmp_path / "noise.csv"), names))
    for name in ("short.csv", "noise.csv"):
        (tmp_path / name).unlink()
    (tmp_path / "a.csv").write_text("x,y\n1,2\n")
    (tmp_path / "b.csv").write_text("x,z\n1,2\n")
    with pytest.raises(RuntimeError, match=r"different headers"):
        file_example_gen.csv_files_and_header(str(tmp_path / "*.csv"))
