#!/usr/bin/env bash
# olo's benchmarks, reproducible with one command. Prints the machine, every measurement as it
# runs, and at the end a Markdown summary (the tables of BENCHMARKS.md) with the peers measured in
# the same run and the peers' figures from the anchors.
#
#   scripts/bench.sh                  # about 4 minutes on 2 cores, once the venvs exist
#   OLO_BENCH_RUNS=3 OLO_BENCH_PEER_RUNS=1 scripts/bench.sh     # quicker, noisier
#   OLO_BENCH_KEEP=1 scripts/bench.sh # keep the generated repositories and raw JSON
#
# What it measures (details and the figures in BENCHMARKS.md):
#   1. `olo validate` of a generated 10,000-job repository (olo-synth --workspaces 100 --jobs 100):
#      wall time (hyperfine), peak RSS (/usr/bin/time), and in-process read vs validate
#      (olo-bench); side by side, check-jsonschema 0.39.0 on the same 10,000 job files.
#   2. Render of the same repository: in-process (olo-bench) and `olo render --out` end to end.
#   3. Airflow 3.3 parse cost of 300 rendered DAG files vs the same 300 jobs for dag-factory 1.1.0
#      (bench/airflow_parse.py: equality check, then the per-DAG slope in one process; plus the
#      whole-process times and peak memory).
# Needs: cargo, python3, hyperfine and GNU time (installed with apt-get when missing and root).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

runs="${OLO_BENCH_RUNS:-5}"            # olo's own commands
peer_runs="${OLO_BENCH_PEER_RUNS:-3}"  # check-jsonschema, whole Python processes
airflow_runs="${OLO_BENCH_AIRFLOW_RUNS:-5}"

work="$(mktemp -d /tmp/olo-bench.XXXXXX)"
# A folder in RAM (tmpfs) for the render that leaves the disk's fsync latency out.
shm="$(mktemp -d /dev/shm/olo-bench.XXXXXX 2>/dev/null || mktemp -d "$work/shm.XXXXXX")"
if [[ "${OLO_BENCH_KEEP:-}" == 1 ]]; then
  echo "keeping $work and $shm" >&2
else
  trap 'rm -rf "$work" "$shm"' EXIT
fi
res="$work/results"
mkdir -p "$res"

section() { printf '\n=== %s ===\n' "$*"; }

