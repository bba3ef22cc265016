#!/usr/bin/env bash
# The pipeline image (the Dockerfile Cloud Build builds), built and run on this machine.
#
#   tools/image.sh build TAG        build the Dockerfile as TAG (Docker where a daemon answers, else buildah)
#   tools/image.sh run [--user U] TAG WORKSPACE ENV=v... -- CMD...
#                                   run CMD in a fresh container of TAG, WORKSPACE mounted at
#                                   /workspace (Cloud Build's working directory), with the ENV pairs
#   tools/image.sh task TAG DIR -- CMD...
#                                   run CMD in a fresh container of TAG as a Vertex AI pipeline step runs:
#                                   CMD in place of the entrypoint, the image's working directory, and
#                                   only DIR mounted (at the same path)
#   tools/image.sh tag TAG NAME     give the image TAG a second name (untag NAME takes it away)
#   tools/image.sh pytest ARGS...   run pytest on the host (the image tests drive buildah from there)
#   tools/image.sh size TAG         print the image's size (uncompressed)
#   tools/image.sh clean [--images] remove the working containers (and, with --images, the images
#                                   and the whole storage)
#   tools/image.sh du               print the disk used by buildah's storage
#
# Without a Docker engine (these machines), buildah builds as root with no daemon: vfs storage,
# chroot isolation, its storage under $IMAGE_STORE (~/.cache/tfx-mlops-image), which
# `make image-clean` removes. Docker Hub cannot be reached here, so the two images the Dockerfile
# starts from are made locally and given the names it expects:
#   - debian:trixie-slim: a fresh minbase debootstrap of the suite tools/devenv.sh uses (the same
#     mirror), with the slim image's dpkg excludes; cached by a key, made once;
#   - apache/beam_python3.13_sdk: a stand-in. The real image only supplies /opt/apache/beam (the
#     boot entrypoint Dataflow's workers start); the stand-in's boot says it is a stand-in and
#     execs its arguments. Everything else in the recipe is the one Cloud Build runs.
set -euo pipefail

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STORE=${IMAGE_STORE:-${XDG_CACHE_HOME:-$HOME/.cache}/tfx-mlops-image}
SUITE=$("$TOP/tools/devenv.sh" suite)
BASE_NAME=docker.io/library/debian:$SUITE-slim
BEAM_VERSION=$(sed -n 's/^ARG BEAM_VERSION=//p' "$TOP/Dockerfile")
BEAM_NAME=docker.io/apache/beam_python3.13_sdk:$BEAM_VERSION
# what makes the local base: a change here makes a new one
BASE_RECIPE="v1 $SUITE minbase ${DEVENV_MIRROR:-debootstrap-default} slim-excludes"
BASE_KEY=$(echo "$BASE_RECIPE" | sha256sum | cut -c1-16)

log() { echo "[image] $*" >&2; }

bah() {  # buildah on the project's own storage
  STORAGE_DRIVER=vfs BUILDAH_ISOLATION=chroot buildah --root "$STORE/storage" --runroot "$STORE/run" \
    --storage-driver vfs "$@"
}

docker_ok() { command -v docker >/dev/null && docker info >/dev/null 2>&1; }

ensure_buildah() {
  command -v buildah >/dev/null && return 0
  log "installing buildah (Debian package)"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq buildah >/dev/null
}

has_image() { bah inspect --type image "$1" >/dev/null 2>&1; }

label_of() {  # label_of IMAGE LABEL
  bah inspect --type image --format "{{index .ImageAnnotations \"$2\"}}{{index .OCIv1.Config.Labels \"$2\"}}" "$1" \
    2>/dev/null || true
}

