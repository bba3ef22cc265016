"""Shared fixtures: a small, fast version of the project's config, rooted in a temp dir."""

from __future__ import annotations

import os
import shutil

import pytest

from settings.yaml_files import deep_merge, workdir_overrides

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TAXI_CONFIG = os.path.join(REPO, "configs", "taxi.yaml")


def pytest_configure(config) -> None:
    """The pipeline runs' fork server starts now, in a session that may run pipelines (one that selects e2e
    tests), with the environment the session started with, as `make run` starts it before its own imports:
    importing TensorFlow Transform (as test modules do while they are collected) sets TF_USE_LEGACY_KERAS,
    which changes how TFMA loads the models in a server started after it. So the choice is made before
    collection, from the command line: a unit-only session (`-m unit`, or paths under tests/unit) starts none."""
    if _may_run_pipelines(config):
        from pipelines import component_processes

        component_processes.start()


@pytest.hookimpl(tryfirst=True)
def pytest_xdist_make_scheduler(config, log):
    """`--dist loadfile` (`make test`) with one change: the test files that read the shared first run (a test or
    fixture of theirs takes `first_run` or `owned_root`) are one unit, on one worker, so that the session makes
    that run once rather than once per worker."""
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    shared = first_run_files()

    class FirstRunTogether(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            path = super()._split_scope(nodeid)
            return FIRST_RUN_GROUP if path in shared else path

    return FirstRunTogether(config, log)


FIRST_RUN_GROUP = "first_run"


def first_run_files() -> set[str]:
    """The test files (relative to the repository, as in node ids) with a function that takes the first run."""
    import ast
    import glob

    found = set()
    for path in glob.glob(os.path.join(REPO, "tests", "**", "test_*.py"), recursive=True):
        with open(path, encoding="utf-8") as f:
            tree = ast.parse(f.read())
        functions = (n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef))
        if any({a.arg for a in f.args.args} & {"first_run", "owned_root"} for f in functions):
            found.add(os.path.relpath(path, REPO))
    return found


E2E_MARKS = (
    {"e2e"},
    {"e2e", "image"},
    {"e2e", "replay"},
)  # the markers the pipeline-running test modules carry (tests/e2e)


def _may_run_pipelines(config) -> bool:
    """Whether the session's mark expression can select an e2e test (see E2E_MARKS) and its paths reach beyond
    tests/unit."""
    from _pytest.mark.expression import Expression

    if config.option.markexpr:
        expression = Expression.compile(config.option.markexpr)
        if not any(expression.evaluate(lambda name, _m=marks, **_: name in _m) for marks in E2E_MARKS):
            return False
    unit = os.path.join(REPO, "tests", "unit") + os.sep
    paths = [os.path.abspath(os.path.join(config.invocation_params.dir, a.split("::")[0])) for a in config.args]
    return not paths or any(not (p + os.sep).startswith(unit) for p in paths)


def small_overrides(
    root: str, rows: int = 2000, seed: int = 1, label_signal: bool = True, data_dir: str = "data"
) -> dict:
    """Overrides that keep the real pipeline but make it run in well under a minute."""
    small = {
        "data": {
            "generate": {"rows": rows, "seed": seed, "label_signal": label_signal},
        },
        "trainer": {"train_steps": 120, "eval_steps": 10, "batch_size": 64},
        # a real search, within a space where every choice learns on 2,000 rows
        "tuning": {
            "max_trials": 2,
            "trial_steps": 60,
            "learning_rate": [0.002, 0.005],
            "hidden_units": [[64, 32], [32]],
        },
        # slices are computed (months of ~66 eval rows) but, this small, only reported
        "framing": {"success_level": 0.65},
        "edge": None,  # four TFLite conversions cost ~12 s a run: only `first_run` makes them
        "simplification": None,  # the distilled model costs ~6 s a run: only `first_run` trains one
        "evaluation": {"max_regression": 0.05, "slice_lower_bound": None},
        # the network alone, as a one-candidate config runs: the suite's pipeline tests go deep on the network's
        # path (tuning, attributions, TFLite, distillation, warm start); test_own_model.py and `make smoke` run
        # a leaderboard of several candidates
        "model": {"candidates": ["network"]},
    }
    small = deep_merge(workdir_overrides(root), small)
    small["data"]["path"] = os.path.join(root, data_dir)
    return small


def first_run_overrides(root: str) -> dict:
    """The shared first run's settings: the small ones, with the TFLite export and the distilled model
    (configs/taxi.yaml's). A later run in its root starts from these, so that what it does not change
    comes from the cache."""
    small = {**small_overrides(root), "edge": {"eval_rows": 512}}
    del small["simplification"]
    return small


@pytest.fixture
def taxi_config_path() -> str:
    return TAXI_CONFIG


@pytest.fixture(scope="session")
def e2e_root(tmp_path_factory) -> str:
    return str(tmp_path_factory.mktemp("e2e"))


@pytest.fixture(scope="session")
def first_run(e2e_root):
    """One real pipeline run on 2,000 rows (eval AUC about 0.78, far above the 0.65 bar), shared by the end-to-end tests (blessed and pushed)."""
    from pipelines import local_runner
    from settings.config import load_config

    config = load_config(TAXI_CONFIG, first_run_overrides(e2e_root))
    return config, local_runner.run(config)


@pytest.fixture
def owned_root(first_run, e2e_root, tmp_path) -> str:
    """A root of the test's own for the runs it adds after the shared first run: a copy of that run's pipeline
    root, metadata store and served models, so that what a test runs and pushes is never seen by another (the
    suite gives the same results in any order, on any number of workers). Its data path stays the shared,
    read-only data (see owned_overrides): a run in the copy on the same data finds the first run's executions
    in the copy of the store and is served from the cache, as a user's second run would be."""
    copy = str(tmp_path / "owned")
    shutil.copytree(e2e_root, copy, symlinks=True, ignore=shutil.ignore_patterns(SHARED_DATA))
    return copy


SHARED_DATA = "data"  # small_overrides' data_dir: the first run's data, which owned roots read in place


def owned_overrides(owned: str, e2e_root: str, base: dict | None = None) -> dict:
    """`base` (default: the first run's settings) in the owned root `owned`, reading the shared data and the
    curated schema the first run staged (a staged schema is used in place: the same path, so the same cache key)."""
    from tables import schema_staging

    base = first_run_overrides(owned) if base is None else base
    if base["data"]["path"] == os.path.join(owned, SHARED_DATA):
        base = deep_merge(base, {"data": {"path": os.path.join(e2e_root, SHARED_DATA)}})
    staged = os.path.join(e2e_root, "pipeline", "_schemas")
    for path in (os.path.join(d, f) for d, _, files in os.walk(staged) for f in files):
        if schema_staging.is_staged(path):
            base = deep_merge(base, {"data": {"schema": path}})
    return base
