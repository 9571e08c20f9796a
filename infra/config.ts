/**
 * The stack configuration: read from `pulumi config` (namespace `scim-bridge`, plus the cloud provider's own
 * keys such as `gcp:project`), validated before any resource is declared. Every problem is one line that names
 * the key and says how to fix it; all problems are reported together.
 */
import * as pulumi from '@pulumi/pulumi';
import { LETS_ENCRYPT } from './host/caddy';
import bridgePackage from '../bridge/package.json';

export const NAMESPACE = 'scim-bridge';
export const TARGETS = ['gcp', 'digitalocean', 'aws'] as const;
export type Target = (typeof TARGETS)[number];

/** The published image of the bridge, pinned to the release of the checked-out code. */
export const DEFAULT_IMAGE = `ghcr.io/scim-bridge/scim-bridge:${bridgePackage.version}`;
export const DEFAULT_CADDY_IMAGE = 'docker.io/library/caddy:2.10.2';

export interface Acme {
  email: string;
  /** The ACME directory URL. */
  directory: string;
  /** Let's Encrypt (production or staging): a CAA record then limits issuance to it. */
  letsEncrypt: boolean;
  /** PEM of the root that signs a private ACME directory's HTTPS certificate. */
  caRoot?: string;
}

export interface GcpSettings {
  project: string;
  region: string;
  zone: string;
}

export interface DigitalOceanSettings {
  region: string;
  /** Ids or fingerprints of SSH keys in the team, for root; without any, DigitalOcean emails a root password. */
  sshKeys?: string[];
}

export interface AwsSettings {
  region: string;
  availabilityZone: string;
  /** An EC2 key pair of the region, for SSH as `admin` from adminSourceRanges. */
  keyName?: string;
}

export interface StackConfig {
  target: Target;
  domain: string;
  dnsZone: string;
  image: string;
  caddyImage: string;
  size: string;
  dataDiskSizeGb: number;
  /** A kept data disk to adopt (after a `pulumi destroy`): the cloud's own id for it. */
  dataDiskImport?: string;
  alertEmail: string;
  acme: Acme;
  allowedDomains: string[];
  webhook?: { url: string; secret: pulumi.Output<string> };
  /** Set with `--secret`; generated when absent. */
  token?: pulumi.Output<string>;
  adminSourceRanges: string[];
  /** When (HH:MM, UTC) the host may reboot for an update that needs it (a new kernel), or `never`. */
  rebootTime: string;
  gcp?: GcpSettings;
  digitalocean?: DigitalOceanSettings;
  aws?: AwsSettings;
}

/** What the validator reads: raw config strings, and which keys were set as secrets. */
export interface RawConfig {
  get(key: string): string | undefined;
  isSecret(key: string): boolean;
  /** Every key set in the stack, with its namespace (`scim-bridge:domain`). */
  keys(): string[];
}

export class StackConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(problems.join('\n'));
    this.name = 'StackConfigError';
  }
}

const KEYS = {
  target: 'which cloud: ' + TARGETS.join(', '),
  domain: "the bridge's host name, e.g. scim.example.com",
  dnsZone: 'the existing DNS zone the A record goes in',
  image: 'the bridge image, pinned to a version or a digest',
  caddyImage: 'the Caddy image in front of the bridge',
  size: 'the machine type',
  dataDiskSizeGb: 'size of the data disk in GB',
  dataDiskImport: 'a kept data disk to adopt: GCP disk name, DigitalOcean volume id, AWS volume id',
  zone: 'GCP zone, e.g. europe-west1-b',
  region: 'DigitalOcean region, e.g. fra1',
  availabilityZone: 'AWS availability zone, e.g. eu-west-1a',
  sshKeys: 'DigitalOcean SSH key ids or fingerprints for root',
  keyName: 'an EC2 key pair for SSH (aws)',
  alertEmail: 'who is told when the bridge is down',
  acmeEmail: "the ACME account's contact",
  acmeCa: 'production, staging or an ACME directory URL',
  acmeCaRoot: "PEM of a private ACME directory's root",
  allowedDomains: 'email domains accepted for users',
  webhookUrl: 'the downstream application webhook',
  webhookSecret: 'the webhook signing secret (--secret)',
  token: 'the bearer token (--secret); generated when absent',
  adminSourceRanges: 'CIDR ranges allowed to reach SSH',
  rebootTime: 'when (HH:MM UTC) the host may reboot for a security update, or never',
} as const;

