"""Streaming prediction: events in, validated, scored by the newest pushed model, windows of statistics out.

  python -m monitoring.stream --config configs/taxi.yaml [--seconds 600]   (make run-stream)

Source: Pub/Sub (one JSON event per message) when `streaming.pubsub_subscription` or
`pubsub_topic` is set, else files landing in `streaming.landing_dir` (CSV with a header or
JSON lines), read while they arrive (`pipelines.landing`: the local runner cannot run a
polling source). Each event is checked against the serving schema by batch prediction's
`ValidateChunk` (a failing row goes to `errors/` with the reason, personal columns are
dropped) and scored by RunInference; the model is the newest pushed version at the time
the event arrived, so a new push is picked up within `poll_seconds` without a restart.
Predictions go to `predictions/` as JSON lines, or to `streaming.bigquery_table`.

The valid rows also fall into fixed windows of `window_seconds` by arrival time; when the
watermark passes a window's end its feature statistics are measured once, for skew against
the served model's training statistics and drift against the window before (the checks
of `make monitor`, given as a `WindowMonitor`), and written to `windows/`. Lateness policy:
a row that arrives after its window was measured is still scored, but belongs to no
window's statistics; it is listed in `late/` with its window (late panes, kept for
LATE_HORIZON; Beam drops rows older than that from windowing only, never from scoring).

Restarts (landing-folder source): a landed file is read in chunks of `chunk_rows`, each named by the
file, its mtime and its first row. A chunk's errors and predictions go to files of that name
(`errors/<chunk>.jsonl`, `predictions/<chunk>.jsonl`, each written then renamed in), and once both
are in place the chunk is recorded in `committed/`. A restart on the same landing and output folders
reads every file again but skips the committed chunks, so each row is scored and written once across
a stop at any point (a chunk cut off before its record is scored again and its files replaced); its
rows reach no window's statistics a second time. Keep `chunk_rows` across a restart (the names
depend on it). With `bigquery_table` the predictions are streaming inserts and nothing is recorded:
a restart scores the files again (at least once).

Locally this runs on the BundleBasedDirectRunner (--streaming), which needs neither Prism
nor the network; with `vertex.dataflow` in the profile, on Dataflow in streaming mode.
"""

from __future__ import annotations

import json
import logging
import os
import time
import uuid
from typing import Protocol

import apache_beam as beam
import pandas as pd
from apache_beam.io import fileio
from apache_beam.io.filesystem import FileMetadata
from apache_beam.ml.inference.base import PredictionResult, RunInference
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.transforms import trigger, userstate, window
from apache_beam.utils.timestamp import Duration

from pipelines import landing
from pipelines.batch_prediction import (
    ERRORS,
    FrameModelHandler,
    ReadChunks,
    ValidateChunk,
    column_types,
    ignored_columns,
    newest_model_dir,
)
from serving import model_store

LATE = "late"
LATE_HORIZON = Duration(seconds=30 * 86400)  # how long a window's late rows are still listed
LOCAL_RUNNER = ["--runner=BundleBasedDirectRunner", "--streaming"]


class WindowMonitor(Protocol):
    """What a window of valid rows is measured with (monitoring.stream gives TFDV's skew and drift checks)."""

    def statistics(self, frame: pd.DataFrame) -> bytes: ...  # a serialized DatasetFeatureStatisticsList

    def checks(self, current: bytes, previous: bytes | None) -> list[dict]: ...


