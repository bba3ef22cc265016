"""Leaderboard: every candidate, the heuristic floor and the last blessed model in ONE TFMA pass over the eval
split (one EvalConfig, a model spec each), then the decision (models/leaderboard.py).

TFX's Evaluator takes one model and one baseline, so comparing N candidates would take N passes. This component
loads each model the way the Evaluator does (`tfma.default_eval_shared_model` on its serving SavedModel), runs one
`tfma.ExtractEvaluateAndWriteResults` with the pipeline's Beam args, and TFMA checks each candidate's thresholds
on its own (its failures name the model). It then adds the heuristic floor, the fairness limits and the serving
canary, ranks the candidates, and copies the winner (or, when none qualifies, the best-ranked one, not to be
blessed) into its `model` output, with `leaderboard.json` beside the TFMA result. The BlessingGate blesses that
model only when the leaderboard has a winner.

The candidates are inputs named `candidate_<name>`, one per configured candidate, so the component class is made
per pipeline (`Leaderboard(...)`); its executor is one class for all.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile

from tfx import types
from tfx.dsl.components.base import base_beam_component, base_beam_executor, executor_spec
from tfx.dsl.io import fileio
from tfx.types import artifact_utils, standard_artifacts
from tfx.types.component_spec import ChannelParameter, ComponentSpec, ExecutionParameter
from tfx.utils import io_utils, path_utils

from components.blessing_gate import RESULT_FILE

SPLIT = "eval"
PREFIX = "candidate_"
LATENCY_ROWS = 256


class Executor(base_beam_executor.BaseBeamExecutor):
    def Do(self, input_dict, output_dict, exec_properties) -> None:  # noqa: N802 (TFX's name)
        import tensorflow_model_analysis as tfma
        from google.protobuf import json_format

        from models.trainer import CONTRACT_DIR, read_failure

        settings = json.loads(exec_properties["settings"])
        examples = input_dict["examples"]
        candidates = {k[len(PREFIX) :]: v[0] for k, v in sorted(input_dict.items()) if k.startswith(PREFIX)}
        heuristic = (input_dict.get("heuristic") or [None])[0]
        baseline = (input_dict.get("baseline_model") or [None])[0]
        evaluation = artifact_utils.get_single_instance(output_dict["evaluation"])
        winner_model = artifact_utils.get_single_instance(output_dict["model"])

        dirs = {name: _serving_dir(a) for name, a in candidates.items()}
        failed = {name: read_failure(d) for name, d in dirs.items()}
        evaluated = [name for name in candidates if failed[name] is None]
        config = json_format.Parse(exec_properties["eval_config"], tfma.EvalConfig())
        config = _restricted(config, evaluated, heuristic is not None, baseline is not None)
        config = tfma.utils.update_eval_config_with_defaults(config, has_baseline=baseline is not None,
                                                             rubber_stamp=baseline is None)  # fmt: skip
        tfma.utils.verify_eval_config(config)
        model_dirs = {**{n: dirs[n] for n in evaluated}, **({"heuristic": _serving_dir(heuristic)} if heuristic else {}),
                      **({tfma.BASELINE_KEY: _serving_dir(baseline)} if baseline else {})}  # fmt: skip
        sample = None
        if evaluated:
            with tempfile.TemporaryDirectory() as scratch:
                patterns, sample = eval_sample(examples, settings.get("max_eval_rows"), config.model_specs[0].label_key,
                                               scratch)  # fmt: skip
                self._evaluate(config, model_dirs, patterns, examples, evaluation.uri)
        result = standings_and_decision(settings, evaluation.uri, dirs, failed, examples, sample)
        copy_from = result.winner or next((s.name for s in result.standings if s.value is not None), None)
        if copy_from:
            io_utils.copy_dir(dirs[copy_from], os.path.join(winner_model.uri, "Format-Serving"))
            source = candidates[copy_from]
            winner_model.set_string_custom_property("candidate", copy_from)
            winner_model.set_int_custom_property("source_model_id", source.id or 0)
            winner_model.set_string_custom_property("source_model", source.uri)
        else:  # nothing trained: an empty model directory, never blessed
            fileio.makedirs(os.path.join(winner_model.uri, "Format-Serving", CONTRACT_DIR))
        io_utils.write_string_file(os.path.join(evaluation.uri, RESULT_FILE), json.dumps(result.to_dict(), indent=2))
        evaluation.set_string_custom_property("leaderboard", json.dumps(result.to_dict()))
        evaluation.set_string_custom_property("winner", result.winner or "")
        print(json.dumps({"component": "Leaderboard", "winner": result.winner,
                          "standings": [(s.name, s.value, s.lost_because) for s in result.standings]}))  # fmt: skip

    def _evaluate(self, config, model_dirs: dict[str, str], patterns: list[str], examples, output_uri: str) -> None:
        import apache_beam as beam
        import tensorflow_model_analysis as tfma
        from tfx.components.util import tfxio_utils

        shared = [tfma.default_eval_shared_model(eval_saved_model_path=model_dirs[spec.name], model_name=spec.name,
                                                 eval_config=config) for spec in config.model_specs]  # fmt: skip
        # serving SavedModels take batches of serialized examples, read as Arrow as the Evaluator reads them
        factory = tfxio_utils.get_tfxio_factory_from_artifact(
            examples=examples, telemetry_descriptors=["Leaderboard"], raw_record_column_name=tfma.ARROW_INPUT_COLUMN
        )
        with self._make_beam_pipeline() as pipeline:
            reads = [pipeline | f"ReadFromTFRecordToArrow[{SPLIT}][{i}]" >> factory(p).BeamSource()
                     for i, p in enumerate(patterns)]  # fmt: skip
            _ = (
                reads
                | "FlattenExamples" >> beam.Flatten()
                | "ExtractEvaluateAndWriteResults"
                >> tfma.ExtractEvaluateAndWriteResults(eval_shared_model=shared, eval_config=config,
                                                       output_path=output_uri)
            )  # fmt: skip


def eval_sample(examples, max_rows: int | None, label: str, scratch: str) -> tuple[list[str], dict | None]:
    """The eval split's file patterns, or past `max_rows` rows a uniform sample of that many written to `scratch`,
    and what the sample is (None: every row): its rows, the split's, and its positive rows (binary 0/1 labels)."""
    import tensorflow as tf

    from models import sampling

    patterns = [io_utils.all_files_pattern(u) for u in artifact_utils.get_split_uris(examples, SPLIT)]
    if not max_rows:
        return patterns, None
    records, total = sampling.uniform_records(patterns, max_rows)
    if total <= max_rows:
        return patterns, None
    labels = [list(_values(tf.train.Example.FromString(r).features.feature[label])) for r in records]
    binary = all(len(v) == 1 and v[0] in (0, 1) for v in labels)
    return [sampling.write_records(records, scratch)], {
        "rows": len(records), "split_rows": total, "seed": 0,
        "positives": sum(v[0] for v in labels) if binary else None,
    }  # fmt: skip


