/**
 * What a VM host runs, shared by the gcp, digitalocean and aws targets: one cloud-init user-data document.
 *
 * The host installs Docker from its distribution, prepares the separate data disk (formatted only when
 * blank, whenever it appears: at boot or attached later), and runs two systemd services on a Docker network of
 * their own that cannot reach the cloud's metadata service: the bridge container (non-root, read-only root
 * filesystem, its database on the data disk, no port published) and Caddy (Let's Encrypt on 80/443, the only
 * published ports, certificates on the data disk). Container logs go to a Docker log driver that never blocks
 * a container (journald, or the cloud's driver in non-blocking mode); a target may add its log agent.
 *
 * Nothing secret is in the user-data: what may change while the host runs (the accepted token hashes, the
 * webhook's signing secret) is fetched by a cloud-specific script, with the host's own identity, into one file
 * each under /run/scim-bridge/secrets (memory only; root's, readable by the bridge's uid), before each start of
 * the bridge and every minute after (a systemd timer). The bridge reads them through their `_FILE` settings and
 * reads a file again when it changes (bridge/src/secret-files.ts): a token rotation reaches a running host
 * within about a minute, with no restart and no replacement.
 *
 * Updates: every other input (image, settings) is part of the user-data, and each target replaces the host when
 * its user-data changes. The new host mounts the same data disk, finds the database and the certificates there,
 * and orders nothing new from Let's Encrypt.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { stringify } from 'yaml';
import { BRIDGE_PORT, BRIDGE_UID, bridgeSettings, SQLITE_URL } from '../environment';
import { renderCaddyfile } from './caddy';

export { BRIDGE_UID };
export { bridgeHostSpec } from './bridge-args';
export type { HostBridgeArgs } from './bridge-args';
export const MOUNT_POINT = '/srv/scim-bridge';
const LIB = '/usr/local/lib/scim-bridge';
const ETC = '/etc/scim-bridge';
/** Where fetch-secrets writes one file per secret on the host, and where the bridge's container sees them. */
export const SECRETS_DIR = '/run/scim-bridge/secrets';
/** The Docker CLI's configuration the bridge's image is pulled with (HostSpec.dockerConfig). */
export const DOCKER_CONFIG_DIR = `${ETC}/docker`;
export const CONTAINER_SECRETS_DIR = '/run/secrets';
/** The timer that fetches the secrets again every minute, and its service (started by the timer only). */
export const SECRETS_TIMER = 'scim-bridge-secrets.timer';
const SECRETS_SERVICE = 'scim-bridge-secrets.service';

export interface HostSecret {
  /**
   * The bridge's setting, e.g. SCIM_BRIDGE_WEBHOOK_SECRET or SCIM_BRIDGE_TOKEN_SHA256 (one with a `_FILE` form): the
   * bridge gets `<env>_FILE`, naming the file fetch-secrets keeps up to date (secretFileName).
   */
  env: string;
  /** A shell command (using the cloud's `functions`) that prints the secret's value. */
  command: string;
}

