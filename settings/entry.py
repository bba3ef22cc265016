"""What every command-line module does with its config, written once: the option naming it (`--config`, or
`--profile` for a Vertex profile), `--workdir` where a run's outputs are read or written, loading it, and a
config error as one line on stderr (`config error: ...`) and exit 2.

    parser = entry.parser(__doc__, workdir="the --workdir the pipeline ran with")
    ...
    @entry.config_errors_exit
    def main(argv=None) -> int:
        args = parser.parse_args(argv)
        config = entry.load(args, workdir=args.workdir)
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
from collections.abc import Callable

from settings.config import Config, ConfigError, load_config
from settings.yaml_files import deep_merge, local_gcs, workdir_overrides

CONFIG_ERROR_EXIT = 2
DEFAULT_CONFIG = "configs/taxi.yaml"


def config_options(default: str | None = DEFAULT_CONFIG, *, flag: str = "--config", help: str | None = None,
                   workdir: str | None = None) -> argparse.ArgumentParser:  # fmt: skip
    """A parent parser (`ArgumentParser(parents=[...])`) with `flag` (required when there is no `default`) and,
    when `workdir` is given (its help), `--workdir`."""
    options = argparse.ArgumentParser(add_help=False)
    options.add_argument(flag, default=default, required=default is None, help=help)
    if workdir is not None:
        options.add_argument("--workdir", help=workdir)
    return options


def parser(description: str | None, default: str | None = DEFAULT_CONFIG, *, flag: str = "--config",
           help: str | None = None, workdir: str | None = None) -> argparse.ArgumentParser:  # fmt: skip
    """A module's parser: its docstring as the description, and the config options (see config_options)."""
    return argparse.ArgumentParser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[config_options(default, flag=flag, help=help, workdir=workdir)],
    )  # fmt: skip


def load(args: argparse.Namespace, overrides: dict | None = None, *, path: str | None = None,
         workdir: str | None = None) -> Config:  # fmt: skip
    """The config `args` names (`--config`, else `--profile`; or `path`), with its paths under `workdir` (a run's
    --workdir; for a Vertex profile, a `make vertex-local` workdir, its gs:// paths under gcs/) if given, then
    `overrides`. A bad config raises ConfigError (config_errors_exit: exit 2)."""
    path = path or getattr(args, "config", None) or args.profile
    if workdir:
        config = load_config(path, overrides or None)
        if config.vertex is not None:  # a `make vertex-local` workdir: its gs:// paths are under <workdir>/gcs
            return on_local_gcs(config, os.path.join(os.path.abspath(workdir), "gcs"))
    merged = deep_merge(workdir_overrides(os.path.abspath(workdir)), overrides or {}) if workdir else overrides
    return load_config(path, merged or None)


def on_local_gcs(config: Config, gcs_dir: str) -> Config:
    """A Vertex profile's data, pipeline root and serving paths in the local stand-in for GCS (`gcs_dir`)."""
    pipe = config.pipeline
    return config.replace(
        data=config.data.replace(path=local_gcs(config.data.path, gcs_dir)),
        pipeline=pipe.replace(root=local_gcs(pipe.root, gcs_dir), serving_dir=local_gcs(pipe.serving_dir, gcs_dir)),
    )


def config_errors_exit(main: Callable[..., int]) -> Callable[..., int]:
    """`main` with a ConfigError raised in it printed as `config error: <what>` on stderr and returned as exit 2."""

    @functools.wraps(main)
    def wrapped(*args, **kwargs) -> int:
        try:
            return main(*args, **kwargs)
        except ConfigError as e:
            print(f"config error: {e}", file=sys.stderr)
            return CONFIG_ERROR_EXIT

    return wrapped
