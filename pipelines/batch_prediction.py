"""Batch prediction with Apache Beam RunInference over a file set, with the pushed model.

  python -m pipelines.batch_prediction --config configs/taxi.yaml --input 'build/data/taxi/*.csv' --output build/batch/taxi

Rows are read from CSV (with a header) or JSON lines, checked against the
model's serving schema like online requests, and scored by RunInference with a
TensorFlow model handler in batches. Each output line keeps the row's key and
carries the model version and the prediction; rows that fail validation go to
`<output>-errors*` with the reason. The Beam runner comes from the config: the
in-process runner locally, Dataflow with a profile that sets `vertex.dataflow`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterable, Sequence
from typing import Any

import apache_beam as beam
import tensorflow as tf
from apache_beam.ml.inference.base import KeyedModelHandler, ModelHandler, PredictionResult, RunInference
from apache_beam.options.pipeline_options import PipelineOptions

from serving import model_store
from serving.validation import InvalidRequestError

ERRORS = "errors"


class ServingModelHandler(ModelHandler[tf.Tensor, PredictionResult, Any]):
    """A TensorFlow model handler for RunInference: loads the pushed SavedModel and calls its
    `serving_default` signature on batches of serialized tf.Examples.

    Beam's own `TFModelHandlerTensor` loads models with Keras (Keras 3 here cannot load this
    SavedModel) and imports tensorflow_hub, which needs `pkg_resources` that setuptools >= 81
    no longer ships; this handler needs neither.
    """

    def __init__(self, model_dir: str, output: str, min_batch_size: int = 1, max_batch_size: int = 512):
        super().__init__()
        self._model_dir = model_dir
        self._output = output
        self._batching = {"min_batch_size": min_batch_size, "max_batch_size": max_batch_size}

    def load_model(self):
        return tf.saved_model.load(self._model_dir)

    def run_inference(self, batch: Sequence[tf.Tensor], model, inference_args: dict | None = None
                      ) -> Iterable[PredictionResult]:  # fmt: skip
        scores = model.signatures["serving_default"](examples=tf.stack(batch))[self._output]
        flat = tf.reshape(scores, [-1]).numpy()
        return [PredictionResult(e, float(s), self._model_dir) for e, s in zip(batch, flat, strict=True)]

    def batch_elements_kwargs(self) -> dict:
        return self._batching

    def get_metrics_namespace(self) -> str:
        return "ServingModelHandler"


class ToExample(beam.DoFn):
    """(key, serialized tf.Example) for a valid row; invalid rows to the `errors` output."""

    def __init__(self, model_dir: str, key_column: str, personal_columns: list[str]):
        self._model_dir = model_dir
        self._key = key_column
        self._personal = personal_columns
        self._validator = None

    def setup(self):
        self._validator = model_store.load_validator(self._model_dir, self._personal, ignore_other_schema_columns=True)

    def process(self, row: dict):
        key = row.get(self._key)
        values = {k: v for k, v in row.items() if k != self._key}
        try:
            instance = self._validator.instance(_drop_nan(values), 0)
        except InvalidRequestError as e:
            yield beam.pvalue.TaggedOutput(ERRORS, {"key": key, "error": str(e).replace("instances[0]: ", "")})
            return
        yield key, tf.constant(model_store.to_example(instance))


def _drop_nan(row: dict) -> dict:
    return {k: v for k, v in row.items() if not (isinstance(v, float) and v != v)}


def _read(pipeline, pattern: str):
    if pattern.endswith((".jsonl", ".json")):
        return pipeline | "ReadJsonLines" >> beam.io.ReadFromText(pattern) | "Parse" >> beam.Map(json.loads)
    return (
        pipeline
        | "ReadCsv" >> beam.io.ReadFromCsv(pattern)
        | "ToDict" >> beam.Map(lambda r: {k: (v.item() if hasattr(v, "item") else v) for k, v in r._asdict().items()})
    )


def build(pipeline, model_dir: str, input_pattern: str, output: str, key_column: str,
          personal_columns: list[str], drop_columns: list[str] = ()) -> None:  # fmt: skip
    """Adds read -> validate -> RunInference -> write to `pipeline`."""
    contract = model_store.read_contract(model_dir)
    version = os.path.basename(model_dir.rstrip("/"))
    rows = _read(pipeline, input_pattern) | "DropColumns" >> beam.Map(
        lambda r: {k: v for k, v in r.items() if k not in drop_columns}
    )
    examples = rows | "Validate" >> beam.ParDo(ToExample(model_dir, key_column, personal_columns)).with_outputs(
        ERRORS, main="valid"
    )
    handler = KeyedModelHandler(ServingModelHandler(model_dir, contract["output"]))
    (
        examples.valid
        | "RunInference" >> RunInference(handler)
        | "Format"
        >> beam.MapTuple(
            lambda key, result: json.dumps({"key": key, "model_version": version, contract["output"]: result.inference})
        )
        | "WritePredictions" >> beam.io.WriteToText(output, file_name_suffix=".jsonl")
    )
    (
        examples[ERRORS]
        | "FormatErrors" >> beam.Map(json.dumps)
        | "WriteErrors" >> beam.io.WriteToText(f"{output}-{ERRORS}", file_name_suffix=".jsonl")
    )


def run(config, input_pattern: str, output: str, model_dir: str | None = None, key_column: str | None = None) -> str:
    """Runs batch prediction with the newest pushed model (or `model_dir`); returns the model used."""
    from pipelines.pipeline import beam_args

    if model_dir is None:
        available = model_store.versions(config.pipeline.serving_dir)
        if not available:
            raise model_store.ModelUnavailableError(f"no pushed model in {config.pipeline.serving_dir}")
        model_dir = os.path.join(config.pipeline.serving_dir, available[-1])
    contract = model_store.read_contract(model_dir)
    not_inputs = [contract["label"]]
    with beam.Pipeline(options=PipelineOptions(beam_args(config))) as p:
        build(p, model_dir, input_pattern, output, key_column or config.data.key_column,
              list(config.data.personal_columns), not_inputs)  # fmt: skip
    return model_dir


def main(argv: list[str] | None = None) -> int:
    from settings.config import ConfigError, load_config

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="configs/taxi.yaml")
    parser.add_argument("--input", required=True, help="file pattern: *.csv with a header, or *.jsonl")
    parser.add_argument("--output", required=True, help="output prefix")
    parser.add_argument("--model-dir", help="default: the newest pushed version")
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config)
    except ConfigError as e:
        print(f"config error: {e}", file=sys.stderr)
        return 2
    model_dir = run(config, args.input, args.output, args.model_dir)
    print(json.dumps({"model": model_dir, "output": args.output}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
