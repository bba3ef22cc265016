"""What the model code receives from the pipeline: the settings `preprocessing_fn` and `run_fn` read
(custom_config), and the fingerprint of the model code that keys the cache."""

from __future__ import annotations

import hashlib
import os

from models.features import FeatureSpec
from settings.config import Config

MODEL_CODE_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "models")


def transform_custom_config(config: Config) -> dict:
    """What `preprocessing_fn` receives. The code fingerprint makes a change to the model
    code invalidate the cached Transform and Trainer runs."""
    f = config.features
    spec = FeatureSpec(
        label=config.label, numeric=f.numeric, categorical=f.categorical, hashed=f.hashed,
        timestamp=f.timestamp, top_k=f.top_k, oov_buckets=f.oov_buckets, buckets=f.buckets, crosses=f.crosses,
    )  # fmt: skip
    return {"features": spec.to_dict(), "problem_type": config.problem_type, "code_fingerprint": code_fingerprint()}


def trainer_custom_config(config: Config) -> dict:
    """What `run_fn` receives: the Transform settings plus the trainer's own."""
    t = config.trainer
    hparams = {
        "hidden_units": list(t.hidden_units), "learning_rate": t.learning_rate, "embedding_dim": t.embedding_dim,
        "dropout": t.dropout, "l2": t.l2,
    }  # fmt: skip
    return {
        **transform_custom_config(config), "hparams": hparams, "batch_size": t.batch_size, "epochs": t.epochs,
        "early_stopping_patience": t.early_stopping_patience, "decision_threshold": config.decision_threshold(),
        "warm_start": t.warm_start, "distribution": t.distribution, "cache_input": t.cache_input,
        "num_classes": config.num_classes, "class_weight": t.class_weight, "label_classes": list(config.label_classes),
        "seed": t.seed,
        "edge": config.edge.model_dump() if config.edge else None,
    }  # fmt: skip


def code_fingerprint(directory: str = MODEL_CODE_DIR) -> str:
    """sha256 over the model package's Python sources."""
    digest = hashlib.sha256()
    for name in sorted(os.listdir(directory)):
        if name.endswith(".py"):
            digest.update(name.encode())
            with open(os.path.join(directory, name), "rb") as f:
                digest.update(f.read())
    return digest.hexdigest()[:16]
