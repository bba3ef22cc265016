"""Answers lineage questions from ML Metadata.

  python -m metadata.lineage model [--version V]   what produced a pushed model (default: the newest)
  python -m metadata.lineage span N                 which models were trained on data span N
  python -m metadata.lineage runs                   every run: status, push, parameters, metrics

Reads the local SQLite store of `--config`. With `--profile configs/vertex-*.yaml` the
`model` question goes to Vertex ML Metadata instead (`--dry-run` prints the requests).
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict, dataclass, field

from components.tfma_results import overall_metrics
from metadata import mlmd
from settings import entry


@dataclass
class ModelLineage:
    pushed_version: str
    pushed_destination: str
    code_commit: str
    model: str  # the pushed model artifact (the leaderboard's copy of the winner)
    run: str | None
    candidate: str = ""  # the winner's name on the leaderboard
    trained_model: str = ""  # the winner as its Trainer wrote it
    data: list[dict] = field(default_factory=list)  # raw examples: uri, span, version
    statistics: list[str] = field(default_factory=list)
    schema: list[str] = field(default_factory=list)
    transform_graph: list[str] = field(default_factory=list)
    hyperparameters: dict = field(default_factory=dict)
    evaluations: list[dict] = field(default_factory=list)  # component, uri, metric values


def pushed_models(store) -> list:
    """PushedModel artifacts that hold a push, newest first."""
    pushed = [
        a for a in store.get_artifacts_by_type("PushedModel") if mlmd.property_value(a, "pushed") == 1
    ]  # fmt: skip
    return sorted(pushed, key=lambda a: -a.id)


def model_lineage(store, pipeline_name: str, version: str | None = None) -> ModelLineage:
    """What produced the pushed model `version` (default: the newest push)."""
    candidates = pushed_models(store)
    if version is not None:
        candidates = [a for a in candidates if str(mlmd.property_value(a, "pushed_version")) == str(version)]
    if not candidates:
        raise LookupError(f"no pushed model{'' if version is None else ' with version ' + str(version)} in the store")
    push = candidates[0]
    pusher = mlmd.producer(store, push.id)
    model = mlmd.of_type(store, mlmd.inputs(store, pusher), "Model")[0]
    trained = _trained_winner(store, model)
    trainer = mlmd.producer(store, trained.id)
    lineage = ModelLineage(
        pushed_version=str(mlmd.property_value(push, "pushed_version")),
        pushed_destination=str(mlmd.property_value(push, "pushed_destination")),
        code_commit=str(mlmd.property_value(push, "code_commit") or "unknown"),
        model=model.uri,
        run=_run_of(store, trainer),
        candidate=str(mlmd.property_value(model, "candidate") or ""),
        trained_model=trained.uri,
    )
    for artifact in mlmd.inputs(store, trainer):
        kind = mlmd.type_name(store, artifact)
        if kind == "TransformGraph":
            lineage.transform_graph.append(artifact.uri)
        elif kind == "Schema":
            lineage.schema.append(artifact.uri)
        elif kind == "HyperParameters":
            lineage.hyperparameters = _best_hyperparameters(artifact.uri)
        elif kind == "Examples":  # transformed; Transform read the raw examples
            transform = mlmd.producer(store, artifact.id)
            for raw in mlmd.of_type(store, mlmd.inputs(store, transform), "Examples"):
                lineage.data.append(_examples(raw))
                for reader in mlmd.consumers(store, raw.id):
                    stats = mlmd.of_type(store, mlmd.outputs(store, reader), "ExampleStatistics")
                    lineage.statistics += [s.uri for s in stats if s.uri not in lineage.statistics]
    # the one pass that ranked it (the Leaderboard made the pushed copy beside its evaluation)
    for reader in [mlmd.producer(store, model.id), *mlmd.consumers(store, model.id)]:
        made, read = mlmd.outputs(store, reader), mlmd.inputs(store, reader)
        for evaluation in mlmd.of_type(store, made + read, "ModelEvaluation"):
            if any(e["uri"] == evaluation.uri for e in lineage.evaluations):
                continue
            lineage.evaluations.append({
                "component": mlmd.node_id(store, mlmd.producer(store, evaluation.id), pipeline_name),
                "uri": evaluation.uri, "metrics": overall_metrics(evaluation.uri),
            })  # fmt: skip
    return lineage


def _trained_winner(store, model):
    """The Trainer's model the leaderboard copied into `model` (`source_model_id`); `model` itself otherwise."""
    source = mlmd.property_value(model, "source_model_id")
    if source:
        found = store.get_artifacts_by_id([int(source)])
        if found:
            return found[0]
    return model


