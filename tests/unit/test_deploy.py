"""Deployment files checked offline: IAM roles against the profiles, the setup plan, and the
new-data trigger as it is bundled (without TFX)."""

import json
import os
import subprocess
import sys

import pytest

from deploy import gcp_setup
from pipelines import vertex
from settings.config import load_config
from tests.conftest import REPO

pytestmark = pytest.mark.cloud

PROFILES = [os.path.join(REPO, "configs", n) for n in ("vertex-dev.yaml", "vertex-prod.yaml")]


@pytest.mark.parametrize("profile", PROFILES, ids=os.path.basename)
def test_iam_roles_cover_what_the_profile_uses(profile):
    config = load_config(profile)
    iam = gcp_setup.load_iam()
    runner = set(gcp_setup.roles_for(config, "pipeline-runner", iam))
    assert config.vertex.service_account.startswith("pipeline-runner@")
    assert {"roles/aiplatform.user", "roles/storage.objectAdmin", "roles/artifactregistry.reader"} <= runner
    needs = {
        "roles/bigquery.jobUser": config.data.format == "bigquery",
        "roles/dataflow.worker": config.vertex.dataflow is not None,
        "roles/cloudkms.cryptoKeyEncrypterDecrypter": bool(config.vertex.encryption_key),
        "roles/compute.networkUser": bool(config.vertex.network),
    }
    for role, needed in needs.items():
        assert (role in runner) == needed, role  # granted exactly when the profile uses it
    assert not any(r in runner for r in ("roles/owner", "roles/editor", "roles/aiplatform.admin"))
    build = set(gcp_setup.roles_for(config, "cloud-build", iam))
    assert "roles/artifactregistry.writer" in build and "roles/storage.admin" not in build


@pytest.mark.parametrize("profile", PROFILES, ids=os.path.basename)
def test_setup_plan_creates_what_the_profile_names(profile):
    config = load_config(profile)
    cmds = [" ".join(c) for c in gcp_setup.commands(config)]
    v = config.vertex
    bucket = config.pipeline.root.split("/")[2]
    assert any(c.startswith(f"gcloud storage buckets create gs://{bucket} --location {v.region}") for c in cmds)
    assert any(f"artifacts repositories create {v.image.split('/')[2]} --repository-format docker" in c for c in cmds)
    assert any("--repository-format kfp" in c for c in cmds)
    for role in gcp_setup.roles_for(config, "pipeline-runner", gcp_setup.load_iam()):
        assert f"--member serviceAccount:{v.service_account} --role {role} --condition None" in " | ".join(cmds)
    if v.encryption_key:
        assert all(f"--default-encryption-key {v.encryption_key}" in c for c in cmds if "buckets create" in c)
    trigger = [c for c in cmds if "functions deploy" in c]
    assert bool(trigger) == (config.data.format == "csv")


def test_trigger_submits_one_run_per_span(tmp_path):
    profile = os.path.join(REPO, "configs", "vertex-dev.yaml")
    config = load_config(profile)
    template = str(tmp_path / "t.json")
    vertex.compile_pipeline(config, template)
    bundle = tmp_path / "trigger"
    subprocess.run(["make", "-s", "trigger-bundle"], cwd=REPO, check=True)
    subprocess.run(["cp", "-r", os.path.join(REPO, "build", "trigger"), str(bundle)], check=True)
    # The bundle runs without TFX (only aiplatform + PyYAML are deployed with it) and with
    # none of the checkout on the path.
    script = f"""
import json, sys
sys.modules["tfx"] = None
sys.path.insert(0, {str(bundle)!r})
import main
env = {{"PIPELINE_PROFILE": "configs/vertex-dev.yaml", "PIPELINE_TEMPLATE": {template!r}, "PIPELINE_DRY_RUN": "1"}}
out = []
for name in ["taxi/span-7/part-0.csv", "taxi/span-7/_SUCCESS", "other/span-1/_SUCCESS", "taxi/span-7/_SUCCESS"]:
    out.append(main.handle({{"bucket": "example-mlops-dev-data", "name": name}}, env))
print(json.dumps(out))
"""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run([sys.executable, "-c", script], cwd=bundle, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    data_file, marker, elsewhere, again = json.loads(result.stdout.strip().splitlines()[-1])
    assert data_file is None and elsewhere is None  # only a span's marker under data.path starts a run
    job = marker["pipelineJob"]
    assert job["runtimeConfig"]["parameterValues"]["data_root"] == "gs://example-mlops-dev-data/taxi/span-7"
    assert job["labels"]["trigger"] == "gcs-new-span"
    assert job["serviceAccount"] == config.vertex.service_account
    assert again["pipelineJobId"] == marker["pipelineJobId"]  # a redelivered event is the same job: no second run
