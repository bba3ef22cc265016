"""The local unbounded source of the streaming pipeline: files landing in a folder, read while they arrive.

The Python local runner of Beam 2.77 has no working polling source in streaming mode:
`fileio.MatchContinuously` and `PeriodicImpulse` (splittable DoFns that defer their
remainder) fail on the BundleBasedDirectRunner ("Transform node ... was not replaced as
expected", and with the overrides reordered "restriction ... has not been claimed"), the
FnApiRunner is batch only (MatchContinuously there returns at once, with nothing), and
Prism, which the DirectRunner tries first, is a binary downloaded from GitHub and not
bundled with the wheel. The BundleBasedDirectRunner's streaming inputs are Pub/Sub and
TestStream's event service, the gRPC feed Interactive Beam replays unbounded sources
through. So locally a poller serves that feed on loopback: every `poll_seconds` it lists
the folder and sends each new file (path, landing time = mtime), then advances the
watermark and processing time to the wall clock. A file counts once it is renamed into
place (names starting with "." or ending in ".tmp" are skipped). Files already there at
the start are read too. The watermark trails the clock by `watermark_delay` seconds; a
file whose mtime is older than that (copied with its old time) is late.
"""

from __future__ import annotations

import contextlib
import glob
import logging
import os
import time

import apache_beam as beam
from apache_beam.portability.api import beam_runner_api_pb2
from apache_beam.testing.test_stream import TestStream
from apache_beam.utils.timestamp import MAX_TIMESTAMP

FILES = "files"
Payload = beam_runner_api_pb2.TestStreamPayload
PATTERNS = ("*.csv", "*.jsonl", "*.json")


def landed(folder: str, seen: set[str]) -> list[tuple[str, float]]:
    """(path, mtime) of the whole files in `folder` not in `seen`, oldest first; adds them to `seen`."""
    found = []
    for pattern in PATTERNS:
        for path in glob.glob(os.path.join(folder, pattern)):
            name = os.path.basename(path)
            if path in seen or name.startswith(".") or name.endswith(".tmp"):
                continue
            try:
                found.append((path, os.stat(path).st_mtime))
            except FileNotFoundError:  # moved away between the listing and the stat
                continue
    seen.update(p for p, _ in found)
    return sorted(found, key=lambda f: f[1])


class LandingFolderEvents:
    """The TestStreamService reader: events of files landing in `folder` until `stop_at` (epoch seconds)."""

    def __init__(self, folder: str, poll_seconds: float, stop_at: float, watermark_delay: float = 1.0):
        self.folder = folder
        self.poll_seconds = poll_seconds
        self.stop_at = stop_at
        self.watermark_delay = watermark_delay
        self.coder = beam.coders.FastPrimitivesCoder()

    def read_multiple(self, _tags):
        seen: set[str] = set()
        last = time.time()
        while True:
            now = time.time()
            files = landed(self.folder, seen)
            if files:
                elements = [Payload.TimestampedElement(encoded_element=self.coder.encode(path),
                                                       timestamp=int(mtime * 1e6)) for path, mtime in files]  # fmt: skip
                yield Payload.Event(element_event=Payload.Event.AddElements(elements=elements, tag=FILES))
                logging.info("landed %d file(s) in %s", len(files), self.folder)
            watermark = int((now - self.watermark_delay) * 1e6)
            yield Payload.Event(watermark_event=Payload.Event.AdvanceWatermark(new_watermark=watermark, tag=FILES))
            yield Payload.Event(processing_time_event=Payload.Event.AdvanceProcessingTime(
                advance_duration=int((now - last) * 1e6)))  # fmt: skip
            last = now
            if now >= self.stop_at:
                break
            time.sleep(min(self.poll_seconds, max(0.0, self.stop_at - now)))
        end = Payload.Event.AdvanceWatermark(new_watermark=MAX_TIMESTAMP.micros, tag=FILES)
        yield Payload.Event(watermark_event=end)


@contextlib.contextmanager
def serving(folder: str, poll_seconds: float, seconds: float | None = None):
    """Serves the landing folder's events on loopback for `seconds` (None: a year); yields the endpoint."""
    from apache_beam.testing.test_stream_service import TestStreamServiceController

    os.makedirs(folder, exist_ok=True)
    stop_at = time.time() + (seconds if seconds is not None else 365 * 86400)
    service = TestStreamServiceController(LandingFolderEvents(folder, poll_seconds, stop_at))  # localhost:<free port>
    service.start()
    try:
        yield service.endpoint
    finally:
        service.stop()


def read_landing_folder(pbegin, endpoint: str):
    """Paths of the files the service at `endpoint` reports, timestamped with their landing time."""
    return (pbegin | "LandingFolder" >> TestStream(output_tags=[FILES], endpoint=endpoint))[FILES]
