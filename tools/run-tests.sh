#!/usr/bin/env bash
# make test's pytest: the Docker tests (-m docker) in a second pytest beside the others.
# They wait on the engine (builds, the stacks' first starts) while the others wait on
# servers and browsers, and they run one at a time in their own session (one engine,
# containers with fixed names). Their output follows the others'; the exit status is
# the worse of the two. Arguments go to both (a selection that leaves one of them with
# no test is not a failure).
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
log=test-output/pytest-docker.log
"$PY" -u -m pytest -m docker "$@" >"$log" 2>&1 & # -u: the log follows the tests as they go
docker_tests=$!
trap 'kill "$docker_tests" 2>/dev/null' EXIT

"$PY" -m pytest -m "not docker" "$@"
others=$?
echo "==> waiting for the Docker tests (their output: $log)"
wait "$docker_tests"
docker=$?
trap - EXIT
echo "==> the Docker tests"
cat "$log"

worst=0
for status in "$others" "$docker"; do
  [ "$status" = 5 ] && status=0 # no test collected
  [ "$status" -gt "$worst" ] && worst=$status
done
exit "$worst"