make_base() {
  if has_image "$BASE_NAME" && [ "$(label_of "$BASE_NAME" tfx-mlops.base-key)" = "$BASE_KEY" ]; then
    log "base $BASE_NAME: local, key $BASE_KEY (cached)"
    return 0
  fi
  local tmp start
  start=$(date +%s)
  mkdir -p "$STORE"
  tmp=$(mktemp -d "$STORE/.base-XXXXXX")
  # shellcheck disable=SC2064
  trap "rm -rf '$tmp'" RETURN
  log "making $BASE_NAME locally: debootstrap --variant=minbase $SUITE (Docker Hub is out of reach)"
  "$TOP/tools/devenv.sh" base-root "$tmp/root" "$tmp/debootstrap.log"
  # what the slim image does: no docs, man pages or translations; no apt caches
  cat >"$tmp/root/etc/dpkg/dpkg.cfg.d/docker-slim" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
path-exclude /usr/share/lintian/*
EOF
  cat >"$tmp/root/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
  find "$tmp/root/usr/share/doc" -mindepth 2 ! -name copyright -delete 2>/dev/null || true
  rm -rf "$tmp/root/usr/share/man/"* "$tmp/root/usr/share/info/"* "$tmp/root/var/lib/apt/lists/"* \
    "$tmp/root/var/cache/apt/"*.bin "$tmp/root/var/cache/apt/archives/"*.deb "$tmp/root/var/log/"*.log
  : >"$tmp/root/etc/resolv.conf"
  tar -C "$tmp/root" --numeric-owner -cf "$tmp/base.tar" .
  local ctr
  ctr=$(bah from scratch)
  bah add "$ctr" "$tmp/base.tar" / >/dev/null
  bah config --cmd /bin/bash --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --label tfx-mlops.base-key="$BASE_KEY" \
    --label tfx-mlops.note="local minbase debootstrap of $SUITE standing for $BASE_NAME" "$ctr"
  bah rmi "$BASE_NAME" >/dev/null 2>&1 || true
  bah commit --rm -q "$ctr" "$BASE_NAME" >/dev/null
  log "base ready in $(($(date +%s) - start)) s ($(($(stat -c %s "$tmp/base.tar") / 1048576)) MiB uncompressed)"
}

standin_boot() {
  cat <<'EOF'
#!/bin/sh
# LOCAL STAND-IN for the Beam SDK's boot entrypoint (apache/beam_python3.13_sdk's /opt/apache/beam/boot),
# made by tools/image.sh because that image cannot be pulled on this machine. It is not the
# Beam worker harness: it runs the command it is given. Images built by Cloud Build have the real one.
echo "[beam boot stand-in] not the Beam SDK boot (local build): running $*" >&2
[ "$#" -gt 0 ] || { echo "[beam boot stand-in] nothing to run" >&2; exit 2; }
exec "$@"
EOF
}

make_beam_standin() {
  local STANDIN_KEY
  STANDIN_KEY=$( (echo "v1 $BEAM_VERSION"; standin_boot) | sha256sum | cut -c1-16)
  if has_image "$BEAM_NAME" && [ "$(label_of "$BEAM_NAME" tfx-mlops.standin-key)" = "$STANDIN_KEY" ]; then
    log "NOTICE: $BEAM_NAME is the local stand-in (key $STANDIN_KEY): /opt/apache/beam/boot runs its arguments"
    return 0
  fi
  log "NOTICE: $BEAM_NAME cannot be pulled here; making a local stand-in whose /opt/apache/beam/boot"
  log "NOTICE: only runs its arguments (the real Beam boot is in every image Cloud Build builds)"
  local tmp ctr
  tmp=$(mktemp -d)
  # shellcheck disable=SC2064
  trap "rm -rf '$tmp'" RETURN
  mkdir -p "$tmp/opt/apache/beam"
  standin_boot >"$tmp/opt/apache/beam/boot"
  chmod 755 "$tmp/opt/apache/beam/boot"
  echo "local stand-in for $BEAM_NAME, made by tools/image.sh" >"$tmp/opt/apache/beam/STANDIN"
  ctr=$(bah from scratch)
  bah add "$ctr" "$tmp/opt" /opt >/dev/null
  bah config --label tfx-mlops.standin-key="$STANDIN_KEY" --label tfx-mlops.note="local stand-in" "$ctr"
  bah rmi "$BEAM_NAME" >/dev/null 2>&1 || true
  bah commit --rm -q "$ctr" "$BEAM_NAME" >/dev/null
}

build() {
  local tag=$1 start
  start=$(date +%s)
  if docker_ok; then
    log "docker build -t $tag (a Docker daemon answers: the real bases are pulled)"
    docker build -t "$tag" "$TOP"
    log "built $tag in $(($(date +%s) - start)) s"
    return 0
  fi
  ensure_buildah
  mkdir -p "$STORE"
  make_base
  make_beam_standin
  # the build context is the checkout's tracked and untracked-but-not-ignored files (what gcloud
  # builds submit uploads), so local build outputs never enter it
  local ctx context_key
  ctx=$(mktemp -d "$STORE/.context-XXXXXX")
  # shellcheck disable=SC2064
  trap "rm -rf '$ctx'" RETURN
  (cd "$TOP" && git ls-files -co --exclude-standard -z | while IFS= read -r -d '' f; do
    if [ -e "$f" ]; then cp --parents -a "$f" "$ctx"; fi
  done)
  # no layer cache with vfs (each layer would be a full copy): unchanged inputs (the Dockerfile,
  # the files it copies from the context, the bases) make an unchanged image, so it is not built
  # again (FORCE=1 rebuilds)
  context_key=$( (cd "$ctx" && dockerfile_inputs | xargs -d '\n' -I{} find {} -type f -print0 | sort -z \
    | xargs -0 sha256sum; echo "$BASE_KEY"; bah images --noheading --format '{{.ID}}' "$BEAM_NAME") \
    | sha256sum | cut -c1-16)
  if [ -z "${FORCE:-}" ] && has_image "$tag" && [ "$(label_of "$tag" tfx-mlops.context-key)" = "$context_key" ]; then
    log "$tag is up to date (context key $context_key): not rebuilt (FORCE=1 rebuilds)"
    log "size $(size "$tag"); storage $(du_store)"
    return 0
  fi
  log "buildah bud --pull=never --layers=false -t $tag (storage $STORE, vfs, chroot isolation)"
  # This machine reaches PyPI through a TLS-intercepting egress whose CA is in the host's
  # /usr/local/share/ca-certificates (tools/devenv.sh copies the host's bundle for the same reason).
  # Mounted there during RUN only, so that ca-certificates' own install adds it to the bundle of
  # the local image; the Dockerfile is unchanged and Cloud Build's images never see it.
  local extra=()
  if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
    log "NOTICE: trusting the host's extra CAs during the build (/usr/local/share/ca-certificates)"
    extra+=(--volume /usr/local/share/ca-certificates:/usr/local/share/ca-certificates:ro)
  fi
  # the old image goes (under every name it has) before the new one's layers are written
  local old
  old=$(bah images --noheading --format '{{.ID}}' "$tag" 2>/dev/null || true)
  if [ -n "$old" ]; then bah rmi --force "$old" >/dev/null 2>&1 || true; fi
  bah bud --pull=never --layers=false --isolation chroot "${extra[@]}" --label tfx-mlops.context-key="$context_key" \
    -f "$ctx/Dockerfile" -t "$tag" "$ctx"
  bah rm --all >/dev/null 2>&1 || true
  bah rmi --prune >/dev/null 2>&1 || true  # dangling images of earlier builds
  log "built $tag in $(($(date +%s) - start)) s; size $(size "$tag"); storage $(du_store)"
}

dockerfile_inputs() {  # the Dockerfile and the context paths its COPY/ADD lines read (not --from=)
  echo Dockerfile
  local line words
  sed -n -E 's/^(COPY|ADD)[[:space:]]+//p' Dockerfile | grep -v -- '--from=' | while read -r line; do
    read -r -a words <<<"$line"
    printf '%s\n' "${words[@]:0:${#words[@]}-1}"
  done
}

size() {  # uncompressed, as `docker images` shows it
  if docker_ok; then docker image inspect --format '{{.Size}}' "$1" | awk '{printf "%.2f GB\n", $1 / 1e9}'; return; fi
  bah images --format '{{.Size}}' --noheading "$1"
}

run_in() {  # run_in [--user U] TAG WORKSPACE [ENV=value...] -- CMD...
  local user=()
  if [ "${1:-}" = --user ]; then user=(--user "$2"); shift 2; fi
  local tag=$1 workspace=$2; shift 2
  local envs=()
  while [ "$#" -gt 0 ] && [ "$1" != -- ]; do envs+=(--env "$1"); shift; done
  [ "${1:-}" = -- ] && shift
  if docker_ok; then
    exec docker run --rm "${user[@]}" -v "$workspace:/workspace" -w /workspace "${envs[@]}" --entrypoint "$1" \
      "$tag" "${@:2}"
  fi
  local ctr rc=0
  ctr=$(bah from --pull=never "$tag")
  # shellcheck disable=SC2064
  trap "bah rm '$ctr' >/dev/null 2>&1 || true" EXIT
  bah run --isolation chroot "${user[@]}" --volume "$workspace:/workspace" --workingdir /workspace "${envs[@]}" \
    "$ctr" -- "$@" || rc=$?
  return "$rc"
}

task_in() {  # task_in TAG DIR -- CMD...
  local tag=$1 dir=$2; shift 2
  [ "${1:-}" = -- ] && shift
  if docker_ok; then
    exec docker run --rm -v "$dir:$dir" --entrypoint "$1" "$tag" "${@:2}"
  fi
  local ctr rc=0
  ctr=$(bah from --pull=never "$tag")
  # shellcheck disable=SC2064
  trap "bah rm '$ctr' >/dev/null 2>&1 || true" EXIT
  bah run --isolation chroot --volume "$dir:$dir" "$ctr" -- "$@" || rc=$?
  return "$rc"
}

tag() {
  if docker_ok; then docker tag "$1" "$2"; else bah tag "$1" "$2"; fi
}

untag() {  # remove the name NAME, not the image it names if it has others
  if docker_ok; then docker rmi "$1" >/dev/null; else bah rmi "$1" >/dev/null; fi
}

host_pytest() {  # pytest with the host's Python (pytest and PyYAML; Debian's packages if missing)
  local py
  for py in python3 /usr/bin/python3; do
    if "$py" -c 'import pytest, yaml' 2>/dev/null; then break; fi
    py=""
  done
  if [ -z "$py" ]; then
    log "installing python3-pytest python3-yaml on the host"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-pytest python3-yaml >/dev/null
    py=/usr/bin/python3
  fi
  cd "$TOP"
  # --noconftest: tests/conftest.py imports the project, which the host's Python does not have
  exec "$py" -m pytest --noconftest -p no:cacheprovider "$@"
}

du_store() { du -sh "$STORE" 2>/dev/null | cut -f1 || echo 0; }

clean() {
  command -v buildah >/dev/null || return 0
  [ -d "$STORE/storage" ] || return 0
  bah rm --all >/dev/null 2>&1 || true
  bah rmi --prune >/dev/null 2>&1 || true  # images left without a name
  if [ "${1:-}" = --images ]; then
    bah rmi --all --force >/dev/null 2>&1 || true
    rm -rf "$STORE"
    log "removed the image storage $STORE"
  else
    log "removed the working containers; images kept ($(du_store) in $STORE)"
  fi
}

case "${1:-}" in
  build) build "${2:?tag}" ;;
  run) shift; run_in "$@" ;;
  task) shift; task_in "$@" ;;
  size) size "${2:?tag}" ;;
  tag) tag "${2:?tag}" "${3:?name}" ;;
  untag) untag "${2:?name}" ;;
  pytest) shift; host_pytest "$@" ;;
  clean) clean "${2:-}" ;;
  du) du_store ;;
  *) echo "usage: $0 {build TAG|run [--user U] TAG WORKSPACE [ENV=v...] -- CMD...|task TAG DIR -- CMD...|tag TAG NAME|untag NAME|size TAG|pytest ARGS|clean [--images]|du}" >&2; exit 2 ;;
esac
