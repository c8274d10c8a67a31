#!/usr/bin/env bash
# Lineage benchmark with wrk as the load generator (issue 26: "wrk/oha with real event bodies"):
# wrk 4.1 (Debian's package, installed when missing) posts real OpenLineage RunEvents, built per
# request by bench/lineage_wrk.lua (openlineage-python's serialization; the example repository's
# jobs named as Airflow names them, and section 7's 100,000-edge graph; START then COMPLETE of
# each run; no duplicates), to a real `olo serve` (release build, the example repository as a local
# folder, an API token sent as `Authorization: Bearer`), then asks for depth-5 graphs around nodes
# those events made, one request at a time. A fresh store per run: SQLite (WAL) and PostgreSQL
# (scripts/postgres.sh: a throwaway server with fsync=off, or the one already running), the
# backends interleaved --rounds times because a shared machine is noisy. Prints per run wrk's
# events/s, latency percentiles, errors (responses outside 2xx) and duplicates, and the CPU time
# of olo, of wrk and of everything else on the machine over the measured window.
#
#   scripts/bench-lineage-wrk.sh [--threads 2] [--connections 32] [--duration 20s] [--warmup 5s]
#                                [--query-duration 10s] [--rounds 2] [--backends "sqlite postgres"]
#                                [--olo PATH]   (a release binary to use as is, e.g. a copy kept
#                                                apart from a target/ someone else rebuilds)
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"

threads=2
connections=32
duration=20s
warmup=5s
query_duration=10s
rounds=2
backends="sqlite postgres"
olo=""
while [ $# -gt 0 ]; do
    case "$1" in
        --threads) threads="$2"; shift 2 ;;
        --connections) connections="$2"; shift 2 ;;
        --duration) duration="$2"; shift 2 ;;
        --warmup) warmup="$2"; shift 2 ;;
        --query-duration) query_duration="$2"; shift 2 ;;
        --rounds) rounds="$2"; shift 2 ;;
        --backends) backends="$2"; shift 2 ;;
        --olo) olo="$(realpath "$2")"; shift 2 ;;
        -h|--help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
    esac
done

