#!/usr/bin/env bash
# A throwaway lakehouse for the Iceberg tests, on 127.0.0.1: an S3 server (Versity's S3 gateway,
# versitygw, on a folder) and Apache
# Iceberg's reference REST catalog server (org.apache.iceberg.rest.RESTCatalogServer, the server of
# the apache/iceberg-rest-fixture image) whose warehouse is a bucket on that S3 server.
#
#   scripts/lakehouse.sh [start]   start both (or reuse the running pair); prints `export ...` lines
#   scripts/lakehouse.sh install   only install both (cached)
#   scripts/lakehouse.sh status    exit 0 when both answer
#   scripts/lakehouse.sh env       print the `export ...` lines for the running pair
#   scripts/lakehouse.sh stop      stop both and delete the folder
#   scripts/lakehouse.sh pause     stop both and keep the folder: the next start carries on with
#                                  its buckets and catalog (local-stack.sh)
#
# test.sh: eval "$(scripts/lakehouse.sh start)". Only the export lines go to stdout.
#
# Installs, cached under $OLO_CACHE/tools (OLO_CACHE defaults to ~/.cache/olo), pinned versions:
# * The REST catalog: Maven Central jars in $OLO_CACHE/tools/iceberg-rest-1.10.1/lib, resolved
#   once by `mvn dependency:copy-dependencies` from the pom.xml this script writes there (strict
#   checksums, a throwaway local repository, so nothing else on the machine is needed or touched):
#   org.apache.iceberg:iceberg-open-api:1.10.1:test-fixtures (RESTCatalogServer, RCKUtils),
#   iceberg-core:1.10.1 and its `tests` jar (RESTCatalogAdapter, RESTCatalogServlet), iceberg-aws +
#   iceberg-aws-bundle (S3FileIO), Jetty 11 (jakarta servlets), the shaded Hadoop client (the
#   server builds its catalog with a Hadoop Configuration), sqlite-jdbc, slf4j-simple. Run with
#   `java -cp 'lib/*'` on Java 17 (`java` on PATH, or $OLO_ICEBERG_JAVA_HOME/bin/java).
# * versitygw: built once with `go install github.com/versity/versitygw/cmd/versitygw@v<version>`
#   into $OLO_CACHE/tools/versitygw-<version>/bin (Go module proxy; ~4 min of CPU, an 84 MB binary).
# State lives in ${OLO_LAKEHOUSE_DIR:-/tmp/olo-lakehouse}; ports are the first free ones from
# ${OLO_S3_PORT:-28100} and ${OLO_ICEBERG_PORT:-28110}.
#
# ---------------------------------------------------------------------------------------------
# What RESTCatalogServer 1.10.1 does (read from its source, then tried here with curl, PyIceberg
# 0.12, Trino 476 and Spark 3.5):
#
# * Configuration: environment variables only. RCKUtils.environmentCatalogConfig turns every
#   CATALOG_* variable into a catalog property (prefix dropped, `__` -> `-`, `_` -> `.`,
#   lowercased): CATALOG_WAREHOUSE -> warehouse, CATALOG_IO__IMPL -> io-impl, CATALOG_S3_ENDPOINT
#   -> s3.endpoint, CATALOG_REST_PORT -> rest.port (the port; default 8181). No auth. It listens
#   on every interface (Jetty's `new Server(port)`: it cannot be told 127.0.0.1).
# * Backend: Iceberg's JdbcCatalog on the SQLite file DIR/catalog/catalog.db (CATALOG_URI), schema
#   V1 (views too), one JDBC connection (CATALOG_CLIENTS=1: SQLite has one writer; requests queue
#   for it instead of failing with SQLITE_BUSY). The file is in WAL mode with synchronous=NORMAL
#   (pragmas sqlite-jdbc takes from the URI's query): no fsync per commit, which made every write
#   wait on the disk (a namespace create took 31.5 ms warm with the default rollback journal,
#   6 ms so, measured on this 2-core machine); a throwaway catalog needs no durability against a
#   machine crash. Its FileIO is S3FileIO on the S3 server (s3.endpoint, s3.path-style-access,
#   s3.access-key-id, s3.secret-access-key, client.region).
# * Warehouse: s3://lake/warehouse (bucket `lake`, created through the S3 API once the S3 server
#   answers). A table created WITHOUT a location goes to <warehouse>/<ns levels…>/<table>, whatever
#   the namespace's `location` property says (JdbcCatalog ignores it); a table created WITH one
#   (Trino: <namespace location>/<table>-<random>, Spark, PyIceberg with location=) goes there,
#   any bucket. `stage-create` writes nothing, so Trino finds its new location empty.
# * Base URL: http://127.0.0.1:P (no /catalog). GET /v1/config ignores ?warehouse= and sends no
#   prefix ({"defaults":{},"overrides":{},"endpoints":[...]}): clients use /v1/namespaces.
#   OLO_TEST_ICEBERG_WAREHOUSE is s3://lake/warehouse; any name would do.
# * Nested namespaces: any depth, levels joined by %1F in paths. A child can be created without
#   its parent, and then the parent "exists" without properties: listed, but creating it is 409
#   AlreadyExistsException and dropping it 404 (olo creates the parent first). GET /v1/namespaces
#   lists top-level ones; ?parent=sales lists direct children as full paths; an unknown parent is
#   404. Create answers 200 with the properties, a `location` added when none is given
#   (<warehouse>/<levels…>); an existing namespace is 409 AlreadyExistsException.
# * POST …/properties {"updates","removals"}: 200 {"updated","removed","missing"}; a key both
#   updated and removed is 422 UnprocessableEntityException.
# * DELETE /v1/namespaces/{ns}: 200 with an empty body when empty (the spec says 204); 404
#   NoSuchNamespaceException when absent; 409 NamespaceNotEmptyException when it holds a table.
#   Child namespaces do not stop it (the parent's properties go; the children stay).
#   HEAD /v1/namespaces/{ns} is 200 / 404.
# * Errors: {"error":{"message","type","code","stack":[Java stack trace lines]}}.
#
# versitygw 1.8.0 (Apache-2.0, a production S3 gateway): versitygw --access K --secret S
#   --region R --port 127.0.0.1:P --health /health --quiet posix --sidecar DIR/objmeta DIR/s3
#   One root account (those keys); every request SigV4-signed, with x-amz-content-sha256 (400
#   InvalidRequest without it); a wrong key is 403 SignatureDoesNotMatch. Path-style. A bucket is a
#   folder of DIR/s3, an object a file under it (keys split on `/`, so long keys are fine: each
#   path part is a file name); metadata in the sidecar folder, not in extended attributes (its
#   path must not even begin with the root folder's: versitygw compares them as strings).
#   (It replaced s3s-fs 0.14.1, which keeps each object's metadata in ONE file named after the
#   base64 of the whole key: Trino's partitioned data files have keys long enough to overflow the
#   255-byte file name limit, "File name too long", so dbt's `revenue` model failed.)
# ---------------------------------------------------------------------------------------------
set -euo pipefail
cd "$(dirname "$0")/.."

