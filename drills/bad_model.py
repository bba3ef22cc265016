"""Drill: broken version directories land in the serving directory of a running server.

Each is newer than the good version: a SavedModel cut short, a directory whose saved_model.pb is not
a SavedModel, one with the model files but no serving contract. The server must refuse each (saying
why, once), keep answering from the good version, and a server started afresh on the same
directory must serve the good version too.
"""

from __future__ import annotations

import os
import shutil
import time

from drills import runs
from serving.client import PredictionClient


def _truncated(good: str, path: str) -> None:
    shutil.copytree(good, path)
    pb = os.path.join(path, "saved_model.pb")
    with open(pb, "r+b") as f:
        f.truncate(os.path.getsize(pb) // 2)
    variables = os.path.join(path, "variables")
    for name in os.listdir(variables):
        os.truncate(os.path.join(variables, name), 16)


def _not_a_saved_model(good: str, path: str) -> None:
    shutil.copytree(os.path.join(good, "assets.extra"), os.path.join(path, "assets.extra"))
    with open(os.path.join(path, "saved_model.pb"), "wb") as f:
        f.write(b"<html>502 Bad Gateway</html>\n")  # what a failed download leaves


def _no_contract(good: str, path: str) -> None:
    shutil.copytree(good, path, ignore=shutil.ignore_patterns("serving_contract.json"))


BROKEN = {"truncated SavedModel": _truncated, "not a SavedModel": _not_a_saved_model, "no contract": _no_contract}


def run_drill(config, serving_source: str, workdir: str, requests_per_case: int = 100) -> dict:
    serving_dir = os.path.join(workdir, "bad-model-serving")
    shutil.copytree(serving_source, serving_dir, dirs_exist_ok=True)
    good = max((n for n in os.listdir(serving_dir) if n.isdigit()), key=int)
    rows = runs.request_rows(50)
    answers: list[tuple[int, str | None]] = []
    server = runs.start_server(config, serving_dir, None)
    client = PredictionClient(server.url)
    try:
        for i, make in enumerate(BROKEN.values()):
            staging = os.path.join(workdir, f"broken-{i}")
            make(os.path.join(serving_dir, good), staging)
            os.rename(staging, os.path.join(serving_dir, str(int(good) + 1 + i)))  # lands whole, as a push does
            time.sleep(3 * server.poll_seconds)
            for j in range(requests_per_case):
                status, body = client.predict([rows[j % len(rows)]])
                answers.append((status, body.get("deployedModelId")))
        refused = server.app.store.refused()
    finally:
        client.close()
        server.stop()
    restarted = runs.start_server(config, serving_dir, None)  # a fresh start on the same directory
    try:
        status, body = PredictionClient(restarted.url).predict(rows[:1])
        after_restart = (status, body.get("deployedModelId"))
    finally:
        restarted.stop()
    broken = [str(int(good) + 1 + i) for i in range(len(BROKEN))]
    problems = check(answers, good, broken, refused, after_restart)
    return {
        "drill": "bad model pushed", "good_version": good, "broken_versions": dict(zip(broken, BROKEN, strict=True)),
        "refused": refused, "requests": len(answers), "answered_by_good": answers.count((200, good)),
        "after_restart": after_restart, "problems": problems, "ok": not problems,
        "happened": f"{len(refused)} broken versions refused, 1 skipped (incomplete); {answers.count((200, good))}/"
                    f"{len(answers)} requests answered by {good}; a restart serves {after_restart[1]}",
        "lost": "nothing" if not problems else "; ".join(problems)[:300],
    }  # fmt: skip


def check(answers: list[tuple[int, str | None]], good: str, broken: list[str], refused: dict,
          after_restart: tuple[int, str | None]) -> list[str]:  # fmt: skip
    """Every answer 200 from `good`; the broken versions with model files refused (the one without a contract
    is not a complete version: skipped, never loaded); a restarted server answering from `good`."""
    problems = []
    if any(a != (200, good) for a in answers):
        problems.append(f"answers other than 200 from {good}: {sorted(set(answers) - {(200, good)})}")
    if sorted(refused) != broken[:2]:
        problems.append(f"refused {sorted(refused)}, expected {broken[:2]}")
    if after_restart != (200, good):
        problems.append(f"a restarted server answered {after_restart}")
    return problems
