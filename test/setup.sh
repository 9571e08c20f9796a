#!/usr/bin/env bash
# Runs before the tests (`npm test`): makes sure what they need is installed. Idempotent and quick when
# everything is in place.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -d node_modules/better-sqlite3/build ]; then
  echo "test/setup: installing npm dependencies (better-sqlite3 compiles from source, about 90 s)"
  npm ci --no-audit --no-fund
fi

# install_missing required|optional WHY COMMAND:PACKAGE...: installs from Debian the packages whose command is
# missing. Where that cannot be done (not root, no apt-get), a required one stops the tests with what to do;
# an optional one is reported and its test says it skips.
install_missing() {
  local need=$1 why=$2
  shift 2
  local want=() pair
  for pair in "$@"; do
    command -v "${pair%%:*}" >/dev/null || want+=("${pair##*:}")
  done
  [ ${#want[@]} -eq 0 ] && return 0
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
    echo "test/setup: installing ${want[*]} from Debian ($why)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${want[@]}" >/dev/null
  elif [ "$need" = required ]; then
    echo "test/setup: missing ${want[*]} ($why): install them (apt-get install ${want[*]}) or run as root" >&2
    exit 1
  else
    echo "test/setup: ${want[*]} missing and not installable here (not root or no apt-get): $why will skip" >&2
  fi
}

# Real peers for the infrastructure tests (TEST-PEERS.md): Caddy and pebble (TLS from a real ACME server),
# Debian's cloud-init (user-data schema), shellcheck (the host's scripts), promtool (the Kubernetes alert rules).
install_missing required "the infrastructure tests" caddy:caddy pebble:pebble cloud-init:cloud-init shellcheck:shellcheck promtool:prometheus
# The container image test (test/e2e/image.test.ts) builds bridge/Dockerfile with buildah and runs it with podman
# (runc as its runtime), with no Docker engine and no registry.
install_missing required "the container image test and the boot test" buildah:buildah podman:podman runc:runc
# The boot test (test/e2e/boot.test.ts) boots each VM target's user-data in QEMU (TCG) on a Debian cloud image it
# builds with mmdebstrap, seeded by cloud-localds; socat carries the guest's metadata and API calls to fakes here.
install_missing required "the VM boot test" qemu-system-x86_64:qemu-system-x86 qemu-img:qemu-utils mmdebstrap:mmdebstrap cloud-localds:cloud-image-utils socat:socat

# PostgreSQL (the store suites, the HTTP suites on PostgreSQL, several replicas): the server binaries (initdb,
# pg_ctl; Debian keeps them off PATH, under /usr/lib/postgresql/<version>/bin) and the contrib modules (pg_trgm).
# The tests start their own server as the postgres user (test/helpers/postgres.ts); Debian's own cluster is not used.
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || ! ls /usr/share/postgresql/*/extension/pg_trgm.control >/dev/null 2>&1; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
    echo "test/setup: installing postgresql postgresql-contrib from Debian (the PostgreSQL store's tests)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql postgresql-contrib >/dev/null
  else
    echo "test/setup: missing postgresql postgresql-contrib (the PostgreSQL store's tests): install them (apt-get install postgresql postgresql-contrib) or run as root" >&2
    exit 1
  fi
fi

# The status page test (test/bridge/status-page.test.ts) drives Debian's chromium with playwright-core (no browser
# download from npm).
install_missing required "the status page test" chromium:chromium
