#!/usr/bin/env bash
# olo against the real platform, without Docker, all on 127.0.0.1: PostgreSQL for olo's state
# (Debian's package), Apache Airflow 3.3, MLflow, an Iceberg REST catalog on an S3 server, Trino,
# and Spark and dbt on Airflow's worker (the service scripts of the test suite, with their cached
# downloads), and `olo serve` on a config repository pointed at them.
#
#   scripts/local-stack.sh                  # the bundled examples-repo
#   scripts/local-stack.sh ~/lake           # your own config repository (a git repository or a folder)
#   scripts/local-stack.sh --fresh [REPO]   # start every service from empty folders
#
# Ctrl-C stops olo and every service this run started, and keeps their folders: the next run
# carries on with olo's state and audit history, Airflow's runs and logs, MLflow's runs and the
# lakehouse's tables. --fresh deletes them first.
#
# What it does:
#   1. starts (or reuses) PostgreSQL (scripts/postgres.sh) and the platform of scripts/stack.sh:
#      the REST catalog and S3 server, Spark with the Iceberg and OpenLineage jars, dbt-trino with
#      dbt-ol, Airflow whose worker has them (its OpenLineage provider and dbt-ol report to this
#      olo), MLflow and Trino. Each keeps its folder under /tmp/olo-local-* (not the test suite's
#      /tmp/olo-*), so a test run's services are never touched; a service of an earlier local
#      stack that is still up is reused and left running;
#   2. sets up what a platform team sets up once (scripts/medallion/stack_setup.py): Airflow's
#      connections (Trino per workspace of the repository, a local Spark) and dbt's profile for
#      the example's dbt project; puts the example's sample order exports on the S3 server
#      (s3://landing/sales/orders/, which the worker's Spark reads as s3a://);
#   3. writes .olo/local-stack/olo.toml: state.database = a database `olo_local` on that
#      PostgreSQL, Airflow's URL and password, the DAG folder Airflow reads, Trino's catalog and
#      rules folder, the REST catalog and S3 server as the lakehouse, MLflow's URL, the Spark
#      jars, and an API token for Airflow's lineage events and for you (kept in
#      .olo/local-stack/token);
#   4. prints the URLs and an `olo run` to try, and runs `cargo run --release -- serve --config
#      .olo/local-stack/olo.toml` (OLO_BIN=path/to/olo runs that binary instead of building).
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
fresh=0
if [ "${1:-}" = --fresh ]; then
    fresh=1
    shift
