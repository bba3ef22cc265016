"""Memory over a run, sampled, so that a benchmark can say which component held the most.

A process tree's memory is the sum of its processes' proportional set sizes (PSS: a page shared by n
processes counts 1/n in each) where the system reports them (Linux), so that the components the DAG runner
forks, which share the runner's pages until they write them, are not counted once per process. Elsewhere,
resident set sizes."""

from __future__ import annotations

import contextlib
import threading
import time

import psutil


def tree_rss(process: psutil.Process) -> int:
    """Bytes resident in `process` and every process under it (forked components, Beam's workers), shared
    pages counted once."""
    try:
        tree = [process, *process.children(recursive=True)]
    except psutil.NoSuchProcess:  # the root ended (a sampled subprocess): nothing left resident
        return 0
    total = 0
    for p in tree:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):  # ended between listing and read
            total += _resident(p)
    return total


def _resident(process: psutil.Process) -> int:
    if hasattr(psutil.Process, "memory_full_info") and psutil.LINUX:
        return process.memory_full_info().pss
    return process.memory_info().rss


class RssSampler:
    """Samples a process tree's resident memory (this process's, or `process`'s: a benchmark's subprocess) in a
    daemon thread, as (epoch seconds, bytes) pairs, from entering the `with` block until leaving it: every `interval` seconds, or less often where a sample costs
    more than `max_share` of a core. (A process's PSS is summed by the kernel over its page tables: for a
    tree of TensorFlow processes a sample took about 50 ms, and at 4 a second the sampler took 16 % of a core
    from the run it timed.)"""

    def __init__(self, interval: float = 0.25, max_share: float = 0.05, measure=tree_rss,
                 process: psutil.Process | None = None):  # fmt: skip
        self.interval, self.max_share, self.measure = interval, max_share, measure
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        self._process = process or psutil.Process()

    def _run(self) -> None:
        while True:
            start = time.thread_time()
            self.samples.append((time.time(), self.measure(self._process)))
            if self._stop.wait(next_wait(self.interval, time.thread_time() - start, self.max_share)):
                return

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def peak_mb(self, start: float | None = None, end: float | None = None) -> int | None:
        """The largest sample, in MB, between epoch seconds `start` and `end` (the whole run if unset);
        None when no sample fell in that window (a step shorter than the interval)."""
        window = [rss for t, rss in self.samples if (start is None or t >= start) and (end is None or t <= end)]
        return round(max(window) / 2**20) if window else None


def next_wait(interval: float, cost: float, max_share: float) -> float:
    """Seconds until the next sample: `interval`, or long enough that a sample costing `cost` seconds of CPU
    takes at most `max_share` of a core."""
    return max(interval, cost * (1 / max_share - 1))
