"""Where the Trainer and Tuner run on Vertex AI: their CustomJob settings (Beam's args are in
`pipelines.beam_options`)."""

from __future__ import annotations

from tfx import v1 as tfx

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
