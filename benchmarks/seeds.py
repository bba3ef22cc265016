"""The spread over training seeds (`make bench-seeds`): the quickstart's config run from scratch once per
`trainer.seed`, the same data each time, and every gated number of every candidate.

    python -m benchmarks.seeds [--config configs/taxi.yaml] [--seeds 5] [--out build/bench/seeds.json]

Only the model's seed varies (weights, shuffling, the trees' sampling, the Tuner's trials): the demo's data is one
fixed table (`data.generate.seed`), so the spread a user can meet on it is the model's. Per run and candidate:
the gating metric, its margin over the heuristic floor, its worst calendar month, the fairness gaps per feature
at the decision threshold, its failed checks, and which candidate was pushed. Per limit: the spread (min-max) of
each candidate and the margin of the pushed models to the limit, worst seed. The bar (issue #37): every seed
pushes some candidate.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import time
from dataclasses import dataclass

# (config key, the quantity it bounds, "min": the quantity must stay at or above, "max": at or below)
LIMITS = (
    ("framing.success_level", "value", "min"),
    ("evaluation.baselines.margin", "heuristic_margin", "min"),
    ("evaluation.slice_lower_bound", "worst_month", "min"),
    ("evaluation.fairness.max_fpr_gap", "fpr_gap", "max"),
    ("evaluation.fairness.max_fnr_gap", "fnr_gap", "max"),
    ("evaluation.fairness.min_positive_rate_ratio", "positive_rate_ratio", "min"),
)


@dataclass(frozen=True)
class LimitCheck:
    """One limit against what the seeds measured: each candidate's (min, max), the pushed models' worst value and
    the margin left (positive: inside the limit)."""

    key: str
    quantity: str
    kind: str
    limit: float
    spread: dict[str, tuple[float, float]]
    pushed_worst: float | None
    margin: float | None
    pushed: int = 0  # runs that pushed a model

    def comment(self, seeds: int) -> str:
        """The text written beside the limit in the config."""
        spread = ", ".join(f"{n} {lo:.3f}-{hi:.3f}" for n, (lo, hi) in self.spread.items())
        pushed = (
            "nothing pushed"
            if self.pushed_worst is None
            else f"pushed {self.pushed} of {seeds}, worst {self.pushed_worst:.3f}, margin {self.margin:.3f}"
        )
        return f"{seeds} seeds (make bench-seeds): {spread}; {pushed}"


COMMENT = re.compile(
    r"(?P<seeds>\d+) seeds \(make bench-seeds\): (?P<spread>.*); pushed (?P<pushed>\d+) of \d+, worst (?P<worst>-?[\d.]+), margin (?P<margin>-?[\d.]+)"
)


def parse_comment(text: str) -> dict | None:
    """A limit's comment read back: seeds, spread per candidate, the pushed models' worst value and the margin."""
    found = COMMENT.search(text)
    if not found:
        return None
    spread = {}
    for part in found["spread"].split(", "):
        name, lo, hi = re.fullmatch(r"(\w+) (-?[\d.]+)-(-?[\d.]+)", part).groups()
        spread[name] = (float(lo), float(hi))
    return {"seeds": int(found["seeds"]), "spread": spread, "pushed": int(found["pushed"]), "pushed_worst": float(found["worst"]),
            "margin": float(found["margin"])}  # fmt: skip


def margin_to(value: float, limit: float, kind: str) -> float:
    """How far inside the limit a value is (negative: over it)."""
    return round(value - limit if kind == "min" else limit - value, 4)


def check_limits(runs: list[dict], limits: dict[str, float | None]) -> list[LimitCheck]:
    """Each set limit against the runs: `runs` are this benchmark's rows (candidates -> quantity -> value, with a
    feature's gaps as `fnr_gap:<feature>`), `limits` config key -> value (None: not set, not checked). A gap
    quantity is the worst over the features."""
    out = []
    for key, quantity, kind in LIMITS:
        limit = limits.get(key)
        if limit is None:
            continue
        worst = min if kind == "min" else max
        per: dict[str, list[float]] = {}
        pushed = []
        for run in runs:
            for name, c in run["candidates"].items():
                v = _quantity(c, quantity, worst)
                if v is None:
                    continue
                per.setdefault(name, []).append(v)
                if name == run["winner"] and run["pushed"]:
                    pushed.append(v)
        spread = {n: (round(min(vs), 4), round(max(vs), 4)) for n, vs in per.items()}
        pushed_worst = round(worst(pushed), 4) if pushed else None
        margin = margin_to(pushed_worst, limit, kind) if pushed else None
        out.append(LimitCheck(key, quantity, kind, limit, spread, pushed_worst, margin, len(pushed)))
    return out


def _quantity(candidate: dict, quantity: str, worst) -> float | None:
    """The candidate's value of `quantity`; for a per-feature gap, the worst feature's."""
    values = [v for k, v in candidate.items() if (k == quantity or k.startswith(quantity + ":")) and v is not None]
    return worst(values) if values else None


def candidate_row(standing: dict, heuristic: float | None, gaps: list, month_prefix: str | None,
                  higher_is_better: bool) -> dict:  # fmt: skip
    """One candidate's gated numbers from its leaderboard standing and its fairness gaps (models.fairness.Gap)."""
    value = standing["value"]
    row: dict = {"value": value, "failures": list(standing["failures"])}
    if heuristic is not None and value is not None:
        row["heuristic_margin"] = round(value - heuristic if higher_is_better else heuristic - value, 4)
    months = [v for k, v in standing["slices"].items() if month_prefix and k.startswith(month_prefix + "=")]
    if months:
        row["worst_month"] = min(months) if higher_is_better else max(months)
    for g in gaps:
        row[f"{g.rate}_{'ratio' if g.rate == 'positive_rate' else 'gap'}:{g.feature}"] = round(g.value, 4)
    return row


