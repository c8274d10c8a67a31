#!/usr/bin/env bash
# Prints the `export ...` lines of the environment the test Airflow's worker runs tasks in, so the
# example repository's tasks find what a platform team installs on its workers:
#
#   - Spark (tests/spark_e2e.rs, the medallion's `ingest`): spark-submit on PATH, SPARK_HOME and the
#     Python PySpark runs (scripts/spark.sh must have been sourced: OLO_TEST_SPARK_HOME/_PYTHON),
#     and SPARK_CONF_DIR (OLO_SPARK_CONF_DIR, default $OLO_CACHE/spark-conf), whose
#     spark-defaults.conf scripts/stack.sh writes for the running S3 server (S3A, for `s3a://`);
#   - dbt (the medallion's `revenue` and `customer_summary`): `dbt` and `dbt-ol` on PATH from the
#     venv of scripts/python-env.sh dbt (linked into one folder, so the venv's `python` stays off
#     PATH), DBT_PROFILES_DIR a folder (OLO_DBT_PROFILES_DIR, default $OLO_CACHE/dbt-profiles)
#     whose profiles.yml scripts/medallion/stack_setup.py writes for the running Trino, and dbt-ol's OpenLineage transport (olo on OLO_TEST_LINEAGE_PORT, with the key);
#   - the example's Python package `forecast` (examples/sales-forecast) on PYTHONPATH, for the
#     `train` task's `python -m forecast.train`;
#   - the S3 keys of scripts/lakehouse.sh and the lineage API key, which rendered DAGs read by name.
#
# Usage: eval "$(scripts/worker-env.sh)" before scripts/airflow.sh start (scripts/test.sh does).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache="${OLO_CACHE:-$HOME/.cache/olo}"
: "${OLO_TEST_SPARK_HOME:?source the output of scripts/spark.sh first}"
: "${OLO_TEST_SPARK_PYTHON:?source the output of scripts/spark.sh first}"
lineage_port="${OLO_TEST_LINEAGE_PORT:-28070}"
lineage_token="${OLO_TEST_LINEAGE_TOKEN:-olo-test-lineage-token}"

dbt_venv="$(scripts/python-env.sh dbt)"
dbt_bin="$cache/worker-bin"
profiles="${OLO_DBT_PROFILES_DIR:-$cache/dbt-profiles}"
spark_conf="${OLO_SPARK_CONF_DIR:-$cache/spark-conf}"
mkdir -p "$dbt_bin" "$profiles" "$spark_conf"
ln -sf "$dbt_venv/bin/dbt" "$dbt_bin/dbt"
ln -sf "$dbt_venv/bin/dbt-ol" "$dbt_bin/dbt-ol"

cat <<ENV
export SPARK_HOME='$OLO_TEST_SPARK_HOME'
export PYSPARK_PYTHON='$OLO_TEST_SPARK_PYTHON'
export SPARK_CONF_DIR='$spark_conf'
export PATH='$OLO_TEST_SPARK_HOME/bin:$dbt_bin':"\$PATH"
export DBT_PROFILES_DIR='$profiles'
export OPENLINEAGE_URL='http://127.0.0.1:$lineage_port'
export OPENLINEAGE_ENDPOINT='api/v1/lineage'
export OPENLINEAGE_API_KEY='$lineage_token'
export PYTHONPATH='$here/examples/sales-forecast'
export OLO_S3_ACCESS_KEY=olo-test
export OLO_S3_SECRET_KEY=olo-test-secret
export OLO_OPENLINEAGE_API_KEY='$lineage_token'
ENV
