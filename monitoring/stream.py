"""The streaming prediction pipeline with `make monitor`'s skew and drift checks on every window.

  python -m monitoring.stream --config configs/taxi.yaml [--seconds 600]   (make run-stream)

The pipeline is `pipelines.streaming`; this entry point gives it the checks (it sits in
the monitoring layer because the checks and the served model's baseline live here). Each
window's statistics are compared, as in `monitoring.run`, with the served model's training
statistics (found by lineage) for skew and with the window before for drift.
"""

from __future__ import annotations

import json
import logging
import sys
from dataclasses import dataclass

import pandas as pd
from tensorflow_metadata.proto.v0 import schema_pb2, statistics_pb2

from monitoring import checks
from settings import entry, logs
from settings.config import Config
from settings.sections import MonitoringConfig


@dataclass
class TrainingComparison:
    """A `pipelines.streaming.WindowMonitor`: TFDV statistics of a window, skew vs training, drift vs previous."""

    schema: schema_pb2.Schema  # with the comparators
    training: statistics_pb2.DatasetFeatureStatisticsList
    features: list[str]

    @classmethod
    def of(cls, schema, training, features: list[str], m: MonitoringConfig) -> TrainingComparison:
        return cls(checks.with_comparators(schema, features, m), training, features)

    def statistics(self, frame: pd.DataFrame) -> bytes:
        return checks.statistics(frame.reindex(columns=self.features)).SerializeToString()

    def checks(self, current: bytes, previous: bytes | None) -> list[dict]:
        def parse(data):
            return statistics_pb2.DatasetFeatureStatisticsList.FromString(data) if data else None

        found = checks.compare(self.schema, self.training, parse(current), parse(previous))
        return [c.to_dict() for c in found]


def window_monitor(config: Config) -> TrainingComparison:
    """The checks against the newest pushed version's training statistics."""
    from monitoring.run import served_baseline
    from pipelines.batch_prediction import newest_model_dir

    base, schema, features = served_baseline(config, newest_model_dir(config.pipeline.serving_dir))
    return TrainingComparison.of(schema, base.training_statistics, features, config.monitoring)


@entry.config_errors_exit
def main(argv: list[str] | None = None) -> int:
    from pipelines import streaming

    parser = entry.parser(__doc__)
    parser.add_argument("--seconds", type=float, help="stop reading the landing folder after this long")
    args = parser.parse_args(argv)
    config = entry.load(args)
    logs.setup(config.log_level, pipeline=config.pipeline.name, entry="stream")
    try:
        monitor = window_monitor(config)
    except LookupError as e:  # no lineage (a model copied in by hand): the windows get statistics only
        logging.warning("streaming: no training statistics for skew (%s); windows get row counts only", e)
        monitor = None
    model_dir = streaming.run(config, monitor, args.seconds)
    print(json.dumps({"model": model_dir, "output": config.streaming.output_dir}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
