"""How the pipeline's cost grows with the rows (make bench-scale): one cache-off run per size.

    python -m benchmarks.scale --rows 15000 150000 1500000 --out build/bench/scale.json

Each size runs `benchmarks.pipeline_timing` in its own process, so that its memory is its own: the peak
of the run's process tree (the runner, the fork server and the components' processes: proportional set
sizes, sampled) and the largest resident set of one process (the runner and what it waited for). The table
gives each component's seconds per size and, from each size to the next, how much faster or
slower than the rows it grew: a growth of 1.0 is linear, above 1.0 the component got dearer per row.
A second table gives the resident memory (the run's process tree, sampled) at its peak within each
component, to say which step sets the run's peak.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

from benchmarks.pipeline_timing import write_result


def run_size(config: str, rows: int) -> dict:
    """One cache-off run of `rows` rows in a child process; its result plus its largest process's peak RSS in MB."""
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        out = f.name
    try:
        child = subprocess.Popen([sys.executable, "-m", "benchmarks.pipeline_timing", "--config", config,
                                  "--rows", str(rows), "--out", out], stdout=subprocess.DEVNULL)  # fmt: skip
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
        if child.returncode:
            raise RuntimeError(f"the {rows}-row run failed (exit {child.returncode})")
        with open(out) as f:
            result = json.load(f)
    finally:
        os.unlink(out)
    return {**result, "largest_process_mb": round(usage.ru_maxrss / 1024)}  # ru_maxrss is in KB on Linux


def growth(runs: list[dict]) -> list[dict]:
    """From each size to the next: per component (and in total), its time's ratio over the rows' ratio."""
    out = []
    for small, large in zip(runs, runs[1:], strict=False):
        rows_ratio = large["rows"] / small["rows"]
        per = {}
        for name, seconds in large["components_seconds"].items():
            before = small["components_seconds"].get(name)
            if before:
                per[name] = round(seconds / before / rows_ratio, 3)
        total = round(large["total_seconds"] / small["total_seconds"] / rows_ratio, 3)
        out.append({"from_rows": small["rows"], "to_rows": large["rows"], "components": per, "total": total})
    return out


def table(runs: list[dict], grown: list[dict]) -> str:
    names = list(dict.fromkeys(n for r in runs for n in r["components_seconds"]))
    head = f"{'component':32s}" + "".join(f"{r['rows']:>12,d}" for r in runs)
    head += "".join(f"  growth {g['from_rows'] // 1000}k->{g['to_rows'] // 1000}k" for g in grown)
    lines = [head]
    for name in [*names, "total"]:
        cells = [r["total_seconds"] if name == "total" else r["components_seconds"].get(name) for r in runs]
        line = f"{name:32s}" + "".join(f"{c:>11.1f}s" if c is not None else f"{'-':>12s}" for c in cells)
        for g in grown:
            value = g["total"] if name == "total" else g["components"].get(name)
            line += f"{value:>20.2f}" if value is not None else f"{'-':>20s}"
        lines.append(line)
    lines.append(
        f"{'peak memory, all processes (MB)':32s}" + "".join(f"{r['peak_rss_sampled_mb']:>12,d}" for r in runs)
    )
    lines.append(f"{'largest one process (MB)':32s}" + "".join(f"{r['largest_process_mb']:>12,d}" for r in runs))
    lines += ["", "resident memory at its peak within each component (MB, sampled):"]
    for name in names:
        cells = [r.get("components_peak_rss_mb", {}).get(name) for r in runs]
        lines.append(f"{name:32s}" + "".join(f"{c:>12,d}" if c is not None else f"{'-':>12s}" for c in cells))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="configs/taxi.yaml")
    parser.add_argument("--rows", type=int, nargs="+", default=[15000, 150000, 1500000])
    parser.add_argument("--out", default="build/bench/scale.json")
    args = parser.parse_args(argv)
    runs = []
    for rows in sorted(args.rows):
        runs.append(run_size(args.config, rows))
        print(
            f"{rows:,d} rows: {runs[-1]['total_seconds']:.1f} s, peak {runs[-1]['peak_rss_sampled_mb']:,d} MB",
            flush=True,
        )
    grown = growth(runs)
    write_result(args.out, {"runs": runs, "growth": grown})
    print(table(runs, grown))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
