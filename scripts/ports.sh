# shellcheck shell=bash
# Sourced by the scripts that start throwaway servers: how they choose a port.
#
# Linux gives outgoing connections a local port from net.ipv4.ip_local_port_range (32768-60999 by
# default). A server whose port lies in that range can lose it to any client socket between the
# check and its own bind (a CI run failed so: MLflow found 58090 "free", then got EADDRINUSE). So
# the default ports lie below that range, and a port counts as free only when this shell can bind
# it: a connect test sees listeners but misses the client sockets that hold a port.

# bindable PORT... : exit 0 when every PORT can be bound on 127.0.0.1 right now.
bindable() {
    python3 - "$@" <<'PY' 2>/dev/null
import socket, sys
held = []
for port in sys.argv[1:]:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", int(port)))
    held.append(s)
PY
}

# free_port FIRST [WIDTH] [STEP] : the first port p = FIRST + k*STEP such that p..p+WIDTH-1 can all
# be bound; fails after 100 tries.
free_port() {
    local p="$1" width="${2:-1}" step="${3:-1}" tries=0
    # shellcheck disable=SC2046  # one word per port
    while ! bindable $(seq "$p" $((p + width - 1))); do
        p=$((p + step))
        tries=$((tries + 1))
        if [ "$tries" -ge 100 ]; then
            echo "no free port from $1 on (tried 100); set the script's port variable" >&2
            return 1
        fi
    done
    echo "$p"
}
