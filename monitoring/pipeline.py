"""Monitoring as a KFP v2 pipeline, for Vertex AI Pipelines (schedule it like the training pipeline).

  python -m monitoring.pipeline compile --profile configs/vertex-prod.yaml   (make compile-monitoring)

Step 1 runs the same monitoring as `make monitor` (on Vertex, `monitoring.log_path`
is the endpoint's request-response logging table, bq://...); step 2 applies the
retraining policy's decision: it submits the training pipeline on `data_root`
with the reasons as a label, or does nothing. The steps run in the pipeline image.
(No `from __future__ import annotations`: KFP reads the step signatures' types.)
"""

import sys

from kfp import dsl

from pipelines import kfp_compile


def _monitor(profile: str, labels: str) -> str:
    import json

    from monitoring import run
    from settings.config import load_config

    result = run.monitor(load_config(profile), labels or None)
    return json.dumps(result["retraining"])


def _retrain(profile: str, decision_json: str, data_root: str, template: str) -> str:
    import json

    from pipelines import vertex
    from settings.config import load_config

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
    return kfp_compile.compile_for_image(build_pipeline, image, output)


def main(argv: list[str] | None = None) -> int:
    return kfp_compile.main(build_pipeline, "build/vertex/monitoring.yaml", __doc__, argv)


if __name__ == "__main__":
    sys.exit(main())
