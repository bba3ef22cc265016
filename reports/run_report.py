"""One static HTML page per run, with PNG charts, read back from ML Metadata and the run's artifacts.

python -m reports.run_report --config configs/taxi.yaml   (the newest run; `make run` writes it too)

Sections: the push decision and why; data statistics and anomalies; feature screening;
tuning trials; learning curves; evaluation against the baselines and the last blessed
model; slices and fairness; feature importance; the simplified model against the full one; the TensorFlow Lite files. No server, no external script: it opens
from disk. A small inline script marks the page as rendered, which the e2e test checks
in headless Chromium.
"""

from __future__ import annotations

import os
import sys

from metadata import mlmd
from reports.artifacts import RunArtifacts, collect
from reports.data_sections import (
    data_section,
    decision_section,
    safe_name,
    screening_section,
    training_section,
    tuning_section,
)
from reports.model_sections import (
    edge_section,
    evaluation_section,
    importance_section,
    simplification_section,
    slices_section,
)
from reports.templating import environment, render_section
from settings import entry

SECTIONS = ("decision", "data", "screening", "tuning", "training", "evaluation", "slices", "importance",
            "simplification", "edge")  # fmt: skip


TITLES = {"decision": "Push decision", "data": "Data statistics and anomalies",
          "screening": "Leakage and feature selection", "tuning": "Tuning trials", "training": "Learning curves",
          "evaluation": "Evaluation vs baselines and the last blessed model", "slices": "Slices and fairness",
          "importance": "Feature importance", "simplification": "Simplified model vs the full one",
          "edge": "On-device model (TensorFlow Lite)"}  # fmt: skip


def render(summary, artifacts: RunArtifacts, config, out_dir: str) -> str:
    """Writes `out_dir/index.html` and its charts; returns the page's path.

    A section whose inputs are unreadable says so in place rather than failing the report."""
    os.makedirs(out_dir, exist_ok=True)
    builders = {
        "decision": lambda: decision_section(summary, config),
        "data": lambda: data_section(artifacts, out_dir),
        "screening": lambda: screening_section(artifacts),
        "tuning": lambda: tuning_section(artifacts, out_dir),
        "training": lambda: training_section(artifacts, out_dir),
        "evaluation": lambda: evaluation_section(artifacts, config, out_dir),
        "slices": lambda: slices_section(artifacts, config, out_dir),
        "importance": lambda: importance_section(artifacts, out_dir),
        "simplification": lambda: simplification_section(artifacts),
        "edge": lambda: edge_section(artifacts),
    }
    sections = []
    for key in SECTIONS:
        try:
            content = builders[key]()
        except Exception as e:  # one unreadable artifact must not cost the whole report
            content = render_section("error", kind=type(e).__name__, message=str(e))
        if not content.strip():  # a section with nothing in it is not drawn
            continue
        sections.append({"key": key, "title": TITLES[key], "html": content})
    page = (
        environment()
        .get_template("page.html.j2")
        .render(run_id=summary.run_id, pipeline=config.pipeline.name, sections=sections)
    )
    path = os.path.join(out_dir, "index.html")
    with open(path, "w") as f:
        f.write(page)
    return path


def report_dir(config, run_id: str) -> str:
    return os.path.join(config.pipeline.root, "reports", safe_name(run_id))


def write_latest(config, run_id: str | None = None) -> str:
    """The report of the newest run of the configured pipeline (or of run `run_id`); returns its path."""
    from metadata.run_summary import summarize

    store = mlmd.open_store(config.pipeline.metadata_path)
    runs = [r for r in mlmd.runs(store, config.pipeline.name) if run_id is None or r.name == run_id]
    if not runs:
        which = f"run '{run_id}'" if run_id else "run"
        raise LookupError(f"no {which} of pipeline '{config.pipeline.name}' in {config.pipeline.metadata_path}")
    summary = summarize(store, runs[0], config.pipeline.name)
    artifacts = collect(store, runs[0], config.pipeline.name)
    return render(summary, artifacts, config, report_dir(config, summary.run_id))


@entry.config_errors_exit
def main(argv: list[str] | None = None) -> int:
    parser = entry.parser(__doc__, workdir="the --workdir the pipeline ran with")
    args = parser.parse_args(argv)
    config = entry.load(args, workdir=args.workdir)
    if not os.path.exists(config.pipeline.metadata_path):
        print(f"no metadata store at {config.pipeline.metadata_path}: run the pipeline first", file=sys.stderr)
        return 1
    print(write_latest(config))
    return 0


if __name__ == "__main__":
    sys.exit(main())
