"""Which commit of this repository a pipeline was built from."""

from __future__ import annotations

import os
import subprocess

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV_VAR = "CODE_COMMIT"  # set by Cloud Build ($COMMIT_SHA), where the image has no .git


def code_commit(repo: str = REPO) -> str:
    """`$CODE_COMMIT`, else `git rev-parse HEAD` (with `-dirty` when tracked files have
    uncommitted changes), else `unknown`."""
    if os.environ.get(ENV_VAR):
        return os.environ[ENV_VAR]
    try:
        head = _git(repo, "rev-parse", "HEAD").stdout.strip()
        dirty = _git(repo, "diff", "--quiet", "HEAD").returncode != 0
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    if not head:
        return "unknown"
    return head + ("-dirty" if dirty else "")


def _git(repo: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", "-C", repo, *args], capture_output=True, text=True, timeout=30, check=False)
