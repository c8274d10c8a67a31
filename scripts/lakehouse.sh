#!/usr/bin/env bash
# A throwaway lakehouse for the Iceberg tests, on 127.0.0.1: an S3 server (s3s-fs) and an Iceberg
# REST catalog (rustberg) whose warehouse is a bucket on that S3 server.
#
#   scripts/lakehouse.sh [start]   start both (or reuse the running pair); prints `export ...` lines
#   scripts/lakehouse.sh status    exit 0 when both answer
#   scripts/lakehouse.sh env       print the `export ...` lines for the running pair
#   scripts/lakehouse.sh stop      stop both and delete the folder
#
# test.sh: eval "$(scripts/lakehouse.sh start)". Only the export lines go to stdout.
#
# Both servers come from crates.io, built once with `cargo install` into
# $OLO_CACHE/tools/<name>-<version> (OLO_CACHE defaults to ~/.cache/olo). The versions are pinned:
# newer ones need a newer rustc. An install already running into the same root is waited for,
# never duplicated. State lives in ${OLO_LAKEHOUSE_DIR:-/tmp/olo-lakehouse}; ports are the first
# free ones from ${OLO_S3_PORT:-28100} and ${OLO_ICEBERG_PORT:-28110}.
#
# ---------------------------------------------------------------------------------------------
# What rustberg 0.3.0 does (read from its source, then tried here with curl and PyIceberg 0.12.0):
#
# * Command line: NO_COLOR=1 rustberg --dev --no-auth --insecure-http --log-level info
#       --host 127.0.0.1 --port P --catalog-url file://DIR/catalog --config DIR/rustberg.toml
#   No auth at all (--no-auth is refused without --dev). The catalog itself is an embedded redb
#   file under --catalog-url. The warehouse and how to reach S3 are in the TOML file: [storage]
#   warehouse_location, [storage.properties] s3.endpoint / s3.path-style-access / s3.region /
#   s3.access-key-id / s3.secret-access-key. Rate limiting is off there (it is on by default,
#   100 req/s per IP) and so is the audit stream (JSON lines on stdout).
# * Warehouse: S3 on the s3s-fs server: s3://lake/warehouse. Bucket `lake` is the folder
#   DIR/s3/lake, made before s3s-fs starts. rustberg writes table metadata there itself
#   (s3://lake/warehouse/sales/bronze/orders/metadata/00000-<uuid>.metadata.json: one folder per
#   namespace level).
# * Base URL: http://127.0.0.1:P (no /catalog). GET /v1/config sends NO `prefix` override, only
#   {"overrides":{"warehouse":"s3://lake/warehouse"},"defaults":{},"endpoints":[...],
#    "idempotency-key-lifetime":"PT24H"}, so clients use /v1/namespaces. /v1/<anything>/... is
#   also routed (the segment is ignored), so a client that sends a prefix still works.
# * Warehouse name: rustberg serves exactly one warehouse. GET /v1/config?warehouse=X is 400
#   BadRequestException ("Unknown warehouse 'lake'. This server serves exactly one warehouse,
#   's3://lake/warehouse'...") unless X is exactly the location. So OLO_TEST_ICEBERG_WAREHOUSE is
#   s3://lake/warehouse, not a bare name; sending no warehouse works too. Nothing has to be created
#   first: no warehouse/tenant admin API or CLI step (tenant "default" is implicit).
# * Nested namespaces: supported, to any depth. The parent must exist: POST /v1/namespaces
#   {"namespace":["sales","bronze"]} without ["sales"] is 404
#   {"error":{"message":"Namespace does not exist: sales","type":"NoSuchNamespaceException","code":404}}.
#   In a path the levels are joined by %1F: /v1/namespaces/sales%1Fbronze. GET /v1/namespaces lists
#   top-level ones only; ?parent=sales lists direct children as full paths
#   ({"namespaces":[["sales","bronze"]]}); an unknown parent is 404.
# * Create answers 200 {"namespace":[...],"properties":{...}}; an existing one is 409
#   {"error":{"message":"Namespace already exists: sales","type":"AlreadyExistsException","code":409}}.
# * POST /v1/namespaces/sales%1Fbronze/properties {"updates":{..},"removals":[..]} answers 200
#   {"updated":[..],"removed":[..],"missing":[..]}. A key both updated and removed is kept and
#   reported as updated and missing (no 422). Keys starting "rustberg.internal." are refused (400).
# * DELETE /v1/namespaces/{ns}: 204 when empty; 404 NoSuchNamespaceException when absent; 409 when
#   it holds a table: {"error":{"message":"Namespace not empty: Namespace not empty: sales.bronze",
#   "type":"NamespaceNotEmptyException","code":409}}, or a child namespace: {"error":{"message":
#   "Namespace not empty: Namespace has child namespaces: sales","type":
#   "NamespaceNotEmptyException","code":409}}.
# * HEAD /v1/namespaces/{ns} is 204 / 404.
#
# s3s-fs 0.14.1: s3s-fs --host 127.0.0.1 --port P --access-key K --secret-key S DIR/s3
#   Path-style; any region; every request must be SigV4-signed with those keys and must carry
#   x-amz-content-sha256 (400 InvalidRequest without it); a wrong key is 403 SignatureDoesNotMatch.
# ---------------------------------------------------------------------------------------------
set -euo pipefail
cd "$(dirname "$0")/.."

