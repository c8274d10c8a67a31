#!/usr/bin/env bash
# Soak: `olo serve` (release build) on a generated 1,000-job repository under a steady mix for
# MINUTES (default 10): a commit pushed every 10 s, signed webhooks at 20/s, API and dashboard
# reads at 40/s, OpenLineage events at 40/s; resident memory and open files sampled every 10 s
# and summarized (after the warm-up minute, at the end, at most). Driven by olo-bench-server
# (bench/src/bin/olo-bench-server/soak.rs) on the same machine; the machine is described first.
#
#   scripts/soak.sh [MINUTES] [olo-bench-server options]
set -euo pipefail
cd "$(dirname "$0")/.."
minutes="${1:-10}"
shift || true
cargo build --release -q -p olo -p olo-bench
echo "machine: $(nproc) CPUs ($(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)), $(awk '/^MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo) memory, $(uname -sr)"
target/release/olo-bench-server --olo target/release/olo --soak-minutes "$minutes" "$@"
