#!/usr/bin/env bash
# The project's one Python environment, built from requirements.lock.
#
#   tools/devenv.sh ensure        build it if missing (idempotent)
#   tools/devenv.sh exec CMD...   run CMD in it, from the current directory
#   tools/devenv.sh info          print where it lives and how it runs
#   tools/devenv.sh key           print the environment's key (hash of lock + recipe)
#   tools/devenv.sh base-root DIR LOG   debootstrap the bare minbase $SUITE root into DIR (tools/image.sh)
#
# TFX 1.21's TFDV and ML Metadata wheels need glibc >= 2.39. Where the host
# has that and a supported Python, the environment is a plain venv. Otherwise
# (Debian 12 here) it is a Debian 13 root filesystem made with debootstrap,
# entered with unshare+chroot, with the checkout and /tmp bind-mounted at the
# same paths. Either way it is cached outside the clone, keyed by the hash of
# the lock file and this recipe, and built in a temporary directory that is
# renamed into place only when complete, so a half-built cache is never used.
set -euo pipefail

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LOCK="$TOP/requirements.lock"
SUITE=trixie
MIRROR=${DEVENV_MIRROR:-}  # empty: debootstrap's own default mirror
APT_PACKAGES="python3 python3-venv python3-dev g++ make git ca-certificates"
# Only the tests need these (the run report is opened in headless Chromium); the image does not.
TEST_APT_PACKAGES="chromium fonts-dejavu-core"
RECIPE="v2 $SUITE $APT_PACKAGES $TEST_APT_PACKAGES"
CACHE_ROOT=${DEVENV_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tfx-mlops-env}
KEY=$( (cat "$LOCK"; echo "$RECIPE") | sha256sum | cut -c1-16)
ENV_DIR="$CACHE_ROOT/$KEY"

log() { echo "[devenv] $*" >&2; }

active() {
  # Already inside this environment: a command run by `exec`, or the pipeline image
  # (the Dockerfile stamps its venv with the key), as in cloudbuild.yaml's test steps.
  [ "${DEVENV_KEY:-}" = "$KEY" ] || [ "$(cat "${VIRTUAL_ENV:-/nonexistent}/.devenv-key" 2>/dev/null)" = "$KEY" ]
}

native_ok() {
  # glibc >= 2.39 and Python 3.11-3.13 on the host
  local glibc py
  glibc=$(getconf GNU_LIBC_VERSION 2>/dev/null | awk '{print $2}')
  py=$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null || echo 0)
  [ -n "$glibc" ] || return 1
  [ "$(printf '%s\n2.39\n' "$glibc" | sort -V | head -1)" = "2.39" ] || return 1
  case "$py" in 3.11|3.12|3.13) return 0 ;; *) return 1 ;; esac
}

mode() {
  if [ -n "${DEVENV_MODE:-}" ]; then echo "$DEVENV_MODE"
  elif native_ok; then echo native
  else echo chroot
  fi
}

pip_install_lock() {  # $1: python executable (inside the target environment)
  "$1" -m pip install -q --upgrade pip
  "$1" -m pip install -q --no-deps -r "$2"
  "$1" -m pip check
}

build_native() {
  local tmp=$1 missing=""
  for p in $TEST_APT_PACKAGES; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
  if [ -n "$missing" ]; then
    log "installing$missing on the host"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
  fi
  python3 -m venv "$tmp/venv"
  pip_install_lock "$tmp/venv/bin/python" "$LOCK"
}

debootstrap_root() {  # debootstrap_root ROOT LOG [PACKAGES...]: Debian $SUITE, minbase, from $MIRROR
  local root=$1 logfile=$2; shift 2
  local include=("$@")
  command -v debootstrap >/dev/null || {
    log "installing debootstrap"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
  }
  log "debootstrap $SUITE (about 1 minute)"
  local IFS=,
  debootstrap --variant=minbase ${include:+--include="${include[*]}"} "$SUITE" "$root" ${MIRROR:+"$MIRROR"} \
    >"$logfile" 2>&1 || { tail -20 "$logfile" >&2; return 1; }
}