export interface HostSpec {
  image: string;
  caddyImage: string;
  domain: string;
  acme: { email: string; directory: string; caRoot?: string };
  /**
   * Hex SHA-256 of each bearer token the bridge accepts (two during a rotation), fixed in the user-data: changing
   * them replaces the host. Absent when a target fetches them instead (SCIM_BRIDGE_TOKEN_SHA256 among `secrets`),
   * so that a rotation reaches the running host.
   */
  tokenSha256?: string[];
  /** Hex SHA-256 of the application API's token: the API is off without one. */
  appTokenSha256?: string[];
  allowedDomains: string[];
  webhookUrl?: string;
  /** The Google Workspace connector's plain settings; its key is among `secrets` (SCIM_BRIDGE_GOOGLE_CREDENTIALS). */
  google?: { admin: string; groups: string[]; interval: string };
  /**
   * When (HH:MM, UTC) unattended-upgrades may reboot the host for an update that needs it (a new kernel), or
   * `never`. Absent: never.
   */
  rebootTime?: string;
  /** The data disk as the host sees it, e.g. /dev/disk/by-id/google-scim-bridge-data. */
  dataDevice: string;
  /** Docker's log driver for the cloud (gcplogs, awslogs, journald) and its options. */
  logging: { driver: string; options?: Record<string, string> };
  /** What the bridge reads from files kept up to date from the cloud's secret store (at each start, every minute). */
  secrets: HostSecret[];
  /** Shell functions the secret commands use (cloud-specific), and the packages they need. */
  secretFunctions?: string;
  extraPackages?: string[];
  /**
   * The host's own scripts (prepare-disk, fetch-secrets, prepare-network) travel gzipped (cloud-init's `gz+b64`),
   * for a cloud whose user-data limit the whole recipe would pass (EC2: 16 KB).
   */
  compressScripts?: boolean;
  /**
   * Files a target adds (root-only unless said otherwise), e.g. a secret where the cloud has no secret store.
   * `gz+b64`: the content is gzipped and base64-encoded (cloud-init decodes it), for a cloud that limits user-data.
   */
  extraFiles?: Array<{ path: string; permissions: string; content: string; encoding?: 'gz+b64' }>;
  /**
   * How the host's Docker logs in to a private registry (the image built by `image: build`): the content of the
   * Docker CLI's config.json (credential helpers, or a read-only credential), root's only; the bridge's unit points
   * DOCKER_CONFIG at it. Absent for a public image.
   */
  dockerConfig?: string;
  /**
   * systemd units a target adds (name -> unit file), enabled and started without blocking after the bridge's
   * own; e.g. a cloud's log agent. Nothing of the bridge may depend on them.
   */
  extraUnits?: Record<string, string>;
}

/** One `KEY=value` line of a Docker env file; values cannot be quoted there, so they must be one plain line. */
function envLine(key: string, value: string): string {
  if (/[\r\n\0]/.test(value)) throw new Error(`host: ${key} cannot hold a line break`);
  return `${key}=${value}`;
}

/** The file a secret is kept in: SCIM_BRIDGE_TOKEN_SHA256 -> token-sha256. */
export function secretFileName(env: string): string {
  if (!/^[A-Z][A-Z0-9_]*$/.test(env)) throw new Error(`host: ${env} is not an environment variable name`);
  return env.replace(/^SCIM_BRIDGE_/, '').toLowerCase().replace(/_/g, '-');
}

export function bridgeEnvironment(spec: HostSpec): string {
  const digest = (h: string) => /^[0-9a-f]{64}$/.test(h);
  const fetched = new Set(spec.secrets.map((s) => s.env));
  if (spec.tokenSha256 === undefined) {
    if (!fetched.has('SCIM_BRIDGE_TOKEN_SHA256')) throw new Error('host: tokenSha256 is needed, or SCIM_BRIDGE_TOKEN_SHA256 among the secrets');
  } else if (spec.tokenSha256.length === 0 || !spec.tokenSha256.every(digest)) throw new Error('host: tokenSha256 must hold hex SHA-256 digests');
  if (spec.tokenSha256 && fetched.has('SCIM_BRIDGE_TOKEN_SHA256')) throw new Error('host: tokenSha256 is given and fetched as a secret; give one');
  if (spec.appTokenSha256 && !spec.appTokenSha256.every(digest)) throw new Error('host: appTokenSha256 must hold hex SHA-256 digests');
  // The one list every target gives the bridge (infra/environment.ts); its database is on the data disk. What is
  // fetched is given by its `_FILE` form instead.
  const env = bridgeSettings({
    domain: spec.domain,
    databaseUrl: SQLITE_URL,
    tokenSha256: spec.tokenSha256 ?? [],
    ...(spec.appTokenSha256 ? { appTokenSha256: spec.appTokenSha256 } : {}),
    allowedDomains: spec.allowedDomains,
    ...(spec.webhookUrl ? { webhookUrl: spec.webhookUrl } : {}),
    ...(spec.google ? { google: spec.google } : {}),
  });
  const files = spec.secrets.map((s): [string, string] => [`${s.env}_FILE`, `${CONTAINER_SECRETS_DIR}/${secretFileName(s.env)}`]);
  return [...env.filter(([k]) => !fetched.has(k)), ...files].map(([k, v]) => envLine(k, v)).join('\n') + '\n';
}

