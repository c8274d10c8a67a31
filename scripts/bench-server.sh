#!/usr/bin/env bash
# Server benchmark: `olo serve` as a process on a generated 1,000-job repository, driven over
# HTTP on loopback by olo-bench-server (bench/src/bin/olo-bench-server/):
#   1. push to DAG: signed push webhook for a fresh commit -> the changed job's DAG file holds
#      the change (200 pushes; p50/p90/p99/max);
#   2. webhook throughput: 32 connections, 10 s of signed ~7 KB pushes for an untracked branch
#      (verified, recorded, answered 202);
#   3. GET /api/v1/runs over 1,000 stored runs at 500 requests/s, open loop, 10 s (p50/p99/max
#      from each request's scheduled start);
#   4. dashboard pages: each page 100 times in a row, checked for status and content (run with
#      --workspaces 20 --jobs 500 --runs 100000 for the 10,000-job / 100,000-run figures);
#   5. lineage: 25,000 OpenLineage events (4 edges each) over 32 connections, then 200 depth-5
#      graph queries on the resulting 100,000-edge graph.
# The client shares the machine with the daemon; the machine is described first.
#
#   scripts/bench-server.sh [olo-bench-server options]    (e.g. --json server.json; --help)
set -euo pipefail
cd "$(dirname "$0")/.."
# The same flags as the tests (scripts/cargo-env.sh), so that their build is reused.
# shellcheck source=scripts/cargo-env.sh
source scripts/cargo-env.sh
cargo build --release -q -p olo -p olo-bench

echo "machine: $(nproc) CPUs ($(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)), $(awk '/^MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo) memory, $(uname -sr)"
target/release/olo-bench-server --olo target/release/olo "$@"