class PushedVersions:
    """The loaded pushed versions (a version's name is its push time, in seconds): a chunk is scored by the
    newest version pushed at or before it arrived, or the oldest loaded one if it arrived before them all.
    The serving dir is listed again at most every `poll_seconds`; a version that fails to load is skipped."""

    def __init__(self, serving_dir: str, personal_columns: list[str], poll_seconds: float, keep: int = 2):
        self.serving_dir, self.personal, self.poll, self.keep = serving_dir, personal_columns, poll_seconds, keep
        self.models: dict[str, model_store.LoadedModel] = {}
        self._refused: set[str] = set()
        self._checked = 0.0
        self.refresh()

    def refresh(self) -> None:
        self._checked = time.monotonic()
        for version in model_store.versions(self.serving_dir)[-self.keep :]:
            if version in self.models or version in self._refused:
                continue
            try:
                self.models[version] = model_store.load(os.path.join(self.serving_dir, version), self.personal)
                logging.info("streaming: loaded model version %s", version)
            except Exception as e:  # a broken push must not stop the stream
                self._refused.add(version)
                logging.error("streaming: refusing model version %s: %s", version, str(e)[:300])
        for version in sorted(self.models, key=int)[: -self.keep]:
            del self.models[version]

    def for_arrival(self, arrived: float) -> model_store.LoadedModel:
        if time.monotonic() - self._checked >= self.poll:
            self.refresh()
        loaded = sorted(self.models, key=int)
        if not loaded:
            raise model_store.ModelUnavailableError(f"no loadable pushed model in {self.serving_dir}")
        pushed_before = [v for v in loaded if int(v) <= arrived]
        return self.models[(pushed_before or loaded)[-1 if pushed_before else 0]]


class ServingDirModelHandler(FrameModelHandler):
    """FrameModelHandler over a serving dir: elements are (keys, inputs, arrival time); each result's example
    is (keys, arrival time) and its model_id the version that scored it."""

    def __init__(self, serving_dir: str, personal_columns: list[str], poll_seconds: float):
        super().__init__(serving_dir, personal_columns)
        self._poll = poll_seconds

    def load_model(self) -> PushedVersions:
        return PushedVersions(self._model_dir, self._personal, self._poll)

    def run_inference(self, batch, model: PushedVersions, inference_args=None):
        out = []
        for keys, frame, arrived, chunk in batch:
            scorer = model.for_arrival(arrived)
            out.append(PredictionResult((keys, arrived, chunk), scorer.predict_frame(frame), scorer.version))
        return out

    def get_num_bytes(self, batch) -> int:
        return int(sum(frame.memory_usage(index=False).sum() for _, frame, *_ in batch))


