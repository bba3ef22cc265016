"""The config's JSON Schema (`make config-schema`): current with the pydantic models, named by every config file
for editors, and every file, merged with the base it extends, valid against it."""

import copy
import glob
import json
import os

import jsonschema
import pytest
import yaml

from settings import schema, yaml_files
from tests.conftest import REPO

pytestmark = pytest.mark.unit

CONFIGS = sorted(glob.glob(os.path.join(REPO, "configs", "**", "*.yaml"), recursive=True))


def committed() -> dict:
    with open(os.path.join(REPO, schema.SCHEMA_FILE)) as f:
        return json.load(f)


def test_the_committed_schema_is_the_models_schema():
    assert committed() == json.loads(json.dumps(schema.json_schema())), "run `make config-schema`"


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: os.path.relpath(p, REPO))
def test_every_config_names_the_schema_and_is_valid_against_it(path):
    with open(path) as f:
        first = f.readline().strip()
        raw = yaml.safe_load(f)
    schema_path = os.path.relpath(os.path.join(REPO, schema.SCHEMA_FILE), os.path.dirname(path))
    assert first == f"# yaml-language-server: $schema={schema_path}"
    # a profile that `extends` a base sets only what it changes: the merged file must be whole
    merged = yaml_files.with_base(copy.deepcopy(raw), path)
    jsonschema.validate(merged, {**committed(), "required": ["problem_type", "label", "data", "features", "pipeline"]})


def test_the_schema_refuses_what_the_loader_refuses():
    expected = committed()
    with open(os.path.join(REPO, "configs", "taxi.yaml")) as f:
        raw = yaml.safe_load(f)
    for broken in ({"trainer": {"learning_rat": 0.01}}, {"trainer": {"train_steps": "600"}},
                   {"problem_type": "ranking"}, {"data": {"personal_columns": "rider_name"}}):  # fmt: skip
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(yaml_files.deep_merge(raw, broken), expected)


@pytest.mark.parametrize("section, key, bounds, bad", [
    ("SplitConfig", "train_fraction", {"exclusiveMinimum": 0, "exclusiveMaximum": 1}, {"split": {"train_fraction": 1.5}}),
    ("ServingConfig", "canary_percent", {"minimum": 0, "maximum": 100}, {"serving": {"canary_percent": 101}}),
    ("ServingConfig", "poll_seconds", {"exclusiveMinimum": 0}, {"serving": {"poll_seconds": 0}}),
    ("MonitoringConfig", "sample_rate", {"exclusiveMinimum": 0, "maximum": 1}, {"monitoring": {"sample_rate": 1.2}}),
    ("FairnessConfig", "max_fnr_gap", {"minimum": 0, "maximum": 1}, {"evaluation": {"fairness": {"max_fnr_gap": -0.1}}}),
    ("TrainerConfig", "epochs", {"minimum": 1}, {"trainer": {"epochs": 0}}),
    ("FramingConfig", "cost_false_positive", {"exclusiveMinimum": 0}, {"framing": {"cost_false_positive": 0}}),
])  # fmt: skip
def test_range_checks_are_in_the_schema_and_refuse_a_bad_value_naming_the_key(section, key, bounds, bad,
                                                                               taxi_config_path):  # fmt: skip
    """A single field's range is a pydantic constraint: an editor sees it in the JSON Schema, the loader refuses
    a value out of it naming the key and the bound."""
    from settings.config import ConfigError, load_config

    field = committed()["$defs"][section]["properties"][key]
    field = next((option for option in field.get("anyOf", []) if option.get("type") != "null"), field)
    assert {k: field[k] for k in bounds} == bounds
    [(top, inner)] = bad.items()
    while isinstance(inner, dict):
        [(name, inner)] = inner.items()
        top = f"{top}.{name}"
    with pytest.raises(ConfigError, match=rf"'{top}' must be (>|>=|<|<=) \S+, got {inner}$"):
        load_config(taxi_config_path, bad)
