#!/usr/bin/env bash
# Makes this machine ready for the tests: everything outside the Python environment.
#
#   1. Debian packages the tests use, one apt-get for all that are missing:
#        chromium                     real headless browser (web app and Docker tests)
#        fonts-liberation, fonts-freefont-ttf, fonts-urw-base35
#                                     printed digits of the real-world evaluation set
#        fonts-dejavu-core, fonts-dejavu-extra
#                                     the tuning fonts: the printed training rows, drawn
#                                     again only when the shipped cache is stale
#        prometheus                   a real Prometheus on loopback (monitoring tests)
#        postgresql                   the PostgreSQL storage backend's tests
#        docker.io, debootstrap       a Docker engine, and the base-image stand-in
#        python3-venv                 the project's .venv
#        wrk, valgrind                the benchmarks' load and instruction counts
#                                     (make bench)
#   2. a Docker engine when none answers (tools/docker-engine.sh: on a machine without a
#      service manager it starts dockerd itself, with the flags this kind of machine needs)
#   3. the services' base image python:3.11-slim (tools/base-image.sh: pulled when a
#      registry answers, else a local stand-in built with debootstrap)
#
# Idempotent: what is present is skipped, so a second run takes seconds. It never
# stops at a missing piece: as a non-root user, or without apt-get, it says what it
# could not do, and the tests that need that piece are skipped with the reason.
# The Python environment is `make venv`'s; `make test` runs this, then that.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '==> setup-machine: %s\n' "$*" >&2; }
is_root() { [ "$(id -u)" = 0 ]; }

# 1. Debian packages
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
[ -d /usr/share/fonts/truetype/liberation ] || missing+=(fonts-liberation)
[ -d /usr/share/fonts/truetype/freefont ] || missing+=(fonts-freefont-ttf)
[ -d /usr/share/fonts/opentype/urw-base35 ] || missing+=(fonts-urw-base35)
[ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || missing+=(fonts-dejavu-core)
[ -f /usr/share/fonts/truetype/dejavu/DejaVuSerifCondensed.ttf ] || missing+=(fonts-dejavu-extra)
command -v prometheus >/dev/null 2>&1 || missing+=(prometheus)
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || missing+=(postgresql)
command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || missing+=(python3-venv)
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
command -v valgrind >/dev/null 2>&1 || missing+=(valgrind)

if [ "${#missing[@]}" = 0 ]; then
  say "Debian packages: all present"
elif is_root && command -v apt-get >/dev/null 2>&1; then
  say "installing Debian packages: ${missing[*]}"
  # Waits for the package lock when another install runs.
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  apt_install() {
    NEEDRESTART_SUSPEND=1 DEBIAN_FRONTEND=noninteractive \
      apt-get -o DPkg::Lock::Timeout=600 install -y -qq "$@" >/dev/null ||
      say "could not install ${*}: the tests that need it will be skipped"
  }
  # Prometheus alone without its recommendations (exporters, services to start).
  others=()
  for package in "${missing[@]}"; do
    if [ "$package" = prometheus ]; then
      apt_install --no-install-recommends prometheus
    else
      others+=("$package")
    fi
  done
  [ "${#others[@]}" = 0 ] || apt_install "${others[@]}"
else
  say "missing Debian packages (installing them needs root and apt-get): ${missing[*]};" \
    "the tests that need them will be skipped"
fi

# 2. the Docker engine (the Compose CLI is linked by tools/docker-engine.sh once .venv
# has it: the Docker tests call it again)
if bash tools/docker-engine.sh --no-compose; then
  # 3. the base image
  bash tools/base-image.sh ||
    say "no base image python:3.11-slim: the Docker tests will fail (see above)"
else
  say "no Docker engine here (reason above): the Docker tests will be skipped"
fi
say "done"
