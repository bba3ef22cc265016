"""What TFMA wrote, read back: slice keys as text and each model's overall metrics."""

from __future__ import annotations

from tfx.dsl.io import fileio


def slice_value(key) -> str:
    """A TFMA slice key's value as text."""
    kind = key.WhichOneof("kind")
    value = getattr(key, kind) if kind else ""
    return value.decode() if isinstance(value, bytes) else str(value)


def overall_metrics(evaluation_uri: str) -> dict[str, dict[str, float]]:
    """model name -> metric -> value, on the whole eval split (a lone model's, unnamed, as `candidate`)."""
    import tensorflow_model_analysis as tfma

    found: dict[str, dict[str, float]] = {}
    if not fileio.isdir(evaluation_uri):
        return found
    for metrics in tfma.load_metrics(evaluation_uri):
        if metrics.slice_key.single_slice_keys:
            continue
        for kv in metrics.metric_keys_and_values:
            if kv.key.is_diff or not kv.value.HasField("double_value"):
                continue
            found.setdefault(kv.key.model_name or "candidate", {})[kv.key.name] = kv.value.double_value.value
    return found


def slice_label(slice_key) -> str:
    """'feature=value' (crossed: joined by ', '), or '' for the whole split."""
    return ", ".join(f"{k.column}={slice_value(k)}" for k in slice_key.single_slice_keys)


def model_metrics(evaluation_uri: str, metric: str) -> dict[str, dict[str, float]]:
    """model name -> slice label ('' overall) -> the value of `metric` (TFMA's metric name, e.g. `auc`)."""
    import tensorflow_model_analysis as tfma

    found: dict[str, dict[str, float]] = {}
    for metrics in tfma.load_metrics(evaluation_uri):
        where = slice_label(metrics.slice_key)
        for kv in metrics.metric_keys_and_values:
            if kv.key.name == metric and not kv.key.is_diff and kv.value.HasField("double_value"):
                found.setdefault(kv.key.model_name or "candidate", {})[where] = kv.value.double_value.value
    return found


def validation_failures_by_model(evaluation_uri: str) -> dict[str, list[str]]:
    """model name -> one line per failed TFMA threshold: the slice, the metric, its value and the threshold."""
    import tensorflow_model_analysis as tfma

    if not fileio.isdir(evaluation_uri) or not any(n.startswith("validations") for n in fileio.listdir(evaluation_uri)):
        return {}
    out: dict[str, list[str]] = {}
    for per_slice in tfma.load_validation_result(evaluation_uri).metric_validations_per_slice:
        where = slice_label(per_slice.slice_key) or "overall"
        for f in per_slice.failures:
            line = f"[{where}] {f.metric_key.name} = {f.metric_value.double_value.value:.4f} fails {threshold_text(f.metric_threshold)}"
            out.setdefault(f.metric_key.model_name or "candidate", []).append(line)
    return out


def threshold_text(threshold) -> str:
    if threshold.HasField("value_threshold"):
        bound = threshold.value_threshold
        if bound.HasField("upper_bound"):
            return f"upper bound {bound.upper_bound.value}"
        return f"lower bound {bound.lower_bound.value}"
    if threshold.HasField("change_threshold"):
        return f"change vs the last blessed model (absolute {threshold.change_threshold.absolute.value:+.4f})"
    return str(threshold).replace("\n", " ")
