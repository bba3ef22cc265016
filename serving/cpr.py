"""The served model behind the aiplatform SDK's custom prediction routine (CPR) interface.

Vertex AI's custom prediction routines serve a `Predictor` (load, preprocess, predict,
postprocess) with the SDK's own FastAPI model server (`CprModelServer`) and handler
(`PredictionHandler`). `ServingPredictor` is that predictor for a pushed version: the same
request validation (a bad instance is a 400 that names the field), the same scores and the
same predict response as `serving/server.py`. A CPR predictor is built from the artifact URI
alone, so the columns to accept and drop (`data.personal_columns`, `data.key_column`) come from
the environment:

  HANDLER_MODULE=google.cloud.aiplatform.prediction.handler HANDLER_CLASS=PredictionHandler
  PREDICTOR_MODULE=serving.cpr PREDICTOR_CLASS=ServingPredictor
  AIP_STORAGE_URI=<a pushed version> PERSONAL_COLUMNS=rider_name,rider_email KEY_COLUMN=trip_id AIP_HTTP_PORT=8080
  AIP_HEALTH_ROUTE=/health AIP_PREDICT_ROUTE=/predict  python -m google.cloud.aiplatform.prediction.model_server
"""

from __future__ import annotations

import os
from typing import Any

from fastapi import HTTPException
from google.cloud.aiplatform.prediction.predictor import Predictor

from serving import model_store
from serving.validation import InvalidRequestError, request_instances

MAX_INSTANCES = 1000


class ServingPredictor(Predictor):
    def __init__(self):
        self._model: model_store.LoadedModel | None = None

    def load(self, artifacts_uri: str) -> None:
        accepted = [*os.environ.get("PERSONAL_COLUMNS", "").split(","), os.environ.get("KEY_COLUMN", "")]
        self._model = model_store.load(artifacts_uri, [c for c in accepted if c])

    def preprocess(self, prediction_input: Any) -> list[dict]:
        try:
            instances = request_instances(prediction_input, MAX_INSTANCES)
            return self._model.validator.instances(instances).rows
        except InvalidRequestError as e:
            raise HTTPException(status_code=e.status, detail=str(e)) from None

    def predict(self, instances: list[dict]) -> list:
        return self._model.predict(instances)

    def postprocess(self, prediction_results: list) -> dict:
        return self._model.response(prediction_results, os.environ.get("AIP_DEPLOYED_MODEL_ID", ""))
