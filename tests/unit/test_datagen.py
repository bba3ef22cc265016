import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from datagen import taxi

pytestmark = pytest.mark.data


def signal_auc(train, test) -> float:
    def features(frame):
        x = np.stack(
            [frame.payment_type == p for p in taxi.PAYMENT_TYPES]
            + [frame.dropoff_community_area == taxi.AIRPORT_AREA, (frame.trip_start_timestamp // 3600) % 24 >= 21],
            axis=1,
        ).astype(float)
        return x

    model = LogisticRegression().fit(features(train), train[taxi.LABEL])
    return roc_auc_score(test[taxi.LABEL], model.predict_proba(features(test))[:, 1])


def test_same_seed_same_frame_other_seed_other_frame():
    a, b, c = taxi.generate(500, 3), taxi.generate(500, 3), taxi.generate(500, 4)
    assert a.equals(b)
    assert not a.drop(columns="trip_id").equals(c.drop(columns="trip_id"))


def test_shape_imbalance_gaps_and_outliers():
    frame = taxi.generate(20000, 0)
    assert len(frame) == 20000 and frame.trip_id.is_unique
    assert 0.15 < frame[taxi.LABEL].mean() < 0.25  # about 1:4
    assert 0.01 < frame.trip_seconds.isna().mean() < 0.04
    assert 0.03 < frame.company.isna().mean() < 0.08
    assert (frame.trip_miles > 100).sum() > 20  # odometer glitches
    assert (frame.fare == 999.99).sum() > 20
    assert frame.taxi_id.nunique() > 3000 and frame.payment_type.nunique() == 6
    months = np.unique(frame.trip_start_timestamp.values.astype("datetime64[s]").astype("datetime64[M]"))
    assert len(months) == 6


def test_personal_and_leaky_columns_are_present():
    frame = taxi.generate(1000, 0)
    assert set(taxi.PERSONAL_COLUMNS) <= set(frame.columns)
    assert frame.rider_email.str.contains("@").all()
    leak = (frame[taxi.LEAKY_COLUMN] / frame.fare > 0.2).astype(int)
    assert (leak == frame[taxi.LABEL]).mean() > 0.98


def test_label_signal_is_learnable_and_can_be_removed():
    train, test = taxi.generate(8000, 1), taxi.generate(4000, 2)
    assert signal_auc(train, test) > 0.72
    no_train, no_test = taxi.generate(8000, 1, label_signal=False), taxi.generate(4000, 2, label_signal=False)
    assert abs(signal_auc(no_train, no_test) - 0.5) < 0.05


def test_rejects_empty_size():
    with pytest.raises(ValueError, match="n_rows must be positive"):
        taxi.generate(0)


def test_the_true_probability_comes_with_the_frame_and_bounds_any_model():
    frame = taxi.generate(20000, seed=42)
    bayes = roc_auc_score(frame[taxi.LABEL], frame.attrs["probability"])
    assert 0.78 < bayes < 0.86  # the ceiling the pipeline's model is compared with