def _values(feature) -> list:
    kind = feature.WhichOneof("kind")
    return list(getattr(feature, kind).value) if kind else []


def _serving_dir(artifact) -> str:
    return path_utils.serving_model_path(artifact.uri, path_utils.is_old_model_artifact(artifact))


def _restricted(config, candidates: list[str], heuristic: bool, baseline: bool):
    """The configured pass without the models this run has not got (a failed candidate, a first run's baseline)."""
    import tensorflow_model_analysis as tfma

    keep = {*candidates, *(["heuristic"] if heuristic else []), *([tfma.BASELINE_KEY] if baseline else [])}
    out = type(config)()
    out.CopyFrom(config)
    del out.model_specs[:]
    out.model_specs.extend(s for s in config.model_specs if s.name in keep or (s.is_baseline and baseline))
    specs = []
    for spec in config.metrics_specs:
        names = [n for n in spec.model_names if n in keep]
        if names:
            copy = type(spec)()
            copy.CopyFrom(spec)
            del copy.model_names[:]
            copy.model_names.extend(names)
            specs.append(copy)
    del out.metrics_specs[:]
    out.metrics_specs.extend(specs)
    return out


def standings_and_decision(settings: dict, evaluation_uri: str, dirs: dict[str, str], failed: dict[str, str | None],
                           examples, sample: dict | None = None):  # fmt: skip
    """Reads the pass back per model, adds the fairness limits, size and latency, and decides (canary included):
    a `models.leaderboard.Result`. On an eval `sample` (`eval_sample`), each value comes with its 95 % interval
    where one has a closed form (models/sample_intervals.py)."""
    from components.blessing_gate import fairness_failures
    from components.serving_infra_validator import CANARY_ROWS, canary_check, eval_instances
    from components.tfma_results import model_metrics, validation_failures_by_model
    from models import leaderboard, sample_intervals
    from models.measure import directory_bytes
    from models.trainer import CONTRACT_DIR, METADATA_FILE

    metric = settings["metric"]
    per_model = model_metrics(evaluation_uri, metric) if fileio.isdir(evaluation_uri) else {}
    thresholds = validation_failures_by_model(evaluation_uri)
    rows = _eval_records(examples, LATENCY_ROWS)
    standings = []
    for name, model_dir in dirs.items():
        s = leaderboard.Standing(name)
        if failed[name] is not None:
            s.failures.append(f"failed to train or export: {failed[name]}")
            standings.append(s)
            continue
        found = per_model.get(name, {})
        s.value = found.get("")
        s.slices = {k: v for k, v in found.items() if k}
        if sample and s.value is not None:
            s.interval = sample_intervals.interval(metric, s.value, sample["rows"], sample["positives"])
        if s.value is None:
            s.failures.append(f"the evaluation has no {metric} for it")
        s.failures.extend(thresholds.get(name, []))
        s.failures.extend(fairness_failures(evaluation_uri, settings["fairness"], model=name))
        s.size_bytes = directory_bytes(model_dir, CONTRACT_DIR)
        s.latency_ms_per_row = _latency_ms_per_row(model_dir, rows)
        metadata_path = os.path.join(model_dir, CONTRACT_DIR, METADATA_FILE)
        if fileio.exists(metadata_path):
            s.capabilities = json.loads(io_utils.read_string_file(metadata_path)).get("capabilities", [])
        standings.append(s)
    heuristic = per_model.get("heuristic", {}).get("")
    instances = None

    def canary(name: str) -> list[str]:
        nonlocal instances
        if instances is None:
            splits = artifact_utils.decode_split_names(examples[0].split_names)
            instances = eval_instances(examples[0].uri, SPLIT if SPLIT in splits else splits[0], CANARY_ROWS)
        try:
            return canary_check(dirs[name], instances, settings.get("personal_columns", []))
        except Exception as e:  # noqa: BLE001 (a model that cannot be served is a failed check, named)
            return [f"loading the model as the server does failed: {type(e).__name__}: {str(e)[:300]}"]

    result = leaderboard.decide(standings, metric, settings["higher_is_better"], heuristic,
                                settings["heuristic_margin"], canary)  # fmt: skip
    return dataclasses.replace(result, eval_sample=sample)