def models_of_span(store, pipeline_name: str, span: int) -> list[dict]:
    """Every model trained on examples of `span` (through Transform), and whether it was pushed."""
    found = []
    for raw in store.get_artifacts_by_type("Examples"):
        if (mlmd.property_value(raw, "span") or 0) != span or mlmd.producer(store, raw.id) is None:
            continue
        producer = mlmd.node_id(store, mlmd.producer(store, raw.id), pipeline_name) or ""
        if "ExampleGen" not in producer:
            continue
        for transform in mlmd.consumers(store, raw.id):
            for transformed in mlmd.of_type(store, mlmd.outputs(store, transform), "Examples"):
                for trainer in mlmd.consumers(store, transformed.id):
                    for model in mlmd.of_type(store, mlmd.outputs(store, trainer), "Model"):
                        found.append({
                            "model": model.uri, "component": mlmd.node_id(store, trainer, pipeline_name),
                            "examples": raw.uri, "pushed_versions": _pushed_versions(store, model.id),
                        })  # fmt: skip
    return found


def _pushed_versions(store, model_id: int) -> list[str]:
    """The versions a Trainer's model was pushed as: through the leaderboard's copy of it when it won."""
    versions = []
    copies = [m.id for reader in mlmd.consumers(store, model_id) for m in mlmd.of_type(store, mlmd.outputs(store, reader), "Model")
              if mlmd.property_value(m, "source_model_id") == model_id]  # fmt: skip
    for pusher in [p for m in [model_id, *copies] for p in mlmd.consumers(store, m)]:
        for push in mlmd.of_type(store, mlmd.outputs(store, pusher), "PushedModel"):
            if mlmd.property_value(push, "pushed") == 1:
                versions.append(str(mlmd.property_value(push, "pushed_version")))
    return versions


def run_table(store, pipeline_name: str) -> list[dict]:
    """One row per run, newest first: status, push decision, parameters and key metrics
    (the experiment table: runs side by side)."""
    from metadata.run_summary import summarize

    rows = []
    for run in mlmd.runs(store, pipeline_name):
        summary = summarize(store, run, pipeline_name)
        states = {c.state for c in summary.components}
        status = "failed" if "FAILED" in states else "running" if states & {"NEW", "RUNNING"} else "complete"
        rows.append({
            "run": run.name, "started": run.create_time_since_epoch / 1000.0, "status": status,
            "blessed": summary.blessed, "pushed": summary.pushed_model, "winner": summary.winner,
            "leaderboard": [{k: s[k] for k in ("rank", "name", "value", "slices", "size_bytes", "latency_ms_per_row",
                                               "lost_because")} for s in summary.leaderboard],
            "failures": list(summary.failures),
            **run_parameters_and_metrics(store, run, pipeline_name),
        })  # fmt: skip
    return rows


def run_parameters_and_metrics(store, run, pipeline_name: str) -> dict:
    """The hyperparameters the run's Trainer used and each evaluator's overall metrics."""
    params: dict = {}
    metrics: dict = {}
    for execution in store.get_executions_by_context(run.id):
        component = mlmd.node_id(store, execution.id, pipeline_name)
        for artifact in mlmd.outputs(store, execution.id):
            kind = mlmd.type_name(store, artifact)
            if kind == "Model" and component == "Trainer":  # the network candidate's hyperparameters
                params = _model_metadata(artifact.uri).get("hparams", params)
                params.update(
                    {k: v for k, v in _model_metadata(artifact.uri).items() if k.startswith(("code", "data"))}
                )
            if kind == "ModelEvaluation":
                metrics[component] = overall_metrics(artifact.uri)
    return {"parameters": params, "metrics": metrics}


def _model_metadata(model_uri: str) -> dict:
    from models.trainer import CONTRACT_DIR, METADATA_FILE

    path = os.path.join(model_uri, "Format-Serving", CONTRACT_DIR, METADATA_FILE)
    if not os.path.exists(path):
        return {}
    with open(path) as f:
        return json.load(f)


