/**
 * DigitalOcean: `scim-bridge:digitalocean:Bridge`. A Droplet (Ubuntu 24.04, cloud-init from infra/host, the
 * monitoring agent on) behind a cloud Firewall open to the world on tcp 80/443 only, a Reserved IP assigned to
 * it, a Volume for the database and the certificates that outlives the Droplet (and `pulumi destroy`), A and
 * CAA records in an existing DigitalOcean domain, an uptime check of https://<domain>/healthz with email
 * alerts, CPU/memory/disk alerts on the Droplet, all of it tagged and placed in a project of its own.
 *
 * The volume is attached through the Droplet's own `volumeIds`, never by a digitalocean.VolumeAttachment. What
 * a replacement does then (terraform-provider-digitalocean, digitalocean/droplet/resource_droplet.go,
 * resourceDigitalOceanDropletDelete): with graceful_shutdown it asks DigitalOcean for a shutdown (ACPI: systemd
 * stops the bridge and Caddy, which exit cleanly, and the OS unmounts the disk and powers off) and waits until
 * the Droplet is `off`; only then it detaches the volumes (detachVolumesFromDroplet) and deletes the Droplet.
 * The new Droplet is created with the volume in its create request, so the disk is there when it boots. A
 * VolumeAttachment would depend on the Droplet, and with deleteBeforeReplace Pulumi deletes dependents first:
 * its Delete detaches the disk from the running Droplet, under SQLite's feet.
 *
 * DigitalOcean has no secret store. The token stays in Pulumi's encrypted state and is a secret stack output
 * (`pulumi stack output token --show-secrets`); the Droplet gets only its SHA-256, and not in its user-data: each
 * accepted hash is a tag on the Droplet (`<prefix>:token-sha256:<hex>`), which the host reads from the metadata
 * service every minute (fetch-secrets). Tags change in place, so a rotation (previousToken) never replaces the
 * Droplet; a hash is not a secret (the token is long and random), so a tag may show it. A webhook secret, which
 * the bridge needs in clear, travels in the Droplet's user-data as a root-only file (see the README: who can read
 * what), so the user-data is a Pulumi secret exactly when a webhook is configured, and a new webhook secret
 * replaces the Droplet (about a minute without the bridge; the IdP retries, the outbox keeps undelivered events).
 */
import * as digitalocean from '@pulumi/digitalocean';
import * as pulumi from '@pulumi/pulumi';
import { baseUrlOf, BridgeOutputs, bridgeToken, SecretSink, tokenSha256 } from '../bridge';
import { GOOGLE_CREDENTIALS_SETTING } from '../google-workspace';
import { METADATA_ADDRESS, MOUNT_POINT } from '../host';
import { bridgeHostSpec, HostBridgeArgs, HostSecret, HostSpec, renderUserData } from '../host';
import { BUILD_IMAGE } from '../image';
import { digitalOceanBuiltImage } from './registry';

export interface DigitalOceanBridgeArgs extends HostBridgeArgs {
  region: string;
  /** The Droplet's image: a distribution with cloud-init. */
  osImage?: string;
  /**
   * SSH keys (ids or fingerprints of keys already in the DigitalOcean team) for root. Without any,
   * DigitalOcean sets a root password and emails it; SSH stays closed by the firewall unless
   * adminSourceRanges are set. Stack configuration: scim-bridge:sshKeys.
   */
  sshKeys?: string[];
  /** image: build: the account's existing Container Registry (its name); the stack creates one when absent. */
  containerRegistry?: string;
  /** A token accepted on /metrics only (a Pulumi secret): its hash is a tag of the Droplet, read every minute. */
  metricsToken?: pulumi.Input<string>;
}

export const DIGITALOCEAN_OS_IMAGE = 'ubuntu-24-04-x64';
/** Where the webhook secret lands on the Droplet (root only) and how fetch-secrets reads it. */
export const WEBHOOK_SECRET_FILE = '/etc/scim-bridge/secrets/webhook-secret';
/** Where the Google Workspace connector's key lands on the Droplet (root only), the webhook secret's way. */
export const GOOGLE_CREDENTIALS_FILE = '/etc/scim-bridge/secrets/google-credentials';
/**
 * How long the Droplet's deletion may wait for the Droplet to be off after the shutdown request. The provider's
 * default is 60 s (its Delete timeout), less than the bridge's and Caddy's stop (up to 30 s each, see infra/host)
 * plus the rest of an OS shutdown may need; when it runs out, `pulumi up` fails with the Droplet still running
 * and the volume still attached (nothing is lost; run it again).
 */
