"""Drill: the disk fills while a model is pushed, and while the server writes its prediction log.

Each case mounts a small tmpfs of its own (we run as root; a failed mount fails the drill) and
fills it, with a server answering requests over the directories on it.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator

from drills import runs
from serving.client import PredictionClient


@contextlib.contextmanager
def small_disk(path: str, size_bytes: int) -> Iterator[str]:
    """A tmpfs of `size_bytes` mounted at `path` for the block."""
    os.makedirs(path, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_bytes}", "tmpfs", path], check=True,
                   capture_output=True)  # fmt: skip
    try:
        yield path
    finally:
        if subprocess.run(["umount", path], capture_output=True).returncode != 0:
            subprocess.run(["umount", "--lazy", path], check=True)  # a file still open in a dying thread


def fill(directory: str, leave_bytes: int = 0) -> str:
    """Writes a filler file until `leave_bytes` are free (or none); its path."""
    path = os.path.join(directory, "filler")
    stat = os.statvfs(directory)
    size = max(0, stat.f_bavail * stat.f_frsize - leave_bytes)
    with open(path, "wb") as f, contextlib.suppress(OSError):
        f.write(b"\0" * size)
    return path


def _size(directory: str) -> int:
    return sum(os.path.getsize(os.path.join(d, n)) for d, _, names in os.walk(directory) for n in names)


def push_on_full_disk(config, model_dir: str, workdir: str) -> dict:
    """A model is served from a small disk; a second push finds the disk nearly full, then room again."""
    from components.idempotent_pusher import PushError, push_atomically

    model_bytes = _size(model_dir)
    rows = runs.request_rows(50)
    with small_disk(os.path.join(workdir, "serving"), 3 * model_bytes) as serving_dir:
        old = push_atomically(model_dir, serving_dir, model_dir)
        server = runs.start_server(config, serving_dir, None)
        client = PredictionClient(server.url)
        try:
            filler = fill(serving_dir, leave_bytes=model_bytes // 2)
            error = ""
            try:
                push_atomically(model_dir, serving_dir, model_dir + "#2")
            except PushError as e:
                error = str(e)
            time.sleep(3 * server.poll_seconds)  # a poll of the server sees what the failed push left
            listing = sorted(n for n in os.listdir(serving_dir) if n != "filler")
            status, body = client.predict(rows[:5])
            served_during = body.get("deployedModelId")
            os.remove(filler)
            new = push_atomically(model_dir, serving_dir, model_dir + "#2")
            runs.wait_for(lambda: client.predict(rows[:1])[1].get("deployedModelId") == new, 10, "the swap")
        finally:
            client.close()
            server.stop()
    problems = push_problems(error, listing, old, status, served_during)
    return {
        "drill": "disk full while pushing", "error": error[:300], "left_in_serving_dir": listing,
        "served_during": served_during, "pushed_after_space_freed": new, "problems": problems, "ok": not problems,
        "happened": f"push failed ({'disk full' if 'No space left' in error else error[:60]}), version {old} stayed served; "
                    f"the next push swapped in {new}",
        "lost": "nothing" if not problems else "; ".join(problems)[:300],
    }  # fmt: skip


def log_on_full_disk(config, serving_source: str, workdir: str, requests: int = 600) -> dict:
    """The prediction log's disk fills while requests arrive, then has room again."""
    serving_dir = os.path.join(workdir, "log-drill-serving")
    shutil.copytree(serving_source, serving_dir, dirs_exist_ok=True)
    rows = runs.request_rows(100)
    statuses: list[int] = []
    with small_disk(os.path.join(workdir, "logs"), 1 << 20) as log_dir:
        log_path = os.path.join(log_dir, "predictions.jsonl")
        server = runs.start_server(config, serving_dir, log_path)
        client = PredictionClient(server.url)
        log = server.app.log
        try:
            for phase in ("before", "full", "after"):
                filler = fill(log_dir) if phase == "full" else None
                for i in range(requests // 3):
                    statuses.append(client.predict([rows[i % len(rows)]])[0])
                    if phase == "full" and i == 0:
                        time.sleep(0.2)  # the writer meets the full disk with lines in hand
                if filler:
                    runs.wait_for(lambda: log.write_errors > 0, 10, "a failed log write")
                    os.remove(filler)
            meta = client.get(f"/v1/models/{config.pipeline.name}")[1]
        finally:
            client.close()
            server.stop()
        with open(log_path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    parsed = sum(1 for line in lines if _is_json(line))
    problems = log_problems(statuses, lines, log, meta)
    return {
        "drill": "disk full while logging", "requests": len(statuses), "answered_200": statuses.count(200),
        "lines_written": parsed, "lines_lost": log.lost, "write_errors": log.write_errors, "problems": problems,
        "ok": not problems,
        "happened": f"{statuses.count(200)}/{len(statuses)} requests answered; {log.write_errors} failed writes "
                    f"counted, logging resumed ({parsed} whole lines)",
        "lost": f"{log.lost} log lines (counted, reported by the server)" if not problems else "; ".join(problems)[:300],
    }  # fmt: skip


def push_problems(error: str, listing: list[str], old: str, status: int, served_during: str | None) -> list[str]:
    """A push on a full disk must fail saying why and leave only the version served before, which the
    server keeps answering from."""
    problems = []
    if "No space left on device" not in error or "nothing was pushed" not in error:
        problems.append(f"the failed push did not say why: {error or 'it did not fail'}")
    if listing != [old]:
        problems.append(f"after the failed push the serving directory holds {listing}, not just [{old}]")
    if status != 200 or served_during != old:
        problems.append(f"during the full disk the server answered {status} from {served_during}")
    return problems


def log_problems(statuses: list[int], lines: list[str], log, meta: dict) -> list[str]:
    """Every request answered; the full disk counted (`log`: the server's PredictionLog); every line whole;
    every request's line written, lost or dropped, and the server's metadata route saying how many were lost."""
    parsed = sum(1 for line in lines if _is_json(line))
    problems = []
    if any(s != 200 for s in statuses):
        problems.append(f"requests not answered 200: {sorted(set(statuses))}")
    if log.write_errors == 0 or log.lost == 0:
        problems.append("the full disk was not noticed (no failed write counted)")
    if parsed != len(lines):
        problems.append(f"{len(lines) - parsed} log lines are not whole JSON")
    if parsed + log.lost + log.dropped != len(statuses):
        problems.append(
            f"{len(statuses)} requests, but {parsed} lines written + {log.lost} lost + {log.dropped} dropped"
        )
    if meta.get("log_lines_lost") != log.lost:
        problems.append(f"the metadata route reports {meta.get('log_lines_lost')} lost lines, not {log.lost}")
    return problems


def _is_json(line: str) -> bool:
    try:
        json.loads(line)
    except ValueError:
        return False
    return True
