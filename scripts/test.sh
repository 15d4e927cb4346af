#!/usr/bin/env bash
# Install what the tests need (Debian packages, the virtualenv) and run linters and the whole suite.
# Extra arguments go to pytest, e.g. scripts/test.sh -k quote -x
set -euo pipefail
cd "$(dirname "$0")/.."

SYSTEM_PACKAGES=(openssh-server postgresql sudo shellcheck iproute2 util-linux python3-venv chromium fonts-wqy-zenhei)

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

missing=()
for pkg in "${SYSTEM_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing system packages: ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

scripts/venv.sh test

# The suite starts its own PostgreSQL unless KBOSS_TEST_DATABASE_URL names one; either way it must run.
export KBOSS_REQUIRE_POSTGRES=1
# Likewise the browser tests run against Debian's Chromium, never skipped.
export KBOSS_REQUIRE_BROWSER=1
.venv/bin/ruff check src tests bench
.venv/bin/mypy
exec .venv/bin/python -m pytest "$@"
