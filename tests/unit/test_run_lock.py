"""The run lock: one run at a time per pipeline root and metadata store; a killed holder frees it."""

import os
import signal
import subprocess
import sys

import pytest

from pipelines import run_lock
from tests.conftest import REPO

pytestmark = pytest.mark.unit


def test_a_second_holder_is_refused_naming_the_first(tmp_path):
    root, store = str(tmp_path / "pipeline"), str(tmp_path / "metadata" / "metadata.sqlite")
    with run_lock.held(root, store, "first"):
        refused = pytest.raises(run_lock.RunLockedError, match=rf"held by pid {os.getpid()} .*run first")
        with refused, run_lock.held(root, store, "second"):
            pass
        # the same metadata store from another pipeline root is refused too
        with pytest.raises(run_lock.RunLockedError), run_lock.held(str(tmp_path / "other"), store):
            pass
    with run_lock.held(root, store, "third"):  # released on exit
        pass


def test_a_killed_holder_leaves_the_lock_free(tmp_path):
    root, store = str(tmp_path / "pipeline"), str(tmp_path / "metadata.sqlite")
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from pipelines import run_lock\n"
         "with run_lock.held(sys.argv[1], sys.argv[2], 'doomed'):\n print('held', flush=True); time.sleep(60)",
         root, store],
        stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": REPO},
    )  # fmt: skip
    assert holder.stdout.readline().strip() == "held"
    with pytest.raises(run_lock.RunLockedError, match=f"pid {holder.pid}"), run_lock.held(root, store):
        pass
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    holder.stdout.close()
    with run_lock.held(root, store, "after"):
        assert run_lock.holder(os.path.join(root, run_lock.LOCK_FILE))["run_id"] == "after"
