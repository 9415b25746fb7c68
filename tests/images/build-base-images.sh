#!/usr/bin/env bash
# Builds the local base images the Docker tests use, from Debian packages only.
#
# No container registry is reachable where CI runs, so `docker pull` cannot
# provide python:3.11-slim or a systemd image. debootstrap builds both from the
# Debian mirror apt is already configured with; `docker import` turns each
# root filesystem into an image. An image that already exists is kept, so the
# script is cheap to call from every test session.
#
#   LCC_BASE_IMAGE     python image for the gateway container  (default litellm-claude-code/base:bookworm)
#   LCC_SYSTEMD_IMAGE  systemd-as-PID-1 image for fleet hosts  (default litellm-claude-code/systemd:bookworm)
#   LCC_REBUILD=1      rebuild even if the images exist
set -euo pipefail

BASE_IMAGE="${LCC_BASE_IMAGE:-litellm-claude-code/base:bookworm}"
SYSTEMD_IMAGE="${LCC_SYSTEMD_IMAGE:-litellm-claude-code/systemd:bookworm}"
SUITE=bookworm

mirror() {
  # The first Debian mirror apt uses (deb822 or one-line format); never hard-coded.
  local uri
  uri="$(grep -hE '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}' | grep -v security | head -n1 || true)"
  if [[ -z "$uri" ]]; then
    uri="$(grep -hE '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null | awk '{print $2}' | grep -v security | head -n1 || true)"
  fi
  [[ -n "$uri" ]] || { echo "build-base-images: no Debian mirror found in apt's sources" >&2; exit 1; }
  echo "$uri"
}

have_image() { docker image inspect "$1" >/dev/null 2>&1; }

build() {
  local image="$1" include="$2"
  shift 2
  local -a change=()
  local c
  for c in "$@"; do change+=(-c "$c"); done
  if have_image "$image" && [[ "${LCC_REBUILD:-0}" != 1 ]]; then
    echo "build-base-images: $image exists"
    return 0
  fi
  command -v debootstrap >/dev/null || { echo "build-base-images: debootstrap is not installed (apt-get install debootstrap)" >&2; exit 1; }
  local root
  root="$(mktemp -d)"
  echo "build-base-images: debootstrap $SUITE -> $image"
  debootstrap --variant=minbase --include="$include" "$SUITE" "$root" "$(mirror)" >"$root.log" 2>&1 \
    || { tail -n 30 "$root.log" >&2; rm -rf "$root" "$root.log"; exit 1; }
  # Same CA bundle as the host, so pip inside containers trusts the registries the host trusts.
  cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
  tar -C "$root" -c . | docker import "${change[@]}" - "$image" >/dev/null
  rm -rf "$root" "$root.log"
  echo "build-base-images: built $image"
}

build "$BASE_IMAGE" "python3,python3-venv,python3-pip,ca-certificates" \
  'ENV LANG=C.UTF-8' 'CMD ["python3"]' &
p1=$!
build "$SYSTEMD_IMAGE" "systemd,systemd-sysv,dbus,python3,python3-venv,python3-apt,ca-certificates,sudo,iproute2,procps" \
  'ENV container=docker' 'CMD ["/lib/systemd/systemd"]' &
p2=$!
wait "$p1"; wait "$p2"