def config_limits(config) -> dict[str, float | None]:
    e = config.evaluation
    margin = None
    if e.baselines is not None:
        from pipelines.eval_configs import heuristic_margin

        margin = heuristic_margin(config)
    return {
        "framing.success_level": e.lower_bound, "evaluation.baselines.margin": margin,
        "evaluation.slice_lower_bound": e.slice_lower_bound if e.time_slice else None,
        "evaluation.fairness.max_fpr_gap": e.fairness.max_fpr_gap, "evaluation.fairness.max_fnr_gap": e.fairness.max_fnr_gap,
        "evaluation.fairness.min_positive_rate_ratio": e.fairness.min_positive_rate_ratio,
    }  # fmt: skip


def leaderboard_evaluation(config) -> str | None:
    """The newest run's Leaderboard evaluation directory (TFMA's output), from ML Metadata."""
    from metadata import mlmd

    store = mlmd.open_store(config.pipeline.metadata_path)
    [run, *_] = mlmd.runs(store, config.pipeline.name)
    for execution in store.get_executions_by_context(run.id):
        if mlmd.node_id(store, execution.id, config.pipeline.name) == "Leaderboard":
            found = mlmd.of_type(store, mlmd.outputs(store, execution.id), "ModelEvaluation")
            if found:
                return found[0].uri
    return None


