#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run calls this).
#
# Installs what the tests need on first use and caches it under ~/.cache/olo:
#   - a Python venv with Apache Airflow 3.3.2 and the providers the rendered DAGs import
#     (the DAG tests load every rendered DAG in Airflow's own DagBag);
#   - PostgreSQL (Debian package), started for the run by scripts/postgres.sh and stopped after it
#     (the state store contract runs against it as well as SQLite);
#   - a running Apache Airflow 3.3 (api-server, scheduler, dag-processor from the same venv),
#     started by scripts/airflow.sh and stopped after the run (tests/airflow_e2e/ drives it);
#   - an MLflow tracking server (PyPI mlflow in its own cached venv, SQLite backend), started by
#     scripts/mlflow.sh and stopped after the run (tests/airflow_e2e/ links a run to it);
#   - Debian's chromium and chromium-driver (scripts/chromium.sh) for the dashboard test;
#   - Apache Iceberg's reference REST catalog server 1.10.1 (jars from Maven Central, fetched once
#     by mvn) and an S3 server (Versity's versitygw 1.8.0, built once with `go install`), started by
#     scripts/lakehouse.sh, and PyIceberg in a cached venv
#     (tests/lakehouse.rs applies to them and reads the result back with PyIceberg and curl);
#   - Trino 476 (server core + Iceberg plugin from Maven Central, on the Temurin 25 JDK), started
#     by scripts/trino.sh on that lakehouse (tests/trino_e2e.rs applies olo's catalogs and
#     rules.json to it and checks each role's access in Trino).
#   - PySpark 3.5 in a cached venv and the Iceberg Spark runtime, Iceberg AWS bundle and
#     openlineage-spark jars from Maven Central (scripts/spark.sh); Airflow's worker runs them for
#     the Spark task of tests/spark_e2e.rs and of the medallion;
#   - dbt-core 1.11 with dbt-trino and dbt-ol (openlineage-dbt) in a cached venv, on the worker's
#     PATH (scripts/worker-env.sh), for the medallion's dbt tasks;
#   - Schemathesis in a cached venv, which fuzzes olo's API from its OpenAPI document;
#   - then the medallion sample end to end on all of it (scripts/medallion-e2e.sh, docs/medallion.md);
#   - then cargo-fuzz (crates.io, cached) runs each fuzz target of fuzz/ for a minute
#     (scripts/fuzz.sh).
# A component that cannot be installed makes the run fail; no test is skipped for lack of one.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
# shellcheck source=scripts/cargo-env.sh
source scripts/cargo-env.sh

# The test build takes most of a cold run: start it now, in the background, so it overlaps the
# installs and the servers' start-up below; `cargo test` at the end then only runs the tests.
build_log="$(mktemp)"
cargo test --workspace --all-targets --locked --no-run "$@" >"$build_log" 2>&1 &
build_pid=$!

# The lakehouse servers are installed once (the REST catalog's jars by mvn, 14-25 s; versitygw
# by `go install`, about 4 min of CPU on a fresh machine): start that first, in the background, so
# it overlaps the Python installs and servers.
lakehouse_env="$(mktemp)"
lakehouse_started=0
if ! scripts/lakehouse.sh status; then
    lakehouse_started=1
fi
scripts/lakehouse.sh start >"$lakehouse_env" &
lakehouse_pid=$!

# Trino (~560 MB from Maven Central on a fresh machine): download it now, start it once the
# lakehouse it reads runs.
trino_started=0
if ! scripts/trino.sh status; then
    trino_started=1
fi
scripts/trino.sh install &
trino_install_pid=$!
# PySpark and the Spark jars (scripts/spark.sh), fetched in the background beside Airflow's venv:
# Airflow's worker needs them in its environment when it starts.
spark_env="$(mktemp)"
scripts/spark.sh >"$spark_env" &
spark_pid=$!

echo "==> Python venv with Apache Airflow (cached)"
venv="$(scripts/python-env.sh airflow)"
export OLO_AIRFLOW_PYTHON="$venv/bin/python"
"$OLO_AIRFLOW_PYTHON" -c "import airflow; print('    airflow', airflow.__version__)"

