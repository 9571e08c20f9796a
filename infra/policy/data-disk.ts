/**
 * Policy 4: the bridge's data disk is never deleted with its host.
 *
 * What a policy can see: a resource's inputs, its parent, its dependencies (per property too) and some options
 * (protect, ignoreChanges, deleteBeforeReplace, aliases, customTimeouts, additionalSecretOutputs). It cannot see
 * `retainOnDelete`: the analyzer protocol (@pulumi/policy 1.21, pulumirpc.AnalyzerResourceOptions) does not
 * carry it. So the policies enforce the structure that keeps the data when the host goes, and leave "pulumi
 * destroy keeps the disk" (retainOnDelete) to the offline plan's tests (test/infra/vm-targets.test.ts):
 *
 * - scim-bridge-data-disk-not-inline (each resource): a host carries no disk that lives and dies with it. AWS: no
 *   inline ebsBlockDevices (deleteOnTermination defaults to true, and even with false a replacement instance gets a
 *   new blank device); GCP: a boot disk taken from an existing disk must not be auto-deleted with the instance.
 * - scim-bridge-data-disk-outlives-host (the whole stack): every host has a data disk of its own (a GCP disk in
 *   attachedDisks, an EBS volume or DigitalOcean volume joined by an attachment), and that disk takes nothing
 *   from the host (no dependency on it, direct or indirect), so replacing the host (the targets use
 *   deleteBeforeReplace, which deletes what depends on the host first) leaves the disk alone.
 */
import type {
  PolicyResource,
  ReportViolation,
  ResourceValidationPolicy,
  StackValidationArgs,
  StackValidationPolicy,
} from '@pulumi/policy';
import { asArray, byType, Checks, isObject, Props, T, Validator } from './common';

export const DATA_DISK_NOT_INLINE = 'scim-bridge-data-disk-not-inline';
export const DATA_DISK_OUTLIVES_HOST = 'scim-bridge-data-disk-outlives-host';

/** Each host type, the type its data disk must be, and how the two are joined. */
export const HOSTS: Record<string, { disk: string; attachment?: string; via: string }> = {
  [T.gcpInstance]: { disk: T.gcpDisk, via: 'in the instance\'s attachedDisks' },
  [T.awsInstance]: { disk: T.awsVolume, attachment: T.awsVolumeAttachment, via: 'joined by an aws.ec2.VolumeAttachment' },
  [T.doDroplet]: { disk: T.doVolume, attachment: T.doVolumeAttachment, via: 'joined by a digitalocean.VolumeAttachment (or the Droplet\'s volumeIds)' },
};

const LIMITS =
  'It cannot see retainOnDelete (Pulumi does not pass it to policies), so that `pulumi destroy` keeps the disk is checked by the offline plan\'s tests instead.';

function awsInstance(props: Props, name: string, report: ReportViolation): void {
  const checks = new Checks();
  asArray(props.ebsBlockDevices).forEach((device, i) =>
    checks.run(() => {
      if (!isObject(device)) return;
      const dies = device.deleteOnTermination !== false;
      report(
        `${name}: ebsBlockDevices[${i}] (${device.deviceName ?? 'no device name'}) is an inline volume, ` +
          (dies ? 'deleted when the instance terminates (deleteOnTermination defaults to true)' : 'left behind unattached when the instance is replaced, while the new instance gets a blank one') +
          ': keep data on an aws.ebs.Volume of its own (retainOnDelete) attached with aws.ec2.VolumeAttachment.',
      );
    }),
  );
  checks.done();
}

function gcpInstance(props: Props, name: string, report: ReportViolation): void {
  const boot = props.bootDisk;
  if (!isObject(boot)) return;
  const checks = new Checks();
  checks.run(() => {
    if (boot.source !== undefined && boot.source !== '' && boot.autoDelete !== false) {
      report(
        `${name}: bootDisk uses an existing disk (source) that GCP deletes with the instance (autoDelete defaults to true): ` +
          'boot from an image (initializeParams) and keep data on a gcp.compute.Disk of its own in attachedDisks.',
      );
    }
  });
  checks.done();
}

const INLINE_VALIDATORS: Record<string, Validator> = {
  [T.awsInstance]: awsInstance,
  [T.gcpInstance]: gcpInstance,
};

