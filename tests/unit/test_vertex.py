"""The Vertex AI deployment, checked offline: the compiled IR, the PipelineJob and Schedule
request bodies, and profile validation. Nothing here reaches the network."""

import copy
import json
import os

import pytest
from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2
from tfx.extensions.google_cloud_ai_platform.trainer import executor as vertex_trainer_executor

from components import provenance
from pipelines import vertex
from pipelines.pipeline import create_pipeline
from settings.config import ConfigError, load_config
from tables import schema_staging
from tests.conftest import REPO

pytestmark = pytest.mark.cloud

DEV = os.path.join(REPO, "configs", "vertex-dev.yaml")
PROD = os.path.join(REPO, "configs", "vertex-prod.yaml")
IMAGE = "us-central1-docker.pkg.dev/example-mlops-dev/mlops/tfx-pipeline:abc1234"


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    """Both profiles compiled once; dev with the image Cloud Build would pass."""
    out = tmp_path_factory.mktemp("vertex")
    result = {}
    for name, path, overrides in (("dev", DEV, {"vertex": {"image": IMAGE}}), ("prod", PROD, None)):
        config = load_config(path, overrides)
        target = str(out / f"{name}.json")
        vertex.compile_pipeline(config, target)
        with open(target) as f:
            result[name] = (config, target, json.load(f))
    return result


def executor_args(spec: dict, task: str) -> list[str]:
    return spec["deploymentSpec"]["executors"][f"{task}_executor"]["container"]["args"]


def constant(spec: dict, task: str, parameter: str):
    value = spec["root"]["dag"]["tasks"][task]["inputs"]["parameters"][parameter]["runtimeValue"]["constant"]
    return json.loads(value) if isinstance(value, str) and value.startswith("{") else value


def test_compiled_file_is_a_kfp_pipeline_job_with_every_component(compiled):
    for name, (config, _, job) in compiled.items():
        parsed = json_format.ParseDict(job["pipelineSpec"], pipeline_spec_pb2.PipelineSpec())
        assert parsed.schema_version == "2.1.0"
        tasks = set(parsed.root.dag.tasks)
        for component in create_pipeline(config).components:
            assert any(t == component.id or t.startswith(component.id + "-") for t in tasks), (name, component.id)
        deployment = json_format.ParseDict(
            job["pipelineSpec"]["deploymentSpec"], pipeline_spec_pb2.PipelineDeploymentConfig()
        )
        images = {e.container.image for e in deployment.executors.values() if e.HasField("container")}
        assert images == {config.vertex.image}
        assert job["runtimeConfig"]["gcsOutputDirectory"] == config.pipeline.root


def test_every_artifact_type_is_one_the_task_container_can_import(compiled):
    """The container's entrypoint imports a custom type's schema title as its class path: parsed as it
    parses its executor input, every artifact of the compiled file gets its own class back."""
    from tfx.orchestration.kubeflow.v2.container import kubeflow_v2_entrypoint_utils

    from mlops_artifacts import FeatureScreening

    _, _, job = compiled["dev"]
    found = {}
    for component in job["pipelineSpec"]["components"].values():
        for direction in ("inputDefinitions", "outputDefinitions"):
            for key, spec in component.get(direction, {}).get("artifacts", {}).items():
                artifacts = pipeline_spec_pb2.ArtifactList()
                json_format.ParseDict({"artifacts": [{"type": spec["artifactType"], "uri": "gs://b/x"}]}, artifacts)
                (parsed,) = kubeflow_v2_entrypoint_utils.parse_raw_artifact_dict({key: artifacts})[key]
                found[type(parsed).TYPE_NAME] = type(parsed)
    assert found[FeatureScreening.TYPE_NAME] is FeatureScreening
    assert {"Model", "ModelBlessing", "ExampleStatistics"} <= set(found)


