#!/usr/bin/env bash
# Installs Debian's headless Chromium and its chromedriver when missing, and prints the path of
# chromedriver (the dashboard tests in tests/e2e/dashboard/ drive the browser through it).
set -euo pipefail

if ! command -v chromedriver >/dev/null 2>&1 || ! command -v chromium >/dev/null 2>&1; then
    echo "    installing Debian's chromium and chromium-driver" >&2
    sudo=""
    if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -qq >&2
    $sudo apt-get install -y -qq --no-install-recommends chromium chromium-driver fonts-dejavu-core >&2
fi
command -v chromedriver
