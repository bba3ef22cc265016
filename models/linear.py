"""The built-in linear candidate: the network's code with no hidden layer and a width-1 embedding per id (one
weight per category, as one-hot logistic or linear regression), with larger steps (`baselines.linear_learning_rate`)."""

from __future__ import annotations

import tf_keras as keras

from models.candidate import ATTRIBUTIONS, WARM_START, TrainingInputs
from models.model import HParams
from models.network import fit_network

CAPABILITIES = (ATTRIBUTIONS, WARM_START)
DEFAULT_LEARNING_RATE = 0.05


def train(inputs: TrainingInputs) -> keras.Model:
    rate = float(inputs.custom_config.get("linear_learning_rate") or DEFAULT_LEARNING_RATE)
    return fit_network(inputs, HParams(hidden_units=(), embedding_dim=1, learning_rate=rate))
