"""The outputs of one run the report reads, found in ML Metadata by component and artifact type."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

from metadata import mlmd


@dataclass
class RunArtifacts:
    """The outputs of one run that the report reads, by component id and artifact type."""

    run: str
    components: list = field(default_factory=list)  # RunSummary components
    by_component: dict[str, dict[str, list[str]]] = field(default_factory=dict)

    def uris(self, component: str, kind: str) -> list[str]:
        return self.by_component.get(component, {}).get(kind, [])

    def first(self, component: str, kind: str) -> str | None:
        found = self.uris(component, kind)
        return found[0] if found else None

    def json(self, component: str, kind: str, name: str):
        """The JSON file `name` in the component's first artifact of `kind`; None when there is none."""
        uri = self.first(component, kind)
        path = os.path.join(uri, name) if uri else None
        if not path or not os.path.exists(path):
            return None
        with open(path) as f:
            return json.load(f)


def collect(store, run, pipeline_name: str) -> RunArtifacts:
    artifacts = RunArtifacts(run=run.name)
    for execution in store.get_executions_by_context(run.id):
        component = mlmd.node_id(store, execution.id, pipeline_name) or "?"
        for artifact in mlmd.outputs(store, execution.id):
            kinds = artifacts.by_component.setdefault(component, {})
            kinds.setdefault(mlmd.type_name(store, artifact), []).append(artifact.uri)
    return artifacts