def _best_hyperparameters(uri: str) -> dict:
    path = os.path.join(uri, "best_hyperparameters.txt")
    if not os.path.exists(path):
        return {}
    with open(path) as f:
        return json.load(f).get("values", {})


def _examples(artifact) -> dict:
    return {"uri": artifact.uri, "span": mlmd.property_value(artifact, "span") or 0,
            "version": mlmd.property_value(artifact, "version")}  # fmt: skip


def _run_of(store, execution_id: int) -> str | None:
    runs = [c for c in store.get_contexts_by_execution(execution_id) if c.type_id == _run_type(store)]
    return runs[0].name if runs else None


def _run_type(store) -> int:
    return store.get_context_type("pipeline_run").id


def vertex_model_requests(config, artifact_id: str | None = None) -> dict:
    """The Vertex ML Metadata requests that answer `model`: the newest PushedModel, then its
    lineage subgraph (everything upstream of it)."""
    from google.cloud.aiplatform_v1.types import ListArtifactsRequest, QueryArtifactLineageSubgraphRequest

    v = config.vertex
    store = f"projects/{v.project}/locations/{v.region}/metadataStores/default"
    listing = ListArtifactsRequest(parent=store, filter='schema_title="tfx.PushedModel"', order_by="create_time desc")
    lineage = QueryArtifactLineageSubgraphRequest(artifact=f"{store}/artifacts/{artifact_id or 'ARTIFACT_ID'}",
                                                  max_hops=20)  # fmt: skip
    return {"list": listing, "lineage": lineage}


def vertex_model_lineage(config, credentials=None) -> dict:
    """Sends `vertex_model_requests` and returns the subgraph's artifacts and executions."""
    from google.cloud import aiplatform_v1

    client = aiplatform_v1.MetadataServiceClient(
        credentials=credentials,
        client_options={"api_endpoint": f"{config.vertex.region}-aiplatform.googleapis.com"},
    )
    newest = next(iter(client.list_artifacts(request=vertex_model_requests(config)["list"])), None)
    if newest is None:
        raise LookupError("no PushedModel in Vertex ML Metadata")
    request = vertex_model_requests(config, newest.name.rsplit("/", 1)[-1])["lineage"]
    graph = client.query_artifact_lineage_subgraph(request=request)
    return {
        "artifacts": [{"schema": a.schema_title, "uri": a.uri, "name": a.display_name} for a in graph.artifacts],
        "executions": [
            {"schema": e.schema_title, "name": e.display_name, "state": e.state.name} for e in graph.executions
        ],  # fmt: skip
    }


@entry.config_errors_exit
def main(argv: list[str] | None = None) -> int:
    parser = entry.parser(__doc__, workdir="the --workdir the pipeline ran with")
    parser.add_argument("question", choices=["model", "span", "runs"])
    parser.add_argument("span", nargs="?", type=int, help="the data span (for `span`)")
    parser.add_argument("--profile", help="a Vertex profile: ask Vertex ML Metadata instead")
    parser.add_argument("--version", help="the pushed version (for `model`; default: the newest)")
    parser.add_argument("--dry-run", action="store_true", help="with --profile: print the requests, send nothing")
    args = parser.parse_args(argv)
    config = entry.load(args, path=args.profile or args.config, workdir=args.workdir)
    if args.profile:
        if args.question != "model":
            print("with --profile only `model` is answered (Vertex ML Metadata)", file=sys.stderr)
            return 2
        if args.dry_run:
            from google.protobuf import json_format

            requests = vertex_model_requests(config)
            print(json.dumps({k: json_format.MessageToDict(type(r).pb(r)) for k, r in requests.items()}, indent=2))
            return 0
        print(json.dumps(vertex_model_lineage(config), indent=2))
        return 0
    if not os.path.exists(config.pipeline.metadata_path):
        print(f"no metadata store at {config.pipeline.metadata_path}: run the pipeline first", file=sys.stderr)
        return 1
    store = mlmd.open_store(config.pipeline.metadata_path)
    try:
        if args.question == "model":
            answer = asdict(model_lineage(store, config.pipeline.name, args.version))
        elif args.question == "span":
            if args.span is None:
                parser.error("span needs a span number")
            answer = models_of_span(store, config.pipeline.name, args.span)
        else:
            answer = run_table(store, config.pipeline.name)
    except LookupError as e:
        print(str(e), file=sys.stderr)
        return 1
    print(json.dumps(answer, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