def test_resolver_queries_ask_for_the_producer_their_channel_names(compiled, tmp_path):
    """The compiler drops a channel's producer and Vertex filters have none: the compiled queries ask for the
    `produced_by` stamp, so the newest statistics StatisticsGen wrote, or another gate's blessing, do not pass
    for the last accepted statistics or the last blessing (evaluated as the replay evaluates Vertex filters)."""
    from pipelines.vertex_resolver import Registry

    _, _, job = compiled["dev"]
    executors = job["pipelineSpec"]["deploymentSpec"]["executors"]
    statistics = executors["last_accepted_statistics_resolver_executor"]["resolver"]["outputArtifactQueries"]
    blessing = executors["latest_blessed_model_resolver-model-blessing-resolver_executor"]["resolver"]
    stats_type = {"instanceSchema": "title: tfx.ExampleStatistics\ntype: object\n"}
    blessing_type = {"instanceSchema": "title: tfx.ModelBlessing\ntype: object\n"}
    registry = Registry(str(tmp_path))
    for task, key, artifact_type, metadata in (
        ("SpanDriftCheck", "accepted_statistics", stats_type, {"produced_by": "SpanDriftCheck.accepted_statistics"}),
        ("StatisticsGen", "statistics", stats_type, {}),
        ("BlessingGate", "blessing", blessing_type, {"blessed": 1, "produced_by": "BlessingGate.blessing"}),
        ("OtherGate", "blessing", blessing_type, {"blessed": 1, "produced_by": "OtherGate.blessing"}),
    ):  # oldest first
        registry.publish("run-1", task, key, {"name": task, "uri": f"gs://b/{task}", "type": artifact_type,
                                              "metadata": metadata})  # fmt: skip
    (accepted,) = registry.query(statistics["statistics"]["filter"], before_run="run-2")
    (blessed,) = registry.query(blessing["outputArtifactQueries"]["model_blessing"]["filter"], before_run="run-2")
    assert (accepted["name"], blessed["name"]) == ("SpanDriftCheck", "BlessingGate")


def test_runtime_parameters_are_exposed_with_defaults(compiled):
    config, _, job = compiled["dev"]
    inputs = job["pipelineSpec"]["root"]["inputDefinitions"]["parameters"]
    assert set(inputs) == {"data_root", "train_args", "span_drift"}
    values = job["runtimeConfig"]["parameterValues"]
    assert values["data_root"] == config.data.path
    assert values["span_drift"] == "stop"  # a retraining started by monitoring submits "report"
    assert json.loads(values["train_args"]) == {"numSteps": config.trainer.train_steps}
    # BigQuery has no data_root; the train args stay a parameter
    prod_inputs = compiled["prod"][2]["pipelineSpec"]["root"]["inputDefinitions"]["parameters"]
    assert set(prod_inputs) == {"train_args", "span_drift"}


def test_cloud_settings_land_where_vertex_reads_them(compiled):
    config, _, job = compiled["prod"]
    spec = job["pipelineSpec"]
    v = config.vertex
    # Vertex's Trainer executor, running the provenance-recording Trainer executor in the CustomJob
    assert executor_args(spec, "Trainer")[1] == "components.provenance.VertexTrainerExecutor"
    assert issubclass(provenance.VertexTrainerExecutor, vertex_trainer_executor.GenericExecutor)
    assert provenance.VertexTrainerExecutor()._GetExecutorClass() is provenance.TrainerExecutor
    trainer = constant(spec, "Trainer", "custom_config")
    assert trainer["ai_platform_enable_vertex"] is True and trainer["ai_platform_vertex_region"] == "europe-west4"
    job_args = trainer["ai_platform_training_args"]
    assert job_args["project"] == v.project
    pool = job_args["job_spec"]["worker_pool_specs"][0]
    assert pool["machine_spec"] == {
        "machine_type": "n1-standard-8", "accelerator_type": "NVIDIA_TESLA_T4", "accelerator_count": 1,
    }  # fmt: skip
    assert pool["container_spec"]["image_uri"] == v.image
    assert job_args["job_spec"]["service_account"] == v.service_account
    assert job_args["job_spec"]["network"] == v.network
    assert job_args["encryption_spec"] == {"kms_key_name": v.encryption_key}
    # the model code still gets its own settings next to the Vertex ones
    assert trainer["features"]["label"] == "big_tip"

    assert executor_args(spec, "Tuner")[1] == "tfx.extensions.google_cloud_ai_platform.tuner.executor.Executor"
    tuner = constant(spec, "Tuner", "custom_config")
    pools = tuner["ai_platform_tuning_args"]["job_spec"]["worker_pool_specs"]
    assert [p["replica_count"] for p in pools] == [1, 3]  # chief + 3 workers = 4 parallel trials
    assert constant(spec, "Tuner", "tune_args") == {"num_parallel_trials": 4}
    assert tuner["tuning"]["max_trials"] == 20

    for task in ("BigQueryExampleGen", "StatisticsGen", "Transform", "Leaderboard"):
        args = executor_args(spec, task)
        assert "--runner=DataflowRunner" in args, task
        for expected in (
            f"--project={v.project}", "--region=europe-west4", f"--temp_location={v.dataflow.temp_location}",
            "--machine_type=n1-standard-4", "--max_num_workers=10", f"--sdk_container_image={v.image}",
            f"--service_account_email={v.service_account}", f"--dataflow_kms_key={v.encryption_key}",
            "--subnetwork=regions/europe-west4/subnetworks/mlops-dataflow",
        ):  # fmt: skip
            assert expected in args, (task, expected)
    sql = constant(spec, "BigQueryExampleGen", "input_config")["splits"][0]["pattern"]
    assert sql.startswith("SELECT * EXCEPT(`rider_email`, `rider_name`, `rider_phone`) FROM (SELECT * FROM")