/** After the daily snapshots (03:00 UTC): an update that needs a reboot (a kernel) waits for this time. */
export const DEFAULT_REBOOT_TIME = '04:00';

const DEFAULT_SIZE: Record<Target, string> = { gcp: 'e2-small', digitalocean: 's-1vcpu-1gb', aws: 't3.small' };

const LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const EMAIL = /^[^\s@"<>(),;:]+@[a-z0-9.-]+\.[a-z]{2,}$/i;

/** A DNS host name, or a sentence saying what is wrong with it. */
export function hostNameProblem(value: string): string | undefined {
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(value)) return 'has a scheme; give the host name only';
  if (value.includes('/')) return 'has a path or a trailing slash; give the host name only';
  if (value.includes(':')) return 'has a port; the bridge is served on 443';
  if (value.endsWith('.')) return 'ends with a dot; leave it out';
  if (value !== value.toLowerCase()) return 'has capitals; use lower case';
  if (value.startsWith('*')) return 'is a wildcard; give one host name';
  if (/^\d+(\.\d+){3}$/.test(value)) return 'is an IP address; Let\'s Encrypt needs a DNS name';
  if (value.length > 253) return 'is longer than 253 characters';
  const labels = value.split('.');
  if (labels.length < 2) return 'is not a fully qualified name (it needs a dot)';
  const bad = labels.find((l) => !LABEL.test(l));
  if (bad !== undefined) return `has an invalid label "${bad}" (letters, digits and inner hyphens, at most 63)`;
  return undefined;
}

/** A container image reference pinned to a tag other than latest, or to a digest. */
export function imageProblem(value: string): string | undefined {
  const match = /^((?:[a-z0-9.-]+(?::\d+)?\/)?[a-z0-9]+(?:[._-][a-z0-9]+)*(?:\/[a-z0-9]+(?:[._-][a-z0-9]+)*)*)(?::([\w][\w.-]{0,127}))?(?:@(sha256:[a-f0-9]{64}))?$/.exec(value);
  if (!match) return 'is not an image reference (registry/name:tag or registry/name@sha256:…)';
  const [, , tag, digest] = match;
  if (!digest && !tag) return 'has no tag; pin a version (name:1.2.3) or a digest (name@sha256:…) so a redeploy runs what you chose';
  if (!digest && tag === 'latest') return 'is pinned to "latest", which moves; pin a version or a digest so an update is a change Pulumi can see';
  return undefined;
}

function cidrProblem(value: string): string | undefined {
  const v4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/.exec(value);
  const v6 = /^[0-9a-f:]+\/(\d{1,3})$/i.exec(value);
  if (v4) {
    if (v4.slice(1, 5).some((o) => Number(o) > 255) || Number(v4[5]) > 32) return 'is not a valid IPv4 CIDR range';
    if (Number(v4[5]) === 0) return 'opens SSH to the whole internet; name your admin ranges (e.g. 203.0.113.0/24)';
    return undefined;
  }
  if (v6 && value.includes(':')) {
    if (Number(v6[1]) > 128) return 'is not a valid IPv6 CIDR range';
    if (Number(v6[1]) === 0) return 'opens SSH to the whole internet; name your admin ranges';
    return undefined;
  }
  return 'is not a CIDR range (like 203.0.113.0/24)';
}

