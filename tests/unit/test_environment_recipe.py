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
