"""Curated schemas staged under their content hash.

ImportSchemaGen's cache key is the schema file's path, not its content, so an
edited schema at the same path would be served stale from the cache. Staging
each schema at `<dir>/<sha256[:16]>/<name>` makes the path change with the
content. The local runner stages into the pipeline root; the Dockerfile stages
into the image, and `pipelines.vertex compile` points at the same path.

python -m pipelines.schema_staging --into /pipeline/staged-schemas schemas/*/schema.pbtxt
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil


def staged_path(schema_file: str, into: str) -> str:
    """Where `schema_file` is staged under `into` (computed from its content)."""
    with open(schema_file, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()[:16]
    return os.path.join(into, digest, os.path.basename(schema_file))


def stage(schema_file: str, into: str) -> str:
    """Copies `schema_file` to its staged path unless it is already there; returns that path."""
    target = staged_path(schema_file, into)
    if not os.path.exists(target):
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copyfile(schema_file, target)
    return target


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--into", required=True)
    parser.add_argument("schemas", nargs="+")
    args = parser.parse_args(argv)
    for schema in args.schemas:
        print(stage(schema, args.into))


if __name__ == "__main__":
    main()