export const dataDiskNotInline: ResourceValidationPolicy = {
  name: DATA_DISK_NOT_INLINE,
  description:
    'A host carries no disk that is deleted with it: AWS instances have no inline ebsBlockDevices (the data volume is an ' +
    'aws.ebs.Volume of its own), and a GCP instance does not boot from an existing disk that is auto-deleted with it. ' +
    'DigitalOcean never deletes a volume with a Droplet. ' +
    LIMITS,
  enforcementLevel: 'mandatory',
  severity: 'high',
  validateResource: byType(INLINE_VALIDATORS),
};

/** The resources `from` depends on, directly or through others (dependencies and property dependencies). */
function dependsOn(from: PolicyResource, target: PolicyResource): boolean {
  const seen = new Set<string>();
  const queue = [from];
  while (queue.length) {
    const r = queue.shift()!;
    for (const d of [...r.dependencies, ...Object.values(r.propertyDependencies).flat()]) {
      if (d.urn === target.urn) return true;
      if (!seen.has(d.urn)) {
        seen.add(d.urn);
        queue.push(d);
      }
    }
  }
  return false;
}

/** The disks of the right type that are the host's data disks, and those it boots from (GCP). */
function dataDisksOf(host: PolicyResource, all: PolicyResource[]): { data: PolicyResource[]; boot: PolicyResource[] } {
  const spec = HOSTS[host.type];
  const isDisk = (r: PolicyResource) => r.type === spec.disk;
  const direct = (r: PolicyResource, key: string) => (r.propertyDependencies[key] ?? []).filter(isDisk);
  const data = new Map<string, PolicyResource>();
  if (host.type === T.gcpInstance) {
    for (const d of direct(host, 'attachedDisks')) data.set(d.urn, d);
  } else {
    // An attachment that depends on both the host and a disk of the right type; or the Droplet's volumeIds.
    for (const a of all) {
      if (a.type !== spec.attachment) continue;
      const deps = [...a.dependencies, ...Object.values(a.propertyDependencies).flat()];
      if (!deps.some((d) => d.urn === host.urn)) continue;
      for (const d of deps.filter(isDisk)) data.set(d.urn, d);
    }
    for (const d of direct(host, 'volumeIds')) data.set(d.urn, d);
  }
  return { data: [...data.values()], boot: host.type === T.gcpInstance ? direct(host, 'bootDisk') : [] };
}

export const dataDiskOutlivesHost: StackValidationPolicy = {
  name: DATA_DISK_OUTLIVES_HOST,
  description:
    'Every host (GCP instance, AWS instance, DigitalOcean Droplet) has a data disk that is a resource of its own (a ' +
    'gcp.compute.Disk in attachedDisks, an aws.ebs.Volume or digitalocean.Volume joined by an attachment), is not the boot ' +
    'disk, and takes nothing from the host (no dependency on it, direct or indirect), so that replacing ' +
    'the host (deleteBeforeReplace deletes what depends on it first) never deletes the disk. ' +
    LIMITS,
  enforcementLevel: 'mandatory',
  severity: 'critical',
  validateStack: (args: StackValidationArgs, reportViolation: ReportViolation) => {
    const hosts = args.resources.filter((r) => HOSTS[r.type]);
    if (!hosts.length) args.notApplicable('the stack has no host (GCP instance, AWS instance, DigitalOcean Droplet)');
    for (const host of hosts) {
      const spec = HOSTS[host.type];
      const { data, boot } = dataDisksOf(host, args.resources);
      for (const d of boot) {
        reportViolation(`${d.name}: the ${spec.disk} is the boot disk of ${host.name}, which goes with the host: boot from an image and keep data on a disk in attachedDisks.`, d.urn);
      }
      if (!data.length) {
        reportViolation(
          `${host.name}: has no data disk of its own (a ${spec.disk} ${spec.via}): the bridge's database and certificates must live on a disk that outlives the host.`,
          host.urn,
        );
      }
      for (const d of data) {
        if (dependsOn(d, host)) {
          reportViolation(
            `${d.name}: the data disk depends on its host ${host.name}, so replacing the host (deleteBeforeReplace) deletes and re-creates the disk: give the disk no input from the host and no dependsOn on it.`,
            d.urn,
          );
        }
      }
    }
  },
};
