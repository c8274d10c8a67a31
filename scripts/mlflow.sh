#!/usr/bin/env bash
# A throwaway MLflow tracking server for the end-to-end tests, on 127.0.0.1.
#
#   scripts/mlflow.sh [start]   start it (or reuse the one running); prints its URL
#   scripts/mlflow.sh status    exit 0 when it answers
#   scripts/mlflow.sh stop      stop it and delete its folder
#   scripts/mlflow.sh pause     stop it and keep its folder: the next start carries on with its
#                               runs and artifacts (local-stack.sh)
#
# Runs `mlflow server` from the cached venv of scripts/python-env.sh with a SQLite backend store
# and local artifacts in ${OLO_MLFLOW_DIR:-/tmp/olo-mlflow}, on the first free port from
# ${OLO_MLFLOW_PORT:-28090}. Only the URL goes to stdout.
set -euo pipefail
cd "$(dirname "$0")/.."

dir="${OLO_MLFLOW_DIR:-/tmp/olo-mlflow}"
first_port="${OLO_MLFLOW_PORT:-28090}"
say() { echo "mlflow.sh: $*" >&2; }

port_of() { cat "$dir/port" 2>/dev/null; }

answers() {
    local port
    port="$(port_of)" || return 1
    [ -n "$port" ] && curl -fsS -o /dev/null "http://127.0.0.1:$port/health" 2>/dev/null
}

# shellcheck source=scripts/ports.sh disable=SC1091
. "$(dirname "${BASH_SOURCE[0]}")/ports.sh"

# Stops the server (the folder stays).
halt() {
    if [ -f "$dir/server.pid" ]; then
        local pid
        pid="$(cat "$dir/server.pid")"
        kill -TERM -- "-$pid" 2>/dev/null || true
        for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
        kill -KILL -- "-$pid" 2>/dev/null || true
        rm -f "$dir/server.pid"
    fi
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
    if answers; then
        echo "http://127.0.0.1:$(port_of)"
        return
    fi
    if [ -f "$dir/kept" ]; then
        say "carrying on with the paused MLflow in $dir (scripts/mlflow.sh stop deletes it)"
        halt
    else
        stop
    fi
    local venv port
    venv="$(scripts/python-env.sh mlflow)"
    mkdir -p "$dir/artifacts"
    port="$(free_port "$first_port")"
    echo "$port" >"$dir/port"
    setsid "$venv/bin/mlflow" server \
        --backend-store-uri "sqlite:///$dir/mlflow.db" \
        --default-artifact-root "$dir/artifacts" \
        --host 127.0.0.1 --port "$port" --workers 1 \
        >"$dir/server.log" 2>&1 &
    echo $! >"$dir/server.pid"
    say "waiting for MLflow on 127.0.0.1:$port"
    for _ in $(seq 1 300); do
        if answers; then
            echo "http://127.0.0.1:$port"
            return
        fi
        if ! kill -0 "$(cat "$dir/server.pid")" 2>/dev/null; then
            say "mlflow server exited; its log:"
            tail -n 60 "$dir/server.log" >&2
            exit 1
        fi
        sleep 1
    done
    say "MLflow did not answer within 300 s; its log:"
    tail -n 60 "$dir/server.log" >&2
    exit 1
}

case "${1:-start}" in
  start) start ;;
  status) answers ;;
  stop) stop ;;
  pause) pause ;;
  *) say "usage: scripts/mlflow.sh [start|status|stop|pause]"; exit 2 ;;
esac
