/**
 * What the policies share: resource type tokens, unknown-value handling, and small readers for the loosely typed
 * inputs a policy receives (plain JSON: secrets already unwrapped by @pulumi/policy, unknowns behind a proxy).
 */
import { UnknownValueError } from '@pulumi/policy';
import type { ReportViolation, ResourceValidationArgs } from '@pulumi/policy';

/** The types the policies look at, as Pulumi names them (no provider SDK is loaded: the pack stays light). */
export const T = {
  gcpFirewall: 'gcp:compute/firewall:Firewall',
  gcpInstance: 'gcp:compute/instance:Instance',
  gcpInstanceTemplate: 'gcp:compute/instanceTemplate:InstanceTemplate',
  gcpDisk: 'gcp:compute/disk:Disk',
  doFirewall: 'digitalocean:index/firewall:Firewall',
  doDroplet: 'digitalocean:index/droplet:Droplet',
  doVolume: 'digitalocean:index/volume:Volume',
  doVolumeAttachment: 'digitalocean:index/volumeAttachment:VolumeAttachment',
  awsSecurityGroup: 'aws:ec2/securityGroup:SecurityGroup',
  awsSecurityGroupRule: 'aws:ec2/securityGroupRule:SecurityGroupRule',
  awsIngressRule: 'aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule',
  awsInstance: 'aws:ec2/instance:Instance',
  awsLaunchTemplate: 'aws:ec2/launchTemplate:LaunchTemplate',
  awsVolume: 'aws:ebs/volume:Volume',
  awsVolumeAttachment: 'aws:ec2/volumeAttachment:VolumeAttachment',
  k8sNamespace: 'kubernetes:core/v1:Namespace',
  k8sPod: 'kubernetes:core/v1:Pod',
  k8sDeployment: 'kubernetes:apps/v1:Deployment',
  k8sStatefulSet: 'kubernetes:apps/v1:StatefulSet',
  k8sDaemonSet: 'kubernetes:apps/v1:DaemonSet',
  k8sJob: 'kubernetes:batch/v1:Job',
  k8sCronJob: 'kubernetes:batch/v1:CronJob',
  k8sNetworkPolicy: 'kubernetes:networking.k8s.io/v1:NetworkPolicy',
} as const;

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Props = Record<string, any>;

/**
 * Runs checks one by one so that an input still unknown during `pulumi preview` (e.g. user-data built from a token
 * generated in the same run) does not hide a violation elsewhere in the resource: every check that can run does,
 * and the first unknown is rethrown at the end. @pulumi/policy turns that into an advisory "can't run policy during
 * preview" note, and the policy runs again with the real values during `pulumi up`, before the resource changes.
 */
export class Checks {
  private unknown: unknown;

  run(check: () => void): void {
    try {
      check();
    } catch (err) {
      if (!(err instanceof UnknownValueError)) throw err;
      this.unknown ??= err;
    }
  }

  done(): void {
    if (this.unknown) throw this.unknown;
  }
}

export function asArray(v: unknown): unknown[] {
  return Array.isArray(v) ? v : v === undefined || v === null ? [] : [v];
}

export function asStrings(v: unknown): string[] {
  return asArray(v).filter((x): x is string => typeof x === 'string');
}

export function isObject(v: unknown): v is Props {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A value set to true, whatever the provider's schema makes of it (launch templates take "true" as a string). */
export function isTrue(v: unknown): boolean {
  return v === true || (typeof v === 'string' && v.toLowerCase() === 'true');
}

/** A CIDR range that is the whole IPv4 or IPv6 internet: any address with a /0 prefix. */
export function isWorld(cidr: string): boolean {
  return /^\s*[0-9a-fA-F:.]*\/0\s*$/.test(cidr);
}

/** Checks one resource type's inputs, reporting each violation. */
export type Validator = (props: Props, name: string, report: ReportViolation) => void;

/**
 * A policy's validateResource for policies that check a few resource types, each its own way: the validator of
 * the resource's type, or "not applicable" for any other type.
 */
export function byType(validators: Record<string, Validator>): (args: ResourceValidationArgs, report: ReportViolation) => void {
  return (args, report) => {
    const validate = validators[args.type];
    if (!validate) args.notApplicable(`applies to ${Object.keys(validators).join(', ')}`);
    validate(args.props, args.name, report);
  };
}
