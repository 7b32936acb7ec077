#!/usr/bin/env bash
# Make Docker usable for the containers tests on a Debian bookworm machine, as root, with no
# Docker Hub: install docker.io (and debootstrap) from Debian, start dockerd if no daemon
# answers, and build the agent image offline from a debootstrap root. Idempotent: each step is
# skipped when its result is already there, so a second run takes a second or two.
set -euo pipefail
cd "$(dirname "$0")/.."

BASE_IMAGE=${ECOLOGY_BASE_IMAGE:-ecology-agent-base:bookworm}
AGENT_IMAGE=${ECOLOGY_AGENT_IMAGE:-ecology-agent:latest}
DOCKERFILE=containers/images/Dockerfile.agent
DOCKERD_LOG=${ECOLOGY_DOCKERD_LOG:-/var/log/ecology-dockerd.log}
DAEMON_WAIT=${ECOLOGY_DAEMON_WAIT:-60}
export DOCKER_BUILDKIT=0 # the legacy builder needs no buildx plugin and no registry
export DEBIAN_FRONTEND=noninteractive

say() { echo "docker-setup: $*" >&2; }
started=$(date +%s)

daemon_answers() { command -v docker >/dev/null 2>&1 && timeout 5 docker info >/dev/null 2>&1; }

apt_updated=0
apt_install() {
  if [ "$(id -u)" != 0 ]; then
    say "not root: cannot install $*"
    return 1
  fi
  if [ "$apt_updated" = 0 ]; then
    apt-get update -qq
    apt_updated=1
  fi
  apt-get install -y -qq "$@" >/dev/null
}

# 1. The daemon: install and start it only if none answers.
if ! daemon_answers; then
  if ! command -v dockerd >/dev/null 2>&1 || ! command -v docker >/dev/null 2>&1; then
    say "installing docker.io"
    apt_install docker.io
  fi
  if [ "$(id -u)" != 0 ]; then
    say "no Docker daemon answers and we are not root: cannot start one"
    exit 1
  fi
  start_dockerd() {
    say "starting dockerd${*:+ $*} (log: $DOCKERD_LOG)"
    mkdir -p "$(dirname "$DOCKERD_LOG")"
    # setsid: the daemon outlives this script and the shell that ran it.
    setsid nohup dockerd "$@" >>"$DOCKERD_LOG" 2>&1 </dev/null &
    local pid=$! deadline=$(($(date +%s) + DAEMON_WAIT))
    while [ "$(date +%s)" -lt "$deadline" ]; do
      if daemon_answers; then return 0; fi
      if ! kill -0 "$pid" 2>/dev/null; then break; fi
      sleep 0.5
    done
    kill "$pid" 2>/dev/null || true
    return 1
  }
  # Agent containers use no network, so a daemon without iptables/bridge is still enough.
  if ! start_dockerd && ! start_dockerd --iptables=false --bridge=none; then
    say "dockerd did not answer within ${DAEMON_WAIT}s; last lines of $DOCKERD_LOG:"
    tail -n 20 "$DOCKERD_LOG" >&2 || true
    exit 1
  fi
fi
say "daemon answers: $(docker version --format '{{.Server.Version}}' 2>/dev/null || echo '?')"

# 2. The agent image: rebuilt only when missing or built from another Dockerfile.
dockerfile_sha=$(sha256sum "$DOCKERFILE" | cut -d' ' -f1)
have_sha=$(docker image inspect "$AGENT_IMAGE" \
  --format '{{ index .Config.Labels "ecology.dockerfile.sha256" }}' 2>/dev/null || true)
if [ "$have_sha" = "$dockerfile_sha" ]; then
  say "$AGENT_IMAGE is up to date ($(($(date +%s) - started))s)"
  exit 0
fi

# Debian's mirror as this machine is configured (deb822 .sources or one-line .list files).
debian_mirror() {
  local f
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    awk 'BEGIN { RS = ""; FS = "\n" }
      {
        uris = ""; suites = ""; enabled = 1
        for (i = 1; i <= NF; i++) {
          if ($i ~ /^URIs:/) { uris = $i; sub(/^URIs:[ \t]*/, "", uris) }
          if ($i ~ /^Suites:/) { suites = " " $i " "; sub(/^ Suites:/, "", suites) }
          if ($i ~ /^Enabled:[ \t]*no/) enabled = 0
        }
        if (enabled && suites ~ /[ \t]bookworm[ \t]/) { split(uris, u, /[ \t]+/); print u[1]; exit }
      }' "$f"
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    awk '$1 == "deb" {
        i = 2; if ($i ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
        if ($(i + 1) == "bookworm") { print $i; exit }
      }' "$f"
  done
}

if ! docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
  command -v debootstrap >/dev/null 2>&1 || apt_install debootstrap
  mirror=${ECOLOGY_DEBIAN_MIRROR:-$(debian_mirror | head -n 1)}
  mirror=${mirror:-http://deb.debian.org/debian}
  rootfs=$(mktemp -d /var/tmp/ecology-rootfs.XXXXXX)
  trap 'rm -rf "$rootfs"' EXIT
  say "debootstrap bookworm from $mirror into $rootfs"
  # python3-minimal lacks json and ctypes; libpython3.11-stdlib brings the rest of the stdlib.
  if ! timeout 480 debootstrap --variant=minbase --include=python3-minimal,libpython3.11-stdlib \
    bookworm "$rootfs" "$mirror" >/var/log/ecology-debootstrap.log 2>&1; then
    say "debootstrap failed; last lines of /var/log/ecology-debootstrap.log:"
    tail -n 20 /var/log/ecology-debootstrap.log >&2 || true
    exit 1
  fi
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  say "importing $BASE_IMAGE"
  tar -C "$rootfs" -c . | docker import - "$BASE_IMAGE" >/dev/null
  rm -rf "$rootfs"
fi

say "building $AGENT_IMAGE FROM $BASE_IMAGE"
docker build -q --network none --build-arg "BASE=$BASE_IMAGE" \
  --label "ecology.dockerfile.sha256=$dockerfile_sha" \
  -t "$AGENT_IMAGE" -f "$DOCKERFILE" containers/images >/dev/null
say "$AGENT_IMAGE built ($(($(date +%s) - started))s)"
