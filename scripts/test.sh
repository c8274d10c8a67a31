#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run calls this).
#
# Installs what the tests need on first use and caches it under ~/.cache/olo:
#   - a Python venv with Apache Airflow 3.3.2 and the providers the rendered DAGs import
#     (the DAG tests load every rendered DAG in Airflow's own DagBag).
# A component that cannot be installed makes the run fail; no test is skipped for lack of one.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "==> Python venv with Apache Airflow (cached)"
venv="$(scripts/python-env.sh airflow)"
export OLO_AIRFLOW_PYTHON="$venv/bin/python"
"$OLO_AIRFLOW_PYTHON" -c "import airflow; print('    airflow', airflow.__version__)"

echo "==> cargo test"
cargo test --workspace --all-targets --locked "$@"
