#!/usr/bin/env bash
# Commit -> live in Airflow: how long after a commit that changes one job of a generated
# 1,000-job repository Airflow's API shows the new version of its DAG, with olo's parse request
# (`[airflow] reparse = true`) and without it, interleaved A/B (on, off, on, off, ...).
#
#   scripts/bench-airflow-live.sh [CHANGES_PER_ARM] [WORKSPACES] [JOBS_PER_WORKSPACE]
#                                                                 (default 20 10 100)
#
# An Airflow 3.3 of its own (scripts/airflow.sh in a folder of its own, port from 28280:
# it does not touch the test instance), with Airflow's DEFAULT intervals
# ([dag_processor] refresh_interval 300 s, min_file_process_interval 30 s, file_parsing_sort_mode
# modified_time, parsing_processes 2), its API server and DAG processor (no scheduler: parsing
# is the DAG processor's alone). It starts on the DAG files of the whole repository (written by
# `olo apply` without Airflow) and the changes begin once it has parsed them all.
#
# Each change: `olo serve` (restarted with the arm's `reparse`, then Ready, before the clock
# starts) tracks the repository with a 1 s poll; the clock starts at `git commit` of a new
# description of one job (a different job each time), and stops when GET /api/v2/dags/{id}
# answers that description, i.e. when Airflow has parsed and serialized the new file. Polled
# every 100 ms.
#
# OLO_BENCH_PROFILE=debug uses the binaries of the test build (target/debug, as
# `cargo test --workspace` left them; not rebuilt here) instead of a release build. OLO_BENCH_KEEP=1 keeps the work folder (logs, Airflow's logs, raw figures).
set -euo pipefail
cd "$(dirname "$0")/.."
per_arm="${1:-20}"; ws="${2:-10}"; jobs="${3:-100}"
profile="${OLO_BENCH_PROFILE:-release}"
if [ "$profile" = release ]; then
    # The same flags as the tests (scripts/cargo-env.sh), so that their build is reused.
    # shellcheck source=scripts/cargo-env.sh
    source scripts/cargo-env.sh
    cargo build --release -q --workspace
fi
bin="target/$profile"
say() { echo "bench-airflow-live: $*" >&2; }

