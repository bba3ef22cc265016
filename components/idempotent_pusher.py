"""Pusher that does not push the same model twice, and never shows a half-copied one.

A re-run on unchanged inputs takes the Trainer's model from the cache, and the
Evaluator re-checks it against the new baseline: itself, now the latest blessed
model. The stock Pusher would then copy it again under a new version. This one
records the source model's URI beside each version it writes and, when the
model is already served, marks the existing version as the push instead.

The stock Pusher copies into the version directory in place: a server polling the
directory, a kill or a full disk mid-copy could see or leave a partial model under a
version name. To a local directory this one copies into a hidden staging directory
and renames it into place, so a version directory is whole or absent. (To gs:// it
keeps the stock copy, saved_model.pb last, which is what model servers wait for.)
"""

from __future__ import annotations

import json
import os
import shutil
import time

from tfx.components.pusher import executor as pusher_executor
from tfx.dsl.io import fileio
from tfx.proto import pusher_pb2
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import io_utils, proto_utils

from models.trainer import CONTRACT_DIR, METADATA_FILE

SOURCE_FILE = "source_model_uri.txt"  # in assets.extra, which model servers ignore
STAGING_PREFIX = ".incoming-"  # not a number: model servers and serving.model_store skip it


class PushError(OSError):
    """The copy into the serving directory failed; nothing was pushed."""


def served_version_of(base_directory: str, model_uri: str) -> str | None:
    """The version directory under `base_directory` that holds the model from `model_uri`, if any."""
    if not fileio.isdir(base_directory):
        return None
    for version in sorted(fileio.listdir(base_directory)):
        if not version.rstrip("/").isdigit():
            continue  # a staging directory
        marker = os.path.join(base_directory, version, "assets.extra", SOURCE_FILE)
        if fileio.exists(marker) and io_utils.read_string_file(marker).strip() == model_uri:
            return version.rstrip("/")
    return None


class Executor(pusher_executor.Executor):
    def Do(self, input_dict, output_dict, exec_properties) -> None:  # noqa: N802 (TFX's name)
        model_uri = source_of(artifact_utils.get_single_instance(input_dict[standard_component_specs.MODEL_KEY]))
        destination = pusher_pb2.PushDestination()
        proto_utils.json_to_proto(exec_properties[standard_component_specs.PUSH_DESTINATION_KEY], destination)
        base = destination.filesystem.base_directory
        blessed = self.CheckBlessing(input_dict)
        version = served_version_of(base, model_uri) if blessed else None
        if version is None and blessed and "://" not in base:
            version = push_atomically(self.GetModelPath(input_dict), base, model_uri)
        elif version is None:
            super().Do(input_dict, output_dict, exec_properties)
            model_push = artifact_utils.get_single_instance(output_dict[standard_component_specs.PUSHED_MODEL_KEY])
            if model_push.get_int_custom_property("pushed") == 1:
                pushed = model_push.get_string_custom_property("pushed_destination")
                io_utils.write_string_file(os.path.join(pushed, "assets.extra", SOURCE_FILE), model_uri)
                record_model_metadata(model_push, pushed)
            return
        model_push = artifact_utils.get_single_instance(output_dict[standard_component_specs.PUSHED_MODEL_KEY])
        io_utils.copy_dir(self.GetModelPath(input_dict), model_push.uri)
        self._MarkPushed(model_push, pushed_destination=os.path.join(base, version), pushed_version=version)
        record_model_metadata(model_push, os.path.join(base, version))


def source_of(model) -> str:
    """The model's identity: the Trainer's model the leaderboard copied (`source_model`), else its own URI. A re-run
    whose winner came from the cache is the same model, though the leaderboard made a new copy of it."""
    if model.has_custom_property("source_model"):
        return model.get_string_custom_property("source_model")
    return model.uri


def push_atomically(model_path: str, base_directory: str, model_uri: str) -> str:
    """Copies the model to `base_directory/<unix time>` through a staging directory and one rename; the
    version. On a failure (a full disk) the staging copy is removed and PushError names the cause."""
    os.makedirs(base_directory, exist_ok=True)
    for name in os.listdir(base_directory):
        if name.startswith(STAGING_PREFIX) and not _alive(name.rsplit("-", 1)[-1]):  # a killed push's
            shutil.rmtree(os.path.join(base_directory, name), ignore_errors=True)
    version = int(time.time())
    while os.path.exists(os.path.join(base_directory, str(version))):
        version += 1
    staging = os.path.join(base_directory, f"{STAGING_PREFIX}{version}-{os.getpid()}")
    try:
        shutil.copytree(model_path, staging)
        io_utils.write_string_file(os.path.join(staging, "assets.extra", SOURCE_FILE), model_uri)
        os.rename(staging, os.path.join(base_directory, str(version)))
    except OSError as e:
        shutil.rmtree(staging, ignore_errors=True)
        # copytree reports every file that failed (shutil.Error: a list of (source, destination, why))
        why = e.args[0][0][2] if isinstance(e, shutil.Error) and e.args and e.args[0] else str(e)
        raise PushError(f"pushing {model_path} to {base_directory} failed, nothing was pushed "
                        f"(the versions already there are still served): {why}") from e  # fmt: skip
    return str(version)


def _alive(pid: str) -> bool:
    if not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def record_model_metadata(model_push, model_dir: str) -> None:
    """Copies the model's code commit and data span(s) onto the PushedModel artifact in ML
    Metadata, beside the version the Pusher already records."""
    path = os.path.join(model_dir, CONTRACT_DIR, METADATA_FILE)
    if not fileio.exists(path):
        return  # a model from before the metadata file existed
    metadata = json.loads(io_utils.read_string_file(path))
    model_push.set_string_custom_property("code_commit", str(metadata.get("code_commit", "unknown")))
    model_push.set_string_custom_property("data_span", ",".join(str(s) for s in metadata.get("data_span", [])))
    model_push.set_string_custom_property("data_version", ",".join(str(s) for s in metadata.get("data_version", [])))