/**
 * fetch-secrets DIR: one file per secret, written only when its value changed, each by a rename (the bridge sees
 * the old file or the new one, never half of one). Every value is fetched before any file is written: a failure
 * changes nothing (before a start, it fails the start and systemd retries; on the timer, the files in use stay).
 */
export function fetchSecretsScript(spec: HostSpec): string {
  const lines = [
    '#!/bin/bash',
    '# fetch-secrets DIR: reads what the bridge needs from the cloud\'s secret store, with the host\'s own identity,',
    '# into one file per secret in DIR (in memory, under /run; root\'s, readable by the bridge\'s uid). Run before',
    '# every start of the bridge and every minute by a timer: the bridge reads a file again when it changes.',
    'set -euo pipefail',
    '# A failing command inside $(…) stops the script too.',
    'shopt -s inherit_errexit',
    'umask 077',
    'dir=$1',
    `bridge_gid=${BRIDGE_UID}`,
    'mkdir -p "$dir"',
    'chown "root:$bridge_gid" "$dir"',
    'chmod 0750 "$dir"',
    '# One run at a time (the timer and a start may meet).',
    'exec 9>"${dir%/}.lock"',
    'flock 9',
    '# Whatever ends the script, no temporary file is left.',
    'trap \'rm -f "$dir"/.*.tmp\' EXIT',
    'nl=\'',
    '\'',
    'check() {',
    '  case $2 in',
    '    "" | *"$nl"*) echo "fetch-secrets: $1 is empty or has a line break" >&2; exit 1 ;;',
    '  esac',
    '}',
    '# put FILE VALUE: replaces DIR/FILE by a rename when its content differs.',
    'put() {',
    '  if printf \'%s\\n\' "$2" | cmp -s - "$dir/$1"; then return 0; fi',
    '  printf \'%s\\n\' "$2" > "$dir/.$1.tmp"',
    '  chown "root:$bridge_gid" "$dir/.$1.tmp"',
    '  chmod 0440 "$dir/.$1.tmp"',
    '  mv -f "$dir/.$1.tmp" "$dir/$1"',
    '  echo "fetch-secrets: $1 updated"',
    '}',
  ];
  if (spec.secretFunctions) lines.push(spec.secretFunctions.trimEnd());
  spec.secrets.forEach((s, i) => {
    if (!/^[A-Z][A-Z0-9_]*$/.test(s.env)) throw new Error(`host: ${s.env} is not an environment variable name`);
    secretFileName(s.env);
    lines.push(`value_${i}=$(${s.command})`, `check ${s.env} "$value_${i}"`);
  });
  spec.secrets.forEach((s, i) => lines.push(`put ${secretFileName(s.env)} "$value_${i}"`));
  lines.push('');
  return lines.join('\n');
}

function dockerRun(name: string, image: string, flags: string[]): string {
  return ['/usr/bin/docker run --rm --name', name, ...flags, image].join(' ');
}

/**
 * A path as systemd names its unit (`systemd-escape --path`): /dev/disk/by-id/google-x -> dev-disk-by\x2did-google\x2dx.
 * The data disk's service is wanted by the disk's device unit, so it starts whenever the disk appears.
 */
