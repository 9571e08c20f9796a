#!/bin/bash
# log-agent [CONFIG]: ships this host's systemd journal, where Docker writes the containers' logs (journald log
# driver), to Cloud Logging with Google's Ops Agent. Installs the agent the way Google documents it (its
# repository script, --also-install) unless it is installed, puts scim-bridge's agent configuration in place
# and restarts the agent. Idempotent. Run by scim-bridge-log-agent.service, which runs it again a minute after a
# failure (the network, apt's lock, the Logging API not ready yet); nothing of the bridge waits for it.
# OPS_AGENT_DIR and OPS_AGENT_REPO_SCRIPT are overrides for tests.
set -euo pipefail
shopt -s inherit_errexit
config=${1:-/etc/scim-bridge/ops-agent.yaml}
agent_dir=${OPS_AGENT_DIR:-/etc/google-cloud-ops-agent}
repo_script=${OPS_AGENT_REPO_SCRIPT:-https://dl.google.com/cloudagents/add-google-cloud-ops-agent-repo.sh}

status=$(dpkg-query -W -f="\${Status}" google-cloud-ops-agent 2>/dev/null || true)
if [ "$status" != "install ok installed" ]; then
  script=$(mktemp)
  trap 'rm -f "$script"' EXIT
  curl -fsS --max-time 120 --retry 3 -o "$script" "$repo_script"
  bash "$script" --also-install
fi
# After the install: the package's own config.yaml would otherwise be a conffile conflict for apt.
mkdir -p "$agent_dir"
install -m 0644 "$config" "$agent_dir/config.yaml"
systemctl restart google-cloud-ops-agent.service
echo "log-agent: the Ops Agent ships the journal to Cloud Logging"
