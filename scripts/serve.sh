#!/usr/bin/env bash
# Install kboss into .venv and start the all-in-one server (platform + site agent, SQLite in ./var).
# Extra arguments go to `kboss serve`, e.g. scripts/serve.sh --host 0.0.0.0 --port 8000
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/venv.sh
exec .venv/bin/kboss serve "$@"