dir="${OLO_LAKEHOUSE_DIR:-/tmp/olo-lakehouse}"
cache="${OLO_CACHE:-$HOME/.cache/olo}"
s3_first_port="${OLO_S3_PORT:-28100}"
iceberg_first_port="${OLO_ICEBERG_PORT:-28110}"

iceberg_version=1.10.1
jetty_version=11.0.26
hadoop_version=3.4.1
sqlite_jdbc_version=3.50.3.0
slf4j_version=2.0.17
dependency_plugin_version=3.8.1
versitygw_version=1.8.0
iceberg_root="$cache/tools/iceberg-rest-$iceberg_version"
versitygw_root="$cache/tools/versitygw-$versitygw_version"
versitygw_bin="$versitygw_root/bin/versitygw"
if [ -n "${OLO_ICEBERG_JAVA_HOME:-}" ]; then
    java="$OLO_ICEBERG_JAVA_HOME/bin/java"
else
    java="$(command -v java || true)"
fi

access_key=olo-test
secret_key=olo-test-secret
region=us-east-1
bucket=lake
warehouse="s3://$bucket/warehouse"

say() { echo "lakehouse.sh: $*" >&2; }

# --- install ------------------------------------------------------------------------------------


# The pom.xml whose dependencies are the REST catalog server's classpath.
iceberg_pom() {
    local dep g a v c
    echo '<?xml version="1.0" encoding="UTF-8"?>'
    echo '<!-- Written by scripts/lakehouse.sh: the classpath of Iceberg'"'"'s REST catalog server. -->'
    echo '<project xmlns="http://maven.apache.org/POM/4.0.0">'
    echo '  <modelVersion>4.0.0</modelVersion>'
    echo '  <groupId>olo.test</groupId>'
    echo '  <artifactId>iceberg-rest-catalog</artifactId>'
    echo "  <version>$iceberg_version</version>"
    echo '  <packaging>pom</packaging>'
    echo '  <dependencies>'
    # group:artifact:version[:classifier]
    for dep in \
        "org.apache.iceberg:iceberg-open-api:$iceberg_version:test-fixtures" \
        "org.apache.iceberg:iceberg-core:$iceberg_version" \
        "org.apache.iceberg:iceberg-core:$iceberg_version:tests" \
        "org.apache.iceberg:iceberg-aws:$iceberg_version" \
        "org.apache.iceberg:iceberg-aws-bundle:$iceberg_version" \
        "org.eclipse.jetty:jetty-servlet:$jetty_version" \
        "org.apache.hadoop:hadoop-client-api:$hadoop_version" \
        "org.apache.hadoop:hadoop-client-runtime:$hadoop_version" \
        "org.xerial:sqlite-jdbc:$sqlite_jdbc_version" \
        "org.slf4j:slf4j-simple:$slf4j_version"; do
        IFS=: read -r g a v c <<<"$dep"
        echo "    <dependency><groupId>$g</groupId><artifactId>$a</artifactId><version>$v</version>${c:+<classifier>$c</classifier>}</dependency>"
    done
    echo '  </dependencies>'
    echo '</project>'
}