cleanup=()
trap 'for c in "${cleanup[@]}"; do $c || true; done' EXIT

echo "==> PostgreSQL for the state store contract tests (throwaway)"
if scripts/postgres.sh status; then
    # Someone started it by hand: use it and leave it running.
    OLO_TEST_POSTGRES_URL="$(scripts/postgres.sh url)"
else
    cleanup+=("scripts/postgres.sh stop")
    OLO_TEST_POSTGRES_URL="$(scripts/postgres.sh start)"
fi
export OLO_TEST_POSTGRES_URL
echo "    $OLO_TEST_POSTGRES_URL"

echo "==> Apache Airflow 3.3 for the end-to-end test (throwaway)"
# Its OpenLineage provider reports to the olo that tests/airflow_e2e/ runs on this port.
export OLO_TEST_LINEAGE_PORT="${OLO_TEST_LINEAGE_PORT:-28070}"
export OLO_TEST_LINEAGE_TOKEN="${OLO_TEST_LINEAGE_TOKEN:-olo-test-lineage-token}"
if ! scripts/airflow.sh status; then
    cleanup+=("scripts/airflow.sh stop")
fi
echo "    with Spark on its worker: PySpark 3.5 and the Iceberg and OpenLineage jars (cached)"
if ! wait "$spark_pid"; then
    echo "scripts/spark.sh failed" >&2
    exit 1
fi
# shellcheck disable=SC1090
source "$spark_env"
rm -f "$spark_env"
# The worker's environment (scripts/worker-env.sh): Spark for tests/spark_e2e.rs and the
# medallion, dbt and dbt-ol, the example's forecast package, the S3 keys of scripts/lakehouse.sh
# and the lineage API key, which rendered DAGs read by name.
worker_env="$(scripts/worker-env.sh)"
read -r OLO_TEST_AIRFLOW_URL OLO_TEST_AIRFLOW_DAGS < <(eval "$worker_env"; scripts/airflow.sh start)
OLO_TEST_AIRFLOW_PASSWORD="$(scripts/airflow.sh password)"
export OLO_TEST_AIRFLOW_URL OLO_TEST_AIRFLOW_DAGS OLO_TEST_AIRFLOW_PASSWORD
echo "    $OLO_TEST_AIRFLOW_URL, DAG folder $OLO_TEST_AIRFLOW_DAGS"

echo "==> MLflow tracking server for the end-to-end test (throwaway)"
if ! scripts/mlflow.sh status; then
    cleanup+=("scripts/mlflow.sh stop")
fi
OLO_TEST_MLFLOW_URL="$(scripts/mlflow.sh start)"
export OLO_TEST_MLFLOW_URL
echo "    $OLO_TEST_MLFLOW_URL"

# Airflow's own cron parser (croniter) judges the cron forms olo's validation takes
# (tests/e2e/validate.rs).
OLO_TEST_AIRFLOW_PYTHON="$(scripts/python-env.sh airflow)/bin/python"
export OLO_TEST_AIRFLOW_PYTHON

# The MLflow client of that venv checks that tasks' runs get their tags (tests/e2e/mlflow_run_context.rs).
OLO_TEST_MLFLOW_PYTHON="$(scripts/python-env.sh mlflow)/bin/python"
export OLO_TEST_MLFLOW_PYTHON

# OpenLineage's and Marquez's Python clients post events to olo and read them back through
# Marquez's API (tests/e2e/lineage.rs).
echo "==> Python venv with openlineage-python and marquez-python (cached)"
OLO_TEST_LINEAGE_PYTHON="$(scripts/python-env.sh lineage)/bin/python"
export OLO_TEST_LINEAGE_PYTHON

# Schemathesis fuzzes olo's API from its OpenAPI document (tests/e2e/schemathesis.rs).
echo "==> Python venv with Schemathesis (cached)"
OLO_TEST_SCHEMATHESIS="$(scripts/python-env.sh schemathesis)/bin/st"
export OLO_TEST_SCHEMATHESIS

