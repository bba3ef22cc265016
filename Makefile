# Every target runs inside the project's environment (tools/devenv.sh), which is
# built on first use from requirements.lock and cached outside the clone.
SHELL := /bin/bash
CONFIG ?= configs/taxi.yaml
ROWS ?= 15000
ENV := tools/devenv.sh exec
PYTEST_ARGS ?=
PROFILE ?= configs/vertex-dev.yaml
IMAGE ?=
TAG ?= latest
VERBOSE ?=
DRY_RUN ?=
INPUT ?= build/data/taxi/*.csv
OUTPUT ?= build/batch/predictions
LABELS ?=
VERTEX = $(ENV) python -m pipelines.vertex --profile $(PROFILE) $(if $(IMAGE),--image $(IMAGE)) $(if $(DRY_RUN),--dry-run)

.DEFAULT_GOAL := help
.PHONY: help env run smoke serve test test-unit test-e2e test-replay bench bench-scale bench-reference bench-serve bench-batch bench-input bench-tables bench-seeds corruption-suite drills lineage report run-batch run-stream bench-stream compile-canary monitor compile-monitoring features schema config-schema lint lock clean clean-env \
	compile upload submit schedule trigger-bundle image image-test image-clean vertex-local

help: ## List the targets
	@grep -hE '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-15s %s\n", $$1, $$2}'

env: ## Build the environment if missing (Debian 13 root or venv, keyed by requirements.lock)
	@tools/devenv.sh ensure
	@tools/devenv.sh info

# quiet: the console shows the run's progress and summary only (the environment's own line too with VERBOSE=1)
run: ## Run the training pipeline end to end (CONFIG=...; VERBOSE=1 streams the logs and every component's output)
	@tools/devenv.sh ensure $(if $(VERBOSE),&& tools/devenv.sh info)
	@$(ENV) python -m pipelines.local_runner --config $(CONFIG) $(if $(VERBOSE),--verbose)

smoke: env ## A small end-to-end run (2,000 rows) in build/smoke, as Cloud Build does before pushing
	rm -rf build/smoke
	$(ENV) python -m pipelines.local_runner --config configs/smoke.yaml --workdir build/smoke --expect-push

serve: env ## Serve the newest pushed model on http://127.0.0.1:8080 (Vertex AI predict JSON; WORKDIR=build/smoke, or a `make vertex-local` one with its profile)
	$(ENV) python -m serving.server --config $(CONFIG) $(if $(WORKDIR),--workdir $(WORKDIR))

TEST_WORKERS ?= $(shell nproc 2>/dev/null || echo 1)
test: env ## Lint, then the whole suite (unit, data, model, e2e; the image tests are `make image-test`, two whole Vertex replays `make test-replay`), a file per worker, a worker per core
	$(ENV) ruff check .
	$(ENV) python -m pytest -n $(TEST_WORKERS) --dist loadfile -m "not image and not replay" $(PYTEST_ARGS)

test-replay: env ## Two replays of the compiled smoke job as Vertex runs it: the first pushes, the second resolves its model and statistics (minutes)
	$(ENV) python -m pytest -m replay tests/e2e/test_vertex_local.py $(PYTEST_ARGS)

test-tables: env ## The real-tables tests on all five of their tables (make test runs three: breast_cancer, penguins, cars)
	ALL_TABLES=1 $(ENV) python -m pytest -m e2e tests/e2e/test_real_tables.py $(PYTEST_ARGS)

test-unit: env ## Run the fast tests only (no pipeline runs)
	$(ENV) python -m pytest -n $(TEST_WORKERS) --dist loadfile -m "not e2e" $(PYTEST_ARGS)

test-e2e: env ## Run the end-to-end pipeline tests only (not the image tests: `make image-test`)
	$(ENV) python -m pytest -m "e2e and not image" $(PYTEST_ARGS)

# The pipeline image, built here (tools/image.sh: Docker where a daemon answers, else buildah with
# local stand-ins for the two base images Docker Hub would give). IMAGE names it, as for `make compile`.
LOCAL_IMAGE = $(or $(IMAGE),tfx-pipeline:local)

image: ## Build the Dockerfile as IMAGE (default tfx-pipeline:local); not rebuilt if unchanged (FORCE=1)
	tools/image.sh build $(LOCAL_IMAGE)

image-test: image ## Run cloudbuild.yaml's in-image steps inside IMAGE (tests/e2e/test_image.py, minutes)
	IMAGE_UNDER_TEST=$(LOCAL_IMAGE) tools/image.sh pytest -m image -rP tests/e2e/test_image.py $(PYTEST_ARGS)

image-clean: ## Remove the image build's working containers (IMAGES=1: its images and storage too)
	tools/image.sh clean $(if $(IMAGES),--images)

bench: env ## Time each component on ROWS rows (default 15000); writes build/bench/pipeline.json
	$(ENV) python -m benchmarks.pipeline_timing --config $(CONFIG) --rows $(ROWS) --out build/bench/pipeline.json

SIZES ?= 15000 150000 1500000
bench-scale: env ## One cache-off run per size (SIZES=...): per-component seconds, growth vs the rows, peak memory; build/bench/scale.json
	$(ENV) python -m benchmarks.scale --config $(CONFIG) --rows $(SIZES) --out build/bench/scale.json

REPEAT ?= 1
bench-reference: env ## This pipeline beside TFX's Chicago taxi example (in-process, as shipped), same trips: seconds, memory, AUC (REPEAT=100: 1.5 M rows)
	$(ENV) python -m benchmarks.reference --repeat $(REPEAT) --out build/bench/reference.json

TABLES ?=
bench-tables: env ## Seven public tables (one YAML each): network vs linear vs boosted, per table; build/bench/tables.json
	$(ENV) python -m benchmarks.real_tables $(if $(TABLES),--tables $(TABLES)) --out build/bench/tables.json

SEEDS ?= 5
bench-seeds: env ## CONFIG from scratch with trainer.seed 0..SEEDS-1 (default 5), same data: each candidate's gated metrics and the push; build/bench/seeds.json
	$(ENV) python -m benchmarks.seeds --config $(CONFIG) --seeds $(SEEDS) --out build/bench/seeds.json

bench-input: env ## Training steps/s: naive vs tuned input pipeline on the same data; build/bench/input.json
	$(ENV) python -m benchmarks.input_pipeline --config $(CONFIG) --out build/bench/input.json

corruption-suite: env ## Feed 10 kinds of corrupted data to the pipeline; each must stop it, named, and push nothing
	$(ENV) python -m drills.corruption_suite --config $(CONFIG)

drills: env ## Kill a run at 5 points, two runs at once, full disks, hot swap under load, bad models, leftovers; build/drills/
	$(ENV) python -m drills.run_all --out build/drills/drills.json

lineage: env ## What produced the newest pushed model (Q=model|runs|"span N"), from ML Metadata
	$(ENV) python -m metadata.lineage $(or $(Q),model) --config $(CONFIG)

report: env ## Rewrite the HTML report of the newest run (make run writes it too)
	$(ENV) python -m reports.run_report --config $(CONFIG)

run-batch: env ## Batch prediction with Beam RunInference (INPUT='dir/*.csv' OUTPUT=prefix)
	$(ENV) python -m pipelines.batch_prediction --config $(CONFIG) --input '$(INPUT)' --output $(OUTPUT)

SECONDS_ ?=
run-stream: env ## Streaming prediction: files landing in streaming.landing_dir (or Pub/Sub) -> RunInference, windows of skew/drift (SECONDS_=n stops)
	$(ENV) python -m monitoring.stream --config $(CONFIG) $(if $(SECONDS_),--seconds $(SECONDS_))

bench-stream: env ## Events/s and landing-to-scored latency (p50, p99) of the local stream (WORKDIR=build/smoke for its model); build/bench/stream.json
	$(ENV) python -m benchmarks.streaming --config $(CONFIG) $(if $(WORKDIR),--workdir $(WORKDIR)) --out build/bench/stream.json

compile-canary: env ## Compile the Vertex AI canary rollout pipeline (KFP v2) for PROFILE
	$(ENV) python -m pipelines.canary compile --profile $(PROFILE)

monitor: env ## Skew, drift and live metrics on the prediction log; report + retraining decision (LABELS=file)
	$(ENV) python -m monitoring.run --config $(CONFIG) $(if $(LABELS),--labels $(LABELS))

compile-monitoring: env ## Compile the monitoring pipeline (KFP v2) for PROFILE
	$(ENV) python -m monitoring.pipeline compile --profile $(PROFILE)

bench-serve: env ## Load-test the server (separate client process, loopback) vs in-process calls (WORKDIR=build/smoke for its model); build/bench/serving.json
	$(ENV) python -m benchmarks.serving --config $(CONFIG) $(if $(WORKDIR),--workdir $(WORKDIR)) --out build/bench/serving.json

bench-batch: env ## Batch prediction of ROWS rows (default 1,000,000), CSV in, JSON lines out, vs the model in-process (WORKDIR=build/smoke for its model); build/bench/batch.json
	$(ENV) python -m benchmarks.batch_prediction --config $(CONFIG) $(if $(WORKDIR),--run-workdir $(WORKDIR)) --rows $(if $(filter command line environment,$(origin ROWS)),$(ROWS),1000000)

features: env ## Infer the features of CONFIG's table from its data (what features.infer does), as YAML
	$(ENV) python -m tables.feature_inference --config $(CONFIG)

schema: env ## Propose a schema and diff it against the curated one; own tables: the first accepted run's (WRITE=1 promotes)
	$(ENV) python -m tables.schema_proposal --config $(CONFIG) $(if $(WRITE),--write)

compile: env ## Compile the pipeline for Vertex AI / KFP v2 (PROFILE=configs/vertex-dev.yaml, IMAGE=...:tag)
	$(ENV) python -m pipelines.vertex compile --profile $(PROFILE) $(if $(IMAGE),--image $(IMAGE))

# `make vertex-local`: the compiled PipelineJob run here as Vertex AI Pipelines runs it (pipelines/vertex_local.py),
# gs:// in build/vertex-local/<profile>/gcs. MODE=fast: each task a process of this environment; MODE=image: in
# the image `make image` builds (IMAGE), only that directory mounted; MODE=in-image: this is the image already.
MODE ?= fast
LOCAL_PROFILE = $(if $(filter command line environment,$(origin PROFILE)),$(PROFILE),configs/vertex-smoke.yaml)
LOCAL_WORKDIR = $(CURDIR)/build/vertex-local/$(basename $(notdir $(LOCAL_PROFILE)))
LOCAL_REPLAY = python -m pipelines.vertex_local --profile $(LOCAL_PROFILE) $(if $(EXPECT_PUSH),--expect-push)
vertex-local: env ## Compile PROFILE (default configs/vertex-smoke.yaml) and run every task of it here as Vertex does (MODE=fast|image)
	$(ENV) python -m pipelines.vertex compile --profile $(LOCAL_PROFILE) $(if $(IMAGE),--image $(IMAGE))
ifeq ($(MODE),image)
	mkdir -p $(LOCAL_WORKDIR) && cp build/vertex/$(basename $(notdir $(LOCAL_PROFILE))).json $(LOCAL_WORKDIR)/job.json
	tools/image.sh task $(LOCAL_IMAGE) $(LOCAL_WORKDIR) -- $(LOCAL_REPLAY) --mode image \
	  --template $(LOCAL_WORKDIR)/job.json --workdir $(LOCAL_WORKDIR)
else ifeq ($(MODE),in-image)
	$(ENV) $(LOCAL_REPLAY) --mode image
else
	$(ENV) $(LOCAL_REPLAY) --mode fast
endif

upload: env ## Upload the compiled pipeline to the profile's Artifact Registry (TAG=..., DRY_RUN=1)
	$(VERTEX) upload --tag $(TAG)

submit: env ## Start a run on Vertex AI Pipelines from the compiled file (DRY_RUN=1 prints the request)
	$(VERTEX) submit

schedule: env ## Create or update the profile's cron schedule (DRY_RUN=1 prints the request)
	$(VERTEX) schedule

trigger-bundle: ## Assemble the new-data Cloud Function's source in build/trigger
	rm -rf build/trigger && mkdir -p build/trigger/pipelines build/trigger/settings build/trigger/models build/trigger/configs
	cp triggers/main.py triggers/requirements.txt build/trigger/
	cp pipelines/__init__.py pipelines/vertex.py build/trigger/pipelines/
	cp settings/*.py build/trigger/settings/
	cp models/__init__.py models/features.py build/trigger/models/  # feature names the config checks
	cp configs/*.yaml build/trigger/configs/

config-schema: env ## Write configs/config.schema.json (the JSON Schema every configs/*.yaml names for editors)
	$(ENV) python -m settings.schema --out configs/config.schema.json

lint: env ## Lint with ruff (settings in pyproject.toml)
	$(ENV) ruff check .
	$(ENV) ruff format --check .

lock: env ## Re-resolve requirements.in into requirements.lock (then `make env` rebuilds)
	$(ENV) bash -c 'd=$$(mktemp -d) && python -m venv $$d && $$d/bin/pip install -q -r requirements.in && \
	  { echo "# Generated by make lock from requirements.in. Do not edit."; $$d/bin/pip freeze; } > requirements.lock'

clean: ## Remove the run outputs (build/)
	rm -rf build

clean-env: ## Remove every cached environment
	rm -rf "$${DEVENV_CACHE:-$${XDG_CACHE_HOME:-$$HOME/.cache}/tfx-mlops-env}"