/** A list given as a YAML list (`config set --path key[0] v`, stored as JSON) or as a comma-separated string. */
function list(raw: string | undefined): string[] | string {
  if (raw === undefined || raw.trim() === '') return [];
  const text = raw.trim();
  if (text.startsWith('[')) {
    try {
      const parsed: unknown = JSON.parse(text);
      if (Array.isArray(parsed) && parsed.every((x) => typeof x === 'string')) return parsed.map((x) => x.trim()).filter(Boolean);
    } catch {
      /* reported below */
    }
    return 'must be a list of strings';
  }
  return text.split(',').map((x) => x.trim()).filter(Boolean);
}

function closest(key: string, known: readonly string[]): string | undefined {
  const lower = key.toLowerCase();
  return known.find((k) => k.toLowerCase() === lower) ?? known.find((k) => k.toLowerCase().startsWith(lower.slice(0, 4)));
}

/**
 * Validates the raw configuration. `secret(key)` turns a value read from config into a secret Output; the
 * validator itself never looks inside secrets beyond checking their form.
 */
export function parseStackConfig(raw: RawConfig, secret: (value: string) => pulumi.Output<string>): StackConfig {
  const problems: string[] = [];
  const key = (k: string) => `${NAMESPACE}:${k}`;
  const get = (k: keyof typeof KEYS) => {
    const v = raw.get(key(k));
    return v === undefined || v.trim() === '' ? undefined : v.trim();
  };
  const set = (k: string, example: string) => `pulumi config set ${k} ${example}`;
  const fail = (k: string, message: string) => problems.push(`${key(k)} ${message}`);

  for (const full of raw.keys()) {
    if (!full.startsWith(`${NAMESPACE}:`)) continue;
    const k = full.slice(NAMESPACE.length + 1);
    if (!(k in KEYS)) {
      const hint = closest(k, Object.keys(KEYS));
      problems.push(`${full} is not a setting of scim-bridge${hint ? `; did you mean ${key(hint)}?` : ''} (known: ${Object.keys(KEYS).join(', ')})`);
    }
  }

  const targetRaw = get('target');
  let target: Target = 'gcp';
  if (!targetRaw) fail('target', `is not set: choose the cloud (${TARGETS.join(', ')}): ${set('target', 'gcp')}`);
  else if (!(TARGETS as readonly string[]).includes(targetRaw)) fail('target', `"${targetRaw}" is not a target; use one of ${TARGETS.join(', ')}`);
  else target = targetRaw as Target;

  const domain = get('domain') ?? '';
  if (!domain) fail('domain', `is not set: the bridge's host name: ${set('domain', 'scim.example.com')}`);
  else {
    const problem = hostNameProblem(domain);
    if (problem) fail('domain', `"${domain}" ${problem}: ${set('domain', 'scim.example.com')}`);
  }

  const dnsZone = get('dnsZone') ?? '';
  const zoneHelp: Record<Target, [string, string]> = {
    gcp: ['Cloud DNS managed zone (its name)', 'example-com'],
    digitalocean: ['DigitalOcean domain (Networking > Domains)', 'example.com'],
    aws: ['Route 53 hosted zone (its id or its domain name)', 'Z0123456789ABCDEFGHIJ'],
  };
  const within = (zoneName: string) => domain === zoneName || domain.endsWith(`.${zoneName}`);
  if (!dnsZone) {
    fail('dnsZone', `is not set: the existing ${zoneHelp[target][0]}: ${set('dnsZone', zoneHelp[target][1])}`);
  } else if (target === 'gcp') {
    if (!/^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$/.test(dnsZone)) {
      fail('dnsZone', `"${dnsZone}" is not a Cloud DNS managed zone name; give the zone's name (gcloud dns managed-zones list), like example-com, not its DNS name`);
    }
  } else if (target === 'aws' && /^Z[A-Z0-9]{5,32}$/.test(dnsZone)) {
    // a hosted zone id: its domain is checked by Route 53 itself
  } else {
    const problem = hostNameProblem(dnsZone);
    if (problem) fail('dnsZone', `"${dnsZone}" ${problem}${target === 'aws' ? ' (give the hosted zone\'s id, like Z0123456789ABCDEFGHIJ, or its domain name)' : ''}`);
    else if (domain && !hostNameProblem(domain) && !within(dnsZone)) fail('dnsZone', `"${dnsZone}" does not contain the domain ${domain}; give the zone the domain's record goes in`);
  }

  const image = get('image') ?? DEFAULT_IMAGE;
  const imageIssue = imageProblem(image);
  if (imageIssue) fail('image', `"${image}" ${imageIssue}`);
  const caddyImage = get('caddyImage') ?? DEFAULT_CADDY_IMAGE;
  const caddyIssue = imageProblem(caddyImage);
  if (caddyIssue) fail('caddyImage', `"${caddyImage}" ${caddyIssue}`);

  const size = get('size') ?? DEFAULT_SIZE[target];
  if (!/^[a-z0-9][a-z0-9.-]*$/.test(size)) fail('size', `"${size}" is not a machine type name (like ${DEFAULT_SIZE[target]})`);

  const diskRaw = get('dataDiskSizeGb') ?? '10';
  const dataDiskSizeGb = Number(diskRaw);
  if (!/^\d+$/.test(diskRaw) || dataDiskSizeGb < 10 || dataDiskSizeGb > 65536) {
    fail('dataDiskSizeGb', `"${diskRaw}" must be a whole number of GB from 10 to 65536`);
  }

  const dataDiskImport = get('dataDiskImport');
  const diskIds: Record<Target, [RegExp, string]> = {
    gcp: [/^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$/, "the disk's name (gcloud compute disks list --filter=labels.app=scim-bridge)"],
    digitalocean: [/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/, "the volume's id (doctl compute volume list)"],
    aws: [/^vol-[0-9a-f]{8,17}$/, "the volume's id, vol-… (aws ec2 describe-volumes)"],
  };
  if (dataDiskImport && !diskIds[target][0].test(dataDiskImport)) fail('dataDiskImport', `"${dataDiskImport}" is not ${diskIds[target][1]}`);

  const alertEmail = get('alertEmail') ?? '';
  if (!alertEmail) fail('alertEmail', `is not set: who is told when the bridge is down: ${set('alertEmail', 'ops@example.com')}`);
  else if (!EMAIL.test(alertEmail)) fail('alertEmail', `"${alertEmail}" is not an email address`);

  const acmeEmail = get('acmeEmail') ?? alertEmail;
  if (get('acmeEmail') && !EMAIL.test(acmeEmail)) fail('acmeEmail', `"${acmeEmail}" is not an email address`);

  const caRaw = get('acmeCa') ?? 'production';
  let directory: string = LETS_ENCRYPT.production;
  let letsEncrypt = true;
  if (caRaw === 'production' || caRaw === 'staging') directory = LETS_ENCRYPT[caRaw];
  else {
    letsEncrypt = false;
    directory = caRaw;
    let url: URL | undefined;
    try {
      url = new URL(caRaw);
    } catch {
      /* below */
    }
    if (!url || url.protocol !== 'https:') fail('acmeCa', `"${caRaw}" must be production, staging or the https URL of an ACME directory`);
    else if (Object.values(LETS_ENCRYPT).includes(caRaw as never)) letsEncrypt = true;
  }
  const caRoot = get('acmeCaRoot');
  if (caRoot && !caRoot.includes('-----BEGIN CERTIFICATE-----')) fail('acmeCaRoot', 'must be a PEM certificate (-----BEGIN CERTIFICATE-----…)');
  if (caRoot && letsEncrypt) fail('acmeCaRoot', "is only for a private ACME directory; Let's Encrypt needs none: pulumi config rm acmeCaRoot");

  const domains = list(get('allowedDomains'));
  let allowedDomains: string[] = [];
  if (typeof domains === 'string') fail('allowedDomains', domains);
  else {
    allowedDomains = domains.map((d) => d.toLowerCase());
    for (const d of allowedDomains) {
      const problem = hostNameProblem(d);
      if (problem) fail('allowedDomains', `entry "${d}" ${problem}`);
    }
  }

  const webhookUrl = get('webhookUrl');
  const webhookSecret = raw.get(key('webhookSecret'));
  let webhook: StackConfig['webhook'];
  if (webhookUrl) {
    let url: URL | undefined;
    try {
      url = new URL(webhookUrl);
    } catch {
      /* below */
    }
    if (!url || url.protocol !== 'https:') fail('webhookUrl', `"${webhookUrl}" must be an https URL`);
    else if (url.username || url.password) fail('webhookUrl', 'carries credentials; remove them from the URL (the host would see them in clear): the webhook is signed with webhookSecret');
  }
  if (webhookUrl && !webhookSecret) fail('webhookSecret', 'is not set but webhookUrl is: pulumi config set --secret webhookSecret "$(openssl rand -hex 32)"');
  if (!webhookUrl && webhookSecret) fail('webhookUrl', 'is not set but webhookSecret is: set both, or remove the secret');
  if (webhookSecret !== undefined) {
    if (!raw.isSecret(key('webhookSecret'))) fail('webhookSecret', 'is stored in clear in the stack file: pulumi config set --secret webhookSecret <value>');
    else if (webhookSecret.length < 16 || /\s/.test(webhookSecret)) fail('webhookSecret', 'must be at least 16 characters with no spaces or line breaks (openssl rand -hex 32)');
  }
  if (webhookUrl && webhookSecret && problems.length === 0) webhook = { url: webhookUrl, secret: secret(webhookSecret) };

  const tokenRaw = raw.get(key('token'));
  let token: pulumi.Output<string> | undefined;
  if (tokenRaw !== undefined) {
    // The host keeps only the token's SHA-256, so the token must be long and random enough that its hash
    // gives nothing away.
    if (!raw.isSecret(key('token'))) fail('token', 'is stored in clear in the stack file: pulumi config set --secret token <value>, or remove it to have one generated');
    else if (tokenRaw.length < 32 || /\s/.test(tokenRaw)) fail('token', 'must be at least 32 characters with no spaces (openssl rand -base64 36), or remove it to have one generated');
    else token = secret(tokenRaw);
  }

  const ranges = list(get('adminSourceRanges'));
  let adminSourceRanges: string[] = [];
  if (typeof ranges === 'string') fail('adminSourceRanges', ranges);
  else {
    adminSourceRanges = ranges;
    for (const r of ranges) {
      const problem = cidrProblem(r);
      if (problem) fail('adminSourceRanges', `entry "${r}" ${problem}`);
    }
  }

  const rebootTime = get('rebootTime') ?? DEFAULT_REBOOT_TIME;
  if (rebootTime !== 'never' && !/^([01]\d|2[0-3]):[0-5]\d$/.test(rebootTime)) {
    fail('rebootTime', `"${rebootTime}" must be a time of day in UTC as HH:MM (like ${DEFAULT_REBOOT_TIME}), or never to leave kernel updates waiting for the next replacement`);
  }

  const only = (k: keyof typeof KEYS, owner: Target) => {
    if (target !== owner && get(k)) fail(k, `applies to ${owner} only; remove it: pulumi config rm ${k}`);
  };
  only('zone', 'gcp');
  only('region', 'digitalocean');
  only('availabilityZone', 'aws');
  only('sshKeys', 'digitalocean');
  only('keyName', 'aws');

  let gcp: GcpSettings | undefined;
  let digitalocean: DigitalOceanSettings | undefined;
  let aws: AwsSettings | undefined;
  if (target === 'gcp') {
    const project = raw.get('gcp:project')?.trim();
    if (!project) problems.push('gcp:project is not set: the GCP project to deploy in: pulumi config set gcp:project my-project-id');
    const zone = get('zone') ?? '';
    if (!zone) fail('zone', `is not set: the GCP zone for the host: ${set('zone', 'europe-west1-b')}`);
    else if (!/^[a-z]+-[a-z]+\d+-[a-z]$/.test(zone)) fail('zone', `"${zone}" is not a GCP zone (like europe-west1-b; a region such as europe-west1 is not enough)`);
    if (project && zone) gcp = { project, zone, region: zone.replace(/-[a-z]$/, '') };
  } else if (target === 'digitalocean') {
    const region = get('region') ?? '';
    if (!region) fail('region', `is not set: the DigitalOcean region for the Droplet and its volume: ${set('region', 'fra1')}`);
    else if (!/^[a-z]{3}\d$/.test(region)) fail('region', `"${region}" is not a DigitalOcean region slug (like fra1, nyc3, sgp1)`);
    const keys = list(get('sshKeys'));
    let sshKeys: string[] = [];
    if (typeof keys === 'string') fail('sshKeys', keys);
    else {
      sshKeys = keys;
      for (const k of keys) {
        if (!/^\d+$/.test(k) && !/^([0-9a-f]{2}:){15}[0-9a-f]{2}$/.test(k)) {
          fail('sshKeys', `entry "${k}" is not a key id or an MD5 fingerprint (doctl compute ssh-key list)`);
        }
      }
    }
    if (region && /^[a-z]{3}\d$/.test(region)) digitalocean = { region, ...(sshKeys.length ? { sshKeys } : {}) };
  } else if (target === 'aws') {
    const region = raw.get('aws:region')?.trim();
    if (!region) problems.push('aws:region is not set: the AWS region to deploy in: pulumi config set aws:region eu-west-1');
    else if (!/^[a-z]{2}(-gov)?-[a-z]+-\d$/.test(region)) problems.push(`aws:region "${region}" is not an AWS region (like eu-west-1)`);
    const az = get('availabilityZone') ?? (region ? `${region}a` : '');
    if (region && !problems.some((p) => p.startsWith('aws:region'))) {
      if (!az.startsWith(region) || !/^[a-z]$/.test(az.slice(region.length))) {
        fail('availabilityZone', `"${az}" is not an availability zone of ${region} (like ${region}a)`);
      } else {
        const keyName = get('keyName');
        if (keyName && !/^[\x20-\x7e]{1,255}$/.test(keyName)) fail('keyName', `"${keyName}" is not an EC2 key pair name (aws ec2 describe-key-pairs)`);
        else aws = { region, availabilityZone: az, ...(keyName ? { keyName } : {}) };
      }
    }
  }

  if (problems.length) throw new StackConfigError(problems);
  return {
    target,
    domain,
    dnsZone,
    image,
    caddyImage,
    size,
    dataDiskSizeGb,
    ...(dataDiskImport ? { dataDiskImport } : {}),
    alertEmail,
    acme: { email: acmeEmail, directory, letsEncrypt, ...(caRoot ? { caRoot } : {}) },
    allowedDomains,
    ...(webhook ? { webhook } : {}),
    ...(token ? { token } : {}),
    adminSourceRanges,
    rebootTime,
    ...(gcp ? { gcp } : {}),
    ...(digitalocean ? { digitalocean } : {}),
    ...(aws ? { aws } : {}),
  };
}

/** Pulumi's runtime knows which config keys were set with --secret; its helper is not in the typings. */
function runtimeIsSecret(key: string): boolean {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const runtimeConfig = require('@pulumi/pulumi/runtime/config') as { isConfigSecret(k: string): boolean };
  return runtimeConfig.isConfigSecret(key);
}

/** The stack's configuration as `pulumi up` (or the offline plan) set it. */
export function loadStackConfig(): StackConfig {
  const all = pulumi.runtime.allConfig();
  const raw: RawConfig = {
    get: (k) => all[k],
    isSecret: runtimeIsSecret,
    keys: () => Object.keys(all),
  };
  try {
    return parseStackConfig(raw, (value) => pulumi.secret(value));
  } catch (err) {
    // A RunError is shown by Pulumi as its message alone, without a stack trace.
    if (err instanceof StackConfigError) throw new pulumi.RunError(`the stack configuration has problems:\n${err.message}`);
    throw err;
  }
}
