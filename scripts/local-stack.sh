#!/usr/bin/env bash
# olo against real services, without Docker: PostgreSQL (Debian's package), Apache Airflow 3.3 and
# MLflow (from PyPI, in the cached venvs of scripts/python-env.sh), all on 127.0.0.1, and
# `olo serve` on a config repository pointed at them.
#
#   scripts/local-stack.sh          # the bundled examples-repo
#   scripts/local-stack.sh ~/lake   # your own config repository (a git repository or a folder)
#
# Ctrl-C stops olo and every service this run started.
#
# What it does:
#   1. starts (or reuses) PostgreSQL with scripts/postgres.sh, Airflow with scripts/airflow.sh (its
#      OpenLineage provider reporting to this olo) and MLflow with scripts/mlflow.sh. Each runs in
#      its own folder under /tmp/olo-local-* (not the test suite's /tmp/olo-*), so a test run's
#      services are never touched; a service of an earlier local stack that is still up is reused
#      and left running;
#   2. writes .olo/local-stack/olo.toml: state.database = a database `olo_local` on that
#      PostgreSQL, Airflow's URL and password, the DAG folder Airflow reads, MLflow's URL, an API
#      token for Airflow's lineage events and for you (kept in .olo/local-stack/token);
#   3. prints the URLs and runs `cargo run --release -- serve --config .olo/local-stack/olo.toml`
#      (OLO_BIN=path/to/olo runs that binary instead of building).
#
# Environment: OLO_LOCAL_PORT (olo's port, first free from 8080), OLO_LOCAL_DIR (default
# /tmp/olo-local: the services' folders go below it), OLO_LOCAL_GROUP (the group of the API token
# it makes, default data-platform: the repository must grant it a role, e.g. `admins:
# [group:data-platform]` in olo.yaml, for the token to trigger runs), OLO_BIN.
set -euo pipefail
if [ "${1:-}" = -h ] || [ "${1:-}" = --help ]; then
    sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'
    exit 0
