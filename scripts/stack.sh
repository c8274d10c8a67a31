# shellcheck shell=bash
# The platform olo drives, brought up from the service scripts, for scripts/medallion-e2e.sh and
# scripts/local-stack.sh (source it; it is not run on its own):
#
#   stack_up    the Iceberg REST catalog and S3 server (scripts/lakehouse.sh), PySpark with the
#               Iceberg and OpenLineage jars (scripts/spark.sh), dbt-trino with dbt-ol, Apache
#               Airflow 3.3 whose worker has all of that (scripts/worker-env.sh, airflow.sh),
#               MLflow (scripts/mlflow.sh) and Trino on that lakehouse (scripts/trino.sh).
#               Reuses what already runs. Exports the OLO_TEST_* variables the services print,
#               OLO_TEST_AIRFLOW_URL/_DAGS/_PASSWORD, OLO_TEST_MLFLOW_URL and DBT_PROFILES_DIR,
#               and sets stack_started to the services it started (not the reused ones), in
#               order. Writes the worker's spark-defaults.conf: Hadoop's S3A (the jars of
#               scripts/spark.sh) pointed at the S3 server, so Spark tasks read `s3a://` paths.
#   stack_landing   puts the example's sample order exports into the S3 server at
#               s3://landing/sales/orders/ (the default `landing` param of sales/orders_daily).
#
# Where each service keeps its folder comes from the caller's OLO_LAKEHOUSE_DIR, OLO_AIRFLOW_DIR,
# OLO_MLFLOW_DIR and OLO_TRINO_DIR (each script's default: /tmp/olo-<service>); what Airflow's
# lineage provider and dbt-ol report to, from OLO_TEST_LINEAGE_PORT and OLO_TEST_LINEAGE_TOKEN.
# Needs the caller in the project folder.

stack_started=()

stack_say() { echo "stack.sh: $*" >&2 || true; }

# stack_track NAME: remember NAME as started by this run when it is not running yet.
stack_track() {
    if ! "scripts/$1.sh" status >/dev/null 2>&1; then
        stack_started+=("$1")
    fi
}

stack_up() {
    local out worker_env
    stack_say "Iceberg REST catalog and S3 server (scripts/lakehouse.sh)"
    stack_track lakehouse
    out="$(scripts/lakehouse.sh start)"
    eval "$out"

    stack_say "PySpark with the Iceberg and OpenLineage jars, dbt-trino and dbt-ol (the Airflow worker's environment)"
    out="$(scripts/spark.sh)"
    eval "$out"
    worker_env="$(scripts/worker-env.sh)"

    stack_say "Apache Airflow 3.3 (scripts/airflow.sh)"
    stack_track airflow
    out="$(eval "$worker_env" && scripts/airflow.sh start)"
    read -r OLO_TEST_AIRFLOW_URL OLO_TEST_AIRFLOW_DAGS <<<"$out"
    OLO_TEST_AIRFLOW_PASSWORD="$(scripts/airflow.sh password)"
    export OLO_TEST_AIRFLOW_URL OLO_TEST_AIRFLOW_DAGS OLO_TEST_AIRFLOW_PASSWORD
    # The dbt profile folder the worker reads (scripts/medallion/stack_setup.py writes it).
    DBT_PROFILES_DIR="$(eval "$worker_env" && echo "$DBT_PROFILES_DIR")"
    export DBT_PROFILES_DIR

    stack_spark_defaults

    stack_say "MLflow (scripts/mlflow.sh)"
    stack_track mlflow
    OLO_TEST_MLFLOW_URL="$(scripts/mlflow.sh start)"
    export OLO_TEST_MLFLOW_URL

    stack_say "Trino on that lakehouse (scripts/trino.sh)"
    stack_track trino
    out="$(scripts/trino.sh start)"
    eval "$out"
}

# The worker's Spark settings beyond what olo renders into each task, as a platform team sets them
# on its Spark image: S3A on the class path and pointed at the S3 server (path-style, plain HTTP,
# its keys). spark-submit reads the file at each submit, so writing it after Airflow started works.
stack_spark_defaults() {
    local conf_dir
    conf_dir="$(eval "$worker_env" && echo "$SPARK_CONF_DIR")"
    mkdir -p "$conf_dir"
    cat >"$conf_dir/spark-defaults.conf" <<EOF
# Written by scripts/stack.sh for the S3 server at $OLO_TEST_S3_URL.
spark.driver.extraClassPath                $OLO_TEST_SPARK_S3A_JARS
spark.executor.extraClassPath              $OLO_TEST_SPARK_S3A_JARS
spark.hadoop.fs.s3a.endpoint               $OLO_TEST_S3_URL
spark.hadoop.fs.s3a.endpoint.region        $OLO_TEST_S3_REGION
spark.hadoop.fs.s3a.path.style.access      true
spark.hadoop.fs.s3a.connection.ssl.enabled false
spark.hadoop.fs.s3a.access.key             $OLO_TEST_S3_ACCESS_KEY
spark.hadoop.fs.s3a.secret.key             $OLO_TEST_S3_SECRET_KEY
EOF
}

# stack_s3_put BUCKET/KEY FILE, or stack_s3_put BUCKET: create the bucket when it is missing.
stack_s3_put() {
    local sign=(--aws-sigv4 "aws:amz:$OLO_TEST_S3_REGION:s3" --user "$OLO_TEST_S3_ACCESS_KEY:$OLO_TEST_S3_SECRET_KEY"
        -H "x-amz-content-sha256: UNSIGNED-PAYLOAD")
    if [ $# = 1 ]; then
        curl -fsS -o /dev/null -I "${sign[@]}" "$OLO_TEST_S3_URL/$1" 2>/dev/null ||
            curl -fsS -o /dev/null -X PUT "${sign[@]}" "$OLO_TEST_S3_URL/$1"
    else
        curl -fsS -o /dev/null -X PUT "${sign[@]}" --data-binary "@$2" "$OLO_TEST_S3_URL/$1"
    fi
}

stack_landing() {
    local tmp file
    tmp="$(mktemp -d)"
    python3 scripts/medallion/stack_setup.py landing "$tmp"
    stack_s3_put landing
    for file in "$tmp"/*.json; do
        stack_s3_put "landing/sales/orders/$(basename "$file")" "$file"
    done
    rm -rf "$tmp"
    stack_say "the sample order exports are in s3://landing/sales/orders/ (what sales/orders_daily reads by default)"
}
