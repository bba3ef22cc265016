#!/usr/bin/env bash
# One-time Google Cloud setup for a deployment profile: APIs, buckets, Artifact
# Registry, service accounts and roles (deploy/iam.yaml), sample data, trigger.
#
#   deploy/setup_gcp.sh configs/vertex-dev.yaml           # run it (needs gcloud, logged in)
#   DRY_RUN=1 deploy/setup_gcp.sh configs/vertex-dev.yaml # print the commands only
set -euo pipefail
cd "$(dirname "$0")/.."
profile=${1:?usage: deploy/setup_gcp.sh configs/vertex-<env>.yaml}
plan=$(mktemp)
trap 'rm -f "$plan"' EXIT
tools/devenv.sh exec python -m deploy.gcp_setup --profile "$profile" >"$plan"
if [ -n "${DRY_RUN:-}" ]; then cat "$plan"; else bash -ex "$plan"; fi
