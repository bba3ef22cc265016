"""Where each step runs: Beam's args (local, or Dataflow by profile) and the Vertex AI CustomJob
settings of the Trainer and Tuner."""

from __future__ import annotations

import os

from tfx import v1 as tfx

from pipelines.custom_configs import MODEL_CODE_DIR
from settings.config import Config
from settings.sections import MachineConfig


def vertex_job_config(config: Config, machine: MachineConfig, args_key: str) -> dict:
    """custom_config entries that make a Trainer or Tuner run as a Vertex AI CustomJob.

    The job spec is Vertex's CustomJob (worker pool 0 is the chief; further replicas go
    to pool 1), run as the profile's service account, on its network, with its CMEK key.
    """
    v = config.vertex
    machine_spec: dict = {"machine_type": machine.machine_type}
    if machine.accelerator_type:
        machine_spec["accelerator_type"] = machine.accelerator_type
        machine_spec["accelerator_count"] = machine.accelerator_count
    container = {"image_uri": v.image}
    pools = [{"machine_spec": machine_spec, "replica_count": 1, "container_spec": container}]
    if machine.replica_count > 1:
        pools.append(
            {"machine_spec": machine_spec, "replica_count": machine.replica_count - 1, "container_spec": container}
        )
    job_spec: dict = {"worker_pool_specs": pools, "service_account": v.service_account}
    if v.network:
        job_spec["network"] = v.network
    job: dict = {"project": v.project, "job_spec": job_spec, "labels": dict(v.labels)}
    if v.encryption_key:
        job["encryption_spec"] = {"kms_key_name": v.encryption_key}
    return {
        tfx.extensions.google_cloud_ai_platform.ENABLE_VERTEX_KEY: True,
        tfx.extensions.google_cloud_ai_platform.VERTEX_REGION_KEY: v.region,
        args_key: job,
    }


DEPENDENCY_FLAGS = ("--extra_package", "--setup_file", "--requirements_file", "--sdk_container_image")


def beam_args(config: Config) -> list[str]:
    """The configured Beam args, or Dataflow's when the profile asks for it."""
    v = config.vertex
    if v is None or v.dataflow is None:
        args = list(config.pipeline.beam_args)
        if v is not None and config.data.format == "bigquery":
            args += [f"--project={v.project}", f"--temp_location={config.pipeline.root}/tmp"]
        if not any(a.startswith(DEPENDENCY_FLAGS) for a in args):
            # Beam runs in the step's own process, where the project is importable. Without a dependency
            # flag, TFX builds a 50 MB sdist of itself into /tmp for every Beam step and never removes it.
            root = v.image_workdir if v is not None else os.path.dirname(MODEL_CODE_DIR)
            args.append(f"--setup_file={root}/setup.py")
        return args
    d = v.dataflow
    args = [
        "--runner=DataflowRunner",
        f"--project={v.project}",
        f"--region={d.region or v.region}",
        f"--temp_location={d.temp_location}",
        f"--machine_type={d.machine_type}",
        f"--max_num_workers={d.max_num_workers}",
        f"--service_account_email={v.service_account}",
        f"--sdk_container_image={v.image}",  # the pipeline image carries the Beam SDK boot
        "--experiments=use_runner_v2",
    ]
    if d.subnetwork:
        args += [f"--subnetwork={d.subnetwork}", "--no_use_public_ips"]
    if v.encryption_key:
        args.append(f"--dataflow_kms_key={v.encryption_key}")
    args += [f"--labels={k}={val}" for k, val in sorted(v.labels.items())]
    return args
