"""The rules of a deployment profile (`vertex:`), checked before anything is compiled or sent to Google Cloud."""

from __future__ import annotations

import re

from settings.sections import ConfigError, MachineConfig, VertexConfig

_REGION = re.compile(r"^[a-z]+-[a-z]+[0-9]+$")
_PROJECT = re.compile(r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$")
_SERVICE_ACCOUNT = re.compile(r"^[a-z0-9-]+@[a-z0-9-]+\.iam\.gserviceaccount\.com$")
_KMS_KEY = re.compile(r"^projects/[^/]+/locations/[^/]+/keyRings/[^/]+/cryptoKeys/[^/]+$")
_NETWORK = re.compile(r"^projects/[0-9]+/global/networks/[a-z0-9-]+$")
_LABEL = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
_LABEL_VALUE = re.compile(r"^[a-z0-9_-]{0,63}$")


def check_profile(v: VertexConfig, gcs: dict[str, str], path: str) -> None:
    """`vertex:` as Vertex AI takes it; `gcs`: the keys (by name) that must be gs:// paths there."""
    if not _PROJECT.match(v.project):
        raise ConfigError(f"{path}: 'vertex.project' {v.project!r} is not a valid project id")
    if not _REGION.match(v.region):
        raise ConfigError(f"{path}: 'vertex.region' {v.region!r} is not a region such as us-central1")
    tail = v.image.rsplit("/", 1)[-1]
    if "@sha256:" not in tail and ":" not in tail:
        raise ConfigError(f"{path}: 'vertex.image' {v.image!r} has no tag or digest (e.g. ...:v1 or ...@sha256:...)")
    if not _SERVICE_ACCOUNT.match(v.service_account):
        raise ConfigError(
            f"{path}: 'vertex.service_account' {v.service_account!r} is not a service account e-mail "
            "(NAME@PROJECT.iam.gserviceaccount.com)"
        )
    if v.encryption_key and not _KMS_KEY.match(v.encryption_key):
        raise ConfigError(
            f"{path}: 'vertex.encryption_key' must be projects/P/locations/L/keyRings/R/cryptoKeys/K, "
            f"got {v.encryption_key!r}"
        )
    if v.network and not _NETWORK.match(v.network):
        raise ConfigError(
            f"{path}: 'vertex.network' must be projects/PROJECT_NUMBER/global/networks/NAME, got {v.network!r}"
        )
    for key, value in v.labels.items():
        if not _LABEL.match(key) or not _LABEL_VALUE.match(value):
            raise ConfigError(f"{path}: 'vertex.labels' {key}={value!r} is not a valid label (lowercase, digits, _-)")
    if v.experiment is not None and not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,127}", v.experiment):
        raise ConfigError(f"{path}: 'vertex.experiment' {v.experiment!r} must be lowercase letters, digits and -")
    if v.dataflow:
        if v.dataflow.region and not _REGION.match(v.dataflow.region):
            raise ConfigError(f"{path}: 'vertex.dataflow.region' {v.dataflow.region!r} is not a region")
        if v.dataflow.max_num_workers < 1:
            raise ConfigError(f"{path}: 'vertex.dataflow.max_num_workers' must be at least 1")
    for key, value in gcs.items():
        if not value.startswith("gs://"):
            raise ConfigError(f"{path}: '{key}' must be a gs:// path on Vertex AI, got {value!r}")
    for name, machine in (("training", v.training), ("tuning", v.tuning)):
        if machine is not None:
            check_machine(machine, f"vertex.{name}", path)
    if v.schedule:
        fields = v.schedule.cron.split()
        if fields and fields[0].startswith(("TZ=", "CRON_TZ=")):
            fields = fields[1:]
        if len(fields) != 5:
            raise ConfigError(f"{path}: 'vertex.schedule.cron' {v.schedule.cron!r} must have 5 fields")
        if v.schedule.max_concurrent_run_count < 1:
            raise ConfigError(f"{path}: 'vertex.schedule.max_concurrent_run_count' must be at least 1")


def check_machine(m: MachineConfig, key: str, path: str) -> None:
    from google.cloud.aiplatform_v1.types import AcceleratorType

    if m.replica_count < 1:
        raise ConfigError(f"{path}: '{key}.replica_count' must be at least 1, got {m.replica_count}")
    if m.accelerator_type is None:
        if m.accelerator_count:
            raise ConfigError(f"{path}: '{key}.accelerator_count' is set but '{key}.accelerator_type' is not")
        return
    known = [a.name for a in AcceleratorType if a.name != "ACCELERATOR_TYPE_UNSPECIFIED"]
    if m.accelerator_type not in known:
        raise ConfigError(
            f"{path}: '{key}.accelerator_type' {m.accelerator_type!r} is not a Vertex AI accelerator "
            f"(e.g. NVIDIA_TESLA_T4, NVIDIA_L4, TPU_V3)"
        )
    if m.accelerator_count < 1:
        raise ConfigError(f"{path}: '{key}.accelerator_type' {m.accelerator_type} needs '{key}.accelerator_count' >= 1")