# OLO_BENCH_WORK=DIR reuses the work folder of a kept run (OLO_BENCH_KEEP=1), its repository,
# state and DAG files, and its Airflow if it still runs (scripts/airflow.sh reuses an instance
# started with the same settings).
work="${OLO_BENCH_WORK:-$(mktemp -d)}"; serve_pid=""
airflow_env=(
    OLO_AIRFLOW_DIR="$work/airflow"
    OLO_AIRFLOW_PORT="${OLO_BENCH_AIRFLOW_PORT:-28280}"
    OLO_AIRFLOW_DAGS="$work/dags"
    OLO_AIRFLOW_REFRESH_INTERVAL=airflow
    OLO_AIRFLOW_MIN_FILE_PROCESS_INTERVAL=airflow
    OLO_AIRFLOW_COMPONENTS="api-server dag-processor"
)
airflow() { env "${airflow_env[@]}" scripts/airflow.sh "$@"; }
stop_serve() {
    if [ -n "$serve_pid" ]; then
        kill -INT "$serve_pid" 2>/dev/null || true
        wait "$serve_pid" 2>/dev/null || true
        serve_pid=""
    fi
}
cleanup() {
    stop_serve
    airflow stop || true
    if [ "${OLO_BENCH_KEEP:-0}" = 1 ]; then say "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

echo "machine: $(nproc) CPUs ($(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)), $(awk '/^MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo) memory, $(uname -sr)"
echo "load before start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "olo: $profile build of $(git rev-parse --short HEAD)$(git diff --quiet || echo ' (with local changes)')"

repo="$work/repo"; state="$work/state"; mkdir -p "$work/dags"
fresh=0
if [ ! -d "$repo" ]; then
    fresh=1
    "$bin/olo-synth" --workspaces "$ws" --jobs "$jobs" --out "$repo" 2>/dev/null
    git -C "$repo" init -q -b main
    git -C "$repo" config gc.auto 0
    git -C "$repo" add -A
    git -C "$repo" -c user.name=Bench -c user.email=bench@example.com commit -qm "generated"
fi
total="$(find "$repo"/workspaces -path '*/jobs/*.yaml' | wc -l)"

olo_env=(
    OLO_SOURCE__PATH="$repo" OLO_STATE__DIR="$state" OLO_SOURCE__POLL_SECONDS=1
    OLO_SERVER__LISTEN=127.0.0.1:0 OLO_APPLY__DAGS_FOLDER="$work/dags"
)
if [ "$fresh" = 1 ]; then
    say "writing the $total DAG files (olo apply, no Airflow yet)"
    env "${olo_env[@]}" "$bin/olo" apply >/dev/null 2>"$work/apply.log"
fi

say "starting Airflow with its default intervals"
started="$(airflow start)"
url="${started%% *}"
password="$(airflow password)"
echo "airflow: $("$(scripts/python-env.sh airflow)/bin/python" -c 'import airflow; print(airflow.__version__)') at $url, its own intervals (refresh_interval, min_file_process_interval unset)"

# A small client of Airflow's API: `wait_all N` until N DAGs are known; `wait_description DAG
# TEXT T0_NS` until the DAG's description is TEXT, printing seconds since T0_NS.
cat >"$work/probe.py" <<'PY'
import json, sys, time, urllib.request
url, password, what = sys.argv[1], sys.argv[2], sys.argv[3]
def token():
    req = urllib.request.Request(url + "/auth/token", data=json.dumps({"username": "admin", "password": password}).encode(), headers={"Content-Type": "application/json"})
    return json.load(urllib.request.urlopen(req))["access_token"]
bearer = token()
def get(path):
    req = urllib.request.Request(url + "/api/v2/" + path, headers={"Authorization": "Bearer " + bearer})
    return json.load(urllib.request.urlopen(req, timeout=30))
if what == "wait_all":
    want, deadline = int(sys.argv[4]), time.time() + 3600
    while get("dags?limit=1")["total_entries"] < want:
        if time.time() > deadline:
            sys.exit("Airflow did not parse every DAG within an hour")
        time.sleep(2)
elif what == "wait_description":
    dag, text, t0 = sys.argv[4], sys.argv[5], int(sys.argv[6])
    deadline = t0 / 1e9 + 900
    while get("dags/" + dag).get("description") != text:
        if time.time() > deadline:
            sys.exit(f"{dag}: not live within 900 s")
        time.sleep(0.1)
    print(f"{(time.time_ns() - t0) / 1e9:.3f}")
PY
probe() { "$(scripts/python-env.sh airflow)/bin/python" "$work/probe.py" "$url" "$password" "$@"; }
t_parse=$(date +%s)
probe wait_all "$total"
echo "first parse of all $total DAG files by Airflow: $(( $(date +%s) - t_parse )) s"

start_serve() { # $1: reparse true|false
    # Emptied here, before the daemon starts, so that no line of the previous one is counted.
    : >"$work/serve.log"
    env "${olo_env[@]}" OLO_AIRFLOW__URL="$url" OLO_AIRFLOW__PASSWORD_ENV=BENCH_AIRFLOW_PASSWORD \
        BENCH_AIRFLOW_PASSWORD="$password" OLO_AIRFLOW__REPARSE="$1" \
        OLO_AIRFLOW__PARSE_TIMEOUT_SECONDS=900 "$bin/olo" serve 2>>"$work/serve.log" &
    serve_pid=$!
}
ready_count() { grep -c ' took: ' "$work/serve.log" || true; }
wait_ready() { # $1: how many reconciles (Ready lines) the running daemon has done
    for _ in $(seq 1 9000); do
        [ "$(ready_count)" -ge "$1" ] && return 0
        sleep 0.1
    done
    say "olo did not become Ready"; cat "$work/serve.log" >&2; exit 1
}

mapfile -t files < <(find "$repo"/workspaces -path '*/jobs/*.yaml' | shuf --random-source=<(yes))
: >"$work/on.txt"; : >"$work/off.txt"
n="$(git -C "$repo" rev-list --count HEAD)"
for i in $(seq 1 "$per_arm"); do
    for arm in on off; do
        n=$((n + 1))
        stop_serve
        start_serve "$([ "$arm" = on ] && echo true || echo false)"
        # Its first reconcile: nothing changed since the last one.
        wait_ready 1
        file="${files[$n]}"
        job="$(basename "$file" .yaml)"; wsname="$(basename "$(dirname "$(dirname "$file")")")"
        dag="${wsname}__${job}"
        sed -i "s/^  description: Synthetic job \(job[0-9]*\)\..*/  description: Synthetic job \1. change $n/" "$file"
        text="$(sed -n 's/^  description: \(Synthetic job .*\)$/\1/p' "$file")"
        t0=$(date +%s%N)
        git -C "$repo" -c user.name=Bench -c user.email=bench@example.com commit -qam "change $n: $dag ($arm)"
        s="$(probe wait_description "$dag" "$text" "$t0")"
        echo "$s" >>"$work/$arm.txt"
        printf '%3d %-3s %-24s %8s s\n' "$n" "$arm" "$dag" "$s"
        # The daemon's check of that apply ends (Ready) before the next change.
        wait_ready 2
    done
done
stop_serve

summary() { # $1: arm
    sort -n "$work/$1.txt" | awk -v arm="$1" '{ v[NR] = $1 } END {
        n = NR
        i50 = int(0.5 * n + 0.5); if (i50 < 1) i50 = 1
        i99 = int(0.99 * n + 0.999); if (i99 > n) i99 = n
        printf "reparse %-3s n=%d  p50 %.1f s  p99 %.1f s  min %.1f s  max %.1f s\n", arm, n, v[i50], v[i99], v[1], v[n]
    }'
}
echo
summary on
summary off
echo "load after the run: $(cut -d' ' -f1-3 /proc/loadavg)"