# The REST catalog server's jars, resolved by Maven from Maven Central into $iceberg_root/lib;
# $iceberg_root/.installed marks a finished install.
install_iceberg_rest() {
    [ -f "$iceberg_root/.installed" ] && return 0
    command -v mvn >/dev/null ||
        { say "no mvn on PATH (apt-get install maven): it fetches the REST catalog's jars"; exit 1; }
    mkdir -p "$cache/tools"
    # One installer at a time, across concurrent runs of this script.
    exec 9>"$cache/tools/.iceberg-rest-$iceberg_version.lock"
    flock 9
    if [ ! -f "$iceberg_root/.installed" ]; then
        local tmp="$cache/tools/.iceberg-rest-$iceberg_version.tmp"
        local log="$cache/tools/iceberg-rest-$iceberg_version.install.log"
        rm -rf "$tmp" "$iceberg_root"
        mkdir -p "$tmp"
        iceberg_pom >"$tmp/pom.xml"
        say "installing Iceberg's REST catalog server $iceberg_version from Maven Central (first run only, ~140 MB; log $log)"
        # -C: a checksum that does not match fails the download. The local repository is a
        # throwaway of its own (deleted after): the jars are copied into lib/.
        if ! mvn -B -ntp -C -f "$tmp/pom.xml" -Dmaven.repo.local="$tmp/m2" \
            "org.apache.maven.plugins:maven-dependency-plugin:$dependency_plugin_version:copy-dependencies" \
            -DoutputDirectory="$tmp/lib" >"$log" 2>&1; then
            say "mvn could not fetch the REST catalog's jars (is Maven Central reachable?); the end of its log:"
            tail -n 40 "$log" >&2
            rm -rf "$tmp"
            exit 1
        fi
        rm -rf "$tmp/m2"
        if [ ! -f "$tmp/lib/iceberg-open-api-$iceberg_version-test-fixtures.jar" ]; then
            say "mvn finished, but $tmp/lib has no iceberg-open-api test-fixtures jar; see $log"
            exit 1
        fi
        mv "$tmp" "$iceberg_root"
        touch "$iceberg_root/.installed"
    fi
    exec 9>&-
}

