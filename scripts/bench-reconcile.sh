#!/usr/bin/env bash
# Reconcile benchmark: a cold full reconcile of a generated 10,000-job repository, then
# incremental reconciles after commits that change 1, 10, 100 and 1,000 jobs, measured by the
# daemon itself (`olo serve` prints "Ready (...) in N ms" for each reconcile: olo's own time,
# from reading the commit to the recorded outcome). Peak memory of the daemon from /usr/bin/time.
#
#   scripts/bench-reconcile.sh [WORKSPACES] [JOBS_PER_WORKSPACE]     (default 100 100)
#
# OLO_BENCH_BIN=PATH measures another build of `olo` (an older commit, for an A/B run) instead
# of this checkout's release build.
#
# After each figure comes the daemon's "took:" line: the time of each phase of that reconcile.
set -euo pipefail
cd "$(dirname "$0")/.."
ws="${1:-100}"; jobs="${2:-100}"
# The same flags as the tests (scripts/cargo-env.sh), so that their build is reused.
# shellcheck source=scripts/cargo-env.sh
source scripts/cargo-env.sh
cargo build --release -q --workspace
olo="${OLO_BENCH_BIN:-target/release/olo}"
work="$(mktemp -d)"; serve_pid=""
trap '[ -n "$serve_pid" ] && pkill -INT -P "$serve_pid" 2>/dev/null; rm -rf "$work"' EXIT
repo="$work/repo"; state="$work/state"; log="$work/serve.log"
target/release/olo-synth --workspaces "$ws" --jobs "$jobs" --out "$repo" 2>/dev/null
git -C "$repo" init -q -b main
# No background `git gc --auto` (which the first commit of 10,000 files starts) competing with
# the daemon for the 2 cores; the repository is packed once, as a clone would be.
git -C "$repo" config gc.auto 0
git -C "$repo" add -A
git -C "$repo" -c user.name=Bench -c user.email=bench@example.com commit -qm "generated"
git -C "$repo" gc -q

OLO_SOURCE__PATH="$repo" OLO_STATE__DIR="$state" OLO_SOURCE__POLL_SECONDS=1 OLO_SERVER__LISTEN=127.0.0.1:0 \
  /usr/bin/time -v -o "$work/time.txt" "$olo" serve 2>"$log" &
serve_pid=$!
wait_ready() { # $1: how many Ready lines to wait for
  for _ in $(seq 1 600); do
    # "took:" (the time of each phase) is printed right after each "Ready" line.
    [ "$(grep -c ': took: ' "$log" || true)" -ge "$1" ] && return 0
    sleep 0.2
  done
  echo "timed out waiting for reconcile $1" >&2; cat "$log" >&2; exit 1
}
wait_ready 1
echo "cold full reconcile ($((ws * jobs)) jobs): $(grep ': Ready' "$log" | tail -1 | sed 's/.* in //')"
grep ": took: " "$log" | tail -1 | sed 's/.*took: //; s/ phases=.*//' 
# VmHWM: the daemon's peak RSS so far (olo runs as the child of /usr/bin/time).
olo_pid="$(pgrep -P "$serve_pid" | head -1)"
echo "peak RSS of the daemon after the cold reconcile: $(awk '/VmHWM/ {printf "%d MiB", $2/1024}' "/proc/$olo_pid/status")"
n=1
for changed in 1 1 1 10 100 1000; do
  for f in $(ls "$repo"/workspaces/*/jobs/*.yaml | head -n "$changed"); do
    sed -i "s/^  description: Synthetic job \(job[0-9]*\)\..*/  description: Synthetic job \1. v$n/" "$f"
  done
  git -C "$repo" -c user.name=Bench -c user.email=bench@example.com commit -qam "change $changed jobs ($n)"
  n=$((n + 1))
  wait_ready "$n"
  echo "incremental, $changed changed job(s): $(grep ': Ready' "$log" | tail -1 | sed 's/.*Ready (//; s/) in / -> /')"
  grep ": took: " "$log" | tail -1 | sed 's/.*took: //; s/ phases=.*//' 
done
pkill -INT -P "$serve_pid" || true
wait "$serve_pid" || true
serve_pid=""
echo "peak RSS of the daemon: $(awk -F: '/Maximum resident/ {gsub(/ /,"",$2); printf "%d MiB", $2/1024}' "$work/time.txt")"