export function systemdPathUnit(path: string, suffix: string): string {
  const trimmed = path.replace(/^\/+|\/+$/g, '').replace(/\/+/g, '/');
  const escaped = [...Buffer.from(trimmed, 'utf8')]
    .map((byte, i) => {
      const c = String.fromCharCode(byte);
      if (c === '/') return '-';
      if (/[A-Za-z0-9:_]/.test(c) || (c === '.' && i > 0)) return c;
      return `\\x${byte.toString(16).padStart(2, '0')}`;
    })
    .join('');
  return `${escaped}.${suffix}`;
}

/** The user-defined Docker network the two containers share; nothing on it reaches the cloud's metadata service. */
export const DOCKER_NETWORK = 'scim-bridge';
/** The clouds' instance metadata service (GCP, AWS, DigitalOcean all serve it here): credentials and user-data. */
export const METADATA_ADDRESS = '169.254.169.254';

/**
 * Prepares the containers' network: the Docker network (created once), and a rule in Docker's DOCKER-USER chain
 * that refuses every container's packets to the metadata service, so neither the bridge nor Caddy can read the
 * host's cloud credentials or its user-data, whatever the cloud's own limits (AWS's hop limit covers only IMDSv2).
 */
export function prepareNetworkScript(): string {
  return [
    '#!/bin/sh',
    '# prepare-network: the Docker network of the scim-bridge containers, cut off from the metadata service.',
    'set -eu',
    `network=${DOCKER_NETWORK}`,
    `metadata=${METADATA_ADDRESS}`,
    'if ! docker network inspect "$network" >/dev/null 2>&1; then',
    '  docker network create --driver bridge "$network" >/dev/null',
    'fi',
    '# DOCKER-USER sees every packet a container sends through the host; Docker creates it and never flushes it.',
    'if ! iptables -w -C DOCKER-USER -d "$metadata/32" -j REJECT 2>/dev/null; then',
    '  iptables -w -I DOCKER-USER -d "$metadata/32" -j REJECT',
    'fi',
    'echo "prepare-network: containers on $network cannot reach $metadata"',
    '',
  ].join('\n');
}

/**
 * Docker reads daemon.json (the log driver) only when it starts. cloud-init writes the file (write_files) before
 * sysinit.target, so a Docker that the packages step installs, or that the image starts at boot, starts with it
 * in place: restarting it regardless only made every first boot stop and start Docker again. It is restarted when
 * it is not running, or was started before the file was last written (same second: restarted).
 */
export const APPLY_DOCKER_CONFIG = [
  'if systemctl is-active --quiet docker.service',
  '&& [ "$(date -r /etc/docker/daemon.json +%s)" -lt "$(date -d "$(systemctl show -P ActiveEnterTimestamp docker.service)" +%s)" ];',
  'then echo "docker.service started after /etc/docker/daemon.json was written: no restart";',
  'else systemctl restart docker.service; fi',
].join(' ');

function unit(description: string, requires: string[], service: string[], wantedBy: string[]): string {
  return [
    '[Unit]',
    `Description=${description}`,
    `After=${[...requires, 'network-online.target'].join(' ')}`,
    `Requires=${requires.join(' ')}`,
    'Wants=network-online.target',
    '',
    '[Service]',
    ...service,
    '',
    '[Install]',
    `WantedBy=${wantedBy.join(' ')}`,
    '',
  ].join('\n');
}

/** A oneshot unit that stays "active" after its command: a preparation the containers' units require. */
function oneshot(description: string, unitLines: string[], serviceLines: string[], wantedBy: string): string {
  return [
    '[Unit]',
    `Description=${description}`,
    ...unitLines,
    '',
    '[Service]',
    'Type=oneshot',
    'RemainAfterExit=yes',
    ...serviceLines,
    '',
    '[Install]',
    `WantedBy=${wantedBy}`,
    '',
  ].join('\n');
}

