"""One line per component as a local run goes: started, finished with its elapsed time. A live line
(spinner and clock) where the terminal supports it, plain lines elsewhere (CI, a pipe, a file).

The DAG runner logs each component's start and end in this process (absl: "Component X is running." /
"is finished."), one after another or, with pipelines/parallel_runner.py, several at once;
`ComponentProgress` listens for those two records.
"""

from __future__ import annotations

import contextlib
import logging
import re
import sys
import time
from typing import TextIO

from rich.console import Console

_RUNNING = re.compile(r"Component (\S+) is running\.")
_FINISHED = re.compile(r"Component (\S+) is finished\.")
_FAILED = re.compile(r"Component (\S+) failed")


class ComponentProgress(logging.Handler):
    """Prints `  <component> ... <seconds> s` as each component finishes (and a live status while it runs)."""

    def __init__(self, out: TextIO | None = None, live: bool | None = None):
        super().__init__(logging.INFO)
        self.console = Console(file=out or sys.stdout, highlight=False, soft_wrap=True)
        self.live = self.console.is_terminal if live is None else live
        self._status = None
        self._started: dict[str, float] = {}
        self._run_start = time.monotonic()
        self.finished: list[tuple[str, float]] = []
        self.failed: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if match := _RUNNING.match(message):
            self._start(match.group(1))
        elif match := _FINISHED.match(message):
            self._finish(match.group(1))
        elif (match := _FAILED.match(message)) and match.group(1) not in self.failed:
            self.failed.append(match.group(1))

    @property
    def unfinished(self) -> list[str]:
        """The components that failed (as the runner logged them) or, failing that, that started and did not end."""
        return self.failed or list(self._started)

    def _start(self, component: str) -> None:
        self._started[component] = time.monotonic()
        if self.live:
            self._show_running()
        else:
            self.console.print(f"  {component:34s} started")

    def _show_running(self) -> None:
        if not self._started:
            return
        text = f"{', '.join(self._started)} running ({time.monotonic() - self._run_start:.0f} s into the run)"
        if self._status is None:
            self._status = self.console.status(text)
            self._status.start()
        else:
            self._status.update(text)

    def _finish(self, component: str) -> None:
        seconds = time.monotonic() - self._started.pop(component, time.monotonic())
        self.finished.append((component, seconds))
        self.console.print(f"  {component:34s} done {seconds:7.1f} s")
        if self.live:
            self._show_running()

    def close(self) -> None:
        if self._status is not None:
            self._status.stop()
            self._status = None
        super().close()


@contextlib.contextmanager
def shown(out: TextIO | None = None, live: bool | None = None):
    """Component lines on `out` (stdout) for the duration of the block; yields the handler."""
    from absl import logging as absl_logging

    handler = ComponentProgress(out, live)
    absl = logging.getLogger("absl")
    absl.addHandler(handler)
    # through absl's verbosity, not the logger's level: TensorFlow lowers and restores it while saving a model
    previous = absl_logging.get_verbosity()
    absl_logging.set_verbosity(absl_logging.INFO)
    try:
        yield handler
    finally:
        absl_logging.set_verbosity(previous)
        absl.removeHandler(handler)
        handler.close()