echo "==> Headless Chromium and chromedriver for the dashboard test (Debian packages)"
OLO_TEST_CHROMEDRIVER="$(scripts/chromium.sh)"
export OLO_TEST_CHROMEDRIVER
echo "    $OLO_TEST_CHROMEDRIVER"

echo "==> Python venv with PyIceberg (cached), the lakehouse tests' independent reader"
pyiceberg="$(scripts/python-env.sh pyiceberg)"
export OLO_TEST_PYICEBERG_PYTHON="$pyiceberg/bin/python"

echo "==> Iceberg REST catalog (Iceberg's RESTCatalogServer 1.10.1) and S3 server (versitygw 1.8.0), throwaway"
if [ "$lakehouse_started" = 1 ]; then
    cleanup+=("scripts/lakehouse.sh stop")
fi
if ! wait "$lakehouse_pid"; then
    echo "scripts/lakehouse.sh start failed" >&2
    exit 1
fi
# shellcheck disable=SC1090
source "$lakehouse_env"
rm -f "$lakehouse_env"
echo "    $OLO_TEST_ICEBERG_URL (warehouse $OLO_TEST_ICEBERG_WAREHOUSE), S3 $OLO_TEST_S3_URL"

echo "==> Trino 476 on that lakehouse (throwaway; started in the background)"
if [ "$trino_started" = 1 ]; then
    cleanup+=("scripts/trino.sh stop")
fi
if ! wait "$trino_install_pid"; then
    echo "scripts/trino.sh install failed" >&2
    exit 1
fi
trino_env="$(mktemp)"
scripts/trino.sh start >"$trino_env" &
trino_pid=$!

if ! wait "$trino_pid"; then
    echo "scripts/trino.sh start failed" >&2
    exit 1
fi
# shellcheck disable=SC1090
source "$trino_env"
rm -f "$trino_env"
echo "    Trino $OLO_TEST_TRINO_URL (catalogs and rules.json in $OLO_TEST_TRINO_FOLDER)"

echo "==> cargo test: waiting for the test build started at the beginning"
if ! wait "$build_pid"; then
    echo "the test build failed; its output:" >&2
    cat "$build_log" >&2
    exit 1
fi
rm -f "$build_log"

# After the build: olo itself loads every shipped settings file (`olo settings`).
echo "==> Deployment files, validated offline: compose/, charts/olo, Dockerfile (scripts/check-deploy.sh)"
OLO_BIN=target/debug/olo scripts/check-deploy.sh

# The fuzz targets build apart (libFuzzer's instrumentation, every dependency again): at low
# priority while the tests run, which mostly wait on Airflow, Spark and Trino.
fuzz_build_log="$(mktemp)"
fuzz_build_pid=""
if [ "$#" -eq 0 ]; then
    nice -n 19 scripts/fuzz.sh build >"$fuzz_build_log" 2>&1 &
    fuzz_build_pid=$!
fi
echo "==> cargo test"
cargo test --workspace --all-targets --locked "$@"

# The medallion sample end to end on the same stack (it reuses every service started above). A
# run narrowed with cargo test arguments is a developer's partial run: it says so and stops here.
if [ "$#" -gt 0 ]; then
    echo "==> scripts/medallion-e2e.sh not run: cargo test was given arguments ($*)"
    exit 0
fi
echo "==> the medallion sample end to end (scripts/medallion-e2e.sh)"
scripts/medallion-e2e.sh

# libFuzzer on the config loader, webhooks, OpenLineage events and the plan comment, from the
# corpus in fuzz/corpus (scripts/fuzz.sh; OLO_FUZZ_SECONDS per target, default 60).
echo "==> fuzzing (scripts/fuzz.sh, cargo fuzz)"
if ! wait "$fuzz_build_pid"; then
    echo "building the fuzz targets failed; its output:" >&2
    cat "$fuzz_build_log" >&2
    exit 1
fi
rm -f "$fuzz_build_log"
scripts/fuzz.sh "${OLO_FUZZ_SECONDS:-60}"
