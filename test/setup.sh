#!/usr/bin/env bash
# Runs before the tests (`npm test`): makes sure what they need is installed. Idempotent and quick when
# everything is in place.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -d node_modules/better-sqlite3/build ]; then
  echo "test/setup: installing npm dependencies (better-sqlite3 compiles from source, about 90 s)"
  npm ci --no-audit --no-fund
fi
