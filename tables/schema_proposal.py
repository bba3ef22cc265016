"""Proposes a schema from fresh statistics and shows its diff against the curated one.

    python -m tables.schema_proposal --config configs/taxi.yaml [--write]

The curated schema under `schemas/` is a reviewed artifact: the pipeline imports
it (ImportSchemaGen) rather than re-inferring it each run, so a change in the
data shows up as an anomaly instead of silently becoming the new normal.

A table with no curated schema (`data.schema` unset) is validated, from its second
run on, against the schema its first accepted run inferred; `--write` then promotes
that schema (curated: environments, optional columns) to `schemas/<pipeline>/schema.pbtxt`,
which `data.schema` can name.
"""

from __future__ import annotations

import difflib
import math
import os
import sys
import tempfile

import tensorflow_data_validation as tfdv
from google.protobuf import text_format
from tensorflow_metadata.proto.v0 import schema_pb2

from settings import entry
from settings.config import Config

TRAINING, SERVING = "TRAINING", "SERVING"


def curate(schema: schema_pb2.Schema, config: Config) -> schema_pb2.Schema:
    """Applies the project's rules to an inferred schema.

    Both environments are declared; only the model's raw inputs are expected at
    serving time, so the label, identifiers and leaky columns are TRAINING-only.
    Columns with missing values may hold zero values. A serving input has no fixed
    `shape`: the export then parses it as optional (a SparseTensor), so a request
    or a batch row without it reaches the preprocessing, which imputes it in its
    graph; `presence` still flags a training batch with missing values.
    """
    out = schema_pb2.Schema()
    out.CopyFrom(schema)
    del out.default_environment[:]
    out.default_environment.extend([TRAINING, SERVING])
    serving = set(config.features.inputs())
    for feature in out.feature:
        del feature.not_in_environment[:]
        if feature.name not in serving:
            feature.not_in_environment.append(SERVING)
        elif feature.HasField("shape"):
            # Why not keep the shape with a default: a FixedLenFeature's default would have to be the training
            # mean, which only Transform's analysis knows (the Trainer reads no statistics)
            size = math.prod(d.size for d in feature.shape.dim)
            feature.ClearField("shape")
            feature.value_count.min = feature.value_count.max = size
        if feature.presence.min_fraction < 1.0:
            # a row may lack the feature (an empty cell is left out at ingestion)
            feature.value_count.min = 0
    return out


def propose(config: Config, csv_dir: str) -> schema_pb2.Schema:
    """Infers and curates a schema from the configured sample data written to `csv_dir`."""
    from datagen import taxi

    gen = config.data.generate
    if gen is None:
        raise ValueError(f"{config.source}: schema proposals need data.generate (or point at real data)")
    frame = taxi.generate(gen.rows, gen.seed).drop(columns=list(config.data.personal_columns))
    path = taxi.write_csv(frame, csv_dir)
    from apache_beam.options.pipeline_options import PipelineOptions

    # the run's Beam runner (by default Beam would start a job server that leaves a beam-temp* directory in
    # /tmp) and an output in `csv_dir` (by default TFDV writes into a new temporary directory it keeps)
    stats = tfdv.generate_statistics_from_csv(path, output_path=os.path.join(csv_dir, "stats.tfrecord"),
                                              pipeline_options=PipelineOptions(list(config.pipeline.beam_args)))  # fmt: skip
    return curate(tfdv.infer_schema(stats, infer_feature_shape=True), config)


def promote_accepted(config: Config, write: bool, schemas_dir: str | None = None) -> int:
    """Shows (and with `write` copies, curated) the schema of the first accepted run of a table with no
    curated schema; returns the exit code."""
    from tables.feature_inference import with_inferred_features
    from tables.schema_staging import accepted_schema

    found = accepted_schema(config)
    if found is None:
        print(f"no accepted run of {config.pipeline.name} yet: run `make run CONFIG={config.source}` first")
        return 1
    schema = schema_pb2.Schema()
    with open(found) as f:
        text_format.Parse(f.read(), schema)
    curated = curate(schema, with_inferred_features(config))
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    target = os.path.join(schemas_dir or os.path.join(repo, "schemas"), config.pipeline.name, "schema.pbtxt")
    print(f"schema of the first accepted run: {found}")
    if write:
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(target, "w") as f:
            f.write(text_format.MessageToString(curated))
        print(f"wrote {target}; name it in the config as data.schema to make it the curated schema")
    else:
        print(f"`make schema CONFIG={config.source} WRITE=1` promotes it to {target}")
    return 0


@entry.config_errors_exit
def main(argv: list[str] | None = None) -> int:
    parser = entry.parser(__doc__)
    parser.add_argument("--write", action="store_true", help="replace the curated schema with the proposal")
    args = parser.parse_args(argv)
    config = entry.load(args)
    if not config.data.schema:
        return promote_accepted(config, args.write)
    with tempfile.TemporaryDirectory() as tmp:
        proposal = text_format.MessageToString(propose(config, tmp))
    current = ""
    if os.path.exists(config.data.schema):
        with open(config.data.schema) as f:
            current = f.read()
    diff = list(difflib.unified_diff(current.splitlines(), proposal.splitlines(), "curated", "proposal", lineterm=""))
    print("\n".join(diff) if diff else "the proposal matches the curated schema")
    if args.write:
        os.makedirs(os.path.dirname(config.data.schema), exist_ok=True)
        with open(config.data.schema, "w") as f:
            f.write(proposal)
        print(f"wrote {config.data.schema}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
