"""The config's JSON Schema, which every configs/*.yaml names for editors (`make config-schema`)."""

from __future__ import annotations

from settings.config import Config

SCHEMA_FILE = "configs/config.schema.json"


def json_schema() -> dict:
    """The JSON Schema of a config file (`make config-schema`), for editors and checks. No key is required at the
    top: a profile that `extends` a base sets only what it changes (the merged file must be whole)."""
    schema = Config.model_json_schema()
    schema["title"] = "TFX MLOps pipeline config (configs/*.yaml)"
    schema["properties"]["extends"] = {"type": "string", "description": "a base config, relative to this file"}
    schema.pop("required", None)
    return schema


def main(argv: list[str] | None = None) -> int:
    import argparse
    import json

    parser = argparse.ArgumentParser(description="Writes the config's JSON Schema (for editors and checks).")
    parser.add_argument("--out", default=SCHEMA_FILE)
    args = parser.parse_args(argv)
    with open(args.out, "w") as f:
        json.dump(json_schema(), f, indent=2, sort_keys=True)
        f.write("\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main())
