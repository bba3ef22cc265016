"""Safe rollout on Vertex AI as a KFP v2 pipeline: register -> canary -> observe -> promote or roll back.

  python -m pipelines.canary compile --profile configs/vertex-dev.yaml   (make compile-canary)

1. Upload the pushed model to the Model Registry as a new version of one model
   (`parent_model`), served by the project's own server image (Vertex custom
   container: same request JSON, same validation as `make serve`).
2. Deploy it to the endpoint next to the current model with `canary_percent` of the traffic.
3. Observe both for `observe_minutes`: requests, 5xx, p95 latency per deployed model
   from Cloud Monitoring.
4. `serving.rollout.decide` (plain Python, unit-tested on recorded metrics) says
   promote or roll back; promote gives the canary 100 % and undeploys the old
   model, roll back undeploys the canary. Both record why.

Each step runs in the pipeline image; the Google Cloud calls are in the step bodies.
(No `from __future__ import annotations` here: KFP reads the step signatures' types.)
"""

import sys

from kfp import dsl

from pipelines import kfp_compile


def _upload(project: str, region: str, display_name: str, artifact_uri: str, serving_image: str,
            labels_json: str) -> str:  # fmt: skip
    import json

    from google.cloud import aiplatform

    from pipelines.canary import model_upload_settings

    aiplatform.init(project=project, location=region)
    existing = aiplatform.Model.list(filter=f'display_name="{display_name}"')
    model = aiplatform.Model.upload(
        **model_upload_settings(artifact_uri, json.loads(labels_json)),
        display_name=display_name,
        parent_model=existing[0].resource_name if existing else None,
        is_default_version=False,  # becomes the default only when promoted
        artifact_uri=artifact_uri,
        serving_container_image_uri=serving_image,
        serving_container_command=["python", "-m", "serving.server", "--host", "0.0.0.0"],
        serving_container_predict_route="/predict",
        serving_container_health_route="/health",
        serving_container_ports=[8080],
    )
    return model.versioned_resource_name


def model_upload_settings(model_dir: str, labels: dict[str, str]) -> dict:
    """`Model.upload` arguments read from the model's own files: labels with the code commit and
    data span it came from, a version description, and the Explainable AI metadata and
    parameters the Trainer wrote (so Vertex AI can explain its predictions)."""
    import json
    import os

    import tensorflow as tf
    from google.cloud.aiplatform import explain

    from models.trainer import CONTRACT_DIR, EXPLANATION_FILE, METADATA_FILE

    def read(name: str) -> dict:
        path = os.path.join(model_dir, CONTRACT_DIR, name)
        if not tf.io.gfile.exists(path):
            return {}
        with tf.io.gfile.GFile(path) as f:
            return json.load(f)

    metadata, spec = read(METADATA_FILE), read(EXPLANATION_FILE)
    commit = str(metadata.get("code_commit", "unknown"))
    spans = "-".join(str(s) for s in metadata.get("data_span", [])) or "none"
    settings: dict = {
        "labels": {**labels, "code_commit": _label(commit), "data_span": _label(spans)},
        "version_description": f"commit {commit}, data span {spans}",
    }
    if spec:
        settings["explanation_metadata"] = explain.ExplanationMetadata(spec["metadata"])
        settings["explanation_parameters"] = explain.ExplanationParameters(spec["parameters"])
    return settings


def _label(value: str) -> str:
    """A valid Vertex label value: lowercase letters, digits, - and _, at most 63 characters."""
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in value.lower())[:63]


def _deploy_canary(project: str, region: str, endpoint_name: str, model_name: str, canary_percent: int,
                   machine_type: str, min_replicas: int, max_replicas: int) -> str:  # fmt: skip
    from google.cloud import aiplatform

    aiplatform.init(project=project, location=region)
    endpoints = aiplatform.Endpoint.list(filter=f'display_name="{endpoint_name}"')
    endpoint = endpoints[0] if endpoints else aiplatform.Endpoint.create(display_name=endpoint_name)
    first = not endpoint.list_models()
    endpoint.deploy(
        model=aiplatform.Model(model_name),
        traffic_percentage=100 if first else canary_percent,
        machine_type=machine_type,
        min_replica_count=min_replicas,
        max_replica_count=max_replicas,
    )
    deployed = sorted(endpoint.list_models(), key=lambda m: m.create_time)[-1]
    return f"{endpoint.resource_name}|{deployed.id}"


