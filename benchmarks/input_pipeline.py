"""Training steps/s with a naive input pipeline and with the tuned one, on the same data.

    python -m benchmarks.input_pipeline --rows 20000 --steps 400 --out build/bench/input.json

Runs the pipeline once (cached across calls) in build/bench/input-run for Transform's
GZIP-compressed TFRecords, then trains the same model for the same number of steps with:

- naive: one reader, one record parsed at a time, then batched, no prefetch;
- tuned: what the Trainer uses (models/training.py): parallel reads, whole batches parsed
  at once on parallel threads, prefetch;
- tuned+cache: the same, with the parsed batches cached in memory after the first pass.
"""

from __future__ import annotations

import glob
import os
import sys
import time

from settings import entry

VARIANTS = ("naive", "tuned", "tuned+cache")


def naive_dataset(files: list[str], feature_spec: dict, label: str, batch_size: int):
    import tensorflow as tf

    def parse(record):
        features = tf.io.parse_single_example(record, feature_spec)
        return features, features.pop(label)

    dataset = tf.data.TFRecordDataset(files, compression_type="GZIP")
    return dataset.map(parse).batch(batch_size).repeat()


def tuned_dataset(files: list[str], feature_spec: dict, label: str, batch_size: int, cache: bool = False):
    from models.training import tuned_input

    return tuned_input(files, feature_spec, label, batch_size, cache=cache)


def steps_per_second(model_factory, dataset, steps: int, warmup: int = 20) -> float:
    model = model_factory()
    model.fit(dataset, steps_per_epoch=warmup, epochs=1, verbose=0)  # graph tracing and first reads
    start = time.perf_counter()
    model.fit(dataset, steps_per_epoch=steps, epochs=1, verbose=0)
    return steps / (time.perf_counter() - start)


def bench(config_path: str, rows: int, steps: int, workdir: str) -> dict:
    import tensorflow_transform as tft
    import tf_keras as keras

    from metadata import mlmd
    from models.features import FeatureSpec
    from models.model import HParams, build_model
    from models.training import cardinalities
    from pipelines import local_runner
    from pipelines.custom_configs import transform_custom_config
    from settings.config import load_config
    from settings.yaml_files import deep_merge, workdir_overrides

    overrides = deep_merge(workdir_overrides(os.path.abspath(workdir)),
                           {"data": {"generate": {"rows": rows}}, "tuning": {"max_trials": 0}})  # fmt: skip
    config = load_config(config_path, overrides)
    local_runner.run(config)
    store = mlmd.open_store(config.pipeline.metadata_path)
    run = mlmd.runs(store, config.pipeline.name)[0]
    found = {}
    for execution in store.get_executions_by_context(run.id):
        if mlmd.node_id(store, execution.id, config.pipeline.name) == "Transform":
            for artifact in mlmd.outputs(store, execution.id):
                found[mlmd.type_name(store, artifact)] = artifact.uri
    files = sorted(glob.glob(os.path.join(found["Examples"], "Split-train", "*")))
    transform_output = tft.TFTransformOutput(found["TransformGraph"])
    spec = FeatureSpec.from_dict(transform_custom_config(config)["features"])
    feature_spec = transform_output.transformed_feature_spec()
    sizes = cardinalities(spec, transform_output)
    batch = config.trainer.batch_size or 256
    hparams = HParams(hidden_units=config.trainer.hidden_units, learning_rate=config.trainer.learning_rate)

    def model_factory():
        keras.utils.set_random_seed(0)
        return build_model(spec.dense_outputs(), sizes, hparams)

    datasets = {
        "naive": lambda: naive_dataset(files, feature_spec, spec.label, batch),
        "tuned": lambda: tuned_dataset(files, feature_spec, spec.label, batch),
        "tuned+cache": lambda: tuned_dataset(files, feature_spec, spec.label, batch, cache=True),
    }
    result = {name: round(steps_per_second(model_factory, make(), steps), 1) for name, make in datasets.items()}
    return {
        "rows": rows, "train_files": len(files), "compression": "GZIP", "batch_size": batch, "steps": steps,
        "steps_per_second": result, "speedup_tuned": round(result["tuned"] / result["naive"], 2),
        "speedup_tuned_cache": round(result["tuned+cache"] / result["naive"], 2), "cpus": os.cpu_count(),
    }  # fmt: skip


@entry.config_errors_exit
def main(argv: list[str] | None = None) -> int:
    parser = entry.parser(__doc__)
    parser.add_argument("--rows", type=int, default=20000)
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--workdir", default="build/bench/input-run")
    parser.add_argument("--out", default="build/bench/input.json")
    args = parser.parse_args(argv)
    result = bench(args.config, args.rows, args.steps, args.workdir)
    from benchmarks.pipeline_timing import write_result

    write_result(args.out, result)
    print(f"\n{result['rows']} rows, batch {result['batch_size']}, {result['steps']} steps per variant")
    for name in VARIANTS:
        print(f"  {name:12s} {result['steps_per_second'][name]:8.1f} steps/s")
    print(f"tuned is {result['speedup_tuned']}x naive; with the cache {result['speedup_tuned_cache']}x")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
