"""FeatureScreen: leakage, near-constant and redundant columns, before Transform.

Reads a uniform sample of the whole train split (not its first rows: a table sorted by time would show one
month), runs models/screening.py, and writes:
- `screening.json` (the `findings` artifact): every column's finding, power and reason,
  shown in the run report;
- the schema Transform and Trainer read, with each excluded feature marked DEPRECATED,
  so that Transform does not parse it and the model never sees it.
A run fails here, naming them, if the screen would leave the model no feature.
"""

import json
import os

import pandas as pd
from tensorflow_metadata.proto.v0 import schema_pb2
from tfx import v1 as tfx
from tfx.types import artifact_utils
from tfx.utils import io_utils

from components.file_example_gen import example_to_row
from mlops_artifacts import FeatureScreening
from models import sampling, screening

SCHEMA_FILE = "schema.pbtxt"
RESULT_FILE = "screening.json"
STRONG_PROPERTY = "strong"  # the findings artifact's list of strong features kept


class NoFeatureLeftError(RuntimeError):
    """Every configured feature was excluded by the screen."""


def settings_json(settings: screening.Settings, label: str, problem_type: str, features: list[str],
                  ignore: list[str], left_out: list[dict] = ()) -> str:  # fmt: skip
    """The component's one parameter: what to screen and how; `left_out`: the columns feature inference
    did not make features ({column, finding, reason}), reported with the screen's findings."""
    return json.dumps({"settings": {**settings.__dict__, "keep": list(settings.keep)}, "label": label,
                       "problem_type": problem_type, "features": features, "ignore": ignore,
                       "left_out": list(left_out)})  # fmt: skip


def uniform_rows(examples_uri: str, split: str, rows: int, seed: int = 0) -> tuple[list[dict], int]:
    """Up to `rows` rows drawn uniformly (seeded) from every record of a split, in file order, and the split's
    record count; one pass over the split, and only the drawn rows are parsed."""
    records, total = sampling.uniform_records([os.path.join(examples_uri, f"Split-{split}", "*")], rows, seed)
    return [example_to_row(r) for r in records], total


def deprecate(schema: schema_pb2.Schema, columns: list[str]) -> schema_pb2.Schema:
    """A copy of `schema` in which `columns` are DEPRECATED (parsers and Transform skip them)."""
    out = schema_pb2.Schema()
    out.CopyFrom(schema)
    for feature in out.feature:
        if feature.name in columns:
            feature.lifecycle_stage = schema_pb2.DEPRECATED
    return out


@tfx.dsl.components.component
def FeatureScreen(  # noqa: N802 (component names are classes in TFX)
    examples: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.Examples],
    schema: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.Schema],
    screened_schema: tfx.dsl.components.OutputArtifact[tfx.types.standard_artifacts.Schema],
    findings: tfx.dsl.components.OutputArtifact[FeatureScreening],
    settings: tfx.dsl.components.Parameter[str],
) -> None:
    from google.protobuf import text_format

    config = json.loads(settings)
    options = screening.Settings(**{**config["settings"], "keep": tuple(config["settings"]["keep"])})
    splits = artifact_utils.decode_split_names(examples.split_names)
    split = "train" if "train" in splits else splits[0]
    drawn, split_rows = uniform_rows(examples.uri, split, options.max_rows)
    frame = pd.DataFrame(drawn)
    left_out = {c["column"] for c in config.get("left_out", ())}
    frame = frame.drop(columns=[c for c in frame.columns if c in left_out])
    found = screening.screen(frame, config["label"], config["problem_type"], config["features"], options,
                             tuple(config["ignore"]))  # fmt: skip
    found += [screening.Finding(c["column"], c["finding"], 0.0, False, True, c["reason"])
              for c in config.get("left_out", ())]  # fmt: skip
    excluded = [f.column for f in found if f.excluded]
    left = [c for c in config["features"] if c not in excluded]
    summary = {"rows": len(frame), "split_rows": split_rows, "split": split, "excluded": excluded,
               **screening.method(options, config["problem_type"]), "features": screening.as_dicts(found)}  # fmt: skip
    io_utils.write_string_file(os.path.join(findings.uri, RESULT_FILE), json.dumps(summary, indent=2))
    # kept features to look at (unless screening.keep lists them already), for the run's summary
    strong = [{"column": f.column, "power": f.power} for f in found
              if f.finding == "strong" and f.is_feature and f.column not in options.keep]  # fmt: skip
    findings.set_string_custom_property(STRONG_PROPERTY, json.dumps(strong))
    for finding in found:
        if finding.finding != "ok":
            print(json.dumps({"component": "FeatureScreen", **screening.as_dicts([finding])[0]}))
    if not left:
        raise NoFeatureLeftError(f"the feature screen excluded every feature: {excluded}")
    source = schema_pb2.Schema()
    text_format.Parse(io_utils.read_string_file(os.path.join(schema.uri, SCHEMA_FILE)), source)
    io_utils.write_pbtxt_file(os.path.join(screened_schema.uri, SCHEMA_FILE), deprecate(source, excluded))
