"""The local environment and the image are one recipe: same base, same packages, same lock."""

import os
import re

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.unit


def read(name: str) -> str:
    with open(os.path.join(REPO, name)) as f:
        return f.read()


def test_dockerfile_and_devenv_share_base_packages_and_lock():
    devenv, dockerfile = read("tools/devenv.sh"), read("Dockerfile")
    suite = re.search(r"^SUITE=(\w+)", devenv, re.M).group(1)
    assert re.search(rf"^FROM debian:{suite}\b", dockerfile, re.M)
    packages = set(re.search(r'^APT_PACKAGES="([^"]+)"', devenv, re.M).group(1).split())
    apt_line = re.search(r"apt-get install[^\n]*\n([^\n]+)", dockerfile).group(1)
    assert packages <= set(apt_line.replace("\\", " ").split())
    assert "pip install --no-cache-dir --no-deps -r requirements.lock" in dockerfile
    assert '"$1" -m pip install -q --no-deps -r "$2"' in devenv


def test_the_image_that_ships_has_the_venv_without_the_compilers():
    """The venv is built in the `build` stage (with the environment's packages, compilers included);
    the last stage, on the same base, gets that venv, the project and the Beam boot, and only what
    runs them."""
    devenv, dockerfile = read("tools/devenv.sh"), read("Dockerfile")
    suite = re.search(r"^SUITE=(\w+)", devenv, re.M).group(1)
    stages = re.split(r"^FROM ", dockerfile, flags=re.M)[1:]
    assert [s.split()[0] for s in stages] == ["apache/beam_python3.13_sdk:${BEAM_VERSION}"] + [
        f"debian:{suite}-slim"
    ] * 2
    build, final = stages[1], stages[2]
    assert (
        build.split("\n")[0].endswith("AS build")
        and "pip install --no-cache-dir --no-deps -r requirements.lock" in build
    )
    runtime = set(re.search(r"apt-get install[^\n]*\n([^\n]+)", final).group(1).replace("\\", " ").split())
    assert {"python3", "make", "ca-certificates"} <= runtime
    assert not runtime & {"g++", "gcc", "python3-dev", "git"}
    assert "rm -rf /var/lib/apt/lists/*" in final and "pip install" not in final
    for copied in (
        "--from=build /opt/venv /opt/venv",
        "--from=build /pipeline /pipeline",
        "--from=beam /opt/apache/beam",
    ):
        assert f"COPY {copied}" in final
    assert re.search(r'^ENTRYPOINT \["/opt/apache/beam/boot"\]', final, re.M)


def test_lock_pins_every_package_and_the_tfx_stack():
    lines = [line for line in read("requirements.lock").splitlines() if line and not line.startswith("#")]
    assert all(re.fullmatch(r"[A-Za-z0-9_.\-\[\]]+==[^\s=]+", line) for line in lines), "unpinned line"
    pins = {name.lower().replace("_", "-"): version for name, version in (line.split("==") for line in lines)}
    assert pins["tfx"] == "1.21.0"
    for top in (
        "tensorflow-transform",
        "tensorflow-model-analysis",
        "tensorflow-data-validation",
        "ml-metadata",
        "kfp",
    ):
        assert top in pins