# The S3 server, built by `go install` from the Go module proxy into $versitygw_root/bin.
install_versitygw() {
    [ -x "$versitygw_bin" ] && return 0
    command -v go >/dev/null ||
        { say "no go on PATH (Go 1.24+ from go.dev or Debian's golang): it builds the S3 server versitygw"; exit 1; }
    mkdir -p "$cache/tools"
    exec 9>"$cache/tools/.versitygw-$versitygw_version.lock"
    flock 9
    if [ ! -x "$versitygw_bin" ]; then
        local log="$cache/tools/versitygw-$versitygw_version.install.log"
        say "installing the S3 server versitygw $versitygw_version with go install (first run only, ~4 min of CPU; log $log)"
        if ! GOBIN="$versitygw_root/bin.tmp" GOFLAGS=-mod=mod \
            go install "github.com/versity/versitygw/cmd/versitygw@v$versitygw_version" >"$log" 2>&1; then
            say "go install of versitygw failed (is the Go module proxy reachable?); the end of its log:"
            tail -n 40 "$log" >&2
            exit 1
        fi
        mv "$versitygw_root/bin.tmp" "$versitygw_root/bin"
    fi
    exec 9>&-
}

install_tools() {
    install_iceberg_rest
    install_versitygw
}

# --- helpers -------------------------------------------------------------------------------------

# shellcheck source=scripts/ports.sh disable=SC1091
. "$(dirname "${BASH_SOURCE[0]}")/ports.sh"

s3_port() { cat "$dir/s3.port" 2>/dev/null; }
iceberg_port() { cat "$dir/iceberg.port" 2>/dev/null; }

# A signed ListObjectsV2 on the bucket: proves the server, the keys and the bucket at once.
# (The server insists on x-amz-content-sha256, which curl's --aws-sigv4 does not send by itself.)
s3_answers() {
    local port
    port="$(s3_port)" || return 1
    [ -n "$port" ] && curl -fsS -o /dev/null \
        --aws-sigv4 "aws:amz:$region:s3" --user "$access_key:$secret_key" \
        -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" \
        "http://127.0.0.1:$port/$bucket?list-type=2&max-keys=1" 2>/dev/null
}

s3_health() {
    local port
    port="$(s3_port)" || return 1
    [ -n "$port" ] && curl -fsS -o /dev/null "http://127.0.0.1:$port/health" 2>/dev/null
}

iceberg_answers() {
    local port
    port="$(iceberg_port)" || return 1
    [ -n "$port" ] && curl -fsS -o /dev/null "http://127.0.0.1:$port/v1/config" 2>/dev/null
}

answers() { s3_answers && iceberg_answers; }

print_env() {
    echo "export OLO_TEST_ICEBERG_URL=http://127.0.0.1:$(iceberg_port)"
    echo "export OLO_TEST_ICEBERG_WAREHOUSE=$warehouse"
    echo "export OLO_TEST_S3_URL=http://127.0.0.1:$(s3_port)"
    echo "export OLO_TEST_S3_ACCESS_KEY=$access_key"
    echo "export OLO_TEST_S3_SECRET_KEY=$secret_key"
    echo "export OLO_TEST_S3_REGION=$region"
    echo "export OLO_TEST_S3_BUCKET=$bucket"
}

kill_group() {
    local pidfile="$1" pid
    [ -f "$pidfile" ] || return 0
    pid="$(cat "$pidfile")"
    kill -TERM -- "-$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL -- "-$pid" 2>/dev/null || true
}

stop() {
    kill_group "$dir/iceberg.pid"
    kill_group "$dir/s3.pid"
    rm -rf "$dir"
}

# Stops both and marks the folder as kept: start no longer clears it.
pause() {
    kill_group "$dir/iceberg.pid"
    kill_group "$dir/s3.pid"
    if [ -d "$dir" ]; then touch "$dir/kept"; fi
}

# The end of a server's log, then both servers stopped (the folder and its logs are kept until the
# next start or stop).
fail() {
    local name="$1" log="$2" why="$3"
    say "$name $why; the end of its log ($log):"
    tail -n 60 "$log" >&2
    kill_group "$dir/iceberg.pid"
    kill_group "$dir/s3.pid"
    exit 1
}

# wait_for NAME PIDFILE LOG CHECK [TRIES]: CHECK every 0.5 s, TRIES times (default 120: 60 s).
wait_for() {
    local name="$1" pidfile="$2" log="$3" check="$4" tries="${5:-120}"
    for _ in $(seq 1 "$tries"); do
        if "$check"; then return 0; fi
        if ! kill -0 "$(cat "$pidfile")" 2>/dev/null; then
            fail "$name" "$log" "exited"
        fi
        sleep 0.5
    done
    fail "$name" "$log" "did not answer within $((tries / 2)) s"
}

# --- start ---------------------------------------------------------------------------------------

