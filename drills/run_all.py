"""Every reliability drill, one after another, and the table: drill, what happened, what was lost.

    python -m drills.run_all            (make drills)

The killed-run drill makes the workdir the others use: its clean run, its kill points' re-runs
(each on new data, so each pushes another model), and the pipeline's distilled model for the swap.
Writes JSON to --out; exits 1 unless every drill passed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
import traceback
from collections.abc import Callable

from drills import bad_model, checks, concurrent_runs, disk_full, hot_swap, housekeeping, killed_run, runs


def _timed(name: str, drill: Callable[[], dict | list[dict]]) -> list[dict]:
    start = time.perf_counter()
    try:
        results = drill()
    except Exception as e:  # a drill that breaks is a failed drill, and the others still run
        results = {"drill": name, "ok": False, "happened": f"the drill itself failed: {type(e).__name__}: {e}"[:300],
                   "lost": "unknown", "traceback": traceback.format_exc()}  # fmt: skip
    results = results if isinstance(results, list) else [results]
    for r in results:
        r.setdefault("seconds", round((time.perf_counter() - start) / len(results), 1))
    return results


def run_all(workdir: str, requests: int, concurrency: int, kill_points: dict[str, float]) -> list[dict]:
    killed_dir = os.path.join(workdir, "killed")
    results = _timed("killed run", lambda: killed_run.run_drill(killed_dir, kill_points))
    for r in results:
        r["seconds"] = round(r.get("killed_after_s", 0) + r.get("rerun_s", 0), 1)
    config_path = os.path.join(killed_dir, "configs", "drill.yaml")
    config = runs.load(config_path)
    serving = config.pipeline.serving_dir
    newest = os.path.join(serving, checks.served(serving)[-1])
    # new data: the first run has work to do while the second one starts
    results += _timed("two runs at once", lambda: concurrent_runs.run_drill(runs.write_config(killed_dir, seed=30)))
    results += _timed("disk full while pushing", lambda: disk_full.push_on_full_disk(config, newest, workdir))
    results += _timed("disk full while logging", lambda: disk_full.log_on_full_disk(config, serving, workdir))
    new = hot_swap.distilled_model(config.pipeline.root)
    results += _timed("hot swap", lambda: hot_swap.run_drill(config, serving, new, workdir, requests, concurrency))
    results += _timed("bad model", lambda: bad_model.run_drill(config, serving, workdir))
    results += _timed("housekeeping", lambda: housekeeping.run_drill(os.path.join(workdir, "housekeeping")))
    return results


def print_table(results: list[dict]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="reliability drills", show_lines=True)
    for column in ("drill", "ok", "time", "what happened", "what was lost"):
        table.add_column(column, overflow="fold")
    for r in results:
        table.add_row(r["drill"], "yes" if r["ok"] else "NO", f"{r['seconds']:.0f} s", r["happened"], r["lost"])
    Console(width=160).print(table)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", default="build/drills/work")
    parser.add_argument("--out", default="build/drills/drills.json")
    parser.add_argument("--requests", type=int, default=10000, help="hot swap: requests in all")
    parser.add_argument("--concurrency", type=int, default=16, help="hot swap: connections")
    parser.add_argument("--kill", default=",".join(killed_run.KILL_POINTS), help="components to kill the run in")
    args = parser.parse_args(argv)
    workdir = os.path.abspath(args.workdir)
    shutil.rmtree(workdir, ignore_errors=True)
    points = {c: killed_run.KILL_POINTS[c] for c in args.kill.split(",")}
    results = run_all(workdir, args.requests, args.concurrency, points)
    print_table(results)
    from benchmarks.pipeline_timing import write_result

    passed = sum(r["ok"] for r in results)
    write_result(args.out, {"passed": passed, "drills": results})
    print(f"{passed} of {len(results)} drills passed; JSON in {args.out}")
    return 0 if passed == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