fi
if [ $# -gt 1 ]; then
    echo "usage: scripts/local-stack.sh [CONFIG_REPOSITORY]" >&2
    exit 2
fi
# The repository as an absolute path (olo runs from the project folder).
if ! repository="$(realpath -e "${1:-$(dirname "$0")/../examples-repo}" 2>/dev/null)"; then
    echo "local-stack.sh: no such folder: $1" >&2
    exit 2
fi
if [ ! -d "$repository/workspaces" ]; then
    echo "local-stack.sh: $repository has no workspaces/ folder: is it a config repository? (olo validate $repository)" >&2
    exit 2
fi
cd "$(dirname "$0")/.."

# Never fatal: after Ctrl-C the terminal or a pipe reading stderr may be gone, and the cleanup must
# still run to the end.
say() { echo "local-stack.sh: $*" >&2 || true; }

base="${OLO_LOCAL_DIR:-/tmp/olo-local}"
export OLO_PG_DIR="$base-postgres"
export OLO_AIRFLOW_DIR="$base-airflow"
export OLO_MLFLOW_DIR="$base-mlflow"
state_dir=.olo/local-stack
config="$state_dir/olo.toml"
mkdir -p "$state_dir"

# shellcheck source=scripts/ports.sh disable=SC1091
. "$(dirname "${BASH_SOURCE[0]}")/ports.sh"
olo_port="$(free_port "${OLO_LOCAL_PORT:-8080}")"

# The API token: Airflow's OpenLineage provider sends it with every event, and you use it for
# writes (trigger a run, reconcile). Kept across runs so that a reused Airflow still matches.
if [ ! -s "$state_dir/token" ]; then
    (umask 077 && python3 -c 'import secrets; print("olo-local-" + secrets.token_hex(16))' >"$state_dir/token")
fi
token="$(cat "$state_dir/token")"
token_sha256="$(printf %s "$token" | sha256sum | cut -d' ' -f1)"

# --- stop what this run started, whatever way it ends -------------------------------------------
started=()
olo_pid=""
# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() {
    trap - EXIT INT TERM HUP
    trap '' PIPE
    if [ -n "$olo_pid" ] && kill -0 "$olo_pid" 2>/dev/null; then
        say "stopping olo"
        kill -TERM "$olo_pid" 2>/dev/null || true
        for _ in $(seq 1 50); do kill -0 "$olo_pid" 2>/dev/null || break; sleep 0.2; done
        kill -KILL "$olo_pid" 2>/dev/null || true
    fi
    local i
    for ((i = ${#started[@]} - 1; i >= 0; i--)); do
        say "stopping ${started[i]}"
        "scripts/${started[i]}.sh" stop 2>/dev/null || true
    done
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# --- services ------------------------------------------------------------------------------------
# track NAME: before scripts/NAME.sh start, remember to stop NAME at the end only when it is not
# already running (the start itself runs in a subshell, to capture what it prints).
track() {
    local name="$1"
    if "scripts/$name.sh" status; then
        say "$name is already running in $base-$name: using it, and leaving it running"
    else
        started+=("$name")
    fi
}

say "PostgreSQL (Debian package; installed on first use)"
track postgres
pg_admin="$(scripts/postgres.sh start)"
pg_base="${pg_admin%/*}"
psql_bin="$(command -v psql || printf '%s\n' /usr/lib/postgresql/*/bin/psql | sort -V | tail -n 1)"
if [ "$("$psql_bin" "$pg_admin" -tAc "SELECT 1 FROM pg_database WHERE datname = 'olo_local'")" != 1 ]; then
    "$psql_bin" "$pg_admin" -qc 'CREATE DATABASE olo_local' >/dev/null
fi
database="$pg_base/olo_local"

say "Apache Airflow 3.3 (PyPI, cached venv; api-server, scheduler, dag-processor)"
export OLO_TEST_LINEAGE_PORT="$olo_port" OLO_TEST_LINEAGE_TOKEN="$token"
track airflow
airflow_out="$(scripts/airflow.sh start)"
read -r airflow_url dags_folder <<<"$airflow_out"
if [ -z "${airflow_url:-}" ] || [ -z "${dags_folder:-}" ]; then
    say "scripts/airflow.sh start printed no URL and DAG folder"
    exit 1
fi
airflow_password="$(scripts/airflow.sh password)"

say "MLflow tracking server (PyPI, cached venv)"
track mlflow
mlflow_url="$(scripts/mlflow.sh start)"

# --- olo -----------------------------------------------------------------------------------------
group="${OLO_LOCAL_GROUP:-data-platform}"
# A job to show a run trigger with: the bundled sample's smoke test, else the repository's first.
jobs="$(cd "$repository" && find workspaces -path 'workspaces/*/jobs/*.yaml' -type f | sort)"
sample_job="$(grep -m1 -x 'workspaces/platform/jobs/smoke_test.yaml' <<<"$jobs" || head -n 1 <<<"$jobs")"
sample_job="$(sed -n 's#^workspaces/\([^/]*\)/jobs/\(.*\)\.yaml$#\1/\2#p' <<<"$sample_job")"
cat >"$config" <<EOF
# Written by scripts/local-stack.sh: olo against the local PostgreSQL, Airflow and MLflow.
[source]
path = "$repository"

[state]
dir = "$state_dir"
database = "$database"

[apply]
dags_folder = "$dags_folder"

[render]
openlineage_url = "http://127.0.0.1:$olo_port"
mlflow_tracking_uri = "$mlflow_url"

[server]
listen = "127.0.0.1:$olo_port"

[[api.tokens]]
name = "local"
sha256 = "$token_sha256"
groups = ["$group"]   # the repository must grant this group a role (examples-repo/olo.yaml: admins)

[airflow]
url = "$airflow_url"
username = "admin"
password_env = "OLO_AIRFLOW_PASSWORD"
poll_seconds = 2

[mlflow]
url = "$mlflow_url"
EOF
export OLO_AIRFLOW_PASSWORD="$airflow_password"

stop_note="Ctrl-C stops olo"
if ((${#started[@]})); then
    stop_note+=" and ${started[*]}"
fi
cat >&2 <<EOF

  olo (dashboard, API, webhook)  http://127.0.0.1:$olo_port/
  config repository              $repository
  Airflow 3                      $airflow_url/   (admin / $airflow_password)
  MLflow                         $mlflow_url/
  PostgreSQL (olo's state)       $database
  DAG folder (olo -> Airflow)    $dags_folder
  settings                       $config
  API token (writes)             $token   (group $group)
EOF
if [ -n "$sample_job" ]; then
    cat >&2 <<EOF
  a run of $sample_job (once the repository grants group $group a role in ${sample_job%%/*}):
      OLO_SERVER=http://127.0.0.1:$olo_port OLO_TOKEN=$token cargo run --release -- run $sample_job --wait
EOF
fi
cat >&2 <<EOF

  $stop_note.

EOF

if [ -n "${OLO_BIN:-}" ]; then
    "$OLO_BIN" serve --config "$config" &
else
    cargo run --release -- serve --config "$config" &
fi
olo_pid=$!
# `wait` returns on a trapped signal at once, so Ctrl-C (or kill -INT of this script) reaches the
# cleanup even while olo runs.
set +e
wait "$olo_pid"
status=$?
set -e
olo_pid=""
say "olo exited ($status)"
exit "$status"