def _observe_and_decide(project: str, deployment: str, observe_minutes: int, policy_json: str) -> str:
    import json
    import time

    from google.cloud import aiplatform, monitoring_v3

    from serving import rollout

    endpoint_name, canary_id = deployment.split("|")
    endpoint = aiplatform.Endpoint(endpoint_name)
    others = [m.id for m in endpoint.list_models() if m.id != canary_id]
    if not others:
        return rollout.Decision("promote", ["first model on the endpoint: nothing to compare with"]).to_json()
    time.sleep(observe_minutes * 60)
    end = int(time.time())
    start = end - observe_minutes * 60
    client = monitoring_v3.MetricServiceClient()

    def window(deployed_id: str) -> rollout.WindowMetrics:
        queries = rollout.metrics_queries(project, endpoint_name.split("/")[-1], deployed_id, start, end)
        totals = {}
        for name, request in queries.items():
            points = [p for series in client.list_time_series(request=request) for p in series.points]
            if name == "latency":
                totals[name] = max((p.value.double_value for p in points), default=0.0)
            else:
                totals[name] = sum(p.value.int64_value for p in points)
        return rollout.WindowMetrics(totals["requests"], totals["errors"], totals["latency"], float("nan"))

    decision = rollout.decide(window(canary_id), window(others[0]), rollout.CanaryPolicy(**json.loads(policy_json)))
    return decision.to_json()


def _apply(deployment: str, decision_json: str) -> str:
    import json

    from google.cloud import aiplatform

    endpoint_name, canary_id = deployment.split("|")
    endpoint = aiplatform.Endpoint(endpoint_name)
    decision = json.loads(decision_json)
    others = [m.id for m in endpoint.list_models() if m.id != canary_id]
    if decision["action"] == "promote":
        endpoint.update(traffic_split={canary_id: 100})
        for deployed_id in others:
            endpoint.undeploy(deployed_model_id=deployed_id)
    else:
        endpoint.undeploy(deployed_model_id=canary_id)
    print(json.dumps({"event": "rollout", **decision, "canary": canary_id}))
    return decision["action"]


def build_pipeline(image: str):
    """The rollout pipeline with every step in `image` (the project's pipeline image)."""
    upload = dsl.component(_upload, base_image=image)
    deploy = dsl.component(_deploy_canary, base_image=image)
    observe = dsl.component(_observe_and_decide, base_image=image)
    apply = dsl.component(_apply, base_image=image)

    @dsl.pipeline(name="canary-rollout", description="Register, canary, observe, promote or roll back")
    def canary_rollout(
        project: str,
        region: str,
        model_display_name: str,
        artifact_uri: str,
        endpoint_name: str,
        labels_json: str = "{}",
        canary_percent: int = 10,
        observe_minutes: int = 60,
        machine_type: str = "n1-standard-2",
        min_replicas: int = 1,
        max_replicas: int = 3,
        policy_json: str = "{}",
    ):
        registered = upload(
            project=project, region=region, display_name=model_display_name, artifact_uri=artifact_uri,
            serving_image=image, labels_json=labels_json,
        )  # fmt: skip
        deployed = deploy(
            project=project, region=region, endpoint_name=endpoint_name, model_name=registered.output,
            canary_percent=canary_percent, machine_type=machine_type, min_replicas=min_replicas,
            max_replicas=max_replicas,
        )  # fmt: skip
        decision = observe(
            project=project, deployment=deployed.output, observe_minutes=observe_minutes, policy_json=policy_json
        )
        apply(deployment=deployed.output, decision_json=decision.output)

    return canary_rollout


def compile_rollout(image: str, output: str) -> str:
    return kfp_compile.compile_for_image(build_pipeline, image, output)


def main(argv: list[str] | None = None) -> int:
    return kfp_compile.main(build_pipeline, "build/vertex/canary-rollout.yaml", __doc__, argv)


if __name__ == "__main__":
    sys.exit(main())
