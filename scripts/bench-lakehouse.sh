#!/usr/bin/env bash
# Lakehouse benchmark: `olo apply` of W workspaces x N namespaces (+ each workspace's parent) and T
# declared tables per workspace, into the embedded SQL catalog (SQLite) and into an Iceberg REST
# catalog (Iceberg's reference RESTCatalogServer 1.10.1 from scripts/lakehouse.sh); then the same apply again (nothing to do, a
# full read-back of every resource); beside PyIceberg creating the same namespaces (same
# properties) and tables in the same catalogs (bench/lakehouse_peer.py), in the same run.
#
#   scripts/bench-lakehouse.sh [WORKSPACES] [NAMESPACES] [TABLES]     (default 50 4 2)
set -euo pipefail
cd "$(dirname "$0")/.."
ws="${1:-50}"; ns="${2:-4}"; tables="${3:-2}"
# The same flags as the tests (scripts/cargo-env.sh), so that their build is reused.
# shellcheck source=scripts/cargo-env.sh
source scripts/cargo-env.sh
cargo build --release -q --workspace --locked --bin olo
eval "$(scripts/lakehouse.sh start)"
py="$(scripts/python-env.sh pyiceberg)/bin/python"
work="$(mktemp -d)"
trap 'rm -rf "$work" /tmp/olo-bench-lakehouse' EXIT
run_id="b$(date +%s)"

# A repository of $ws workspaces (names unique per run: the REST catalog outlives it).
make_repo() { # $1: dir, $2: workspace prefix
    local dir="$1" prefix="$2"
    mkdir -p "$dir"
    for w in $(seq 0 $((ws - 1))); do
        local name="${prefix}${w}" d="$dir/workspaces/${prefix}${w}"
        mkdir -p "$d"
        {
            echo "apiVersion: olo/v1"; echo "kind: Workspace"
            echo "metadata: {name: $name, owners: [data@example.com], description: benchmark workspace}"
            echo "spec:"; echo "  lakehouse:"; echo "    catalog: lake"
            echo "    warehouse: s3://bench/$name"
            echo -n "    namespaces: ["; seq -s, -f "ns%g" 0 $((ns - 1)) | tr -d '\n'; echo "]"
            echo "    properties: {team: bench}"
            if [ "$tables" -gt 0 ]; then
                echo "    tables:"
                for t in $(seq 0 $((tables - 1))); do
                    echo "      - name: ns0.t$t"
                    echo "        columns:"
                    echo "          - {name: id, type: long, required: true}"
                    echo "          - {name: customer, type: string}"
                    echo "          - {name: amount, type: 'decimal(12, 2)'}"
                    echo "          - {name: at, type: timestamptz}"
                    echo "        partition_by: [day(at)]"
                done
            fi
        } >"$d/workspace.yaml"
    done
    git -C "$dir" init -q -b main
    git -C "$dir" add -A
    git -C "$dir" -c user.name=Bench -c user.email=bench@example.com commit -qm generated
}

seconds() { /usr/bin/time -f %e -o "$work/t" "$@" >/dev/null 2>"$work/err" || { cat "$work/err" >&2; exit 1; }; cat "$work/t"; }

echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -r)"
echo "resources: $ws workspaces x ($ns namespaces + parent) = $((ws * (ns + 1))) namespaces, $((ws * tables)) tables"

for kind in sql rest; do
    repo="$work/repo-$kind"; make_repo "$repo" "${run_id}${kind}w"
    state="$work/state-$kind"
    env_args=(OLO_SOURCE__PATH="$repo" OLO_STATE__DIR="$state")
    if [ "$kind" = rest ]; then
        # Warehouses on the S3 server (bucket `bench` + a marker per workspace); the REST catalog
        # writes the tables' metadata under its own warehouse there (s3://lake/warehouse/...).
        env_args+=(OLO_LAKEHOUSE__CATALOG=rest OLO_LAKEHOUSE__REST_URI="$OLO_TEST_ICEBERG_URL"
                   OLO_RENDER__ICEBERG_REST_WAREHOUSE="$OLO_TEST_ICEBERG_WAREHOUSE"
                   OLO_LAKEHOUSE__WAREHOUSE=s3 OLO_RENDER__S3_ENDPOINT="$OLO_TEST_S3_URL"
                   OLO_S3_ACCESS_KEY="$OLO_TEST_S3_ACCESS_KEY" OLO_S3_SECRET_KEY="$OLO_TEST_S3_SECRET_KEY")
    else
        # Local warehouse folders: olo writes the tables' metadata files there.
        env_args+=(OLO_LAKEHOUSE__SQL_DATABASE="sqlite://$work/olo-$kind.db?mode=rwc"
                   OLO_LAKEHOUSE__LOCAL_WAREHOUSE="$work/warehouse")
    fi
    cold="$(seconds env "${env_args[@]}" target/release/olo apply)"
    again="$(seconds env "${env_args[@]}" target/release/olo apply)"
    if [ "$kind" = rest ]; then
        peer="$("$py" bench/lakehouse_peer.py rest "$OLO_TEST_ICEBERG_URL" "$OLO_TEST_ICEBERG_WAREHOUSE" "${run_id}peer" "$ws" "$ns" "$tables")"
    else
        touch "$work/peer.db"
        "$py" - "$work/peer.db" <<'PY'
import sys
from pyiceberg.catalog.sql import SqlCatalog
SqlCatalog("lake", uri=f"sqlite:///{sys.argv[1]}")  # creates the tables once
PY
        peer="$("$py" bench/lakehouse_peer.py sql "sqlite:///$work/peer.db" lake "${run_id}peer" "$ws" "$ns" "$tables")"
    fi
    echo "$kind catalog: olo apply cold ${cold} s (whole process: read, validate, render, plan, apply); olo apply again (all in sync, full read-back) ${again} s; PyIceberg $peer"
done
