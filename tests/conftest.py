"""Shared fixtures: a small, fast version of the project's config, rooted in a temp dir."""

from __future__ import annotations

import os

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TAXI_CONFIG = os.path.join(REPO, "configs", "taxi.yaml")


def small_overrides(
    root: str, rows: int = 800, seed: int = 1, label_signal: bool = True, data_dir: str = "data"
) -> dict:
    """Overrides that keep the real pipeline but make it run in well under a minute."""
    return {
        "data": {
            "path": os.path.join(root, data_dir),
            "generate": {"rows": rows, "seed": seed, "label_signal": label_signal},
        },
        "trainer": {"train_steps": 120, "eval_steps": 10, "batch_size": 64},
        "evaluation": {"lower_bound": 0.65, "max_regression": 0.05},
        "pipeline": {
            "root": os.path.join(root, "pipeline"),
            "metadata_path": os.path.join(root, "metadata", "metadata.sqlite"),
            "serving_dir": os.path.join(root, "serving"),
        },
    }


@pytest.fixture
def taxi_config_path() -> str:
    return TAXI_CONFIG
