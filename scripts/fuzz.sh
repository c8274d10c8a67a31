#!/usr/bin/env bash
# Fuzzes what olo reads from outside with cargo fuzz (libFuzzer), target by target:
#
#   spec_loader    a YAML file of the example repository replaced: loader, schema, semantic checks,
#                  the renderer for what validates (every diagnostic inside its file)
#   webhook        GitHub deliveries: the signature check, push and pull_request payloads, the work
#                  row a follower hands to the leader
#   lineage_event  OpenLineage events: check, names mapped to the example's tables, what olo keeps
#                  of runs, fields and column lineage, the graph walk and its Marquez answer
#   pr_comment     the plan comment built from a diff, a diagnostic or an error, parsed back as
#                  GitHub Markdown: the author's text stays in its code block and changes nothing
#                  else of the comment
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]     (default: 60 seconds, every target)
#   scripts/fuzz.sh build                     install cargo-fuzz and build the targets, run nothing
#
# Starts from the corpus in fuzz/corpus/<target> (read only: what a run finds goes to a folder
# under $OLO_FUZZ_WORK, default a temporary one). A crash stops the script with exit 1 and says
# how to run the input again. cargo-fuzz is installed once under ~/.cache/olo/tools; it builds
# with the stable toolchain and no sanitizer (the code is safe Rust: libFuzzer looks for panics,
# failed assertions, overflows and hangs), optimized, with debug assertions and overflow checks.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/cargo-env.sh
source scripts/cargo-env.sh
# The fuzz build sets its own instrumentation flags; mold's link flag is kept out of them.
unset RUSTFLAGS

build_only=0
if [ "${1:-}" = build ]; then
    build_only=1
    shift
fi
seconds="${1:-60}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(spec_loader webhook lineage_event pr_comment)
fi

cache="${OLO_CACHE:-$HOME/.cache/olo}"
fuzz_version=0.13.2
tools="$cache/tools/cargo-fuzz-$fuzz_version"
if [ ! -x "$tools/bin/cargo-fuzz" ]; then
    echo "==> installing cargo-fuzz $fuzz_version (once, into $tools)"
    cargo install cargo-fuzz --version "$fuzz_version" --locked --root "$tools" --quiet
fi
export PATH="$tools/bin:$PATH"

# The lock file pins the fuzz build's dependencies as Cargo.lock pins the project's.
cargo fetch --locked --manifest-path fuzz/Cargo.toml --quiet
echo "==> building the fuzz targets (cargo fuzz build -s none)"
cargo fuzz build -s none
if [ "$build_only" = 1 ]; then
    exit 0
fi

work="${OLO_FUZZ_WORK:-$(mktemp -d)}"
status=0
for target in "${targets[@]}"; do
    mkdir -p "$work/$target/corpus" "$work/$target/crashes"
    echo "==> fuzzing $target for ${seconds}s (corpus: fuzz/corpus/$target)"
    log="$work/$target/log"
    if cargo fuzz run -s none "$target" "$work/$target/corpus" "fuzz/corpus/$target" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
        -artifact_prefix="$work/$target/crashes/" >"$log" 2>&1; then
        grep -a "^Done" "$log" | sed 's/^/    /'
    else
        status=1
        echo "!!! $target failed; the end of its log ($log):" >&2
        grep -a -A30 "panicked\|ERROR: libFuzzer\|==ERROR" "$log" | head -60 >&2 || tail -40 "$log" >&2
        for crash in "$work/$target/crashes"/*; do
            [ -e "$crash" ] || continue
            echo "    input: $crash" >&2
            echo "    again: (cd fuzz && cargo fuzz run -s none $target $crash)" >&2
        done
    fi
done
exit "$status"
