/** The gcp target: its settings and defaults, its component, secret sinks and plan mocks. */
import { hostArgs, HOST_KEYS, readHostSettings } from '../host/settings';
import type * as pulumi from '@pulumi/pulumi';
import { readMetricsToken } from '../settings';
import { defineTarget } from '../target';
import { GcpBridge, GCP_SECRET_SINKS } from './index';
import { gcpPlanMocks } from './mocks';

export interface GcpSettings {
  project: string;
  region: string;
  zone: string;
  /** A token accepted on /metrics only (a secret): its hash reaches the host like the token's. */
  metricsToken?: pulumi.Output<string>;
}

export const gcpTarget = defineTarget({
  name: 'gcp',
  keys: { ...HOST_KEYS, zone: 'GCP zone, e.g. europe-west1-b', metricsToken: 'a token accepted on /metrics only, for a Prometheus scraper (--secret)' },
  settings(r, common) {
    const host = readHostSettings(r, common, {
      defaultSize: 'e2-small',
      dnsZone: {
        what: 'Cloud DNS managed zone (its name)',
        example: 'example-com',
        problem: (zone) =>
          /^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$/.test(zone)
            ? undefined
            : `"${zone}" is not a Cloud DNS managed zone name; give the zone's name (gcloud dns managed-zones list), like example-com, not its DNS name`,
      },
      diskId: [/^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$/, "the disk's name (gcloud compute disks list --filter=labels.app=scim-bridge)"],
    });
    const project = r.other('gcp:project');
    if (!project) r.problem('gcp:project is not set: the GCP project to deploy in: pulumi config set gcp:project my-project-id');
    const zone = r.get('zone') ?? '';
    if (!zone) r.fail('zone', `is not set: the GCP zone for the host: ${r.set('zone', 'europe-west1-b')}`);
    else if (!/^[a-z]+-[a-z]+\d+-[a-z]$/.test(zone)) r.fail('zone', `"${zone}" is not a GCP zone (like europe-west1-b; a region such as europe-west1 is not enough)`);
    const metricsToken = readMetricsToken(r);
    const gcp: GcpSettings | undefined = project && zone ? { project, zone, region: zone.replace(/-[a-z]$/, ''), ...(metricsToken ? { metricsToken } : {}) } : undefined;
    return { ...host, ...(gcp ? { gcp } : {}) } as typeof host & { gcp: GcpSettings };
  },
  build: (name, c) => new GcpBridge(name, { ...hostArgs(c), ...c.gcp }),
  secretSinks: GCP_SECRET_SINKS,
  planMocks: gcpPlanMocks,
});
