"""The drills start their commands as a user's shell would."""

import os

import pytest

from drills import runs

pytestmark = pytest.mark.unit


def test_drill_commands_get_a_shells_environment_not_the_drills_own_imports(monkeypatch):
    monkeypatch.setenv("TF_USE_LEGACY_KERAS", "1")  # importing TensorFlow Transform sets it in the drill's process
    env = runs.shell_env(TMPDIR="/tmp/drill")
    assert "TF_USE_LEGACY_KERAS" not in env
    assert env["PYTHONPATH"] == runs.REPO and env["TMPDIR"] == "/tmp/drill" and env["PATH"] == os.environ["PATH"]
