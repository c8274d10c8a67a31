#!/usr/bin/env bash
# A throwaway Apache Airflow 3.3 for the end-to-end tests, on 127.0.0.1.
#
#   scripts/airflow.sh [start]   start it (or reuse the one running); prints `URL DAGS_FOLDER`
#   scripts/airflow.sh status    exit 0 when its API answers
#   scripts/airflow.sh password  print the admin password (simple auth manager)
#   scripts/airflow.sh stop      stop it and delete its folder
#   scripts/airflow.sh pause     stop it and keep its folder: the next start carries on with its
#                                metadata database, DAG folder, logs and password (local-stack.sh)
#
# Runs Airflow's separate components (api-server, scheduler, dag-processor; `airflow standalone`
# does not stop cleanly on SIGTERM) from the cached venv of scripts/python-env.sh, with SQLite as
# its metadata database and the LocalExecutor, in ${OLO_AIRFLOW_DIR:-/tmp/olo-airflow}. The DAG
# processor looks for new files every 3 s so a DAG written by olo shows up within seconds. The
# API port is the first free one from ${OLO_AIRFLOW_PORT:-28080}; the worker log server port is
# moved off Airflow's default 8793. Its OpenLineage provider sends to olo on 127.0.0.1 at
# ${OLO_TEST_LINEAGE_PORT:-28070} with the API token ${OLO_TEST_LINEAGE_TOKEN}. Only
# `URL DAGS_FOLDER` goes to stdout.
#
# For a second instance beside the test one (scripts/bench-airflow-live.sh, the reparse test of
# tests/airflow_e2e/), set OLO_AIRFLOW_DIR and OLO_AIRFLOW_PORT, and optionally:
#   OLO_AIRFLOW_DAGS                        its DAG folder (default: $OLO_AIRFLOW_DIR/dags, which
#                                           start and stop empty; one of yours is kept)
#   OLO_AIRFLOW_REFRESH_INTERVAL            [dag_processor] refresh_interval, seconds (default 3;
#                                           `airflow`: Airflow's own default, 300)
#   OLO_AIRFLOW_MIN_FILE_PROCESS_INTERVAL   [dag_processor] min_file_process_interval (default 3;
#                                           `airflow`: Airflow's own default, 30)
#   OLO_AIRFLOW_COMPONENTS                  default "api-server scheduler dag-processor"; parsing
#                                           needs only "api-server dag-processor"
# Other AIRFLOW__* variables of the caller's environment reach Airflow as they are.
set -euo pipefail
cd "$(dirname "$0")/.."

dir="${OLO_AIRFLOW_DIR:-/tmp/olo-airflow}"
first_port="${OLO_AIRFLOW_PORT:-28080}"
dags="${OLO_AIRFLOW_DAGS:-$dir/dags}"
refresh_interval="${OLO_AIRFLOW_REFRESH_INTERVAL:-3}"
min_file_process_interval="${OLO_AIRFLOW_MIN_FILE_PROCESS_INTERVAL:-3}"
components="${OLO_AIRFLOW_COMPONENTS:-api-server scheduler dag-processor}"
say() { echo "airflow.sh: $*" >&2; }

venv="$(scripts/python-env.sh airflow)"

env_for() {
    local port="$1"
    export PATH="$venv/bin:$PATH"
    export AIRFLOW_HOME="$dir/home"
    export AIRFLOW__CORE__DAGS_FOLDER="$dags"
    export AIRFLOW__CORE__LOAD_EXAMPLES=False
    export AIRFLOW__CORE__EXECUTOR=LocalExecutor
    export AIRFLOW__CORE__PARALLELISM=4
    export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS="admin:admin"
    export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE="$dir/home/passwords.json"
    export AIRFLOW__CORE__EXECUTION_API_SERVER_URL="http://127.0.0.1:$port/execution/"
    export AIRFLOW__API__BASE_URL="http://127.0.0.1:$port"
    export AIRFLOW__API__HOST=127.0.0.1
    export AIRFLOW__API__PORT="$port"
    export AIRFLOW__API_AUTH__JWT_SECRET="olo-test-only-secret-olo-test-only-secret"
    export AIRFLOW__API_AUTH__JWT_EXPIRATION_TIME=3600
    if [ "$refresh_interval" != airflow ]; then
        export AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL="$refresh_interval"
    fi
    if [ "$min_file_process_interval" != airflow ]; then
        export AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL="$min_file_process_interval"
    fi
    export AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC=1
    export AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT=$((port + 1))
    export AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT=$((port + 2))
    export AIRFLOW__DATABASE__SQL_ALCHEMY_CONN="sqlite:///$dir/home/airflow.db"
    # The OpenLineage provider reports every task to olo's lineage endpoint (tests/airflow_e2e/
    # runs olo on that port with that token); while nothing listens there it logs and goes on.
    export AIRFLOW__OPENLINEAGE__NAMESPACE=airflow
    export AIRFLOW__OPENLINEAGE__TRANSPORT="$transport"
}

