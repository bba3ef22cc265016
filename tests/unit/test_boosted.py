"""The TF evaluation of the boosted trees matches scikit-learn, with missing values, before and after a SavedModel."""

import numpy as np
import pytest
import tensorflow as tf
from sklearn.datasets import load_breast_cancer, load_diabetes, load_wine

from models.boosted import BoostedModule, ensemble_arrays, fit_boosted

pytestmark = pytest.mark.model

DATASETS = {"binary": load_breast_cancer, "multiclass": load_wine, "regression": load_diabetes}


def with_missing(x: np.ndarray, rate: float, seed: int) -> np.ndarray:
    """float32 copy of x with a `rate` share of the values set to NaN."""
    x = x.astype(np.float32)
    x[np.random.default_rng(seed).random(x.shape) < rate] = np.nan
    return x


def sklearn_output(model, x: np.ndarray, head: str) -> np.ndarray:
    if head == "binary":
        return model.predict_proba(x)[:, 1:]
    if head == "multiclass":
        return model.predict_proba(x)
    return model.predict(x)[:, None]


@pytest.mark.parametrize("head", sorted(DATASETS))
def test_tf_ensemble_matches_sklearn_and_survives_a_saved_model(head, tmp_path):
    x, y = DATASETS[head](return_X_y=True)
    train = with_missing(x, 0.1, seed=0)
    model = fit_boosted(train, y, head, num_classes=3 if head == "multiclass" else 2, max_iter=60)
    arrays = ensemble_arrays(model)
    assert arrays["value"].shape[0] == model.n_iter_ * model.n_trees_per_iteration_
    assert arrays["missing_go_to_left"][~arrays["is_leaf"]].any()  # NaNs reach both sides somewhere

    rows = np.concatenate([x.astype(np.float32), train, with_missing(x, 0.3, seed=1)])
    expected = sklearn_output(model, rows, head)
    module = BoostedModule(arrays, head)
    got = module(tf.constant(rows)).numpy()
    assert got.shape == expected.shape and got.dtype == np.float32
    print(f"{head}: max abs difference {np.abs(got - expected).max():.2e}, {len(arrays['value'])} trees")
    # against sklearn's float64 answer rounded to float32: regression values near 300 are 3e-5 apart in float32
    np.testing.assert_allclose(got, expected.astype(np.float32), rtol=0, atol=1e-5)

    tf.saved_model.save(module, str(tmp_path / "boosted"))
    loaded = tf.saved_model.load(str(tmp_path / "boosted"))
    np.testing.assert_array_equal(loaded(tf.constant(rows)).numpy(), got)


def test_columns_follow_num_classes_when_a_class_is_absent():
    x, y = load_wine(return_X_y=True)
    keep = y != 1
    model = fit_boosted(x[keep], np.where(y[keep] == 2, 3, 0), "multiclass", num_classes=4, max_iter=10)
    got = BoostedModule(ensemble_arrays(model), "multiclass", num_classes=4)(tf.constant(x, tf.float32)).numpy()
    proba = model.predict_proba(x)
    np.testing.assert_allclose(got[:, [0, 3]], proba, atol=1e-5)
    np.testing.assert_array_equal(got[:, [1, 2]], 0.0)


def test_the_same_rows_and_seed_give_the_same_trees_and_another_seed_other_ones():
    """The trees' part of a deterministic run (tests/e2e/test_console.py runs the network's from scratch):
    the subsample, the early-stopping split and the bins follow the seed alone."""
    x, y = load_breast_cancer(return_X_y=True)
    fit = lambda seed: ensemble_arrays(fit_boosted(x, y, "binary", seed=seed, max_rows=400, max_iter=30))  # noqa: E731
    first, again, other = fit(3), fit(3), fit(4)
    assert all(np.array_equal(first[k], again[k]) for k in first)
    assert not all(first[k].shape == other[k].shape and np.array_equal(first[k], other[k]) for k in first)
