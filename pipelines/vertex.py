"""Vertex AI Pipelines: compile the pipeline for a profile, upload it, run it, schedule it.

  python -m pipelines.vertex compile  --profile configs/vertex-dev.yaml [--image URI:TAG]
  python -m pipelines.vertex upload   --profile configs/vertex-dev.yaml --tag v1 [--dry-run]
  python -m pipelines.vertex submit   --profile configs/vertex-dev.yaml [--param data_root=gs://...] [--dry-run]
  python -m pipelines.vertex schedule --profile configs/vertex-prod.yaml [--dry-run]

The profile (`configs/vertex-*.yaml`) extends the problem's config and adds a
`vertex:` section: project, region, image, service account, CMEK key, network,
labels, Vertex training/tuning machines, Dataflow and the schedule. It is
validated before anything is compiled or sent. `--dry-run` prints the exact
request body the Vertex AI API would receive and needs no credentials.

Only `compile` imports TFX; the rest needs google-cloud-aiplatform and PyYAML,
so the new-data trigger (`triggers/`) can deploy with just those.
"""

from __future__ import annotations

import datetime
import json
import os
import sys
from typing import Any

from settings import entry
from settings.config import Config, ConfigError

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STAGED_SCHEMAS = "staged-schemas"  # under vertex.image_workdir; the Dockerfile fills it


def template_file(config: Config) -> str:
    """Where `compile` writes the pipeline for this profile: build/vertex/<profile>.json."""
    profile = os.path.splitext(os.path.basename(config.source))[0]
    return os.path.join(REPO_ROOT, "build", "vertex", f"{profile}.json")


def for_image(config: Config) -> Config:
    """The config as the containers see it: the curated schema at its staged path in the image."""
    from tables import schema_staging

    v = _vertex(config)
    data = config.data
    if data.schema:
        if not data.schema.startswith(REPO_ROOT + os.sep):
            raise ConfigError(f"{config.source}: 'data.schema' must be a file in the repository to be in the image")
        data = data.replace(schema=schema_staging.staged_path(data.schema, f"{v.image_workdir}/{STAGED_SCHEMAS}"))
    return config.replace(data=data)


def compile_pipeline(config: Config, output: str) -> dict:
    """Writes the KFP v2 pipeline (PipelineJob JSON) for `config`'s profile; returns it."""
    from tfx import v1 as tfx

    from pipelines.pipeline import create_pipeline

    config = for_image(config)
    runner = tfx.orchestration.experimental.KubeflowV2DagRunner(
        config=tfx.orchestration.experimental.KubeflowV2DagRunnerConfig(
            display_name=config.pipeline.name, default_image=config.vertex.image, use_pipeline_spec_2_1=True
        ),
        output_dir=os.path.dirname(os.path.abspath(output)),
        output_filename=os.path.basename(output),
    )
    pipeline = create_pipeline(config, runtime_parameters=True)
    defaults = {p.name: p.default for c in pipeline.components for p in _runtime_parameters(c) if p.default is not None}
    job = runner.run(pipeline, parameter_values=defaults, write_out=False)
    _filter_resolvers_by_producer(job, pipeline)
    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    with open(output, "w", encoding="utf-8") as f:
        json.dump(job, f, sort_keys=True)  # as the runner writes it
    return job


def _filter_resolvers_by_producer(job: dict, pipeline) -> None:
    """Adds to each compiled resolver query the producer its channel names (components/produced_by.py): the
    compiler drops it. A resolver `R` compiles to the task `R` or the tasks `R-...`, one query per input key."""
    from tfx.dsl.components.common import resolver

    from components import produced_by

    spec = job["pipelineSpec"]
    executors = spec["deploymentSpec"]["executors"]
    compiled = {task: executors[spec["components"][body["componentRef"]["name"]]["executorLabel"]]
                for task, body in spec["root"]["dag"]["tasks"].items()}  # fmt: skip
    for node in pipeline.components:
        if not isinstance(node, resolver.Resolver):
            continue
        tasks = [e for task, e in compiled.items() if task == node.id or task.startswith(f"{node.id}-")]
        for key, channel in node.raw_inputs.items():
            if not getattr(channel, "producer_component_id", None):
                continue
            queries = [e["resolver"]["outputArtifactQueries"][key] for e in tasks
                       if key in e.get("resolver", {}).get("outputArtifactQueries", {})]  # fmt: skip
            if len(queries) != 1:
                raise RuntimeError(f"{node.id}: {len(queries)} compiled queries for input {key!r}, expected one")
            queries[0]["filter"] += " AND " + produced_by.clause(channel.producer_component_id, channel.output_key)


