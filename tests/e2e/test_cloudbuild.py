"""cloudbuild.yaml cannot rot: its steps are parsed, their order checked, and every step
that needs neither Google Cloud nor a Docker engine is run here as written. The unit tests of
the lint-and-unit-tests step are the suite's own (the same environment runs them in this
session), so here that step's make targets are resolved and everything but the unit-test run
is executed; `make image-test` runs every step in full inside the built image."""

import glob
import json
import os
import re
import subprocess

import pytest

from drills import runs
from tests.cloudbuild_steps import (
    IMAGE,
    check_compiled,
    copy_checkout,
    load,
    runnable_steps,
    substitute,
    values,
)

pytestmark = pytest.mark.e2e

ORDER = ["build-image", "lint-and-unit-tests", "e2e-smoke-run", "vertex-local-replay", "push-image", "compile-pipeline",
         "upload-template", "submit-run"]  # fmt: skip


def test_steps_order_dependencies_and_no_secrets():
    build = load()
    steps = build["steps"]
    assert [s["id"] for s in steps] == ORDER
    for previous, step in zip(steps, steps[1:], strict=False):
        assert step["waitFor"] == [previous["id"]], step["id"]  # a strict chain: a red step stops the rest
    image = substitute(steps[0]["args"][2], values(build))
    assert image == IMAGE
    for step in steps[1:]:
        if step["name"] != "gcr.io/cloud-builders/docker":
            assert substitute(step["name"], values(build)) == image, step["id"]  # tests run in the image that ships
    push = next(s for s in steps if s["id"] == "push-image")
    assert substitute(" ".join(push["args"]), values(build)) == f"push {image}"
    assert set(build["substitutions"]) == {"_REGION", "_REPOSITORY", "_PROFILE", "_SUBMIT"}
    text = json.dumps(build).lower()
    assert not re.search(r"(password|secret|token|private_key|api_key)", text)


def unit_test_command(workspace, targets: list[str]) -> list[str]:
    """Runs what `make <targets>` would run except its unit-test run (the suite's own), which it returns."""
    outside = runs.outside_make(dict(os.environ), "PYTEST_ARGS")
    planned = subprocess.run(["make", "-n", "--no-print-directory", *targets], cwd=workspace, capture_output=True,
                             text=True, check=True, env=outside).stdout.splitlines()  # fmt: skip
    pytest_runs = [line.strip() for line in planned if "pytest" in line]
    for line in planned:
        if line.strip() and "pytest" not in line:
            result = subprocess.run(["bash", "-c", line], cwd=workspace, capture_output=True, text=True, timeout=600)
            assert result.returncode == 0, f"{line}\n{result.stdout[-3000:]}{result.stderr[-3000:]}"
    return pytest_runs


def replay_plan(workspace, targets: list[str]) -> list[str]:
    """The commands `make <targets>` would run, but the environment's own (ensure, info)."""
    outside = runs.outside_make(dict(os.environ))
    planned = subprocess.run(["make", "-n", "--no-print-directory", *targets], cwd=workspace, capture_output=True,
                             text=True, check=True, env=outside).stdout.splitlines()  # fmt: skip
    return [" ".join(line.split()) for line in planned if not re.search(r"devenv.sh (ensure|info)$", line.strip())]


def test_runnable_steps_run_as_written(tmp_path):
    """Lint (and the unit tests' command), the smoke run and the compile, in a copy of the checkout."""
    build = load()
    workspace = tmp_path / "workspace"  # Cloud Build's /workspace: a clean checkout
    copy_checkout(workspace)
    ran, outputs = [], {}
    for step_id, command, step_env in runnable_steps(build):
        env = {**os.environ, **step_env}
        if step_id == "lint-and-unit-tests":
            assert command[0] == "make", command
            # the unit tests this suite runs, in this environment
            workers = subprocess.run(["nproc"], capture_output=True, text=True, check=True).stdout.strip()
            assert unit_test_command(workspace, command[1:]) == [
                f'tools/devenv.sh exec python -m pytest -n {workers} --dist loadfile -m "not e2e"'
            ]
            ran.append(step_id)
            continue
        if step_id == "vertex-local-replay":
            # the replay runs the image's own working directory (--mode image): `make image-test` runs it in the
            # image, tests/e2e/test_vertex_local.py the same replay in fast mode; here, what make would run
            assert replay_plan(workspace, command[1:]) == [
                f"tools/devenv.sh exec python -m pipelines.vertex compile --profile configs/vertex-smoke.yaml --image {IMAGE}",
                "tools/devenv.sh exec python -m pipelines.vertex_local --profile configs/vertex-smoke.yaml --expect-push "
                "--mode image",
            ]
            ran.append(step_id)
            continue
        result = subprocess.run(command, cwd=workspace, env=env, capture_output=True, text=True, timeout=900)
        assert result.returncode == 0, f"{step_id}: {' '.join(command)}\n{result.stdout[-3000:]}{result.stderr[-3000:]}"
        ran.append(step_id)
        outputs[step_id] = result.stdout + result.stderr
    assert ran == ["lint-and-unit-tests", "e2e-smoke-run", "vertex-local-replay", "compile-pipeline"]
    check_compiled(workspace)
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
