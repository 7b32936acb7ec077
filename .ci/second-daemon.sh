#!/usr/bin/env bash
# A second Docker daemon on this machine, for the multi-host placement tests: its own socket,
# data root, exec root (so its own managed containerd) and pidfile, no bridge and no iptables
# (agent containers use no network), and the agent image copied into it offline from the first
# daemon (docker save | docker load: no registry). Run after .ci/docker-setup.sh, as root.
# Idempotent: a daemon that already answers on the socket is kept, and the image is loaded only
# when missing or built from another Dockerfile. Every wait is bounded.
#
#   bash .ci/second-daemon.sh          start it (or check it) and load the image
#   bash .ci/second-daemon.sh stop     stop it (SIGTERM, then SIGKILL after a bounded wait)
set -euo pipefail
cd "$(dirname "$0")/.."

SOCK=${ECOLOGY_DOCKER2_SOCK:-/run/ecology-docker2.sock}
DATA_ROOT=${ECOLOGY_DOCKER2_DATA:-/var/lib/ecology-docker2}
EXEC_ROOT=${ECOLOGY_DOCKER2_EXEC:-/run/ecology-docker2}
PIDFILE=${ECOLOGY_DOCKER2_PIDFILE:-/run/ecology-docker2.pid}
CONFIG=${ECOLOGY_DOCKER2_CONFIG:-/etc/ecology-docker2/daemon.json}
LOG=${ECOLOGY_DOCKER2_LOG:-/var/log/ecology-docker2.log}
AGENT_IMAGE=${ECOLOGY_AGENT_IMAGE:-ecology-agent:latest}
WAIT=${ECOLOGY_DAEMON_WAIT:-60}
HOST="unix://$SOCK"

say() { echo "second-daemon: $*" >&2; }
answers() { timeout 5 docker -H "$HOST" info >/dev/null 2>&1; }
# The pid of our dockerd if it is alive: a zombie, or a pid reused by another program, is not.
alive() {
  local state
  state=$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null || true)
  [ -n "$state" ] && [ "$state" != Z ]
}
running() { alive "$1" && [ "$(cat "/proc/$1/comm" 2>/dev/null)" = dockerd ]; }
daemon_pid() {
  local pid
  pid=$(cat "$PIDFILE" 2>/dev/null || true)
  if [ -n "$pid" ] && running "$pid"; then echo "$pid"; fi
}

if [ "${1:-start}" = stop ]; then
  pid=$(daemon_pid)
  if [ -z "$pid" ]; then
    say "not running"
    exit 0
  fi
  kill -TERM "$pid" 2>/dev/null || true
  deadline=$(($(date +%s) + 20))
  while running "$pid" && [ "$(date +%s)" -lt "$deadline" ]; do sleep 0.2; done
  if running "$pid"; then
    say "dockerd $pid ignored SIGTERM for 20s: SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  say "stopped dockerd $pid"
  exit 0
fi

started=$(date +%s)
if ! command -v dockerd >/dev/null 2>&1 || ! command -v docker >/dev/null 2>&1; then
  say "docker is not installed (run .ci/docker-setup.sh first)"
  exit 1
fi
if ! timeout 5 docker info >/dev/null 2>&1; then
  say "the first daemon does not answer (run .ci/docker-setup.sh first)"
  exit 1
fi

if ! answers; then
  if [ "$(id -u)" != 0 ]; then
    say "not root: cannot start a second dockerd"
    exit 1
  fi
  # A dockerd of ours that is alive but does not answer (still starting, or stuck): wait for
  # it a bounded time, then replace it.
  old=$(daemon_pid)
  if [ -n "$old" ]; then
    deadline=$(($(date +%s) + 15))
    while [ "$(date +%s)" -lt "$deadline" ] && ! answers && running "$old"; do
      sleep 0.5
    done
    if ! answers; then
      say "dockerd $old does not answer: stopping it"
      kill -KILL "$old" 2>/dev/null || true
      sleep 0.5
    fi
  fi
fi

if ! answers; then
  mkdir -p "$DATA_ROOT" "$EXEC_ROOT" "$(dirname "$CONFIG")" "$(dirname "$LOG")"
  # Its own (empty) config file: /etc/docker/daemon.json belongs to the first daemon.
  [ -f "$CONFIG" ] || echo '{}' >"$CONFIG"
  # A pidfile left by a killed dockerd (dead, or a zombie not yet reaped) stops a new one.
  [ -n "$(daemon_pid)" ] || rm -f "$PIDFILE"
  # So does its containerd: a new dockerd waits for the one named in this pidfile to answer,
  # and a zombie never does. End a leftover one (it was started for this exec root only).
  ctd_pidfile="$EXEC_ROOT/containerd/containerd.pid"
  ctd=$(cat "$ctd_pidfile" 2>/dev/null || true)
  if [ -n "$ctd" ] && alive "$ctd" && [ "$(cat "/proc/$ctd/comm" 2>/dev/null)" = containerd ]; then
    say "ending containerd $ctd left by a dockerd that died"
    kill -TERM "$ctd" 2>/dev/null || true
    deadline=$(($(date +%s) + 10))
    while alive "$ctd" && [ "$(date +%s)" -lt "$deadline" ]; do sleep 0.2; done
    alive "$ctd" && kill -KILL "$ctd" 2>/dev/null || true
  fi
  rm -f "$ctd_pidfile"
  rm -f "$SOCK"
  say "starting dockerd on $HOST (data root $DATA_ROOT, log $LOG)"
  # setsid: the daemon outlives this script and the shell that ran it.
  setsid nohup dockerd \
    --host "$HOST" \
    --data-root "$DATA_ROOT" \
    --exec-root "$EXEC_ROOT" \
    --pidfile "$PIDFILE" \
    --config-file "$CONFIG" \
    --bridge=none --iptables=false --ip-masq=false \
    >>"$LOG" 2>&1 </dev/null &
  pid=$!
  deadline=$(($(date +%s) + WAIT))
  until answers; do
    if ! alive "$pid"; then
      say "dockerd exited; last lines of $LOG:"
      tail -n 20 "$LOG" >&2 || true
      exit 1
    fi
    if [ "$(date +%s)" -ge "$deadline" ]; then
      say "dockerd did not answer within ${WAIT}s; last lines of $LOG:"
      tail -n 20 "$LOG" >&2 || true
      kill -TERM "$pid" 2>/dev/null || true
      exit 1
    fi
    sleep 0.3
  done
fi
say "daemon answers on $HOST (pid $(daemon_pid || echo '?'))"

# The agent image: copied from the first daemon when missing here or of another build.
want=$(docker image inspect "$AGENT_IMAGE" --format '{{.Id}}' 2>/dev/null || true)
if [ -z "$want" ]; then
  say "the first daemon has no $AGENT_IMAGE (run .ci/docker-setup.sh first)"
  exit 1
fi
have=$(docker -H "$HOST" image inspect "$AGENT_IMAGE" --format '{{.Id}}' 2>/dev/null || true)
if [ "$have" != "$want" ]; then
  say "loading $AGENT_IMAGE into $HOST"
  docker save "$AGENT_IMAGE" | timeout 300 docker -H "$HOST" load -q >/dev/null
fi
say "ready: $HOST has $AGENT_IMAGE ($(($(date +%s) - started))s)"
