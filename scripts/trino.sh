#!/usr/bin/env bash
# A throwaway Trino for the tests, on 127.0.0.1, with the layout olo's rendered files expect.
#
#   scripts/trino.sh [start]   start it (or reuse the one running); prints `export ...` lines
#   scripts/trino.sh install   only download and install it (cached)
#   scripts/trino.sh status    exit 0 when it answers and has finished starting
#   scripts/trino.sh url       print its URL (fails when it is not running)
#   scripts/trino.sh stop      stop it and delete its folder (the download cache stays)
#   scripts/trino.sh pause     stop it and keep its folder: the next start carries on with the
#                              catalogs and rules olo wrote (local-stack.sh)
#
# test.sh: eval "$(scripts/trino.sh start)". Only the export lines go to stdout.
#
# Trino 476 from Maven Central: the server core (io.trino:trino-server-core, 194 MB) plus the only
# connector olo renders catalogs for (io.trino:trino-iceberg, 346 MB), instead of the full server
# (821 MB); each file is checked against the .sha1 Maven publishes beside it. Installed once into
# $OLO_CACHE/tools/trino-476 (OLO_CACHE defaults to ~/.cache/olo); concurrent starts wait on a
# lock instead of downloading twice. Trino 476 needs Java 24 or newer: JAVA_HOME defaults to the
# Temurin 25 JDK (${OLO_TRINO_JAVA_HOME:-/usr/lib/jvm/temurin-25-jdk-amd64}). The JVM gets 1 GB of
# heap: it shares the machine with Airflow, PostgreSQL and Spark.
#
# Configuration (in ${OLO_TRINO_DIR:-/tmp/olo-trino}; port: the first free one from
# ${OLO_TRINO_PORT:-28120}):
#   - olo/ is laid out as olo's `apply.trino_folder`: olo/catalog/<catalog>.properties and
#     olo/rules.json, so a test's `olo apply` with OLO_APPLY__TRINO_FOLDER=$OLO_TEST_TRINO_FOLDER
#     writes the files this Trino reads;
#   - catalogs: `catalog.management=dynamic` with the file store in olo/catalog, so the catalog
#     files there are loaded at start and `CREATE CATALOG` / `DROP CATALOG` (olo's
#     `trino.catalogs = "dynamic"`) work;
#   - file-based access control from olo/rules.json, re-read every second; until olo writes one,
#     rules that allow everything and let the user `olo` create and drop catalogs;
#   - a file group provider (group.txt, re-read every second) putting the test users into the
#     groups of the example repository (examples-repo): pat data-platform, sam sales-eng,
#     ann analysts, mo marketing-eng, mia marketing, eve interns (tests/trino_e2e.rs);
#   - the catalogs' `${ENV:OLO_S3_ACCESS_KEY}` / `${ENV:OLO_S3_SECRET_KEY}` references resolve to
#     the keys of scripts/lakehouse.sh's S3 server (its `env` is read at start; a running Trino is
#     reused only while those match).
set -euo pipefail
cd "$(dirname "$0")/.."

version=476
dir="${OLO_TRINO_DIR:-/tmp/olo-trino}"
cache="${OLO_CACHE:-$HOME/.cache/olo}"
first_port="${OLO_TRINO_PORT:-28120}"
java_home="${OLO_TRINO_JAVA_HOME:-/usr/lib/jvm/temurin-25-jdk-amd64}"
root="$cache/tools/trino-$version"
maven=https://repo1.maven.org/maven2/io/trino

say() { echo "trino.sh: $*" >&2; }

# --- install ------------------------------------------------------------------------------------

# fetch URL FILE: download URL to FILE and check it against URL.sha1; exits on any failure.
fetch() {
    local url="$1" file="$2" want got
    if ! want="$(curl -fsSL --retry 3 "$url.sha1")"; then
        say "could not download $url.sha1 (is Maven Central reachable?)"
        exit 1
    fi
    want="${want%% *}"
    if ! curl -fsSL --retry 3 -o "$file.part" "$url"; then
        say "could not download $url"
        rm -f "$file.part"
        exit 1
    fi
    got="$(sha1sum "$file.part" | cut -d' ' -f1)"
    if [ "$got" != "$want" ]; then
        say "$url: SHA-1 $got, but Maven Central publishes $want; not installing it"
        rm -f "$file.part"
        exit 1
    fi
    mv "$file.part" "$file"
}

