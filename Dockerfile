# The pipeline image: the same base (Debian 13) and the same lock file as the
# local environment built by tools/devenv.sh, with the project installed. Every
# step of the compiled pipeline runs in it, and so do Dataflow's workers
# (--sdk_container_image), which start through the Beam SDK's boot entrypoint.
#
# Two stages on that base: `build` has the compilers (pyfarmhash 0.3.2, which TFDV pins below 0.4,
# has no cp313 wheel and is compiled from source; every other package of the lock is a wheel),
# and the image that ships gets only its venv and the project, with what runs them.
ARG BEAM_VERSION=2.77.0
FROM apache/beam_python3.13_sdk:${BEAM_VERSION} AS beam

FROM debian:trixie-slim AS build

RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      python3 python3-venv python3-dev g++ make git ca-certificates \
 && rm -rf /var/lib/apt/lists/*

ENV VIRTUAL_ENV=/opt/venv PATH=/opt/venv/bin:$PATH PYTHONDONTWRITEBYTECODE=1
RUN python3 -m venv /opt/venv

WORKDIR /pipeline
COPY requirements.lock .
RUN pip install --no-cache-dir --upgrade pip \
 && pip install --no-cache-dir --no-deps -r requirements.lock \
 && pip check

COPY setup.py requirements.in Makefile pyproject.toml mlops_artifacts.py ./
COPY tools tools
COPY components components
COPY datagen datagen
COPY models models
COPY settings settings
COPY metadata metadata
COPY reports reports
COPY tables tables
COPY pipelines pipelines
COPY serving serving
COPY monitoring monitoring
COPY benchmarks benchmarks
COPY drills drills
COPY deploy deploy
COPY configs configs
COPY schemas schemas
RUN pip install --no-cache-dir --no-deps . && rm -rf build *.egg-info \
 && python -m tables.schema_staging --into /pipeline/staged-schemas schemas/*/schema.pbtxt \
 && tools/devenv.sh key > /opt/venv/.devenv-key


FROM debian:trixie-slim

# What the venv and the make targets need at run time: no compilers, headers, git or apt lists.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      python3 libstdc++6 make ca-certificates \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/* /var/log/apt /var/log/dpkg.log

ENV VIRTUAL_ENV=/opt/venv PATH=/opt/venv/bin:$PATH PYTHONDONTWRITEBYTECODE=1
COPY --from=build /opt/venv /opt/venv
COPY --from=build /pipeline /pipeline
COPY --from=beam /opt/apache/beam /opt/apache/beam
WORKDIR /pipeline

# Root, as Cloud Build and Dataflow expect: Cloud Build mounts /workspace owned by root (the
# tests and the smoke run write there), and Dataflow's workers write to root-owned mounts under
# /var/opt. Nothing here needs root to be read: the image also runs as any other user.
ENTRYPOINT ["/opt/apache/beam/boot"]
