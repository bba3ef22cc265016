"""The front page and docs/ point only at what exists: every relative link resolves to a file (and its
#anchor to a heading, slugged as GitHub slugs it), and every `make <target>` they show is a Makefile target."""

from __future__ import annotations

import glob
import os
import re

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.unit

FENCE = re.compile(r"^ {0,3}(```|~~~)")
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
INLINE_CODE = re.compile(r"`([^`]+)`")
MAKE_WORD = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


def markdown_files() -> list[str]:
    return [os.path.join(REPO, "README.md"), *sorted(glob.glob(os.path.join(REPO, "docs", "*.md")))]


def split_code(text: str) -> tuple[str, list[str]]:
    """(the prose, with fenced blocks blanked out; the fenced blocks' lines)."""
    prose, code, fenced = [], [], False
    for line in text.split("\n"):
        if FENCE.match(line):
            fenced = not fenced
            prose.append("")
        elif fenced:
            code.append(line)
            prose.append("")
        else:
            prose.append(line)
    return "\n".join(prose), code


def github_slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, markup and punctuation dropped, spaces to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link keeps its text
    text = text.strip().lower().replace("`", "")
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: str) -> set[str]:
    """Every heading's anchor in a markdown file, numbered as GitHub numbers repeats (-1, -2, ...)."""
    with open(path) as f:
        prose, _ = split_code(f.read())
    seen: dict[str, int] = {}
    found = set()
    for line in prose.split("\n"):
        heading = re.match(r"^ {0,3}#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not heading:
            continue
        slug = github_slug(heading.group(1))
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        found.add(slug if count == 0 else f"{slug}-{count}")
    return found


def broken_links(path: str) -> list[str]:
    """The relative links of a markdown file that name a missing file or a heading that is not there."""
    with open(path) as f:
        prose, _ = split_code(f.read())
    prose = re.sub(r"`[^`\n]*`", "", prose)  # a link inside inline code is text, not a link
    broken = []
    for target in LINK.findall(prose):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto: ...
            continue
        file_part, _, anchor = target.partition("#")
        resolved = os.path.normpath(os.path.join(os.path.dirname(path), file_part)) if file_part else path
        if not os.path.exists(resolved):
            broken.append(f"{target}: no file {os.path.relpath(resolved, REPO)}")
        elif anchor and (not resolved.endswith(".md") or anchor not in anchors(resolved)):
            broken.append(f"{target}: no heading #{anchor} in {os.path.relpath(resolved, REPO)}")
    return broken


def make_commands(text: str) -> list[str]:
    """The targets of every `make ...` shown in inline code or a code block (`make lint test-unit` names two;
    a VAR=value, an option or anything else ends the list)."""
    prose, code = split_code(text)
    commands = INLINE_CODE.findall(prose) + code
    targets = []
    for command in commands:
        for match in re.finditer(r"(?:^|[\s;&|(])make((?:\s+\S+)+)", command):
            for word in match.group(1).split():
                if not MAKE_WORD.match(word):
                    break
                targets.append(word)
    return targets


def makefile_targets() -> set[str]:
    with open(os.path.join(REPO, "Makefile")) as f:
        return {m.group(1) for m in re.finditer(r"^([A-Za-z0-9_-]+)\s*:(?!=)", f.read(), re.MULTILINE)}


def test_the_docs_exist_and_the_front_page_fits_on_a_few_screens():
    with open(os.path.join(REPO, "README.md")) as f:
        lines = f.read().count("\n")
    assert lines <= 200, f"README.md has {lines} lines; move detail into docs/"
    assert len(markdown_files()) > 5


@pytest.mark.parametrize("path", markdown_files(), ids=lambda p: os.path.relpath(p, REPO))
def test_every_relative_link_resolves(path):
    assert broken_links(path) == []


@pytest.mark.parametrize("path", markdown_files(), ids=lambda p: os.path.relpath(p, REPO))
def test_every_make_target_shown_is_in_the_makefile(path):
    with open(path) as f:
        shown = make_commands(f.read())
    missing = sorted(set(shown) - makefile_targets())
    assert missing == [], f"{os.path.relpath(path, REPO)} shows `make {missing[0]}`, not a Makefile target"


def test_the_checks_catch_what_they_guard_against(tmp_path):
    """A page with a missing file, a missing heading and an unknown target is reported on each count."""
    page = tmp_path / "page.md"
    (tmp_path / "other.md").write_text("# Other page\n\n## A `code` heading: and more\n\n```\n# not a heading\n```\n")
    page.write_text(
        "# Page\n\n[ok](other.md#a-code-heading-and-more) [self](#page) [web](https://example.org/x)\n"
        "[gone](missing.md) [no heading](other.md#not-a-heading) `[in code](missing.md)`\n\n"
        "Run `make run CONFIG=x.yaml` or `make lint no-such-target`, then:\n\n```bash\nmake also-missing &\n```\n"
    )
    assert broken_links(str(page)) == [
        f"missing.md: no file {os.path.relpath(tmp_path / 'missing.md', REPO)}",
        f"other.md#not-a-heading: no heading #not-a-heading in {os.path.relpath(tmp_path / 'other.md', REPO)}",
    ]
    assert make_commands(page.read_text()) == ["run", "lint", "no-such-target", "also-missing"]
    assert {"run", "lint"} <= makefile_targets() and "no-such-target" not in makefile_targets()
    assert github_slug("The anchor: TFX's own example on the same trips (make bench-reference)") == (
        "the-anchor-tfxs-own-example-on-the-same-trips-make-bench-reference"
    )
