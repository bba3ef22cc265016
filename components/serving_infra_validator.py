"""Infra validation in-process: the model must load and answer in the prediction server.

TFX's InfraValidator starts TensorFlow Serving in Docker or Kubernetes, neither of
which exists on this machine. This component does the same check with the server
the project actually runs (`serving/`): it loads the trained model the way the
server loads it, starts the server on a loopback port, and sends canary requests
built from real eval examples. Every request must get a 200 and a finite score in
[0, 1] for every row. The result is a standard InfraBlessing (the `blessed`
property and INFRA_BLESSED / INFRA_NOT_BLESSED file, as TFX's InfraValidator
writes them), which the Pusher checks before pushing.
"""

import json
import math
import os
import tempfile

import tensorflow as tf
from tfx import v1 as tfx
from tfx.dsl.io import fileio
from tfx.types import artifact_utils
from tfx.utils import io_utils

from components.file_example_gen import example_to_row

CANARY_ROWS = 20
CANARY_REQUESTS = 5


def eval_instances(examples_uri: str, split: str, limit: int) -> list[dict]:
    """Up to `limit` rows of a split as request instances (first value of each feature)."""
    files = sorted(fileio.glob(os.path.join(examples_uri, f"Split-{split}", "*")))
    out = []
    for record in tf.data.TFRecordDataset(files, compression_type="GZIP").take(limit):
        out.append(example_to_row(tf.train.Example.FromString(record.numpy())))
    return out


def valid_prediction(output: str, value) -> bool:
    """A probability in [0, 1]; class probabilities that sum to 1; or (regression) any finite number."""
    if output == "probabilities":
        return (isinstance(value, list) and len(value) > 1 and all(valid_prediction("probability", v) for v in value)
                and abs(sum(value) - 1.0) < 1e-3)  # fmt: skip
    if not isinstance(value, float) or not math.isfinite(value):
        return False
    return output != "probability" or 0.0 <= value <= 1.0


def canary_check(model_dir: str, instances: list[dict], personal_columns: list[str]) -> list[str]:
    """Serves `model_dir` on loopback and sends the canary requests; returns the problems found."""
    from serving.app import App
    from serving.client import PredictionClient
    from serving.model_store import ModelStore, load_validator
    from serving.server import Server
    from settings.sections import ServingConfig

    validator = load_validator(model_dir, personal_columns, ignore_other_schema_columns=True)
    served_inputs = set(validator.rules)
    rows = [{k: v for k, v in r.items() if k in served_inputs} for r in instances]
    problems = []
    with tempfile.TemporaryDirectory() as serving_dir:
        os.symlink(model_dir, os.path.join(serving_dir, "1"))
        s = ServingConfig()
        store = ModelStore(serving_dir, personal_columns)
        app = App(store, "infra-validation", s.max_body_bytes, s.max_instances, s.max_batch, 0, None)
        server = Server(app, "127.0.0.1", 0, poll_seconds=3600)
        try:
            server.start()  # loads and warms up the model exactly as `make serve` does
        except Exception as e:
            server.stop()
            return [f"loading the model as the server does failed: {type(e).__name__}: {str(e)[:300]}"]
        if store.refused():  # the store refuses a model it cannot load, and says why
            server.stop()
            return [f"loading the model as the server does failed: {store.refused()['1']}"]
        try:
            client = PredictionClient(server.url)
            if client.get("/health")[0] != 200:
                return ["the server did not become healthy with this model"]
            size = max(1, len(rows) // CANARY_REQUESTS)
            for start in range(0, len(rows), size):
                batch = rows[start : start + size]
                status, body = client.predict(batch)
                if status != 200:
                    problems.append(f"canary request {start // size}: HTTP {status}: {body.get('error')}")
                    continue
                output = store.pick().output
                scores = [p.get(output) for p in body.get("predictions", [])]
                if len(scores) != len(batch):
                    problems.append(f"canary request {start // size}: {len(scores)} predictions for {len(batch)} rows")
                bad = [v for v in scores if not valid_prediction(output, v)]
                if bad:
                    problems.append(f"canary request {start // size}: invalid '{output}' values: {bad[:3]}")
        finally:
            server.stop()
    return problems


@tfx.dsl.components.component
def ServingInfraValidator(  # noqa: N802 (component names are classes in TFX)
    model: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.Model],
    examples: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.Examples],
    blessing: tfx.dsl.components.OutputArtifact[tfx.types.standard_artifacts.InfraBlessing],
    personal_columns: tfx.dsl.components.Parameter[str] = "[]",
) -> None:
    model_dir = os.path.join(model.uri, "Format-Serving")
    splits = artifact_utils.decode_split_names(examples.split_names)
    split = "eval" if "eval" in splits else splits[0]
    try:
        problems = canary_check(
            model_dir, eval_instances(examples.uri, split, CANARY_ROWS), json.loads(personal_columns)
        )
    except Exception as e:  # a model that cannot even be loaded is not servable
        problems = [f"loading the model as the server does failed: {type(e).__name__}: {str(e)[:500]}"]
    name = "INFRA_NOT_BLESSED" if problems else "INFRA_BLESSED"
    io_utils.write_string_file(os.path.join(blessing.uri, name), "\n".join(problems))
    blessing.set_int_custom_property("blessed", 0 if problems else 1)
    blessing.set_int_custom_property("has_model", 0)
    for line in problems:
        print(json.dumps({"component": "ServingInfraValidator", "problem": line}))
