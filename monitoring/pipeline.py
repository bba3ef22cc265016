"""Monitoring as a KFP v2 pipeline, for Vertex AI Pipelines (schedule it like the training pipeline).

  python -m monitoring.pipeline compile --profile configs/vertex-prod.yaml   (make compile-monitoring)

Step 1 runs the same monitoring as `make monitor` (on Vertex, `monitoring.log_path`
is the endpoint's request-response logging table, bq://...); step 2 applies the
retraining policy's decision: it submits the training pipeline on `data_root`
with the reasons as a label, or does nothing. The steps run in the pipeline image.
(No `from __future__ import annotations`: KFP reads the step signatures' types.)
"""

import argparse
import os
import sys

from kfp import compiler, dsl

from pipelines.config import ConfigError, load_config


def _monitor(profile: str, labels: str) -> str:
    import json

    from monitoring import run
    from pipelines.config import load_config

    result = run.monitor(load_config(profile), labels or None)
    return json.dumps(result["retraining"])


def _retrain(profile: str, decision_json: str, data_root: str, template: str) -> str:
    import json

    from pipelines import vertex
    from pipelines.config import load_config

    decision = json.loads(decision_json)
    if not decision["retrain"]:
        return "no retraining: no policy rule fired"
    config = load_config(profile)
    request = vertex.submit(config, template, {"data_root": data_root} if data_root else {},
                            labels={"trigger": "monitoring"})  # fmt: skip
    print(
        json.dumps({"event": "retraining_submitted", "reasons": decision["reasons"], "job": request["pipelineJobId"]})
    )
    return request["pipelineJobId"]


def build_pipeline(image: str):
    monitor = dsl.component(_monitor, base_image=image)
    retrain = dsl.component(_retrain, base_image=image)

    @dsl.pipeline(name="monitoring", description="Skew, drift and live metrics; retrain when the policy fires")
    def monitoring_pipeline(profile: str, template: str, labels: str = "", data_root: str = ""):
        decision = monitor(profile=profile, labels=labels)
        retrain(profile=profile, decision_json=decision.output, data_root=data_root, template=template)

    return monitoring_pipeline


def compile_monitoring(image: str, output: str) -> str:
    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    compiler.Compiler().compile(build_pipeline(image), output)
    return output


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["compile"])
    parser.add_argument("--profile", required=True)
    parser.add_argument("--output", default="build/vertex/monitoring.yaml")
    args = parser.parse_args(argv)
    try:
        config = load_config(args.profile)
        if config.vertex is None:
            raise ConfigError(f"{args.profile}: no 'vertex' section")
    except ConfigError as e:
        print(f"config error: {e}", file=sys.stderr)
        return 2
    print(compile_monitoring(config.vertex.image, args.output))
    return 0


if __name__ == "__main__":
    sys.exit(main())