install() {
    [ -f "$root/.installed" ] && return 0
    mkdir -p "$cache/tools"
    # One installer at a time, across concurrent runs of this script.
    exec 9>"$cache/tools/.trino-$version.lock"
    flock 9
    if [ ! -f "$root/.installed" ]; then
        local tmp="$cache/tools/.trino-$version.tmp"
        rm -rf "$tmp" "$root"
        mkdir -p "$tmp"
        say "installing Trino $version from Maven Central (first run only, ~560 MB)"
        fetch "$maven/trino-server-core/$version/trino-server-core-$version.tar.gz" "$tmp/server.tar.gz"
        fetch "$maven/trino-iceberg/$version/trino-iceberg-$version.zip" "$tmp/iceberg.zip"
        fetch "$maven/trino-cli/$version/trino-cli-$version-executable.jar" "$tmp/trino-cli.jar"
        tar -xzf "$tmp/server.tar.gz" -C "$tmp"
        mv "$tmp/trino-server-core-$version" "$tmp/server"
        (cd "$tmp" && python3 -m zipfile -e iceberg.zip plugins)
        mv "$tmp/plugins/trino-iceberg-$version" "$tmp/server/plugin/iceberg"
        mv "$tmp/trino-cli.jar" "$tmp/server/bin/trino-cli.jar"
        rm -rf "$tmp/server.tar.gz" "$tmp/iceberg.zip" "$tmp/plugins"
        mv "$tmp/server" "$root"
        rmdir "$tmp"
        touch "$root/.installed"
    fi
    exec 9>&-
}

# --- helpers -------------------------------------------------------------------------------------

# shellcheck source=scripts/ports.sh disable=SC1091
. "$(dirname "${BASH_SOURCE[0]}")/ports.sh"

port_of() { cat "$dir/port" 2>/dev/null; }

# Answers, and has finished starting (GET /v1/info: "starting": false).
answers() {
    local port
    port="$(port_of)" || return 1
    [ -n "$port" ] || return 1
    curl -fsS "http://127.0.0.1:$port/v1/info" 2>/dev/null | grep -q '"starting":false'
}

print_env() {
    echo "export OLO_TEST_TRINO_URL=http://127.0.0.1:$(port_of)"
    echo "export OLO_TEST_TRINO_FOLDER=$dir/olo"
    echo "export OLO_TEST_TRINO_CLI=$root/bin/trino-cli.jar"
    echo "export OLO_TEST_TRINO_JAVA=$java_home/bin/java"
}

# Stops the server (the folder stays).
halt() {
    local pid
    if [ -f "$dir/pid" ]; then
        pid="$(cat "$dir/pid")"
        # Started in its own process group: stop the group.
        kill -TERM -- "-$pid" 2>/dev/null || true
        for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
        kill -KILL -- "-$pid" 2>/dev/null || true
        rm -f "$dir/pid"
    fi
}

stop() {
    halt
    rm -rf "$dir"
}

# Stops it and marks the folder as kept: start no longer clears it (olo's catalogs and rules).
pause() {
    halt
    if [ -d "$dir" ]; then touch "$dir/kept"; fi
}

# The S3 keys the rendered catalogs reference, from the running lakehouse.
lakehouse_env() {
    if ! scripts/lakehouse.sh env 2>/dev/null; then
        say "the lakehouse is not running: start it first (scripts/lakehouse.sh start)"
        exit 1
    fi
}

