#!/bin/sh
# Makes Lakekeeper usable by olo, once (re-running it changes nothing): accepts the terms of use
# (POST /management/v1/bootstrap), then creates one warehouse per Iceberg catalog that the example
# repository's workspaces name (`lake`: sales and marketing, `ops`: platform) on the MinIO bucket.
# olo asks GET /catalog/v1/config?warehouse=<catalog> and then creates the namespaces itself.
# Runs in the curlimages/curl container (POSIX sh).
set -eu

base="${LAKEKEEPER_URL:-http://lakekeeper:8181}"
bucket="${LAKEHOUSE_BUCKET:?}"
key="${MINIO_ROOT_USER:?}"
secret="${MINIO_ROOT_PASSWORD:?}"

status="$(curl -sS -o /tmp/bootstrap.json -w '%{http_code}' -X POST "$base/management/v1/bootstrap" \
    -H 'Content-Type: application/json' --data '{"accept-terms-of-use": true}')"
case "$status" in
    2??) echo "lakekeeper: bootstrapped" ;;
    400 | 409)
        if grep -q 'AlreadyBootstrapped' /tmp/bootstrap.json; then
            echo "lakekeeper: already bootstrapped"
        else
            echo "lakekeeper: bootstrap answered $status: $(cat /tmp/bootstrap.json)" >&2
            exit 1
        fi
        ;;
    *)
        echo "lakekeeper: bootstrap answered $status: $(cat /tmp/bootstrap.json)" >&2
        exit 1
        ;;
esac

# warehouse NAME KEY_PREFIX
warehouse() {
    name="$1" prefix="$2"
    if curl -fsS -o /dev/null "$base/catalog/v1/config?warehouse=$name"; then
        echo "lakekeeper: warehouse $name exists"
        return
    fi
    status="$(curl -sS -o /tmp/warehouse.json -w '%{http_code}' -X POST "$base/management/v1/warehouse" \
        -H 'Content-Type: application/json' --data @- <<EOF
{
  "warehouse-name": "$name",
  "project-id": "00000000-0000-0000-0000-000000000000",
  "storage-profile": {
    "type": "s3",
    "bucket": "$bucket",
    "key-prefix": "$prefix",
    "endpoint": "http://minio:9000",
    "region": "us-east-1",
    "path-style-access": true,
    "flavor": "minio",
    "sts-enabled": false
  },
  "storage-credential": {
    "type": "s3",
    "credential-type": "access-key",
    "aws-access-key-id": "$key",
    "aws-secret-access-key": "$secret"
  }
}
EOF
)"
    case "$status" in
        2??) echo "lakekeeper: warehouse $name created (s3://$bucket/$prefix)" ;;
        *)
            echo "lakekeeper: creating warehouse $name answered $status: $(cat /tmp/warehouse.json)" >&2
            exit 1
            ;;
    esac
}

# The example repository's warehouse locations: s3://lakehouse/sales and s3://lakehouse/marketing
# (catalog lake: the whole bucket), s3://lakehouse/platform (catalog ops).
warehouse lake ""
warehouse ops platform
