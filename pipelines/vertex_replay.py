"""The replay engine of `make vertex-local` (pipelines/vertex_local.py): a compiled PipelineJob's tasks run in
dependency order as Vertex AI Pipelines runs them. Each container task's command and args get every
placeholder resolved and the KFP v2 executor input (`{{$}}`) Vertex builds: parameters, input artifacts with
their names, types and metadata, and each output under {root}/{project}/{job}/{task}_{id}/{key} with a new
resource name; its `lifecycle.preCacheCheck` (a driver) runs first. What an executor writes to
executor_output.json goes downstream and into the artifact registry that resolver tasks query
(pipelines/vertex_resolver.py); importer tasks import their URI. gs:// paths are one local directory
(`gs://BUCKET/x` is `<gcs_dir>/BUCKET/x`, as gcsfuse's /gcs/ mount holds it). Tasks run one at a time, with
no execution cache; a failed task skips every task downstream of it, and the others still run.

From kfp.local (kfp 2.16) this uses the dependency sort (graph_utils), task arguments (OrchestratorUtils,
IOStore), the executor input (executor_input_utils), placeholder resolution (placeholder_utils), the
executor output (executor_output_utils) and the importer's URI (importer_handler). Written here, because
kfp.local lacks them: resolver tasks (its orchestrator refuses them); a task handler for container
components without a Docker daemon (its SubprocessRunner runs lightweight Python components only); artifacts
kept as RuntimeArtifact dicts with Vertex-style resource names, since its dsl.Artifact keeps a schema title
only (TFX types travel as instanceSchema) and names each output after its key (TFX derives artifact ids, and
the Evaluator the blessing's current_model_id, from the name); dependencies that include the producers of
a task's inputs (a resolver's input is not in dependentTasks).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from google.protobuf import json_format
from kfp.local import executor_input_utils, executor_output_utils, graph_utils, importer_handler, io, placeholder_utils
from kfp.local.orchestrator.orchestrator_utils import OrchestratorUtils
from kfp.pipeline_spec import pipeline_spec_pb2 as pb

from pipelines.vertex_resolver import Registry, UnsupportedFilterError, schema_title
from settings.yaml_files import local_gcs

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ERROR_LINE = re.compile(r"^(?:[A-Za-z_][\w.]*\.)?[A-Z]\w*(?:Error|Exception|Exit)\b.*")

# runs argv for a task, its output to the log file; returns the exit code
Runner = Callable[[str, list[str], str], int]


class TaskFailedError(RuntimeError):
    pass


@dataclass
class Storage:
    """gs:// as a local directory; `workdirs` maps other paths the tasks see (the image's) to local ones."""

    gcs_dir: str
    workdirs: tuple[tuple[str, str], ...] = ()

    def local(self, text: str) -> str:
        text = local_gcs(text, self.gcs_dir)
        for image_path, local_path in self.workdirs:
            text = re.sub(rf"(?<![\w./-]){re.escape(image_path.rstrip('/'))}/", local_path.rstrip("/") + "/", text)
        return text

    def gs(self, text: str) -> str:
        return text.replace(self.gcs_dir.rstrip("/") + "/", "gs://")


@dataclass
class TaskResult:
    task: str
    state: str  # SUCCEEDED, FAILED, SKIPPED
    seconds: float
    error: str = ""
    note: str = ""  # a resolver's: what it found, and which run made it