def _eval_records(examples, limit: int) -> list[bytes]:
    import tensorflow as tf

    files = [f for u in artifact_utils.get_split_uris(examples, SPLIT) for f in tf.io.gfile.glob(os.path.join(u, "*"))]
    return [r.numpy() for r in tf.data.TFRecordDataset(sorted(files), compression_type="GZIP").take(limit)]


def _latency_ms_per_row(model_dir: str, rows: list[bytes]) -> float | None:
    """Median time of one `serving_default` call on a batch of eval rows, per row."""
    import tensorflow as tf

    from models.measure import median_ms

    if not rows:
        return None
    serve = tf.saved_model.load(model_dir).signatures["serving_default"]
    batch = tf.constant(rows)
    return round(median_ms(lambda: serve(examples=batch), calls=10) / len(rows), 5)


def Leaderboard(  # noqa: N802 (a component factory, named as the component)
    examples: types.BaseChannel,
    candidates: dict[str, types.BaseChannel],
    heuristic: types.BaseChannel | None,
    baseline_model: types.BaseChannel,
    eval_config: str,
    settings: str,
) -> base_beam_component.BaseBeamComponent:
    """The component, with one `candidate_<name>` input per candidate."""
    inputs = {
        "examples": ChannelParameter(type=standard_artifacts.Examples),
        **{PREFIX + name: ChannelParameter(type=standard_artifacts.Model) for name in candidates},
        "heuristic": ChannelParameter(type=standard_artifacts.Model, optional=True),
        "baseline_model": ChannelParameter(type=standard_artifacts.Model, optional=True),
    }
    spec_class = type("LeaderboardSpec", (ComponentSpec,), {
        "PARAMETERS": {"eval_config": ExecutionParameter(type=str), "settings": ExecutionParameter(type=str)},
        "INPUTS": inputs,
        "OUTPUTS": {"evaluation": ChannelParameter(type=standard_artifacts.ModelEvaluation),
                    "model": ChannelParameter(type=standard_artifacts.Model)},
        "__module__": __name__,
    })  # fmt: skip
    component_class = type("Leaderboard", (base_beam_component.BaseBeamComponent,), {
        "SPEC_CLASS": spec_class, "EXECUTOR_SPEC": executor_spec.BeamExecutorSpec(Executor), "__module__": __name__,
    })  # fmt: skip
    spec = spec_class(
        examples=examples,
        **{PREFIX + name: channel for name, channel in candidates.items()},
        heuristic=heuristic,
        baseline_model=baseline_model,
        eval_config=eval_config,
        settings=settings,
        evaluation=types.Channel(type=standard_artifacts.ModelEvaluation),
        model=types.Channel(type=standard_artifacts.Model),
    )
    return component_class(spec=spec)
