"""The one-time Google Cloud setup for a profile, as the gcloud commands that do it.

  python -m deploy.gcp_setup --profile configs/vertex-dev.yaml > setup.sh && bash -ex setup.sh

(`deploy/setup_gcp.sh PROFILE` does both.) It enables the APIs, creates the
buckets, the Artifact Registry repositories (Docker image and KFP templates),
the service accounts with the roles in deploy/iam.yaml that the profile needs,
uploads the sample data, and deploys the new-data trigger. Re-running it is
safe: "already exists" errors are ignored.
"""

from __future__ import annotations

import os
import shlex
import sys

import yaml

from settings import entry
from settings.config import Config, ConfigError

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IAM_FILE = os.path.join(REPO_ROOT, "deploy", "iam.yaml")
APIS = (
    "aiplatform.googleapis.com", "artifactregistry.googleapis.com", "cloudbuild.googleapis.com",
    "storage.googleapis.com", "iam.googleapis.com", "logging.googleapis.com",
    "cloudfunctions.googleapis.com", "run.googleapis.com", "eventarc.googleapis.com",
)  # fmt: skip


def load_iam(path: str = IAM_FILE) -> dict:
    with open(path) as f:
        return yaml.safe_load(f)["service_accounts"]


def roles_for(config: Config, account: str, iam: dict) -> list[str]:
    """The roles `account` needs for this profile: its base roles plus those the profile's features add."""
    entry = iam[account]
    roles = list(entry["roles"])
    v = config.vertex
    active = {
        "data.format=bigquery": config.data.format == "bigquery",
        "vertex.dataflow": v.dataflow is not None,
        "vertex.encryption_key": bool(v.encryption_key),
        "vertex.network": bool(v.network),
    }
    for feature, extra in (entry.get("when") or {}).items():
        if feature not in active:
            raise ConfigError(f"{IAM_FILE}: unknown condition {feature!r} for {account}")
        if active[feature]:
            roles += extra
    return roles


def service_account_email(config: Config, account: str) -> str:
    if account == "pipeline-runner":
        return config.vertex.service_account
    return f"{account}@{config.vertex.project}.iam.gserviceaccount.com"


def buckets(config: Config) -> list[str]:
    v = config.vertex
    paths = [config.pipeline.root, config.pipeline.serving_dir]
    if config.data.format != "bigquery":
        paths.append(config.data.path)
    if v.dataflow:
        paths.append(v.dataflow.temp_location)
    return sorted({"gs://" + p[len("gs://") :].split("/", 1)[0] for p in paths})


def commands(config: Config, iam: dict | None = None) -> list[list[str]]:
    """The gcloud / gsutil commands, in order."""
    iam = iam or load_iam()
    v = config.vertex
    if v is None:
        raise ConfigError(f"{config.source}: not a deployment profile (no 'vertex' section)")
    project = ["--project", v.project]
    out = [["gcloud", "services", "enable", *APIS, *project]]
    for bucket in buckets(config):
        cmd = ["gcloud", "storage", "buckets", "create", bucket, "--location", v.region,
               "--uniform-bucket-level-access", *project]  # fmt: skip
        if v.encryption_key:
            cmd += ["--default-encryption-key", v.encryption_key]
        out.append(cmd)
    image_repo = v.image.split("/")[2]  # REGION-docker.pkg.dev/PROJECT/REPO/IMAGE:TAG
    out.append(["gcloud", "artifacts", "repositories", "create", image_repo, "--repository-format", "docker",
                "--location", v.region, *project])  # fmt: skip
    if v.template_repository:
        out.append(["gcloud", "artifacts", "repositories", "create", v.template_repository.rstrip("/").split("/")[-1],
                    "--repository-format", "kfp", "--location", v.region, *project])  # fmt: skip
    for account in iam:
        email = service_account_email(config, account)
        out.append(["gcloud", "iam", "service-accounts", "create", email.split("@")[0], *project])
        for role in roles_for(config, account, iam):
            out.append(["gcloud", "projects", "add-iam-policy-binding", v.project,
                        "--member", f"serviceAccount:{email}", "--role", role, "--condition", "None"])  # fmt: skip
    if config.data.format == "csv" and config.data.path.startswith("gs://"):
        out.append(["make", "-s", "smoke"])  # writes sample data to build/smoke/data
        out.append(["gcloud", "storage", "cp", "build/smoke/data/*.csv", f"{config.data.path}/span-0/"])
        out.append(["gcloud", "storage", "cp", "/dev/null", f"{config.data.path}/span-0/_SUCCESS"])
        out.append(_trigger_deploy(config))
    return out


def _trigger_deploy(config: Config) -> list[str]:
    v = config.vertex
    bucket = config.data.path[len("gs://") :].split("/", 1)[0]
    profile = os.path.relpath(config.source, REPO_ROOT)
    template = f"{v.template_repository}/{config.pipeline.name}/latest" if v.template_repository else ""
    return [
        "bash", "-c",
        f"make trigger-bundle && gcloud functions deploy {config.pipeline.name}-trigger --gen2 "
        f"--runtime python312 --region {v.region} --project {v.project} --source build/trigger "
        f"--entry-point on_new_data --trigger-bucket {bucket} "
        f"--service-account pipeline-trigger@{v.project}.iam.gserviceaccount.com "
        f"--set-env-vars PIPELINE_PROFILE={profile},PIPELINE_TEMPLATE={template}",
    ]  # fmt: skip


@entry.config_errors_exit
def main(argv: list[str] | None = None) -> int:
    parser = entry.parser(__doc__, None, flag="--profile")
    args = parser.parse_args(argv)
    config = entry.load(args)
    cmds = commands(config)
    print("# one-time setup for", os.path.relpath(config.source, REPO_ROOT))
    for cmd in cmds:
        line = shlex.join(cmd)
        ignore = " || true" if "create" in cmd else ""  # re-runs: the resource already exists
        print(line + ignore)
    return 0


if __name__ == "__main__":
    sys.exit(main())
