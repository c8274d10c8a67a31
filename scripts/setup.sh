#!/usr/bin/env bash
# System packages the build needs (Debian): OpenSSL headers and pkg-config for git2's https and
# ssh transports, git for the tests, curl for scripts/airflow.sh's health check, mold (a fast
# linker: scripts/test.sh and .ci/run link the test binaries with it), docker-compose (its
# `config` validates compose/ offline in scripts/check-deploy.sh; no Docker engine needed), GnuPG and
# ssh-keygen (tests/e2e/signed_commits.rs makes keys and signs commits with them through git).
# Installs only what is missing; a no-op on a ready machine.
set -euo pipefail
missing=()
for pkg in libssl-dev pkg-config git curl mold docker-compose gnupg openssh-client; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if ((${#missing[@]})); then
  echo "==> installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi
