"""Feature attributions by integrated gradients, per raw input.

The model embeds ids and concatenates them with the scaled numerics into one feature
vector (its `features` layer). Integrated gradients are taken on that vector, from an
all-zero baseline (every numeric at its training mean, no missing flag, a zero
embedding), and each raw input gets the sum over its own columns: a numeric and its
missing flag, a categorical's embedding, the timestamp's hour and weekday embeddings.
"""

from __future__ import annotations

import tensorflow as tf
import tf_keras as keras

FEATURES_LAYER = "features"
IMPORTANCE_FILE = "feature_importance.json"
ATTRIBUTION_PREFIX = "attribution__"
EXPLAIN_SIGNATURE = "explain_columns"
DEFAULT_STEPS = 64  # the first pass; Vertex AI uses 50
MAX_STEPS = 1024  # doubled up to this while the attributions miss completeness (a ReLU network's gradients jump)
RTOL, ATOL = 0.01, 1e-3  # completeness: |sum(attributions) - (output - baseline)| <= RTOL * |that change| + ATOL


def split_model(model: keras.Model) -> tuple[keras.Model, callable]:
    """(encoder: inputs -> feature vector, head: feature vector -> output)."""
    layer = model.get_layer(FEATURES_LAYER)
    encoder = keras.Model(model.inputs, layer.output)
    last = model.get_layer(model.output_names[0])  # attributes set later (a Transform layer) follow it
    after = model.layers[model.layers.index(layer) + 1 : model.layers.index(last) + 1]

    def head(vector):
        x = vector
        for each in after:
            x = each(x, training=False)
        return x

    return encoder, head


def column_groups(columns: list[tuple[str, int]], raw_of: dict) -> dict[str, list[tuple[int, float]]]:
    """Raw input -> the feature-vector columns that come from it, with the share of each that is
    its own (a cross of two raw inputs gives each half).

    Args:
        columns: (model input, width) in the order the model concatenates them.
        raw_of: model input -> the raw input (or tuple of raw inputs) it was made from.
    """
    groups: dict[str, list[tuple[int, float]]] = {}
    start = 0
    for name, width in columns:
        raws = raw_of.get(name, name)
        raws = (raws,) if isinstance(raws, str) else tuple(raws)
        for raw in raws:
            groups.setdefault(raw, []).extend((i, 1.0 / len(raws)) for i in range(start, start + width))
        start += width
    return groups


def integrated_gradients(head, vector: tf.Tensor, steps: int = DEFAULT_STEPS, max_steps: int = MAX_STEPS,
                         rtol: float = RTOL, atol: float = ATOL) -> tf.Tensor:  # fmt: skip
    """[batch, columns] attributions of `head`'s output at `vector`, from a zero baseline
    (trapezoid rule). They add up to head(vector) - head(0) (for a head with several outputs,
    of the output predicted at `vector`) within rtol * |that change| + atol: the step count
    starts at `steps` and doubles while any row misses that, up to `max_steps`."""
    vector = tf.convert_to_tensor(vector, tf.float32)
    # one output to attribute per row: the score, or for several classes the predicted one
    predicted = head(vector)
    target = tf.one_hot(tf.argmax(predicted, axis=1), tf.shape(predicted)[1])
    change = tf.reduce_sum((predicted - head(tf.zeros_like(vector[:1]))) * target, axis=1)

    def attribute(n):
        alphas = tf.reshape(tf.linspace(0.0, 1.0, n + 1), [-1, 1, 1])
        path = alphas * vector[tf.newaxis]  # [n + 1, batch, columns]
        flat = tf.reshape(path, [-1, tf.shape(vector)[1]])
        mask = tf.reshape(tf.tile(target[tf.newaxis], [n + 1, 1, 1]), [-1, tf.shape(predicted)[1]])
        with tf.GradientTape() as tape:
            tape.watch(flat)
            output = tf.reduce_sum(head(flat) * mask)
        grads = tf.reshape(tape.gradient(output, flat), tf.shape(path))
        return vector * tf.reduce_mean((grads[:-1] + grads[1:]) / 2.0, axis=0)

    def incomplete(n, attributions):
        error = tf.abs(tf.reduce_sum(attributions, axis=1) - change)
        return tf.logical_and(n < max_steps, tf.reduce_any(error > rtol * tf.abs(change) + atol))

    first = tf.constant(steps, tf.int32)
    _, attributions = tf.while_loop(incomplete, lambda n, _: (n * 2, attribute(n * 2)), (first, attribute(first)),
                                    shape_invariants=(first.shape, tf.TensorShape([None, vector.shape[1]])))  # fmt: skip
    return attributions


def grouped(attributions: tf.Tensor, groups: dict[str, list[tuple[int, float]]]) -> dict[str, tf.Tensor]:
    """Raw input -> [batch] attribution (the weighted sum over its columns)."""
    out = {}
    for raw, cols in groups.items():
        index, weight = [c for c, _ in cols], tf.constant([w for _, w in cols], tf.float32)
        out[raw] = tf.reduce_sum(tf.gather(attributions, index, axis=1) * weight, axis=1)
    return out


def global_importance(model: keras.Model, groups: dict[str, list[int]], dataset: tf.data.Dataset,
                      rows: int = 512, steps: int = DEFAULT_STEPS) -> dict:  # fmt: skip
    """Mean |attribution| per raw input over `rows` rows of a (features, label) dataset, at a fixed `steps`
    (a ranking averaged over rows: no row's completeness is reported, so no doubling)."""
    encoder, head = split_model(model)
    totals = {raw: 0.0 for raw in groups}
    seen = 0
    for features, _ in dataset:
        found = grouped(integrated_gradients(head, encoder(features, training=False), steps, max_steps=steps), groups)
        for raw, values in found.items():
            totals[raw] += float(tf.reduce_sum(tf.abs(values)))
        seen += int(tf.shape(next(iter(found.values())))[0])
        if seen >= rows:
            break
    return {"method": "integrated_gradients", "steps": steps, "rows": seen,
            "mean_abs_attribution": {raw: total / max(seen, 1) for raw, total in totals.items()}}  # fmt: skip


def vertex_explanation_spec(inputs: list[str], output: str, path_count: int = 10) -> dict:
    """Vertex AI Explainable AI's ExplanationMetadata and ExplanationParameters for the model's
    raw inputs. Sampled Shapley, as Vertex attributes a custom-container model through its
    predict route (integrated gradients there need a prebuilt TensorFlow container)."""
    return {
        "metadata": {"inputs": {name: {"input_tensor_name": name} for name in inputs},
                     "outputs": {output: {"output_tensor_name": output}}},
        "parameters": {"sampled_shapley_attribution": {"path_count": path_count}},
    }  # fmt: skip
