"""The server's prediction log: JSON lines written by a background thread, never in a request's way.

A full queue drops lines (counted in `dropped`). A write that fails (a full disk) loses the lines in
hand (counted in `lost`, logged once per run of failures), cuts the file back to its last whole line,
and the writer goes on: logging resumes by itself when the disk has room again. Requests are
answered either way.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import threading

BATCH = 1000  # lines written together when the queue is backed up


class PredictionLog:
    def __init__(self, path: str | None, capacity: int = 10000):
        self.path = path
        self.dropped = 0  # not queued: the queue was full
        self.lost = 0  # queued, but the write failed
        self.write_errors = 0
        self.last_error: str | None = None
        self._queue: queue.Queue = queue.Queue(capacity)
        self._thread = None
        if path:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            self._thread = threading.Thread(target=self._write, name="prediction-log", daemon=True)
            self._thread.start()

    def add(self, record: dict) -> None:
        if not self.path:
            return
        try:
            self._queue.put_nowait(record)
        except queue.Full:
            self.dropped += 1

    def _next_batch(self) -> tuple[list[dict], bool]:
        """Queued records (waiting for the first); True once close() was called."""
        batch = []
        record = self._queue.get()
        while record is not None:
            batch.append(record)
            if len(batch) == BATCH:
                return batch, False
            try:
                record = self._queue.get_nowait()
            except queue.Empty:
                return batch, False
        return batch, True

    def _write(self) -> None:
        f = None
        whole = os.path.getsize(self.path) if os.path.exists(self.path) else 0  # bytes up to the last whole line
        closing = False
        while not closing:
            batch, closing = self._next_batch()
            if not batch:
                continue
            data = "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in batch).encode("utf-8")
            try:
                f = f or open(self.path, "ab")  # noqa: SIM115 (kept open across batches; closed below)
                f.write(data)
                f.flush()
                whole = f.tell()
                if self.last_error is not None:
                    logging.warning("the prediction log %s is written again (%d lines lost)", self.path, self.lost)
                    self.last_error = None
            except OSError as e:
                self.lost += len(batch)
                self.write_errors += 1
                if self.last_error is None:
                    logging.error("writing the prediction log %s failed, requests are still answered and the "
                                  "lines are counted as lost until it works again: %s", self.path, e)  # fmt: skip
                self.last_error = str(e)
                f = _discard(f, self.path, whole)
        if f is not None:
            f.close()

    def close(self) -> None:
        if self._thread:
            self._queue.put(None)
            self._thread.join(timeout=5)


def _discard(f, path: str, whole: int) -> None:
    """Closes a file whose write failed and cuts off the part of a line that reached the disk."""
    if f is not None:
        with contextlib.suppress(OSError):  # flushing again fails too; the file is closed all the same
            f.close()
    with contextlib.suppress(OSError):
        os.truncate(path, whole)
