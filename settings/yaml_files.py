"""The YAML side of loading: profiles that `extend` a base, nested overrides, and where relative paths
and a --workdir point (a Vertex profile's gs:// paths: under the workdir's gcs/)."""

from __future__ import annotations

import os

import yaml

from settings.sections import ConfigError


def with_base(raw: dict, path: str, seen: tuple[str, ...] = ()) -> dict:
    """A profile may start with `extends: other.yaml` (relative to itself) and override any key."""
    base_name = raw.pop("extends", None)
    if base_name is None:
        return raw
    base_path = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(path)), base_name))
    if base_path in seen:
        raise ConfigError(f"{path}: 'extends' loops back to {base_path}")
    try:
        with open(base_path) as f:
            base = yaml.safe_load(f)
    except FileNotFoundError:
        raise ConfigError(f"{path}: 'extends' names {base_name}, which does not exist") from None
    if not isinstance(base, dict):
        raise ConfigError(f"{base_path}: expected a mapping at the top level")
    return deep_merge(with_base(base, base_path, (*seen, base_path)), raw)


def repo_root(config_path: str) -> str:
    """The directory above the `configs/` folder the file is in (at any depth below it)."""
    here = os.path.dirname(os.path.abspath(config_path))
    parts = here.split(os.sep)
    if "configs" in parts:
        return os.sep.join(parts[: len(parts) - 1 - parts[::-1].index("configs")]) or os.sep
    return os.path.dirname(here)


def workdir_overrides(workdir: str) -> dict:
    """Config overrides that keep every path of a run under `workdir`."""
    return {
        "data": {"path": os.path.join(workdir, "data")},
        "pipeline": {
            "root": os.path.join(workdir, "pipeline"),
            "metadata_path": os.path.join(workdir, "metadata", "metadata.sqlite"),
            "serving_dir": os.path.join(workdir, "serving"),
        },
    }


def local_gcs(text: str, gcs_dir: str) -> str:
    """`text` with every gs:// path in the local directory that stands for GCS (`gs://BUCKET/x` is
    `<gcs_dir>/BUCKET/x`, as gcsfuse's /gcs/ mount holds it): how `make vertex-local` keeps a Vertex profile's
    paths, and how the commands given its --workdir find them."""
    return text.replace("gs://", gcs_dir.rstrip("/") + "/")


def deep_merge(base: dict, extra: dict) -> dict:
    """`extra` over `base`, mapping by mapping; neither input is changed."""
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out
