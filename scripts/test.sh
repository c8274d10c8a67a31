#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run calls this).
#
# Installs what the tests need on first use and caches it under ~/.cache/olo:
#   - a Python venv with Apache Airflow 3.3.2 and the providers the rendered DAGs import
#     (the DAG tests load every rendered DAG in Airflow's own DagBag);
#   - PostgreSQL (Debian package), started for the run by scripts/postgres.sh and stopped after it
#     (the state store contract runs against it as well as SQLite).
# A component that cannot be installed makes the run fail; no test is skipped for lack of one.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh

echo "==> Python venv with Apache Airflow (cached)"
venv="$(scripts/python-env.sh airflow)"
export OLO_AIRFLOW_PYTHON="$venv/bin/python"
"$OLO_AIRFLOW_PYTHON" -c "import airflow; print('    airflow', airflow.__version__)"

echo "==> PostgreSQL for the state store contract tests (throwaway)"
if scripts/postgres.sh status; then
    # Someone started it by hand: use it and leave it running.
    OLO_TEST_POSTGRES_URL="$(scripts/postgres.sh url)"
else
    trap 'scripts/postgres.sh stop' EXIT
    OLO_TEST_POSTGRES_URL="$(scripts/postgres.sh start)"
fi
export OLO_TEST_POSTGRES_URL
echo "    $OLO_TEST_POSTGRES_URL"

echo "==> cargo test"
cargo test --workspace --all-targets --locked "$@"