lineage_port="${OLO_TEST_LINEAGE_PORT:-28070}"
lineage_token="${OLO_TEST_LINEAGE_TOKEN:-olo-test-lineage-token}"
transport="{\"type\": \"http\", \"url\": \"http://127.0.0.1:$lineage_port\", \"endpoint\": \"api/v1/lineage\", \"timeout\": 5, \"auth\": {\"type\": \"api_key\", \"apiKey\": \"$lineage_token\"}}"
# What a running instance must have been started with to be reused.
wanted="$transport refresh=$refresh_interval min_file=$min_file_process_interval dags=$dags components=$components policy=refused-tag"

port_of() { cat "$dir/port" 2>/dev/null; }

answers() {
    local port
    port="$(port_of)" || return 1
    [ -n "$port" ] && curl -fsS -o /dev/null "http://127.0.0.1:$port/api/v2/monitor/health" 2>/dev/null
}

# shellcheck source=scripts/ports.sh disable=SC1091
. "$(dirname "${BASH_SOURCE[0]}")/ports.sh"

# Stops the components (the folder stays).
halt() {
    for pidfile in "$dir"/*.pid; do
        [ -f "$pidfile" ] || continue
        local pid
        pid="$(cat "$pidfile")"
        # Each component was started in its own process group: stop the group.
        kill -TERM -- "-$pid" 2>/dev/null || true
    done
    for pidfile in "$dir"/*.pid; do
        [ -f "$pidfile" ] || continue
        local pid
        pid="$(cat "$pidfile")"
        for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
        kill -KILL -- "-$pid" 2>/dev/null || true
        rm -f "$pidfile"
    done
}

stop() {
    halt
    rm -rf "$dir"
}

# Stops it and marks the folder as kept: start no longer clears it.
pause() {
    halt
    if [ -d "$dir" ]; then touch "$dir/kept"; fi
}

start() {
    # Reuse a running Airflow only when it reports lineage where this run expects it and has
    # the same intervals, folder and components.
    if answers && [ "$(cat "$dir/transport" 2>/dev/null)" = "$wanted" ]; then
        echo "http://127.0.0.1:$(port_of) $dags"
        return
    fi
    if [ -f "$dir/kept" ]; then
        say "carrying on with the paused Airflow in $dir (scripts/airflow.sh stop deletes it)"
        halt
    else
        stop
    fi
    mkdir -p "$dir/home/config" "$dags" "$dir/logs"
    # A cluster policy, as platform teams set them (Airflow's airflow_local_settings.py): a DAG
    # tagged `olo-test-refused` is refused at import. olo cannot know such rules, so it sees the
    # refusal as an import error after an apply (tests/airflow_e2e/ drives that end to end).
    cat >"$dir/home/config/airflow_local_settings.py" <<'PYEOF2'
from airflow.exceptions import AirflowClusterPolicyViolation


def dag_policy(dag):
    if "olo-test-refused" in (dag.tags or ()):
        raise AirflowClusterPolicyViolation(
            f"DAG {dag.dag_id} is tagged olo-test-refused, which this Airflow's policy refuses"
        )
PYEOF2
    local port
    # The API port and the two log server ports after it.
    port="$(free_port "$first_port" 3 10)"
    echo "$port" >"$dir/port"
    echo "$wanted" >"$dir/transport"
    env_for "$port"
    say "migrating the metadata database"
    airflow db migrate >"$dir/logs/migrate.log" 2>&1 || { tail -n 40 "$dir/logs/migrate.log" >&2; exit 1; }
    for component in $components; do
        setsid airflow "$component" >"$dir/logs/$component.log" 2>&1 &
        echo $! >"$dir/$component.pid"
    done
    say "waiting for the API on 127.0.0.1:$port"
    for _ in $(seq 1 300); do
        if answers; then
            echo "http://127.0.0.1:$port $dags"
            return
        fi
        for component in $components; do
            if ! kill -0 "$(cat "$dir/$component.pid")" 2>/dev/null; then
                say "$component exited; its log:"
                tail -n 60 "$dir/logs/$component.log" >&2
                exit 1
            fi
        done
        sleep 1
    done
    say "the API did not answer within 300 s; api-server log:"
    tail -n 60 "$dir/logs/api-server.log" >&2
    exit 1
}

case "${1:-start}" in
  start) start ;;
  status) answers ;;
  password)
    python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["admin"])' "$dir/home/passwords.json" ;;
  stop) stop ;;
  pause) pause ;;
  *) say "usage: scripts/airflow.sh [start|status|password|stop|pause]"; exit 2 ;;
esac
