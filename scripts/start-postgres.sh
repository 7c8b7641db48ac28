#!/usr/bin/env bash
# Start a local PostgreSQL server for the paramstack test suite (Debian/Ubuntu, run as root).
#
# Idempotent: installs the server if it is missing, creates or reuses the cluster
# "<major>/main", makes it listen on 127.0.0.1:$PGPORT_PARAMSTACK (default 5432) only,
# starts it, and creates the role and database "paramstack" (password "paramstack").
#
# All progress goes to stderr; the last (only) line on stdout is the SQLAlchemy URL:
#   postgresql+psycopg://paramstack:paramstack@127.0.0.1:5432/paramstack
#
# Usage:  scripts/start-postgres.sh
#         export PARAMSTACK_TEST_POSTGRES_URL="$(scripts/start-postgres.sh | tail -n 1)"
set -euo pipefail

PORT="${PGPORT_PARAMSTACK:-5432}"
HOST="127.0.0.1"
CLUSTER="${PGCLUSTER_PARAMSTACK:-main}"
DB_USER="paramstack"
DB_PASSWORD="paramstack"
DB_NAME="paramstack"
READY_TIMEOUT_S="${PG_READY_TIMEOUT_S:-30}"
PG_LIB_DIR="/usr/lib/postgresql"

log() { printf 'start-postgres: %s\n' "$*" >&2; }
die() {
    log "error: $*"
    exit 1
}

if [[ ! "$PORT" =~ ^[0-9]+$ ]] || ((PORT < 1 || PORT > 65535)); then
    die "PGPORT_PARAMSTACK must be a TCP port number, got '$PORT'"
fi

if [[ "$(id -u)" -ne 0 ]]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        log "not root: re-running with sudo"
        exec sudo -n --preserve-env=PGPORT_PARAMSTACK,PGCLUSTER_PARAMSTACK,PG_READY_TIMEOUT_S -- "$0" "$@"
    fi
    die "must run as root (it installs packages and manages the cluster as user postgres)"
fi

