"""The suite's fork server starts only in sessions that may run pipelines (tests/conftest.py)."""

import os
import types

import pytest

from tests.conftest import REPO, _may_run_pipelines

pytestmark = pytest.mark.unit


def session(markexpr: str = "", args: tuple[str, ...] = ("tests",)):
    return types.SimpleNamespace(option=types.SimpleNamespace(markexpr=markexpr), args=list(args),
                                 invocation_params=types.SimpleNamespace(dir=REPO))  # fmt: skip


@pytest.mark.parametrize("markexpr, args, runs", [
    ("", ("tests",), True),
    ("unit", ("tests",), False),
    ("not e2e", ("tests",), False),
    ("image", ("tests",), True),  # tests/e2e/test_image.py is marked e2e and image
    ("e2e or unit", ("tests/unit",), False),
    ("", ("tests/unit/test_config.py::test_x",), False),
    ("", (os.path.join(REPO, "tests", "unit"), "tests/e2e/test_serving.py"), True),
])  # fmt: skip
def test_the_fork_server_starts_only_for_sessions_that_may_select_e2e_tests(markexpr, args, runs):
    assert _may_run_pipelines(session(markexpr, args)) is runs


def test_the_files_reading_the_first_run_are_one_unit_of_loadfile_and_the_rest_a_unit_each():
    """`make test`'s scheduler (tests/conftest.py): the shared first run is made on one worker only."""
    from tests.conftest import FIRST_RUN_GROUP, first_run_files, pytest_xdist_make_scheduler

    shared = first_run_files()
    # through its tests (test_serving, test_streaming) or owned_root (test_pipeline_e2e)
    assert {"tests/e2e/test_serving.py", "tests/e2e/test_streaming.py", "tests/e2e/test_pipeline_e2e.py"} <= shared
    assert not shared & {"tests/e2e/test_real_tables.py", "tests/e2e/test_data_stage.py", "tests/unit/test_config.py"}
    config = types.SimpleNamespace(
        getvalue=lambda name: "loadfile", option=types.SimpleNamespace(), getini=lambda n: []
    )
    scheduler = pytest_xdist_make_scheduler(config, log=None)
    assert scheduler._split_scope("tests/e2e/test_serving.py::test_x[a::b]") == FIRST_RUN_GROUP
    assert scheduler._split_scope("tests/e2e/test_pipeline_e2e.py::test_y") == FIRST_RUN_GROUP
    assert scheduler._split_scope("tests/e2e/test_real_tables.py::test_z[cars]") == "tests/e2e/test_real_tables.py"
    load = types.SimpleNamespace(getvalue=lambda name: "load")
    assert pytest_xdist_make_scheduler(load, log=None) is None  # other modes are xdist's own
