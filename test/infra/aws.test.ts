/**
 * The aws stack, evaluated offline with Pulumi's mocks (the same run as `npm run plan -- --stack aws`):
 * assertions on the real inputs of every resource the program declares, also in AWS GovCloud (US) and China
 * regions. One part evaluates the component under its own mocks, to see which provider each resource is created
 * with (the plan does not record it), and one runs the host's fetch-secrets script for real against a fake
 * instance metadata service (IMDSv2) and a fake Secrets Manager on loopback that checks each request's SigV4
 * signature the way AWS does (computed here with node:crypto, anchored on AWS's published examples).
 */
import { spawn, spawnSync } from 'node:child_process';
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import * as pulumi from '@pulumi/pulumi';
import { parse } from 'yaml';
import { ECR_PULL_ACTIONS } from '../../infra/aws/registry';
import { architectureOf, certificateCheckSource, AWS_SECRET_SINKS, AwsBridge, AwsBridgeArgs, DEBIAN_AMI_OWNER, healthCheckRegionOf, nvmeDevicePath, partitionOf } from '../../infra/aws';
import { awsPlanMocks, PLAN_AMI_ID, PLAN_VOLUME_ID, PLAN_ZONE_ID } from '../../infra/aws/mocks';
import { LETS_ENCRYPT } from '../../infra/host/caddy';
import { inventedSecret, plan, PlanResult } from '../../tools/plan';
import { all, Inputs, one, SECRET_SIG_KEY, sha256, writtenFiles } from '../helpers/plan';

const INSTANCE = 'aws:ec2/instance:Instance';
function userData(result: PlanResult): string {
  return one(result, INSTANCE).in.userData;
}
/** A file the user-data writes on the host. */
function hostFile(result: PlanResult, file: string): string {
  const found = writtenFiles(userData(result)).find((f) => f.path === file);
  if (!found) throw new Error(`user-data writes no ${file}`);
  return found.content;
}
const AWS_FUNCTIONS = '/usr/local/lib/scim-bridge/aws-functions';
const HOST_METRICS = '/usr/local/lib/scim-bridge/put-host-metrics';
/** The host's permission to publish its figures: PutMetricData in the program's namespace only. */
const HOST_METRICS_STATEMENT = { Sid: 'HostMetrics', Effect: 'Allow', Action: 'cloudwatch:PutMetricData', Resource: '*', Condition: { StringEquals: { 'cloudwatch:namespace': 'scim-bridge' } } };
function statements(result: PlanResult): Array<{ Sid: string; Effect: string; Action: string | string[]; Resource: string }> {
  return JSON.parse(one(result, 'aws:iam/rolePolicy:RolePolicy', 'scim-bridge-host').in.policy).Statement;
}
const WEBHOOK = { 'scim-bridge:webhookUrl': 'https://app.example.com/hooks/scim', 'scim-bridge:webhookSecret': { secure: 'v1:xyz' } };
const TOKEN_ARN = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:scim-bridge-token-AbCdEf';
const WEBHOOK_ARN = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:scim-bridge-webhook-secret-AbCdEf';
const TOKEN_HASHES_ARN = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:scim-bridge-token-sha256-AbCdEf';
const LOG_GROUP_ARN = 'arn:aws:logs:eu-west-1:123456789012:log-group:/scim-bridge/scim.example.com';
/** image: build (the shipped stack's default): the role pulls the built image from the stack's ECR repository only. */
const IMAGE_PULL = (partition = 'aws', region = 'eu-west-1') => [
  { Sid: 'ImageRegistryToken', Effect: 'Allow', Action: 'ecr:GetAuthorizationToken', Resource: '*' },
  { Sid: 'ImagePull', Effect: 'Allow', Action: ECR_PULL_ACTIONS, Resource: `arn:${partition}:ecr:${region}:123456789012:repository/scim-bridge-aws` },
];

let base: PlanResult;
let withWebhook: PlanResult;
beforeAll(async () => {
  base = await plan('aws');
  withWebhook = await plan('aws', { config: WEBHOOK });
});

