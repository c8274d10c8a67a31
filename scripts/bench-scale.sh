#!/usr/bin/env bash
# How a reconcile's cost grows with the repository: for each size, the daemon (`olo serve`,
# release build, SQLite state store) follows a generated repository of WORKSPACES workspaces of
# 100 jobs; after its cold reconcile, COMMITS commits each change one job (a different job of a
# different workspace each time). Printed per size and build: the cold reconcile (olo's own time
# and its phases), the peak RSS of the daemon, and olo's own time of the one-job reconciles
# (median, 90th percentile, max) with the phases of the median one. olo's own time is what the
# daemon prints ("Ready (...) in N ms"): from reading the commit to the recorded outcome.
#
#   scripts/bench-scale.sh [WORKSPACES...]      (default: 10 100 1000 = 1,000, 10,000, 100,000 jobs)
#
# OLO_BENCH_OLD=PATH also measures an older build of `olo` (A/B: the two builds take turns on
# the same repository, in ABBA order over ROUNDS rounds, since this machine is noisy).
# COMMITS (default 10) and ROUNDS (default 2) set the number of one-job commits and of rounds.
# The state and DAG folders go to TMPDIR (TMPDIR=/dev/shm keeps the disk out of the figures).
set -euo pipefail
cd "$(dirname "$0")/.."
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(10 100 1000)
commits="${COMMITS:-10}"
rounds="${ROUNDS:-2}"
echo "building the release binaries..." >&2
# The same flags as the tests (scripts/cargo-env.sh), so that their build is reused.
# shellcheck source=scripts/cargo-env.sh
source scripts/cargo-env.sh
cargo build --release -q --workspace
new="$PWD/target/release/olo"
old="${OLO_BENCH_OLD:-}"
work="$(mktemp -d)"
serve_pid=""
trap '[ -n "$serve_pid" ] && kill -INT "$serve_pid" 2>/dev/null; rm -rf "$work"' EXIT

git_as_bench() { git -c user.name=Bench -c user.email=bench@example.com "$@"; }

# wait_ready LOG N: until the daemon logged N reconciles ("took:" follows each Ready line).
wait_ready() {
  for _ in $(seq 1 3000); do
    [ "$(grep -c ': took: ' "$1" || true)" -ge "$2" ] && return 0
    grep -q 'Stalled\|panicked' "$1" && { cat "$1" >&2; exit 1; }
    sleep 0.1
  done
  echo "timed out waiting for reconcile $2" >&2
  cat "$1" >&2
  exit 1
}

# The time of the last Ready line of LOG, in ms.
last_ms() { grep ': Ready' "$1" | tail -1 | sed 's/.* in \([0-9.]*\) ms.*/\1/'; }

# run BIN LABEL REPO WS: one daemon run; appends "LABEL WS cold|one MS" lines to $work/results.
run() {
  local bin="$1" label="$2" origin="$3" ws="$4"
  local repo="$work/run-repo" state="$work/run-state" log="$work/serve.log"
  rm -rf "$repo" "$state"
  git clone -q --local "$origin" "$repo"
  git -C "$repo" config gc.auto 0
  OLO_SOURCE__PATH="$repo" OLO_STATE__DIR="$state" OLO_SOURCE__POLL_SECONDS=1 \
    OLO_SERVER__LISTEN=127.0.0.1:0 "$bin" serve 2>"$log" &
  serve_pid=$!
  wait_ready "$log" 1
  local rss
  rss="$(awk '/VmHWM/ {printf "%d", $2/1024}' "/proc/$serve_pid/status")"
  echo "$label $ws cold $(last_ms "$log") $rss $(grep ': took: ' "$log" | tail -1 | sed 's/.*took: //; s/ phases=.*//')" >>"$work/results"
  for n in $(seq 1 "$commits"); do
    # A different job of a different workspace each time.
    local f
    f="$(printf "%s/workspaces/ws%04d/jobs/job%05d.yaml" "$repo" $(((n * 7) % ws)) $((n % 100)))"
    sed -i "s/^  description: Synthetic job \(job[0-9]*\)\..*/  description: Synthetic job \1. v$n/" "$f"
    git_as_bench -C "$repo" commit -qam "change one job ($n)"
    wait_ready "$log" $((n + 1))
    echo "$label $ws one $(last_ms "$log") 0 $(grep ': took: ' "$log" | tail -1 | sed 's/.*took: //; s/ phases=.*//')" >>"$work/results"
  done
  rss="$(awk '/VmHWM/ {printf "%d", $2/1024}' "/proc/$serve_pid/status")"
  echo "$label $ws peak 0 $rss" >>"$work/results"
  kill -INT "$serve_pid" 2>/dev/null || true
  wait "$serve_pid" 2>/dev/null || true
  serve_pid=""
}

: >"$work/results"
for ws in "${sizes[@]}"; do
  origin="$work/repo-$ws"
  echo "generating $((ws * 100)) jobs..." >&2
  target/release/olo-synth --workspaces "$ws" --jobs 100 --out "$origin" 2>/dev/null
  git -C "$origin" init -q -b main
  git -C "$origin" config gc.auto 0
  git -C "$origin" add -A
  git_as_bench -C "$origin" commit -qm "generated"
  git -C "$origin" gc -q
  for round in $(seq 1 "$rounds"); do
    if [ -z "$old" ]; then
      order=(new)
    elif [ $((round % 2)) -eq 1 ]; then
      order=(new old)
    else
      order=(old new)
    fi
    for label in "${order[@]}"; do
      bin="$new"
      [ "$label" = old ] && bin="$old"
      echo "$((ws * 100)) jobs, round $round: $label" >&2
      run "$bin" "$label" "$origin" "$ws"
    done
  done
  rm -rf "$origin"
done

# The table: per size and build.
python3 - "$work/results" <<'EOF'
import statistics, sys
rows = [line.split(" ", 5) for line in open(sys.argv[1]).read().splitlines()]
def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]
print("| jobs | build | cold reconcile (ms) | peak RSS after cold / whole run (MiB) | one-job reconcile median / p90 / max (ms) | phases of the median one-job reconcile |")
print("|---|---|---|---|---|---|")
for ws in dict.fromkeys(r[1] for r in rows):
    for label in dict.fromkeys(r[0] for r in rows):
        mine = [r for r in rows if r[0] == label and r[1] == ws]
        if not mine:
            continue
        cold = [float(r[3]) for r in mine if r[2] == "cold"]
        rss_cold = [r[4] for r in mine if r[2] == "cold"]
        peak = [r[4] for r in mine if r[2] == "peak"]
        ones = sorted((float(r[3]), r[5] if len(r) > 5 else "") for r in mine if r[2] == "one")
        ms = [o[0] for o in ones]
        median = ones[len(ones) // 2]
        print(f"| {int(ws) * 100:,} | {label} | {' / '.join(f'{c:.0f}' for c in cold)} | "
              f"{' / '.join(rss_cold)} ; {' / '.join(peak)} | "
              f"{statistics.median(ms):.1f} / {pct(ms, 90):.1f} / {max(ms):.1f} | {median[1]} |")
EOF
