"""cloudbuild.yaml as the tests read it: its steps, with Cloud Build's substitutions filled in.

Shared by tests/e2e/test_cloudbuild.py (the steps run in a copy of the checkout) and
tests/e2e/test_image.py (the same steps run inside the built image). Plain Python and PyYAML
only: the image test runs on the host, outside the project's environment."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess

import yaml

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Steps that call Google Cloud or need a Docker engine; everything else runs in the tests.
NEEDS_CLOUD = {"build-image", "push-image", "upload-template", "submit-run"}
SUBSTITUTIONS = {"PROJECT_ID": "example-mlops-dev", "SHORT_SHA": "abc1234", "COMMIT_SHA": "abc1234" + "0" * 33}
IMAGE = "us-central1-docker.pkg.dev/example-mlops-dev/mlops/tfx-pipeline:abc1234"  # what build-image tags


def load() -> dict:
    with open(os.path.join(REPO, "cloudbuild.yaml")) as f:
        return yaml.safe_load(f)


def substitute(text: str, values: dict[str, str]) -> str:
    def one(m: re.Match) -> str:
        name = m.group(1)
        if name not in values:
            raise AssertionError(f"cloudbuild.yaml uses ${{{name}}}, which has no value")
        return values[name]

    return re.sub(r"\$\{([A-Z_]+)\}", one, text)


def values(build: dict) -> dict[str, str]:
    return {**SUBSTITUTIONS, **build["substitutions"]}


def built_image(build: dict) -> str:
    """The tag the build-image step gives the image (`docker build --tag NAME .`)."""
    args = build["steps"][0]["args"]
    return substitute(args[args.index("--tag") + 1], values(build))


def runnable_steps(build: dict) -> list[tuple[str, list[str], dict[str, str]]]:
    """(id, command, env) of each step that needs neither Google Cloud nor a Docker engine, as
    Cloud Build runs it: entrypoint + args, and the step's env, substituted."""
    steps = []
    for step in build["steps"]:
        if step["id"] in NEEDS_CLOUD:
            continue
        command = [substitute(step["entrypoint"], values(build))] + [substitute(a, values(build)) for a in step["args"]]
        env = dict(substitute(e, values(build)).split("=", 1) for e in step.get("env", []))
        steps.append((step["id"], command, env))
    return steps


def copy_checkout(workspace) -> None:
    """Cloud Build's /workspace: the checkout's tracked and not-ignored files, nothing built."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO, capture_output=True,
                           text=True, check=True).stdout.split()  # fmt: skip
    for name in files:
        if os.path.exists(os.path.join(REPO, name)):
            os.makedirs(os.path.join(workspace, os.path.dirname(name)), exist_ok=True)
            shutil.copy2(os.path.join(REPO, name), os.path.join(workspace, name))


def check_compiled(workspace) -> None:
    """The compiled pipeline names the image in every step and carries the commit Cloud Build built."""
    with open(os.path.join(workspace, "build", "vertex", "vertex-dev.json")) as f:
        compiled = json.load(f)
    images = {e["container"]["image"] for e in compiled["pipelineSpec"]["deploymentSpec"]["executors"].values()
              if "container" in e}  # fmt: skip
    assert images == {IMAGE}
    # the Trainer's custom_config carries the commit Cloud Build built (the image has no .git)
    assert re.search(r"code_commit\W+" + SUBSTITUTIONS["COMMIT_SHA"], json.dumps(compiled))
