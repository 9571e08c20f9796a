/** What AWS computes for the resources the aws target reads back, and its lookups, for the offline plan. */
import * as pulumi from '@pulumi/pulumi';
import type { PlanMocks } from '../bridge';
import { healthCheckRegionOf, partitionOf } from './index';

const ACCOUNT = '123456789012';
export const PLAN_AMI_ID = 'ami-0123456789abcdef0';
export const PLAN_VOLUME_ID = 'vol-0123456789abcdef0';
export const PLAN_ZONE_ID = 'Z0PLANLOOKEDUP0000000';

/** The stack's region (aws:region), as the default provider has it. */
function region(): string {
  return pulumi.runtime.getConfig('aws:region') ?? 'us-east-1';
}

/** The stack region's partition and its DNS suffix, as aws.getPartition answers them. */
function partition(): { partition: string; dnsSuffix: string; reverseDnsPrefix: string } {
  const name = partitionOf(region()) ?? 'aws';
  const dnsSuffix = name === 'aws-cn' ? 'amazonaws.com.cn' : 'amazonaws.com';
  return { partition: name, dnsSuffix, reverseDnsPrefix: dnsSuffix.split('.').reverse().join('.') };
}

/** An ARN of the stack's partition. */
function arn(service: string, where: string, resource: string): string {
  return `arn:${partition().partition}:${service}:${where}:${resource}`;
}

/** Secrets Manager appends six random characters to a secret's name in its ARN. */
function secretArn(secretName: string): string {
  return arn('secretsmanager', `${region()}:${ACCOUNT}`, `secret:${secretName}-AbCdEf`);
}

export const awsPlanMocks: PlanMocks = {
  outputs(type, name, inputs) {
    // Names Pulumi would generate (<name>-<random>) are shown as the resource's name.
    const physical = (inputs.name as string | undefined) ?? name;
    switch (type) {
      case 'aws:ec2/eip:Eip':
        return { id: 'eipalloc-0123456789abcdef0', allocationId: 'eipalloc-0123456789abcdef0', publicIp: '203.0.113.30' };
      case 'aws:ec2/networkInterface:NetworkInterface':
        return { id: 'eni-0123456789abcdef0' };
      case 'aws:ec2/instance:Instance':
        return { id: 'i-0123456789abcdef0', arn: arn('ec2', `${region()}:${ACCOUNT}`, 'instance/i-0123456789abcdef0') };
      case 'aws:ebs/volume:Volume':
        return { id: PLAN_VOLUME_ID, arn: arn('ec2', `${region()}:${ACCOUNT}`, `volume/${PLAN_VOLUME_ID}`) };
      case 'aws:secretsmanager/secret:Secret':
        // A secret's id is its ARN.
        return { id: secretArn(physical), arn: secretArn(physical), name: physical };
      case 'aws:cloudwatch/logGroup:LogGroup':
        return { arn: arn('logs', `${region()}:${ACCOUNT}`, `log-group:${physical}`) };
      case 'aws:iam/role:Role':
        return { arn: arn('iam', `:${ACCOUNT}`, `role/${physical}`), name: physical };
      case 'aws:iam/instanceProfile:InstanceProfile':
        return { arn: arn('iam', `:${ACCOUNT}`, `instance-profile/${physical}`), name: physical };
      case 'aws:sns/topic:Topic':
        // The health check's alerts are in the partition's Route 53 region with its metrics; the others
        // (-alerts-local: the certificate, dead letters) in the stack's region.
        return { arn: arn('sns', `${name.endsWith('-alerts-local') ? region() : healthCheckRegionOf(region())}:${ACCOUNT}`, physical) };
      case 'aws:ecr/repository:Repository':
        return {
          arn: arn('ecr', `${region()}:${ACCOUNT}`, `repository/${physical}`),
          registryId: ACCOUNT,
          repositoryUrl: `${ACCOUNT}.dkr.ecr.${region()}.${partition().dnsSuffix}/${physical}`,
        };
      case 'aws:route53/healthCheck:HealthCheck':
        return { id: '0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d' };
      default:
        return undefined;
    }
  },
  invoke(token, inputs) {
    switch (token) {
      case 'aws:ec2/getAmi:getAmi': {
        const arch = ((inputs.filters as Array<{ name: string; values: string[] }> | undefined) ?? []).find((f) => f.name === 'architecture')?.values[0] ?? 'x86_64';
        const name = `debian-12-${arch === 'arm64' ? 'arm64' : 'amd64'}-20250101-1980`;
        return { id: PLAN_AMI_ID, imageId: PLAN_AMI_ID, name, architecture: arch, ownerId: '136693071363', rootDeviceType: 'ebs', virtualizationType: 'hvm' };
      }
      case 'aws:route53/getZone:getZone':
        return { id: PLAN_ZONE_ID, zoneId: PLAN_ZONE_ID, name: inputs.name, privateZone: false, arn: arn('route53', ':', `hostedzone/${PLAN_ZONE_ID}`) };
      // A push token for the built image: a secret the plan cannot know.
      case 'aws:ecr/getAuthorizationToken:getAuthorizationToken':
        return {
          id: region(),
          userName: 'AWS',
          password: 'PLAN-SECRET-registryPushToken'.padEnd(40, '_'),
          authorizationToken: '',
          proxyEndpoint: `https://${ACCOUNT}.dkr.ecr.${region()}.${partition().dnsSuffix}`,
          expiresAt: '2025-01-01T12:00:00Z',
        };
      case 'aws:index/getPartition:getPartition':
        return { id: partition().partition, ...partition() };
      default:
        return undefined;
    }
  },
};
