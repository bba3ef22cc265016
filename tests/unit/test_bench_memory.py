"""The benchmarks' memory sampler: a component's peak is the largest sample inside its window."""

import os
import signal
import time

import numpy as np
import psutil
import pytest

from benchmarks.memory import RssSampler, tree_rss

pytestmark = pytest.mark.unit


def test_peak_within_a_window_sees_an_allocation_only_there():
    with RssSampler(interval=0.02) as memory:
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
