#!/usr/bin/env bash
# Runs before the tests (`npm test`): makes sure what they need is installed. Idempotent and quick when
# everything is in place.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -d node_modules/better-sqlite3/build ]; then
  echo "test/setup: installing npm dependencies (better-sqlite3 compiles from source, about 90 s)"
  npm ci --no-audit --no-fund
fi

# Real peers for the infrastructure tests (TEST-PEERS.md): Caddy and pebble (TLS from a real ACME server),
# Debian's cloud-init (user-data schema) and shellcheck (the host's scripts). Installed only where missing.
want=()
for pair in caddy:caddy pebble:pebble cloud-init:cloud-init shellcheck:shellcheck; do
  command -v "${pair%%:*}" >/dev/null || want+=("${pair##*:}")
done
if [ ${#want[@]} -gt 0 ]; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
    echo "test/setup: installing ${want[*]} from Debian"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${want[@]}" >/dev/null
  else
    echo "test/setup: missing ${want[*]}: install them (apt-get install ${want[*]}) or run as root" >&2
    exit 1
  fi
fi