@dataclass
class Replay:
    job: dict  # the PipelineJob JSON as compiled
    storage: Storage
    runner: Runner
    project: str
    region: str
    log_dir: str
    parameters: dict | None = None  # overrides of runtimeConfig.parameterValues
    out: Callable[[str], None] = lambda line: print(line, flush=True)

    def run(self) -> list[TaskResult]:
        spec = json_format.ParseDict(self.job["pipelineSpec"], pb.PipelineSpec())
        self.spec = spec
        deployment = json_format.ParseDict(self.job["pipelineSpec"]["deploymentSpec"], pb.PipelineDeploymentConfig())
        self.executors = deployment.executors
        name = spec.pipeline_info.name
        self.job_id = f"{name}-{time.strftime('%Y%m%d%H%M%S')}-{uuid.uuid4().hex[:6]}"
        self.root = self.job["runtimeConfig"]["gcsOutputDirectory"].rstrip("/")
        self.registry = Registry(self.storage.local(self.root))
        store = io.IOStore()
        arguments = {**self.job["runtimeConfig"].get("parameterValues", {}), **(self.parameters or {})}
        for key, value in OrchestratorUtils.join_user_inputs_and_defaults(
            arguments, spec.root.input_definitions
        ).items():
            store.put_parent_input(key, value)
        tasks = spec.root.dag.tasks
        for task_name, task in tasks.items():
            _supported(task_name, task, spec, self.executors)
        needs = {n: upstream(t) for n, t in tasks.items()}
        order = graph_utils.topological_sort(needs)
        results: dict[str, TaskResult] = {}
        self.outputs: dict[str, dict] = {}  # per succeeded task: its outputs (artifact lists as dicts)
        self.out(
            f"replay {self.job_id}: {len(tasks)} tasks, pipeline root {self.root} -> {self.storage.local(self.root)}"
        )
        while order:
            task_name = order.pop()
            task = tasks[task_name]
            stopped = [d for d in needs[task_name] if results[d].state != "SUCCEEDED"]
            start = time.monotonic()
            if stopped:
                result = TaskResult(task_name, "SKIPPED", 0.0, f"upstream {', '.join(sorted(stopped))} did not succeed")
            else:
                try:
                    outputs = self._run_task(task_name, task, OrchestratorUtils.make_task_arguments(task.inputs, store))
                    for key, value in outputs.items():
                        store.put_task_output(task_name, key, value)
                    self.outputs[task_name] = outputs
                    result = TaskResult(
                        task_name, "SUCCEEDED", time.monotonic() - start, note=self._found(task, outputs)
                    )
                except (TaskFailedError, UnsupportedFilterError) as e:
                    result = TaskResult(task_name, "FAILED", time.monotonic() - start, str(e))
            results[task_name] = result
            self.out(f"  {task_name:52s} {result.state:9s} {result.seconds:7.1f} s"
                     + (f"   {result.error or result.note}" if result.error or result.note else ""))  # fmt: skip
        return list(results.values())

    def _run_task(self, task_name: str, task: pb.PipelineTaskSpec, arguments: dict) -> dict:
        component = self.spec.components[task.component_ref.name]
        executor = self.executors[component.executor_label]
        kind = executor.WhichOneof("spec")
        if kind == "container":
            return self._container(task_name, component, executor.container, arguments)
        if kind == "resolver":
            return self._resolver(component, executor.resolver, arguments)
        return self._importer(task_name, component, executor.importer, arguments)

    def _found(self, task: pb.PipelineTaskSpec, outputs: dict) -> str:
        """For a resolver task: each output and the run that made what it resolved, or that it found none."""
        component = self.spec.components[task.component_ref.name]
        if self.executors[component.executor_label].WhichOneof("spec") != "resolver":
            return ""
        made_by = {r["artifact"]["uri"]: r["run"] for r in self.registry.records()}
        runs = {key: sorted({made_by.get(a["uri"], a["uri"]) for a in artifacts}) for key, artifacts in outputs.items()}
        if not any(runs.values()):
            return "resolved none (no earlier run made one)"
        return "resolved " + "; ".join(f"{key} from {', '.join(r) or 'none'}" for key, r in sorted(runs.items()))

    def _executor_input(self, task_name: str, component: pb.ComponentSpec, arguments: dict) -> pb.ExecutorInput:
        """As Vertex builds it: parameters, input artifacts (with their names, types and metadata), each output
        artifact under {root}/{project}/{job}/{task}_{id}/{key} with a new resource name, executor_output.json."""
        task_root = f"{self.root}/{self.project}/{self.job_id}/{task_name}_{uuid.uuid4().hex[:12]}"
        params_only = pb.ComponentSpec()
        params_only.CopyFrom(component)
        params_only.input_definitions.ClearField("artifacts")
        parameters = {k: v for k, v in arguments.items() if k in component.input_definitions.parameters}
        executor_input = executor_input_utils.construct_executor_input(params_only, parameters, task_root, False)
        for key in component.input_definitions.artifacts:
            json_format.ParseDict({"artifacts": arguments.get(key, [])}, executor_input.inputs.artifacts[key])
        for artifacts in executor_input.outputs.artifacts.values():
            artifacts.artifacts[0].name = self._new_artifact_name()
        return executor_input

    def _new_artifact_name(self) -> str:
        number = uuid.uuid4().int % 10**19
        return f"projects/{self.project}/locations/{self.region}/metadataStores/default/artifacts/{number}"

    def _container(self, task_name: str, component, container, arguments: dict) -> dict:
        executor_input = self._executor_input(task_name, component, arguments)
        as_dict = executor_input_utils.executor_input_to_dict(executor_input, component)
        log = os.path.join(self.log_dir, self.job_id, f"{task_name}.log")
        os.makedirs(os.path.dirname(log), exist_ok=True)
        for artifacts in executor_input.outputs.artifacts.values():
            # GCS has no directories: a writer to gs://.../key/file needs none, so on local disk each output's
            # directory is made first (a plain open() then works here, which on gs:// it would not)
            os.makedirs(self.storage.local(artifacts.artifacts[0].uri), exist_ok=True)
        steps = []
        if container.lifecycle.HasField("pre_cache_check"):  # Vertex runs it before the cache check (a driver)
            steps.append([*container.lifecycle.pre_cache_check.command, *container.lifecycle.pre_cache_check.args])
        steps.append([*container.command, *container.args])
        for step in steps:
            argv = placeholder_utils.replace_placeholders(step, json.loads(json.dumps(as_dict)), self.job_id,
                                                          task_name, self.root, self.job_id)  # fmt: skip
            code = self.runner(task_name, [self.storage.local(a) for a in argv], log)
            if code != 0:
                raise TaskFailedError(f"{task_name}: {executor_error(log)} (exit {code}; log {log})")
        return self._outputs(task_name, component, executor_input)

    def _outputs(self, task_name: str, component, executor_input: pb.ExecutorInput) -> dict:
        output = executor_output_utils.load_executor_output(self.storage.local(executor_input.outputs.output_file))
        outputs: dict = {}
        for key, declared in executor_input.outputs.artifacts.items():
            written = output.artifacts[key].artifacts if key in output.artifacts else declared.artifacts
            artifacts = []
            for artifact in written:
                a = json.loads(self.storage.gs(json_format.MessageToJson(artifact)))
                a["type"] = json_format.MessageToDict(declared.artifacts[0].type)
                a["name"] = a.get("name") or declared.artifacts[0].name
                artifacts.append(a)
                self.registry.publish(self.job_id, task_name, key, a)
            outputs[key] = artifacts
        for key, spec in component.output_definitions.parameters.items():
            if key in output.parameter_values:
                outputs[key] = executor_output_utils.pb2_value_to_python(output.parameter_values[key])
            else:
                path = self.storage.local(executor_input.outputs.parameters[key].output_file)
                outputs[key] = executor_output_utils.special_dsl_outputpath_read(key, path, spec.parameter_type)
        return outputs

    def _resolver(self, component, resolver, arguments: dict) -> dict:
        inputs = {k: {"artifacts": arguments.get(k, [])} for k in component.input_definitions.artifacts}
        outputs = {}
        for key, query in resolver.output_artifact_queries.items():
            try:
                text = placeholder_utils.resolve_io_placeholders({"inputs": {"artifacts": inputs}}, query.filter)
            except IndexError:  # a placeholder reads an input artifact the upstream resolver did not find
                outputs[key] = []
                continue
            outputs[key] = self.registry.query(text, before_run=self.job_id)
        return outputs

    def _importer(self, task_name: str, component, importer, arguments: dict) -> dict:
        executor_input = self._executor_input(task_name, component, arguments)
        uri = importer_handler.get_importer_uri(importer, executor_input)
        as_dict = executor_input_utils.executor_input_to_dict(executor_input, component)
        metadata = placeholder_utils.recursively_resolve_json_dict_placeholders(
            json_format.MessageToDict(importer.metadata), as_dict, self.job_id, task_name, self.root, self.job_id,
            placeholder_utils.make_random_id(),
        )  # fmt: skip
        artifact = {"name": self._new_artifact_name(), "uri": uri, "metadata": metadata,
                    "type": json_format.MessageToDict(importer.type_schema)}  # fmt: skip
        self.registry.publish(self.job_id, task_name, "artifact", artifact)
        (key,) = component.output_definitions.artifacts
        return {key: [artifact]}

    def pushed_models(self) -> list[str]:
        """Where this replay's pushed models are (local paths)."""
        return [
            self.storage.local(r["artifact"]["metadata"]["pushed_destination"])
            for r in self.registry.records()
            if r["run"] == self.job_id and schema_title(r["artifact"].get("type", {})) == "tfx.PushedModel"
            and r["artifact"].get("metadata", {}).get("pushed") == 1
        ]  # fmt: skip


