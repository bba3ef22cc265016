"""Where each Beam step runs: the configured local runner, or Dataflow by profile. No TFX import: batch
and stream prediction start without it."""

from __future__ import annotations

import os

from pipelines.custom_configs import MODEL_CODE_DIR
from settings.config import Config

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