def write_atomically(path: str, records: list[dict]) -> None:
    """JSON lines to `path`, written beside it and renamed in (a reader sees all of it or none)."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path + ".tmp", "w") as f:
        f.write("".join(json.dumps(r, default=str) + "\n" for r in records))
    os.rename(path + ".tmp", path)


class Ledger:
    """The landed chunks whose output is in place: an empty file per chunk in `<output_dir>/committed`."""

    def __init__(self, output_dir: str):
        self.output_dir = output_dir
        self.folder = os.path.join(output_dir, "committed")

    def committed(self, chunk: str) -> bool:
        return os.path.exists(os.path.join(self.folder, chunk))

    def commit(self, chunk: str) -> None:
        os.makedirs(self.folder, exist_ok=True)
        open(os.path.join(self.folder, chunk), "w").close()

    def output(self, kind: str, chunk: str) -> str:
        return os.path.join(self.output_dir, kind, chunk + ".jsonl")


class ReadLandedChunks(ReadChunks):
    """A landed file -> (chunk name, inputs) of its chunks not yet committed (see the module's Restarts)."""

    def __init__(self, ledger: Ledger, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._ledger = ledger

    def process(self, readable):
        meta, first = readable.metadata, 0
        stem = f"{os.path.basename(meta.path)}.{int(meta.last_updated_in_seconds * 1e6)}"
        for frame in super().process(readable):
            chunk, first = f"{stem}.{first}", first + len(frame)
            if not self._ledger.committed(chunk):
                yield chunk, frame


class ValidateLandedChunk(ValidateChunk):
    """(chunk name, inputs) -> (keys, valid inputs, chunk name); the chunk's errors are written to its errors
    file here, before its valid rows go on (and given, as one list, to the ERRORS output); a chunk without
    valid rows is committed here."""

    def __init__(self, ledger: Ledger, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._ledger = ledger

    def process(self, element):
        chunk, frame = element
        errors, valid = [], None
        for out in super().process(frame):
            if isinstance(out, beam.pvalue.TaggedOutput):
                errors.append(out.value)
            else:
                valid = out
        if errors:
            write_atomically(self._ledger.output(ERRORS, chunk), errors)
            yield beam.pvalue.TaggedOutput(ERRORS, errors)
        if valid is None:
            self._ledger.commit(chunk)
            return
        yield (*valid, chunk)


class WriteScoredChunk(beam.DoFn):
    """(chunk name, records) -> `predictions/<chunk>.jsonl`, then the chunk is committed."""

    def __init__(self, ledger: Ledger):
        self._ledger = ledger

    def process(self, element):
        chunk, records = element
        write_atomically(self._ledger.output("predictions", chunk), records)
        self._ledger.commit(chunk)


class WriteJsonLines(beam.DoFn):
    """Lists of JSON-able records -> one JSON-lines file per bundle in `folder` (written, then renamed in)."""

    def __init__(self, folder: str):
        self._folder = folder
        self._lines: list[str] = []

    def start_bundle(self):
        self._lines = []

    def process(self, records: list[dict]):
        self._lines += [json.dumps(r, default=str) for r in records]

    def finish_bundle(self):
        if not self._lines:
            return
        os.makedirs(self._folder, exist_ok=True)
        path = os.path.join(self._folder, f"{time.time_ns()}-{uuid.uuid4().hex[:8]}.jsonl")
        with open(path + ".tmp", "w") as f:
            f.write("\n".join(self._lines) + "\n")
        os.rename(path + ".tmp", path)


def scored_records(result: PredictionResult, output: str) -> tuple[str | None, list[dict]]:
    """(chunk name, one record per row)."""
    (keys, arrived, chunk), now = result.example, time.time()
    return chunk, [{"key": k, "model_version": result.model_id, output: s, "arrived_at": arrived, "scored_at": now}
            for k, s in zip(keys, result.inference, strict=True)]  # fmt: skip


class _Measure(beam.DoFn):
    """A window's pane of chunks -> its statistics (the on-time pane) or its late rows (a late pane)."""

    def __init__(self, monitor: WindowMonitor | None, min_rows: int):
        self._monitor, self._min_rows = monitor, min_rows

    def process(self, element, w=beam.DoFn.WindowParam, pane=beam.DoFn.PaneInfoParam):
        chunks = list(element[1])
        bounds = [float(w.start), float(w.end)]
        if pane.timing == beam.utils.windowed_value.PaneInfoTiming.LATE:
            reason = "arrived after the watermark passed its window's end: scored, left out of the window's statistics"
            yield beam.pvalue.TaggedOutput(LATE, [{"key": k, "window": bounds, "arrived_at": arrived, "reason": reason}
                                                  for keys, _, arrived in chunks for k in keys])  # fmt: skip
            return
        frame = pd.concat([f for _, f, _ in chunks], ignore_index=True)
        stats = self._monitor.statistics(frame) if self._monitor and len(frame) >= self._min_rows else None
        yield {"window": bounds, "rows": len(frame), "statistics": stats}


class _CompareWithPrevious(beam.DoFn):
    """Window summaries, one key, in the global window: skew and drift against the window measured before."""

    PREVIOUS = userstate.ReadModifyWriteStateSpec("previous", beam.coders.BytesCoder())

    def __init__(self, monitor: WindowMonitor | None):
        self._monitor = monitor

    def process(self, element, previous=beam.DoFn.StateParam(PREVIOUS)):  # noqa: B008 (Beam's idiom)
        summary = element[1]
        stats, checks = summary.pop("statistics"), []
        if stats is not None:
            checks = self._monitor.checks(stats, previous.read())
            previous.write(stats)
        yield [{**summary, "checks": checks, "alerts": sorted({c["feature"] for c in checks if c["alert"]})}]


class WindowStatistics(beam.PTransform):
    """(keys, inputs, arrival) chunks -> window reports, and (tag LATE) the rows that missed their window."""

    def __init__(self, monitor: WindowMonitor | None, window_seconds: float, min_rows: int):
        super().__init__()
        self._monitor, self._seconds, self._min_rows = monitor, window_seconds, min_rows

    def expand(self, chunks):
        measured = (
            chunks
            | "Window"
            >> beam.WindowInto(
                window.FixedWindows(self._seconds),
                trigger=trigger.AfterWatermark(late=trigger.AfterCount(1)),
                accumulation_mode=trigger.AccumulationMode.DISCARDING,
                allowed_lateness=LATE_HORIZON,
            )  # fmt: skip
            | "Key" >> beam.Map(lambda chunk: ("window", chunk))
            | "Pane" >> beam.GroupByKey()
            | "Measure" >> beam.ParDo(_Measure(self._monitor, self._min_rows)).with_outputs(LATE, main="measured")
        )
        reports = (
            measured.measured
            | "Global" >> beam.WindowInto(window.GlobalWindows())
            | "OneKey" >> beam.Map(lambda s: ("windows", s))
            | "Compare" >> beam.ParDo(_CompareWithPrevious(self._monitor))
        )
        return {"windows": reports, LATE: measured[LATE]}


def _readable(path: str) -> fileio.ReadableFile:
    stat = os.stat(path)
    return fileio.ReadableFile(FileMetadata(path, stat.st_size, stat.st_mtime))


def _with_arrival(chunk, ts=beam.DoFn.TimestampParam):
    keys, frame, name = chunk
    return keys, frame, float(ts), name


def build(pipeline, config, model_dir: str, events=None, monitor: WindowMonitor | None = None) -> dict:
    """Adds source -> validate -> RunInference -> sinks, and the windows, to `pipeline`. `events`: a PCollection
    of paths of landed files (timestamped with their landing time), or None for the configured Pub/Sub source.
    Returns the PCollections by name (for tests)."""
    s, personal = config.streaming, list(config.data.personal_columns)
    contract = model_store.read_contract(model_dir)
    validate = (model_dir, config.data.key_column, personal, [contract["label"]])
    # landed files: chunks named for the ledger (module docstring, Restarts), unless the predictions go to BigQuery
    ledger = Ledger(s.output_dir) if events is not None and not s.bigquery_table else None
    if events is not None:
        read = (s.chunk_rows, column_types(model_dir, personal),
                ignored_columns(model_dir, personal, config.data.key_column, [contract["label"]]))  # fmt: skip
        frames = events | "Open" >> beam.Map(_readable)
        if ledger:
            frames = frames | "ReadChunks" >> beam.ParDo(ReadLandedChunks(ledger, *read))
        else:
            frames = frames | "ReadChunks" >> beam.ParDo(ReadChunks(*read)) | "Unnamed" >> beam.Map(lambda f: (None, f))
    else:
        pubsub = beam.io.ReadFromPubSub(subscription=s.pubsub_subscription, topic=s.pubsub_topic)
        frames = (pipeline | "ReadPubSub" >> pubsub | "Parse" >> beam.Map(json.loads)
                  | "Batch" >> beam.BatchElements(min_batch_size=1, max_batch_size=s.chunk_rows)
                  | "Frame" >> beam.Map(lambda rows: (None, pd.DataFrame(rows))))  # fmt: skip
    if ledger:
        validated = frames | "Validate" >> beam.ParDo(ValidateLandedChunk(ledger, *validate)).with_outputs(
            ERRORS, main="valid"
        )
        errors, valid = validated[ERRORS], validated.valid
    else:
        validated = (frames | "Validate" >> beam.ParDo(_Unnamed(ValidateChunk(*validate)))
                     .with_outputs(ERRORS, main="valid"))  # fmt: skip
        errors = validated[ERRORS] | "ErrorList" >> beam.Map(lambda e: [e])
        valid = validated.valid
    chunks = valid | "Arrival" >> beam.Map(_with_arrival)
    handler = ServingDirModelHandler(config.pipeline.serving_dir, personal, s.poll_seconds)
    scored = (chunks | "RunInference" >> RunInference(handler)
              | "Records" >> beam.Map(scored_records, contract["output"]))  # fmt: skip
    windows = (chunks | "Unnamed chunks" >> beam.Map(lambda c: c[:3])
               | "WindowStatistics" >> WindowStatistics(monitor, s.window_seconds, s.min_rows))  # fmt: skip
    if s.bigquery_table:
        rows = scored | "Rows" >> beam.FlatMap(lambda named: named[1])
        scored_sink = rows | "WriteBigQuery" >> beam.io.WriteToBigQuery(
            s.bigquery_table, schema=bigquery_schema(contract["output"]),
            method=beam.io.WriteToBigQuery.Method.STREAMING_INSERTS)  # fmt: skip
    elif ledger:
        scored_sink = scored | "WritePredictions" >> beam.ParDo(WriteScoredChunk(ledger))
    else:
        scored_sink = (scored | "RecordLists" >> beam.Map(lambda named: named[1])
                       | "WritePredictions" >> beam.ParDo(WriteJsonLines(os.path.join(s.output_dir, "predictions"))))  # fmt: skip
    written = [(LATE, windows[LATE]), ("windows", windows["windows"])] + ([] if ledger else [(ERRORS, errors)])
    for name, records in written:
        records | f"Write-{name}" >> beam.ParDo(WriteJsonLines(os.path.join(s.output_dir, name)))
    return {"scored": scored, ERRORS: errors, LATE: windows[LATE], "windows": windows["windows"], "sink": scored_sink}


class _Unnamed(beam.DoFn):
    """(None, inputs) -> ValidateChunk's outputs, each valid (keys, inputs) with no chunk name."""

    def __init__(self, validate: ValidateChunk):
        self._validate = validate

    def setup(self):
        self._validate.setup()

    def process(self, element):
        for out in self._validate.process(element[1]):
            yield out if isinstance(out, beam.pvalue.TaggedOutput) else (*out, None)


def bigquery_schema(output: str) -> str:
    return f"key:STRING,model_version:STRING,{output}:FLOAT,arrived_at:FLOAT,scored_at:FLOAT"


def options(config) -> PipelineOptions:
    """Dataflow in streaming mode with `vertex.dataflow` in the profile, else the local streaming runner."""
    from pipelines.beam_options import beam_args

    if config.vertex is not None and config.vertex.dataflow is not None:
        return PipelineOptions([*beam_args(config), "--streaming"])
    return PipelineOptions(LOCAL_RUNNER)


def run(config, monitor: WindowMonitor | None = None, seconds: float | None = None) -> str:
    """Runs the stream for `seconds` (local source; None: until stopped) with the newest pushed model's
    schema; returns that model's directory."""
    s = config.streaming
    model_dir = newest_model_dir(config.pipeline.serving_dir)
    if s.pubsub_subscription or s.pubsub_topic:
        with beam.Pipeline(options=options(config)) as p:
            build(p, config, model_dir, None, monitor)
        return model_dir
    with landing.serving(s.landing_dir, s.poll_seconds, seconds) as endpoint:
        logging.info("streaming: reading files landing in %s", s.landing_dir)
        with beam.Pipeline(options=options(config)) as p:
            build(p, config, model_dir, landing.read_landing_folder(p, endpoint), monitor)
    return model_dir
