#!/usr/bin/env bash
# Makes sure the base image of the three services, python:3.11-slim, is in the local
# Docker engine. Order: already there -> pull it -> build a stand-in locally.
#
# The stand-in is for machines that reach no image registry: a minimal Debian bookworm
# root file system (debootstrap) with Debian's Python 3.11, pip and venv, the machine's
# certificate authorities (so that pip reaches PyPI through the same TLS path as the
# host), `python`/`pip` names and PIP_BREAK_SYSTEM_PACKAGES=1 (Debian marks its Python
# as externally managed; the official image does not). Dockerfiles that call `python`
# and `pip` by name build on both.
#
# The root file system tarball is cached outside the repository so that a second build
# on the same machine skips debootstrap: BASE_IMAGE_CACHE (default
# /var/cache/mlstack-base-image). Usage: bash tools/base-image.sh [--force]
set -euo pipefail

IMAGE="${BASE_IMAGE:-python:3.11-slim}"
CACHE_DIR="${BASE_IMAGE_CACHE:-/var/cache/mlstack-base-image}"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
SUITE=bookworm
TARBALL="$CACHE_DIR/python-3.11-slim-standin-$SUITE.tar"
FORCE=0
[ "${1:-}" = "--force" ] && FORCE=1

say() { printf '==> base-image: %s\n' "$*" >&2; }
die() { printf 'base-image: %s\n' "$*" >&2; exit 1; }

command -v docker >/dev/null 2>&1 || die "no docker command; run tools/docker-engine.sh first"
docker info >/dev/null 2>&1 || die "the Docker engine does not answer; run tools/docker-engine.sh first"

if [ "$FORCE" = 0 ] && docker image inspect "$IMAGE" >/dev/null 2>&1; then
  say "$IMAGE is present"
  exit 0
fi

if [ "$FORCE" = 0 ]; then
  say "pulling $IMAGE"
  if timeout 90 docker pull -q "$IMAGE" >/dev/null 2>&1; then
    say "pulled $IMAGE"
    exit 0
  fi
  say "cannot pull $IMAGE (no registry reachable): building a local stand-in"
fi

if [ ! -s "$TARBALL" ] || [ "$FORCE" = 1 ]; then
  [ "$(id -u)" = 0 ] || die "building the stand-in needs root (debootstrap)"
  if ! command -v debootstrap >/dev/null 2>&1; then
    command -v apt-get >/dev/null 2>&1 || die "debootstrap is missing and apt-get is not available"
    say "installing debootstrap"
    apt-get -o DPkg::Lock::Timeout=600 update -qq
    DEBIAN_FRONTEND=noninteractive \
      apt-get -o DPkg::Lock::Timeout=600 install -y -qq debootstrap >/dev/null
  fi
  [ -s /etc/ssl/certs/ca-certificates.crt ] || die "no /etc/ssl/certs/ca-certificates.crt on this machine"
  mkdir -p "$CACHE_DIR"
  ROOTFS="$(mktemp -d "$CACHE_DIR/rootfs.XXXXXX")"
  trap 'rm -rf "$ROOTFS"' EXIT
  say "debootstrap $SUITE into $ROOTFS (a few minutes)"
  debootstrap --variant=minbase --include=python3,python3-pip,python3-venv,ca-certificates \
    "$SUITE" "$ROOTFS" "$MIRROR" >"$CACHE_DIR/debootstrap.log" 2>&1 ||
    die "debootstrap failed; see $CACHE_DIR/debootstrap.log"

  # The machine's CA bundle: pip inside the build must trust what the host trusts.
  cp /etc/ssl/certs/ca-certificates.crt "$ROOTFS/etc/ssl/certs/ca-certificates.crt"
  ln -sf /usr/bin/python3 "$ROOTFS/usr/local/bin/python"
  ln -sf /usr/bin/pip3 "$ROOTFS/usr/local/bin/pip"
  # Lean: no package caches, lists, docs, man pages or locales (as in the slim image).
  rm -rf "$ROOTFS"/var/cache/apt/archives/*.deb "$ROOTFS"/var/lib/apt/lists/* \
    "$ROOTFS"/usr/share/doc/* "$ROOTFS"/usr/share/man/* "$ROOTFS"/usr/share/info/* \
    "$ROOTFS"/var/log/*.log "$ROOTFS"/var/cache/debconf/*-old
  find "$ROOTFS/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name 'locale.alias' \
    -exec rm -rf {} + 2>/dev/null || true
  find "$ROOTFS/usr/lib/python3" "$ROOTFS/usr/lib/python3.11" -name __pycache__ -type d \
    -prune -exec rm -rf {} + 2>/dev/null || true
  chmod 0755 "$ROOTFS" # mktemp made it 0700: / must be traversable by non-root users
  say "caching the root file system in $TARBALL"
  tar -C "$ROOTFS" --numeric-owner -cf "$TARBALL.tmp" .
  mv "$TARBALL.tmp" "$TARBALL"
  rm -rf "$ROOTFS"
  trap - EXIT
else
  say "using the cached root file system $TARBALL"
fi

say "importing $IMAGE"
docker import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV LANG=C.UTF-8' \
  --change 'ENV PIP_BREAK_SYSTEM_PACKAGES=1' \
  --change 'CMD ["python3"]' \
  --message "python:3.11-slim stand-in (Debian $SUITE, debootstrap minbase)" \
  "$TARBALL" "$IMAGE" >/dev/null
# As a non-root user too: the services' images run as one.
docker run --rm --network none --user 65534:65534 "$IMAGE" \
  python -c 'import sys, ssl, venv; print("python", sys.version.split()[0])' >&2 ||
  die "the imported $IMAGE does not run python as a non-root user"
say "built $IMAGE"
