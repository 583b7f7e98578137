#!/usr/bin/env bash
# Make sure the services the tests need answer on 127.0.0.1, starting private ones when they do not:
#  - NATS with JetStream at $CTWATCH_TEST_NATS_URL (default nats://127.0.0.1:4222): Debian's `nats-server`,
#    started as `nats-server -js` on that port;
#  - PostgreSQL at $CTWATCH_TEST_PG_URL (default postgres://postgres@127.0.0.1:5432/test): Debian's `postgresql`,
#    a private cluster with trust authentication on that port, databases test and root, roles postgres and root.
# Missing packages are installed with apt-get. Private instances keep their data and logs under
# $CTWATCH_SERVICES_DIR (default /tmp/ctwatch-test-services) and outlive this script (the tests run after it).
# Idempotent and quick when everything answers. Called by .ci/run; safe to run by hand. Exits non-zero, naming
# the service, when one cannot be reached or started.
set -euo pipefail

NATS_URL=${CTWATCH_TEST_NATS_URL:-nats://127.0.0.1:4222}
PG_URL=${CTWATCH_TEST_PG_URL:-postgres://postgres@127.0.0.1:5432/test}
DIR=${CTWATCH_SERVICES_DIR:-/tmp/ctwatch-test-services}

say() { echo "test-services: $*" >&2; }
die() { say "$*"; exit 1; }

# host and port of a URL (scheme://[user@]host:port[/...]).
host_of() { local u=${1#*://}; u=${u#*@}; u=${u%%/*}; echo "${u%:*}"; }
port_of() { local u=${1#*://}; u=${u#*@}; u=${u%%/*}; echo "${u##*:}"; }

SUDO=""
[ "$(id -u)" = 0 ] || SUDO=sudo
APT_UPDATED=""
apt_install() {
    if [ -z "$APT_UPDATED" ]; then
        $SUDO apt-get update -qq
        APT_UPDATED=1
    fi
    say "installing $* (apt-get)"
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# True when a NATS server with JetStream answers at host:port (its INFO line says "jetstream":true).
nats_ok() {
    local info=""
    info=$(timeout 3 bash -c "exec 3<>/dev/tcp/$1/$2 && IFS= read -r -t 2 line <&3 && printf '%s' \"\$line\"" \
        2>/dev/null) || true
    [[ $info == INFO* && $info == *'"jetstream":true'* ]]
}

pg_ok() {
    if command -v pg_isready >/dev/null; then
        pg_isready -q -h "$1" -p "$2" -t 3
    else
        timeout 3 bash -c "exec 3<>/dev/tcp/$1/$2" 2>/dev/null
    fi
}

wait_for() { # what, check command...
    local what=$1; shift
    for _ in $(seq 1 100); do
        "$@" && return 0
        sleep 0.1
    done
    return 1
}

ensure_nats() {
    local host port
    host=$(host_of "$NATS_URL"); port=$(port_of "$NATS_URL")
    if nats_ok "$host" "$port"; then
        say "NATS JetStream answers at $host:$port"
        return
    fi
    [ "$host" = 127.0.0.1 ] || [ "$host" = localhost ] \
        || die "NATS at $NATS_URL does not answer (or has no JetStream), and it is not local: start it there"
    command -v nats-server >/dev/null || apt_install nats-server
    mkdir -p "$DIR/nats-$port"
    say "starting a private nats-server -js on $host:$port (data and log in $DIR/nats-$port)"
    setsid nohup nats-server -js -a "$host" -p "$port" -sd "$DIR/nats-$port" \
        -l "$DIR/nats-$port/nats.log" </dev/null >/dev/null 2>&1 &
    wait_for "NATS" nats_ok "$host" "$port" \
        || die "nats-server did not answer on $host:$port; see $DIR/nats-$port/nats.log"
    say "NATS JetStream answers at $host:$port"
}

ensure_postgres() {
    local host port bin data
    host=$(host_of "$PG_URL"); port=$(port_of "$PG_URL")
    if pg_ok "$host" "$port"; then
        say "PostgreSQL answers at $host:$port"
        return
    fi
    [ "$host" = 127.0.0.1 ] || [ "$host" = localhost ] \
        || die "PostgreSQL at $PG_URL does not answer, and it is not local: start it there"
    ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || apt_install postgresql
    bin=$(dirname "$(ls /usr/lib/postgresql/*/bin/initdb | sort -V | tail -n 1)")
    data="$DIR/pg-$port"
    # PostgreSQL refuses to run as root: the cluster belongs to the `postgres` user the package creates.
    local as=()
    if [ "$(id -u)" = 0 ]; then
        id postgres >/dev/null 2>&1 || die "no postgres user to run PostgreSQL as (is the postgresql package installed?)"
        mkdir -p "$DIR" && chmod 755 "$DIR"
        mkdir -p "$data" && chown postgres: "$data"
        as=(runuser -u postgres --)
    else
        mkdir -p "$data"
    fi
    if [ ! -f "$data/PG_VERSION" ]; then
        say "creating a private PostgreSQL cluster in $data (trust authentication)"
        "${as[@]}" "$bin/initdb" -D "$data" -A trust -U postgres >/dev/null
    fi
    say "starting PostgreSQL on $host:$port"
    "${as[@]}" "$bin/pg_ctl" -D "$data" -l "$data/postgres.log" -w -t 30 \
        -o "-c listen_addresses=$host -p $port -k $data" start >/dev/null \
        || die "PostgreSQL did not start on $host:$port; see $data/postgres.log"
    local psql=("${as[@]}" "$bin/psql" -h "$host" -p "$port" -U postgres -d postgres -qAt -v ON_ERROR_STOP=1)
    "${psql[@]}" -c "SELECT 1 FROM pg_roles WHERE rolname = 'root'" | grep -q 1 \
        || "${psql[@]}" -c "CREATE ROLE root SUPERUSER LOGIN"
    for db in test root; do
        "${psql[@]}" -c "SELECT 1 FROM pg_database WHERE datname = '$db'" | grep -q 1 \
            || "${psql[@]}" -c "CREATE DATABASE $db"
    done
    say "PostgreSQL answers at $host:$port"
}

ensure_nats
ensure_postgres
