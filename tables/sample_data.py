"""The configured data, made ready before a run: the project's generated sample, a public table written from its
installed package, or a check that the user's is there."""

from __future__ import annotations

import json
import os

from settings.config import Config


def prepare_data(config: Config) -> None:
    """Writes the configured sample data unless the same data is already there.

    Rewriting identical data would change file times and defeat the pipeline cache,
    so a stamp of the generator's settings decides.
    """
    gen = config.data.generate
    if gen is None:
        if not os.path.isdir(config.data.path) and config.data.public_table:
            from datagen import public_tables

            name = config.data.public_table
            if name not in public_tables.TABLES:
                raise ValueError(
                    f"{config.source}: data.public_table '{name}' is not one of {sorted(public_tables.TABLES)}"
                )
            public_tables.write(name, config.data.path)  # read from its installed package
        if not os.path.isdir(config.data.path):
            raise FileNotFoundError(f"{config.source}: data.path '{config.data.path}' does not exist")
        return
    from datagen import taxi

    stamp_path = config.data.path.rstrip("/") + ".generated.json"  # outside the input glob
    stamp = {"rows": gen.rows, "seed": gen.seed, "label_signal": gen.label_signal, "version": taxi.VERSION}
    if os.path.exists(stamp_path):
        with open(stamp_path) as f:
            if json.load(f) == stamp:
                return
    taxi.write_csv(taxi.generate(gen.rows, gen.seed, gen.label_signal), config.data.path)
    with open(stamp_path, "w") as f:
        json.dump(stamp, f)