export function systemdUnits(spec: HostSpec): Record<string, string> {
  const hardening = ['--read-only', '--cap-drop ALL', '--security-opt no-new-privileges'];
  const bridge = dockerRun('scim-bridge', spec.image, [
    `--network ${DOCKER_NETWORK}`,
    ...hardening,
    `--user ${BRIDGE_UID}:${BRIDGE_UID}`,
    '--tmpfs /tmp:rw,nosuid,nodev,size=64m',
    '--memory 512m',
    `--env-file ${ETC}/bridge.env`,
    `--volume ${MOUNT_POINT}/data:/data`,
    // The directory, not its files: a file replaced by a rename is seen inside the container too.
    `--volume ${SECRETS_DIR}:${CONTAINER_SECRETS_DIR}:ro`,
  ]);
  const caddy = dockerRun('scim-bridge-caddy', spec.caddyImage, [
    `--network ${DOCKER_NETWORK}`,
    // The only ports of the host that answer: HTTP (ACME challenges, redirect) and HTTPS.
    '--publish 80:80',
    '--publish 443:443',
    ...hardening,
    '--cap-add NET_BIND_SERVICE',
    '--tmpfs /tmp:rw,nosuid,nodev,size=16m',
    '--memory 256m',
    `--volume ${ETC}/Caddyfile:/etc/caddy/Caddyfile:ro`,
    ...(spec.acme.caRoot ? [`--volume ${ETC}/acme-ca-root.pem:/etc/caddy/acme-ca-root.pem:ro`] : []),
    `--volume ${MOUNT_POINT}/caddy:/data`,
    `--volume ${MOUNT_POINT}/caddy-config:/config`,
  ]);
  const restart = [
    'Restart=always',
    'RestartSec=5',
    // With the journald log driver Docker already writes each line to the journal (with CONTAINER_NAME): the
    // attached `docker run` would copy the containers' stdout there a second time. Its own errors (stderr) stay.
    ...(spec.logging.driver === 'journald' ? ['StandardOutput=null'] : []),
  ];
  const diskDevice = systemdPathUnit(spec.dataDevice, 'device');
  const needs = ['docker.service', 'scim-bridge-network.service', 'scim-bridge-disk.service'];
  // Started at boot when the disk is there, and whenever it appears later (a disk the cloud attaches after the
  // host exists): the disk's service is wanted by the disk's device, and the containers by the disk's service.
  const wantedBy = ['multi-user.target', 'scim-bridge-disk.service'];
  return {
    'scim-bridge-disk.service': oneshot(
      'scim-bridge data disk (formatted only when blank, then mounted)',
      // Bound to the disk: starts when it appears (at boot or later), stops (and stops the bridge) if it goes.
      [`BindsTo=${diskDevice}`, `After=${diskDevice}`],
      [
        `ExecStart=${LIB}/prepare-disk ${spec.dataDevice} ${MOUNT_POINT} ${BRIDGE_UID}`,
        // At a shutdown (a replacement too) the containers stop first (they are ordered after this unit), then
        // the disk is unmounted cleanly before the cloud detaches it.
        `ExecStop=-/bin/umount ${MOUNT_POINT}`,
      ],
      `multi-user.target ${diskDevice}`,
    ),
    'scim-bridge-network.service': oneshot(
      'scim-bridge container network (no way to the metadata service)',
      // Applied again whenever Docker restarts.
      ['After=docker.service', 'Requires=docker.service', 'PartOf=docker.service'],
      [`ExecStart=${LIB}/prepare-network`],
      'multi-user.target',
    ),
    'scim-bridge.service': unit(
      'scim-bridge SCIM 2.0 server',
      needs,
      [
        ...restart,
        // docker stop sends SIGTERM: the bridge finishes what is in flight and exits.
        'TimeoutStopSec=30',
        // The pull of a private image logs in as this config says (DOCKER_CONFIG: no HOME to guess under systemd).
        ...(spec.dockerConfig !== undefined ? [`Environment=DOCKER_CONFIG=${DOCKER_CONFIG_DIR}`] : []),
        'ExecStartPre=-/usr/bin/docker rm -f scim-bridge',
        `ExecStartPre=${LIB}/fetch-secrets ${SECRETS_DIR}`,
        `ExecStart=${bridge}`,
        'ExecStop=/usr/bin/docker stop --time 20 scim-bridge',
      ],
      wantedBy,
    ),
    // Every minute, the secrets again: a rotated token or webhook secret reaches the running bridge (no restart).
    [SECRETS_SERVICE]: [
      '[Unit]',
      'Description=scim-bridge: fetch the secrets again (token hashes, webhook secret)',
      'After=network-online.target',
      'Wants=network-online.target',
      '',
      '[Service]',
      'Type=oneshot',
      `ExecStart=${LIB}/fetch-secrets ${SECRETS_DIR}`,
      '',
    ].join('\n'),
    [SECRETS_TIMER]: [
      '[Unit]',
      'Description=scim-bridge: fetch the secrets every minute',
      '',
      '[Timer]',
      'OnActiveSec=1min',
      'OnUnitActiveSec=1min',
      'AccuracySec=5s',
      '',
      '[Install]',
      'WantedBy=timers.target',
      '',
    ].join('\n'),
    'scim-bridge-caddy.service': unit(
      'Caddy: HTTPS for scim-bridge',
      needs,
      [
        ...restart,
        'TimeoutStopSec=30',
        'ExecStartPre=-/usr/bin/docker rm -f scim-bridge-caddy',
        `ExecStart=${caddy}`,
        'ExecStop=/usr/bin/docker stop --time 20 scim-bridge-caddy',
      ],
      wantedBy,
    ),
  };
}

