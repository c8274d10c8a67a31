#!/usr/bin/env bash
# The bundled medallion sample (examples-repo/), end to end on real components:
#
#   scripts/medallion-e2e.sh
#
# Brings up the platform with scripts/stack.sh, reusing what already runs (scripts/test.sh calls
# this after cargo test, with everything up): the Iceberg REST catalog and S3 server, PySpark
# with the Iceberg and OpenLineage jars, dbt-trino with dbt-ol, Apache Airflow 3.3 with that
# worker environment, MLflow, Trino, and PyIceberg; builds olo; then scripts/medallion/e2e.py commits the example
# repository, lets `olo serve` apply it, triggers sales/orders_daily, sales/customers_hourly and
# marketing/campaign_report through olo's API and checks the results, the MLflow link and the
# lineage. It prints one line per check and the timings, and exits non-zero on any miss.
#
# What it starts it stops at the end; what was running stays running.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/cargo-env.sh disable=SC1091
. scripts/cargo-env.sh

# shellcheck source=scripts/stack.sh disable=SC1091
. scripts/stack.sh

export OLO_TEST_LINEAGE_PORT="${OLO_TEST_LINEAGE_PORT:-28070}"
export OLO_TEST_LINEAGE_TOKEN="${OLO_TEST_LINEAGE_TOKEN:-olo-test-lineage-token}"

echo "==> medallion: the olo binary"
cargo build --locked --bin olo --quiet
export OLO_MEDALLION_OLO="$PWD/target/debug/olo"

# What this run starts it stops at the end (in reverse order).
stop_started() {
    local i
    for ((i = ${#stack_started[@]} - 1; i >= 0; i--)); do
        "scripts/${stack_started[i]}.sh" stop || true
    done
}
trap stop_started EXIT
echo "==> medallion: the platform (scripts/stack.sh)"
stack_up
stack_landing

OLO_TEST_PYICEBERG_PYTHON="$(scripts/python-env.sh pyiceberg)/bin/python"
export OLO_TEST_PYICEBERG_PYTHON

python3 scripts/medallion/e2e.py
