"""cloudbuild.yaml cannot rot: its steps are parsed, their order checked, and every step
that needs neither Google Cloud nor a Docker engine is run here as written. The unit tests of
the lint-and-unit-tests step are the suite's own (the same environment runs them in this
session), so here that step's make targets are resolved and everything but the unit-test run
is executed; `make image-test` runs every step in full inside the built image."""

import glob
import json
import os
import re
import shutil
import subprocess

import pytest
import yaml

from tests.conftest import REPO

pytestmark = pytest.mark.e2e

ORDER = ["build-image", "lint-and-unit-tests", "e2e-smoke-run", "push-image", "compile-pipeline",
         "upload-template", "submit-run"]  # fmt: skip
# Steps that call Google Cloud or need a Docker engine; everything else runs in the test.
NEEDS_CLOUD = {"build-image", "push-image", "upload-template", "submit-run"}
SUBSTITUTIONS = {"PROJECT_ID": "example-mlops-dev", "SHORT_SHA": "abc1234", "COMMIT_SHA": "abc1234" + "0" * 33}


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


def test_steps_order_dependencies_and_no_secrets():
    build = load()
    steps = build["steps"]
    assert [s["id"] for s in steps] == ORDER
    for previous, step in zip(steps, steps[1:], strict=False):
        assert step["waitFor"] == [previous["id"]], step["id"]  # a strict chain: a red step stops the rest
    image = substitute(steps[0]["args"][2], values(build))
    assert image == "us-central1-docker.pkg.dev/example-mlops-dev/mlops/tfx-pipeline:abc1234"
    for step in steps[1:]:
        if step["name"] != "gcr.io/cloud-builders/docker":
            assert substitute(step["name"], values(build)) == image, step["id"]  # tests run in the image that ships
    assert substitute(" ".join(steps[3]["args"]), values(build)) == f"push {image}"
    assert set(build["substitutions"]) == {"_REGION", "_REPOSITORY", "_PROFILE", "_SUBMIT"}
    text = json.dumps(build).lower()
    assert not re.search(r"(password|secret|token|private_key|api_key)", text)


def unit_test_command(workspace, targets: list[str]) -> list[str]:
    """Runs what `make <targets>` would run except its unit-test run (the suite's own), which it returns."""
    outside = {k: v for k, v in os.environ.items() if k not in ("PYTEST_ARGS", "MAKEFLAGS", "MAKELEVEL", "MFLAGS")}
    planned = subprocess.run(["make", "-n", "--no-print-directory", *targets], cwd=workspace, capture_output=True,
                             text=True, check=True, env=outside).stdout.splitlines()  # fmt: skip
    pytest_runs = [line.strip() for line in planned if "pytest" in line]
    for line in planned:
        if line.strip() and "pytest" not in line:
            result = subprocess.run(["bash", "-c", line], cwd=workspace, capture_output=True, text=True, timeout=600)
            assert result.returncode == 0, f"{line}\n{result.stdout[-3000:]}{result.stderr[-3000:]}"
    return pytest_runs


def test_runnable_steps_run_as_written(tmp_path):
    """Lint (and the unit tests' command), the smoke run and the compile, in a copy of the checkout."""
    build = load()
    workspace = tmp_path / "workspace"  # Cloud Build's /workspace: a clean checkout
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO, capture_output=True,
                           text=True, check=True).stdout.split()  # fmt: skip
    for name in files:
        if os.path.exists(os.path.join(REPO, name)):
            os.makedirs(workspace / os.path.dirname(name), exist_ok=True)
            shutil.copy2(os.path.join(REPO, name), workspace / name)
    ran, outputs = [], {}
    for step in build["steps"]:
        if step["id"] in NEEDS_CLOUD:
            continue
        command = [substitute(step["entrypoint"], values(build))] + [substitute(a, values(build)) for a in step["args"]]
        env = {**os.environ, **dict(substitute(e, values(build)).split("=", 1) for e in step.get("env", []))}
        if step["id"] == "lint-and-unit-tests":
            assert command[0] == "make", command
            # the unit tests this suite runs, in this environment
            assert unit_test_command(workspace, command[1:]) == ['tools/devenv.sh exec python -m pytest -m "not e2e"']
            ran.append(step["id"])
            continue
        result = subprocess.run(command, cwd=workspace, env=env, capture_output=True, text=True, timeout=900)
        assert result.returncode == 0, (
            f"{step['id']}: {' '.join(command)}\n{result.stdout[-3000:]}{result.stderr[-3000:]}"
        )
        ran.append(step["id"])
        outputs[step["id"]] = result.stdout + result.stderr
    assert ran == ["lint-and-unit-tests", "e2e-smoke-run", "compile-pipeline"]
    with open(workspace / "build" / "vertex" / "vertex-dev.json") as f:
        compiled = json.load(f)
    images = {e["container"]["image"] for e in compiled["pipelineSpec"]["deploymentSpec"]["executors"].values()
              if "container" in e}  # fmt: skip
    assert images == {"us-central1-docker.pkg.dev/example-mlops-dev/mlops/tfx-pipeline:abc1234"}
    # the Trainer's custom_config carries the commit Cloud Build built (the image has no .git)
    assert re.search(r"code_commit\W+" + SUBSTITUTIONS["COMMIT_SHA"], json.dumps(compiled))
    assert os.listdir(workspace / "build" / "smoke" / "serving")  # the smoke run pushed a model
    # its logs (a file under the run's output) are JSON lines with the run's context, and neither they nor what
    # the run printed hold a personal value of the data it read
    import pandas as pd

    data = pd.concat(pd.read_csv(p) for p in glob.glob(str(workspace / "build" / "smoke" / "data" / "*.csv")))
    personal = set(data["rider_email"]) | set(data["rider_phone"]) | set(data["rider_name"])
    (log_path,) = re.findall(r"^logs:\s+(\S+)$", outputs["e2e-smoke-run"], flags=re.M)  # named in the summary
    with open(log_path) as f:
        logged = f.read()
    for line in (outputs["e2e-smoke-run"] + logged).splitlines():
        assert not any(value in line for value in personal), line[:200]
    records = [json.loads(line) for line in logged.splitlines() if line.startswith('{"time"')]
    assert records and all(r["run_id"] and r["pipeline"] == "taxi-tips" for r in records)
    # the run's output itself is one line per component and the summary, not the JSON stream
    assert "CsvExampleGen" in outputs["e2e-smoke-run"] and '{"time"' not in outputs["e2e-smoke-run"]
