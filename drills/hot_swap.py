"""Drill: a new version is pushed and swapped in while the server is under load.

`requests` single-row requests over `concurrency` keep-alive connections; a tenth of the way in, a
different model (the pipeline's distilled one: other weights, other scores) is pushed as a new
version. Every request must be answered, and each answer's score must be the one the version it
names gives that row (both versions scored in this process afterwards), so the version named is
the version that scored it. Once a connection has an answer from the new version, it never gets
one from the old again.
"""

from __future__ import annotations

import glob
import os
import shutil
import threading
import time

from drills import runs
from serving.client import PredictionClient


def distilled_model(pipeline_root: str) -> str:
    """The newest DistilledModel output: a servable model that scores unlike the pushed one."""
    found = glob.glob(os.path.join(pipeline_root, "DistilledModel", "model", "*", "Format-Serving"))
    if not found:
        raise FileNotFoundError(f"no DistilledModel output under {pipeline_root}")
    return max(found, key=lambda p: int(p.split(os.sep)[-2]))


def _scores(model_dir: str, rows: list[dict], personal: list[str]) -> list[float]:
    from serving import model_store

    model = model_store.load(model_dir, personal)
    return model.predict([model.validator.instance(r, i) for i, r in enumerate(rows)])


def run_drill(config, serving_source: str, new_model: str, workdir: str, requests: int = 10000,
              concurrency: int = 16) -> dict:  # fmt: skip
    from components.idempotent_pusher import push_atomically

    serving_dir = os.path.join(workdir, "hot-swap-serving")
    shutil.copytree(serving_source, serving_dir, dirs_exist_ok=True)
    old = max((n for n in os.listdir(serving_dir) if n.isdigit()), key=int)
    rows = runs.request_rows(300)
    answers: list[list[tuple]] = [[] for _ in range(concurrency)]  # per connection: (status, version, row, score)
    done = [0]
    lock = threading.Lock()
    server = runs.start_server(config, serving_dir, os.path.join(workdir, "hot-swap-log.jsonl"))

    def worker(k: int, n: int) -> None:
        client = PredictionClient(server.url)
        for i in range(n):
            row = (k * 7919 + i) % len(rows)
            try:
                status, body = client.predict([rows[row]])
            except OSError as e:  # a dropped connection is an error too
                status, body = 0, {"error": str(e)}
            score = body["predictions"][0]["probability"] if status == 200 else None
            answers[k].append((status, body.get("deployedModelId"), row, score))
            with lock:
                done[0] += 1
        client.close()

    share = [requests // concurrency + (k < requests % concurrency) for k in range(concurrency)]
    threads = [threading.Thread(target=worker, args=(k, n)) for k, n in enumerate(share)]
    start = time.perf_counter()
    try:
        for t in threads:
            t.start()
        runs.wait_for(lambda: done[0] >= requests // 10, 300, "a tenth of the requests")
        new = push_atomically(new_model, serving_dir, new_model)
        pushed_at = done[0]
        for t in threads:
            t.join()
    finally:
        server.stop()
    seconds = time.perf_counter() - start
    personal = list(config.data.personal_columns)  # dropped on arrival, as the server does
    truth = {v: _scores(os.path.join(serving_dir, v), rows, personal) for v in (old, new)}
    flat = [a for per in answers for a in per]
    errors = [a for a in flat if a[0] != 200]
    misnamed = [a for a in flat if a[0] == 200 and (a[1] not in truth or abs(truth[a[1]][a[2]] - a[3]) > 1e-5)]
    by_version = {v: sum(1 for a in flat if a[1] == v) for v in (old, new)}
    swap_after = by_version[old] - pushed_at  # answers from the old version while the new one loaded
    problems = answer_problems(answers, truth, old, new, requests)
    return {
        "drill": "hot swap under load", "requests": len(flat), "concurrency": concurrency, "errors": len(errors),
        "misnamed": len(misnamed), "by_version": by_version, "pushed_after": pushed_at, "swapped_after": swap_after,
        "requests_per_s": round(len(flat) / seconds), "seconds": round(seconds, 1), "problems": problems,
        "ok": not problems,
        "happened": f"{len(flat)} requests at concurrency {concurrency} ({round(len(flat) / seconds)}/s), "
                    f"{errors and len(errors) or 0} errors; {by_version[old]} by {old}, {by_version[new]} by {new}",
        "lost": "nothing" if not problems else "; ".join(problems)[:300],
    }  # fmt: skip


def answer_problems(answers: list[list[tuple]], truth: dict[str, list[float]], old: str, new: str,
                    requests: int) -> list[str]:  # fmt: skip
    """What the answers show. `answers`: per connection, (status, version named, row, score) in order;
    `truth`: each version's score of each row. Every request answered 200 with the score of the version
    it names; no connection back on `old` once `new` answered it; `new` answered; and the two versions
    score most rows differently (else a wrong name would go unseen)."""
    flat = [a for per in answers for a in per]
    errors = [a for a in flat if a[0] != 200]
    misnamed = [a for a in flat if a[0] == 200 and (a[1] not in truth or abs(truth[a[1]][a[2]] - a[3]) > 1e-5)]
    back_to_old = sum(
        1 for per in answers for i, a in enumerate(per) if a[1] == old and any(b[1] == new for b in per[:i])
    )
    differ = sum(abs(a - b) > 1e-4 for a, b in zip(truth[old], truth[new], strict=True))
    problems = []
    if len(flat) != requests or errors:
        problems.append(f"{len(errors)} errors in {len(flat)} answers: {sorted({a[0] for a in errors})}")
    if misnamed:
        problems.append(f"{len(misnamed)} answers name a version that did not give that score")
    if back_to_old:
        problems.append(f"{back_to_old} answers from {old} after the connection was answered by {new}")
    if not any(a[1] == new for a in flat):
        problems.append(f"{new} never answered")
    if differ < len(truth[old]) // 2:
        problems.append(f"the two versions score alike on {len(truth[old]) - differ} rows: the naming check is blind")
    return problems