def dataflow_request(args: list[str]) -> tuple[dict, dict]:
    """The Dataflow job and its environment as Beam's DataflowRunner would send them for a step's args: Beam's
    own request builders (apiclient.Job, apiclient.Environment), run offline on a one-step pipeline."""
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions
    from apache_beam.runners.dataflow.internal import apiclient
    from apache_beam.transforms import environments

    options = PipelineOptions(args)  # the step's other flags are TFX's, which Beam ignores
    pipeline = beam.Pipeline(options=PipelineOptions())
    _ = pipeline | beam.Create([1])
    image = apiclient.get_container_image_from_options(options)
    proto = pipeline.to_runner_api(default_environment=environments.DockerEnvironment.from_container_image(image))
    job = apiclient.Job(options, proto).proto
    environment = apiclient.Environment([], options, "beam", "gs://staged/pipeline.pb", proto).proto
    return json.loads(type(job).to_json(job)), json.loads(type(environment).to_json(environment))


def test_the_dataflow_settings_reach_the_job_request(compiled):
    """What the prod profile's `vertex.dataflow` asks for is in the request Dataflow would receive for each Beam
    step: the worker machine and its ceiling, the private subnetwork without public IPs, the pipeline image as
    the SDK harness, the runner service account, the CMEK key, the temp bucket and the labels."""
    config, _, job = compiled["prod"]
    v, d = config.vertex, config.vertex.dataflow
    for task in ("BigQueryExampleGen", "Transform", "Leaderboard"):
        request, environment = dataflow_request(executor_args(job["pipelineSpec"], task))
        (pool,) = environment["workerPools"]
        assert pool["machineType"] == d.machine_type and pool["autoscalingSettings"]["maxNumWorkers"] == 10, task
        assert pool["subnetwork"] == d.subnetwork and pool["ipConfiguration"] == 2  # WORKER_IP_PRIVATE
        assert {c["containerImage"] for c in pool["sdkHarnessContainerImages"]} == {v.image}
        assert environment["serviceAccountEmail"] == v.service_account
        assert environment["serviceKmsKeyName"] == v.encryption_key
        assert environment["tempStoragePrefix"].startswith(d.temp_location.replace("gs://", "storage.googleapis.com/"))
        assert "use_runner_v2" in environment["experiments"]
        assert request["labels"] == dict(v.labels)


def test_dev_profile_runs_beam_in_the_step_and_the_schema_from_the_image(compiled):
    config, _, job = compiled["dev"]
    spec = job["pipelineSpec"]
    assert "--runner=FnApiRunner" in executor_args(spec, "CsvExampleGen")
    schema_file = constant(spec, "ImportSchemaGen", "schema_file")
    assert schema_file == schema_staging.staged_path(
        os.path.join(REPO, "schemas", "taxi", "schema.pbtxt"), "/pipeline/staged-schemas"
    )
    with open(os.path.join(REPO, "Dockerfile")) as f:
        dockerfile = f.read()
    assert "python -m tables.schema_staging --into /pipeline/staged-schemas schemas/*/schema.pbtxt" in dockerfile
    assert "Tuner" in spec["root"]["dag"]["tasks"] and executor_args(spec, "Tuner")[1].startswith("tfx.components.")


