"""Structured (JSON lines) logging for every entry point: one object per record, with the
run's context (run id, model version, ...) and the level from config (`log_level`)."""

from __future__ import annotations

import json
import logging
import sys
import time

_CONTEXT: dict[str, str] = {}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **_CONTEXT,
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def setup(level: str = "INFO", **context: str) -> None:
    """Routes every logger (TFX's and absl's included) to stderr as JSON lines."""
    _CONTEXT.clear()
    _CONTEXT.update({k: str(v) for k, v in context.items() if v is not None})
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("absl", "tensorflow"):
        logging.getLogger(noisy).setLevel(max(logging.getLevelName(level), logging.WARNING))


def bind(**context: str) -> None:
    """Adds to the context of every later record (e.g. the model version once it is known)."""
    _CONTEXT.update({k: str(v) for k, v in context.items() if v is not None})
