/**
 * Policy 2: disks and volumes are encrypted where the cloud leaves it to us.
 *
 * AWS: EBS encryption is a per-volume choice (an account may default to it, which a policy cannot see), so every
 * volume, root device and inline device must say `encrypted: true`. GCP persistent disks and DigitalOcean volumes
 * are always encrypted at rest by the provider, with no way to turn it off; on GCP the one thing to catch is a
 * customer-supplied key written into the resource's inputs, where it lands in the Pulumi state.
 */
import type { ResourceValidationPolicy, ReportViolation } from '@pulumi/policy';
import { asArray, byType, Checks, isObject, isTrue, Props, T, Validator } from './common';

export const DISKS_ENCRYPTED = 'scim-bridge-disks-encrypted';

const AWS_FIX = 'set `encrypted: true` (optionally with a KMS key: kmsKeyId); an account-wide EBS default is not visible to this policy';
const GCP_KEY_FIX =
  'GCP encrypts every disk already; for a key of your own use Cloud KMS (kmsKeySelfLink), never a raw or RSA-wrapped key in the program, which would sit in the Pulumi state and be needed on every attach';

function awsVolume(props: Props, name: string, report: ReportViolation): void {
  if (!isTrue(props.encrypted)) report(`${name}: the EBS volume is not encrypted: ${AWS_FIX}.`);
}

function awsInstance(props: Props, name: string, report: ReportViolation): void {
  const checks = new Checks();
  checks.run(() => {
    const root = props.rootBlockDevice;
    if (!isObject(root) || !isTrue(root.encrypted)) report(`${name}: the root volume is not encrypted: give the instance rootBlockDevice with ${AWS_FIX}.`);
  });
  asArray(props.ebsBlockDevices).forEach((device, i) =>
    checks.run(() => {
      if (!isObject(device) || !isTrue(device.encrypted)) {
        report(`${name}: ebsBlockDevices[${i}] (${isObject(device) ? device.deviceName ?? 'no device name' : '?'}) is not encrypted: ${AWS_FIX}.`);
      }
    }),
  );
  checks.done();
}

function awsLaunchTemplate(props: Props, name: string, report: ReportViolation): void {
  const checks = new Checks();
  asArray(props.blockDeviceMappings).forEach((mapping, i) =>
    checks.run(() => {
      if (!isObject(mapping) || !isObject(mapping.ebs)) return;
      if (!isTrue(mapping.ebs.encrypted)) report(`${name}: blockDeviceMappings[${i}] (${mapping.deviceName ?? 'no device name'}) is not encrypted: set ebs.encrypted to "true".`);
    }),
  );
  checks.done();
}

function gcpDisk(props: Props, name: string, report: ReportViolation): void {
  const key = props.diskEncryptionKey;
  if (!isObject(key)) return;
  const checks = new Checks();
  for (const field of ['rawKey', 'rsaEncryptedKey']) {
    checks.run(() => {
      if (key[field] !== undefined && key[field] !== '') report(`${name}: diskEncryptionKey.${field} puts an encryption key in the program: ${GCP_KEY_FIX}.`);
    });
  }
  checks.done();
}

function gcpInstance(props: Props, name: string, report: ReportViolation): void {
  const checks = new Checks();
  const disks: Array<[string, unknown]> = [['bootDisk', props.bootDisk], ...asArray(props.attachedDisks).map((d, i): [string, unknown] => [`attachedDisks[${i}]`, d])];
  for (const [where, disk] of disks) {
    for (const field of ['diskEncryptionKeyRaw', 'diskEncryptionKeyRsa']) {
      checks.run(() => {
        if (isObject(disk) && disk[field] !== undefined && disk[field] !== '') report(`${name}: ${where}.${field} puts an encryption key in the program: ${GCP_KEY_FIX}.`);
      });
    }
  }
  checks.done();
}

const VALIDATORS: Record<string, Validator> = {
  [T.awsVolume]: awsVolume,
  [T.awsInstance]: awsInstance,
  [T.awsLaunchTemplate]: awsLaunchTemplate,
  [T.gcpDisk]: gcpDisk,
  [T.gcpInstance]: gcpInstance,
};

export const disksEncrypted: ResourceValidationPolicy = {
  name: DISKS_ENCRYPTED,
  description:
    'Disks and volumes are encrypted where the cloud offers a choice. AWS: every aws.ebs.Volume, every instance\'s root volume ' +
    '(rootBlockDevice) and inline ebsBlockDevices, and launch-template EBS mappings must set encrypted (an account-wide EBS ' +
    'default is invisible here, so it must be explicit). GCP persistent disks and DigitalOcean volumes are always encrypted ' +
    'at rest by the provider and cannot be turned off, so there is nothing to require; on GCP the policy refuses a raw or ' +
    'RSA-wrapped customer-supplied key in a disk\'s inputs (it would live in the Pulumi state). It cannot see which KMS key ' +
    'AWS uses by default, nor the encryption of disks created outside this stack.',
  enforcementLevel: 'mandatory',
  severity: 'high',
  validateResource: byType(VALIDATORS),
};
