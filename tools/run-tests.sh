#!/usr/bin/env bash
# make test's pytest, in sessions side by side: the Docker tests (-m docker), which wait
# on the engine (builds, the stacks' first starts) and run one at a time (one engine,
# containers with fixed names); and the others, which wait on servers, browsers and
# databases more than on the two cores. With no arguments those others are two sessions:
# the folders that run many servers at once (PostgreSQL replicas, kills, load, a real
# Prometheus) beside everything else. The background sessions' output follows the
# foreground one's; the exit status is the worst of them. Arguments go to the Docker
# session and one other (a selection that leaves one of them with no test is not a
# failure).
#
#   bash tools/run-tests.sh [pytest arguments]
#   PYTEST_SPLIT=0 bash tools/run-tests.sh    one pytest, every test one after the other
#
# Env: PY (default .venv/bin/python).
set -uo pipefail
cd "$(dirname "$0")/.."
PY="${PY:-.venv/bin/python}"

if [ "${PYTEST_SPLIT:-1}" = 0 ]; then
  exec "$PY" -m pytest "$@"
fi

mkdir -p test-output
background=()
logs=()
start() { # start LOG ARGS...: a pytest in the background, its output in LOG
  local log=$1
  shift
  "$PY" -u -m pytest "$@" >"$log" 2>&1 & # -u: the log follows the tests as they go
  background+=("$!")
  logs+=("$log")
}
trap 'kill "${background[@]}" 2>/dev/null' EXIT

start test-output/pytest-docker.log -m docker "$@"
SERVERS=(tests/postgres tests/reliability tests/monitoring)
foreground=(-m "not docker" "$@")
if [ "$#" = 0 ]; then
  start test-output/pytest-servers.log -m "not docker" "${SERVERS[@]}"
  foreground=(-m "not docker" "${SERVERS[@]/#/--ignore=}")
fi

"$PY" -m pytest "${foreground[@]}"
statuses=("$?")
for i in "${!background[@]}"; do
  echo "==> waiting for ${logs[$i]}"
  wait "${background[$i]}"
  statuses+=("$?")
done
trap - EXIT
for log in "${logs[@]}"; do
  echo "==> $log"
  cat "$log"
done

worst=0
for status in "${statuses[@]}"; do
  [ "$status" = 5 ] && status=0 # no test collected
  [ "$status" -gt "$worst" ] && worst=$status
done
exit "$worst"
