/**
 * The settings of a VM host, shared by the gcp, digitalocean and aws targets: the DNS zone and machine size
 * (each target says what form they take there), Caddy's image, the data disk, SSH and reboots.
 */
import { cidrProblem, hostNameProblem, imageProblem, list, SettingsReader } from '../settings';
import type { CommonConfig } from '../target';
import type { HostBridgeArgs } from './bridge-args';

export const DEFAULT_CADDY_IMAGE = 'docker.io/library/caddy:2.10.2';
/** After the daily snapshots (03:00 UTC): an update that needs a reboot (a kernel) waits for this time. */
export const DEFAULT_REBOOT_TIME = '04:00';

export const HOST_KEYS = {
  dnsZone: 'the existing DNS zone the A record goes in',
  caddyImage: 'the Caddy image in front of the bridge',
  size: 'the machine type',
  dataDiskSizeGb: 'size of the data disk in GB',
  dataDiskImport: 'a kept data disk to adopt: GCP disk name, DigitalOcean volume id, AWS volume id',
  adminSourceRanges: 'CIDR ranges allowed to reach SSH',
  rebootTime: 'when (HH:MM UTC) the host may reboot for a security update, or never',
} as const;

export interface HostSettings {
  dnsZone: string;
  caddyImage: string;
  size: string;
  dataDiskSizeGb: number;
  /** A kept data disk to adopt (after a `pulumi destroy`): the cloud's own id for it. */
  dataDiskImport?: string;
  adminSourceRanges: string[];
  /** When (HH:MM, UTC) the host may reboot for an update that needs it (a new kernel), or `never`. */
  rebootTime: string;
}

/** How a cloud names what the host settings refer to. */
export interface HostRules {
  /** The machine type when `size` is not set. */
  defaultSize: string;
  /** The DNS zone: what it is there, an example, and what is wrong with a given one. */
  dnsZone: { what: string; example: string; problem(zone: string, domain: string, domainValid: boolean): string | undefined };
  /** A kept disk's id (dataDiskImport): its form, and where to find it. */
  diskId: [RegExp, string];
}

/** A zone given by its domain name: a host name that contains the bridge's domain. */
export function zoneByDomainProblem(zone: string, domain: string, domainValid: boolean, hint = ''): string | undefined {
  const problem = hostNameProblem(zone);
  if (problem) return `"${zone}" ${problem}${hint}`;
  if (domainValid && domain !== zone && !domain.endsWith(`.${zone}`)) return `"${zone}" does not contain the domain ${domain}; give the zone the domain's record goes in`;
  return undefined;
}

export function readHostSettings(r: SettingsReader, common: { domain: string; domainValid: boolean }, rules: HostRules): HostSettings {
  const dnsZone = r.get('dnsZone') ?? '';
  if (!dnsZone) r.fail('dnsZone', `is not set: the existing ${rules.dnsZone.what}: ${r.set('dnsZone', rules.dnsZone.example)}`);
  else {
    const problem = rules.dnsZone.problem(dnsZone, common.domain, common.domainValid);
    if (problem) r.fail('dnsZone', problem);
  }

  const caddyImage = r.get('caddyImage') ?? DEFAULT_CADDY_IMAGE;
  const caddyIssue = imageProblem(caddyImage);
  if (caddyIssue) r.fail('caddyImage', `"${caddyImage}" ${caddyIssue}`);

  const size = r.get('size') ?? rules.defaultSize;
  if (!/^[a-z0-9][a-z0-9.-]*$/.test(size)) r.fail('size', `"${size}" is not a machine type name (like ${rules.defaultSize})`);

  const diskRaw = r.get('dataDiskSizeGb') ?? '10';
  const dataDiskSizeGb = Number(diskRaw);
  if (!/^\d+$/.test(diskRaw) || dataDiskSizeGb < 10 || dataDiskSizeGb > 65536) {
    r.fail('dataDiskSizeGb', `"${diskRaw}" must be a whole number of GB from 10 to 65536`);
  }

  const dataDiskImport = r.get('dataDiskImport');
  if (dataDiskImport && !rules.diskId[0].test(dataDiskImport)) r.fail('dataDiskImport', `"${dataDiskImport}" is not ${rules.diskId[1]}`);

  const ranges = list(r.get('adminSourceRanges'));
  let adminSourceRanges: string[] = [];
  if (typeof ranges === 'string') r.fail('adminSourceRanges', ranges);
  else {
    adminSourceRanges = ranges;
    for (const range of ranges) {
      const problem = cidrProblem(range, 'opens SSH to the whole internet; name your admin ranges');
      if (problem) r.fail('adminSourceRanges', `entry "${range}" ${problem}`);
    }
  }

  const rebootTime = r.get('rebootTime') ?? DEFAULT_REBOOT_TIME;
  if (rebootTime !== 'never' && !/^([01]\d|2[0-3]):[0-5]\d$/.test(rebootTime)) {
    r.fail('rebootTime', `"${rebootTime}" must be a time of day in UTC as HH:MM (like ${DEFAULT_REBOOT_TIME}), or never to leave kernel updates waiting for the next replacement`);
  }

  return { dnsZone, caddyImage, size, dataDiskSizeGb, ...(dataDiskImport ? { dataDiskImport } : {}), adminSourceRanges, rebootTime };
}

/** The component's host arguments from the validated configuration. */
export function hostArgs(c: CommonConfig & HostSettings): HostBridgeArgs {
  return {
    image: c.image,
    domain: c.domain,
    dnsZone: c.dnsZone,
    size: c.size,
    ...(c.token ? { token: c.token } : {}),
    ...(c.previousToken ? { previousToken: c.previousToken } : {}),
    caddyImage: c.caddyImage,
    dataDiskSizeGb: c.dataDiskSizeGb,
    ...(c.dataDiskImport ? { dataDiskImport: c.dataDiskImport } : {}),
    alertEmail: c.alertEmail,
    acme: c.acme,
    allowedDomains: c.allowedDomains,
    ...(c.webhook ? { webhook: c.webhook } : {}),
    ...(c.googleWorkspace ? { googleWorkspace: c.googleWorkspace } : {}),
    adminSourceRanges: c.adminSourceRanges,
    rebootTime: c.rebootTime,
  };
}
