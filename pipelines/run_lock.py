"""One run at a time on a pipeline root and a metadata store: an fcntl lock file beside each.

LocalDagRunner takes no lock: two runs on one workdir would interleave executions in one ML
Metadata store and write the same output directories. The lock is the kernel's (flock), so a
killed run releases it with its last file descriptor, and a stale file never blocks a new run.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import json
import os
import socket

LOCK_FILE = ".run.lock"


class RunLockedError(RuntimeError):
    """Another run holds the pipeline root or the metadata store."""


def lock_paths(root: str, metadata_path: str) -> list[str]:
    return sorted({os.path.join(root, LOCK_FILE), metadata_path + ".lock"})  # one order: no deadlock


def holder(path: str) -> dict:
    """What the lock's holder wrote into it (pid, host, since, run id); {} if nothing yet."""
    try:
        with open(path) as f:
            return json.loads(f.read() or "{}")
    except (OSError, ValueError):
        return {}


def _acquire(path: str, run_id: str) -> int:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        who = holder(path)
        raise RunLockedError(
            f"another run is using this pipeline: {path} is held by pid {who.get('pid', '?')} on "
            f"{who.get('host', '?')} (run {who.get('run_id', '?')}, since {who.get('since', '?')}); "
            "wait for it to finish, or stop that process"
        ) from None
    since = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    os.ftruncate(fd, 0)
    os.write(
        fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "run_id": run_id, "since": since}).encode()
    )
    return fd


@contextlib.contextmanager
def held(root: str, metadata_path: str, run_id: str = ""):
    """Holds both locks for the block; RunLockedError at once (naming the holder) if another run has one."""
    fds = []
    try:
        for path in lock_paths(root, metadata_path):
            fds.append(_acquire(path, run_id))
        yield
    finally:
        for fd in reversed(fds):
            os.ftruncate(fd, 0)
            os.close(fd)  # releases the flock
