#!/usr/bin/env bash
# The bundled medallion sample (examples-repo/), end to end on real components:
#
#   scripts/medallion-e2e.sh
#
# Brings up the stack, reusing what already runs (scripts/test.sh calls this after cargo test,
# with everything up): the Iceberg REST catalog and S3 server (scripts/lakehouse.sh), PySpark
# with the Iceberg and OpenLineage jars (scripts/spark.sh), dbt-trino with dbt-ol
# (scripts/python-env.sh dbt), Apache Airflow 3.3 with that worker environment
# (scripts/worker-env.sh, scripts/airflow.sh), MLflow (scripts/mlflow.sh), Trino
# (scripts/trino.sh) and PyIceberg; builds olo; then scripts/medallion/e2e.py commits the example
# repository, lets `olo serve` apply it, triggers sales/orders_daily, sales/customers_hourly and
# marketing/campaign_report through olo's API and checks the results, the MLflow link and the
# lineage. It prints one line per check and the timings, and exits non-zero on any miss.
#
# What it starts it stops at the end; what was running stays running.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/cargo-env.sh disable=SC1091
. scripts/cargo-env.sh

cleanup=()
trap 'for c in "${cleanup[@]}"; do $c || true; done' EXIT
started() { "$1" status >/dev/null 2>&1 || cleanup+=("$1 stop"); }

export OLO_TEST_LINEAGE_PORT="${OLO_TEST_LINEAGE_PORT:-28070}"
export OLO_TEST_LINEAGE_TOKEN="${OLO_TEST_LINEAGE_TOKEN:-olo-test-lineage-token}"

echo "==> medallion: the olo binary"
cargo build --locked --bin olo --quiet
export OLO_MEDALLION_OLO="$PWD/target/debug/olo"

echo "==> medallion: Iceberg REST catalog and S3 server"
started scripts/lakehouse.sh
eval "$(scripts/lakehouse.sh start)"

echo "==> medallion: Spark, dbt and the Airflow worker's environment"
spark_env="$(scripts/spark.sh)"
eval "$spark_env"
worker_env="$(scripts/worker-env.sh)"

echo "==> medallion: Apache Airflow 3.3"
started scripts/airflow.sh
read -r OLO_TEST_AIRFLOW_URL OLO_TEST_AIRFLOW_DAGS < <(eval "$worker_env"; scripts/airflow.sh start)
OLO_TEST_AIRFLOW_PASSWORD="$(scripts/airflow.sh password)"
export OLO_TEST_AIRFLOW_URL OLO_TEST_AIRFLOW_DAGS OLO_TEST_AIRFLOW_PASSWORD
# The dbt profile folder the worker reads (e2e.py writes profiles.yml for the running Trino).
DBT_PROFILES_DIR="$(eval "$worker_env"; echo "$DBT_PROFILES_DIR")"
export DBT_PROFILES_DIR

echo "==> medallion: MLflow"
started scripts/mlflow.sh
OLO_TEST_MLFLOW_URL="$(scripts/mlflow.sh start)"
export OLO_TEST_MLFLOW_URL

echo "==> medallion: Trino"
started scripts/trino.sh
eval "$(scripts/trino.sh start)"

OLO_TEST_PYICEBERG_PYTHON="$(scripts/python-env.sh pyiceberg)/bin/python"
export OLO_TEST_PYICEBERG_PYTHON

python3 scripts/medallion/e2e.py