# ---------------------------------------------------------------- tools
missing=()
command -v hyperfine >/dev/null || missing+=(hyperfine)
[[ -x /usr/bin/time ]] || missing+=(time)
if ((${#missing[@]})); then
  if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null; then
    echo "installing ${missing[*]} (apt-get)" >&2
    apt-get install -y -qq "${missing[@]}" >/dev/null 2>&1 ||
      { apt-get update -qq >/dev/null && apt-get install -y -qq "${missing[@]}" >/dev/null; }
  else
    echo "missing: ${missing[*]} (apt-get install ${missing[*]})" >&2
    exit 2
  fi
fi

# Peak RSS in KiB of one run of a command (its output discarded; fails if the command fails).
peak_kib() {
  if ! /usr/bin/time -f '%M' -o "$work/time.out" "$@" >/dev/null 2>"$work/time.err"; then
    echo "failed: $*" >&2
    cat "$work/time.err" >&2
    exit 1
  fi
  tail -n 1 "$work/time.out"
}

# Median of the peak RSS of three runs, in KiB.
peak_kib3() {
  local a b c
  a="$(peak_kib "$@")"
  b="$(peak_kib "$@")"
  c="$(peak_kib "$@")"
  printf '%s\n%s\n%s\n' "$a" "$b" "$c" | sort -n | sed -n 2p
}

hf() { hyperfine --style basic --shell=bash "$@"; }

# ---------------------------------------------------------------- build and venvs
section "build"
# The same flags as the tests (scripts/cargo-env.sh), so that their build is reused.
# shellcheck source=scripts/cargo-env.sh
source scripts/cargo-env.sh
cargo build --release --workspace 2>&1 | tail -n 1
bin="$root/target/release"
bench_venv="$(scripts/python-env.sh bench)"
airflow_venv="$(scripts/python-env.sh airflow)"

# ---------------------------------------------------------------- machine
section "machine"
{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet HEAD 2>/dev/null || echo ' (+ uncommitted changes)')"
  echo "cpus: $(nproc)"
  echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
  echo "ram: $(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)"
  echo "os: $(. /etc/os-release && echo "$PRETTY_NAME"), kernel $(uname -r)"
  echo "rustc: $(rustc --version)"
  echo "python: $("$airflow_venv/bin/python" -c 'import sys; print(sys.version.split()[0])')"
  echo "airflow: $("$airflow_venv/bin/python" -c 'import importlib.metadata as m; print(m.version("apache-airflow"))'), dag-factory $("$airflow_venv/bin/python" -c 'import importlib.metadata as m; print(m.version("dag-factory"))')"
  echo "check-jsonschema: $("$bench_venv/bin/python" -c 'import importlib.metadata as m; print(m.version("check-jsonschema"), "with ruamel.yaml", m.version("ruamel.yaml"), "+ ruamel.yaml.clib", m.version("ruamel.yaml.clib"))')"
  echo "hyperfine: $(hyperfine --version | cut -d' ' -f2)"
  echo "load before start: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$res/machine.txt"

# ---------------------------------------------------------------- 1. validate 10,000 jobs
section "1. validate a 10,000-job repository"
repo="$work/repo"
"$bin/olo-synth" --workspaces 100 --jobs 100 --out "$repo"
"$bin/olo" validate "$repo" # must be valid (exit 0) before anything is timed

hf --warmup 1 --runs "$runs" --export-json "$res/olo_validate.json" \
  -n "olo validate" "$bin/olo validate $repo"
peak_kib3 "$bin/olo" validate "$repo" >"$res/olo_validate.rss"
echo "olo validate peak RSS: $(cat "$res/olo_validate.rss") KiB (median of 3)"

echo
"$bin/olo-bench" "$repo" --runs "$runs" --json "$res/olo_bench.json"

# check-jsonschema: all 10,000 files in one invocation. The file list is expanded by bash inside
# a wrapper (argv ~0.4 MB, under ARG_MAX of 2 MB), because hyperfine's command string would exceed
# the kernel's 128 KiB limit on a single argument.
n_jobs="$(find "$repo/workspaces" -path '*/jobs/*.yaml' | wc -l)"
cat >"$work/cjs-all.sh" <<EOF
cd "$repo" && exec "$bench_venv/bin/check-jsonschema" --schemafile "$root/schema/json/job.schema.json" workspaces/*/jobs/*.yaml
EOF
cat >"$work/cjs-1000.sh" <<EOF
cd "$repo" && exec "$bench_venv/bin/check-jsonschema" --schemafile "$root/schema/json/job.schema.json" workspaces/ws000[0-9]/jobs/*.yaml
EOF
echo
echo "check-jsonschema on $n_jobs job files, one invocation (argv $(cd "$repo" && echo workspaces/*/jobs/*.yaml | wc -c) bytes)"
# It must accept the files (exit 0) and reject a broken one (exit 1), or its time means nothing.
bash "$work/cjs-all.sh" >/dev/null
sed 's/catchup: false/catchup: 7/' "$repo/workspaces/ws0000/jobs/job00000.yaml" >"$work/broken.yaml"
if "$bench_venv/bin/check-jsonschema" --schemafile schema/json/job.schema.json "$work/broken.yaml" >/dev/null 2>&1; then
  echo "check-jsonschema accepted a broken job file: its timing would be meaningless" >&2
  exit 1
fi
probe="$( { /usr/bin/time -f '%e' bash "$work/cjs-1000.sh" >/dev/null; } 2>&1 | tail -n 1)"
echo "probe: 1,000 files in $probe s"
if awk -v p="$probe" 'BEGIN { exit !(p * 10 > 120) }'; then
  echo "more than 2 minutes expected for 10,000 files: measuring 1,000 files and extrapolating x10"
  cjs_files=1000
  hf --runs "$peer_runs" --export-json "$res/cjs.json" -n "check-jsonschema (1,000 files)" "bash $work/cjs-1000.sh"
  peak_kib bash "$work/cjs-1000.sh" >"$res/cjs.rss"
else
  cjs_files="$n_jobs"
  hf --runs "$peer_runs" --export-json "$res/cjs.json" -n "check-jsonschema ($n_jobs files)" "bash $work/cjs-all.sh"
  peak_kib bash "$work/cjs-all.sh" >"$res/cjs.rss"
fi
echo "$cjs_files" >"$res/cjs.files"
echo "check-jsonschema peak RSS: $(cat "$res/cjs.rss") KiB"

# ---------------------------------------------------------------- 2. render
section "2. render the 10,000-job repository (olo render, end to end; in-process figures above)"
# On the disk, olo writes each file through a temporary file + fsync + rename (crash-safe for a
# live Airflow), so the disk's sync latency dominates; the same render into a tmpfs (no fsync
# cost) shows the CPU part.
echo "tmpfs output folder: $shm ($(df --output=fstype "$shm" | tail -n 1))"
hf --warmup 1 --runs "$runs" --prepare "rm -rf $shm/out" --export-json "$res/olo_render_tmpfs.json" \
  -n "olo render (tmpfs)" "$bin/olo render $repo --out $shm/out"
rm -rf "$shm/out"
peak_kib "$bin/olo" render "$repo" --out "$shm/out" >"$res/olo_render.rss"
echo "olo render peak RSS: $(cat "$res/olo_render.rss") KiB"
echo "rendered: $(find "$shm/out" -type f | wc -l) files, $(du -sh "$shm/out" | cut -f1)"
rm -rf "$shm/out"
echo "disk output folder: $work ($(df --output=fstype "$work" | tail -n 1))"
hf --runs "$peer_runs" --prepare "rm -rf $work/out" --export-json "$res/olo_render_disk.json" \
  -n "olo render (disk)" "$bin/olo render $repo --out $work/out"
rm -rf "$work/out"

# ---------------------------------------------------------------- 3. Airflow parse cost
section "3. Airflow parse cost: 300 olo DAG files vs the same 300 jobs for dag-factory"
"$bin/olo-synth" --workspaces 3 --jobs 100 --bash-only --out "$work/r300" --dag-factory "$work/df300"
"$bin/olo" render "$work/r300" --out "$work/out300"
mkdir -p "$work/empty"
export AIRFLOW_HOME="$work/airflow-home"
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW__LOGGING__LOGGING_LEVEL=ERROR
export PYTHONDONTWRITEBYTECODE=1
export PYTHONWARNINGS=ignore::DeprecationWarning
py="$airflow_venv/bin/python"
"$py" bench/airflow_parse.py compare "$work/out300/dags" "$work/df300" \
  --runs "$airflow_runs" --json "$res/airflow.json"
if find "$work/out300" -name __pycache__ | grep -q .; then
  echo "bytecode cache written under the DAG folder: the parse timings would not be cold" >&2
  exit 1
fi

echo
echo "whole process: python + import airflow + DagBag(folder)"
hf --runs "$peer_runs" --export-json "$res/airflow_process.json" \
  -n empty "$py bench/airflow_parse.py parse $work/empty" \
  -n olo "$py bench/airflow_parse.py parse $work/out300/dags" \
  -n dag-factory "$py bench/airflow_parse.py parse $work/df300"
for k in empty olo dag-factory; do
  case "$k" in
    empty) d="$work/empty" ;;
    olo) d="$work/out300/dags" ;;
    dag-factory) d="$work/df300" ;;
  esac
  peak_kib "$py" bench/airflow_parse.py parse "$d" >"$res/airflow_$k.rss"
  echo "peak RSS $k: $(cat "$res/airflow_$k.rss") KiB"
done

# ---------------------------------------------------------------- summary
echo "load after the run: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$res/machine.txt"
section "summary (Markdown, as in BENCHMARKS.md)"
python3 bench/summary.py "$res"
