#!/usr/bin/env bash
# Runs once, on the first start of the postgres container (an empty data volume): one role and one
# database for each service of the dev stack. Passwords come from compose/.env.
set -euo pipefail

create() {
    local name="$1" password="$2"
    psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
        --set=name="$name" --set=password="$password" <<'SQL'
CREATE ROLE :"name" LOGIN PASSWORD :'password';
CREATE DATABASE :"name" OWNER :"name";
SQL
}

create olo "$OLO_DB_PASSWORD"
create airflow "$AIRFLOW_DB_PASSWORD"
create lakekeeper "$LAKEKEEPER_DB_PASSWORD"
