/** The digitalocean target: its settings and defaults, its component, secret sinks and plan mocks. */
import { hostArgs, HOST_KEYS, readHostSettings, zoneByDomainProblem } from '../host/settings';
import type * as pulumi from '@pulumi/pulumi';
import { BUILD_IMAGE } from '../image';
import { list, readMetricsToken } from '../settings';
import { defineTarget } from '../target';
import { DigitalOceanBridge, DIGITALOCEAN_SECRET_SINKS } from './index';
import { digitalOceanPlanMocks } from './mocks';

export interface DigitalOceanSettings {
  region: string;
  /** Ids or fingerprints of SSH keys in the team, for root; without any, DigitalOcean emails a root password. */
  sshKeys?: string[];
  /** image: build: the account's existing Container Registry; the stack creates one when absent. */
  containerRegistry?: string;
  /** A token accepted on /metrics only (a secret): its hash is a tag of the Droplet, like the token's. */
  metricsToken?: pulumi.Output<string>;
}

export const digitalOceanTarget = defineTarget({
  name: 'digitalocean',
  keys: {
    ...HOST_KEYS,
    region: 'DigitalOcean region, e.g. fra1',
    sshKeys: 'DigitalOcean SSH key ids or fingerprints for root',
    containerRegistry: "image build: the account's existing Container Registry (its name)",
    metricsToken: 'a token accepted on /metrics only, for a Prometheus scraper (--secret)',
  },
  settings(r, common) {
    const host = readHostSettings(r, common, {
      defaultSize: 's-1vcpu-1gb',
      dnsZone: { what: 'DigitalOcean domain (Networking > Domains)', example: 'example.com', problem: (zone, domain, valid) => zoneByDomainProblem(zone, domain, valid) },
      diskId: [/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/, "the volume's id (doctl compute volume list)"],
    });
    const region = r.get('region') ?? '';
    if (!region) r.fail('region', `is not set: the DigitalOcean region for the Droplet and its volume: ${r.set('region', 'fra1')}`);
    else if (!/^[a-z]{3}\d$/.test(region)) r.fail('region', `"${region}" is not a DigitalOcean region slug (like fra1, nyc3, sgp1)`);
    const keys = list(r.get('sshKeys'));
    let sshKeys: string[] = [];
    if (typeof keys === 'string') r.fail('sshKeys', keys);
    else {
      sshKeys = keys;
      for (const k of keys) {
        if (!/^\d+$/.test(k) && !/^([0-9a-f]{2}:){15}[0-9a-f]{2}$/.test(k)) r.fail('sshKeys', `entry "${k}" is not a key id or an MD5 fingerprint (doctl compute ssh-key list)`);
      }
    }
    // An account has one registry: a second stack names the first one's (doctl registry get).
    const containerRegistry = r.get('containerRegistry');
    if (containerRegistry && !/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(containerRegistry)) r.fail('containerRegistry', `"${containerRegistry}" is not a Container Registry name (doctl registry get)`);
    if (containerRegistry && common.image !== BUILD_IMAGE) r.fail('containerRegistry', `is for image build only (this stack's image is ${common.image}); remove it: pulumi config rm containerRegistry`);
    const metricsToken = readMetricsToken(r);
    const digitalocean: DigitalOceanSettings | undefined =
      region && /^[a-z]{3}\d$/.test(region)
        ? { region, ...(sshKeys.length ? { sshKeys } : {}), ...(containerRegistry ? { containerRegistry } : {}), ...(metricsToken ? { metricsToken } : {}) }
        : undefined;
    return { ...host, ...(digitalocean ? { digitalocean } : {}) } as typeof host & { digitalocean: DigitalOceanSettings };
  },
  build: (name, c) => new DigitalOceanBridge(name, { ...hostArgs(c), ...c.digitalocean }),
  secretSinks: DIGITALOCEAN_SECRET_SINKS,
  planMocks: digitalOceanPlanMocks,
});
