"""The contract every candidate model meets, written once (docs/MODELS.md explains it).

A candidate is any importable module with a `train` function. It receives `TrainingInputs` (no TFX object:
the Trainer's `run_fn` unpacks TFX's FnArgs once, in `models/trainer.py`) and returns a model over the
*transformed* features, which the run then exports with the Transform graph inside, the same signatures and
the serving contract as every other candidate:

- a `tf_keras.Model` whose inputs are named after transformed features, or
- a `tf.Module` with `input_names` (the transformed features it reads) and a `tf.function` `__call__`
  taking a dict of those features ([batch] tensors) and returning the head's output ([batch, 1] or
  [batch, classes]).

A module may declare `CAPABILITIES` (a subset of `CAPABILITIES` below). What it does not declare is
switched off for it, and the run's leaderboard says so.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import importlib.util
import os
from typing import Any, Protocol, runtime_checkable

# the optional capabilities a candidate may declare
TUNING = "tuning"  # `search_space(hp, defaults)` for the KerasTuner search; the Tuner tunes this candidate
ATTRIBUTIONS = "attributions"  # a differentiable Keras model: integrated gradients (`:explain`, importance)
TEACHER = "teacher"  # a Keras model a narrower student can be distilled from
WARM_START = "warm_start"  # loads the last blessed model's weights by layer name
TFLITE = "tflite"  # converts to TensorFlow Lite for devices
CAPABILITIES = (TUNING, ATTRIBUTIONS, TEACHER, WARM_START, TFLITE)

BUILT_IN = {"network": "models.network", "linear": "models.linear", "boosted": "models.boosted"}
DEFAULT_CANDIDATES = ("network", "boosted", "linear")


class CandidateError(RuntimeError):
    """A candidate failed to load, train or export; the message names it."""


@dataclasses.dataclass(frozen=True)
class TrainingInputs:
    """What a candidate receives (the names match TFX's FnArgs where they mean the same)."""

    name: str  # the candidate's name on the leaderboard
    train_files: list[str]  # GZIP TFRecords of transformed tf.Examples
    eval_files: list[str]
    transform_output: str  # Transform's output directory (tft.TFTransformOutput(transform_output))
    serving_model_dir: str  # where the run exports the returned model
    model_run_dir: str  # logs and reports of this training (TensorBoard, curves)
    schema_path: str | None
    custom_config: dict[str, Any]  # the run's settings: features, problem_type, num_classes, seed, ...
    hparams: dict[str, Any]  # this candidate's hyperparameters (config, then the Tuner's best trial)
    train_steps: int | None = None
    eval_steps: int | None = None
    base_model: str | None = None  # the last blessed model's directory (for a warm start)

    @property
    def head(self) -> str:
        from models.model import head_of

        return head_of(self.custom_config)

    @property
    def num_classes(self) -> int:
        return int(self.custom_config.get("num_classes") or 2)


@runtime_checkable
class Candidate(Protocol):
    """A candidate module: `train` is required; `CAPABILITIES` and `search_space` are optional."""

    def train(self, inputs: TrainingInputs) -> Any: ...


def trainer_id(name: str) -> str:
    """The candidate's Trainer in the pipeline: `Trainer` for the network (as before candidates), else
    `Trainer_<name>`."""
    return "Trainer" if name == "network" else f"Trainer_{name}"


def module_name(name: str, module: str | None) -> str:
    """The module of a configured candidate: its own, else the built-in of that name."""
    if module:
        return module
    if name not in BUILT_IN:
        raise CandidateError(f"candidate '{name}' names no module, and there is no built-in of that name "
                             f"(built-in: {', '.join(BUILT_IN)})")  # fmt: skip
    return BUILT_IN[name]


def load(name: str, module: str | None = None) -> Candidate:
    """The candidate's module, checked against the contract."""
    path = module_name(name, module)
    try:
        loaded = importlib.import_module(path)
    except ImportError as e:
        raise CandidateError(f"candidate '{name}': cannot import module '{path}': {e}") from e
    if not isinstance(loaded, Candidate):
        raise CandidateError(f"candidate '{name}': module '{path}' has no train(inputs) function")
    unknown = set(capabilities(loaded)) - set(CAPABILITIES)
    if unknown:
        raise CandidateError(f"candidate '{name}': unknown capabilities {sorted(unknown)} (known: {CAPABILITIES})")
    return loaded


def capabilities(module) -> frozenset[str]:
    return frozenset(getattr(module, "CAPABILITIES", ()))


def source_fingerprint(name: str, module: str | None = None) -> str:
    """sha256 of the candidate module's source file, found without importing it: a changed module is
    retrained, not taken from the cache."""
    path = module_name(name, module)
    try:
        spec = importlib.util.find_spec(path)
    except (ImportError, ValueError) as e:
        raise CandidateError(f"candidate '{name}': cannot find module '{path}': {e}") from e
    if spec is None or not spec.origin or not os.path.isfile(spec.origin):
        raise CandidateError(f"candidate '{name}': cannot find module '{path}' (is its folder on PYTHONPATH?)")
    with open(spec.origin, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()[:16]