def _runtime_parameters(component) -> list:
    from tfx import v1 as tfx

    return [v for v in component.exec_properties.values() if isinstance(v, tfx.dsl.experimental.RuntimeParameter)]


def pipeline_job(config: Config, template: str, parameters: dict[str, Any] | None = None,
                 job_id: str | None = None, credentials=None, labels: dict[str, str] | None = None):  # fmt: skip
    """A `google.cloud.aiplatform.PipelineJob` for the profile; nothing is sent."""
    from google.cloud import aiplatform

    v = _vertex(config)
    return aiplatform.PipelineJob(
        display_name=config.pipeline.name,
        template_path=template,
        job_id=job_id or f"{config.pipeline.name}-{datetime.datetime.now(datetime.UTC):%Y%m%d%H%M%S}",
        pipeline_root=config.pipeline.root,
        parameter_values=parameters or {},
        enable_caching=config.pipeline.enable_cache,
        encryption_spec_key_name=v.encryption_key,
        labels={**v.labels, **(labels or {})},
        credentials=credentials,
        project=v.project,
        location=v.region,
    )


def submit_request(config: Config, job) -> Any:
    """The CreatePipelineJobRequest that `job.submit(service_account, network)` sends."""
    from google.cloud.aiplatform_v1.types import CreatePipelineJobRequest

    v = _vertex(config)
    body = _copy(job._gca_resource)
    body.service_account = v.service_account
    if v.network:
        body.network = v.network
    return CreatePipelineJobRequest(parent=job._parent, pipeline_job=body, pipeline_job_id=job.job_id)


def submit(config: Config, template: str, parameters: dict[str, Any] | None = None, dry_run: bool = False,
           labels: dict[str, str] | None = None, job_id: str | None = None, credentials=None) -> dict:  # fmt: skip
    """Starts a run (or, with `dry_run`, only returns its request body as a dict)."""
    if dry_run:
        credentials = credentials or _anonymous()
    job = pipeline_job(config, template, parameters, job_id=job_id, credentials=credentials, labels=labels)
    request = submit_request(config, job)
    v = _vertex(config)
    if not dry_run:
        job.submit(service_account=v.service_account, network=v.network, experiment=v.experiment)
    result = _to_dict(request)
    if v.experiment:
        result["experiment"] = _to_dict(experiment_request(config))
    return result


def experiment_request(config: Config) -> Any:
    """The Vertex ML Metadata context of the profile's experiment, which `submit(experiment=...)`
    creates if missing and adds each pipeline run to: its parameters and metrics then appear
    side by side in the Experiments table."""
    from google.cloud.aiplatform_v1.types import Context, CreateContextRequest

    v = _vertex(config)
    return CreateContextRequest(
        parent=f"projects/{v.project}/locations/{v.region}/metadataStores/default",
        context=Context(display_name=v.experiment, schema_title="system.Experiment"),
        context_id=v.experiment,
    )


def schedule(config: Config, template: str, dry_run: bool = False, credentials=None) -> dict:
    """Creates the profile's cron schedule, or updates the one of the same name."""
    from google.cloud import aiplatform

    v = _vertex(config)
    if v.schedule is None:
        raise ConfigError(f"{config.source}: no 'vertex.schedule' to create")
    if dry_run:
        credentials = credentials or _anonymous()
    job = pipeline_job(config, template, credentials=credentials)
    name = f"{config.pipeline.name}-schedule"
    sched = aiplatform.PipelineJobSchedule(
        pipeline_job=job, display_name=name, credentials=credentials, project=v.project, location=v.region
    )
    body = schedule_body(config, sched)
    if dry_run:
        return {"parent": sched._parent, "schedule": _to_dict(body)}
    existing = aiplatform.PipelineJobSchedule.list(
        filter=f'display_name="{name}"', project=v.project, location=v.region, credentials=credentials
    )
    if existing:
        s = v.schedule
        existing[0].update(cron=s.cron, max_concurrent_run_count=s.max_concurrent_run_count,
                           max_run_count=s.max_run_count)  # fmt: skip
        return {"updated": existing[0].resource_name, "schedule": _to_dict(body)}
    sched.create(
        cron=v.schedule.cron,
        max_concurrent_run_count=v.schedule.max_concurrent_run_count,
        max_run_count=v.schedule.max_run_count,
        service_account=v.service_account,
        network=v.network,
    )
    return {"created": sched.resource_name, "schedule": _to_dict(body)}


