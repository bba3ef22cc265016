"""Scoring shared by concurrent requests: one thread batches their rows into model calls, and an
LRU answers repeated rows of one model version."""

from __future__ import annotations

import asyncio
import collections
import queue
import threading

from serving.model_store import LoadedModel


class Batcher:
    """Scores the rows of concurrent requests in shared model calls (one thread owns the model calls)."""

    def __init__(self, max_batch: int):
        self.max_batch = max_batch
        self._queue: queue.Queue = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="batcher", daemon=True)
        self._thread.start()

    def predict(self, model: LoadedModel, rows: list[dict]) -> list[float]:
        done = threading.Event()
        job = self._submit(model, rows, done.set)
        done.wait()
        return _outcome(job)

    async def predict_async(self, model: LoadedModel, rows: list[dict]) -> list[float]:
        """`predict` for a coroutine on an event loop: it waits without holding a thread."""
        loop = asyncio.get_running_loop()
        finished = loop.create_future()
        job = self._submit(model, rows, lambda: loop.call_soon_threadsafe(_resolve, finished))
        await finished
        return _outcome(job)

    def _submit(self, model: LoadedModel, rows: list[dict], notify) -> dict:
        job = {"model": model, "examples": rows, "notify": notify, "result": None, "error": None}
        self._queue.put(job)
        return job

    def _run(self) -> None:
        while True:
            jobs = [self._queue.get()]
            rows = len(jobs[0]["examples"])
            while rows < self.max_batch:
                try:
                    job = self._queue.get_nowait()
                except queue.Empty:
                    break
                jobs.append(job)
                rows += len(job["examples"])
            by_model: dict[int, list[dict]] = collections.defaultdict(list)
            for job in jobs:
                by_model[id(job["model"])].append(job)
            for group in by_model.values():
                examples = [e for job in group for e in job["examples"]]
                try:
                    scores = group[0]["model"].predict(examples)
                except Exception as e:  # answered as 500 by the request that owns it
                    for job in group:
                        job["error"] = e
                        job["notify"]()
                    continue
                start = 0
                for job in group:
                    n = len(job["examples"])
                    job["result"] = scores[start : start + n]
                    start += n
                    job["notify"]()


def _resolve(future) -> None:
    if not future.done():
        future.set_result(None)


def _outcome(job: dict) -> list[float]:
    if job["error"] is not None:
        raise job["error"]
    return job["result"]


class PredictionCache:
    """LRU of (model version, serialized row) -> score."""

    def __init__(self, size: int):
        self.size = size
        self._items: collections.OrderedDict = collections.OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0

    def get(self, key) -> float | None:
        if not self.size:
            return None
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
                self.hits += 1
            return value

    def put(self, key, value: float) -> None:
        if not self.size:
            return
        with self._lock:
            self._items[key] = value
            if len(self._items) > self.size:
                self._items.popitem(last=False)
