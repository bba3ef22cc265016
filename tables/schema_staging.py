"""Curated schemas staged under their content hash.

ImportSchemaGen's cache key is the schema file's path, not its content, so an
edited schema at the same path would be served stale from the cache. Staging
each schema at `<dir>/<sha256[:16]>/<name>` makes the path change with the
content. The local runner stages into the pipeline root; the Dockerfile stages
into the image, and `pipelines.vertex compile` points at the same path.

python -m tables.schema_staging --into /pipeline/staged-schemas schemas/*/schema.pbtxt
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil

from settings.config import Config


def staged_path(schema_file: str, into: str) -> str:
    """Where `schema_file` is staged under `into` (computed from its content)."""
    with open(schema_file, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()[:16]
    return os.path.join(into, digest, os.path.basename(schema_file))


def is_staged(schema_file: str) -> bool:
    """Whether `schema_file` sits at a staged path already: its directory is named by its content's hash."""
    return staged_path(schema_file, os.path.dirname(os.path.dirname(schema_file))) == schema_file


def stage(schema_file: str, into: str) -> str:
    """Copies `schema_file` to its staged path unless it is already there; returns that path. A schema staged
    already (another root's, the image's) is used where it is: its path names its content, so a run from a copy
    of a pipeline root keeps the cache of the runs it was copied from."""
    if is_staged(schema_file):
        return schema_file
    target = staged_path(schema_file, into)
    if not os.path.exists(target):
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copyfile(schema_file, target)
    return target


def accepted_schema(config: Config) -> str | None:
    """For a pipeline with no curated schema: the schema of its first run whose data passed validation (the
    DataValidationGate's `validated_schema` in ML Metadata, a reviewable artifact), which later runs validate
    their new data against instead of re-inferring one from it; None until such a run exists.
    `make schema` promotes it to a curated schema file."""
    if config.data.schema or not os.path.exists(config.pipeline.metadata_path):
        return None
    from metadata.mlmd import node_id, of_type, open_store, outputs, runs

    store = open_store(config.pipeline.metadata_path)
    for run in reversed(runs(store, config.pipeline.name)):  # oldest first
        for execution in store.get_executions_by_context(run.id):
            if node_id(store, execution.id, config.pipeline.name) != "DataValidationGate":
                continue
            for schema in of_type(store, outputs(store, execution.id), "Schema"):
                path = os.path.join(schema.uri, "schema.pbtxt")
                if os.path.exists(path):
                    return path
    return None


def with_accepted_schema(config: Config) -> Config:
    """The config validating against `accepted_schema`, staged like a curated one, where there is one."""
    found = accepted_schema(config)
    if found is None:
        return config
    print(json.dumps({"event": "accepted_schema", "schema": found}))
    staged = stage(found, os.path.join(config.pipeline.root, "_schemas"))
    return config.replace(data=config.data.replace(schema=staged))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--into", required=True)
    parser.add_argument("schemas", nargs="+")
    args = parser.parse_args(argv)
    for schema in args.schemas:
        print(stage(schema, args.into))


if __name__ == "__main__":
    main()
