#!/usr/bin/env bash
# Lineage benchmark with a client nobody here wrote: OpenLineage's own Python client
# (openlineage-python, the venv of scripts/python-env.sh lineage) posts RunEvents to a real
# `olo serve` (release build) from several processes and threads, then asks for depth-5 graphs
# (bench/lineage_load.py). Run once on a SQLite state store and once on PostgreSQL
# (scripts/postgres.sh: a throwaway server, started with fsync=off), each on a fresh store, with
# an API token configured (events carry it, as a deployment with tokens would).
# The client shares the machine with the daemon; the machine is described first.
#
#   scripts/bench-lineage.sh [--events N] [--processes P] [--threads T] [--queries Q] [--gzip]
#                            [--backends "sqlite postgres"]
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"

backends="sqlite postgres"
args=()
while [ $# -gt 0 ]; do
    case "$1" in
        --backends) backends="$2"; shift 2 ;;
        -h|--help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) args+=("$1"); shift ;;
    esac
done

# shellcheck source=scripts/cargo-env.sh disable=SC1091
. scripts/cargo-env.sh
cargo build --release -q --bin olo
python="$(scripts/python-env.sh lineage)/bin/python"

echo "machine: $(nproc) CPUs ($(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)), $(awk '/^MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo) memory, $(uname -sr)"
echo "olo $(git rev-parse --short HEAD); openlineage-python $("$python" -c 'import importlib.metadata as m; print(m.version("openlineage-python"))')"

work="$(mktemp -d)"
pid=""
cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

token="olo-bench-lineage-$(od -An -N8 -tx8 /dev/urandom | tr -d ' ')"
sha="$(printf '%s' "$token" | sha256sum | cut -d' ' -f1)"

for backend in $backends; do
    state="$work/$backend"
    mkdir -p "$state"
    cat >"$state/olo.toml" <<EOF
[source]
path = "$root/examples-repo"
poll_seconds = 3600

[state]
dir = "$state"

[server]
listen = "127.0.0.1:0"

[[api.tokens]]
name = "bench"
sha256 = "$sha"
EOF
    if [ "$backend" = postgres ]; then
        admin="$(scripts/postgres.sh start)"
        psql="$(dirname "$(ls -1 /usr/lib/postgresql/*/bin/psql | sort -V | tail -n 1)")/psql"
        "$psql" -q "$admin" -c "DROP DATABASE IF EXISTS olo_bench_lineage" -c "CREATE DATABASE olo_bench_lineage"
        sed -i "s|^dir = .*|&\ndatabase = \"${admin%/*}/olo_bench_lineage\"|" "$state/olo.toml"
    fi
    env -u OLO_CONFIG target/release/olo serve --config "$state/olo.toml" >"$state/serve.log" 2>&1 &
    pid=$!
    base=""
    for _ in $(seq 1 600); do
        base="$(sed -n 's/.*listening on \([^ ]*\).*/\1/p' "$state/serve.log" | head -n 1)"
        if [ -n "$base" ] && curl -fsS "$base/readyz" >/dev/null 2>&1; then
            break
        fi
        kill -0 "$pid" 2>/dev/null || { cat "$state/serve.log" >&2; exit 1; }
        sleep 0.1
    done
    [ -n "$base" ] || { echo "olo serve did not start:" >&2; tail -n 30 "$state/serve.log" >&2; exit 1; }
    echo "== $backend: olo serve at $base"
    cpu_before="$(awk '{print $14 + $15}' "/proc/$pid/stat")"
    "$python" bench/lineage_load.py "$base" "$token" "${args[@]}"
    # olo's own CPU time over the run (ingest and queries), beside the client's in the JSON.
    cpu_after="$(awk '{print $14 + $15}' "/proc/$pid/stat")"
    echo "olo serve CPU over the run: $(awk -v a="$cpu_before" -v b="$cpu_after" -v hz="$(getconf CLK_TCK)" 'BEGIN {printf "%.1f s", (b - a) / hz}')"
    kill "$pid"
    wait "$pid" 2>/dev/null || true
    pid=""
done
