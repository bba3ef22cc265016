"""Corrupted inputs made from the generated data, each fed to the real pipeline.

    python -m drills.corruption_suite --rows 1500      (make corruption-suite)

First a clean run blesses and pushes a model. Then each case writes a corrupted copy
of fresh data and runs the pipeline on it, with the same metadata store and serving
directory. A case is caught when the run stops with an error that names the problem
(the pattern below), no new model is pushed, the served versions are unchanged, and
the metadata store still answers for the last blessed model. Prints the table and the
count; writes JSON to --out.
"""

from __future__ import annotations

import os
import re
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from settings import entry


@dataclass(frozen=True)
class Case:
    name: str
    what: str
    write: Callable[[pd.DataFrame, str], None]  # corrupted copy of the frame into a directory
    expect: str  # regex the error must match: it names the problem


def _csv(frame: pd.DataFrame, directory: str, **kwargs) -> None:
    os.makedirs(directory, exist_ok=True)
    frame.to_csv(os.path.join(directory, "trips.csv"), index=False, **kwargs)


def _truncated(frame: pd.DataFrame, directory: str) -> None:
    _csv(frame, directory)
    path = os.path.join(directory, "trips.csv")
    with open(path) as f:
        lines = f.read().splitlines()
    lines[len(lines) // 2] = lines[len(lines) // 2][:25]  # a row cut short in transfer
    lines[len(lines) // 3] = "\x00\x17garbled\x01,\x02"
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def _empty(frame: pd.DataFrame, directory: str) -> None:
    _csv(frame.head(0), directory)  # the header and no row


def _nulls(frame: pd.DataFrame, directory: str) -> None:
    out = frame.copy()
    out.loc[np.random.default_rng(0).random(len(out)) < 0.6, "trip_miles"] = np.nan
    _csv(out, directory)


def _with(column: str, values) -> Callable[[pd.DataFrame, str], None]:
    def write(frame: pd.DataFrame, directory: str) -> None:
        out = frame.copy()
        out[column] = values(out) if callable(values) else values
        _csv(out, directory)

    return write


CASES = (
    Case("missing_column", "the fare column is not in the file",
         lambda f, d: _csv(f.drop(columns=["fare"]), d), r"'fare'.*(dropped|missing)"),
    Case("extra_column", "a column the schema does not know",
         _with("surcharge", 1.5), r"'surcharge'.*New column"),
    Case("type_change", "fares written as text with a currency",
         _with("fare", lambda f: f["fare"].map(lambda v: f"{v} USD")), r"'fare'.*(type|STRING|BYTES|is not a number)"),
    Case("out_of_domain", "a payment type the schema does not list",
         _with("payment_type", "Bitcoin"), r"'payment_type'.*(Unexpected string values|Bitcoin)"),
    Case("null_flood", "60 % of trip_miles empty",
         _nulls, r"'trip_miles'.*too many missing values"),
    Case("out_of_range", "negative fares",
         _with("fare", lambda f: -f["fare"]), r"'fare'.*(Out-of-range|out of range|less than)"),
    Case("empty_file", "the header and no row",
         _empty, r"(has no rows|Low num examples)"),
    Case("garbled_rows", "a row cut short and a row of binary noise",
         _truncated, r"Columns do not match"),
    Case("wrong_delimiter", "semicolons instead of commas",
         lambda f, d: _csv(f, d, sep=";"), r"(delimited by something other than commas|New column)"),
    Case("missing_label", "the label column is not in the file",
         lambda f, d: _csv(f.drop(columns=["big_tip"]), d), r"'big_tip'.*(dropped|missing)"),
)  # fmt: skip


def served_versions(config) -> list[str]:
    directory = config.pipeline.serving_dir
    return sorted(os.listdir(directory)) if os.path.isdir(directory) else []


def run_case(case: Case, config_path: str, base: dict, frame: pd.DataFrame, workdir: str) -> dict:
    """Runs the pipeline on the case's corrupted data (config `base` with the case's data); returns
    what happened."""
    from metadata import lineage, mlmd
    from pipelines import local_runner
    from settings.config import load_config
    from settings.yaml_files import deep_merge

    data_dir = os.path.join(workdir, "cases", case.name)
    case.write(frame, data_dir)
    case_config = load_config(config_path, deep_merge(base, {"data": {"path": data_dir, "generate": None}}))
    before = served_versions(case_config)
    store = mlmd.open_store(case_config.pipeline.metadata_path)
    pushed_before = lineage.pushed_models(store)[0].id
    start = time.perf_counter()
    error = ""
    try:
        summary = local_runner.run(case_config)
        error = "\n".join(summary.failures) if not summary.pushed_model else ""
        pushed = summary.pushed_model
    except Exception as e:  # the pipeline stopping is the expected outcome
        error = "".join(traceback.format_exception(e))
        pushed = None
    lines = [line.strip() for line in error.splitlines() if not line.strip().startswith(('File "', "raise "))]
    message = next((line for line in lines if re.search(case.expect, line)), "")
    intact = served_versions(case_config) == before and lineage.pushed_models(store)[0].id == pushed_before
    return {
        "case": case.name, "what": case.what, "stopped": bool(error), "pushed": bool(pushed),
        "named": bool(message), "message": message[:300], "last_blessed_intact": intact,
        "caught": bool(error) and not pushed and bool(message) and intact,
        "seconds": round(time.perf_counter() - start, 1),
    }  # fmt: skip


def run_suite(config_path: str, workdir: str, rows: int, overrides: dict | None = None,
              cases: tuple[Case, ...] = CASES) -> list[dict]:  # fmt: skip
    """A clean, pushed run, then every case against it."""
    from datagen import taxi
    from pipelines import local_runner
    from settings.config import load_config
    from settings.yaml_files import deep_merge, workdir_overrides

    base = deep_merge(workdir_overrides(os.path.abspath(workdir)), overrides or {})
    base = deep_merge(base, {"data": {"generate": {"rows": rows}}})
    config = load_config(config_path, base)
    clean = local_runner.run(config)
    if not clean.pushed_model:
        raise RuntimeError(f"the clean run pushed no model, so there is nothing to protect: {clean.failures}")
    frame = taxi.generate(rows, seed=config.data.generate.seed + 1)
    return [run_case(case, config_path, base, frame, workdir) for case in cases]


@entry.config_errors_exit
def main(argv: list[str] | None = None) -> int:
    parser = entry.parser(__doc__)
    parser.add_argument("--rows", type=int, default=1500)
    parser.add_argument("--workdir", default="build/corruption")
    parser.add_argument("--out", default="build/bench/corruption.json")
    args = parser.parse_args(argv)
    # a quick clean run whose model is blessed: the cases are about the data, not the model's quality
    overrides = {"tuning": {"max_trials": 0}, "simplification": None, "framing": {"success_level": 0.6},
                 "evaluation": {"slice_lower_bound": None, "baselines": {"margin": -0.1}}}  # fmt: skip
    results = run_suite(args.config, args.workdir, args.rows, overrides)
    caught = sum(r["caught"] for r in results)
    print(f"\n{'case':18s} {'caught':7s} {'time':>6s}  message")
    for r in results:
        print(f"{r['case']:18s} {'yes' if r['caught'] else 'NO':7s} {r['seconds']:5.1f}s  {r['message'][:110]}")
    print(f"\ncaught {caught} of {len(results)}; the last blessed model stayed served in every case: "
          f"{all(r['last_blessed_intact'] for r in results)}")  # fmt: skip
    from benchmarks.pipeline_timing import write_result

    write_result(args.out, {"rows": args.rows, "caught": caught, "cases": results})
    return 0 if caught == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
