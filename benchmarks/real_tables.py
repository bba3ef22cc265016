"""The real-tables benchmark (`make bench-tables`): each public table of datagen/public_tables.py through the
bring-your-own path with its one YAML (configs/tables/), and the pushed network beside the references the
same run trained on the same split.

    python -m benchmarks.real_tables [--tables a,b] [--workdir build/bench/tables] [--out build/bench/tables.json]

Per table: rows, the gating metric, each candidate's value on the leaderboard (network, linear, gradient-boosted),
the winner, the pushed model's distance to the best of the linear and boosted candidates on the same split, whether
the run pushed, and wall time. The bar (issue #35): every table pushes on its first run, and the pushed model is
within 0.005 AUC / accuracy, or 2 % RMSE, of that best.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

TABLE_CONFIGS = "configs/tables"


def config_path(name: str, repo: str = ".") -> str:
    return os.path.join(repo, TABLE_CONFIGS, f"{name}.yaml")


def run_table(name: str, workdir: str, overrides: dict | None = None, repo: str = ".") -> dict:
    """Writes the table, runs the pipeline on it, and returns its row of the benchmark."""
    from datagen import public_tables
    from metadata import mlmd
    from pipelines import local_runner
    from settings.config import load_config
    from settings.yaml_files import deep_merge, workdir_overrides

    workdir = os.path.abspath(os.path.join(workdir, name))
    config = load_config(config_path(name, repo), deep_merge(workdir_overrides(workdir), overrides or {}))
    path = public_tables.write(name, config.data.path)
    with open(path) as f:
        rows = sum(1 for _ in f) - 1

    def run_ids() -> list[int]:
        if not os.path.exists(config.pipeline.metadata_path):
            return []
        return [r.id for r in mlmd.runs(mlmd.open_store(config.pipeline.metadata_path), config.pipeline.name)]

    before = set(run_ids())
    start = time.monotonic()
    error = None
    try:
        local_runner.run(config)
    except Exception as e:  # a table that fails is a row of the result, named, not the end of the benchmark
        error = f"{type(e).__name__}: {str(e)[:300]}"
    seconds = time.monotonic() - start
    standings, winner, pushed, failures = {}, None, False, []
    if set(run_ids()) - before:  # this run was recorded (it may have stopped before any model)
        summary = local_runner.latest_summary(config)
        standings = {s["name"]: s for s in summary.leaderboard}
        winner, pushed, failures = summary.winner, bool(summary.pushed_model), list(summary.failures)
    metric = config.evaluation.metric

    def value(model: str | None) -> float | None:
        return standings.get(model, {}).get("value") if model else None

    row = {
        "table": name, "rows": rows, "problem_type": config.problem_type, "metric": metric,
        "network": value("network"), "linear": value("linear"), "boosted": value("boosted"),
        "winner": winner, "pushed_value": value(winner) if pushed else None, "pushed": pushed,
        "failures": failures, "error": error, "seconds": round(seconds, 1),
    }  # fmt: skip
    row.update(distance(row["pushed_value"], [row["linear"], row["boosted"]], metric))
    return row


BAR = {"higher": 0.005, "lower": 0.02}  # points of AUC / accuracy; a fraction of the best error


def distance(pushed: float | None, references: list[float | None], metric: str) -> dict:
    """How far the pushed model is from the best reference (positive: behind it), and whether that is within
    the bar. A run that pushed nothing misses the bar."""
    from settings.metrics import higher_is_better

    refs = [v for v in references if v is not None]
    if not refs:
        return {}
    higher = higher_is_better(metric)
    best = max(refs) if higher else min(refs)
    if pushed is None:
        return {"best_reference": best, "gap": None, "within_bar": False}
    gap = round(best - pushed, 4) if higher else round(pushed / best - 1, 4)
    return {"best_reference": best, "gap": gap, "within_bar": gap <= BAR["higher" if higher else "lower"]}


def print_table(rows: list[dict]) -> None:
    def f(v):
        return "-" if v is None else f"{v:.4f}" if isinstance(v, float) else str(v)

    head = ["table", "rows", "metric", "network", "linear", "boosted", "winner", "gap", "bar", "pushed", "seconds"]
    print(" | ".join(head))
    for r in rows:
        bar = "-" if "within_bar" not in r else "ok" if r["within_bar"] else "MISSED"
        print(" | ".join([r["table"], str(r["rows"]), r["metric"], f(r["network"]), f(r["linear"]), f(r["boosted"]),
                          str(r["winner"] or "-"), f(r.get("gap")), bar, str(r["pushed"]), f(r["seconds"])]))  # fmt: skip
        if r["error"]:
            print(f"    error: {r['error']}")


def main(argv: list[str] | None = None) -> int:
    from datagen.public_tables import TABLES

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tables", default=",".join(TABLES), help="comma-separated names")
    parser.add_argument("--workdir", default="build/bench/tables")
    parser.add_argument("--out", default="build/bench/tables.json")
    args = parser.parse_args(argv)
    rows = [run_table(name, args.workdir) for name in args.tables.split(",")]
    print_table(rows)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump({"tables": rows}, f, indent=2)
    print(f"wrote {args.out}")
    return 0 if all(r.get("within_bar") and r["pushed"] and r["error"] is None for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