export function hostCaddyfile(spec: HostSpec): string {
  return renderCaddyfile({
    domain: spec.domain,
    // The bridge's container, by its name on the containers' Docker network.
    upstream: `scim-bridge:${BRIDGE_PORT}`,
    acmeEmail: spec.acme.email,
    acmeDirectory: spec.acme.directory,
    ...(spec.acme.caRoot ? { acmeCaRootFile: '/etc/caddy/acme-ca-root.pem' } : {}),
    storageDir: '/data',
  });
}

/**
 * unattended-upgrades' reboot policy. An update that needs a reboot (a kernel, libc) would otherwise wait for the
 * next replacement of the host; with a time, the host reboots then (about a minute without the bridge), and only
 * when an update asked for it.
 */
export function rebootPolicy(rebootTime: string | undefined): string {
  const when = rebootTime ?? 'never';
  if (when === 'never') return '// scim-bridge: never reboot by itself (rebootTime never)\nUnattended-Upgrade::Automatic-Reboot "false";\n';
  if (!/^([01]\d|2[0-3]):[0-5]\d$/.test(when)) throw new Error(`host: rebootTime "${when}" is not HH:MM or never`);
  return [
    `// scim-bridge: reboot at ${when} UTC when an installed update needs it (rebootTime)`,
    'Unattended-Upgrade::Automatic-Reboot "true";',
    'Unattended-Upgrade::Automatic-Reboot-WithUsers "true";',
    `Unattended-Upgrade::Automatic-Reboot-Time "${when}";`,
    '',
  ].join('\n');
}

interface WriteFile {
  path: string;
  permissions: string;
  owner?: string;
  content: string;
  encoding?: 'gz+b64';
}

/** A file's content as cloud-init's `gz+b64` encoding takes it; the same text always gives the same bytes. */
export function gzipBase64(text: string): string {
  // Node writes no time or name into the gzip header: a change of the text is the only change of the user-data.
  return gzipSync(Buffer.from(text, 'utf8'), { level: 9 }).toString('base64');
}

