"""The layers of docs/ARCHITECTURE.md, read from the code: every import of a project module points down (or
within its own folder), and no modules import each other in a cycle."""

import ast
import os

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.unit

# lowest first; a folder may import its own modules and any folder of a lower layer
LAYERS = (
    ("models", "datagen"),
    ("settings",),
    ("serving",),
    ("components",),
    ("metadata",),
    ("tables", "reports"),
    ("pipelines",),
    ("monitoring", "benchmarks", "triggers", "deploy"),
    ("drills",),
)
LAYER_OF = {folder: i for i, folders in enumerate(LAYERS) for folder in folders}


def project_imports() -> dict[str, set[str]]:
    """module (dotted) -> the project modules it imports, at any depth of the file (lazy imports too)."""
    found: dict[str, set[str]] = {}
    for folder in LAYER_OF:
        for directory, _, files in os.walk(os.path.join(REPO, folder)):
            for name in files:
                if not name.endswith(".py"):
                    continue
                path = os.path.join(directory, name)
                module = os.path.relpath(path, REPO)[:-3].replace(os.sep, ".").removesuffix(".__init__")
                with open(path) as f:
                    tree = ast.parse(f.read())
                targets = set()
                for node in ast.walk(tree):
                    if isinstance(node, ast.Import):
                        targets.update(a.name for a in node.names)
                    elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                        targets.add(node.module)
                        targets.update(f"{node.module}.{a.name}" for a in node.names)
                found[module] = {t for t in targets if t.split(".")[0] in LAYER_OF and t != module}
    modules = set(found)
    return {m: {t for t in ts if t in modules} for m, ts in found.items()}


def test_every_import_points_down_the_layers():
    graph = project_imports()
    # the reader sees lazy imports and `from package import module` (else it could pass on nothing)
    assert "serving.server" in graph["components.serving_infra_validator"]
    assert "pipelines.batch_prediction" in graph["benchmarks.batch_prediction"]
    upward = [
        f"{module} -> {target}"
        for module, targets in graph.items()
        for target in targets
        if (a := module.split(".")[0]) != (b := target.split(".")[0]) and LAYER_OF[b] >= LAYER_OF[a]
    ]
    assert not upward, upward


def test_no_modules_import_each_other_in_a_cycle():
    graph = project_imports()
    state: dict[str, int] = {}
    cycles = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append(path[path.index(nxt) :] + [nxt] if nxt in path else [node, nxt])
            elif not state.get(nxt):
                visit(nxt, [*path, nxt])
        state[node] = 2

    for node in sorted(graph):
        if not state.get(node):
            visit(node, [node])
    assert not cycles, cycles
