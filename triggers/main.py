"""Cloud Function: a new data span in Cloud Storage starts a pipeline run on Vertex AI.

Deployed by deploy/setup_gcp.sh (`make trigger-bundle` assembles the source):
a Cloud Storage "object finalized" event on the data bucket calls `on_new_data`.
A span is a folder of files; the producer writes `_SUCCESS` into it last, and that
marker starts one run with `data_root` set to the folder. The run's job id is
derived from the span, so a redelivered event cannot start a second run.

Settings (environment): PIPELINE_PROFILE (a configs/vertex-*.yaml bundled with
this function), PIPELINE_TEMPLATE (the compiled pipeline's Artifact Registry URL),
PIPELINE_DRY_RUN=1 to return the request instead of sending it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import posixpath

from pipelines import vertex
from settings.config import load_config

MARKER = "_SUCCESS"

try:  # present where the function is deployed (triggers/requirements.txt)
    import functions_framework

    _cloud_event = functions_framework.cloud_event
except ImportError:  # tests and local use call on_new_data directly

    def _cloud_event(f):
        return f


def span_of(bucket: str, name: str, data_root: str) -> str | None:
    """The span folder a finalized object completes, or None if the object is not a span marker."""
    if posixpath.basename(name) != MARKER:
        return None
    span = f"gs://{bucket}/{posixpath.dirname(name)}"
    if not span.startswith(data_root.rstrip("/") + "/"):
        return None  # a marker outside the configured data location
    return span


def handle(data: dict, env: dict[str, str]) -> dict | None:
    """Submits (or, with PIPELINE_DRY_RUN=1, returns) the run for the span a GCS event completes."""
    config = load_config(env.get("PIPELINE_PROFILE", "configs/vertex-dev.yaml"))
    span = span_of(data["bucket"], data["name"], config.data.path)
    if span is None:
        logging.info("ignored gs://%s/%s: not a %s marker under %s", data["bucket"], data["name"], MARKER,
                     config.data.path)  # fmt: skip
        return None
    digest = hashlib.sha256(span.encode()).hexdigest()[:12]
    request = vertex.submit(
        config,
        env["PIPELINE_TEMPLATE"],
        parameters={"data_root": span},
        labels={"trigger": "gcs-new-span"},
        job_id=f"{config.pipeline.name}-span-{digest}",
        dry_run=env.get("PIPELINE_DRY_RUN") == "1",
    )
    logging.info(json.dumps({"event": "pipeline_submitted", "span": span, "job": request["pipelineJobId"]}))
    return request


@_cloud_event
def on_new_data(cloud_event) -> None:
    """Entry point: a CloudEvent whose data is the Cloud Storage object."""
    handle(cloud_event.data, dict(os.environ))