/** The `#cloud-config` document for the host. */
export function renderUserData(spec: HostSpec): string {
  const ownUnits = systemdUnits(spec);
  const files: WriteFile[] = [
    {
      path: '/etc/docker/daemon.json',
      permissions: '0644',
      content: JSON.stringify({ 'log-driver': spec.logging.driver, ...(spec.logging.options ? { 'log-opts': spec.logging.options } : {}) }, null, 2) + '\n',
    },
    // Security updates from the distribution, every day, whatever the image's defaults.
    {
      path: '/etc/apt/apt.conf.d/20auto-upgrades',
      permissions: '0644',
      content: 'APT::Periodic::Update-Package-Lists "1";\nAPT::Periodic::Unattended-Upgrade "1";\n',
    },
    { path: '/etc/apt/apt.conf.d/52scim-bridge-reboot', permissions: '0644', content: rebootPolicy(spec.rebootTime) },
    { path: `${ETC}/bridge.env`, permissions: '0644', content: bridgeEnvironment(spec) },
    { path: `${ETC}/Caddyfile`, permissions: '0644', content: hostCaddyfile(spec) },
    ...(spec.acme.caRoot ? [{ path: `${ETC}/acme-ca-root.pem`, permissions: '0644', content: spec.acme.caRoot.trimEnd() + '\n' }] : []),
    ...(spec.dockerConfig !== undefined ? [{ path: `${DOCKER_CONFIG_DIR}/config.json`, permissions: '0600', content: spec.dockerConfig.trimEnd() + '\n' }] : []),
    ...[
      { path: `${LIB}/prepare-disk`, permissions: '0755', content: readFileSync(join(__dirname, 'prepare-disk.sh'), 'utf8') },
      { path: `${LIB}/fetch-secrets`, permissions: '0755', content: fetchSecretsScript(spec) },
      { path: `${LIB}/prepare-network`, permissions: '0755', content: prepareNetworkScript() },
    ].map((f): WriteFile => (spec.compressScripts ? { ...f, encoding: 'gz+b64', content: gzipBase64(f.content) } : f)),
    ...Object.entries({ ...ownUnits, ...spec.extraUnits }).map(([name, content]) => ({ path: `/etc/systemd/system/${name}`, permissions: '0644', content })),
    ...(spec.extraFiles ?? []),
  ];
  // The secrets' service is started by its timer only.
  const units = Object.keys(ownUnits).filter((u) => u !== SECRETS_SERVICE);
  const extraUnits = Object.keys(spec.extraUnits ?? {});
  for (const name of extraUnits) {
    if (units.includes(name) || !/^[a-z0-9@._-]+\.(service|timer)$/.test(name)) throw new Error(`host: extra unit ${name} is not a new .service or .timer name`);
  }
  const doc = {
    package_update: true,
    // apparmor: Docker needs its parser where the kernel has AppArmor on, and it is only a Recommends of docker.io
    // (images that skip Recommends would fail every `docker run`). e2fsprogs: prepare-disk's mkfs and resize2fs.
    packages: ['docker.io', 'apparmor', 'curl', 'jq', 'e2fsprogs', 'unattended-upgrades', ...(spec.extraPackages ?? [])],
    write_files: files.map((f) => ({ path: f.path, owner: f.owner ?? 'root:root', permissions: f.permissions, ...(f.encoding ? { encoding: f.encoding } : {}), content: f.content })),
    runcmd: [
      ['sh', '-c', APPLY_DOCKER_CONFIG],
      // enable reloads systemd's configuration itself (so it loads the units write_files put there): no
      // daemon-reload of its own.
      ['systemctl', 'enable', ...units],
      // Without waiting: the disk's service waits for the disk, which a cloud may attach after the host boots.
      ['systemctl', 'start', '--no-block', ...units],
      ...(extraUnits.length ? [['systemctl', 'enable', '--now', '--no-block', ...extraUnits]] : []),
    ],
  };
  const header = [
    '#cloud-config',
    '# scim-bridge host, rendered by infra/host. Replacing this host keeps the data disk (database, certificates).',
  ].join('\n');
  // cloud-init reads YAML 1.1 (PyYAML): write 1.1, so values like `on`, `no` or `1:20` are quoted.
  return `${header}\n${stringify(doc, { lineWidth: 0, version: '1.1' })}`;
}
