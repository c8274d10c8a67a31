#!/usr/bin/env bash
# Spark for the tests: PySpark 3.5 (spark-submit, from the cached venv of scripts/python-env.sh)
# plus the three jars a Spark task rendered by olo needs, fetched once from Maven Central into
# $OLO_CACHE/spark/jars (OLO_CACHE defaults to ~/.cache/olo) and checked against Maven Central's
# SHA-1 files:
#
#   org.apache.iceberg:iceberg-spark-runtime-3.5_2.12   Iceberg's Spark catalog and SQL extensions
#   org.apache.iceberg:iceberg-aws-bundle               S3FileIO and the AWS SDK it uses
#   io.openlineage:openlineage-spark_2.12               the OpenLineage listener
#
# and, for the worker's own Spark (not olo's `render.spark_jars`: a platform team puts them on its
# Spark image), Hadoop's S3A file system, which reads `s3a://` paths such as the example's landing
# files (Iceberg tables need none of it: S3FileIO is in the AWS bundle):
#
#   org.apache.hadoop:hadoop-aws (3.3.4, Spark 3.5's Hadoop) and
#   com.amazonaws:aws-java-sdk-bundle (1.12.262, the SDK it is built against; 280 MB)
#
#   scripts/spark.sh   prints `export ...` lines: OLO_TEST_SPARK_HOME (pyspark's folder, with
#                      bin/spark-submit: the Airflow worker's SPARK_HOME, and its bin on PATH),
#                      OLO_TEST_SPARK_PYTHON (the venv's python, the worker's PYSPARK_PYTHON:
#                      Airflow's own venv has pyspark-client 4, which a 3.5 driver must not
#                      import) and OLO_TEST_SPARK_JARS (the jars, comma-separated, for olo's
#                      `render.spark_jars`) and OLO_TEST_SPARK_S3A_JARS (the S3A jars,
#                      colon-separated, for spark.driver.extraClassPath: scripts/stack.sh)
#
# One fetcher at a time (a lock beside the jars); a second caller waits, then finds them. A jar
# that cannot be fetched or does not match its checksum fails the script.
set -euo pipefail
cd "$(dirname "$0")/.."

cache="${OLO_CACHE:-$HOME/.cache/olo}"
jars_dir="$cache/spark/jars"
central="https://repo1.maven.org/maven2"
iceberg_version=1.10.1
openlineage_version=1.37.0
# group:artifact:version, as in `spark.jars.packages` (and olo's default render.spark_packages).
coordinates=(
    "org.apache.iceberg:iceberg-spark-runtime-3.5_2.12:$iceberg_version"
    "org.apache.iceberg:iceberg-aws-bundle:$iceberg_version"
    "io.openlineage:openlineage-spark_2.12:$openlineage_version"
)
s3a_coordinates=(
    "org.apache.hadoop:hadoop-aws:3.3.4"
    "com.amazonaws:aws-java-sdk-bundle:1.12.262"
)

say() { echo "spark.sh: $*" >&2; }

venv="$(scripts/python-env.sh spark)"
spark_home="$("$venv/bin/python" -c 'import os, pyspark; print(os.path.dirname(pyspark.__file__))')"
[ -x "$spark_home/bin/spark-submit" ] || { say "$spark_home/bin/spark-submit missing after installing pyspark"; exit 1; }
command -v java >/dev/null || { say "no java on PATH (Spark 3.5 needs Java 17: apt-get install openjdk-17-jre-headless)"; exit 1; }

mkdir -p "$jars_dir"
exec 9>"$jars_dir/.lock"
flock 9

# fetch GROUP:ARTIFACT:VERSION: the jar's path in the cache, fetched and checked on first use.
fetch() {
    local group artifact version file path url want got
    IFS=: read -r group artifact version <<<"$1"
    file="$artifact-$version.jar"
    path="$jars_dir/$file"
    if [ ! -f "$path" ]; then
        url="$central/${group//.//}/$artifact/$version/$file"
        say "fetching $1 (first run only)"
        curl -fsSL --retry 3 -o "$path.part" "$url" || { say "could not fetch $url"; rm -f "$path.part"; exit 1; }
        want="$(curl -fsSL --retry 3 "$url.sha1" | cut -c1-40)" || { say "could not fetch $url.sha1"; exit 1; }
        got="$(sha1sum "$path.part" | cut -c1-40)"
        if [ "$want" != "$got" ]; then
            say "$file: SHA-1 $got, Maven Central says $want; not kept"
            rm -f "$path.part"
            exit 1
        fi
        mv "$path.part" "$path"
    fi
    echo "$path"
}

paths=()
for c in "${coordinates[@]}"; do
    paths+=("$(fetch "$c")")
done
s3a_paths=()
for c in "${s3a_coordinates[@]}"; do
    s3a_paths+=("$(fetch "$c")")
done

echo "export OLO_TEST_SPARK_HOME=$spark_home"
echo "export OLO_TEST_SPARK_PYTHON=$venv/bin/python"
echo "export OLO_TEST_SPARK_JARS=$(IFS=,; echo "${paths[*]}")"
echo "export OLO_TEST_SPARK_S3A_JARS=$(IFS=:; echo "${s3a_paths[*]}")"