fi
if [ $# -gt 1 ] || [[ "${1:-}" == -* ]]; then
    echo "usage: scripts/local-stack.sh [--fresh] [CONFIG_REPOSITORY]" >&2
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
export OLO_LAKEHOUSE_DIR="$base-lakehouse"
export OLO_TRINO_DIR="$base-trino"
export OLO_DBT_PROFILES_DIR="$base-dbt"
export OLO_SPARK_CONF_DIR="$base-spark-conf"
services=(postgres lakehouse airflow mlflow trino)
state_dir=.olo/local-stack
config="$state_dir/olo.toml"
mkdir -p "$state_dir"

if [ "$fresh" = 1 ]; then
    say "--fresh: deleting the folders of an earlier local stack ($base-*)"
    for name in "${services[@]}"; do
        "scripts/$name.sh" stop >/dev/null 2>&1 || true
    done
    rm -rf "$OLO_DBT_PROFILES_DIR" "$OLO_SPARK_CONF_DIR"
fi

# shellcheck source=scripts/ports.sh disable=SC1091
. "$(dirname "${BASH_SOURCE[0]}")/ports.sh"
olo_port="$(free_port "${OLO_LOCAL_PORT:-8080}")"

# The API token: Airflow's OpenLineage provider, Spark's listener and dbt-ol send it with every
# event, and you use it for writes (trigger a run, reconcile). Kept across runs so that a reused
# Airflow still matches.
if [ ! -s "$state_dir/token" ]; then
    (umask 077 && python3 -c 'import secrets; print("olo-local-" + secrets.token_hex(16))' >"$state_dir/token")
fi
token="$(cat "$state_dir/token")"
token_sha256="$(printf %s "$token" | sha256sum | cut -d' ' -f1)"

# --- stop what this run started, whatever way it ends; keep the folders -------------------------
olo_pid=""
started=()
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
        say "stopping ${started[i]} (its folder stays: $base-${started[i]})"
        "scripts/${started[i]}.sh" pause >/dev/null 2>&1 || true
    done
    if ((${#started[@]})); then
        say "the next scripts/local-stack.sh carries on from those folders; --fresh starts from empty ones"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# --- services ------------------------------------------------------------------------------------
say "PostgreSQL for olo's state (Debian package; installed on first use)"
if ! scripts/postgres.sh status; then
    started+=(postgres)
fi
pg_admin="$(scripts/postgres.sh start)"
pg_base="${pg_admin%/*}"
psql_bin="$(command -v psql || printf '%s\n' /usr/lib/postgresql/*/bin/psql | sort -V | tail -n 1)"
if [ "$("$psql_bin" "$pg_admin" -tAc "SELECT 1 FROM pg_database WHERE datname = 'olo_local'")" != 1 ]; then
    "$psql_bin" "$pg_admin" -qc 'CREATE DATABASE olo_local' >/dev/null
fi
database="$pg_base/olo_local"

# Airflow's lineage provider, Spark's listener and dbt-ol report to this olo, with this token.
export OLO_TEST_LINEAGE_PORT="$olo_port" OLO_TEST_LINEAGE_TOKEN="$token"
# shellcheck source=scripts/stack.sh disable=SC1091
. scripts/stack.sh
# The cleanup pauses what stack_up starts, also when it fails half-way.
stack_track() {
    if ! "scripts/$1.sh" status >/dev/null 2>&1; then
        started+=("$1")
    fi
}
stack_up

# What a platform team sets up once: Airflow's connections, dbt's profile; and the example's data.
workspaces=()
for ws in "$repository"/workspaces/*/; do
    if [ -f "$ws/workspace.yaml" ]; then workspaces+=("$(basename "$ws")"); fi
done
say "Airflow's connections (Trino for each workspace: ${workspaces[*]}; Spark) and dbt's profile"
python3 scripts/medallion/stack_setup.py workers "${workspaces[@]}"
if [ -f "$repository/workspaces/sales/jobs/orders_daily.yaml" ]; then
    stack_landing
fi

# --- olo -----------------------------------------------------------------------------------------
group="${OLO_LOCAL_GROUP:-data-platform}"
spark_jars="$(python3 -c 'import json, sys; print(json.dumps([j for j in sys.argv[1].split(",") if j]))' "$OLO_TEST_SPARK_JARS")"
cat >"$config" <<EOF
# Written by scripts/local-stack.sh: olo against the local PostgreSQL, Airflow, MLflow, Trino,
# Iceberg REST catalog and S3 server.
[source]
path = "$repository"

[state]
dir = "$state_dir"
database = "$database"

[apply]
dags_folder = "$OLO_TEST_AIRFLOW_DAGS"
trino_folder = "$OLO_TEST_TRINO_FOLDER"

[server]
listen = "127.0.0.1:$olo_port"

[[api.tokens]]
name = "local"
sha256 = "$token_sha256"
groups = ["$group"]   # the repository must grant this group a role (examples-repo/olo.yaml: admins)

[airflow]
url = "$OLO_TEST_AIRFLOW_URL"
username = "admin"
password_env = "OLO_AIRFLOW_PASSWORD"
poll_seconds = 2

[mlflow]
url = "$OLO_TEST_MLFLOW_URL"

[lakehouse]
catalog = "rest"
rest_uri = "$OLO_TEST_ICEBERG_URL"
warehouse = "s3"

[trino]
url = "$OLO_TEST_TRINO_URL"
catalogs = "dynamic"

[render]
openlineage_url = "http://127.0.0.1:$olo_port"
mlflow_tracking_uri = "$OLO_TEST_MLFLOW_URL"
iceberg_rest_uri = "$OLO_TEST_ICEBERG_URL"
iceberg_rest_warehouse = "$OLO_TEST_ICEBERG_WAREHOUSE"
s3_endpoint = "$OLO_TEST_S3_URL"
s3_region = "$OLO_TEST_S3_REGION"
trino_task_user = "airflow"   # the user of Airflow's Trino connections (stack_setup.py)
spark_packages = []
spark_jars = $spark_jars
EOF
export OLO_AIRFLOW_PASSWORD="$OLO_TEST_AIRFLOW_PASSWORD"
# olo creates the workspaces' tables on the S3 server with these keys.
export OLO_S3_ACCESS_KEY="$OLO_TEST_S3_ACCESS_KEY" OLO_S3_SECRET_KEY="$OLO_TEST_S3_SECRET_KEY"

# A job to show a run with: the bundled sample's orders_daily (it reads the sample order exports
# from s3a://landing/sales/orders/ by default), else the repository's first.
jobs="$(cd "$repository" && find workspaces -path 'workspaces/*/jobs/*.yaml' -type f | sort)"
sample_job="$(grep -m1 -x 'workspaces/sales/jobs/orders_daily.yaml' <<<"$jobs" || head -n 1 <<<"$jobs")"
sample_job="$(sed -n 's#^workspaces/\([^/]*\)/jobs/\(.*\)\.yaml$#\1/\2#p' <<<"$sample_job")"

stop_note="Ctrl-C stops olo"
if ((${#started[@]})); then
    stop_note+=" and ${started[*]} (their folders stay; --fresh starts from empty ones)"
fi
cat >&2 <<EOF

  olo (dashboard, API, webhook)  http://127.0.0.1:$olo_port/
  config repository              $repository
  Airflow 3                      $OLO_TEST_AIRFLOW_URL/   (admin / $OLO_TEST_AIRFLOW_PASSWORD)
  MLflow                         $OLO_TEST_MLFLOW_URL/
  Trino                          $OLO_TEST_TRINO_URL   (catalog lake; trino --user airflow)
  Iceberg REST catalog           $OLO_TEST_ICEBERG_URL   (warehouse $OLO_TEST_ICEBERG_WAREHOUSE)
  S3 server                      $OLO_TEST_S3_URL   (access key $OLO_TEST_S3_ACCESS_KEY)
  PostgreSQL (olo's state)       $database
  DAG folder (olo -> Airflow)    $OLO_TEST_AIRFLOW_DAGS
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
