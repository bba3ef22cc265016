"""TFX's LocalDagRunner with independent components run at the same time, one process per component.

LocalDagRunner runs the components one after another in its own process, so on a machine with several
cores the Tuner, the baselines, the distilled model and the evaluations that do not depend on one
another wait in line while a core idles (and a second Beam worker inside a step does not pay: README,
scale). This runner compiles the same IR and launches each node with TFX's own `Launcher`, so ML
Metadata, the cache and the artifacts are those of a LocalDagRunner run. What changes is the order:
a node starts, in a process forked from this one, as soon as every node upstream of it has finished,
at most `workers` at a time; among the nodes ready, the one with the longest chain of nodes below it
goes first.

A node that fails stops the run: nothing new starts, the nodes already running finish (their
executions are recorded in ML Metadata, as complete or failed), and the first failure's exception is
raised here. A node's process dies with this one (Linux), so killing the run kills its components.
"""

from __future__ import annotations

import ctypes
import datetime
import multiprocessing
import os
import pickle
import signal
import sys
from multiprocessing.connection import wait

from absl import logging
from tfx.dsl.compiler import constants
from tfx.orchestration import metadata
from tfx.orchestration.local import runner_utils
from tfx.orchestration.local.local_dag_runner import LocalDagRunner
from tfx.orchestration.portable import launcher, runtime_parameter_utils
from tfx.orchestration.portable.partial_run_utils import mark_pipeline, snapshot
from tfx.proto.orchestration import pipeline_pb2
from tfx.utils import telemetry_utils

_PR_SET_PDEATHSIG = 1  # linux/prctl.h


class ComponentFailedError(RuntimeError):
    """A component failed and its exception could not be passed back as itself."""


class ParallelDagRunner(LocalDagRunner):
    """LocalDagRunner, with up to `workers` components running at once (1: one after another, as TFX's)."""

    def __init__(self, workers: int):
        super().__init__()
        if workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        self.workers = workers

    def run_with_ir(self, pipeline: pipeline_pb2.Pipeline, run_options: pipeline_pb2.RunOptions | None = None) -> None:
        runtime_parameter_utils.substitute_runtime_parameter(
            pipeline, {constants.PIPELINE_RUN_ID_PARAMETER_NAME: datetime.datetime.now().isoformat()}
        )
        deployment_config = runner_utils.extract_local_deployment_config(pipeline)
        connection = deployment_config.metadata_connection_config
        connection_config = getattr(connection, connection.WhichOneof("connection_config"))
        if run_options:
            partial = run_options.partial_run
            mark_pipeline(pipeline, from_nodes=partial.from_nodes or None, to_nodes=partial.to_nodes or None,
                          snapshot_settings=partial.snapshot_settings)  # fmt: skip
        nodes = [n.pipeline_node for n in pipeline.nodes if not n.pipeline_node.execution_options.HasField("skip")]

        def launch(node: pipeline_pb2.PipelineNode) -> None:
            node_id = node.node_info.id
            if node.execution_options.run.perform_snapshot:
                with metadata.Metadata(connection_config) as handle:
                    snapshot(handle, pipeline)
            launcher.Launcher(
                pipeline_node=node,
                mlmd_connection=metadata.Metadata(connection_config),
                pipeline_info=pipeline.pipeline_info,
                pipeline_runtime_spec=pipeline.runtime_spec,
                executor_spec=runner_utils.extract_executor_spec(deployment_config, node_id),
                custom_driver_spec=runner_utils.extract_custom_driver_spec(deployment_config, node_id),
            ).launch()

        with telemetry_utils.scoped_labels({telemetry_utils.LABEL_TFX_RUNNER: "local"}):
            run_nodes(nodes, launch, self.workers)


def launch_order(upstream: dict[str, set[str]]) -> dict[str, int]:
    """Node -> the number of nodes on its longest chain downstream (itself included): the priority."""
    downstream: dict[str, set[str]] = {n: set() for n in upstream}
    for node, ups in upstream.items():
        for up in ups:
            downstream[up].add(node)
    depth: dict[str, int] = {}

    def chain(node: str) -> int:
        if node not in depth:
            depth[node] = 1 + max((chain(d) for d in downstream[node]), default=0)
        return depth[node]

    return {n: chain(n) for n in upstream}


def run_nodes(nodes: list, launch, workers: int) -> None:
    """Launches every node (`launch(node)`) in a forked process once its upstream nodes have finished, at most
    `workers` at once. `nodes` are PipelineNodes in topological order."""
    by_id = {n.node_info.id: n for n in nodes}
    upstream = {i: {u for u in n.upstream_nodes if u in by_id} for i, n in by_id.items()}
    priority = launch_order(upstream)
    position = {i: k for k, i in enumerate(by_id)}
    context = multiprocessing.get_context("fork")
    pending, done = set(by_id), set()
    running: dict = {}  # the reading end of a node's pipe -> node, process
    failure: BaseException | None = None
    while pending or running:
        ready = sorted((i for i in pending if upstream[i] <= done), key=lambda i: (-priority[i], position[i]))
        while failure is None and ready and len(running) < workers:
            node_id = ready.pop(0)
            pending.discard(node_id)
            logging.info("Component %s is running.", node_id)
            reader, writer = context.Pipe(duplex=False)
            sys.stdout.flush()
            sys.stderr.flush()
            process = context.Process(target=_child, args=(launch, by_id[node_id], writer), name=node_id)
            process.start()
            writer.close()
            running[reader] = (node_id, process)
        if not running:
            break
        for reader in wait(list(running)):  # readable: the node's report, or the end of its process
            node_id, process = running.pop(reader)
            error = _result(node_id, process, reader)
            if error is None:
                done.add(node_id)
                logging.info("Component %s is finished.", node_id)
            else:
                logging.error("Component %s failed: %s", node_id, error)
                failure = failure or error
        if failure is not None and not running:
            break
    if failure is not None:
        raise failure


def _child(launch, node, writer) -> None:
    if sys.platform.startswith("linux"):  # die with the run (kill -9 of the runner alone included)
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    try:
        launch(node)
        writer.send_bytes(b"")
    except BaseException as e:
        logging.exception("Component %s failed", node.node_info.id)
        writer.send_bytes(_pickled(e))
    finally:
        writer.close()
        sys.stdout.flush()
        sys.stderr.flush()


def _pickled(error: BaseException) -> bytes:
    """The exception itself where it survives pickling, else one that carries its type and message."""
    try:
        data = pickle.dumps(error)
        pickle.loads(data)
        return data
    except Exception:
        return pickle.dumps(ComponentFailedError(f"{type(error).__name__}: {error}"))


def _result(node_id: str, process, reader) -> BaseException | None:
    """None when the node's process reported success, else the exception it reported (or why it reported none)."""
    try:
        data = reader.recv_bytes()
    except EOFError:
        data = None
    reader.close()
    process.join()
    if data == b"":  # the Launcher published the execution; how the process ended after that does not undo it
        return None
    if data:
        return pickle.loads(data)  # noqa: S301 (written by this run's own child process)
    code = process.exitcode
    how = f"signal {-code}" if code is not None and code < 0 else f"exit code {code}"
    return ComponentFailedError(f"component {node_id}'s process ended ({how}) without reporting a result")


def default_workers() -> int:
    """One component per core this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
