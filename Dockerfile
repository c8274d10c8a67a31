# syntax=docker/dockerfile:1
#
# The olo image: the `olo` binary on Debian slim, running as an unprivileged user, with the example
# config repository bundled so that `docker run` alone gives the demo (the daemon imports
# /opt/olo/examples-repo as commits into its state folder).
#
#   docker build -t olo .
#   docker run --rm -p 8080:8080 olo                   # demo: examples-repo, SQLite, dashboard on :8080
#   docker run --rm olo validate /opt/olo/examples-repo
#
# Settings: /etc/olo/olo.toml (OLO_CONFIG); mount your own file there or override single keys with
# OLO_<SECTION>__<KEY> variables (docs/settings.md). The state folder is /var/lib/olo (a volume).

ARG RUST_VERSION=1.95.0
ARG DEBIAN_VERSION=13.1

# --- build ---------------------------------------------------------------------------------------
FROM rust:${RUST_VERSION}-slim-trixie AS build
# git2's https and ssh transports link OpenSSL; libgit2, libssh2 and mimalloc are compiled with cc.
RUN apt-get update \
    && apt-get install -y --no-install-recommends pkg-config libssl-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# The root package `olo` only (the workspace's other binaries are benchmarks). The registry and
# target folder are build caches, so a rebuild after a source change compiles only what changed.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked \
    && cp target/release/olo /usr/local/bin/olo \
    # The release profile carries no debug info (symbols only: function names in backtraces).
    && /usr/local/bin/olo --version

# --- runtime -------------------------------------------------------------------------------------
FROM debian:${DEBIAN_VERSION}-slim AS runtime
# ca-certificates: https to GitHub, Airflow, the catalog; libssl3t64 + zlib1g: what the binary links;
# curl: the health check.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates libssl3t64 zlib1g curl tini \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 olo \
    && useradd --system --uid 10001 --gid olo --home-dir /var/lib/olo --shell /usr/sbin/nologin olo \
    && mkdir -p /etc/olo /var/lib/olo/dags /var/lib/olo/trino \
    && chown -R olo:olo /var/lib/olo

COPY --from=build /usr/local/bin/olo /usr/local/bin/olo
COPY examples-repo /opt/olo/examples-repo
# The image's settings: the demo (bundled examples-repo, SQLite in /var/lib/olo), listening on all
# interfaces (inside a container 127.0.0.1 is unreachable from outside).
COPY <<'EOF' /etc/olo/olo.toml
# Settings of the olo image (docs/settings.md). Mount your own file here, or set OLO_CONFIG.
[source]
path = "/opt/olo/examples-repo"

[state]
dir = "/var/lib/olo"

[server]
listen = "0.0.0.0:8080"
EOF

ENV OLO_CONFIG=/etc/olo/olo.toml
# No transparent huge pages for olo's heap even where the host's THP mode is `always`: they
# raise the daemon's peak memory by ~10% and slow a cold reconcile (BENCHMARKS.md, section 4).
ENV MIMALLOC_ALLOW_THP=0
WORKDIR /var/lib/olo
USER 10001:10001
VOLUME ["/var/lib/olo"]
EXPOSE 8080

# /healthz answers 200 while the process runs (/readyz waits for the first reconcile).
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["curl", "-fsS", "-o", "/dev/null", "http://127.0.0.1:8080/healthz"]

ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/olo"]
CMD ["serve"]
