# The pipeline image: the same base (Debian 13) and the same lock file as the
# local environment built by tools/devenv.sh, with the project installed.
FROM debian:trixie-slim

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

COPY setup.py requirements.in ./
COPY components components
COPY datagen datagen
COPY models models
COPY pipelines pipelines
COPY configs configs
COPY schemas schemas
RUN pip install --no-cache-dir --no-deps .