export const DROPLET_DELETE_TIMEOUT = '10m';
/**
 * Volume inputs that never decide anything once the volume exists, so a difference is no reason to touch it:
 * the description (the provider cannot change it in place: a new wording would mean a new volume). With dataDiskImport,
 * also its tags: a volume kept by an earlier `pulumi destroy` lost them when that destroy deleted the tag, and
 * the tag is only a label on a volume (the firewall applies it to Droplets). Name and region are never ignored:
 * the name is the device path the host mounts, and the Droplet must be in the volume's region; size neither, so
 * that raising dataDiskSizeGb still grows the volume.
 */
export const VOLUME_IGNORED_CHANGES = ['description'];
export const IMPORTED_VOLUME_IGNORED_CHANGES = ['description', 'tags'];
/** Regions DigitalOcean's uptime check probes from. */
export const UPTIME_REGIONS = ['eu_west', 'us_east'];
/** Droplet alerts: the agent's metric, the threshold in percent, and what it means. */
export const DROPLET_ALERTS = [
  { key: 'cpu', type: 'v1/insights/droplet/cpu', value: 90, what: 'CPU above 90%' },
  { key: 'memory', type: 'v1/insights/droplet/memory_utilization_percent', value: 90, what: 'memory above 90%' },
  { key: 'disk', type: 'v1/insights/droplet/disk_utilization_percent', value: 85, what: 'disk above 85%' },
] as const;

/**
 * The only resource input that may hold a secret: the Droplet's user-data, and only the webhook secret and the
 * Google Workspace connector's key (never the token, of which the Droplet gets the hash). The registry's read-only
 * login of image build is there too, base64 as Docker keeps it (infra/digitalocean/registry.ts).
 */
export const DIGITALOCEAN_SECRET_SINKS: SecretSink[] = [{ input: 'digitalocean:index/droplet:Droplet.userData', only: ['webhookSecret', 'googleWorkspaceKey'] }];

/** The host's daily copy of the database (backup-database, a timer), and how many copies stay on the volume. */
export const BACKUP_SCRIPT = '/usr/local/lib/scim-bridge/backup-database';
export const BACKUP_TIMER = 'scim-bridge-backup.timer';
const BACKUP_SERVICE = 'scim-bridge-backup.service';
export const BACKUPS_KEPT = 14;

/**
 * backup-database KEEP: `scim-bridge backup` in the running bridge's container, daily, onto the data volume
 * (data/backups, the container's /data/backups), keeping the newest KEEP copies. DigitalOcean schedules no volume
 * snapshot and a Droplet's own backups leave volumes out (and go with the Droplet, which every update replaces):
 * these copies undo a bad change (a wrong push from an IdP, an upgrade gone wrong); they do not survive the loss of
 * the volume, which only a volume snapshot or a copy taken off the Droplet does (README).
 */
export function backupScript(): string {
  return [
    '#!/bin/bash',
    '# backup-database KEEP: a consistent copy of the bridge\'s database onto the data volume (data/backups), taken',
    '# while it runs; the newest KEEP copies stay. Run daily by scim-bridge-backup.timer.',
    'set -euo pipefail',
    'shopt -s inherit_errexit',
    'keep=$1',
    `dir=\${HOST_BACKUP_DIR:-${MOUNT_POINT}/data/backups}`,
    'name="scim-bridge-$(date -u +%Y%m%dT%H%M%SZ).db"',
    '# Inside the bridge\'s container, as its user: the backup reads the database the way the bridge opens it.',
    'docker exec scim-bridge scim-bridge backup "/data/backups/$name"',
    '# Names sort by time: everything after the newest KEEP goes.',
    'mapfile -t copies < <(find "$dir" -maxdepth 1 -type f -name \'scim-bridge-*.db\' -printf \'%f\\n\' | sort -r)',
    'for old in "${copies[@]:keep}"; do rm -f -- "${dir:?}/$old"; done',
    'echo "backup-database: $name; $(( ${#copies[@]} < keep ? ${#copies[@]} : keep )) copies kept in $dir"',
    '',
  ].join('\n');
}

