"""Behavioural tests of the trained model: invariance to fields that should not matter, and
the direction of changes the generator's ground truth says should raise the score."""

import numpy as np
import pytest

from datagen import taxi
from serving import instances, model_store

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def scored(first_run):
    config, summary = first_run
    model = model_store.load(summary.pushed_model, list(config.data.personal_columns))
    frame = taxi.generate(600, seed=71)
    frame = frame[frame["company"].notna()].reset_index(drop=True)

    def score(f) -> np.ndarray:
        rows = instances.from_frame(f[list(model.validator.rules) + list(config.data.personal_columns)])
        return np.array(model.predict([model.validator.instance(r, 0) for r in rows]))

    return frame, score


def test_personal_fields_do_not_change_the_prediction(scored):
    frame, score = scored
    other = frame.assign(rider_name="Someone Else", rider_email="x@example.org", rider_phone="+1-000-000-0000")
    assert np.array_equal(score(frame), score(other))


def test_an_irrelevant_identifier_barely_moves_the_prediction(scored):
    """taxi_id carries no signal in the generator; the hashed embedding may pick up noise only."""
    frame, score = scored
    shuffled = frame.assign(taxi_id=frame["taxi_id"].sample(frac=1.0, random_state=0).to_numpy())
    assert np.mean(np.abs(score(frame) - score(shuffled))) < 0.03


def test_card_instead_of_cash_raises_the_score(scored):
    """The generator gives cash a strongly negative effect on big tips."""
    frame, score = scored
    cash = frame.assign(payment_type="Cash")
    card = frame.assign(payment_type="Credit Card")
    raised = score(card) > score(cash)
    assert raised.mean() > 0.9, raised.mean()