dir="${OLO_LAKEHOUSE_DIR:-/tmp/olo-lakehouse}"
cache="${OLO_CACHE:-$HOME/.cache/olo}"
s3_first_port="${OLO_S3_PORT:-28100}"
iceberg_first_port="${OLO_ICEBERG_PORT:-28110}"

rustberg_version=0.3.0
s3s_version=0.14.1
rustberg_root="$cache/tools/rustberg-$rustberg_version-dev"
s3s_root="$cache/tools/s3s-fs-$s3s_version-dev"
rustberg_bin="$rustberg_root/bin/rustberg"
s3s_bin="$s3s_root/bin/s3s-fs"

access_key=olo-test
secret_key=olo-test-secret
region=us-east-1
bucket=lake
warehouse="s3://$bucket/warehouse"

say() { echo "lakehouse.sh: $*" >&2; }

# --- install ------------------------------------------------------------------------------------

# Another `cargo install` into one of our tool roots (a parallel run of this script, or one started
# by hand). Installs may be chained (rustberg, then s3s-fs), so after one ends look again briefly.
wait_for_installs() {
    local waited=0 quiet=0
    while :; do
        if pgrep -f "cargo install .*--root $cache/tools/" >/dev/null 2>&1; then
            if [ "$waited" = 0 ]; then
                say "a cargo install into $cache/tools is running; waiting for it to finish"
            fi
            waited=1
            quiet=0
            sleep 5
        elif [ "$waited" = 1 ] && [ "$quiet" -lt 2 ]; then
            quiet=$((quiet + 1))
            sleep 3
        else
            return 0
        fi
    done
}

# install NAME VERSION ROOT BIN MINUTES CARGO-INSTALL-ARGS...
install() {
    local name="$1" version="$2" root="$3" bin="$4" minutes="$5"
    shift 5
    [ -x "$bin" ] && return 0
    mkdir -p "$cache/tools"
    # One installer at a time per tool, across concurrent runs of this script.
    exec 9>"$cache/tools/.$name-$version.lock"
    flock 9
    wait_for_installs
    if [ ! -x "$bin" ]; then
        local log="$cache/tools/$name-$version.install.log"
        say "installing $name $version (first run only, ~$minutes min; log $log)"
        if ! cargo install "$name@$version" "$@" --root "$root" >"$log" 2>&1; then
            say "cargo install $name@$version failed; the end of its log:"
            tail -n 40 "$log" >&2
            exit 1
        fi
    fi
    exec 9>&-
    [ -x "$bin" ] || { say "$bin missing after installing $name"; exit 1; }
}

install_tools() {
    # Built unoptimised (`--debug`, no debug info): a throwaway test server needs no speed, and
    # rustberg's release profile (fat LTO, one codegen unit) takes ~10 min of CPU on 2 cores
    # against ~3.5 min for this; CI builds it on every fresh machine.
    export CARGO_PROFILE_DEV_DEBUG=0
    install rustberg "$rustberg_version" "$rustberg_root" "$rustberg_bin" 4 --debug \
        --locked --no-default-features --features cli,storage-s3
    install s3s-fs "$s3s_version" "$s3s_root" "$s3s_bin" 1 --debug \
        --features binary --locked
}

# --- helpers -------------------------------------------------------------------------------------

# shellcheck source=scripts/ports.sh disable=SC1091
. "$(dirname "${BASH_SOURCE[0]}")/ports.sh"

s3_port() { cat "$dir/s3.port" 2>/dev/null; }
iceberg_port() { cat "$dir/iceberg.port" 2>/dev/null; }

# A signed ListObjectsV2 on the bucket: proves the server, the keys and the bucket at once.
# (s3s-fs insists on x-amz-content-sha256, which curl's --aws-sigv4 does not send by itself.)
s3_answers() {
    local port
    port="$(s3_port)" || return 1
    [ -n "$port" ] && curl -fsS -o /dev/null \
        --aws-sigv4 "aws:amz:$region:s3" --user "$access_key:$secret_key" \
        -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" \
        "http://127.0.0.1:$port/$bucket?list-type=2&max-keys=1" 2>/dev/null
}