write_config() {
    local port="$1"
    mkdir -p "$dir/etc" "$dir/data" "$dir/olo/catalog"
    cat >"$dir/etc/node.properties" <<EOF
node.environment=olo_test
node.id=olo-test
node.data-dir=$dir/data
EOF
    cat >"$dir/etc/jvm.config" <<EOF
-server
-Xmx1G
-XX:+UseG1GC
-XX:+ExplicitGCInvokesConcurrent
-XX:+ExitOnOutOfMemoryError
-XX:-OmitStackTraceInFastThrow
-XX:ReservedCodeCacheSize=150M
-XX:+EnableDynamicAgentLoading
-Djdk.attach.allowAttachSelf=true
-Dfile.encoding=UTF-8
EOF
    cat >"$dir/etc/config.properties" <<EOF
coordinator=true
node-scheduler.include-coordinator=true
http-server.http.port=$port
discovery.uri=http://127.0.0.1:$port
query.max-memory=512MB
query.max-memory-per-node=512MB
catalog.management=dynamic
catalog.store=file
EOF
    # The file catalog store reads and writes etc/catalog: that is olo's catalog folder.
    ln -sfn "$dir/olo/catalog" "$dir/etc/catalog"
    cat >"$dir/etc/access-control.properties" <<EOF
access-control.name=file
security.config-file=$dir/olo/rules.json
security.refresh-period=1s
EOF
    cat >"$dir/etc/group-provider.properties" <<EOF
group-provider.name=file
file.group-file=$dir/etc/group.txt
file.refresh-period=1s
EOF
    # The example repository's groups (examples-repo/olo.yaml, workspaces/*/workspace.yaml).
    cat >"$dir/etc/group.txt" <<EOF
data-platform:pat
sales-eng:sam
analysts:ann
marketing-eng:mo
marketing:mia
interns:eve
EOF
    cat >"$dir/etc/log.properties" <<EOF
io.trino=INFO
EOF
    # Until olo writes its rules: everyone may do anything, and olo's catalog user (`olo`, the
    # default trino.catalog_user) may create and drop catalogs (no rule at all would deny that).
    [ -f "$dir/olo/rules.json" ] ||
        echo '{"catalogs": [{"user": "olo", "allow": "owner"}, {"allow": "all"}]}' >"$dir/olo/rules.json"
}

# --- start ---------------------------------------------------------------------------------------

start() {
    local lakehouse
    lakehouse="$(lakehouse_env)"
    # Reuse a running Trino only when its catalogs reach the lakehouse that runs now.
    if answers && [ "$(cat "$dir/lakehouse" 2>/dev/null)" = "$lakehouse" ]; then
        print_env
        return
    fi
    if [ -f "$dir/kept" ]; then
        say "carrying on with the paused Trino in $dir (scripts/trino.sh stop deletes it)"
        halt
    else
        stop
    fi
    install
    [ -x "$java_home/bin/java" ] || { say "no Java at $java_home (Trino $version needs Java 24+; set OLO_TRINO_JAVA_HOME)"; exit 1; }
    local port
    port="$(free_port "$first_port")"
    write_config "$port"
    echo "$port" >"$dir/port"
    echo "$lakehouse" >"$dir/lakehouse"
    local s3_key s3_secret
    s3_key="$(sed -n 's/^export OLO_TEST_S3_ACCESS_KEY=//p' <<<"$lakehouse")"
    s3_secret="$(sed -n 's/^export OLO_TEST_S3_SECRET_KEY=//p' <<<"$lakehouse")"
    JAVA_HOME="$java_home" PATH="$java_home/bin:$PATH" \
        OLO_S3_ACCESS_KEY="$s3_key" OLO_S3_SECRET_KEY="$s3_secret" \
        setsid "$root/bin/launcher" run --etc-dir "$dir/etc" --data-dir "$dir/data" \
        >"$dir/server.log" 2>&1 &
    echo $! >"$dir/pid"
    say "waiting for Trino $version on 127.0.0.1:$port"
    for _ in $(seq 1 240); do
        if answers; then
            print_env
            return
        fi
        if ! kill -0 "$(cat "$dir/pid")" 2>/dev/null; then
            say "Trino exited; the end of its log ($dir/server.log):"
            tail -n 60 "$dir/server.log" >&2
            exit 1
        fi
        sleep 0.5
    done
    say "Trino did not finish starting within 120 s; the end of its log ($dir/server.log):"
    tail -n 60 "$dir/server.log" >&2
    stop
    exit 1
}

case "${1:-start}" in
  start) start ;;
  install) install ;;
  status) answers ;;
  url)
    if ! answers; then say "not running (scripts/trino.sh start)"; exit 1; fi
    echo "http://127.0.0.1:$(port_of)"
    ;;
  stop) stop ;;
  pause) pause ;;
  *) say "usage: scripts/trino.sh [start|install|status|url|stop|pause]"; exit 2 ;;
esac