# wrk and jq from Debian, when missing.
missing=()
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
command -v jq >/dev/null 2>&1 || missing+=(jq)
if ((${#missing[@]})); then
    echo "installing Debian's ${missing[*]} (apt-get)" >&2
    sudo=""
    if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2 ||
        { $sudo apt-get update -qq >&2 && $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2; }
fi

# The release binary: built again only when a source is newer than it (cargo would say the same,
# but waiting for the build lock of someone else's build is avoided).
if [ -z "$olo" ]; then
    olo="$root/target/release/olo"
    newer=""
    if [ -x "$olo" ]; then
        newer="$(find Cargo.toml Cargo.lock src schema templates reconciler webhook \
            -newer "$olo" -type f -print -quit 2>/dev/null || true)"
    fi
    if [ ! -x "$olo" ] || [ -n "$newer" ]; then
        echo "building target/release/olo${newer:+ ($newer is newer)}" >&2
        # shellcheck source=scripts/cargo-env.sh disable=SC1091
        . scripts/cargo-env.sh
        CARGO_INCREMENTAL=0 nice -n 10 cargo build --release -q --bin olo
    fi
fi
[ -x "$olo" ] || { echo "no olo binary at $olo" >&2; exit 1; }

hz="$(getconf CLK_TCK)"
echo "machine: $(nproc) CPUs ($(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)), $(awk '/^MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo) memory, $(uname -sr)"
echo "olo: HEAD $(git describe --always --dirty), binary $olo of $(date -u -r "$olo" '+%Y-%m-%d %H:%M:%S UTC'); $(wrk --version 2>&1 | head -n 1 | awk '{print $1, $2}')"
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"

work="$(mktemp -d "${TMPDIR:-/tmp}/olo-bench-lineage-wrk.XXXXXX")"
pid=""
pg_started=""
pg_existed=""
cleanup() {
    if [ -n "$pid" ]; then
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    fi
    if [ -n "$pg_started" ]; then
        # The server was not running before: put it back as it was.
        if [ -n "$pg_existed" ]; then scripts/postgres.sh pause; else scripts/postgres.sh stop; fi
    fi
    rm -rf "$work"
}
trap cleanup EXIT

token="olo-bench-lineage-wrk-$(od -An -N8 -tx8 /dev/urandom | tr -d ' ')"
sha="$(printf '%s' "$token" | sha256sum | cut -d' ' -f1)"

# CPU ticks of a process (user + system).
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# Busy and total ticks of the whole machine.
machine() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8 + $9, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9}' /proc/stat; }

# olo's count of recorded events.
recorded() {
    curl -fsS "$1/metrics" | awk '/^olo_lineage_events_total\{result="recorded"\}/ {print $2}'
}

# Runs wrk; its output goes to $1, its CPU ticks (user + system, from the subshell's reaped
# children) to $1.cpu.
run_wrk() {
    local out="$1"
    shift
    (
        wrk "$@" >"$out" 2>&1
        awk '{print $16 + $17}' "/proc/$BASHPID/stat" >"$out.cpu"
    )
}

summary=()
seed=1
for round in $(seq 1 "$rounds"); do
    for backend in $backends; do
        state="$work/$backend-$round"
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
            if [ -z "$pg_started" ] && ! scripts/postgres.sh status; then
                pg_started=1
                if [ -d "${OLO_PG_DIR:-/tmp/olo-postgres}/data" ]; then pg_existed=1; fi
            fi
            admin="$(scripts/postgres.sh start)"
            psql="$(printf '%s\n' /usr/lib/postgresql/*/bin/psql | sort -V | tail -n 1)"
            "$psql" -q "$admin" -c "DROP DATABASE IF EXISTS olo_bench_lineage_wrk" \
                -c "CREATE DATABASE olo_bench_lineage_wrk"
            sed -i "s|^dir = .*|&\ndatabase = \"${admin%/*}/olo_bench_lineage_wrk\"|" "$state/olo.toml"
        fi
        env -u OLO_CONFIG "$olo" serve --config "$state/olo.toml" >"$state/serve.log" 2>&1 &
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
        # The first reconcile maps the example repository's names; wait until it is live.
        for _ in $(seq 1 300); do
            grep -q ': Ready (' "$state/serve.log" && break
            sleep 0.1
        done
        echo
        echo "== round $round, $backend: olo serve at $base (pid $pid)"

        export LINEAGE_WRK_TOKEN="$token" LINEAGE_WRK_THREADS="$threads"
        LINEAGE_WRK_SEED=$((seed++)) LINEAGE_WRK_BENCH_FIRST=0 run_wrk "$state/warmup.txt" \
            -t"$threads" -c"$connections" -d"$warmup" -s bench/lineage_wrk.lua "$base"
        echo "warm-up: $(sed -n 's/^wrk-result //p' "$state/warmup.txt" | jq -c '{requests, requests_per_second, non_2xx, duplicates}')"

        olo_before="$(ticks "$pid")"
        read -r busy_before total_before <<<"$(machine)"
        # A quarter of the events are a bench job's START or COMPLETE: go on from the next job.
        LINEAGE_WRK_SEED=$((seed++)) LINEAGE_WRK_BENCH_FIRST=$(($(recorded "$base") / 4)) \
            run_wrk "$state/ingest.txt" \
            -t"$threads" -c"$connections" -d"$duration" --latency -s bench/lineage_wrk.lua "$base"
        olo_after="$(ticks "$pid")"
        read -r busy_after total_after <<<"$(machine)"
        sed -n '/Thread Stats/,/Transfer/p' "$state/ingest.txt"
        ingest="$(sed -n 's/^wrk-result //p' "$state/ingest.txt")"
        cpu="$(awk -v o="$((olo_after - olo_before))" -v w="$(cat "$state/ingest.txt.cpu")" \
            -v b="$((busy_after - busy_before))" -v t="$((total_after - total_before))" -v hz="$hz" \
            -v n="$(nproc)" 'BEGIN {
                printf "{\"olo_cpu_s\": %.1f, \"wrk_cpu_s\": %.1f, \"other_cpu_s\": %.1f, \"machine_busy_pct\": %.0f}",
                    o / hz, w / hz, (b - o - w) / hz, 100 * b / t }')"
        echo "ingest: $ingest"
        echo "cpu over the measured window: $cpu"
        echo "olo's counters: $(curl -fsS "$base/metrics" | grep '^olo_lineage_events_total' | tr '\n' ' ')"

        # Depth-5 graph queries, one connection, one request at a time: around olo's own job (the
        # example repository's, mapped from the events), its gold table, and 7 bench jobs spread
        # over those of the 100,000-edge graph posted by then (a quarter of the events are a bench
        # job's START or COMPLETE; 25,000 bench jobs in all).
        posted=$(($(recorded "$base") / 4 - 2))
        if [ "$posted" -gt 25000 ]; then posted=25000; fi
        nodes="job:sales:orders_daily,dataset:sales:gold.revenue"
        for i in 1 2 3 4 5 6 7; do nodes="$nodes,job:default:bench.job$((posted * i / 8))"; done
        sizes=""
        for node in ${nodes//,/ }; do
            size="$(curl -fsS -H "Authorization: Bearer $token" \
                "$base/api/v1/lineage?nodeId=$node&depth=5" | jq '.graph | length')"
            sizes="$sizes $size"
        done
        echo "depth-5 answers (nodes) for $nodes:$sizes"
        LINEAGE_WRK_MODE=query LINEAGE_WRK_NODES="$nodes" LINEAGE_WRK_THREADS=1 run_wrk \
            "$state/query.txt" -t1 -c1 -d"$query_duration" --latency -s bench/lineage_wrk.lua "$base"
        query="$(sed -n 's/^wrk-result //p' "$state/query.txt")"
        echo "depth-5 queries: $query"

        summary+=("$(jq -rn --arg b "$backend" --arg r "$round" --argjson i "$ingest" \
            --argjson c "$cpu" --argjson q "$query" --arg sizes "$sizes" \
            '"| \($r) | \($b) | **\($i.requests_per_second | round)** | \($i.non_2xx) / \($i.duplicates) | \($i.p50_ms) / \($i.p90_ms) / \($i.p99_ms) ms | \($c.olo_cpu_s) s | \($c.wrk_cpu_s) s | \($c.other_cpu_s) s (\($c.machine_busy_pct)% busy) | \($q.p50_ms) / \($q.p99_ms) ms (\($q.requests) queries, \($q.non_2xx) errors; nodes\($sizes)) |"')")

        kill "$pid"
        wait "$pid" 2>/dev/null || true
        pid=""
        if [ "$backend" = postgres ]; then
            "$psql" -q "$admin" -c "DROP DATABASE IF EXISTS olo_bench_lineage_wrk"
        fi
    done
done

echo
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| round | backend | events/s | non-2xx / duplicates | latency p50 / p90 / p99 | olo CPU | wrk CPU | rest of the machine | depth-5 p50 / p99 |"
echo "|--:|---|--:|---|---|--:|--:|--:|---|"
printf '%s\n' "${summary[@]}"