build_chroot() {
  local tmp=$1 root=$1/root
  # shellcheck disable=SC2086
  debootstrap_root "$root" "$tmp/debootstrap.log" $APT_PACKAGES
  sync_host_files "$root"
  log "installing $TEST_APT_PACKAGES (about 1 minute)"
  in_root "$root" / bash -c "apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends $TEST_APT_PACKAGES >/dev/null && apt-get clean"
  cp "$LOCK" "$root/requirements.lock"
  log "installing requirements.lock (about 3 minutes)"
  in_root "$root" / python3 -m venv /opt/venv
  in_root "$root" / bash -c "$(declare -f pip_install_lock); pip_install_lock /opt/venv/bin/python /requirements.lock"
}

sync_host_files() {  # the host's CA bundle, resolver and pip settings
  local root=$1
  cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
  cp /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true
  if [ -f /etc/pip.conf ]; then
    # local file:// indexes and find-links of the host do not exist in the root
    grep -vE '^(find-links|extra-index-url)' /etc/pip.conf >"$root/etc/pip.conf" || true
  fi
}

in_root() {  # in_root ROOT CWD CMD...: run CMD chrooted, with checkout and /tmp mounted
  local root=$1 cwd=$2; shift 2
  local script
  script=$(cat <<'EOS'
set -e
root=$1 top=$2 cwd=$3; shift 3
mount -t proc proc "$root/proc"
mount --rbind /dev "$root/dev"
mount --rbind /sys "$root/sys"
mount --rbind /tmp "$root/tmp"
mkdir -p "$root$top"
mount --bind "$top" "$root$top"
exec chroot "$root" /usr/bin/env -C "$cwd" "$@"
EOS
)
  unshare --mount --propagation private --fork -- bash -c "$script" devenv "$root" "$TOP" "$cwd" \
    env -u PIP_FIND_LINKS -u PYTHONHOME PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    VIRTUAL_ENV=/opt/venv HOME=/root LANG=C.UTF-8 "$@"
}

ensure() {
  active && return 0
  [ -f "$ENV_DIR/.complete" ] && return 0
  mkdir -p "$CACHE_ROOT"
  exec 9>"$CACHE_ROOT/.lock"
  flock 9
  [ -f "$ENV_DIR/.complete" ] && return 0
  local m tmp start
  m=$(mode); start=$(date +%s)
  tmp=$(mktemp -d "$CACHE_ROOT/.build-XXXXXX")
  log "building the $m environment $KEY in $CACHE_ROOT"
  if [ "$m" = native ]; then build_native "$tmp"; else build_chroot "$tmp"; fi
  echo "$m" >"$tmp/.mode"
  rm -rf "$ENV_DIR"
  mv "$tmp" "$ENV_DIR"
  touch "$ENV_DIR/.complete"
  log "environment ready in $(( $(date +%s) - start )) s"
  # environments of older lock files are left for `make clean-env`
}

run() {
  local inside=no
  active && inside=yes
  ensure
  export PYTHONPATH="$TOP${PYTHONPATH:+:$PYTHONPATH}"
  export PYTHONDONTWRITEBYTECODE=1 TF_CPP_MIN_LOG_LEVEL=${TF_CPP_MIN_LOG_LEVEL:-2}
  if [ "$inside" = yes ]; then exec "$@"; fi
  local m; m=$(cat "$ENV_DIR/.mode")
  if [ "$m" = native ]; then
    PATH="$ENV_DIR/venv/bin:$PATH" VIRTUAL_ENV="$ENV_DIR/venv" exec "$@"
  fi
  sync_host_files "$ENV_DIR/root"
  in_root "$ENV_DIR/root" "$PWD" PYTHONPATH="$PYTHONPATH" PYTHONDONTWRITEBYTECODE=1 \
    TF_CPP_MIN_LOG_LEVEL="$TF_CPP_MIN_LOG_LEVEL" CI="${CI:-}" DEVENV_KEY="$KEY" "$@"
}

case "${1:-}" in
  ensure) ensure ;;
  exec) shift; run "$@" ;;
  key) echo "$KEY" ;;
  # the bare base (what debian:$SUITE-slim is) for tools/image.sh: same suite, variant and mirror
  base-root) debootstrap_root "$2" "$3" ;;
  suite) echo "$SUITE" ;;
  info) echo "mode=$(mode) key=$KEY dir=$ENV_DIR complete=$([ -f "$ENV_DIR/.complete" ] && echo yes || echo no)" ;;
  *) echo "usage: $0 {ensure|exec CMD...|info|key|base-root DIR LOG|suite}" >&2; exit 2 ;;
esac
