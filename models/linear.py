"""The built-in linear candidate: the network's code with no hidden layer and a width-1 embedding per id (one
weight per category, as one-hot logistic or linear regression), with larger steps (`baselines.linear_learning_rate`).

Like the trees (models/boosted.py), it fits a uniform sample of the train split once the split is larger than
`MAX_ROWS`, validated on a uniform sample of the eval split; its metadata says how many rows of each it used."""

from __future__ import annotations

import json
import tempfile

import tf_keras as keras

from models import sampling
from models.candidate import ATTRIBUTIONS, WARM_START, TrainingInputs
from models.model import HParams
from models.network import fit_network

CAPABILITIES = (ATTRIBUTIONS, WARM_START)
DEFAULT_LEARNING_RATE = 0.05
MAX_ROWS = 200_000  # one weight per feature and category: a uniform sample this large fits them as all rows would
MAX_EVAL_ROWS = 50_000  # for early stopping's eval objective each epoch


def train(inputs: TrainingInputs) -> keras.Model:
    rate = float(inputs.custom_config.get("linear_learning_rate") or DEFAULT_LEARNING_RATE)
    seed = int(inputs.custom_config.get("seed", 0))
    with tempfile.TemporaryDirectory() as scratch:
        sampled, rows = sampling.sampled_inputs(inputs, MAX_ROWS, MAX_EVAL_ROWS, scratch, seed)
        print(json.dumps({"event": "linear_rows", **rows}))
        model = fit_network(sampled, HParams(hidden_units=(), embedding_dim=1, learning_rate=rate))
    model.metadata = rows
    return model
