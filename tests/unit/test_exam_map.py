"""docs/EXAM_MAP.md covers every consideration of the exam guide, and names only files and
tests that exist."""

import os
import re

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.unit


def guide() -> dict[str, list[str]]:
    """Sub-section number -> its considerations, from the guide kept in docs/."""
    sections: dict[str, list[str]] = {}
    current = None
    with open(os.path.join(REPO, "docs", "exam-guide.md")) as f:
        for line in f:
            heading = re.match(r"### (\d\.\d) ", line)
            if heading:
                current = heading.group(1)
                sections[current] = []
            elif line.startswith("## "):
                current = None
            elif current and line.startswith("- "):
                sections[current].append(line[2:].strip())
    return sections


def exam_map() -> dict[str, list[list[str]]]:
    """Sub-section number (or the heading of a section beyond the guide) -> table rows (cells) of docs/EXAM_MAP.md."""
    sections: dict[str, list[list[str]]] = {}
    current = None
    with open(os.path.join(REPO, "docs", "EXAM_MAP.md")) as f:
        for line in f:
            heading = re.match(r"## (\d\.\d) ", line)
            if heading or line.startswith("## "):
                current = heading.group(1) if heading else line[3:].strip()
                sections[current] = []
            elif current and line.startswith("| ") and not line.startswith(("| consideration", "|---")):
                sections[current].append([c.strip() for c in line.strip().strip("|").split(" | ")])
    return sections


def test_every_consideration_of_the_guide_is_mapped():
    wanted, have = guide(), exam_map()
    assert len(wanted) == 19 and sum(len(v) for v in wanted.values()) > 50
    assert [k for k in have if re.fullmatch(r"\d\.\d", k)] == list(wanted)
    for section, considerations in wanted.items():
        assert [row[0] for row in have[section]] == considerations, section


def test_every_named_file_and_test_exists():
    for section, rows in exam_map().items():
        for consideration, code, test, status in rows:
            assert status.split(":")[0].strip("* ") in ("done", "partial", "not yet", "n/a") or status.startswith(
                "done ("
            ), (section, status)
            for path in re.findall(r"`([^`]+)`", code):
                assert os.path.exists(os.path.join(REPO, path)), (section, path)
            for ref in re.findall(r"`([^`]+)`", test):
                path, _, name = ref.partition("::")
                assert os.path.exists(os.path.join(REPO, path)), (section, path)
                if name:
                    with open(os.path.join(REPO, path)) as f:
                        assert re.search(rf"^def {re.escape(name)}\(", f.read(), re.M), (section, ref)
            if not status.startswith(("not yet", "n/a")):
                assert "`" in code and "::" in test, (section, consideration)