/** The timer (daily at 03:00 UTC, caught up after a downtime) and its service, which runs only beside a running bridge. */
export function backupUnits(): { service: string; timer: string } {
  return {
    service: [
      '[Unit]',
      'Description=scim-bridge: a consistent copy of the database onto the data volume',
      'Requisite=scim-bridge.service',
      'After=scim-bridge.service',
      '',
      '[Service]',
      'Type=oneshot',
      `ExecStart=${BACKUP_SCRIPT} ${BACKUPS_KEPT}`,
      '',
    ].join('\n'),
    timer: [
      '[Unit]',
      'Description=scim-bridge: back the database up daily',
      '',
      '[Timer]',
      'OnCalendar=*-*-* 03:00:00 UTC',
      'Persistent=true',
      'RandomizedDelaySec=10min',
      '',
      '[Install]',
      'WantedBy=timers.target',
      '',
    ].join('\n'),
  };
}

/** The tag that carries one accepted token's hash: letters, digits, `-`, `_`, `:` only, at most 255. */
export function tokenHashTag(prefix: string, hash: string): string {
  if (!/^[0-9a-f]{64}$/.test(hash)) throw new Error('digitalocean: a token hash must be a hex SHA-256 digest');
  return `${prefix.slice(0, 160)}:token-sha256:${hash}`;
}

/**
 * Shell function for the host's fetch-secrets script: the accepted token hashes, from the Droplet's own tags
 * (the metadata service, which answers the Droplet itself only), comma-separated and sorted. None: it fails (the
 * bridge does not start without a token; on the timer, the files in use stay). DO_METADATA_ENDPOINT points it
 * elsewhere (tests use a local fake).
 */
export function digitalOceanSecretFunction(prefix: string, { metricsToken = false }: { metricsToken?: boolean } = {}): string {
  const marker = `${prefix.slice(0, 160)}:token-sha256:`;
  const metricsMarker = `${prefix.slice(0, 160)}:metrics-token-sha256:`;
  return [
    'do_token_hashes() {',
    '  local tags hashes',
    `  tags=$(curl -fsS --max-time 10 --retry 5 --retry-connrefused "\${DO_METADATA_ENDPOINT:-http://${METADATA_ADDRESS}}/metadata/v1/tags/") || return 1`,
    `  hashes=$(printf '%s\\n' "$tags" | sed -n 's/^${marker}\\([0-9a-f]\\{64\\}\\)$/\\1/p' | sort -u | paste -sd, -)`,
    '  if [ -z "$hashes" ]; then echo "fetch-secrets: no token hash among the Droplet\'s tags" >&2; return 1; fi',
    '  printf \'%s\\n\' "$hashes"',
    '}',
    // The metrics token's hash, the same way (only with a metrics token: the function is part of the user-data).
    ...(metricsToken
      ? [
          'do_metrics_hash() {',
          '  local tags hashes',
          `  tags=$(curl -fsS --max-time 10 --retry 5 --retry-connrefused "\${DO_METADATA_ENDPOINT:-http://${METADATA_ADDRESS}}/metadata/v1/tags/") || return 1`,
          `  hashes=$(printf '%s\\n' "$tags" | sed -n 's/^${metricsMarker}\\([0-9a-f]\\{64\\}\\)$/\\1/p' | sort -u | paste -sd, -)`,
          '  if [ -z "$hashes" ]; then echo "fetch-secrets: no metrics token hash among the Droplet\'s tags" >&2; return 1; fi',
          '  printf \'%s\\n\' "$hashes"',
          '}',
        ]
      : []),
  ].join('\n');
}

/** The tag that carries the metrics token's SHA-256 (not a secret, as the token's own). */
export function metricsHashTag(prefix: string, hash: string): string {
  if (!/^[0-9a-f]{64}$/.test(hash)) throw new Error('digitalocean: a token hash must be a hex SHA-256 digest');
  return `${prefix.slice(0, 160)}:metrics-token-sha256:${hash}`;
}

/** `name-stack` as DigitalOcean accepts it in names and tags: lower case letters, digits and hyphens. */
export function resourcePrefix(name: string, stack: string): string {
  const slug = `${name}-${stack}`.toLowerCase().replace(/[^a-z0-9-]+/g, '-').replace(/-{2,}/g, '-').replace(/^-+|-+$/g, '');
  return /^[a-z]/.test(slug) ? slug : `sb-${slug}`;
}

/** The volume's name (letters, digits and hyphens, at most 64, a letter first), which fixes its device path. */
export function volumeName(prefix: string): string {
  return `${prefix.slice(0, 59).replace(/-+$/, '')}-data`;
}

