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
