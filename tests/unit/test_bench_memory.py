"""The benchmarks' memory sampler: a component's peak is the largest sample inside its window."""

import os
import signal
import time

import numpy as np
import psutil
import pytest

from benchmarks.memory import RssSampler, next_wait, tree_rss

pytestmark = pytest.mark.unit


def test_peak_within_a_window_sees_an_allocation_only_there():
    # this process alone: the session's fork server, a child, may still be importing TensorFlow
    with RssSampler(interval=0.02, max_share=1.0, measure=lambda p: p.memory_info().rss) as memory:
        time.sleep(0.1)
        start = time.time()
        block = np.ones(64 * 2**20 // 8)  # 64 MiB, touched
        time.sleep(0.1)
        end = time.time()
        del block
        time.sleep(0.1)
    before, during, after = memory.peak_mb(None, start), memory.peak_mb(start, end), memory.peak_mb(end + 0.05)
    assert during - before >= 60 and during - after >= 60
    assert memory.peak_mb() == during
    assert memory.peak_mb(end + 10, end + 20) is None  # no sample in that window


def test_pages_a_forked_child_shares_with_its_parent_count_once():
    block = np.ones(256 * 2**20 // 8)  # 256 MiB, touched
    alone = tree_rss(psutil.Process())
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # reads the block (no copy), then waits to be killed
        os.write(write, str(float(block[::4096].sum())).encode())
        time.sleep(60)
        os._exit(0)
    try:
        os.read(read, 64)
        together = tree_rss(psutil.Process())
        child_rss = psutil.Process(child).memory_info().rss
    finally:
        os.kill(child, signal.SIGKILL)
        os.waitpid(child, 0)
    assert child_rss >= 250 * 2**20  # as resident in the child as in the parent: RSS would count it twice
    assert together - alone < 64 * 2**20


def test_the_sampler_takes_at_most_its_share_of_a_core():
    """A sample that costs 20 ms of CPU, asked for every millisecond: at most 5 % of a core, so about one
    sample a 0.4 s (unbounded, the sampler would busy a core)."""

    def costly(process):
        end = time.thread_time() + 0.02
        while time.thread_time() < end:
            pass
        return 1

    with RssSampler(interval=0.001, max_share=0.05, measure=costly) as memory:
        time.sleep(1.0)
    assert 2 <= len(memory.samples) <= 4
    assert next_wait(0.25, 0.001, 0.05) == 0.25 and next_wait(0.25, 0.05, 0.05) == pytest.approx(0.95)


def test_a_subprocess_tree_is_sampled_from_its_parent_and_its_end_is_no_error():
    import subprocess
    import sys

    code = "import numpy as np, time; b = np.ones(128 * 2**20 // 8); time.sleep(1.0)"  # 128 MiB, touched
    process = subprocess.Popen([sys.executable, "-c", code])
    with RssSampler(interval=0.05, max_share=1.0, process=psutil.Process(process.pid)) as memory:
        process.wait()
        time.sleep(0.2)  # samples after it ended
    assert memory.peak_mb() >= 128
    assert memory.samples[-1][1] == 0  # ended: nothing resident, the sampler still running
