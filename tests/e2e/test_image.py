"""The image Cloud Build ships, built from the Dockerfile on this machine, runs cloudbuild.yaml's
in-image steps as written.

Run by `make image-test` (which first builds it with `make image`), on the host: it drives buildah
(or Docker where a daemon answers) through tools/image.sh, so it cannot run inside the project's
environment, and it takes minutes (the unit tests, a smoke run and a compile, in containers).
`make test` deselects it (`-m "not image"`, `make test-e2e` too); it is never skipped.

The commands are cloudbuild.yaml's own (tests/cloudbuild_steps.py parses it, as
tests/e2e/test_cloudbuild.py does), run in a container of the image under the name the
build-image step gives it, with a clean copy of the checkout at /workspace, Cloud Build's
working directory."""

import json
import os
import re
import subprocess
import time

import pytest

from tests.cloudbuild_steps import REPO, built_image, check_compiled, copy_checkout, load, runnable_steps

pytestmark = [pytest.mark.e2e, pytest.mark.image]

IMAGE_SH = os.path.join(REPO, "tools", "image.sh")
LOCAL = os.environ.get("IMAGE_UNDER_TEST", "tfx-pipeline:local")  # what `make image` built


def image_sh(*args: str, timeout: int = 1800) -> subprocess.CompletedProcess:
    return subprocess.run([IMAGE_SH, *args], capture_output=True, text=True, timeout=timeout, check=False)


def ok(result: subprocess.CompletedProcess, what: str) -> str:
    assert result.returncode == 0, f"{what}\n{result.stdout[-4000:]}{result.stderr[-4000:]}"
    return result.stdout + result.stderr


@pytest.fixture(scope="module")
def image():
    """The built image, also under the name cloudbuild.yaml runs its steps in; that name and the
    working containers are removed after."""
    build = load()
    name = built_image(build)
    ok(image_sh("tag", LOCAL, name), f"no image {LOCAL} here (or no buildah/Docker): run `make image-test` on the host")
    yield build, name
    ok(image_sh("untag", name), "untag")
    ok(image_sh("clean"), "image-clean")


def test_cloudbuild_steps_run_inside_the_image(image, tmp_path):
    """lint + unit tests, the smoke run (it must push), the Vertex replay of the compiled smoke profile and the
    compile against the image's tag,
    each in a fresh container of the image, as Cloud Build runs them."""
    build, name = image
    workspace = tmp_path / "workspace"
    copy_checkout(workspace)
    ran, took = [], {}
    for step_id, command, env in runnable_steps(build):
        start = time.monotonic()
        pairs = [f"{k}={v}" for k, v in env.items()]
        ok(image_sh("run", name, str(workspace), *pairs, "--", *command), f"{step_id}: {' '.join(command)}")
        ran.append(step_id)
        took[step_id] = round(time.monotonic() - start)
    print("in-image steps, seconds:", took)
    assert ran == ["lint-and-unit-tests", "e2e-smoke-run", "vertex-local-replay", "compile-pipeline"]
    assert os.listdir(workspace / "build" / "smoke" / "serving")  # the smoke run pushed a model
    # the replay of the compiled smoke profile ran every task in the image and pushed (EXPECT_PUSH=1)
    assert os.listdir(workspace / "build" / "vertex-local" / "vertex-smoke" / "gcs" / "example-mlops-dev-pipeline"
                      / "smoke" / "serving")  # fmt: skip
    check_compiled(workspace)  # every step of the compiled pipeline names this image


def test_image_holds_the_runtime_only_and_runs_as_another_user(image, tmp_path):
    """No compilers, headers, git, apt lists or pip cache in the image, the Beam boot and the
    environment's stamp are there, and it runs as root (Cloud Build, Dataflow) and as any other user."""
    _, name = image
    checks = (
        "for tool in g++ gcc cc git; do if command -v $tool; then exit 1; fi; done; "
        'test ! -e /usr/include/python3.13/Python.h && test -z "$(ls -A /var/lib/apt/lists)" '
        "&& test ! -e /root/.cache/pip && test -s /opt/venv/.devenv-key && test -x /opt/apache/beam/boot "
        # as another user, as a cluster's runAsUser would start it (one container: each costs a full copy with vfs)
        "&& HOME=/tmp setpriv --reuid=65534 --regid=65534 --clear-groups python -c "
        "'import os, tfx, apache_beam, tensorflow_data_validation, pipelines.pipeline, serving.app; print(\"uid\", os.getuid())'"
    )
    out = ok(
        image_sh("run", name, str(tmp_path), "--", "sh", "-c", checks),
        "build tools or caches left, or not as uid 65534",
    )
    assert "uid 65534" in out


def test_a_task_whose_image_lacks_the_project_fails_the_replay_naming_it(image, tmp_path):
    """`make vertex-local MODE=image`'s replay in a container of the image as a Dockerfile that forgot
    `COPY components` would make it (the compile first, while the image is whole; then the project's
    components package deleted from that container only): each task whose executor is the project's
    fails with its name and the executor's own error (the import of its class), what is downstream of it is skipped, exit 1."""
    _, name = image
    work = tmp_path / "replay"
    work.mkdir()
    replay = (
        f"python -m pipelines.vertex compile --profile configs/vertex-smoke.yaml --template {work}/job.json "
        "> /dev/null && rm -rf components /opt/venv/lib/python3*/site-packages/components && "
        f"python -m pipelines.vertex_local --profile configs/vertex-smoke.yaml --mode image "
        f"--template {work}/job.json --workdir {work}"
    )
    result = image_sh("task", name, str(work), "--", "sh", "-c", replay)
    out = result.stdout + result.stderr
    assert result.returncode == 1, out[-4000:]
    spec = json.loads((work / "job.json").read_text())["pipelineSpec"]
    executors, components = spec["deploymentSpec"]["executors"], spec["components"]
    tasks = spec["root"]["dag"]["tasks"]
    own = {t for t, b in tasks.items()  # the tasks whose executor class is in the project's components package
           if any(a.startswith("components.") for a in executors[components[b["componentRef"]["name"]]["executorLabel"]]
                  .get("container", {}).get("args", []))}  # fmt: skip
    failed = dict(re.findall(r"^replay failed: task (\S+): (.*)$", result.stderr, re.M))
    assert failed and set(failed) <= own, out[-4000:]
    # TFX's import of the executor class (`ImportError: Could not import components...`), or Python's own
    imported = re.compile(r"(ImportError: Could not import|ModuleNotFoundError: No module named) '?components\.?")
    for task, error in failed.items():
        assert imported.match(error), (task, error)
    states = {line.split()[0]: line.split()[1] for line in result.stdout.splitlines() if line.startswith("  ")}
    assert set(states) == set(tasks) and "SKIPPED" in states.values(), result.stdout