start() {
    # One start at a time: two callers (a test run and a person, or two test runs) would each
    # stop the other's servers and overwrite the port and pid files. The second waits, then
    # finds the first's servers answering.
    # The lock lives beside the folder (stop removes the folder); the servers do not inherit it.
    exec 8>"$dir.start.lock"
    flock 8
    if answers; then
        print_env
        return
    fi
    if [ -f "$dir/kept" ]; then
        say "carrying on with the paused lakehouse in $dir (scripts/lakehouse.sh stop deletes it)"
        kill_group "$dir/iceberg.pid"
        kill_group "$dir/s3.pid"
    else
        stop
    fi
    install_tools
    if [ -z "$java" ] || ! "$java" -version >/dev/null 2>&1; then
        say "no Java for the REST catalog server (needs Java 17+: \`java\` on PATH, or set OLO_ICEBERG_JAVA_HOME)"
        exit 1
    fi
    mkdir -p "$dir/s3" "$dir/objmeta" "$dir/catalog"

    local port
    port="$(free_port "$s3_first_port")"
    echo "$port" >"$dir/s3.port"
    setsid "$versitygw_bin" --access "$access_key" --secret "$secret_key" --region "$region" \
        --port "127.0.0.1:$port" --health /health --quiet \
        posix --sidecar "$dir/objmeta" "$dir/s3" \
        >"$dir/s3.log" 2>&1 8>&- &
    echo $! >"$dir/s3.pid"
    say "waiting for versitygw on 127.0.0.1:$port"
    wait_for versitygw "$dir/s3.pid" "$dir/s3.log" s3_health
    # versitygw's posix backend keeps a bucket as a folder: a kept lakehouse has it already.
    if [ ! -d "$dir/s3/$bucket" ]; then
        curl -fsS -o /dev/null -X PUT --aws-sigv4 "aws:amz:$region:s3" --user "$access_key:$secret_key" \
            -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" "http://127.0.0.1:$port/$bucket" ||
            fail versitygw "$dir/s3.log" "refused to create bucket $bucket"
    fi
    wait_for versitygw "$dir/s3.pid" "$dir/s3.log" s3_answers

    # The catalog's configuration: CATALOG_* variables become catalog properties (see above).
    # Only these reach it (env -i): a CATALOG_* or AWS_* variable of the caller's must not.
    local s3_url="http://127.0.0.1:$port"
    port="$(free_port "$iceberg_first_port")"
    echo "$port" >"$dir/iceberg.port"
    env -i PATH="$PATH" HOME="$HOME" LANG=C.UTF-8 \
        CATALOG_REST_PORT="$port" \
        CATALOG_CATALOG__IMPL=org.apache.iceberg.jdbc.JdbcCatalog \
        CATALOG_URI="jdbc:sqlite:file:$dir/catalog/catalog.db?journal_mode=WAL&synchronous=NORMAL" \
        CATALOG_CLIENTS=1 \
        CATALOG_WAREHOUSE="$warehouse" \
        CATALOG_IO__IMPL=org.apache.iceberg.aws.s3.S3FileIO \
        CATALOG_S3_ENDPOINT="$s3_url" \
        CATALOG_S3_PATH__STYLE__ACCESS=true \
        CATALOG_S3_ACCESS__KEY__ID="$access_key" \
        CATALOG_S3_SECRET__ACCESS__KEY="$secret_key" \
        CATALOG_CLIENT_REGION="$region" \
        setsid "$java" -Xmx384m -XX:+UseSerialGC -cp "$iceberg_root/lib/*" \
        org.apache.iceberg.rest.RESTCatalogServer \
        >"$dir/iceberg.log" 2>&1 8>&- &
    echo $! >"$dir/iceberg.pid"
    say "waiting for Iceberg's REST catalog server on 127.0.0.1:$port"
    wait_for "the REST catalog server" "$dir/iceberg.pid" "$dir/iceberg.log" iceberg_answers 240
    print_env
}

case "${1:-start}" in
  start) start ;;
  install) install_tools ;;
  status) answers ;;
  env)
    if ! answers; then say "not running (scripts/lakehouse.sh start)"; exit 1; fi
    print_env
    ;;
  stop) stop ;;
  pause) pause ;;
  *) say "usage: scripts/lakehouse.sh [start|install|status|env|stop|pause]"; exit 2 ;;
esac
