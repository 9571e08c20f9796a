/** The aws target: its settings and defaults, its component, secret sinks and plan mocks. */
import { hostArgs, HOST_KEYS, readHostSettings, zoneByDomainProblem } from '../host/settings';
import type * as pulumi from '@pulumi/pulumi';
import { readMetricsToken } from '../settings';
import { defineTarget } from '../target';
import { AwsBridge, AWS_SECRET_SINKS } from './index';
import { awsPlanMocks } from './mocks';

export interface AwsSettings {
  region: string;
  availabilityZone: string;
  /** An EC2 key pair of the region, for SSH as `admin` from adminSourceRanges. */
  keyName?: string;
  /** A token accepted on /metrics only (a secret): its hash reaches the host like the token's. */
  metricsToken?: pulumi.Output<string>;
}

export const awsTarget = defineTarget({
  name: 'aws',
  keys: {
    ...HOST_KEYS,
    availabilityZone: 'AWS availability zone, e.g. eu-west-1a',
    keyName: 'an EC2 key pair for SSH (aws)',
    metricsToken: 'a token accepted on /metrics only, for a Prometheus scraper (--secret)',
  },
  settings(r, common) {
    const host = readHostSettings(r, common, {
      defaultSize: 't3.small',
      dnsZone: {
        what: 'Route 53 hosted zone (its id or its domain name)',
        example: 'Z0123456789ABCDEFGHIJ',
        // A hosted zone id: its domain is checked by Route 53 itself.
        problem: (zone, domain, valid) =>
          /^Z[A-Z0-9]{5,32}$/.test(zone) ? undefined : zoneByDomainProblem(zone, domain, valid, " (give the hosted zone's id, like Z0123456789ABCDEFGHIJ, or its domain name)"),
      },
      diskId: [/^vol-[0-9a-f]{8,17}$/, "the volume's id, vol-… (aws ec2 describe-volumes)"],
    });
    let aws: AwsSettings | undefined;
    const metricsToken = readMetricsToken(r);
    const region = r.other('aws:region');
    if (!region) r.problem('aws:region is not set: the AWS region to deploy in: pulumi config set aws:region eu-west-1');
    else if (!/^[a-z]{2}(-gov)?-[a-z]+-\d$/.test(region)) r.problem(`aws:region "${region}" is not an AWS region (like eu-west-1)`);
    const az = r.get('availabilityZone') ?? (region ? `${region}a` : '');
    if (region && !r.hasProblem('aws:region')) {
      if (!az.startsWith(region) || !/^[a-z]$/.test(az.slice(region.length))) {
        r.fail('availabilityZone', `"${az}" is not an availability zone of ${region} (like ${region}a)`);
      } else {
        const keyName = r.get('keyName');
        if (keyName && !/^[\x20-\x7e]{1,255}$/.test(keyName)) r.fail('keyName', `"${keyName}" is not an EC2 key pair name (aws ec2 describe-key-pairs)`);
        else aws = { region, availabilityZone: az, ...(keyName ? { keyName } : {}), ...(metricsToken ? { metricsToken } : {}) };
      }
    }
    return { ...host, ...(aws ? { aws } : {}) } as typeof host & { aws: AwsSettings };
  },
  build: (name, c) => new AwsBridge(name, { ...hostArgs(c), ...c.aws }),
  secretSinks: AWS_SECRET_SINKS,
  planMocks: awsPlanMocks,
});
