"""What TFMA wrote, read back: slice keys as text and each model's overall metrics."""

from __future__ import annotations

import os


def slice_value(key) -> str:
    """A TFMA slice key's value as text."""
    kind = key.WhichOneof("kind")
    value = getattr(key, kind) if kind else ""
    return value.decode() if isinstance(value, bytes) else str(value)


def overall_metrics(evaluation_uri: str) -> dict[str, dict[str, float]]:
    """model name -> metric -> value, on the whole eval split (a lone model's, unnamed, as `candidate`)."""
    import tensorflow_model_analysis as tfma

    found: dict[str, dict[str, float]] = {}
    if not os.path.isdir(evaluation_uri):
        return found
    for metrics in tfma.load_metrics(evaluation_uri):
        if metrics.slice_key.single_slice_keys:
            continue
        for kv in metrics.metric_keys_and_values:
            if kv.key.is_diff or not kv.value.HasField("double_value"):
                continue
            found.setdefault(kv.key.model_name or "candidate", {})[kv.key.name] = kv.value.double_value.value
    return found