# Highest installed server major version, or empty.
installed_major() {
    local bin
    for bin in "$PG_LIB_DIR"/*/bin/postgres; do
        if [[ -x "$bin" ]]; then
            basename "$(dirname "$(dirname "$bin")")"
        fi
    done | sort -n | tail -n 1
}

# --- 1. Server binaries -------------------------------------------------------------------
MAJOR="$(installed_major)"
if [[ -z "$MAJOR" ]] || ! command -v pg_lsclusters >/dev/null 2>&1; then
    log "PostgreSQL server not found: installing the 'postgresql' package"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq --no-install-recommends postgresql >&2
    MAJOR="$(installed_major)"
    [[ -n "$MAJOR" ]] || die "apt-get installed postgresql but no server binary was found"
fi
log "PostgreSQL major version $MAJOR"

# --- 2. Cluster ---------------------------------------------------------------------------
# pg_lsclusters -h prints: version cluster port status owner datadir logfile
cluster_line() { pg_lsclusters -h 2>/dev/null | awk -v v="$MAJOR" -v c="$CLUSTER" '$1 == v && $2 == c'; }

if [[ -z "$(cluster_line)" ]]; then
    log "creating cluster $MAJOR/$CLUSTER on port $PORT"
    pg_createcluster --port "$PORT" --start-conf auto "$MAJOR" "$CLUSTER" >&2
fi

# Listen on loopback IPv4 only, on the requested port, via a drop-in that Debian's
# postgresql.conf includes last (pg_conftool would write 127.0.0.1 unquoted: a syntax error).
# Restart only when something changed.
CONF_DIR="/etc/postgresql/$MAJOR/$CLUSTER"
DROPIN="$CONF_DIR/conf.d/50-paramstack.conf"
desired="# Written by paramstack scripts/start-postgres.sh
listen_addresses = '$HOST'
port = $PORT"
changed=0
if [[ ! -f "$DROPIN" ]] || [[ "$(cat "$DROPIN")" != "$desired" ]]; then
    log "writing $DROPIN (listen_addresses = '$HOST', port = $PORT)"
    install -d -o postgres -g postgres "$CONF_DIR/conf.d"
    printf '%s\n' "$desired" >"$DROPIN"
    chown postgres:postgres "$DROPIN"
    changed=1
fi
conf_get() { pg_conftool -s "$MAJOR" "$CLUSTER" postgresql.conf show "$1" 2>/dev/null || true; }
if [[ "$(conf_get listen_addresses)" != "$HOST" || "$(conf_get port)" != "$PORT" ]]; then
    die "$CONF_DIR/postgresql.conf overrides $DROPIN (is include_dir = 'conf.d' its last line?)"
fi

status="$(cluster_line | awk '{print $4}')"
if [[ "$status" == online* ]]; then
    if ((changed)); then
        log "configuration changed: restarting cluster $MAJOR/$CLUSTER"
        pg_ctlcluster "$MAJOR" "$CLUSTER" restart >&2
    else
        log "cluster $MAJOR/$CLUSTER already running"
    fi
else
    log "starting cluster $MAJOR/$CLUSTER"
    # The socket directory lives on a tmpfs on many hosts and may be gone after a reboot.
    install -d -m 2775 -o postgres -g postgres /var/run/postgresql
    if ! pg_ctlcluster "$MAJOR" "$CLUSTER" start >&2; then
        log "start failed; last lines of the server log:"
        tail -n 20 "/var/log/postgresql/postgresql-$MAJOR-$CLUSTER.log" >&2 || true
        die "could not start cluster $MAJOR/$CLUSTER"
    fi
fi

# --- 3. Wait until it accepts TCP connections ----------------------------------------------
deadline=$((SECONDS + READY_TIMEOUT_S))
until pg_isready -q -h "$HOST" -p "$PORT"; do
    if ((SECONDS >= deadline)); then
        tail -n 20 "/var/log/postgresql/postgresql-$MAJOR-$CLUSTER.log" >&2 || true
        die "server on $HOST:$PORT not ready after ${READY_TIMEOUT_S}s"
    fi
    sleep 0.5
done
log "server ready on $HOST:$PORT"

# --- 4. Role and database -----------------------------------------------------------------
psql_admin() {
    # Connect over the Unix socket as the postgres superuser (peer authentication).
    runuser -u postgres -- psql --no-psqlrc -v ON_ERROR_STOP=1 -p "$PORT" -d postgres -qtA "$@"
}

if [[ "$(psql_admin -c "SELECT 1 FROM pg_roles WHERE rolname = '$DB_USER'")" != "1" ]]; then
    log "creating role $DB_USER"
    psql_admin -c "CREATE ROLE $DB_USER LOGIN CREATEDB PASSWORD '$DB_PASSWORD'" >&2
else
    # Keep the known password and privileges even if someone changed them.
    psql_admin -c "ALTER ROLE $DB_USER LOGIN CREATEDB PASSWORD '$DB_PASSWORD'" >&2
fi

if [[ "$(psql_admin -c "SELECT 1 FROM pg_database WHERE datname = '$DB_NAME'")" != "1" ]]; then
    log "creating database $DB_NAME"
    psql_admin -c "CREATE DATABASE $DB_NAME OWNER $DB_USER" >&2
fi

# Check the credentials the tests will use, over TCP.
if ! PGPASSWORD="$DB_PASSWORD" psql --no-psqlrc -h "$HOST" -p "$PORT" -U "$DB_USER" -d "$DB_NAME" \
    -qtAc "SELECT 1" >/dev/null; then
    die "cannot log in as $DB_USER over TCP on $HOST:$PORT"
fi

echo "postgresql+psycopg://$DB_USER:$DB_PASSWORD@$HOST:$PORT/$DB_NAME"