/** Linux shows a DigitalOcean volume as /dev/disk/by-id/scsi-0DO_Volume_<its name>. */
export function volumeDevice(volume: string): string {
  return `/dev/disk/by-id/scsi-0DO_Volume_${volume}`;
}

/** The record's name inside the DigitalOcean domain: `@` for the domain itself. */
export function recordName(domain: string, zone: string): string {
  if (domain === zone) return '@';
  if (!domain.endsWith(`.${zone}`)) throw new Error(`digitalocean: the domain ${domain} is not inside the DigitalOcean domain ${zone}`);
  return domain.slice(0, -(zone.length + 1));
}

export class DigitalOceanBridge extends pulumi.ComponentResource implements BridgeOutputs {
  readonly ipAddress: pulumi.Output<string>;
  readonly baseUrl: pulumi.Output<string>;
  readonly tokenReference: pulumi.Output<string>;
  /** The token itself, as a secret: exported as the stack output `token`, since there is no secret store. */
  readonly token: pulumi.Output<string>;
  readonly appTokenReference: pulumi.Output<string>;
  /** The application API's token, as a secret: the stack output `appToken`. */
  readonly appToken: pulumi.Output<string>;

  constructor(name: string, args: DigitalOceanBridgeArgs, opts?: pulumi.ComponentResourceOptions) {
    super('scim-bridge:digitalocean:Bridge', name, {}, opts);
    const parent = { parent: this };
    const { region } = args;
    const stack = pulumi.getStack();
    const prefix = resourcePrefix(name, stack);

    // One tag per stack: it marks the Droplet and the volume, and the firewall applies to what carries it, so
    // a replacement Droplet is covered from its first boot.
    const tag = new digitalocean.Tag(`${name}-tag`, { name: prefix }, parent);

    const firewall = new digitalocean.Firewall(
      `${name}-firewall`,
      {
        name: prefix,
        tags: [tag.name],
        inboundRules: [
          // HTTPS for the IdP; HTTP for Let's Encrypt's challenges and the redirect.
          { protocol: 'tcp', portRange: '80', sourceAddresses: ['0.0.0.0/0', '::/0'] },
          { protocol: 'tcp', portRange: '443', sourceAddresses: ['0.0.0.0/0', '::/0'] },
          ...(args.adminSourceRanges.length ? [{ protocol: 'tcp', portRange: '22', sourceAddresses: args.adminSourceRanges }] : []),
        ],
        // The host pulls images, reaches Let's Encrypt and the webhook, resolves names and syncs time.
        outboundRules: [
          { protocol: 'tcp', portRange: '1-65535', destinationAddresses: ['0.0.0.0/0', '::/0'] },
          { protocol: 'udp', portRange: '1-65535', destinationAddresses: ['0.0.0.0/0', '::/0'] },
          { protocol: 'icmp', destinationAddresses: ['0.0.0.0/0', '::/0'] },
        ],
      },
      parent,
    );

    const reservedIp = new digitalocean.ReservedIp(`${name}-ip`, { region }, parent);

    // The data volume is its own resource: a replacement Droplet gets it back, and `pulumi destroy` leaves it
    // (retainOnDelete) so the directory survives a teardown. Protected too: whatever would replace it (another
    // region or name, a smaller size, an import whose volume differs) fails instead of swapping in a blank
    // volume under the bridge; moving it is done on purpose, by hand. No initial filesystem: the host formats it
    // only when blank, and finds it by its name.
    const dataVolume = volumeName(prefix);
    const volume = new digitalocean.Volume(
      `${name}-data`,
      { name: dataVolume, region, size: args.dataDiskSizeGb, description: 'scim-bridge database and TLS certificates', tags: [tag.name] },
      // (dataDiskImport adopts a volume kept by an earlier destroy; its name is the stack's, so the same stack
      // name adopts it.)
      {
        ...parent,
        protect: true,
        retainOnDelete: true,
        ignoreChanges: args.dataDiskImport ? IMPORTED_VOLUME_IGNORED_CHANGES : VOLUME_IGNORED_CHANGES,
        ...(args.dataDiskImport ? { import: args.dataDiskImport } : {}),
      },
    );

    // The token in clear: only in Pulumi's encrypted state, and the secret stack output `token`.
    const token = bridgeToken(name, args.token, this);
    // The application API's token, the same way (generated; the secret stack output `appToken`).
    const appToken = bridgeToken(name, undefined, this, 'app-token');

    // The accepted hashes (the token's, and the previous one's during a rotation) as tags of the Droplet: tags
    // change in place, the host reads them every minute.
    const hashes = [tokenSha256(token), ...(args.previousToken !== undefined ? [tokenSha256(pulumi.output(args.previousToken))] : [])];
    const hashTags = hashes.map((hash, i) => new digitalocean.Tag(`${name}-token-sha256${i ? '-previous' : ''}`, { name: hash.apply((h) => tokenHashTag(prefix, h)) }, parent));

    if (args.metricsToken !== undefined) {
      const metricsHash = tokenSha256(pulumi.output(args.metricsToken));
      hashTags.push(new digitalocean.Tag(`${name}-metrics-token-sha256`, { name: metricsHash.apply((h) => metricsHashTag(prefix, h)) }, parent));
    }

    const secrets: HostSecret[] = [{ env: 'SCIM_BRIDGE_TOKEN_SHA256', command: 'do_token_hashes' }];
    if (args.webhook) secrets.push({ env: 'SCIM_BRIDGE_WEBHOOK_SECRET', command: `cat ${WEBHOOK_SECRET_FILE}` });
    // The Google Workspace connector's key travels as the webhook secret does: a new key replaces the Droplet.
    if (args.googleWorkspace) secrets.push({ env: GOOGLE_CREDENTIALS_SETTING, command: `cat ${GOOGLE_CREDENTIALS_FILE}` });
    // image: build: the checkout's image in Container Registry, pulled with a read-only credential (./registry.ts).
    const built =
      args.image === BUILD_IMAGE
        ? digitalOceanBuiltImage(name, { prefix, region, ...(args.containerRegistry ? { containerRegistry: args.containerRegistry } : {}) }, parent)
        : undefined;
    if (args.metricsToken !== undefined) secrets.push({ env: 'SCIM_BRIDGE_METRICS_TOKEN_SHA256', command: 'do_metrics_hash' });
    const spec = (appHash: string, image: string, webhookSecret?: string, googleKey?: string, dockerConfig?: string): HostSpec => ({
      ...bridgeHostSpec(args, { appToken: appHash }),
      image,
      ...(dockerConfig !== undefined ? { dockerConfig } : {}),
      dataDevice: volumeDevice(dataVolume),
      // No log service on DigitalOcean: container logs stay in the Droplet's journal.
      logging: { driver: 'journald' },
      secrets,
      secretFunctions: digitalOceanSecretFunction(prefix, { metricsToken: args.metricsToken !== undefined }),
      extraFiles: [
        ...(webhookSecret !== undefined ? [{ path: WEBHOOK_SECRET_FILE, permissions: '0600', content: `${webhookSecret}\n` }] : []),
        ...(googleKey !== undefined ? [{ path: GOOGLE_CREDENTIALS_FILE, permissions: '0600', content: `${googleKey}\n` }] : []),
        { path: BACKUP_SCRIPT, permissions: '0755', content: backupScript() },
        { path: `/etc/systemd/system/${BACKUP_SERVICE}`, permissions: '0644', content: backupUnits().service },
      ],
      extraUnits: { [BACKUP_TIMER]: backupUnits().timer },
    });
    // With a webhook, the Google Workspace connector or a registry credential the user-data carries a secret, so it
    // is a secret itself; without them it holds nothing secret (the token's hash only) and stays readable in previews.
    const image = built ? built.image : pulumi.output(args.image);
    const userData =
      args.webhook || args.googleWorkspace || built
        ? pulumi.secret(
            pulumi
              .all([tokenSha256(appToken), image, pulumi.output(args.webhook?.secret), pulumi.output(args.googleWorkspace?.key), built?.pullConfig])
              .apply(([appHash, ref, secret, googleKey, dockerConfig]) => renderUserData(spec(appHash, ref, secret, googleKey, dockerConfig))),
          )
        : pulumi.all([tokenSha256(appToken), image]).apply(([appHash, ref]) => renderUserData(spec(appHash, ref)));

    const droplet = new digitalocean.Droplet(
      `${name}-host`,
      {
        name: prefix,
        region,
        size: args.size,
        image: args.osImage ?? DIGITALOCEAN_OS_IMAGE,
        monitoring: true,
        // The public address is the Reserved IP (IPv4); a Droplet's own IPv6 address would change with every
        // replacement and has no record.
        ipv6: false,
        // Deleting the Droplet shuts it down first (the bridge stops cleanly), then detaches the volume.
        gracefulShutdown: true,
        // Attached by the Droplet itself: from its creation (the disk is there at boot), and detached only by
        // its deletion, after the shutdown. No VolumeAttachment (see the top of this file).
        volumeIds: [volume.id],
        userData,
        // The stack's tag (the firewall's), and the accepted token hashes (changed in place by a rotation).
        tags: [tag.name, ...hashTags.map((t) => t.name)],
        ...(args.sshKeys?.length ? { sshKeys: args.sshKeys } : {}),
      },
      // A new image or setting means a new Droplet: the old one goes first, since the volume and the Reserved IP
      // attach to one Droplet at a time. The firewall exists before the first Droplet boots.
      {
        ...parent,
        dependsOn: [firewall],
        deleteBeforeReplace: true,
        replaceOnChanges: ['userData'],
        customTimeouts: { delete: DROPLET_DELETE_TIMEOUT },
      },
    );
    const dropletId = droplet.id.apply((id) => Number(id));

    new digitalocean.ReservedIpAssignment(`${name}-ip`, { ipAddress: reservedIp.ipAddress, dropletId }, parent);

    const recordArgs = { domain: args.dnsZone, name: recordName(args.domain, args.dnsZone) };
    new digitalocean.DnsRecord(`${name}-a`, { ...recordArgs, type: 'A', value: reservedIp.ipAddress, ttl: 300 }, parent);
    if (args.acme.letsEncrypt) {
      // DigitalOcean wants the CA's domain as a name with its final dot.
      new digitalocean.DnsRecord(`${name}-caa`, { ...recordArgs, type: 'CAA', flags: 0, tag: 'issue', value: 'letsencrypt.org.', ttl: 3600 }, parent);
    }

    const check = new digitalocean.UptimeCheck(
      `${name}-uptime`,
      { name: `scim-bridge ${args.domain}`, type: 'https', target: `https://${args.domain}/healthz`, regions: UPTIME_REGIONS, enabled: true },
      parent,
    );
    const notifications = [{ emails: [args.alertEmail] }];
    new digitalocean.UptimeAlert(
      `${name}-down`,
      { name: `scim-bridge ${args.domain} is down`, checkId: check.id, type: 'down', period: '5m', notifications },
      parent,
    );
    new digitalocean.UptimeAlert(
      `${name}-certificate`,
      // Caddy renews a certificate when a third of its life is left; 14 days means renewal has been failing.
      { name: `scim-bridge ${args.domain} certificate expires soon`, checkId: check.id, type: 'ssl_expiry', comparison: 'less_than', threshold: 14, notifications },
      parent,
    );
    for (const alert of DROPLET_ALERTS) {
      new digitalocean.MonitorAlert(
        `${name}-${alert.key}`,
        {
          description: `scim-bridge ${args.domain}: ${alert.what} for 5 minutes on Droplet ${prefix}`,
          type: alert.type,
          compare: 'GreaterThan',
          value: alert.value,
          window: '5m',
          entities: [droplet.id],
          enabled: true,
          alerts: { emails: [args.alertEmail] },
        },
        parent,
      );
    }

    // The DNS domain is left where it is: it holds other records and is not this stack's to move.
    new digitalocean.Project(
      `${name}-project`,
      {
        name: prefix,
        description: `scim-bridge for ${args.domain} (Pulumi stack ${stack})`,
        purpose: 'Service or API',
        environment: 'Production',
        resources: [droplet.dropletUrn, volume.volumeUrn, reservedIp.reservedIpUrn],
      },
      parent,
    );

    this.token = token;
    this.appToken = appToken;
    this.ipAddress = reservedIp.ipAddress;
    this.baseUrl = pulumi.output(baseUrlOf(args.domain));
    this.tokenReference = pulumi.output(
      `Pulumi secret stack output "token" (DigitalOcean has no secret store); print it with: pulumi stack output token --show-secrets --stack ${stack}`,
    );
    this.appTokenReference = pulumi.output(
      `Pulumi secret stack output "appToken" (DigitalOcean has no secret store); print it with: pulumi stack output appToken --show-secrets --stack ${stack}`,
    );
    this.registerOutputs({ ipAddress: this.ipAddress, baseUrl: this.baseUrl, tokenReference: this.tokenReference, appTokenReference: this.appTokenReference, droplet: droplet.name });
  }
}
