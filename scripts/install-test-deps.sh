#!/usr/bin/env bash
# Install what the browser tests need: Debian's chromium (headless).
# Idempotent: does nothing when chromium is already there; runs apt-get update only
# when something has to be installed.
set -euo pipefail

need=()
[ -x /usr/bin/chromium ] || need+=(chromium)
# Fonts so that screenshots show text, not boxes.
dpkg -s fonts-dejavu-core >/dev/null 2>&1 || need+=(fonts-dejavu-core)

if [ ${#need[@]} -eq 0 ]; then
    echo "install-test-deps: chromium already installed ($(/usr/bin/chromium --version 2>/dev/null || echo '?'))"
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "install-test-deps: need root to install: ${need[*]}" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}"
echo "install-test-deps: installed ${need[*]} ($(/usr/bin/chromium --version 2>/dev/null || echo '?'))"
