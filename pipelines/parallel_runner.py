"""TFX's LocalDagRunner with independent components run at the same time, one process per component.

LocalDagRunner runs the components one after another in its own process, so on a machine with several
cores the Tuner, the baselines, the distilled model and the two evaluation passes wait in line while a core
idles (and a second Beam worker inside a step does not pay: docs/BENCHMARKS.md). This runner compiles the same IR
and launches each node with TFX's own `Launcher`, so ML Metadata, the cache and the artifacts are those of a
LocalDagRunner run; `pipelines/component_processes.py` decides when and where each node runs.
"""

from __future__ import annotations

import dataclasses
import datetime

from tfx.dsl.compiler import constants
from tfx.orchestration import metadata
from tfx.orchestration.local import runner_utils
from tfx.orchestration.local.local_dag_runner import LocalDagRunner
from tfx.orchestration.portable import launcher, runtime_parameter_utils
from tfx.orchestration.portable.partial_run_utils import mark_pipeline, snapshot
from tfx.proto.orchestration import pipeline_pb2
from tfx.utils import telemetry_utils

from pipelines.component_processes import run_nodes


class ParallelDagRunner(LocalDagRunner):
    """LocalDagRunner, with up to `workers` components running at once."""

    def __init__(self, workers: int):
        super().__init__()
        if workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        self.workers = workers

    def run_with_ir(self, pipeline: pipeline_pb2.Pipeline, run_options: pipeline_pb2.RunOptions | None = None) -> None:
        runtime_parameter_utils.substitute_runtime_parameter(
            pipeline, {constants.PIPELINE_RUN_ID_PARAMETER_NAME: datetime.datetime.now().isoformat()}
        )
        if run_options:
            partial = run_options.partial_run
            mark_pipeline(pipeline, from_nodes=partial.from_nodes or None, to_nodes=partial.to_nodes or None,
                          snapshot_settings=partial.snapshot_settings)  # fmt: skip
        nodes = [n.pipeline_node for n in pipeline.nodes if not n.pipeline_node.execution_options.HasField("skip")]
        upstream = {n.node_info.id: list(n.upstream_nodes) for n in nodes}
        with telemetry_utils.scoped_labels({telemetry_utils.LABEL_TFX_RUNNER: "local"}):
            run_nodes(upstream, NodeLauncher(pipeline), self.workers)


@dataclasses.dataclass(frozen=True)
class NodeLauncher:
    """Launches one node of the compiled pipeline, as LocalDagRunner does (picklable: it crosses to the node's
    process)."""

    pipeline: pipeline_pb2.Pipeline

    def __call__(self, node_id: str) -> None:
        pipeline = self.pipeline
        deployment_config = runner_utils.extract_local_deployment_config(pipeline)
        connection = deployment_config.metadata_connection_config
        connection_config = getattr(connection, connection.WhichOneof("connection_config"))
        [node] = [n.pipeline_node for n in pipeline.nodes if n.pipeline_node.node_info.id == node_id]
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
