"""Compiling a `kfp.dsl` pipeline whose steps run in the project's image, and its command line
(shared by the canary rollout and the monitoring pipelines)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable

from settings.config import ConfigError, load_config


def compile_for_image(build_pipeline: Callable, image: str, output: str) -> str:
    """Writes the KFP v2 pipeline `build_pipeline(image)` to `output`; returns the path."""
    from kfp import compiler

    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    compiler.Compiler().compile(build_pipeline(image), output)
    return output


def main(build_pipeline: Callable, default_output: str, description: str, argv: list[str] | None = None) -> int:
    """`compile --profile configs/vertex-*.yaml [--output FILE]`, with the profile's image."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["compile"])
    parser.add_argument("--profile", required=True)
    parser.add_argument("--output", default=default_output)
    args = parser.parse_args(argv)
    try:
        config = load_config(args.profile)
        if config.vertex is None:
            raise ConfigError(f"{args.profile}: no 'vertex' section")
    except ConfigError as e:
        print(f"config error: {e}", file=sys.stderr)
        return 2
    print(compile_for_image(build_pipeline, config.vertex.image, args.output))
    return 0
