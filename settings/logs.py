"""Structured (JSON lines) logging for every entry point: one object per record, with the
run's context (run id, model version, ...) and the level from config (`log_level`)."""

from __future__ import annotations

import json
import logging
import sys
import time

_CONTEXT: dict[str, str] = {}
_SETUP: dict = {}  # the last setup's arguments, for a process that starts fresh and logs to the same place


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


QUIET = ("absl", "tensorflow")  # below WARNING they only narrate; kept out of the JSON logs


def _loud(record: logging.LogRecord) -> bool:
    return record.levelno >= logging.WARNING or record.name.split(".")[0] not in QUIET


def setup(level: str = "INFO", path: str | None = None, stream: bool = True, **context: str) -> None:
    """Routes every logger (TFX's and absl's included) as JSON lines to stderr (`stream`) and/or to the file
    `path` (its folder is made)."""
    import os

    _SETUP.clear()
    _SETUP.update({"level": level, "path": path, "stream": stream, **context})
    _CONTEXT.clear()
    _CONTEXT.update({k: str(v) for k, v in context.items() if v is not None})
    handlers: list[logging.Handler] = []
    if stream:
        handlers.append(logging.StreamHandler(sys.stderr))
    if path:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        handlers.append(logging.FileHandler(path, encoding="utf-8"))
    for handler in handlers:
        handler.setFormatter(JsonFormatter())
        handler.addFilter(_loud)
    root = logging.getLogger()
    root.handlers[:] = handlers
    root.setLevel(level)
    for noisy in QUIET:
        logging.getLogger(noisy).setLevel(max(logging.getLevelName(level), logging.WARNING))


def current_setup() -> dict:
    """The arguments of the last `setup` in this process (empty if none), with the context bound since."""
    return {**_SETUP, **_CONTEXT} if _SETUP else {}


def bind(**context: str) -> None:
    """Adds to the context of every later record (e.g. the model version once it is known)."""
    _CONTEXT.update({k: str(v) for k, v in context.items() if v is not None})