iceberg_answers() {
    local port
    port="$(iceberg_port)" || return 1
    [ -n "$port" ] && curl -fsS -o /dev/null "http://127.0.0.1:$port/v1/config" 2>/dev/null
}

answers() { s3_answers && iceberg_answers; }

print_env() {
    echo "export OLO_TEST_ICEBERG_URL=http://127.0.0.1:$(iceberg_port)"
    echo "export OLO_TEST_ICEBERG_WAREHOUSE=$warehouse"
    echo "export OLO_TEST_S3_URL=http://127.0.0.1:$(s3_port)"
    echo "export OLO_TEST_S3_ACCESS_KEY=$access_key"
    echo "export OLO_TEST_S3_SECRET_KEY=$secret_key"
    echo "export OLO_TEST_S3_REGION=$region"
    echo "export OLO_TEST_S3_BUCKET=$bucket"
}

kill_group() {
    local pidfile="$1" pid
    [ -f "$pidfile" ] || return 0
    pid="$(cat "$pidfile")"
    kill -TERM -- "-$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL -- "-$pid" 2>/dev/null || true
}

stop() {
    kill_group "$dir/iceberg.pid"
    kill_group "$dir/s3.pid"
    rm -rf "$dir"
}

# The end of a server's log, then both servers stopped (the folder and its logs are kept until the
# next start or stop).
fail() {
    local name="$1" log="$2" why="$3"
    say "$name $why; the end of its log ($log):"
    tail -n 60 "$log" >&2
    kill_group "$dir/iceberg.pid"
    kill_group "$dir/s3.pid"
    exit 1
}

# wait_for NAME PIDFILE LOG CHECK
wait_for() {
    local name="$1" pidfile="$2" log="$3" check="$4"
    for _ in $(seq 1 120); do
        if "$check"; then return 0; fi
        if ! kill -0 "$(cat "$pidfile")" 2>/dev/null; then
            fail "$name" "$log" "exited"
        fi
        sleep 0.5
    done
    fail "$name" "$log" "did not answer within 60 s"
}

# --- start ---------------------------------------------------------------------------------------

start() {
    # One start at a time: two callers (a test run and a person, or two test runs) would each
    # stop the other's servers and overwrite the port and pid files. The second waits, then
    # finds the first's servers answering.
    # The lock lives beside the folder (stop removes the folder); the servers do not inherit it.
    exec 8>"$dir.start.lock"
    flock 8
    if answers; then
        print_env
        return
    fi
    stop
    install_tools
    mkdir -p "$dir/s3/$bucket" "$dir/catalog"

    local port
    port="$(free_port "$s3_first_port")"
    echo "$port" >"$dir/s3.port"
    setsid "$s3s_bin" --host 127.0.0.1 --port "$port" \
        --access-key "$access_key" --secret-key "$secret_key" "$dir/s3" \
        >"$dir/s3.log" 2>&1 8>&- &
    echo $! >"$dir/s3.pid"
    say "waiting for s3s-fs on 127.0.0.1:$port"
    wait_for s3s-fs "$dir/s3.pid" "$dir/s3.log" s3_answers

    cat >"$dir/rustberg.toml" <<EOF
[storage]
warehouse_location = "$warehouse"

[storage.properties]
"s3.endpoint" = "http://127.0.0.1:$port"
"s3.path-style-access" = "true"
"s3.region" = "$region"
"s3.access-key-id" = "$access_key"
"s3.secret-access-key" = "$secret_key"

[rate_limit]
enabled = false

[audit]
sink = "none"
EOF
    port="$(free_port "$iceberg_first_port")"
    echo "$port" >"$dir/iceberg.port"
    NO_COLOR=1 setsid "$rustberg_bin" --dev --no-auth --insecure-http --log-level info \
        --host 127.0.0.1 --port "$port" \
        --catalog-url "file://$dir/catalog" \
        --config "$dir/rustberg.toml" \
        >"$dir/iceberg.log" 2>&1 8>&- &
    echo $! >"$dir/iceberg.pid"
    say "waiting for rustberg on 127.0.0.1:$port"
    wait_for rustberg "$dir/iceberg.pid" "$dir/iceberg.log" iceberg_answers
    print_env
}

case "${1:-start}" in
  start) start ;;
  status) answers ;;
  env)
    if ! answers; then say "not running (scripts/lakehouse.sh start)"; exit 1; fi
    print_env
    ;;
  stop) stop ;;
  *) say "usage: scripts/lakehouse.sh [start|status|env|stop]"; exit 2 ;;
esac