describe('the aws stack (stacks/Pulumi.aws.yaml)', () => {
  test('declares every resource the target needs, inside one scim-bridge:aws:Bridge', () => {
    const types = new Set(base.raw.map((r) => r.type));
    for (const t of [
      'scim-bridge:aws:Bridge',
      'aws:ec2/vpc:Vpc',
      'aws:ec2/subnet:Subnet',
      'aws:ec2/internetGateway:InternetGateway',
      'aws:ec2/routeTable:RouteTable',
      'aws:ec2/routeTableAssociation:RouteTableAssociation',
      'aws:ec2/securityGroup:SecurityGroup',
      'aws:ec2/networkInterface:NetworkInterface',
      'aws:ec2/eip:Eip',
      'aws:ec2/eipAssociation:EipAssociation',
      'aws:ec2/instance:Instance',
      'aws:ebs/volume:Volume',
      'aws:ec2/volumeAttachment:VolumeAttachment',
      'aws:dlm/lifecyclePolicy:LifecyclePolicy',
      'aws:iam/role:Role',
      'aws:iam/rolePolicy:RolePolicy',
      'aws:iam/rolePolicyAttachment:RolePolicyAttachment',
      'aws:iam/instanceProfile:InstanceProfile',
      'aws:cloudwatch/logGroup:LogGroup',
      'aws:secretsmanager/secret:Secret',
      'aws:secretsmanager/secretVersion:SecretVersion',
      'aws:route53/record:Record',
      'aws:route53/healthCheck:HealthCheck',
      'pulumi:providers:aws',
      'aws:sns/topic:Topic',
      'aws:sns/topicSubscription:TopicSubscription',
      'aws:cloudwatch/metricAlarm:MetricAlarm',
      'random:index/randomPassword:RandomPassword',
    ]) {
      expect(types).toContain(t);
    }
    expect(all(base, 'scim-bridge:aws:Bridge')).toHaveLength(1);
    expect(base.leaks).toEqual([]);
  });

  test('a network of its own; the world reaches tcp 80 and 443 only; SSH is closed unless admin ranges are configured', async () => {
    const vpc = one(base, 'aws:ec2/vpc:Vpc');
    const subnet = one(base, 'aws:ec2/subnet:Subnet');
    expect(subnet.in).toMatchObject({ vpcId: `${vpc.name}-id`, availabilityZone: 'eu-west-1a', mapPublicIpOnLaunch: false });
    const gateway = one(base, 'aws:ec2/internetGateway:InternetGateway');
    expect(one(base, 'aws:ec2/routeTable:RouteTable').in.routes).toEqual([{ cidrBlock: '0.0.0.0/0', gatewayId: `${gateway.name}-id` }]);
    expect(one(base, 'aws:ec2/routeTableAssociation:RouteTableAssociation').in.subnetId).toBe(`${subnet.name}-id`);

    const group = one(base, 'aws:ec2/securityGroup:SecurityGroup');
    expect(group.in.vpcId).toBe(`${vpc.name}-id`);
    const rules = (r: Inputs) => r.map((x: Inputs) => [x.protocol, x.fromPort, x.toPort, x.cidrBlocks, x.ipv6CidrBlocks]);
    expect(rules(group.in.ingress).sort()).toEqual([
      ['tcp', 443, 443, ['0.0.0.0/0'], undefined],
      ['tcp', 80, 80, ['0.0.0.0/0'], undefined],
    ].sort());
    expect(rules(group.in.egress)).toEqual([['-1', 0, 0, ['0.0.0.0/0'], undefined]]);
    // EC2 refuses other characters (an apostrophe, say) in a security group's descriptions.
    for (const description of [group.in.description, ...[...group.in.ingress, ...group.in.egress].map((r: Inputs) => r.description)]) {
      expect(description).toMatch(/^[a-zA-Z0-9. _\-:/()#,@[\]+=&;{}!$*]{1,255}$/);
    }
    // The group sits on the host's network interface, which is the instance's only one.
    const nic = one(base, 'aws:ec2/networkInterface:NetworkInterface');
    expect(nic.in).toMatchObject({ subnetId: `${subnet.name}-id`, securityGroups: [`${group.name}-id`] });
    const instance = one(base, INSTANCE);
    expect(instance.in.primaryNetworkInterface).toEqual({ networkInterfaceId: 'eni-0123456789abcdef0' });
    expect(instance.in.vpcSecurityGroupIds).toBeUndefined();
    expect(instance.in.keyName).toBeUndefined();

    const withSsh = await plan('aws', { config: { 'scim-bridge:adminSourceRanges': ['203.0.113.0/24', '2001:db8::/48'] } });
    const ingress = one(withSsh, 'aws:ec2/securityGroup:SecurityGroup').in.ingress as Inputs[];
    expect(ingress.filter((r) => r.fromPort === 22)).toEqual([
      expect.objectContaining({ protocol: 'tcp', fromPort: 22, toPort: 22, cidrBlocks: ['203.0.113.0/24'], ipv6CidrBlocks: ['2001:db8::/48'] }),
    ]);
    for (const rule of ingress) {
      if (rule.cidrBlocks?.includes('0.0.0.0/0')) expect([80, 443]).toContain(rule.fromPort);
      expect(rule.fromPort).toBe(rule.toPort);
    }
  });

  test('the A record points at the Elastic IP, which sits on the instance\'s interface from before it boots; CAA allows Let\'s Encrypt', () => {
    const eip = one(base, 'aws:ec2/eip:Eip');
    expect(eip.in.domain).toBe('vpc');
    expect(one(base, 'aws:ec2/eipAssociation:EipAssociation').in).toEqual({ allocationId: 'eipalloc-0123456789abcdef0', networkInterfaceId: 'eni-0123456789abcdef0' });
    expect(one(base, INSTANCE).in.primaryNetworkInterface.networkInterfaceId).toBe('eni-0123456789abcdef0');
    const records = all(base, 'aws:route53/record:Record');
    // The stack file names the zone by its domain: the public hosted zone of that name, looked up.
    const a = records.find((r) => r.in.type === 'A')!;
    expect(a.in).toEqual({ zoneId: PLAN_ZONE_ID, name: 'scim.example.com', type: 'A', ttl: 300, records: ['203.0.113.30'] });
    const caa = records.find((r) => r.in.type === 'CAA')!;
    expect(caa.in).toMatchObject({ zoneId: PLAN_ZONE_ID, name: 'scim.example.com', records: ['0 issue "letsencrypt.org"'] });
    expect(base.plan.outputs.ipAddress).toBe('203.0.113.30');
  });

  test('a hosted zone given by its id is used as it is', async () => {
    const p = await plan('aws', { config: { 'scim-bridge:dnsZone': 'Z0123456789ABCDEFGHIJ' } });
    expect(all(p, 'aws:route53/record:Record').map((r) => [r.in.type, r.in.zoneId]).sort()).toEqual([
      ['A', 'Z0123456789ABCDEFGHIJ'],
      ['CAA', 'Z0123456789ABCDEFGHIJ'],
    ]);
  });

  test('the instance: Debian 12 found by lookup, IMDSv2 only, encrypted root volume, its own instance profile', () => {
    const instance = one(base, INSTANCE);
    expect(instance.in).toMatchObject({
      ami: PLAN_AMI_ID,
      instanceType: 't3.small',
      iamInstanceProfile: one(base, 'aws:iam/instanceProfile:InstanceProfile').name,
      metadataOptions: { httpEndpoint: 'enabled', httpTokens: 'required', httpPutResponseHopLimit: 1 },
      rootBlockDevice: { encrypted: true, volumeType: 'gp3', volumeSize: 16, deleteOnTermination: true },
      maintenanceOptions: { autoRecovery: 'default' },
    });
    // The host recipe's packages are Debian's (with image build, Debian's ECR credential helper too).
    expect(parse(userData(base)).packages).toEqual(['docker.io', 'apparmor', 'curl', 'jq', 'e2fsprogs', 'unattended-upgrades', 'amazon-ecr-credential-helper']);
  });

  test('a Xen instance type is refused before anything is declared (its volumes are no NVMe devices)', async () => {
    await expect(plan('aws', { config: { 'scim-bridge:size': 't2.small' } })).rejects.toThrow(/scim-bridge:size "t2.small" is a Xen instance type/);
    expect(architectureOf('t3.small')).toBe('x86_64');
    expect(architectureOf('m6i.large')).toBe('x86_64');
    expect(architectureOf('g5.xlarge')).toBe('x86_64');
    for (const graviton of ['t4g.small', 'm7g.large', 'c7gn.xlarge', 'm6gd.large', 'a1.medium']) expect(architectureOf(graviton)).toBe('arm64');
  });

  test('the data volume is its own encrypted resource, attached to the instance and kept when the instance or the stack goes', () => {
    const volume = one(base, 'aws:ebs/volume:Volume');
    expect(volume.in).toMatchObject({ availabilityZone: 'eu-west-1a', size: 10, type: 'gp3', encrypted: true });
    expect(volume.options.retainOnDelete).toBe(true);
    expect(volume.options.protect).toBe(true);
    expect(one(base, 'aws:ec2/volumeAttachment:VolumeAttachment').in).toEqual({
      instanceId: 'i-0123456789abcdef0',
      volumeId: PLAN_VOLUME_ID,
      deviceName: '/dev/sdf',
      stopInstanceBeforeDetaching: true,
    });
    expect(one(base, INSTANCE).in.ebsBlockDevices).toBeUndefined();
    // A Nitro instance shows the volume as an NVMe device whose serial is the volume id; the host formats it
    // only when blank.
    expect(nvmeDevicePath(PLAN_VOLUME_ID)).toBe('/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_vol0123456789abcdef0');
    expect(userData(base)).toContain('prepare-disk /dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_vol0123456789abcdef0 /srv/scim-bridge 10001');
  });

  test('the data volume is protected: a change that would replace it (zone, a smaller size, type) fails instead of making a blank one', async () => {
    // Pulumi refuses to delete a protected resource, and a replacement is a delete: the update stops with the
    // volume named, and nothing is created in its place. retainOnDelete alone would keep the old volume but
    // attach a blank one.
    expect(one(base, 'aws:ebs/volume:Volume').options).toMatchObject({ protect: true, retainOnDelete: true });
    const variants: Array<Record<string, string>> = [{ 'scim-bridge:availabilityZone': 'eu-west-1b' }, { 'scim-bridge:dataDiskSizeGb': '20' }];
    for (const config of variants) {
      const moved = await plan('aws', { config });
      expect(one(moved, 'aws:ebs/volume:Volume').options).toMatchObject({ protect: true, retainOnDelete: true });
    }
    // Adopting a kept volume: protected from the import on, and nothing of it ignored. An import whose inputs
    // differ from the volume is refused by Pulumi (naming the difference); once in the stack, protect guards it.
    const adopted = await plan('aws', { config: { 'scim-bridge:dataDiskImport': 'vol-0fedcba9876543210' } });
    const volume = one(adopted, 'aws:ebs/volume:Volume');
    expect(volume.options).toEqual({ import: 'vol-0fedcba9876543210', protect: true, retainOnDelete: true });
    expect(volume.in).toEqual(one(base, 'aws:ebs/volume:Volume').in);
    // The instance and the attachment are not protected: they are replaced as often as the bridge is updated.
    expect(one(base, INSTANCE).options.protect).toBeUndefined();
    expect(one(base, 'aws:ec2/volumeAttachment:VolumeAttachment').options.protect).toBeUndefined();
  });

  test('the data volume is snapshotted daily (14 kept) by a lifecycle policy that targets it alone', () => {
    const volume = one(base, 'aws:ebs/volume:Volume');
    const policy = one(base, 'aws:dlm/lifecyclePolicy:LifecyclePolicy');
    expect(policy.in.state).toBe('ENABLED');
    expect(policy.in.policyDetails).toMatchObject({
      resourceTypes: ['VOLUME'],
      targetTags: { 'scim-bridge-data': 'scim.example.com' },
      schedules: [{ createRule: { interval: 24, intervalUnit: 'HOURS', times: '03:00' }, retainRule: { count: 14 }, copyTags: true }],
    });
    expect(volume.in.tags).toMatchObject(policy.in.policyDetails.targetTags);
    // DLM accepts letters, digits, spaces, - and _ in these two.
    expect(policy.in.description).toMatch(/^[0-9A-Za-z _-]+$/);
    expect(policy.in.policyDetails.schedules[0].name).toMatch(/^[0-9A-Za-z _-]+$/);
    const role = one(base, 'aws:iam/role:Role', 'scim-bridge-snapshots');
    expect(policy.in.executionRoleArn).toBe('arn:aws:iam::123456789012:role/scim-bridge-snapshots');
    expect(JSON.parse(role.in.assumeRolePolicy).Statement).toEqual([{ Effect: 'Allow', Principal: { Service: 'dlm.amazonaws.com' }, Action: 'sts:AssumeRole' }]);
    expect(one(base, 'aws:iam/rolePolicyAttachment:RolePolicyAttachment', 'scim-bridge-snapshots').in).toEqual({
      role: 'scim-bridge-snapshots',
      policyArn: 'arn:aws:iam::aws:policy/service-role/AWSDataLifecycleManagerServiceRole',
    });
  });

  test('a new image replaces the instance (old one first) and leaves the volume, address and records untouched', async () => {
    const next = await plan('aws', { config: { 'scim-bridge:image': 'ghcr.io/scim-bridge/scim-bridge:0.2.0' } });
    const before = one(base, INSTANCE);
    const after = one(next, INSTANCE);
    expect(userData(next)).toContain('ghcr.io/scim-bridge/scim-bridge:0.2.0');
    expect(userData(next)).not.toContain('scim-bridge:0.1.0');
    expect(after.in.userData).not.toBe(before.in.userData);
    // A change of user-data replaces the instance (the provider's userDataReplaceOnChange), deleting the old one
    // first because the volume and the network interface attach to one instance at a time.
    expect(after.in.userDataReplaceOnChange).toBe(true);
    expect(after.options).toMatchObject({ deleteBeforeReplace: true, ignoreChanges: ['ami'] });
    for (const type of [
      'aws:ebs/volume:Volume',
      'aws:ec2/eip:Eip',
      'aws:ec2/eipAssociation:EipAssociation',
      'aws:ec2/networkInterface:NetworkInterface',
      'aws:route53/record:Record',
      'aws:secretsmanager/secret:Secret',
      'aws:cloudwatch/logGroup:LogGroup',
    ]) {
      expect(all(next, type).map((r) => r.in)).toEqual(all(base, type).map((r) => r.in));
    }
  });

  test('least privilege: the host\'s role writes its own log group and metrics, reads the accepted token hashes and pulls its image, nothing else without a webhook', () => {
    const role = one(base, 'aws:iam/role:Role', 'scim-bridge-host');
    expect(JSON.parse(role.in.assumeRolePolicy).Statement).toEqual([{ Effect: 'Allow', Principal: { Service: 'ec2.amazonaws.com' }, Action: 'sts:AssumeRole' }]);
    expect(one(base, 'aws:iam/instanceProfile:InstanceProfile').in.role).toBe(role.name);
    expect(one(base, 'aws:iam/rolePolicy:RolePolicy', 'scim-bridge-host').in.role).toBe(role.name);
    expect(statements(base)).toEqual([
      { Sid: 'ContainerLogs', Effect: 'Allow', Action: ['logs:CreateLogStream', 'logs:PutLogEvents'], Resource: `${LOG_GROUP_ARN}:*` },
      { Sid: 'TokenHashes', Effect: 'Allow', Action: 'secretsmanager:GetSecretValue', Resource: TOKEN_HASHES_ARN },
      HOST_METRICS_STATEMENT,
      ...IMAGE_PULL(),
    ]);
    // No policy is attached to the host's role: only the snapshot role has a managed one.
    expect(all(base, 'aws:iam/rolePolicyAttachment:RolePolicyAttachment').map((a) => a.in.role)).toEqual(['scim-bridge-snapshots', 'scim-bridge-certificate-check']);
    expect(JSON.stringify(all(base, 'aws:iam/rolePolicyAttachment:RolePolicyAttachment').map((a) => a.in.role))).not.toContain('scim-bridge-host');
  });

  test('with a webhook, the role may also read the webhook secret, and never the token\'s', () => {
    expect(statements(withWebhook)).toEqual([
      { Sid: 'ContainerLogs', Effect: 'Allow', Action: ['logs:CreateLogStream', 'logs:PutLogEvents'], Resource: `${LOG_GROUP_ARN}:*` },
      { Sid: 'TokenHashes', Effect: 'Allow', Action: 'secretsmanager:GetSecretValue', Resource: TOKEN_HASHES_ARN },
      { Sid: 'WebhookSecret', Effect: 'Allow', Action: 'secretsmanager:GetSecretValue', Resource: WEBHOOK_ARN },
      HOST_METRICS_STATEMENT,
      ...IMAGE_PULL(),
    ]);
    const policies = all(withWebhook, 'aws:iam/rolePolicy:RolePolicy').map((p) => p.in.policy).join('\n');
    // The token's own secret never (only its hashes'): no ARN of the token's secret, nor any other token secret.
    expect(policies).not.toContain(`${TOKEN_ARN}"`);
    expect(policies.replaceAll(TOKEN_HASHES_ARN, '')).not.toContain('scim-bridge-token');
  });

  test('container logs go to the stack\'s CloudWatch log group through Docker\'s awslogs driver', () => {
    const group = one(base, 'aws:cloudwatch/logGroup:LogGroup');
    expect(group.in).toMatchObject({ name: '/scim-bridge/scim.example.com', retentionInDays: 30 });
    expect(JSON.parse(hostFile(base, '/etc/docker/daemon.json'))).toEqual({
      'log-driver': 'awslogs',
      'log-opts': {
        'awslogs-region': 'eu-west-1',
        'awslogs-group': '/scim-bridge/scim.example.com',
        'awslogs-create-group': 'false',
        tag: '{{.Name}}',
        // A slow CloudWatch or a role not yet usable never stops the bridge from starting or writing: its lines
        // wait in a 4 MB buffer, and the log stream is created when the first one goes out.
        mode: 'non-blocking',
        'max-buffer-size': '4m',
      },
    });
  });

  test('the us-east-1 provider carries every aws: setting of the stack but the region (an explicit provider reads none itself); secrets stay secret', async () => {
    const settings = {
      'aws:profile': 'ops',
      'aws:accessKey': 'AKIAIOSFODNN7EXAMPLE',
      'aws:secretKey': { secure: 'v1:c2VjcmV0' },
      'aws:token': { secure: 'v1:dG9rZW4=' },
      'aws:assumeRoles': [{ roleArn: 'arn:aws:iam::123456789012:role/deployer', sessionName: 'scim-bridge', externalId: 'ext-0123' }],
      'aws:sharedCredentialsFiles': ['/home/ops/.aws/credentials'],
      'aws:sharedConfigFiles': ['/home/ops/.aws/config'],
      'aws:endpoints': [{ sts: 'https://sts.internal.example' }],
      'aws:defaultTags': { tags: { team: 'identity' } },
      'aws:allowedAccountIds': ['123456789012'],
      'aws:skipMetadataApiCheck': true,
      'aws:maxRetries': 7,
      'aws:stsRegion': 'eu-west-1',
      'aws:retryMode': 'adaptive',
    };
    const p = await plan('aws', { config: settings });
    expect(p.leaks).toEqual([]);
    const provider = one(p, 'pulumi:providers:aws');
    expect(provider.in.region).toBe('us-east-1');
    // Every setting reaches the provider: none is dropped.
    for (const key of Object.keys(settings)) expect([key, provider.in[key.slice('aws:'.length)]]).toEqual([key, expect.anything()]);
    expect(provider.in).toMatchObject({ profile: 'ops', accessKey: 'AKIAIOSFODNN7EXAMPLE', stsRegion: 'eu-west-1', retryMode: 'adaptive' });
    // The provider's JSON-valued arguments, in its own shapes (the SDK sends them as JSON).
    expect(JSON.parse(provider.in.assumeRoles)).toEqual(settings['aws:assumeRoles']);
    expect(JSON.parse(provider.in.sharedCredentialsFiles)).toEqual(['/home/ops/.aws/credentials']);
    expect(JSON.parse(provider.in.sharedConfigFiles)).toEqual(['/home/ops/.aws/config']);
    expect(JSON.parse(provider.in.endpoints)).toEqual([{ sts: 'https://sts.internal.example' }]);
    expect(JSON.parse(provider.in.defaultTags)).toEqual({ tags: { team: 'identity' } });
    expect(JSON.parse(provider.in.allowedAccountIds)).toEqual(['123456789012']);
    expect(JSON.parse(provider.in.skipMetadataApiCheck)).toBe(true);
    expect(JSON.parse(provider.in.maxRetries)).toBe(7);
    // Keys and the session token are secrets in the provider's inputs (masked in the printed plan).
    for (const key of ['accessKey', 'secretKey', 'token']) {
      expect(provider.inputs[key]).toEqual({ [SECRET_SIG_KEY]: expect.any(String), value: expect.any(String) });
      expect(p.plan.resources.find((r) => r.type === 'pulumi:providers:aws')!.inputs[key]).toBe('[secret]');
    }
    expect(provider.in.secretKey).toBe(inventedSecret('secretKey'));
    expect(provider.in.token).toBe(inventedSecret('token'));
    // The leak check lets the provider hold the stack's own aws: secrets, each in its own input only.
    expect(AWS_SECRET_SINKS).toEqual(expect.arrayContaining([{ input: 'pulumi:providers:aws.secretKey', only: ['secretKey'] }]));
    expect(AWS_SECRET_SINKS.find((k) => k.input === 'pulumi:providers:aws.region')).toBeUndefined();
    // And nothing else changes with them.
    const others = (r: PlanResult) => r.raw.filter((x) => x.type !== 'pulumi:providers:aws').map((x) => `${x.type} ${x.name} ${JSON.stringify(x.inputs)}`).sort();
    expect(others(p)).toEqual(others(base));
  });

  test('an aws: setting the provider does not know, or one that is not in its form, stops the plan (without quoting the value)', async () => {
    await expect(plan('aws', { config: { 'aws:profle': 'ops' } })).rejects.toThrow(/^aws:profle is not a setting of the AWS provider, so the program cannot pass it on to the health check's provider: remove it \(pulumi config rm aws:profle\) or correct its name$/);
    const bad = await plan('aws', { config: { 'aws:assumeRoles': 'arn:aws:iam::123456789012:role/not-json-hunter2' } }).catch((e: Error) => e.message);
    expect(bad).toMatch(/^aws:assumeRoles does not have the form the AWS provider takes/);
    expect(bad).not.toContain('hunter2');
  });

  test('the certificate within 14 days of expiry alarms: a scheduled check publishes the days left (Route 53 cannot see them)', () => {
    const fn = one(base, 'aws:lambda/function:Function', 'scim-bridge-certificate-check');
    expect(fn.in).toMatchObject({ runtime: 'nodejs20.x', handler: 'index.handler', timeout: 30, environment: { variables: { DOMAIN: 'scim.example.com', NAMESPACE: 'scim-bridge' } } });
    expect(fn.inputs.code).toMatchObject({ __pulumiArchive: true });
    // Its code: Node's tls module reads the served certificate; the days left go to CloudWatch.
    expect(certificateCheckSource()).toContain("tls.connect({ host, port: 443, servername: host, timeout: 10000 }");
    expect(certificateCheckSource()).toContain("MetricName: 'CertificateDaysLeft'");
    const rule = one(base, 'aws:cloudwatch/eventRule:EventRule', 'scim-bridge-certificate-check');
    expect(rule.in.scheduleExpression).toBe('rate(6 hours)');
    expect(one(base, 'aws:cloudwatch/eventTarget:EventTarget').in).toMatchObject({ rule: rule.in.name ?? expect.any(String) });
    expect(one(base, 'aws:lambda/permission:Permission').in).toMatchObject({ action: 'lambda:InvokeFunction', principal: 'events.amazonaws.com' });
    // The function may put its own namespace's metrics, nothing else.
    const statement = JSON.parse(one(base, 'aws:iam/rolePolicy:RolePolicy', 'scim-bridge-certificate-check').in.policy).Statement;
    expect(statement).toEqual([{ Sid: 'Metric', Effect: 'Allow', Action: 'cloudwatch:PutMetricData', Resource: '*', Condition: { StringEquals: { 'cloudwatch:namespace': 'scim-bridge' } } }]);
    const alarm = one(base, 'aws:cloudwatch/metricAlarm:MetricAlarm', 'scim-bridge-certificate').in;
    expect(alarm).toMatchObject({ namespace: 'scim-bridge', metricName: 'CertificateDaysLeft', dimensions: { Domain: 'scim.example.com' }, threshold: 14, comparisonOperator: 'LessThanThreshold', treatMissingData: 'breaching' });
    // In the stack's region, emailing through a topic there (an alarm's action must be in its region).
    const topic = one(base, 'aws:sns/topic:Topic', 'scim-bridge-alerts-local');
    expect(alarm.alarmActions).toEqual([`arn:aws:sns:eu-west-1:123456789012:${topic.name}`]);
    expect(one(base, 'aws:sns/topicSubscription:TopicSubscription', 'scim-bridge-alerts-local-email').in).toMatchObject({ protocol: 'email', endpoint: 'ops@example.com' });
  });

  test('webhook dead letters alarm: a metric filter on the bridge\'s dead-letter log line in the log group', () => {
    const filter = one(base, 'aws:cloudwatch/logMetricFilter:LogMetricFilter', 'scim-bridge-dead-letters').in;
    expect(filter).toMatchObject({ logGroupName: '/scim-bridge/scim.example.com', pattern: '{ $.msg = "webhook delivery: dead letter" }', metricTransformation: { name: 'DeadLetters', namespace: 'scim-bridge', value: '1' } });
    const alarm = one(base, 'aws:cloudwatch/metricAlarm:MetricAlarm', 'scim-bridge-dead-letters').in;
    expect(alarm).toMatchObject({ namespace: 'scim-bridge', metricName: 'DeadLetters', statistic: 'Sum', threshold: 0, comparisonOperator: 'GreaterThanThreshold' });
    expect(alarm.alarmActions).toEqual([expect.stringMatching(/^arn:aws:sns:eu-west-1:/)]);
  });

  test('a data disk above 85% and memory above 90% for five minutes alarm, from the figures the host publishes, to the stack\'s topic', () => {
    const topic = 'arn:aws:sns:eu-west-1:123456789012:scim-bridge-alerts-local';
    for (const [name, metric, threshold] of [['scim-bridge-disk', 'disk_used_percent', 85], ['scim-bridge-memory', 'mem_used_percent', 90]] as const) {
      expect(one(base, 'aws:cloudwatch/metricAlarm:MetricAlarm', name).in).toMatchObject({
        namespace: 'scim-bridge',
        metricName: metric,
        dimensions: { Domain: 'scim.example.com' },
        statistic: 'Minimum',
        period: 60,
        evaluationPeriods: 5,
        threshold,
        comparisonOperator: 'GreaterThanThreshold',
        alarmActions: [topic],
        okActions: [topic],
      });
    }
    // The names the host's script publishes (put-host-metrics) are the ones the alarms watch.
    const functions = hostFile(base, AWS_FUNCTIONS);
    expect(functions).toContain('Namespace=scim-bridge');
    expect(functions).toContain('Dimensions.member.1.Value=scim.example.com');
    expect(hostFile(base, HOST_METRICS)).toMatch(/mem_used_percent=.*disk_used_percent=/s);
  });

  test('a Route 53 health check probes https://<domain>/healthz; its alarm in us-east-1 emails through SNS', () => {
    const check = one(base, 'aws:route53/healthCheck:HealthCheck');
    expect(check.in).toMatchObject({ type: 'HTTPS', fqdn: 'scim.example.com', port: 443, resourcePath: '/healthz', enableSni: true, requestInterval: 30, failureThreshold: 3 });
    const provider = one(base, 'pulumi:providers:aws');
    expect(provider.in.region).toBe('us-east-1');
    const topic = one(base, 'aws:sns/topic:Topic', 'scim-bridge-alerts');
    const topicArn = `arn:aws:sns:us-east-1:123456789012:${topic.name}`;
    expect(one(base, 'aws:sns/topicSubscription:TopicSubscription', 'scim-bridge-alerts-email').in).toEqual({ topic: topicArn, protocol: 'email', endpoint: 'ops@example.com' });
    const down = one(base, 'aws:cloudwatch/metricAlarm:MetricAlarm', 'scim-bridge-down');
    expect(down.in).toMatchObject({
      namespace: 'AWS/Route53',
      metricName: 'HealthCheckStatus',
      dimensions: { HealthCheckId: '0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d' },
      statistic: 'Minimum',
      period: 60,
      threshold: 1,
      comparisonOperator: 'LessThanThreshold',
      treatMissingData: 'breaching',
      alarmActions: [topicArn],
      okActions: [topicArn],
    });
  });

  test('EC2 recovers the instance when its system status check fails', () => {
    const recover = one(base, 'aws:cloudwatch/metricAlarm:MetricAlarm', 'scim-bridge-recover');
    expect(recover.in).toMatchObject({
      namespace: 'AWS/EC2',
      metricName: 'StatusCheckFailed_System',
      dimensions: { InstanceId: 'i-0123456789abcdef0' },
      statistic: 'Maximum',
      period: 60,
      evaluationPeriods: 2,
      threshold: 1,
      comparisonOperator: 'GreaterThanOrEqualToThreshold',
      alarmActions: ['arn:aws:automate:eu-west-1:ec2:recover'],
    });
  });

  test('outputs: baseUrl is https://<domain> without a trailing slash; tokenReference says where the token is', () => {
    expect(Object.keys(base.plan.outputs).sort()).toEqual(['appTokenReference', 'baseUrl', 'ipAddress', 'target', 'tokenReference']);
    expect(base.plan.outputs.baseUrl).toBe('https://scim.example.com');
    expect(base.plan.outputs.target).toBe('aws');
    expect(base.plan.outputs.tokenReference).toBe(
      `Secrets Manager secret ${TOKEN_ARN}; print it with: aws secretsmanager get-secret-value --secret-id ${TOKEN_ARN} --query SecretString --output text --region eu-west-1`,
    );
    const appArn = TOKEN_ARN.replace('scim-bridge-token', 'scim-bridge-app-token');
    expect(base.plan.outputs.appTokenReference).toBe(
      `Secrets Manager secret ${appArn}; print it with: aws secretsmanager get-secret-value --secret-id ${appArn} --query SecretString --output text --region eu-west-1`,
    );
  });

  test('the application API\'s token: generated, in its own secret (which the instance cannot read), its SHA-256 on the host', () => {
    const appToken = inventedSecret('scim-bridge-app-token');
    const holders = base.raw.filter((r) => JSON.stringify(r.inputs).includes(appToken)).map((r) => `${r.type} ${r.name}`);
    expect(holders).toEqual(['aws:secretsmanager/secretVersion:SecretVersion scim-bridge-app-token']);
    expect(hostFile(base, '/etc/scim-bridge/bridge.env')).toContain(`SCIM_BRIDGE_APP_TOKEN_SHA256=${sha256(appToken)}\n`);
    const appArn = TOKEN_ARN.replace('scim-bridge-token', 'scim-bridge-app-token');
    expect(JSON.stringify(all(base, 'aws:iam/rolePolicy:RolePolicy').map((p) => p.in))).not.toContain(appArn);
  });

  test('a generated token is only in the secret store\'s version; the instance gets its SHA-256', () => {
    const token = inventedSecret('scim-bridge-token');
    const holders = base.raw.filter((r) => JSON.stringify(r.inputs).includes(token)).map((r) => `${r.type} ${r.name}`);
    expect(holders).toEqual(['aws:secretsmanager/secretVersion:SecretVersion scim-bridge-token']);
    const version = one(base, 'aws:secretsmanager/secretVersion:SecretVersion', 'scim-bridge-token');
    expect(version.inputs.secretString).toEqual({ [SECRET_SIG_KEY]: expect.any(String), value: token });
    expect(version.in.secretId).toBe(TOKEN_ARN);
    expect(one(base, 'aws:secretsmanager/secret:Secret', 'scim-bridge-token').in.recoveryWindowInDays).toBe(7);
    // Its hash in a secret of its own, which the instance reads every minute by its ARN; not in the user-data.
    expect(one(base, 'aws:secretsmanager/secretVersion:SecretVersion', 'scim-bridge-token-sha256').in).toEqual({ secretId: TOKEN_HASHES_ARN, secretString: sha256(token) });
    expect(hostFile(base, '/etc/scim-bridge/bridge.env')).toContain('SCIM_BRIDGE_TOKEN_SHA256_FILE=/run/secrets/token-sha256\n');
    expect(hostFile(base, '/usr/local/lib/scim-bridge/fetch-secrets')).toContain(`value_0=$(aws_secret ${TOKEN_HASHES_ARN})`);
    expect(userData(base)).not.toContain(sha256(token));
    expect(one(base, 'random:index/randomPassword:RandomPassword', 'scim-bridge-token').in).toMatchObject({ length: 48, special: false });
    const printed = base.plan.resources.find((r) => r.type === 'aws:secretsmanager/secretVersion:SecretVersion')!;
    expect(printed.inputs.secretString).toBe('[secret]');
  });

  test('a configured token (pulumi config set --secret token) is used instead of a generated one', async () => {
    const p = await plan('aws', { config: { 'scim-bridge:token': { secure: 'v1:abc' } } });
    // Only the application API's token is generated then.
    expect(all(p, 'random:index/randomPassword:RandomPassword').map((r) => r.name)).toEqual(['scim-bridge-app-token']);
    const token = inventedSecret('token');
    expect(one(p, 'aws:secretsmanager/secretVersion:SecretVersion', 'scim-bridge-token').in.secretString).toBe(token);
    expect(one(p, 'aws:secretsmanager/secretVersion:SecretVersion', 'scim-bridge-token-sha256').in.secretString).toBe(sha256(token));
    expect(p.leaks).toEqual([]);
  });

  test('a webhook: its secret only in its Secrets Manager version, read by the instance at start by its ARN', () => {
    expect(withWebhook.leaks).toEqual([]);
    const secret = inventedSecret('webhookSecret');
    const holders = withWebhook.raw.filter((r) => JSON.stringify(r.inputs).includes(secret)).map((r) => `${r.type} ${r.name}`);
    expect(holders).toEqual(['aws:secretsmanager/secretVersion:SecretVersion scim-bridge-webhook-secret']);
    expect(one(withWebhook, 'aws:secretsmanager/secretVersion:SecretVersion', 'scim-bridge-webhook-secret').in).toEqual({ secretId: WEBHOOK_ARN, secretString: secret });
    const ud = userData(withWebhook);
    expect(ud).not.toContain(secret);
    expect(ud).toContain('SCIM_BRIDGE_WEBHOOK_URL=https://app.example.com/hooks/scim');
    const fetch = hostFile(withWebhook, '/usr/local/lib/scim-bridge/fetch-secrets');
    // The functions that call AWS are one file on the host, which fetch-secrets (and put-host-metrics) source.
    expect(fetch).toContain(`. "\${HOST_AWS_FUNCTIONS:-${AWS_FUNCTIONS}}"`);
    const functions = hostFile(withWebhook, AWS_FUNCTIONS);
    expect(functions).toContain('aws_secret() {');
    expect(fetch).toContain(`value_1=$(aws_secret ${WEBHOOK_ARN})\ncheck SCIM_BRIDGE_WEBHOOK_SECRET "$value_1"`);
    expect(fetch).toContain('put webhook-secret "$value_1"');
    // curl (with its own SigV4 signing) and jq read the secret: no AWS CLI, nor any other package, is installed for it.
    expect(parse(ud).packages).toEqual(parse(userData(base)).packages);
    expect(parse(ud).packages).toEqual(expect.arrayContaining(['curl', 'jq']));
    expect(parse(ud).packages).not.toContain('awscli');
    expect(`${fetch}${functions}`).not.toMatch(/\baws secretsmanager\b/);
    // Real endpoints unless overridden: IMDSv2 at its link-local address, Secrets Manager in the stack's region.
    expect(functions).toContain('imds=${AWS_EC2_METADATA_SERVICE_ENDPOINT:-http://169.254.169.254}');
    expect(functions).toContain('endpoint=${SECRETS_MANAGER_ENDPOINT:-https://secretsmanager.eu-west-1.amazonaws.com}');
    expect(functions).toContain('--aws-sigv4 "aws:amz:eu-west-1:secretsmanager"');
    expect(Buffer.byteLength(ud)).toBeLessThan(16 * 1024);
  });

  test('a metrics token: its SHA-256 in a Secrets Manager secret of its own that the host reads every minute; a new one replaces no instance', async () => {
    const withMetrics = await plan('aws', { config: { 'scim-bridge:metricsToken': { secure: 'v1:m' } } });
    expect(withMetrics.leaks).toEqual([]);
    const token = inventedSecret('metricsToken');
    const version = one(withMetrics, 'aws:secretsmanager/secretVersion:SecretVersion', 'scim-bridge-metrics-token-sha256').in;
    expect(version.secretString).toBe(sha256(token));
    const arn = version.secretId;
    expect(JSON.stringify(withMetrics.raw)).not.toContain(`"${token}"`);
    // The host may read it, and the bridge gets it as a file kept up to date (SCIM_BRIDGE_METRICS_TOKEN_SHA256_FILE).
    expect(statements(withMetrics)).toContainEqual({ Sid: 'MetricsTokenHash', Effect: 'Allow', Action: 'secretsmanager:GetSecretValue', Resource: arn });
    expect(hostFile(withMetrics, '/usr/local/lib/scim-bridge/fetch-secrets')).toContain(`value_1=$(aws_secret ${arn})\ncheck SCIM_BRIDGE_METRICS_TOKEN_SHA256 "$value_1"`);
    expect(hostFile(withMetrics, '/etc/scim-bridge/bridge.env')).toContain('SCIM_BRIDGE_METRICS_TOKEN_SHA256_FILE=/run/secrets/metrics-token-sha256\n');
    // Another token changes only the secret's version: the user-data (so the instance) holds its ARN, nothing of
    // the token or its hash.
    expect(userData(withMetrics)).not.toContain(sha256(token));
    expect(userData(withMetrics)).not.toContain(token);
    // Without one, nothing of it: no secret, no permission, no file.
    expect(all(base, 'aws:secretsmanager/secret:Secret').map((x) => x.name)).not.toContain('scim-bridge-metrics-token-sha256');
    expect(userData(base)).not.toContain('METRICS_TOKEN');
  });

  test('ACME: Let\'s Encrypt staging keeps the CAA record; a private directory drops it and ships its root', async () => {
    const staging = await plan('aws', { config: { 'scim-bridge:acmeCa': 'staging' } });
    expect(userData(staging)).toContain(`acme_ca ${LETS_ENCRYPT.staging}`);
    expect(all(staging, 'aws:route53/record:Record').map((r) => r.in.type).sort()).toEqual(['A', 'CAA']);
    const pem = '-----BEGIN CERTIFICATE-----\nMIIBprivate\n-----END CERTIFICATE-----';
    const custom = await plan('aws', { config: { 'scim-bridge:acmeCa': 'https://ca.internal.example/acme/directory', 'scim-bridge:acmeCaRoot': pem } });
    expect(all(custom, 'aws:route53/record:Record').map((r) => r.in.type)).toEqual(['A']);
    expect(userData(custom)).toContain('acme_ca_root /etc/caddy/acme-ca-root.pem');
    expect(userData(custom)).toContain('MIIBprivate');
  });

  test('a bad stack configuration stops the plan before any resource, with every problem named', async () => {
    await expect(plan('aws', { config: { 'scim-bridge:dnsZone': 'example.org', 'aws:region': null } })).rejects.toThrow(
      /scim-bridge:dnsZone "example\.org" does not contain the domain scim\.example\.com[^\n]*\naws:region is not set/,
    );
  });
});

/**
 * AWS GovCloud (US) and the China regions are partitions of their own (aws-us-gov, aws-cn): other ARNs, another
 * DNS suffix in China, and Route 53's health-check metrics in another region (us-gov-west-1, cn-northwest-1).
 */
describe.each([
  // stack region, its partition, where Route 53 health-check metrics are, the partition's DNS suffix
  ['us-gov-west-1', 'aws-us-gov', 'us-gov-west-1', 'amazonaws.com'],
  ['us-gov-east-1', 'aws-us-gov', 'us-gov-west-1', 'amazonaws.com'],
  ['cn-north-1', 'aws-cn', 'cn-northwest-1', 'amazonaws.com.cn'],
  ['cn-northwest-1', 'aws-cn', 'cn-northwest-1', 'amazonaws.com.cn'],
])('a stack in %s (partition %s)', (region, partition, healthRegion, dnsSuffix) => {
  let p: PlanResult;
  beforeAll(async () => {
    p = await plan('aws', { config: { ...WEBHOOK, 'aws:region': region, 'scim-bridge:availabilityZone': `${region}a` } });
  });

  test('no ARN of the aws partition anywhere, and no partition left unknown', () => {
    expect(p.leaks).toEqual([]);
    const everything = JSON.stringify([p.raw, p.rawOutputs]);
    expect(everything).not.toMatch(/arn:aws:/);
    expect(everything).not.toMatch(/arn:undefined|undefined:/);
    expect(everything).toContain(`arn:${partition}:`);
  });

  test('EC2 recovery, the managed snapshot policy and the role trusts take the partition', () => {
    expect(one(p, 'aws:cloudwatch/metricAlarm:MetricAlarm', 'scim-bridge-recover').in.alarmActions).toEqual([`arn:${partition}:automate:${region}:ec2:recover`]);
    expect(one(p, 'aws:iam/rolePolicyAttachment:RolePolicyAttachment', 'scim-bridge-snapshots').in.policyArn).toBe(`arn:${partition}:iam::aws:policy/service-role/AWSDataLifecycleManagerServiceRole`);
    const host = one(p, 'aws:iam/role:Role', 'scim-bridge-host');
    // EC2's service principal in the China regions ends in .amazonaws.com.cn.
    expect(JSON.parse(host.in.assumeRolePolicy).Statement[0].Principal).toEqual({ Service: `ec2.${dnsSuffix}` });
    const webhookArn = `arn:${partition}:secretsmanager:${region}:123456789012:secret:scim-bridge-webhook-secret-AbCdEf`;
    const hashesArn = `arn:${partition}:secretsmanager:${region}:123456789012:secret:scim-bridge-token-sha256-AbCdEf`;
    expect(statements(p).map((x) => x.Resource)).toEqual([
      `arn:${partition}:logs:${region}:123456789012:log-group:/scim-bridge/scim.example.com:*`,
      hashesArn,
      webhookArn,
      '*',
      ...IMAGE_PULL(partition, region).map((x) => x.Resource),
    ]);
    expect(p.plan.outputs.tokenReference).toContain(`arn:${partition}:secretsmanager:${region}:`);
  });

  test(`the health check's alarm and its topic are in ${healthRegion}, where Route 53 publishes its metrics there`, () => {
    const provider = one(p, 'pulumi:providers:aws');
    expect(provider.name).toBe(`scim-bridge-${healthRegion}`);
    expect(provider.in.region).toBe(healthRegion);
    const topicArn = `arn:${partition}:sns:${healthRegion}:123456789012:scim-bridge-alerts`;
    expect(one(p, 'aws:cloudwatch/metricAlarm:MetricAlarm', 'scim-bridge-down').in).toMatchObject({ namespace: 'AWS/Route53', alarmActions: [topicArn], okActions: [topicArn] });
    expect(one(p, 'aws:sns/topicSubscription:TopicSubscription', 'scim-bridge-alerts-email').in.topic).toBe(topicArn);
    for (const name of ['scim-bridge-down', 'scim-bridge-alerts', 'scim-bridge-alerts-email']) {
      expect(p.raw.find((r) => r.name === name)?.options.provider).toBe(`scim-bridge-${healthRegion}`);
    }
  });

  test('the host reads its secret from the partition\'s Secrets Manager endpoint, puts its metrics to its CloudWatch, and logs to the stack\'s region', () => {
    const functions = hostFile(p, AWS_FUNCTIONS);
    expect(functions).toContain(`endpoint=\${SECRETS_MANAGER_ENDPOINT:-https://secretsmanager.${region}.${dnsSuffix}}`);
    expect(functions).toContain(`--aws-sigv4 "aws:amz:${region}:secretsmanager"`);
    expect(functions).toContain(`endpoint=\${CLOUDWATCH_ENDPOINT:-https://monitoring.${region}.${dnsSuffix}}`);
    expect(functions).toContain(`--aws-sigv4 "aws:amz:${region}:monitoring"`);
    expect(JSON.parse(hostFile(p, '/etc/docker/daemon.json'))['log-opts']['awslogs-region']).toBe(region);
  });
});

test('partitions by region name, and where their Route 53 health-check metrics are; a region with none is refused', () => {
  expect(['us-east-1', 'eu-west-1', 'ap-southeast-4', 'il-central-1', 'mx-central-1'].map(partitionOf)).toEqual(['aws', 'aws', 'aws', 'aws', 'aws']);
  expect(['us-gov-west-1', 'us-gov-east-1', 'cn-north-1', 'cn-northwest-1', 'us-iso-east-1', 'us-isob-east-1'].map(partitionOf)).toEqual([
    'aws-us-gov', 'aws-us-gov', 'aws-cn', 'aws-cn', 'aws-iso', 'aws-iso-b',
  ]);
  expect(['eu-west-1', 'us-gov-east-1', 'cn-north-1'].map(healthCheckRegionOf)).toEqual(['us-east-1', 'us-gov-west-1', 'cn-northwest-1']);
  expect(() => healthCheckRegionOf('us-iso-east-1')).toThrow(
    /^aws:region "us-iso-east-1" is in the aws-iso partition, where it cannot place the alarm on Route 53's health check: deploy in a region of the aws, aws-us-gov or aws-cn partition/,
  );
  expect(() => healthCheckRegionOf('mars-north-1')).toThrow(/^aws:region "mars-north-1" is in no AWS partition this program knows/);
});

describe('the host\'s scripts on AWS', () => {
  const dirs: string[] = [];
  afterAll(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

  test('cloud-init\'s schema accepts the user-data, and shellcheck the fetch-secrets, aws-functions and put-host-metrics scripts', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aws-host-'));
    dirs.push(dir);
    const file = path.join(dir, 'user-data.yaml');
    fs.writeFileSync(file, userData(withWebhook));
    const schema = spawnSync('cloud-init', ['schema', '--config-file', file], { encoding: 'utf8' });
    expect(`${schema.status} ${schema.stdout}${schema.stderr}`).toMatch(/^0 /);
    for (const script of ['/usr/local/lib/scim-bridge/fetch-secrets', AWS_FUNCTIONS, HOST_METRICS]) {
      const check = spawnSync('shellcheck', ['-s', 'bash', '-S', 'style', '-'], { encoding: 'utf8', input: hostFile(withWebhook, script) });
      expect(`${script} ${check.status} ${check.stdout}`).toBe(`${script} 0 `);
    }
  });

  test('the host publishes its disk and memory use every minute (a timer), from its first boot', () => {
    const doc = parse(userData(base)) as { write_files: Array<{ path: string; permissions: string }>; runcmd: string[][] };
    expect(doc.write_files.find((f) => f.path === HOST_METRICS)?.permissions).toBe('0755');
    const timer = hostFile(base, '/etc/systemd/system/scim-bridge-host-metrics.timer');
    expect(timer).toContain('OnUnitActiveSec=1min');
    expect(timer).toContain('WantedBy=timers.target');
    const service = hostFile(base, '/etc/systemd/system/scim-bridge-host-metrics.service');
    expect(service).toContain(`ExecStart=${HOST_METRICS} /srv/scim-bridge`);
    expect(service).toContain('Type=oneshot');
    // The bridge's units never wait for it: the timer is enabled and started on its own, without blocking.
    expect(doc.runcmd).toContainEqual(['systemctl', 'enable', '--now', '--no-block', 'scim-bridge-host-metrics.timer']);
    expect(hostFile(base, '/etc/systemd/system/scim-bridge.service')).not.toContain('host-metrics');
  });
});

// ---------------------------------------------------------------------------------------------------------
// SigV4 as AWS checks it (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv-create-signed-request.html),
// written here with node:crypto, independently of curl's implementation.

const sha256Hex = (data: string | Buffer) => createHash('sha256').update(data).digest('hex');
const hmac = (key: string | Buffer, data: string) => createHmac('sha256', key).update(data, 'utf8').digest();
/** RFC 3986 percent-encoding as SigV4 wants it (unreserved characters kept, spaces as %20). */
const uriEncode = (s: string) => encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);

interface SignedRequest {
  method: string;
  /** Path and query, as on the request line. */
  url: string;
  /** Header names in lower case, as node gives them. */
  headers: Record<string, string | string[] | undefined>;
  body: Buffer | string;
}
type SigV4Check = { ok: true; keyId: string; date: string; region: string; service: string; signedHeaders: string[] } | { ok: false; problem: string };

/** Recomputes a request's signature from its Authorization header's scope and signed headers, with `secretKey`. */
function checkSigV4(req: SignedRequest, secretKey: string): SigV4Check {
  const auth = String(req.headers.authorization ?? '');
  const m = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([a-z0-9-]+)\/([a-z0-9-]+)\/aws4_request, ?SignedHeaders=([a-z0-9;-]+), ?Signature=([0-9a-f]{64})$/.exec(auth);
  if (!m) return { ok: false, problem: 'no SigV4 Authorization header' };
  const [, keyId, date, region, service, signedList, signature] = m;
  const amzDate = String(req.headers['x-amz-date'] ?? '');
  if (!amzDate.startsWith(`${date}T`)) return { ok: false, problem: 'X-Amz-Date does not match the credential scope' };
  const signedHeaders = signedList.split(';');
  if ([...signedHeaders].sort().join(';') !== signedList) return { ok: false, problem: 'SignedHeaders is not sorted' };
  for (const h of ['host', 'x-amz-date']) if (!signedHeaders.includes(h)) return { ok: false, problem: `${h} is not signed` };
  const [rawPath, rawQuery = ''] = req.url.split('?');
  const canonicalUri = rawPath.split('/').map((seg) => uriEncode(decodeURIComponent(seg))).join('/');
  const canonicalQuery = rawQuery
    .split('&')
    .filter(Boolean)
    .map((pair) => pair.split('=').map((x) => uriEncode(decodeURIComponent(x ?? ''))))
    .map(([k, v = '']) => `${k}=${v}`)
    .sort()
    .join('&');
  const canonicalHeaders = signedHeaders.map((h) => {
    const value = req.headers[h];
    return `${h}:${(Array.isArray(value) ? value.join(',') : String(value ?? '')).trim().replace(/\s+/g, ' ')}\n`;
  });
  const canonicalRequest = [req.method, canonicalUri, canonicalQuery, canonicalHeaders.join(''), signedList, sha256Hex(req.body)].join('\n');
  const scope = `${date}/${region}/${service}/aws4_request`;
  const stringToSign = ['AWS4-HMAC-SHA256', amzDate, scope, sha256Hex(canonicalRequest)].join('\n');
  const key = hmac(hmac(hmac(hmac(`AWS4${secretKey}`, date), region), service), 'aws4_request');
  const expected = createHmac('sha256', key).update(stringToSign, 'utf8').digest();
  if (!timingSafeEqual(expected, Buffer.from(signature, 'hex'))) return { ok: false, problem: 'The request signature we calculated does not match the signature you provided.' };
  return { ok: true, keyId, date, region, service, signedHeaders };
}

test('the SigV4 check of these tests agrees with AWS\'s own signing examples', () => {
  const secret = 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY';
  // IAM ListUsers, the example of AWS's SigV4 documentation.
  const listUsers: SignedRequest = {
    method: 'GET',
    url: '/?Action=ListUsers&Version=2010-05-08',
    headers: {
      host: 'iam.amazonaws.com',
      'content-type': 'application/x-www-form-urlencoded; charset=utf-8',
      'x-amz-date': '20150830T123600Z',
      authorization:
        'AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7',
    },
    body: '',
  };
  expect(checkSigV4(listUsers, secret)).toMatchObject({ ok: true, keyId: 'AKIDEXAMPLE', region: 'us-east-1', service: 'iam' });
  // get-vanilla, from the SigV4 test suite AWS publishes.
  const vanilla: SignedRequest = {
    method: 'GET',
    url: '/',
    headers: {
      host: 'example.amazonaws.com',
      'x-amz-date': '20150830T123600Z',
      authorization:
        'AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31',
    },
    body: '',
  };
  expect(checkSigV4(vanilla, secret).ok).toBe(true);
  // Any change to what was signed, or another key, fails.
  expect(checkSigV4({ ...vanilla, url: '/x' }, secret).ok).toBe(false);
  expect(checkSigV4({ ...vanilla, body: 'x' }, secret).ok).toBe(false);
  expect(checkSigV4({ ...vanilla, headers: { ...vanilla.headers, host: 'other.amazonaws.com' } }, secret).ok).toBe(false);
  expect(checkSigV4(vanilla, secret.replace('K7', 'K8')).ok).toBe(false);
  expect(checkSigV4({ ...vanilla, headers: { ...vanilla.headers, authorization: undefined } }, secret)).toEqual({ ok: false, problem: 'no SigV4 Authorization header' });
});

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Runs a command without blocking the event loop (the fake servers answer from this process). */
function runAsync(cmd: string, args: string[], env: NodeJS.ProcessEnv, input?: string): Promise<Run> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, ms: Date.now() - started });
    });
    child.stdin.end(input ?? '');
  });
}

