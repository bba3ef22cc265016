"""`make vertex-local`: the PipelineJob `make compile` writes, run on this machine as Vertex AI Pipelines runs it
(pipelines/vertex_replay.py), its gs:// paths in `<workdir>/gcs`. Run it again and its resolver tasks find
what the earlier runs published (the registry is under the local pipeline root).

  python -m pipelines.vertex_local --profile configs/vertex-smoke.yaml [--template FILE] [--workdir DIR]
                                   [--mode fast|image] [--param NAME=VALUE] [--expect-push]

--mode fast: each task's command runs as a process of this environment, in a stand-in for the image's working
  directory (vertex.image_workdir): links to this checkout and the curated schemas staged as the Dockerfile
  stages them.
--mode image: this process runs inside the pipeline image (`make vertex-local MODE=image` starts it there
  through tools/image.sh with only the workdir mounted; Cloud Build's step is already in it), and each task
  runs in the image's own working directory.

Before the run, the profile's generated sample data is written where its gs:// data path points (what
deploy/setup_gcp.sh uploads). Prints each task with its state and seconds, the `make serve` command that serves
what the run pushed, then the pushed model's path.
Exit 1 if a task failed (named, with the executor's error), 3 with --expect-push if nothing was pushed.
"""

from __future__ import annotations

import glob
import json
import os
import sys
import time

from pipelines.vertex import _parameters, template_file
from pipelines.vertex_replay import REPO_ROOT, Replay, Storage, TaskFailedError, subprocess_runner
from settings import entry
from settings.config import Config, ConfigError

NOT_IN_IMAGE = {".git", "build"}  # what the stand-in working directory leaves out of the checkout


def default_workdir(config: Config) -> str:
    profile = os.path.splitext(os.path.basename(config.source))[0]
    return os.path.join(REPO_ROOT, "build", "vertex-local", profile)


def stand_in_workdir(config: Config, into: str) -> str:
    """Fast mode's image working directory: the checkout's entries linked, and the curated schemas staged
    under `staged-schemas` as the Dockerfile stages them (`pipelines.vertex compile` points there)."""
    from pipelines.vertex import STAGED_SCHEMAS
    from tables import schema_staging

    os.makedirs(into, exist_ok=True)
    for name in os.listdir(REPO_ROOT):
        link = os.path.join(into, name)
        if name not in NOT_IN_IMAGE and not os.path.lexists(link):
            os.symlink(os.path.join(REPO_ROOT, name), link)
    for schema in glob.glob(os.path.join(REPO_ROOT, "schemas", "*", "schema.pbtxt")):
        schema_staging.stage(schema, os.path.join(into, STAGED_SCHEMAS))
    return into


def stage_data(config: Config, storage: Storage) -> None:
    """The generated sample at the local place of the profile's gs:// data path."""
    from tables.sample_data import prepare_data

    if config.data.generate is not None and config.data.path.startswith("gs://"):
        prepare_data(config.replace(data=config.data.replace(path=storage.local(config.data.path))))


@entry.config_errors_exit
def main(argv: list[str] | None = None) -> int:
    parser = entry.parser(__doc__, None, flag="--profile", help="configs/vertex-*.yaml")
    parser.add_argument("--template", help="the compiled PipelineJob (default: what `make compile` writes)")
    parser.add_argument("--workdir", help="local stand-in for gs:// and the logs (default build/vertex-local/PROFILE)")
    parser.add_argument("--mode", choices=["fast", "image"], default="fast")
    parser.add_argument("--param", action="append", default=[], help="pipeline parameter NAME=VALUE")
    parser.add_argument("--expect-push", action="store_true", help="exit 3 unless a model is pushed")
    args = parser.parse_args(argv)
    config = entry.load(args)
    if config.vertex is None:
        raise ConfigError(f"{args.profile}: no 'vertex' section")
    template = args.template or template_file(config)
    if not os.path.exists(template):
        raise ConfigError(f"{template} does not exist: run `make compile PROFILE={args.profile}` first")
    with open(template, encoding="utf-8") as f:
        job = json.load(f)
    parameters = _parameters(args.param)
    workdir = os.path.abspath(args.workdir or default_workdir(config))
    image_workdir = config.vertex.image_workdir
    if args.mode == "fast":
        storage = Storage(os.path.join(workdir, "gcs"),
                          ((image_workdir, stand_in_workdir(config, os.path.join(workdir, "image-workdir"))),))  # fmt: skip
        cwd = storage.local(image_workdir + "/")
    else:
        if not os.path.isdir(image_workdir):
            print(f"--mode image runs inside the pipeline image ({image_workdir} is not here): "
                  "use `make vertex-local MODE=image`", file=sys.stderr)  # fmt: skip
            return 2
        storage, cwd = Storage(os.path.join(workdir, "gcs")), image_workdir
    stage_data(config, storage)
    replay = Replay(job, storage, subprocess_runner(cwd), config.vertex.project, config.vertex.region,
                    os.path.join(workdir, "logs"), parameters)  # fmt: skip
    start = time.monotonic()
    print(f"{template} ({args.mode} mode)", flush=True)
    try:
        results = replay.run()
    except TaskFailedError as e:
        print(f"replay refused: {e}", file=sys.stderr)
        return 2
    pushed = replay.pushed_models()
    print(f"wall time:      {time.monotonic() - start:.1f} s")
    if pushed:  # the server reads the profile's serving_dir under this workdir's gcs/ (settings.entry)
        print(f"serve it:       make serve CONFIG={args.profile} WORKDIR={workdir}")
    print(f"pushed model:   {pushed[-1] if pushed else 'none'}")
    failed = [r for r in results if r.state == "FAILED"]
    for r in failed:
        print(f"replay failed: task {r.error}", file=sys.stderr)
    if failed:
        return 1
    if args.expect_push and not pushed:
        print("the replay completed but pushed no model (--expect-push)", file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