def test_plain_kfp_unless_the_profile_asks_for_vertex(compiled, tmp_path):
    # dev asks for Vertex training (each candidate's Trainer): that and only that is reported
    found = vertex.vertex_only_features(compiled["dev"][2])
    assert {f.split(":")[0].replace("_executor", "") for f in found} == {"Trainer", "Trainer_boosted", "Trainer_linear"}
    portable = load_config(DEV, {"vertex": {"image": IMAGE, "training": None}})
    target = str(tmp_path / "kfp.json")
    job = vertex.compile_pipeline(portable, target)
    assert vertex.vertex_only_features(job) == []
    # the detector does see a Vertex-only executor kind
    doctored = copy.deepcopy(job)
    doctored["pipelineSpec"]["deploymentSpec"]["executors"]["Pusher_executor"] = {"customJob": {}}
    assert vertex.vertex_only_features(doctored) == ["Pusher_executor: executor kind ['customJob']"]


def test_pipeline_job_request_body_field_by_field(compiled):
    config, template, job_json = compiled["prod"]
    body = vertex.submit(
        config, template, parameters={"train_args": '{"num_steps": 5}'}, dry_run=True, job_id="taxi-tips-test"
    )
    v = config.vertex
    assert body["parent"] == "projects/example-mlops-prod/locations/europe-west4"
    assert body["pipelineJobId"] == "taxi-tips-test"
    pj = body["pipelineJob"]
    assert pj["displayName"] == "taxi-tips"
    assert pj["serviceAccount"] == v.service_account
    assert pj["network"] == v.network
    assert pj["encryptionSpec"] == {"kmsKeyName": v.encryption_key}
    assert pj["labels"] == {"env": "prod", "app": "taxi-tips"}
    assert "experiment" not in body  # the prod profile names no experiment
    assert pj["runtimeConfig"]["gcsOutputDirectory"] == config.pipeline.root
    assert pj["runtimeConfig"]["parameterValues"] == {"train_args": '{"num_steps": 5}', "span_drift": "stop"}
    assert set(pj["pipelineSpec"]["root"]["dag"]["tasks"]) == set(job_json["pipelineSpec"]["root"]["dag"]["tasks"])
    caching = {
        t["cachingOptions"].get("enableCache", False) for t in pj["pipelineSpec"]["root"]["dag"]["tasks"].values()
    }
    assert caching == {True}

    uncached = load_config(PROD, {"pipeline": {"enable_cache": False}})
    body = vertex.submit(uncached, template, dry_run=True, job_id="x")
    tasks = body["pipelineJob"]["pipelineSpec"]["root"]["dag"]["tasks"].values()
    assert {t["cachingOptions"].get("enableCache", False) for t in tasks} == {False}


def test_schedule_request_body(compiled):
    config, template, _ = compiled["prod"]
    request = vertex.schedule(config, template, dry_run=True)
    assert request["parent"] == "projects/example-mlops-prod/locations/europe-west4"
    s = request["schedule"]
    assert s["displayName"] == "taxi-tips-schedule"
    assert s["cron"] == "TZ=Europe/Amsterdam 0 3 * * 1"
    assert s["maxConcurrentRunCount"] == "1"
    create = s["createPipelineJobRequest"]
    assert create["parent"] == request["parent"]
    assert create["pipelineJob"]["serviceAccount"] == config.vertex.service_account
    assert create["pipelineJob"]["network"] == config.vertex.network
    assert create["pipelineJob"]["encryptionSpec"]["kmsKeyName"] == config.vertex.encryption_key
    with pytest.raises(ConfigError, match="no 'vertex.schedule'"):
        vertex.schedule(compiled["dev"][0], compiled["dev"][1], dry_run=True)