describe('fetch-secrets and put-host-metrics on AWS, against a fake IMDSv2, Secrets Manager and CloudWatch that check SigV4', () => {
  const ROLE = 'scim-bridge-host-0a1b2c3';
  const KEY_ID = 'ASIAQEXAMPLE7EXAMPLE';
  const SECRET_KEY = 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYzEXAMPLEKEY';
  const SESSION_TOKEN = 'IQoJb3JpZ2luX2VjEXAMPLE/session+token==';
  const IMDS_TOKEN = 'AQAEAFakeImdsV2SessionToken==';
  /** Shell and env-file metacharacters on purpose: the value must arrive byte for byte, never expanded. */
  const VALUE = 'whsec_$HOME`id`\'"\\;0123456789abcdef';
  const HASHES = `${'a'.repeat(64)},${'b'.repeat(64)}`;
  let imds: http.Server;
  let secretsManager: http.Server;
  let cloudwatch: http.Server;
  /** What the fake CloudWatch received: each PutMetricData's form, once its signature checked. */
  let putMetricData: Array<Record<string, string>>;
  let cloudwatchStatus: number;
  let env: NodeJS.ProcessEnv;
  let dir: string;
  let script: string;
  let seen: string[];
  /** What the metadata service hands out, and what Secrets Manager accepts; each test may change them. */
  let imdsTokenStatus: number;
  let issued: { AccessKeyId: string; SecretAccessKey: string; Token: string } | undefined;
  let smStatuses: number[];
  let smBody: Record<string, unknown>;

  function listen(handler: http.RequestListener): Promise<http.Server> {
    return new Promise((resolve) => {
      const server = http.createServer(handler);
      server.listen(0, '127.0.0.1', () => resolve(server));
    });
  }
  const port = (s: http.Server) => (s.address() as AddressInfo).port;
  const text = (res: http.ServerResponse, status: number, body: string) => {
    res.writeHead(status, { 'content-type': 'text/plain' });
    res.end(body);
  };
  const awsJson = (res: http.ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { 'content-type': 'application/x-amz-json-1.1' });
    res.end(JSON.stringify(body));
  };
  const awsError = (res: http.ServerResponse, status: number, type: string, message: string) => awsJson(res, status, { __type: type, message });

  beforeAll(async () => {
    for (const tool of ['bash', 'curl', 'jq']) expect(spawnSync('sh', ['-c', `command -v ${tool}`]).status).toBe(0);
    imds = await listen((req, res) => {
      seen.push(`imds ${req.method} ${req.url}`);
      if (req.method === 'PUT' && req.url === '/latest/api/token') {
        const ttl = Number(req.headers['x-aws-ec2-metadata-token-ttl-seconds']);
        if (!(ttl >= 1 && ttl <= 21600)) return text(res, 400, 'Missing or invalid x-aws-ec2-metadata-token-ttl-seconds');
        if (imdsTokenStatus !== 200) return text(res, imdsTokenStatus, 'Forbidden');
        return text(res, 200, IMDS_TOKEN);
      }
      if (req.method !== 'GET') return text(res, 405, 'Method Not Allowed');
      // IMDSv2 only, as the instance is configured (httpTokens: required).
      if (req.headers['x-aws-ec2-metadata-token'] !== IMDS_TOKEN) return text(res, 401, 'Unauthorized');
      if (req.url === '/latest/meta-data/iam/security-credentials/') return text(res, 200, ROLE);
      if (req.url === `/latest/meta-data/iam/security-credentials/${ROLE}` && issued) {
        return text(res, 200, JSON.stringify({ Code: 'Success', LastUpdated: '2026-01-01T00:00:00Z', Type: 'AWS-HMAC', ...issued, Expiration: '2026-01-01T06:00:00Z' }, null, 2));
      }
      return text(res, 404, 'Not Found');
    });
    secretsManager = await listen((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks);
        const check = checkSigV4({ method: req.method!, url: req.url!, headers: req.headers, body }, SECRET_KEY);
        seen.push(`secretsmanager ${req.method} ${req.url} ${req.headers['x-amz-target'] ?? ''} ${check.ok ? `signed ${check.region}/${check.service}: ${check.signedHeaders.join(';')}` : check.problem}`);
        if (!check.ok) return awsError(res, 403, 'InvalidSignatureException', check.problem);
        if (check.keyId !== KEY_ID) return awsError(res, 403, 'UnrecognizedClientException', 'The security token included in the request is invalid.');
        if (check.region !== 'eu-west-1' || check.service !== 'secretsmanager') return awsError(res, 403, 'InvalidSignatureException', `Credential should be scoped to a valid region and service, not ${check.region}/${check.service}.`);
        const when = Date.parse(String(req.headers['x-amz-date']).replace(/^(\d{4})(\d\d)(\d\d)T(\d\d)(\d\d)(\d\d)Z$/, '$1-$2-$3T$4:$5:$6Z'));
        if (!(Math.abs(Date.now() - when) < 5 * 60_000)) return awsError(res, 403, 'InvalidSignatureException', 'Signature expired');
        // Temporary credentials: the session token must come with them, and be signed.
        if (req.headers['x-amz-security-token'] !== SESSION_TOKEN || !check.signedHeaders.includes('x-amz-security-token')) {
          return awsError(res, 403, 'UnrecognizedClientException', 'The security token included in the request is invalid.');
        }
        if (req.method !== 'POST' || req.url !== '/') return awsError(res, 404, 'UnknownOperationException', 'Unknown operation');
        if (req.headers['x-amz-target'] !== 'secretsmanager.GetSecretValue' || !check.signedHeaders.includes('x-amz-target')) return awsError(res, 400, 'UnknownOperationException', 'Unknown operation');
        if (req.headers['content-type'] !== 'application/x-amz-json-1.1') return awsError(res, 400, 'SerializationException', 'Bad content type');
        let request: { SecretId?: unknown };
        try {
          request = JSON.parse(body.toString('utf8'));
        } catch {
          return awsError(res, 400, 'SerializationException', 'Body is not JSON');
        }
        if (request.SecretId !== WEBHOOK_ARN && request.SecretId !== TOKEN_HASHES_ARN) return awsError(res, 400, 'ResourceNotFoundException', "Secrets Manager can't find the specified secret.");
        const status = smStatuses.shift() ?? 200;
        if (status !== 200) return awsError(res, status, 'InternalServiceError', 'try again');
        if (request.SecretId === TOKEN_HASHES_ARN) {
          return awsJson(res, 200, { ARN: TOKEN_HASHES_ARN, Name: 'scim-bridge-token-sha256-AbCdEf', VersionId: 'v1', VersionStages: ['AWSCURRENT'], CreatedDate: 1767225600, SecretString: HASHES });
        }
        awsJson(res, 200, { ARN: WEBHOOK_ARN, Name: 'scim-bridge-webhook-secret-AbCdEf', VersionId: 'v1', VersionStages: ['AWSCURRENT'], CreatedDate: 1767225600, ...smBody });
      });
    });
    // CloudWatch's Query API (PutMetricData): a form, signed for the monitoring service with the session token.
    cloudwatch = await listen((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks);
        const check = checkSigV4({ method: req.method!, url: req.url!, headers: req.headers, body }, SECRET_KEY);
        seen.push(`cloudwatch ${req.method} ${req.url} ${check.ok ? `signed ${check.region}/${check.service}: ${check.signedHeaders.join(';')}` : check.problem}`);
        if (!check.ok) return text(res, 403, `<ErrorResponse><Error><Code>SignatureDoesNotMatch</Code><Message>${check.problem}</Message></Error></ErrorResponse>`);
        if (check.keyId !== KEY_ID || req.headers['x-amz-security-token'] !== SESSION_TOKEN || !check.signedHeaders.includes('x-amz-security-token')) return text(res, 403, 'InvalidClientTokenId');
        if (check.region !== 'eu-west-1' || check.service !== 'monitoring') return text(res, 403, `SignatureDoesNotMatch: scoped to ${check.region}/${check.service}`);
        if (req.method !== 'POST' || req.url !== '/' || req.headers['content-type'] !== 'application/x-www-form-urlencoded') return text(res, 400, 'MalformedQueryString');
        const form = Object.fromEntries(new URLSearchParams(body.toString('utf8')));
        if (form.Action !== 'PutMetricData' || form.Version !== '2010-08-01') return text(res, 400, 'InvalidAction');
        if (cloudwatchStatus !== 200) return text(res, cloudwatchStatus, 'Throttling');
        putMetricData.push(form);
        text(res, 200, '<PutMetricDataResponse xmlns="http://monitoring.amazonaws.com/doc/2010-08-01/"><ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></PutMetricDataResponse>');
      });
    });
    env = {
      PATH: process.env.PATH,
      AWS_EC2_METADATA_SERVICE_ENDPOINT: `http://127.0.0.1:${port(imds)}`,
      SECRETS_MANAGER_ENDPOINT: `http://127.0.0.1:${port(secretsManager)}`,
      CLOUDWATCH_ENDPOINT: `http://127.0.0.1:${port(cloudwatch)}`,
    };
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aws-fetch-secrets-'));
    // The script exactly as the host gets it from the user-data.
    script = path.join(dir, 'fetch-secrets');
    fs.writeFileSync(script, hostFile(withWebhook, '/usr/local/lib/scim-bridge/fetch-secrets'), { mode: 0o755 });
    // The functions it sources, as the user-data writes them, where HOST_AWS_FUNCTIONS says.
    env.HOST_AWS_FUNCTIONS = path.join(dir, 'aws-functions');
    fs.writeFileSync(env.HOST_AWS_FUNCTIONS, hostFile(withWebhook, AWS_FUNCTIONS), { mode: 0o644 });
  });

  afterAll(async () => {
    for (const server of [imds, secretsManager, cloudwatch]) {
      if (!server) continue;
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  let outDir: string;
  let out: string;
  beforeEach(() => {
    seen = [];
    imdsTokenStatus = 200;
    issued = { AccessKeyId: KEY_ID, SecretAccessKey: SECRET_KEY, Token: SESSION_TOKEN };
    smStatuses = [];
    smBody = { SecretString: VALUE };
    putMetricData = [];
    cloudwatchStatus = 200;
    // Like /run/scim-bridge/secrets: the script makes the directory, one file per secret in it.
    outDir = path.join(fs.mkdtempSync(path.join(dir, 'run-')), 'secrets');
    out = path.join(outDir, 'webhook-secret');
  });
  const fetchSecrets = (extraEnv: NodeJS.ProcessEnv = {}) => runAsync('bash', [script, outDir], { ...env, ...extraEnv });
  const leftovers = () => (fs.existsSync(outDir) ? fs.readdirSync(outDir) : []);
  const smCalls = () => seen.filter((x) => x.startsWith('secretsmanager'));
  const curlConfig = (c: { id: string; secret: string; token?: string }) =>
    `user = "${c.id}:${c.secret}"\n${c.token ? `header = "X-Amz-Security-Token: ${c.token}"\n` : ''}`;
  const directCall = (config: string, signed = true) =>
    runAsync(
      'curl',
      [
        '-sS', '-o', '/dev/null', '-w', '%{http_code}', '-K', '-',
        ...(signed ? ['--aws-sigv4', 'aws:amz:eu-west-1:secretsmanager'] : []),
        '-H', 'X-Amz-Target: secretsmanager.GetSecretValue', '-H', 'Content-Type: application/x-amz-json-1.1',
        '--data-binary', JSON.stringify({ SecretId: WEBHOOK_ARN }), `${env.SECRETS_MANAGER_ENDPOINT}/`,
      ],
      env,
      config,
    );

  test('the fakes are strict: IMDSv2 only; Secrets Manager takes only a valid signature with the session token', async () => {
    const noToken = await runAsync('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', `${env.AWS_EC2_METADATA_SERVICE_ENDPOINT}/latest/meta-data/iam/security-credentials/`], env);
    expect(noToken.stdout).toBe('401');
    expect((await directCall(curlConfig({ id: KEY_ID, secret: SECRET_KEY, token: SESSION_TOKEN }), false)).stdout).toBe('403');
    expect((await directCall(curlConfig({ id: KEY_ID, secret: SECRET_KEY.replace('K7', 'K8'), token: SESSION_TOKEN }))).stdout).toBe('403');
    expect((await directCall(curlConfig({ id: KEY_ID, secret: SECRET_KEY }))).stdout).toBe('403');
    expect((await directCall(curlConfig({ id: KEY_ID, secret: SECRET_KEY, token: 'another-session' }))).stdout).toBe('403');
    expect((await directCall(curlConfig({ id: KEY_ID, secret: SECRET_KEY, token: SESSION_TOKEN }))).stdout).toBe('200');
  });

  test('writes one file per secret, the value and a line break, mode 0440 for the bridge\'s group, after IMDSv2 (token, role, credentials) and one signed GetSecretValue each', async () => {
    const r = await fetchSecrets();
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('fetch-secrets: token-sha256 updated\nfetch-secrets: webhook-secret updated\n');
    expect(fs.readFileSync(out, 'utf8')).toBe(`${VALUE}\n`);
    expect(fs.readFileSync(path.join(outDir, 'token-sha256'), 'utf8')).toBe(`${HASHES}\n`);
    for (const f of ['webhook-secret', 'token-sha256']) {
      const st = fs.statSync(path.join(outDir, f));
      expect([st.mode & 0o7777, st.uid, st.gid]).toEqual([0o440, 0, 10001]);
    }
    const st = fs.statSync(outDir);
    expect([st.mode & 0o7777, st.uid, st.gid]).toEqual([0o750, 0, 10001]);
    expect(leftovers().sort()).toEqual(['token-sha256', 'webhook-secret']);
    const signed = 'secretsmanager POST / secretsmanager.GetSecretValue signed eu-west-1/secretsmanager: content-type;host;x-amz-date;x-amz-security-token;x-amz-target';
    const imdsCalls = ['imds PUT /latest/api/token', 'imds GET /latest/meta-data/iam/security-credentials/', `imds GET /latest/meta-data/iam/security-credentials/${ROLE}`];
    expect(seen).toEqual([...imdsCalls, signed, ...imdsCalls, signed]);
    expect(r.ms).toBeLessThan(5000);
  });

  test('a bad signature (a secret key Secrets Manager does not know) is refused: the start fails at once, with no file', async () => {
    issued = { AccessKeyId: KEY_ID, SecretAccessKey: SECRET_KEY.replace('K7', 'K8'), Token: SESSION_TOKEN };
    const r = await fetchSecrets();
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/403/);
    expect(smCalls()).toEqual([expect.stringContaining('does not match the signature')]); // curl does not retry a 403; nothing after it
    expect(fs.existsSync(out)).toBe(false);
    expect(leftovers()).toEqual([]);
    expect(r.ms).toBeLessThan(5000);
  });

  test('a session token other than the one issued with the key is refused', async () => {
    issued = { AccessKeyId: KEY_ID, SecretAccessKey: SECRET_KEY, Token: 'IQoJb3JpZ2luX2VjOTHERSESSION==' };
    const r = await fetchSecrets();
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/403/);
    expect(fs.existsSync(out)).toBe(false);
  });

  test('no credential appears on a command line (ps shows every argument to every user of the host)', async () => {
    // A curl that records its arguments, then runs the real one.
    const bin = fs.mkdtempSync(path.join(dir, 'bin-'));
    const args = path.join(bin, 'args');
    const real = spawnSync('sh', ['-c', 'command -v curl'], { encoding: 'utf8' }).stdout.trim();
    fs.writeFileSync(path.join(bin, 'curl'), `#!/bin/sh\nprintf '%s\\n' "$*" >> '${args}'\nexec '${real}' "$@"\n`, { mode: 0o755 });
    const r = await fetchSecrets({ PATH: `${bin}:${process.env.PATH}` });
    expect(`${r.code} ${r.stderr}`).toBe('0 ');
    const recorded = fs.readFileSync(args, 'utf8');
    expect(recorded.trim().split('\n')).toHaveLength(8);
    for (const credential of [SECRET_KEY, SESSION_TOKEN, KEY_ID]) expect(recorded).not.toContain(credential);
    expect(recorded).toContain('-K -');
  });

  test('Secrets Manager failing for a moment (503) is retried; the secret arrives', async () => {
    smStatuses = [503];
    const r = await fetchSecrets();
    expect(`${r.code} ${r.stderr}`).toMatch(/^0 /);
    expect(fs.readFileSync(out, 'utf8')).toBe(`${VALUE}\n`);
    expect(smCalls()).toHaveLength(3);
  });

  test('the metadata service refusing a session token fails the start quickly; Secrets Manager is never called', async () => {
    imdsTokenStatus = 403;
    const r = await fetchSecrets();
    expect(r.code).not.toBe(0);
    expect(fs.existsSync(out)).toBe(false);
    expect(smCalls()).toEqual([]);
    expect(r.ms).toBeLessThan(5000);
  });

  test('an instance without the role\'s credentials (yet) fails the start without calling Secrets Manager unsigned', async () => {
    issued = undefined;
    const r = await fetchSecrets();
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/404/);
    expect(smCalls()).toEqual([]);
    expect(leftovers()).toEqual([]);
  });

  test('credentials that are not the metadata service\'s shape are refused before any call', async () => {
    issued = { AccessKeyId: KEY_ID, SecretAccessKey: 'has"a quote', Token: SESSION_TOKEN };
    const r = await fetchSecrets();
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/no usable credentials/);
    expect(smCalls()).toEqual([]);
  });

  test('a secret without SecretString (a binary secret), or with a line break, fails the start with no file', async () => {
    smBody = { SecretBinary: Buffer.from('x').toString('base64') };
    expect((await fetchSecrets()).code).not.toBe(0);
    smBody = { SecretString: 'first-line-0123456789\nSCIM_BRIDGE_TOKEN=injected' };
    const r = await fetchSecrets();
    expect(r.code).toBe(1);
    expect(r.stderr).toBe('fetch-secrets: SCIM_BRIDGE_WEBHOOK_SECRET is empty or has a line break\n');
    expect(leftovers()).toEqual([]);
  });

  describe('put-host-metrics', () => {
    let metricsScript: string;
    let meminfo: string;
    beforeAll(() => {
      metricsScript = path.join(dir, 'put-host-metrics');
      fs.writeFileSync(metricsScript, hostFile(withWebhook, HOST_METRICS), { mode: 0o755 });
      // 2,000,000 kB of memory, 500,000 available: 75% used, as the CloudWatch agent counts it (total - available).
      meminfo = path.join(dir, 'meminfo');
      fs.writeFileSync(meminfo, 'MemTotal:        2000000 kB\nMemFree:          100000 kB\nMemAvailable:     500000 kB\nBuffers:           10000 kB\n');
    });
    const putHostMetrics = (mount: string) => runAsync('bash', [metricsScript, mount], { ...env, HOST_MEMINFO: meminfo });
    /** The data disk's use as df counts it: used / (used + available). */
    const diskPercent = (mount: string) => {
      const [, , used, avail] = spawnSync('df', ['-P', '-k', mount], { encoding: 'utf8' }).stdout.trim().split('\n')[1].split(/\s+/).map(Number);
      return (100 * used) / (used + avail);
    };

    test('one signed PutMetricData: memory and the data disk in percent, in the scim-bridge namespace, by domain', async () => {
      const r = await putHostMetrics('/');
      expect(`${r.code} ${r.stdout}${r.stderr}`).toBe('0 ');
      expect(seen.filter((x) => x.startsWith('cloudwatch'))).toEqual([
        'cloudwatch POST / signed eu-west-1/monitoring: host;x-amz-date;x-amz-security-token',
      ]);
      expect(putMetricData).toHaveLength(1);
      const form = putMetricData[0];
      expect(form).toMatchObject({
        Namespace: 'scim-bridge',
        'MetricData.member.1.MetricName': 'mem_used_percent',
        'MetricData.member.1.Value': '75.0',
        'MetricData.member.1.Unit': 'Percent',
        'MetricData.member.1.Dimensions.member.1.Name': 'Domain',
        'MetricData.member.1.Dimensions.member.1.Value': 'scim.example.com',
        'MetricData.member.2.MetricName': 'disk_used_percent',
        'MetricData.member.2.Unit': 'Percent',
        'MetricData.member.2.Dimensions.member.1.Name': 'Domain',
        'MetricData.member.2.Dimensions.member.1.Value': 'scim.example.com',
      });
      expect(Math.abs(Number(form['MetricData.member.2.Value']) - diskPercent('/'))).toBeLessThan(0.5);
      expect(Object.keys(form)).toHaveLength(3 + 2 * 5);
    });

    test('a directory that is not a mount point (the data disk not attached yet) gives memory only, not the root disk', async () => {
      const notMounted = fs.mkdtempSync(path.join(dir, 'srv-'));
      const r = await putHostMetrics(notMounted);
      expect(`${r.code} ${r.stderr}`).toBe('0 ');
      expect(putMetricData.map((f) => Object.keys(f).filter((k) => k.endsWith('.MetricName')).map((k) => f[k]))).toEqual([['mem_used_percent']]);
    });

    test('CloudWatch refusing the call fails the run (the timer\'s service shows it failed), and so does a bad signature', async () => {
      cloudwatchStatus = 400;
      const r = await putHostMetrics('/');
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(/400/);
      issued = { AccessKeyId: KEY_ID, SecretAccessKey: SECRET_KEY.replace('K7', 'K8'), Token: SESSION_TOKEN };
      cloudwatchStatus = 200;
      const bad = await putHostMetrics('/');
      expect(bad.code).not.toBe(0);
      expect(seen.at(-1)).toContain('does not match the signature');
      expect(putMetricData).toEqual([]);
    });
  });
});