def run_seed(config_path: str, seed: int, workdir: str, data_dir: str) -> dict:
    """One from-scratch run with `trainer.seed: seed` on the shared data; its row of the benchmark."""
    from components.group_rates import group_rates
    from models.fairness import FairnessLimits, gaps
    from models.trainer import month_name
    from pipelines import local_runner
    from settings.config import load_config
    from settings.metrics import higher_is_better
    from settings.yaml_files import deep_merge, workdir_overrides

    workdir = os.path.abspath(os.path.join(workdir, f"seed-{seed}"))
    shutil.rmtree(workdir, ignore_errors=True)
    overrides = deep_merge(workdir_overrides(workdir), {"data": {"path": data_dir}, "trainer": {"seed": seed}})
    config = load_config(config_path, overrides)
    start, error = time.monotonic(), None
    try:
        local_runner.run(config)
    except Exception as e:  # a seed that fails is a row of the result, named
        error = f"{type(e).__name__}: {str(e)[:300]}"
    seconds = round(time.monotonic() - start, 1)
    summary = local_runner.latest_summary(config)
    e = config.evaluation
    higher = higher_is_better(e.metric)
    evaluation = leaderboard_evaluation(config) if summary.leaderboard else None
    heuristic = _heuristic_value(evaluation) if evaluation else None
    limits = FairnessLimits(**e.fairness.model_dump())
    candidates = {}
    for s in summary.leaderboard:
        found = []
        if evaluation and e.fairness_features and config.decision_threshold() is not None:
            rates = group_rates(evaluation, e.fairness_features, s["name"])
            found = gaps(rates, limits, round(config.decision_threshold(), 6), every_rate=True)
        month = month_name(config.features.timestamp) if config.features.timestamp else None
        candidates[s["name"]] = candidate_row(s, heuristic, found, month, higher)
    return {"seed": seed, "winner": summary.winner, "pushed": bool(summary.pushed_model), "heuristic": heuristic,
            "candidates": candidates, "failures": list(summary.failures), "error": error, "seconds": seconds}  # fmt: skip


def _heuristic_value(evaluation_uri: str) -> float | None:
    from components.blessing_gate import RESULT_FILE

    with open(os.path.join(evaluation_uri, RESULT_FILE)) as f:
        return json.load(f).get("heuristic")


def print_tables(runs: list[dict], checks: list[LimitCheck]) -> None:
    def f(v):
        return "-" if v is None else f"{v:.4f}" if isinstance(v, float) else str(v)

    quantities = sorted({k for r in runs for c in r["candidates"].values() for k in c if k != "failures"})
    print(" | ".join(["seed", "candidate", *quantities, "pushed"]))
    for r in runs:
        for name, c in r["candidates"].items():
            mark = "PUSHED" if r["pushed"] and name == r["winner"] else "lost" if c["failures"] else "-"
            print(" | ".join([str(r["seed"]), name, *(f(c.get(q)) for q in quantities), mark]))
        if r["error"]:
            print(f"    error: {r['error']}")
    print()
    for c in checks:
        print(f"{c.key} = {c.limit:g}: {c.comment(len(runs))}")


def main(argv: list[str] | None = None) -> int:
    from settings.config import load_config

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="configs/taxi.yaml")
    parser.add_argument("--seeds", type=int, default=5, help="trainer.seed 0 .. N-1 (0 is what make run trains)")
    parser.add_argument("--workdir", default="build/bench/seeds")
    parser.add_argument("--out", default="build/bench/seeds.json")
    args = parser.parse_args(argv)
    if args.seeds < 1:
        parser.error(f"--seeds must be at least 1, got {args.seeds}")
    data_dir = os.path.abspath(os.path.join(args.workdir, "data"))  # written once, by the first run
    limits = config_limits(load_config(args.config))
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    runs: list[dict] = []
    for seed in range(args.seeds):  # the file is rewritten after each run: a stopped benchmark keeps its rows
        runs.append(run_seed(args.config, seed, args.workdir, data_dir))
        checks = check_limits(runs, limits)
        with open(args.out, "w") as f:
            json.dump({"config": args.config, "seeds": len(runs), "runs": runs,
                       "limits": [c.__dict__ | {"comment": c.comment(len(runs))} for c in checks]}, f, indent=2)  # fmt: skip
    print_tables(runs, checks)
    print(f"wrote {args.out}")
    return 0 if all(r["pushed"] and r["error"] is None for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
