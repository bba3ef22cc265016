"""The Transform component's `preprocessing_fn`.

Its graph is exported with the model, so the serving signature applies exactly
the same preprocessing as training.
"""

from __future__ import annotations

import tensorflow as tf
import tensorflow_transform as tft

from models.features import (
    HOURS,
    WEEKDAYS,
    FeatureSpec,
    bucket_name,
    cross_members,
    cross_name,
    hour_name,
    missing_name,
    weekday_name,
)

MISSING_TOKEN = "__missing__"
Z_CLIP = 5.0  # outliers beyond five standard deviations are clipped


def preprocessing_fn(inputs: dict, custom_config: dict) -> dict:
    """Maps raw features to model features.

    Args:
        inputs: raw tensors keyed by column, dense `[batch, 1]` or sparse for
            columns with missing values.
        custom_config: `{"features": FeatureSpec.to_dict(), ...}`.

    Returns:
        Scaled numerics with missing indicators (and quantile-bucket ids where
        configured), integer ids for categoricals (vocabulary with OOV buckets, or
        hashing), hour and weekday of the timestamp, hashed crosses of id pairs,
        and the label when present.
    """
    spec = FeatureSpec.from_dict(custom_config["features"]).restricted_to(inputs)  # screened-out: not parsed
    outputs = {}
    for name in spec.numeric:
        value, present = _dense(inputs[name], tf.constant(0.0, tf.float32))
        value = tf.cast(value, tf.float32)
        # mean and variance of the present values, in one analysis phase; missing -> the mean (z = 0)
        observed = tf.boolean_mask(value, present)
        mean, var = tft.mean(observed), tft.var(observed)
        z = tf.where(present, (value - mean) * tf.math.rsqrt(tf.maximum(var, 1e-12)), 0.0)
        outputs[name] = tf.clip_by_value(z, -Z_CLIP, Z_CLIP)
        outputs[missing_name(name)] = tf.cast(~present, tf.float32)
    for name in spec.categorical:
        outputs[name] = tft.compute_and_apply_vocabulary(
            _as_token(inputs[name]), top_k=spec.top_k, num_oov_buckets=spec.oov_buckets, vocab_filename=name
        )
    for name, buckets in spec.hashed.items():
        outputs[name] = tft.hash_strings(_as_token(inputs[name]), buckets)
    if spec.timestamp:
        seconds, _ = _dense(inputs[spec.timestamp], tf.constant(0, tf.int64))
        seconds = tf.cast(seconds, tf.int64)
        outputs[hour_name(spec.timestamp)] = tf.math.floormod(seconds // 3600, HOURS)
        # 1970-01-01 was a Thursday; Monday is 0
        outputs[weekday_name(spec.timestamp)] = tf.math.floormod(seconds // 86400 + 3, WEEKDAYS)
    for name, count in spec.buckets.items():  # quantile buckets of the raw value; missing gets its own id
        value, present = _dense(inputs[name], tf.constant(0.0, tf.float32))
        value = tf.cast(value, tf.float32)
        bucket = tft.bucketize(tf.boolean_mask(value, present), count)
        outputs[bucket_name(name)] = tf.tensor_scatter_nd_update(
            tf.fill(tf.shape(value, out_type=tf.int64), tf.constant(count, tf.int64)),
            tf.where(present),
            tf.cast(bucket, tf.int64),
        )
    for key, count in spec.crosses.items():  # a pair of id features, hashed together
        a, b = cross_members(key)
        joined = tf.strings.join([tf.strings.as_string(outputs[a]), tf.strings.as_string(outputs[b])], separator="x")
        outputs[cross_name(key)] = tft.hash_strings(joined, count)
    if spec.label in inputs:  # class ids for classification, real values for regression
        regression = custom_config.get("problem_type") == "regression"
        label, _ = _dense(inputs[spec.label], tf.constant(0, inputs[spec.label].dtype))
        outputs[spec.label] = tf.cast(label, tf.float32 if regression else tf.int64)
    return outputs


def _dense(x, default: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Returns a `[batch]` tensor with `default` where the value is missing, and a presence mask."""
    if isinstance(x, tf.SparseTensor):
        batch = x.dense_shape[0]
        shape = tf.stack([batch, tf.constant(1, tf.int64)])
        first = tf.SparseTensor(x.indices, x.values, shape)
        present = tf.SparseTensor(x.indices, tf.ones_like(x.values, tf.bool), shape)
        value = tf.sparse.to_dense(first, tf.cast(default, x.dtype))[:, 0]
        return value, tf.sparse.to_dense(present, False)[:, 0]
    value = tf.reshape(x, [-1])
    return value, tf.ones_like(value, tf.bool)


def _as_token(x) -> tf.Tensor:
    value, present = _dense(x, tf.constant("" if x.dtype == tf.string else 0, x.dtype))
    token = value if value.dtype == tf.string else tf.strings.as_string(value)
    return tf.where(present, token, MISSING_TOKEN)
