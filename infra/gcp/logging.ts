/**
 * Container logs on GCP. Docker writes them to the host's journal (the journald log driver, which never blocks a
 * container's start), and Google's Ops Agent ships the journal to Cloud Logging. Docker's gcplogs driver is not
 * used: it pings Cloud Logging when a container starts and refuses to start it when the Logging API is slow or
 * the host's IAM grant has not propagated yet, which would keep the bridge down for a logging problem.
 *
 * The agent is installed and configured by a oneshot unit of its own, retried until it succeeds; the bridge and
 * Caddy neither require nor wait for it. Until it runs (or if it never can), the logs are in the journal
 * (`journalctl CONTAINER_NAME=scim-bridge`).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import type { HostSpec } from '../host';

/** The Ops Agent names the log after the receiver's id: entries land under logs/journald. */
export const GCP_LOG_RECEIVER = 'journald';
export const LOG_AGENT_UNIT = 'scim-bridge-log-agent.service';
export const LOG_AGENT_SCRIPT = '/usr/local/lib/scim-bridge/log-agent';
export const OPS_AGENT_CONFIG = '/etc/scim-bridge/ops-agent.yaml';

/** Where an operator finds a container's logs (alert texts): in Cloud Logging, and on the VM. */
export function gcpLogLocation(container: string): string {
  return `Cloud Logging: log name ${GCP_LOG_RECEIVER}, jsonPayload.CONTAINER_NAME="${container}"; on the VM: journalctl CONTAINER_NAME=${container}`;
}

/**
 * The Ops Agent's configuration (merged over its built-in one): the whole journal in a pipeline of its own
 * (the containers' entries carry CONTAINER_NAME), and the built-in logging pipeline off: its syslog files would
 * repeat what the journal holds. Host metrics (memory, disk) go to Cloud Monitoring for the alerts.
 */
export const opsAgentConfig = {
  logging: {
    receivers: { [GCP_LOG_RECEIVER]: { type: 'systemd_journald' } },
    service: {
      pipelines: {
        default_pipeline: { receivers: [] },
        scim_bridge: { receivers: [GCP_LOG_RECEIVER] },
      },
    },
  },
  // Host metrics (memory, disk) every minute, for the memory and disk alerts (the host may write metrics:
  // roles/monitoring.metricWriter); the agent's other default metrics stay off.
  metrics: {
    receivers: { hostmetrics: { type: 'hostmetrics', collection_interval: '60s' } },
    service: { pipelines: { default_pipeline: { receivers: ['hostmetrics'] } } },
  },
};

export function logAgentUnit(): string {
  return [
    '[Unit]',
    'Description=scim-bridge: Google\'s Ops Agent ships the journal (the containers\' logs) to Cloud Logging',
    // Nothing of the bridge requires or waits for this unit; it retries until it succeeds.
    'Wants=network-online.target',
    'After=network-online.target',
    'StartLimitIntervalSec=0',
    '',
    '[Service]',
    'Type=oneshot',
    'RemainAfterExit=yes',
    'Environment=DEBIAN_FRONTEND=noninteractive',
    `ExecStart=${LOG_AGENT_SCRIPT} ${OPS_AGENT_CONFIG}`,
    'Restart=on-failure',
    'RestartSec=60',
    'TimeoutStartSec=20min',
    '',
    '[Install]',
    'WantedBy=multi-user.target',
    '',
  ].join('\n');
}

/** What the GCP host adds to the shared host spec for its logs. */
export function gcpHostLogging(): Pick<HostSpec, 'logging' | 'extraUnits' | 'extraFiles'> {
  return {
    // The tag becomes SYSLOG_IDENTIFIER: the container's name rather than its id.
    logging: { driver: 'journald', options: { tag: '{{.Name}}' } },
    extraUnits: { [LOG_AGENT_UNIT]: logAgentUnit() },
    extraFiles: [
      { path: LOG_AGENT_SCRIPT, permissions: '0755', content: readFileSync(join(__dirname, 'log-agent.sh'), 'utf8') },
      { path: OPS_AGENT_CONFIG, permissions: '0644', content: stringify(opsAgentConfig) },
    ],
  };
}
