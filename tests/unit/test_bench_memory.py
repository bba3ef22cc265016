"""The benchmarks' memory sampler: a component's peak is the largest sample inside its window."""

import time

import numpy as np
import pytest

from benchmarks.memory import RssSampler

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
