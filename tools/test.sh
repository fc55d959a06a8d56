#!/usr/bin/env bash
# Sets up everything the tests need on a fresh machine, then runs them all.
# Usage: bash tools/test.sh [extra pytest arguments]
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\n==> %s\n' "$*"; }

# Debian packages the browser tests need (a real headless Chromium).
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "installing Debian's chromium for the browser tests"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    say "chromium is missing and cannot be installed here: browser tests will be skipped"
  fi
fi

# Fonts for the real-world evaluation set (printed digits in fonts never used while
# tuning the model: tests/scripts/test_realworld.py).
if [ ! -d /usr/share/fonts/truetype/liberation ] || [ ! -d /usr/share/fonts/opentype/urw-base35 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "installing Debian's fonts for the real-world evaluation tests"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
      fonts-liberation fonts-freefont-ttf fonts-urw-base35 >/dev/null ||
      say "fonts could not be installed: the printed-digit test will be skipped"
  fi
fi

# Debian's Prometheus for the monitoring tests (a real server on loopback).
if ! command -v prometheus >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "installing Debian's prometheus for the monitoring tests"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
      --no-install-recommends prometheus >/dev/null ||
      say "prometheus could not be installed: the Prometheus tests will be skipped"
  else
    say "prometheus is missing and cannot be installed here: the Prometheus tests will be skipped"
  fi
fi

if [ ! -x .venv/bin/python ]; then
  say "creating .venv"
  python3 -m venv .venv
fi
say "installing pinned dependencies"
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -r requirements-dev.txt
.venv/bin/python -m pip install -q --no-deps -e .

say "ruff (lint and format)"
.venv/bin/ruff check .
.venv/bin/ruff format --check .

# A Docker engine for the container tests (tests/docker): started here when the machine
# can run one; otherwise those tests are skipped, and this says why.
say "Docker engine for the container tests"
if compose="$(bash tools/docker-engine.sh)"; then
  say "Docker engine ready ($compose): the container tests run"
else
  say "no Docker engine here (reason above): the container tests will be skipped"
fi

say "pytest"
# Exit code 5 (no test collected) is a failure too.
.venv/bin/python -m pytest "$@"
