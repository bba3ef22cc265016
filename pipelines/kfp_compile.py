"""Compiling a `kfp.dsl` pipeline whose steps run in the project's image, and its command line
(shared by the canary rollout and the monitoring pipelines)."""

from __future__ import annotations

import os
from collections.abc import Callable

from settings import entry
from settings.config import ConfigError


def compile_for_image(build_pipeline: Callable, image: str, output: str) -> str:
    """Writes the KFP v2 pipeline `build_pipeline(image)` to `output`; returns the path."""
    from kfp import compiler

    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    compiler.Compiler().compile(build_pipeline(image), output)
    return output


@entry.config_errors_exit
def main(build_pipeline: Callable, default_output: str, description: str, argv: list[str] | None = None) -> int:
    """`compile --profile configs/vertex-*.yaml [--output FILE]`, with the profile's image."""
    parser = entry.parser(description, None, flag="--profile")
    parser.add_argument("command", choices=["compile"])
    parser.add_argument("--output", default=default_output)
    args = parser.parse_args(argv)
    config = entry.load(args)
    if config.vertex is None:
        raise ConfigError(f"{args.profile}: no 'vertex' section")
    print(compile_for_image(build_pipeline, config.vertex.image, args.output))
    return 0
