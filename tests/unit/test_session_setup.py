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