def upstream(task: pb.PipelineTaskSpec) -> list[str]:
    """The tasks `task` waits for: its dependentTasks and the producers of its inputs (a resolver's input
    artifact is not listed in dependentTasks)."""
    producers = {a.task_output_artifact.producer_task for a in task.inputs.artifacts.values()}
    producers |= {p.task_output_parameter.producer_task for p in task.inputs.parameters.values()}
    return sorted((set(task.dependent_tasks) | producers) - {""})


def _supported(name: str, task: pb.PipelineTaskSpec, spec: pb.PipelineSpec, executors) -> None:
    """What a compiled TFX pipeline holds; anything else (conditions, loops, sub-DAGs) is refused by name."""
    component = spec.components[task.component_ref.name]
    if component.WhichOneof("implementation") != "executor_label":
        raise TaskFailedError(f"{name}: a sub-DAG, which this replay does not run")
    if task.trigger_policy.condition or task.WhichOneof("iterator"):
        raise TaskFailedError(f"{name}: a condition or loop, which this replay does not run")
    kind = executors[component.executor_label].WhichOneof("spec")
    if kind not in ("container", "resolver", "importer"):
        raise TaskFailedError(f"{name}: executor kind {kind!r}, which this replay does not run")


def executor_error(log_path: str) -> str:
    """The executor's error: the last exception line of its log, else its last line."""
    with open(log_path, encoding="utf-8", errors="replace") as f:
        lines = [line.rstrip() for line in f if line.strip()]
    errors = [line for line in lines if ERROR_LINE.match(line)]
    return (errors or lines or ["no output"])[-1][:500]


def subprocess_runner(cwd: str) -> Runner:
    """Fast mode: the task's command as a process of this environment, started in `cwd` (the image's
    working directory stood in for)."""

    def run(task: str, argv: list[str], log: str) -> int:
        with open(log, "a", encoding="utf-8") as f:
            return subprocess.run(argv, cwd=cwd, stdout=f, stderr=subprocess.STDOUT, check=False).returncode

    return run