/**
 * The component under its own mocks, which see each resource's provider (the plan records none): what lives in
 * us-east-1 and what the AMI lookup asks for.
 */
describe('the component\'s providers and lookups', () => {
  const ARGS: AwsBridgeArgs = {
    image: 'ghcr.io/scim-bridge/scim-bridge:0.1.0',
    domain: 'scim.example.com',
    dnsZone: 'example.com',
    size: 't3.small',
    caddyImage: 'docker.io/library/caddy:2.10.2',
    dataDiskSizeGb: 10,
    alertEmail: 'ops@example.com',
    acme: { email: 'ops@example.com', directory: LETS_ENCRYPT.production, letsEncrypt: true },
    allowedDomains: [],
    adminSourceRanges: [],
    region: 'eu-west-1',
    availabilityZone: 'eu-west-1a',
  };

  async function evaluate(args: Partial<AwsBridgeArgs>, config: Record<string, string> = {}, secretKeys: string[] = []) {
    const resources: Array<{ type: string; name: string; inputs: Inputs; provider?: string }> = [];
    const calls: Array<{ token: string; inputs: Inputs }> = [];
    pulumi.runtime.setAllConfig({ 'aws:region': 'eu-west-1', ...config }, secretKeys);
    await pulumi.runtime.setMocks(
      {
        newResource(a) {
          resources.push({ type: a.type, name: a.name, inputs: a.inputs, provider: a.provider });
          const computed: Record<string, unknown> = {
            ...(a.type === 'random:index/randomPassword:RandomPassword' ? { result: 'r'.repeat(48) } : {}),
            ...(awsPlanMocks.outputs(a.type, a.name, a.inputs) ?? {}),
          };
          return { id: (computed.id as string) ?? `${a.name}-id`, state: { name: a.name, ...a.inputs, ...computed } };
        },
        call(a) {
          calls.push({ token: a.token, inputs: a.inputs });
          return awsPlanMocks.invoke!(a.token, a.inputs) ?? a.inputs;
        },
      },
      'scim-bridge',
      'aws',
      false,
    );
    await pulumi.runtime.runInPulumiStack(async () => {
      new AwsBridge('scim-bridge', { ...ARGS, token: pulumi.secret('t'.repeat(48)), ...args });
      return {};
    });
    await pulumi.runtime.disconnect();
    return { resources, calls };
  }

  test('the alarm, its topic and the email subscription are created with the us-east-1 provider; nothing else is', async () => {
    const { resources } = await evaluate({}, { 'aws:profile': 'ops' });
    const provider = resources.find((r) => r.type === 'pulumi:providers:aws')!;
    // An explicit provider does not read the stack's aws: settings: the program passes the profile on.
    expect(provider.inputs).toMatchObject({ region: 'us-east-1', profile: 'ops' });
    const viaUsEast1 = resources.filter((r) => r.provider?.includes('pulumi:providers:aws::scim-bridge-us-east-1::')).map((r) => `${r.type} ${r.name}`);
    expect(viaUsEast1.sort()).toEqual([
      'aws:cloudwatch/metricAlarm:MetricAlarm scim-bridge-down',
      'aws:sns/topic:Topic scim-bridge-alerts',
      'aws:sns/topicSubscription:TopicSubscription scim-bridge-alerts-email',
    ]);
    // Everything else, the recovery alarm included, uses the stack's own region.
    expect(resources.filter((r) => r.provider && !viaUsEast1.includes(`${r.type} ${r.name}`))).toEqual([]);
  });

  test('a secret aws: setting stays a secret in the health check\'s provider, also a structured one', async () => {
    const roles = [{ roleArn: 'arn:aws:iam::123456789012:role/deployer', externalId: 'ext-secret-0123' }];
    const { resources } = await evaluate({}, { 'aws:profile': 'ops', 'aws:assumeRoles': JSON.stringify(roles) }, ['aws:assumeRoles']);
    const provider = resources.find((r) => r.type === 'pulumi:providers:aws')!;
    expect(provider.inputs.assumeRoles).toEqual({ [SECRET_SIG_KEY]: expect.any(String), value: JSON.stringify(roles) });
    expect(provider.inputs.profile).toBe('ops');
  });

  test('the partition comes from the provider (aws.getPartition), answered by the plan\'s mocks', async () => {
    const { calls, resources } = await evaluate({ region: 'cn-north-1', availabilityZone: 'cn-north-1a' }, { 'aws:region': 'cn-north-1' });
    expect(calls.filter((c) => c.token === 'aws:index/getPartition:getPartition')).toHaveLength(1);
    const recover = resources.find((r) => r.type === 'aws:cloudwatch/metricAlarm:MetricAlarm' && r.name === 'scim-bridge-recover')!;
    expect(recover.inputs.alarmActions).toEqual(['arn:aws-cn:automate:cn-north-1:ec2:recover']);
  });

  test('a region where the health check\'s alarm cannot work is refused before anything is declared', () => {
    expect(() => new AwsBridge('scim-bridge', { ...ARGS, region: 'us-iso-east-1', availabilityZone: 'us-iso-east-1a' })).toThrow(/^aws:region "us-iso-east-1" is in the aws-iso partition/);
  });

  test('the AMI is Debian 12\'s own, for the instance type\'s architecture; a zone name is looked up as a public zone', async () => {
    const amd = await evaluate({});
    const arm = await evaluate({ size: 't4g.small' });
    const lookup = (calls: Array<{ token: string; inputs: Inputs }>) => calls.find((c) => c.token === 'aws:ec2/getAmi:getAmi')!.inputs;
    expect(lookup(amd.calls)).toMatchObject({
      mostRecent: true,
      owners: [DEBIAN_AMI_OWNER],
      filters: expect.arrayContaining([
        { name: 'name', values: ['debian-12-amd64-*'] },
        { name: 'architecture', values: ['x86_64'] },
        { name: 'virtualization-type', values: ['hvm'] },
      ]),
    });
    expect(DEBIAN_AMI_OWNER).toBe('136693071363');
    expect(lookup(arm.calls).filters).toEqual(
      expect.arrayContaining([
        { name: 'name', values: ['debian-12-arm64-*'] },
        { name: 'architecture', values: ['arm64'] },
      ]),
    );
    expect(amd.calls.find((c) => c.token === 'aws:route53/getZone:getZone')!.inputs).toEqual({ name: 'example.com', privateZone: false });
    const byId = await evaluate({ dnsZone: 'Z0123456789ABCDEFGHIJ' });
    expect(byId.calls.map((c) => c.token)).not.toContain('aws:route53/getZone:getZone');
  });

  test('an EC2 key pair, when given, is the instance\'s (SSH as admin from the admin ranges)', async () => {
    const { resources } = await evaluate({ keyName: 'ops-key', adminSourceRanges: ['203.0.113.0/24'] });
    expect(resources.find((r) => r.type === 'aws:ec2/instance:Instance')!.inputs.keyName).toBe('ops-key');
  });
});