def test_cli_dry_run_needs_no_credentials(compiled, capsys, monkeypatch):
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", "/nonexistent/credentials.json")
    _, template, _ = compiled["dev"]
    code = vertex.main(["submit", "--profile", DEV, "--template", template, "--param", "data_root=gs://b/span-7",
                        "--dry-run"])  # fmt: skip
    assert code == 0
    body = json.loads(capsys.readouterr().out)
    assert body["pipelineJob"]["runtimeConfig"]["parameterValues"]["data_root"] == "gs://b/span-7"
    # the dev profile logs each run in Vertex AI Experiments: the experiment's metadata context
    experiment = body["experiment"]
    assert experiment["parent"] == "projects/example-mlops-dev/locations/us-central1/metadataStores/default"
    assert experiment["contextId"] == "taxi-tips-dev"
    assert experiment["context"]["displayName"] == "taxi-tips-dev"
    assert experiment["context"]["schemaTitle"] == "system.Experiment"
    assert vertex.main(["upload", "--profile", DEV, "--template", template, "--tag", "abc", "--dry-run"]) == 0
    assert json.loads(capsys.readouterr().out) == {
        "host": "https://us-central1-kfp.pkg.dev/example-mlops-dev/pipelines", "file": template, "tags": ["abc"],
    }  # fmt: skip
    assert vertex.main(["submit", "--profile", DEV, "--param", "oops", "--dry-run"]) == 2
    assert vertex.main(["submit", "--profile", DEV, "--template", "/nonexistent/p.json", "--dry-run"]) == 2
    assert "run `make compile PROFILE=" in capsys.readouterr().err


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"vertex": {"region": "moon-base"}}, "'vertex.region' 'moon-base' is not a region"),
        ({"vertex": {"image": "us-docker.pkg.dev/p/r/tfx-pipeline"}}, "has no tag or digest"),
        ({"vertex": {"training": {"accelerator_type": "NVIDIA_TESLA_T4"}}}, "needs 'vertex.training.accelerator_count'"),
        ({"vertex": {"training": {"accelerator_count": 2}}}, "'vertex.training.accelerator_type' is not"),
        ({"vertex": {"tuning": {"accelerator_type": "GTX_1080", "accelerator_count": 1}}}, "is not a Vertex AI accelerator"),
        ({"vertex": {"service_account": "me@gmail.com"}}, "is not a service account"),
        ({"vertex": {"encryption_key": "my-key"}}, "'vertex.encryption_key' must be"),
        ({"vertex": {"network": "default"}}, "'vertex.network' must be"),
        ({"vertex": {"labels": {"Env": "dev"}}}, "not a valid label"),
        ({"vertex": {"experiment": "Taxi Tips"}}, "'vertex.experiment' 'Taxi Tips' must be"),
        ({"pipeline": {"root": "/tmp/root"}}, "'pipeline.root' must be a gs:// path"),
        ({"vertex": {"dataflow": {"temp_location": "/tmp"}}}, "'vertex.dataflow.temp_location' must be a gs://"),
        ({"vertex": {"schedule": {"cron": "every monday"}}}, "must have 5 fields"),
        ({"vertex": {"project": "X"}}, "not a valid project id"),
        ({"data": {"format": "bigquery", "query": None}}, "needs 'data.query'"),
    ],
)  # fmt: skip
def test_bad_profile_fails_before_any_call(overrides, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")) as e:
        load_config(DEV, overrides)
    assert "vertex-dev.yaml" in str(e.value)


def test_lineage_on_vertex_ml_metadata_is_two_requests(capsys):
    """`lineage model --profile`: the newest PushedModel in the project's metadata store, then
    the lineage subgraph upstream of it; --dry-run prints them and sends nothing."""
    from metadata import lineage

    requests = lineage.vertex_model_requests(load_config(DEV), "42")
    store = "projects/example-mlops-dev/locations/us-central1/metadataStores/default"
    assert requests["list"].parent == store and requests["list"].filter == 'schema_title="tfx.PushedModel"'
    assert requests["list"].order_by == "create_time desc"
    assert requests["lineage"].artifact == f"{store}/artifacts/42" and requests["lineage"].max_hops == 20
    assert lineage.main(["model", "--profile", DEV, "--dry-run"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["list"]["parent"] == store and printed["lineage"]["artifact"].endswith("/artifacts/ARTIFACT_ID")
    assert lineage.main(["runs", "--profile", DEV, "--dry-run"]) == 2


def test_profile_extends_the_problem_config():
    config = load_config(DEV)
    assert config.label == "big_tip" and config.features.timestamp == "trip_start_timestamp"
    assert config.data.generate is None and config.data.path == "gs://example-mlops-dev-data/taxi"
    assert config.vertex.training.machine_type == "n1-standard-4"
