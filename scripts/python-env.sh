#!/usr/bin/env bash
# Creates (once) and caches the Python virtualenvs the test suite and benchmarks use.
#
#   scripts/python-env.sh airflow     -> Apache Airflow 3.3 + the providers the rendered DAGs import
#   scripts/python-env.sh bench       -> check-jsonschema, dag-factory (peers measured in BENCHMARKS.md)
#   scripts/python-env.sh dbt         -> dbt-core with the Trino adapter and dbt-ol (openlineage-dbt), which
#                                        the Airflow worker runs for dbt tasks (scripts/medallion-e2e.sh)
#   scripts/python-env.sh deploy      -> the deployment validators scripts/check-deploy.sh runs: Helm 4's
#                                        SDK (helm-python-sdk bundles it as a native library), the
#                                        Kubernetes schemas (kubernetes-validate), yamllint
#   scripts/python-env.sh lineage     -> OpenLineage's Python client (openlineage-python: posts events, gzip)
#                                        and Marquez's (marquez-python: the read API), which
#                                        tests/e2e/lineage.rs runs against olo
#   scripts/python-env.sh mlflow      -> the MLflow tracking server (tests/mlflow_e2e.rs)
#   scripts/python-env.sh schemathesis -> Schemathesis, which fuzzes olo's API against its own OpenAPI
#                                        document (tests/e2e/schemathesis.rs)
#   scripts/python-env.sh pyiceberg   -> PyIceberg with its SQL (SQLite) catalog and PyArrow FileIO, the
#                                        independent reader tests/iceberg/check.py runs
#   scripts/python-env.sh spark       -> PySpark 3.5 (spark-submit and Spark's own jars; Scala 2.12), which
#                                        the Airflow worker runs for Spark tasks (scripts/spark.sh adds the
#                                        Iceberg and OpenLineage jars; tests/spark_e2e.rs)
#
# Prints the venv's path on stdout. Venvs live under $OLO_CACHE (default ~/.cache/olo) so a fresh
# clone on the same machine reuses them; a stamp file records the exact requirement set, and a venv
# whose stamp differs is rebuilt.
set -euo pipefail

cache="${OLO_CACHE:-$HOME/.cache/olo}"
kind="${1:?usage: scripts/python-env.sh airflow|bench|dbt|deploy|lineage|mlflow|pyiceberg|schemathesis|spark}"

case "$kind" in
  airflow)
    reqs=(
      "apache-airflow==3.3.2"
      "apache-airflow-providers-standard"
      "apache-airflow-providers-apache-spark"
      "apache-airflow-providers-common-sql"
      "apache-airflow-providers-trino"
      "apache-airflow-providers-openlineage"
      "dag-factory==1.1.0"
      # MLflow's client for the tasks the worker runs (the medallion's `train`, python -m
      # forecast.train): the tracking client only, no server.
      "mlflow-skinny==3.17.2"
    )
    ;;
  bench)
    reqs=("check-jsonschema==0.39.0" "ruamel.yaml.clib")
    ;;
  dbt)
    # Its own venv, not Airflow's: dbt-core pins its own protobuf, click and Jinja. The worker
    # finds `dbt` and `dbt-ol` on PATH (scripts/medallion-e2e.sh links them into one folder).
    reqs=("dbt-core==1.11.2" "dbt-trino==1.11.0" "openlineage-dbt==1.37.0")
    ;;
  deploy)
    reqs=("helm-python-sdk==0.2.2" "kubernetes-validate==1.37.0" "yamllint==1.38.0")
    ;;
  lineage)
    # marquez-python imports pytz without declaring it (its utils.py).
    reqs=("openlineage-python==1.54.0" "marquez-python==0.50.0" "pytz==2026.6")
    ;;
  mlflow)
    reqs=("mlflow==3.17.2")
    ;;
  pyiceberg)
    # The extras bring SQLAlchemy (SqlCatalog) and PyArrow (the FileIO that reads metadata files,
    # local or S3), so nothing else is needed to load a table's schema.
    reqs=("pyiceberg[sql-sqlite,pyarrow]==0.12.0")
    ;;
  schemathesis)
    reqs=("schemathesis==4.32.5")
    ;;
  spark)
    # 3.5, not 4.x: the Iceberg runtime and openlineage-spark jars scripts/spark.sh fetches are
    # built for Spark 3.5 with Scala 2.12, and Spark 3.5 runs on the default Java 17.
    reqs=("pyspark==3.5.8")
    ;;
  *)
    echo "unknown environment '$kind' (expected airflow, bench, dbt, deploy, lineage, mlflow, pyiceberg, schemathesis or spark)" >&2
    exit 2
    ;;
esac

venv="$cache/venv-$kind"
stamp="$venv/.olo-stamp"
want="$(printf '%s\n' "${reqs[@]}")"

mkdir -p "$cache"
# One creator at a time (.ci/run prepares the venvs in the background while the lints run, and
# scripts/test.sh asks for them again): a second caller waits, then finds the stamp.
exec 9>"$venv.lock"
flock 9

if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
  echo "$venv"
  exit 0
fi

echo "creating $venv (first run only; this takes a few minutes)" >&2
rm -rf "$venv"
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check --upgrade pip >&2
"$venv/bin/pip" install --quiet --disable-pip-version-check "${reqs[@]}" >&2
printf '%s' "$want" >"$stamp"
echo "$venv"
