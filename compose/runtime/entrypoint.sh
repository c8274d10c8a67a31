#!/usr/bin/env bash
# Entrypoint of the dev stack's runtime image (Airflow and Spark services): writes
# $SPARK_CONF_DIR/spark-defaults.conf from the mounted template with ${VAR} taken from the
# environment (the OpenLineage token), then hands over to the Airflow image's own entrypoint.
set -euo pipefail
template=/opt/olo-runtime/spark-defaults.conf.template
if [ -f "$template" ]; then
    mkdir -p "$SPARK_CONF_DIR"
    python - "$template" "$SPARK_CONF_DIR/spark-defaults.conf" <<'PY'
import os, string, sys
text = open(sys.argv[1]).read()
open(sys.argv[2], "w").write(string.Template(text).substitute(os.environ))
PY
fi
exec /entrypoint "$@"
