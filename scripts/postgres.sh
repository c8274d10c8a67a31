#!/usr/bin/env bash
# A throwaway PostgreSQL for the tests, on 127.0.0.1 with trust auth.
#
#   scripts/postgres.sh [start]   start it (or reuse the one already running); prints the admin URL
#   scripts/postgres.sh url       print the admin URL of the running server
#   scripts/postgres.sh status    exit 0 when it is running
#   scripts/postgres.sh stop      stop it and delete its data
#   scripts/postgres.sh pause     stop it, keeping its data and port (a server down, for fault tests)
#   scripts/postgres.sh resume    start a paused server again on the same port; prints the admin URL
#
# Installs Debian's `postgresql` package on first use. The data folder is a temp folder
# (${OLO_PG_DIR:-/tmp/olo-postgres}), not under $HOME: as root, PostgreSQL runs as the `postgres`
# OS user, which cannot enter /root. The port is the first free one from ${OLO_PG_PORT:-25432}.
# The cluster's default collation is ICU en-US, as on a typical production server, so a query
# that sorts text without COLLATE "C" shows up in the tests as a different order than SQLite's.
# Only the URL goes to stdout, so `export OLO_TEST_POSTGRES_URL=$(scripts/postgres.sh)` works.
set -euo pipefail

dir="${OLO_PG_DIR:-/tmp/olo-postgres}"
data="$dir/data"
first_port="${OLO_PG_PORT:-25432}"

say() { echo "postgres.sh: $*" >&2; }

bindir() {
    local initdb
    initdb="$(ls -1 /usr/lib/postgresql/*/bin/initdb 2>/dev/null | sort -V | tail -n 1 || true)"
    [ -n "$initdb" ] && dirname "$initdb"
}

install_postgres() {
    if [ -n "$(bindir)" ]; then
        return
    fi
    if [ "$(id -u)" != 0 ]; then
        say "PostgreSQL is not installed and I am not root: install Debian's \`postgresql\` package"
        exit 1
    fi
    say "installing PostgreSQL (Debian package postgresql)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq postgresql >&2
    if [ -z "$(bindir)" ]; then
        say "apt-get installed postgresql but no /usr/lib/postgresql/*/bin/initdb exists"
        exit 1
    fi
}

# Runs a command as the OS user that owns the cluster (PostgreSQL refuses to run as root).
as_owner() {
    if [ "$(id -u)" = 0 ]; then
        # From /, so that the postgres user is not left in a folder it may not enter.
        (cd / && runuser -u postgres -- "$@")
    else
        "$@"
    fi
}

running() {
    local bin
    bin="$(bindir)"
    [ -n "$bin" ] && [ -f "$data/PG_VERSION" ] && as_owner "$bin/pg_ctl" status -D "$data" >/dev/null 2>&1
}

url() {
    echo "postgres://postgres@127.0.0.1:$(cat "$dir/port")/postgres"
}

# shellcheck source=scripts/ports.sh disable=SC1091
. "$(dirname "${BASH_SOURCE[0]}")/ports.sh"

start() {
    install_postgres
    local bin port
    bin="$(bindir)"
    if running; then
        say "reusing the server already running in $data"
        url
        return
    fi

    if [ "${resume:-0}" = 1 ] && [ -f "$dir/port" ]; then
        port="$(cat "$dir/port")"
    else
        port="$(free_port "$first_port")"
    fi

    mkdir -p "$dir"
    if [ "$(id -u)" = 0 ]; then
        chown postgres: "$dir"
    fi
    chmod 700 "$dir"
    if [ ! -f "$data/PG_VERSION" ]; then
        rm -rf "$data"
        say "initdb in $data"
        as_owner "$bin/initdb" -D "$data" -U postgres --auth=trust --encoding=UTF8 --locale=C.UTF-8 \
            --locale-provider=icu --icu-locale=en-US \
            >"$dir/initdb.log" 2>&1 || {
            cat "$dir/initdb.log" >&2
            exit 1
        }
    fi
    echo "$port" >"$dir/port"

    say "starting PostgreSQL $(as_owner "$bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$port"
    # The socket goes in our folder too: /var/run/postgresql may not exist on a fresh machine.
    if ! as_owner "$bin/pg_ctl" start -D "$data" -l "$dir/server.log" -w -t 60 \
        -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c max_connections=200 -c fsync=off" \
        >/dev/null; then
        say "PostgreSQL did not start; its log:"
        tail -n 50 "$dir/server.log" >&2 || true
        exit 1
    fi
    url
}

# Stops the server (its data and port stay, for `resume`).
pause() {
    local bin
    bin="$(bindir)"
    if running; then
        say "stopping the server in $data"
        as_owner "$bin/pg_ctl" stop -D "$data" -m fast -w >/dev/null
    fi
}

stop() {
    pause
    rm -rf "$dir"
}

case "${1:-start}" in
start) start ;;
stop) stop ;;
pause) pause ;;
resume) resume=1 start ;;
status) running ;;
url)
    running || {
        say "not running: start it with scripts/postgres.sh"
        exit 1
    }
    url
    ;;
*)
    say "usage: scripts/postgres.sh [start|url|status|stop|pause|resume]"
    exit 2
    ;;
esac
