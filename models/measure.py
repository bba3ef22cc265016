"""How big a saved model is and how long one call of it takes: what the size and latency tables report."""

from __future__ import annotations

import os
import time
from collections.abc import Callable

import numpy as np
import tensorflow as tf


def median_ms(call: Callable[[], object], calls: int = 100) -> float:
    """Median wall time of `call()` in milliseconds, after one call to warm it up."""
    call()
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return round(float(np.median(times)) * 1000, 4)


def directory_bytes(path: str, skip: str) -> int:
    """Bytes of the files under `path`, without those under a folder named `skip` (e.g. assets.extra)."""
    return sum(
        tf.io.gfile.stat(os.path.join(d, f)).length for d, _, files in tf.io.gfile.walk(path) for f in files
        if skip not in os.path.relpath(d, path).split(os.sep)
    )  # fmt: skip


def latency_ms(model, inputs: dict, calls: int = 100) -> float:
    """Median wall time of one traced forward pass of a Keras model."""
    forward = tf.function(lambda x: model(x, training=False))
    return median_ms(lambda: forward(inputs), calls)
