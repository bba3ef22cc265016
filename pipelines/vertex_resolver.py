"""Resolver tasks of a compiled PipelineJob, answered as Vertex AI Pipelines answers them, over a local
artifact registry (what Vertex ML Metadata holds for the pipeline: each output artifact a task published).

kfp.local runs no resolver task (its orchestrator knows only container and importer executors), so
this is written here. A resolver task's `outputArtifactQueries` hold one `filter` per output; Vertex
returns the newest LIVE artifact the filter matches. Supported filter forms, joined by `AND` only:

    schema_title="tfx.Model"                  the artifact type's title
    state=LIVE                                 LIVE is what a succeeded task publishes; other states match nothing
    name="projects/.../artifacts/123"          the artifact's resource name
    metadata.KEY.number_value=1                a metadata value: number_value, string_value="..." or bool_value=true
    any value above as a placeholder           {{$.inputs.artifacts['input'].metadata['current_model_id']}}

Anything else (OR, NOT, <, >, parentheses, create_time, display_name, ...) raises UnsupportedFilterError.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

import yaml

REGISTRY_FILE = "vertex-local-artifacts.jsonl"  # under the pipeline root (local)
_CLAUSE = re.compile(
    r"^(?P<field>schema_title|state|name|metadata\.(?P<key>[\w-]+)\.(?P<kind>number_value|string_value|bool_value))"
    r'\s*=\s*(?P<value>"(?:[^"\\]|\\.)*"|[\w.+-]+)$'
)


class UnsupportedFilterError(ValueError):
    """A filter form this replay does not evaluate (see the module's docstring)."""


def schema_title(artifact_type: dict) -> str:
    """The title of an ArtifactTypeSchema (dict form): `schemaTitle`, or the `title` of its `instanceSchema`."""
    if artifact_type.get("schemaTitle"):
        return artifact_type["schemaTitle"]
    return (yaml.safe_load(artifact_type.get("instanceSchema") or "") or {}).get("title", "")


def parse_filter(text: str) -> list[tuple[str, str | None, str | None, Any]]:
    """(field, metadata key, value kind, value) per clause of a filter, or UnsupportedFilterError."""
    clauses = []
    for part in re.split(r"\s+AND\s+", text.strip()):
        m = _CLAUSE.match(part.strip())
        if not m:
            raise UnsupportedFilterError(f"resolver filter {text!r}: {part!r} is not a supported clause (see "
                                    "pipelines/vertex_resolver.py)")  # fmt: skip
        raw = m["value"]
        if raw.startswith('"'):
            value: Any = json.loads(raw)
        elif m["kind"] == "number_value":
            try:
                value = float(raw)
            except ValueError:
                raise UnsupportedFilterError(f"resolver filter {text!r}: {raw!r} is not a number") from None
        elif m["kind"] == "bool_value":
            if raw not in ("true", "false"):
                raise UnsupportedFilterError(f"resolver filter {text!r}: {raw!r} is not true or false")
            value = raw == "true"
        elif m["field"] == "state":
            value = raw
        else:
            raise UnsupportedFilterError(f"resolver filter {text!r}: {part!r} needs a quoted string")
        if m["kind"] == "string_value" and not raw.startswith('"'):
            raise UnsupportedFilterError(f"resolver filter {text!r}: {part!r} needs a quoted string")
        clauses.append((m["field"].split(".")[0], m["key"], m["kind"], value))
    return clauses


def matches(record: dict, clauses: list) -> bool:
    artifact = record["artifact"]
    for field, key, kind, value in clauses:
        if field == "schema_title" and schema_title(artifact.get("type", {})) != value:
            return False
        if field == "state" and record["state"] != value:
            return False
        if field == "name" and artifact.get("name") != value:
            return False
        if field == "metadata":
            found = artifact.get("metadata", {}).get(key)
            expected = {"number_value": (int, float), "string_value": str, "bool_value": bool}[kind]
            if isinstance(found, bool) != (kind == "bool_value") or not isinstance(found, expected) or found != value:
                return False
    return True


class Registry:
    """The artifacts earlier replays published, one JSON line each, oldest first."""

    def __init__(self, local_root: str):
        self.path = os.path.join(local_root, REGISTRY_FILE)

    def records(self) -> list[dict]:
        if not os.path.exists(self.path):
            return []
        with open(self.path, encoding="utf-8") as f:
            return [json.loads(line) for line in f if line.strip()]

    def publish(self, run: str, task: str, key: str, artifact: dict) -> None:
        """Records a succeeded task's output artifact (dict form of a RuntimeArtifact) as LIVE."""
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        record = {"run": run, "task": task, "output": key, "state": "LIVE", "artifact": artifact}
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record, sort_keys=True) + "\n")

    def query(self, text: str, before_run: str) -> list[dict]:
        """The newest artifact (as a one-item list; empty if none) that `text` matches among those published
        by runs other than `before_run` (a resolver sees what existed when its run started)."""
        clauses = parse_filter(text)
        found = [r for r in self.records() if r["run"] != before_run and matches(r, clauses)]
        return [found[-1]["artifact"]] if found else []