def schedule_body(config: Config, sched) -> Any:
    """The Schedule that `PipelineJobSchedule.create(...)` sends, built from the profile."""
    v = _vertex(config)
    body = _copy(sched._gca_resource)
    body.cron = v.schedule.cron
    body.max_concurrent_run_count = v.schedule.max_concurrent_run_count
    if v.schedule.max_run_count:
        body.max_run_count = v.schedule.max_run_count
    body.create_pipeline_job_request.pipeline_job.service_account = v.service_account
    if v.network:
        body.create_pipeline_job_request.pipeline_job.network = v.network
    return body


def upload(config: Config, template: str, tags: list[str], dry_run: bool = False) -> dict:
    """Uploads the compiled template to the profile's Artifact Registry KFP repository."""
    v = _vertex(config)
    if not v.template_repository:
        raise ConfigError(f"{config.source}: no 'vertex.template_repository' to upload to")
    request = {"host": v.template_repository, "file": template, "tags": tags}
    if dry_run:
        return request
    from kfp.registry import RegistryClient

    client = RegistryClient(host=v.template_repository)
    package, version = client.upload_pipeline(file_name=template, tags=tags)
    return {**request, "package": package, "version": version}


VERTEX_ONLY_MARKERS = ("google_cloud_ai_platform", "ai_platform_enable_vertex", "google_cloud_pipeline_components")
KFP_EXECUTOR_KINDS = {"container", "importer", "resolver"}


def vertex_only_features(pipeline_job_json: dict) -> list[str]:
    """What in a compiled pipeline needs Vertex AI rather than any KFP v2 backend.

    Empty means the file is plain KFP v2 IR that open-source Kubeflow Pipelines runs
    as well (Dataflow and BigQuery are Google Cloud services, callable from any cluster).
    """
    found = []
    spec = pipeline_job_json["pipelineSpec"]
    for name, executor in sorted(spec["deploymentSpec"]["executors"].items()):
        kinds = set(executor) - KFP_EXECUTOR_KINDS
        if kinds:
            found.append(f"{name}: executor kind {sorted(kinds)}")
        text = json.dumps(executor)
        found += [f"{name}: {m}" for m in VERTEX_ONLY_MARKERS if m in text]
    for task, body in sorted(spec["root"]["dag"]["tasks"].items()):
        text = json.dumps(body)
        found += [f"{task}: {m}" for m in VERTEX_ONLY_MARKERS if m in text]
    return found


def _vertex(config: Config):
    if config.vertex is None:
        raise ConfigError(f"{config.source}: not a deployment profile (no 'vertex' section)")
    return config.vertex


def _anonymous():
    from google.auth.credentials import AnonymousCredentials

    return AnonymousCredentials()


def _copy(message):
    cls = type(message)
    return cls.deserialize(cls.serialize(message))


def _to_dict(message) -> dict:
    return json.loads(type(message).to_json(message, preserving_proto_field_name=False))


def _parameters(pairs: list[str]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"--param {pair!r} must be NAME=VALUE")
        out[key] = value
    return out


@entry.config_errors_exit
def main(argv: list[str] | None = None) -> int:
    parser = entry.parser(__doc__, None, flag="--profile", help="configs/vertex-*.yaml")
    parser.add_argument("command", choices=["compile", "upload", "submit", "schedule"])
    parser.add_argument("--image", help="override vertex.image (e.g. the image tagged with the commit)")
    parser.add_argument("--template", help="compiled pipeline file or Artifact Registry URL (default: build/vertex/)")
    parser.add_argument("--param", action="append", default=[], help="pipeline parameter NAME=VALUE")
    parser.add_argument("--tag", action="append", default=[], help="template tag for upload")
    parser.add_argument("--dry-run", action="store_true", help="print the request; send nothing")
    args = parser.parse_args(argv)
    config = entry.load(args, {"vertex": {"image": args.image}} if args.image else None)
    _vertex(config)
    template = args.template or template_file(config)
    if args.command != "compile" and "://" not in template and not os.path.exists(template):
        raise ConfigError(f"{template} does not exist: run `make compile PROFILE={args.profile}` first")
    if args.command == "compile":
        compiled = compile_pipeline(config, template)
        result: dict = {
            "compiled": template,
            "image": config.vertex.image,
            "vertex_only": vertex_only_features(compiled) or "none: plain KFP v2, runs on any KFP backend",
        }
    elif args.command == "upload":
        result = upload(config, template, args.tag or ["latest"], args.dry_run)
    elif args.command == "submit":
        result = submit(config, template, _parameters(args.param), args.dry_run)
    else:
        result = schedule(config, template, args.dry_run)
    print(json.dumps(result, indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
