#!/usr/bin/env bash
# Start a local Redis server for the paramstack test suite (Debian/Ubuntu).
#
# Idempotent: installs redis-server if it is missing (needs root or password-less sudo), and
# starts one server listening on 127.0.0.1:$REDIS_PORT_PARAMSTACK (default 6379) only, with
# persistence off (the tests need none) unless a server already answers PING there.
#
# All progress goes to stderr; the last (only) line on stdout is the URL:
#   redis://127.0.0.1:6379/0
#
# Usage:  scripts/start-redis.sh
#         export PARAMSTACK_TEST_REDIS_URL="$(scripts/start-redis.sh | tail -n 1)"
set -euo pipefail

PORT="${REDIS_PORT_PARAMSTACK:-6379}"
HOST="127.0.0.1"
READY_TIMEOUT_S="${REDIS_READY_TIMEOUT_S:-15}"
RUN_DIR="${REDIS_RUN_DIR_PARAMSTACK:-/tmp/paramstack-redis-$PORT}"

log() { printf 'start-redis: %s\n' "$*" >&2; }
die() {
    log "error: $*"
    exit 1
}

if [[ ! "$PORT" =~ ^[0-9]+$ ]] || ((PORT < 1 || PORT > 65535)); then
    die "REDIS_PORT_PARAMSTACK must be a TCP port number, got '$PORT'"
fi

as_root() {
    if [[ "$(id -u)" -eq 0 ]]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        sudo -n "$@"
    else
        die "installing redis-server needs root (or password-less sudo)"
    fi
}

# --- 1. Server binary ---------------------------------------------------------------------
if ! command -v redis-server >/dev/null 2>&1 || ! command -v redis-cli >/dev/null 2>&1; then
    log "redis-server not found: installing the 'redis-server' package"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
    # The Debian package tries to start a service; in containers without systemd that fails
    # harmlessly, and we start our own server below anyway.
    as_root env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends redis-server >&2 || true
    command -v redis-server >/dev/null 2>&1 || die "apt-get did not install redis-server"
fi

ping() { redis-cli -h "$HOST" -p "$PORT" ping 2>/dev/null | grep -qx PONG; }

# --- 2. Server ------------------------------------------------------------------------------
if ping; then
    log "a server already answers on $HOST:$PORT"
else
    log "starting redis-server on $HOST:$PORT (data dir $RUN_DIR, persistence off)"
    mkdir -p "$RUN_DIR"
    redis-server --bind "$HOST" --port "$PORT" --protected-mode yes \
        --daemonize yes --dir "$RUN_DIR" --pidfile "$RUN_DIR/redis.pid" \
        --logfile "$RUN_DIR/redis.log" --save "" --appendonly no >&2
    deadline=$((SECONDS + READY_TIMEOUT_S))
    until ping; do
        if ((SECONDS >= deadline)); then
            tail -n 20 "$RUN_DIR/redis.log" >&2 || true
            die "server on $HOST:$PORT not ready after ${READY_TIMEOUT_S}s"
        fi
        sleep 0.2
    done
fi
log "server ready on $HOST:$PORT ($(redis-cli -h "$HOST" -p "$PORT" info server | grep -m1 redis_version | tr -d '\r'))"

echo "redis://$HOST:$PORT/0"
