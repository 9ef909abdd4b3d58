#!/usr/bin/env bash
# Installs what the tests need on a fresh Debian machine with Rust and Python 3:
# the Debian packages in scripts/apt-packages.txt and the pinned PyPI packages in
# scripts/requirements-test.txt. Safe to run again: it installs only what is missing.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

mapfile -t apt_pkgs < <(grep -v '^\s*#' "$here/apt-packages.txt" | grep -v '^\s*$')
missing=()
for p in "${apt_pkgs[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if ((${#missing[@]})); then
    echo "setup: installing Debian packages: ${missing[*]}" >&2
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    # Debian starts nginx when it is installed; the tests run their own on free ports.
    $SUDO nginx -s stop >/dev/null 2>&1 || true
fi

if ! python3 -m pip install -q --disable-pip-version-check -r "$here/requirements-test.txt" \
        --dry-run --report - 2>/dev/null | python3 -c 'import json,sys; sys.exit(1 if json.load(sys.stdin).get("install") else 0)'; then
    echo "setup: installing PyPI packages from scripts/requirements-test.txt" >&2
    python3 -m pip install -q --disable-pip-version-check -r "$here/requirements-test.txt"
    command -v pyenv >/dev/null 2>&1 && pyenv rehash || true
fi
