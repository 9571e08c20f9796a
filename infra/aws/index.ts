/**
 * AWS: `scim-bridge:aws:Bridge`. An EC2 instance (Debian 12 found by lookup, IMDSv2 only, encrypted root
 * volume) with its own least-privilege role, in a VPC of its own; an Elastic IP on a network interface that
 * outlives the instance; a separate encrypted EBS volume for the database and certificates, kept when the
 * instance is replaced or the stack destroyed, and snapshotted daily; a security group open to the world on
 * tcp 80/443 only; Route 53 A and CAA records in an existing hosted zone; the token and the webhook secret in
 * Secrets Manager; container logs in CloudWatch Logs; a Route 53 health check of https://<domain>/healthz whose
 * CloudWatch alarm (in the partition's Route 53 region, where health-check metrics live: us-east-1,
 * us-gov-west-1 or cn-northwest-1) emails through SNS; alarms in the stack's region on the certificate's days left,
 * webhook dead letters and the host's disk and memory use (published by the host itself); and EC2 auto-recovery
 * when the system status check fails.
 * Every ARN and endpoint the program builds takes the partition (aws, aws-us-gov, aws-cn) from the provider.
 */
import * as aws from '@pulumi/aws';
import * as pulumi from '@pulumi/pulumi';
import { acceptedTokenHashes, baseUrlOf, BridgeOutputs, bridgeToken, SecretSink, tokenSha256 } from '../bridge';
import { GOOGLE_CREDENTIALS_SETTING } from '../google-workspace';
import { bridgeHostSpec, gzipBase64, HostBridgeArgs, HostSecret, MOUNT_POINT, renderUserData } from '../host';
import { BUILD_IMAGE } from '../image';
import { awsBuiltImage } from './registry';

export interface AwsBridgeArgs extends HostBridgeArgs {
  region: string;
  availabilityZone: string;
  /** An EC2 key pair for SSH as `admin` (with adminSourceRanges); none by default. */
  keyName?: string;
  /** A token accepted on /metrics only (a Pulumi secret): its hash is a secret the host reads every minute. */
  metricsToken?: pulumi.Input<string>;
}

/** Debian's own AWS account, which publishes the official Debian AMIs. */
export const DEBIAN_AMI_OWNER = '136693071363';
/**
 * Where Route 53 publishes health-check metrics, per partition: the region of Route 53's control plane. In the
 * aws partition that is us-east-1 ("Route 53 metrics are not available if you select any other region": Route 53
 * Developer Guide, Monitoring health checks using CloudWatch); in AWS GovCloud (US) the control plane and Route 53's
 * CloudWatch metrics are in us-gov-west-1 (GovCloud User Guide, Amazon Route 53); in the China regions Route 53's
 * endpoint (route53.amazonaws.com.cn) signs and runs in cn-northwest-1 (Ningxia). The alarm on the health check
 * (and its SNS topic) live there.
 */
export const HEALTH_CHECK_REGIONS: Readonly<Record<string, string>> = { aws: 'us-east-1', 'aws-us-gov': 'us-gov-west-1', 'aws-cn': 'cn-northwest-1' };

/** The partition a region belongs to, by AWS's own region patterns (the SDKs' partitions.json). */
export function partitionOf(region: string): string | undefined {
  const patterns: Array<[string, RegExp]> = [
    ['aws-us-gov', /^us-gov-\w+-\d+$/],
    ['aws-cn', /^cn-\w+-\d+$/],
    ['aws-iso', /^us-iso-\w+-\d+$/],
    ['aws-iso-b', /^us-isob-\w+-\d+$/],
    ['aws-iso-e', /^eu-isoe-\w+-\d+$/],
    ['aws-iso-f', /^us-isof-\w+-\d+$/],
    ['aws-eusc', /^eusc-(de)-\w+-\d+$/],
    ['aws', /^(us|eu|ap|sa|ca|me|af|il|mx)-\w+-\d+$/],
  ];
  return patterns.find(([, re]) => re.test(region))?.[0];
}

/**
 * The region of the health check's alarm for a stack in `region`; refuses a region whose partition has no
 * Route 53 health checks this program knows of (the isolated partitions), since the alarm could not work there.
 */
export function healthCheckRegionOf(region: string): string {
  const partition = partitionOf(region);
  const there = partition && HEALTH_CHECK_REGIONS[partition];
  if (!there) {
    throw new pulumi.RunError(
      `aws:region "${region}" is ${partition ? `in the ${partition} partition` : 'in no AWS partition this program knows'}, where it cannot place the alarm on Route 53's health check: deploy in a region of the aws, aws-us-gov or aws-cn partition (pulumi config set aws:region eu-west-1)`,
    );
  }
  return there;
}

/** The data volume's device name in the attachment; Nitro instances show it as an NVMe device instead. */
const DATA_DEVICE_NAME = '/dev/sdf';
/** EC2's limit on user-data, before base64. */
const USER_DATA_LIMIT = 16 * 1024;
/** The tag (value: the domain) by which the snapshot policy finds this bridge's data volume and no other. */
export const SNAPSHOT_TAG = 'scim-bridge-data';

/**
 * Instance families on the Xen hypervisor: they show EBS volumes as /dev/xvd*, not as the NVMe devices the
 * host looks for (and some cannot run Debian 12's images at all).
 */
const XEN_FAMILIES = /^(t1|t2|m1|m2|m3|m4|c1|c3|c4|r3|r4|i2|i3|x1|x1e|d2|g2|g3|p2|p3|h1)\.(?!metal)/;

/** Graviton (arm64) instance types: a1, and families with a `g` after the generation (t4g, m7g, c7gn…). */
export function architectureOf(instanceType: string): 'arm64' | 'x86_64' {
  return /^a1\./.test(instanceType) || /^[a-z]+\d+g[a-z-]*\./.test(instanceType) ? 'arm64' : 'x86_64';
}

/**
 * How a Nitro instance names an attached EBS volume: udev links it by the NVMe model and serial, and the
 * serial is the volume id without its dash (vol-0123… -> vol0123…).
 */
export function nvmeDevicePath(volumeId: string): string {
  return `/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_${volumeId.replace('-', '')}`;
}

/** Where the host keeps the shell functions that call AWS (sourced by fetch-secrets and put-host-metrics). */
export const AWS_FUNCTIONS_FILE = '/usr/local/lib/scim-bridge/aws-functions';
/** The host's script that publishes its disk and memory use to CloudWatch, and its timer (every minute). */
export const HOST_METRICS_SCRIPT = '/usr/local/lib/scim-bridge/put-host-metrics';
export const HOST_METRICS_TIMER = 'scim-bridge-host-metrics.timer';
const HOST_METRICS_SERVICE = 'scim-bridge-host-metrics.service';

/**
 * Shell functions for the host's scripts, calling AWS with curl alone (its own SigV4 signing, curl >= 7.75: Debian
 * 12 has 7.88) and jq, instead of the AWS CLI (~100 MB of Python to install at first boot). The credentials are the
 * instance role's, from the instance metadata service (IMDSv2: a session token first); they reach curl on its
 * standard input (-K -), never on a command line that `ps` shows. aws_secret reads a Secrets Manager secret (its
 * JSON API: POST / with X-Amz-Target: secretsmanager.GetSecretValue); aws_put_metrics publishes percentages to
 * CloudWatch (PutMetricData of its Query API), in the program's namespace with the domain as dimension.
 * AWS_EC2_METADATA_SERVICE_ENDPOINT (the SDKs' own override), SECRETS_MANAGER_ENDPOINT and CLOUDWATCH_ENDPOINT
 * point them elsewhere (tests use local fakes). The instance role may read the token hashes and the webhook
 * secret, and put metrics in that namespace, nothing else.
 */
export function awsFunctions(region: string, dnsSuffix: string, domain: string): string {
  const curl = 'curl -fsS --max-time 10 --retry 5 --retry-connrefused';
  return [
    '# shellcheck shell=bash',
    '# Functions that call AWS with the instance role\'s credentials (sourced by the scim-bridge scripts).',
    '# aws_credentials: the role\'s temporary credentials, as a curl config (user, session token header).',
    'aws_credentials() {',
    '  local imds imds_token role',
    '  imds=${AWS_EC2_METADATA_SERVICE_ENDPOINT:-http://169.254.169.254}',
    '  imds=${imds%/}',
    `  imds_token=$(${curl} -X PUT -H "X-aws-ec2-metadata-token-ttl-seconds: 300" \\`,
    '    "$imds/latest/api/token") || return 1',
    `  role=$(${curl} -H "X-aws-ec2-metadata-token: $imds_token" \\`,
    '    "$imds/latest/meta-data/iam/security-credentials/") || return 1',
    '  role=${role%%[[:space:]]*}',
    '  if [ -z "$role" ]; then echo "scim-bridge: the instance has no role (instance profile)" >&2; return 1; fi',
    `  ${curl} -H "X-aws-ec2-metadata-token: $imds_token" \\`,
    '    "$imds/latest/meta-data/iam/security-credentials/$role" | jq -er \'',
    '      if ([.AccessKeyId, .SecretAccessKey, .Token] | all(type == "string" and test("^[A-Za-z0-9/+=]+$")))',
    '      then "user = \\"\\(.AccessKeyId):\\(.SecretAccessKey)\\"\\nheader = \\"X-Amz-Security-Token: \\(.Token)\\""',
    '      else error("the instance metadata service gave no usable credentials") end\'',
    '}',
    '# aws_secret ID: prints the secret\'s SecretString.',
    'aws_secret() {',
    '  local credentials endpoint',
    '  credentials=$(aws_credentials) || return 1',
    `  endpoint=\${SECRETS_MANAGER_ENDPOINT:-https://secretsmanager.${region}.${dnsSuffix}}`,
    `  printf '%s\\n' "$credentials" | ${curl} -K - --aws-sigv4 "aws:amz:${region}:secretsmanager" \\`,
    '    -H "X-Amz-Target: secretsmanager.GetSecretValue" -H "Content-Type: application/x-amz-json-1.1" \\',
    '    --data-binary "$(jq -cn --arg id "$1" \'{SecretId: $id}\')" "${endpoint%/}/" | jq -er .SecretString',
    '}',
    `# aws_put_metrics NAME=PERCENT...: one PutMetricData, namespace ${METRIC_NAMESPACE}, dimension Domain=${domain}.`,
    'aws_put_metrics() {',
    '  local credentials endpoint pair i=0',
    `  local body="Action=PutMetricData&Version=2010-08-01&Namespace=${METRIC_NAMESPACE}"`,
    '  for pair in "$@"; do',
    '    i=$((i + 1))',
    '    body+="&MetricData.member.$i.MetricName=${pair%%=*}&MetricData.member.$i.Value=${pair#*=}&MetricData.member.$i.Unit=Percent"',
    `    body+="&MetricData.member.$i.Dimensions.member.1.Name=Domain&MetricData.member.$i.Dimensions.member.1.Value=${domain}"`,
    '  done',
    '  credentials=$(aws_credentials) || return 1',
    `  endpoint=\${CLOUDWATCH_ENDPOINT:-https://monitoring.${region}.${dnsSuffix}}`,
    `  printf '%s\\n' "$credentials" | ${curl} -o /dev/null -K - --aws-sigv4 "aws:amz:${region}:monitoring" \\`,
    '    --data-binary "$body" "${endpoint%/}/"',
    '}',
    '',
  ].join('\n');
}

/**
 * put-host-metrics MOUNT: the host's disk and memory use, as the CloudWatch agent names them (disk_used_percent of
 * the data disk: used / (used + available), as df counts; mem_used_percent: (total - available) / total), published
 * every minute by a timer. Debian has no CloudWatch agent package (Amazon's is a .deb from S3), and these two
 * numbers need only /proc and df. A data disk not mounted yet gives no disk figure rather than the root disk's.
 */
export function hostMetricsScript(): string {
  return [
    '#!/bin/bash',
    '# put-host-metrics MOUNT: the data disk\'s and the memory\'s use, to CloudWatch (every minute, by a timer).',
    'set -euo pipefail',
    'shopt -s inherit_errexit',
    '# shellcheck source=/dev/null',
    `. "\${HOST_AWS_FUNCTIONS:-${AWS_FUNCTIONS_FILE}}"`,
    'mount=$1',
    'meminfo=${HOST_MEMINFO:-/proc/meminfo}',
    'metrics=()',
    'mem=$(awk \'/^MemTotal:/ { t = $2 } /^MemAvailable:/ { a = $2 } END { if (t > 0 && a != "") printf "%.1f", 100 * (t - a) / t }\' "$meminfo")',
    'if [ -n "$mem" ]; then metrics+=("mem_used_percent=$mem"); fi',
    'if mountpoint -q "$mount"; then',
    '  disk=$(df -P -k "$mount" | awk \'NR == 2 && $3 + $4 > 0 { printf "%.1f", 100 * $3 / ($3 + $4) }\')',
    '  if [ -n "$disk" ]; then metrics+=("disk_used_percent=$disk"); fi',
    'fi',
    'if [ "${#metrics[@]}" -eq 0 ]; then echo "put-host-metrics: nothing to publish" >&2; exit 1; fi',
    'aws_put_metrics "${metrics[@]}"',
    '',
  ].join('\n');
}


/** The host's units that run put-host-metrics every minute (the service is started by its timer only). */
export function hostMetricsUnits(mount: string): { service: string; timer: string } {
  return {
    service: [
      '[Unit]',
      'Description=scim-bridge: publish the host\'s disk and memory use to CloudWatch',
      'After=network-online.target',
      'Wants=network-online.target',
      '',
      '[Service]',
      'Type=oneshot',
      `ExecStart=${HOST_METRICS_SCRIPT} ${mount}`,
      '',
    ].join('\n'),
    timer: [
      '[Unit]',
      'Description=scim-bridge: publish the host\'s disk and memory use every minute',
      '',
      '[Timer]',
      'OnActiveSec=1min',
      'OnUnitActiveSec=1min',
      'AccuracySec=5s',
      '',
      '[Install]',
      'WantedBy=timers.target',
      '',
    ].join('\n'),
  };
}

/**
 * The stack's `aws:` settings (all but aws:region) as arguments for an explicit AWS provider, which, unlike the
 * default provider, reads none of them itself: profile, keys, assumed roles, shared files, endpoints, default
 * tags… Each is read the way @pulumi/aws reads its own configuration (aws.config: JSON settings parsed into the
 * provider's argument shapes); a secret setting stays a secret. A key the provider does not know is refused
 * rather than dropped.
 */
export function stackProviderArgs(): aws.ProviderArgs {
  const settings = aws.config as unknown as Record<string, unknown>;
  const known = new Set(Object.keys(settings));
  // Pulumi's runtime knows which keys are secret (internal API); without it, every inherited value is kept secret.
  const isConfigSecret = (pulumi.runtime as unknown as { isConfigSecret?: (key: string) => boolean }).isConfigSecret;
  const args: Record<string, unknown> = {};
  for (const full of Object.keys(pulumi.runtime.allConfig()).sort()) {
    if (!full.startsWith('aws:')) continue;
    const key = full.slice('aws:'.length);
    if (key === 'region') continue;
    if (!known.has(key)) {
      throw new pulumi.RunError(`${full} is not a setting of the AWS provider, so the program cannot pass it on to the health check's provider: remove it (pulumi config rm ${full}) or correct its name`);
    }
    let value: unknown;
    try {
      value = settings[key];
    } catch {
      // (Pulumi's own message would quote the value, which may be a secret.)
      throw new pulumi.RunError(`${full} does not have the form the AWS provider takes (JSON for lists and objects, true/false, a number): correct it with pulumi config set --path`);
    }
    if (value === undefined) continue;
    args[key] = !isConfigSecret || isConfigSecret(full) ? pulumi.secret(value) : value;
  }
  return args as aws.ProviderArgs;
}

/**
 * For the plan's leak check: the health check's provider may hold the stack's own aws: secrets (aws:secretKey,
 * aws:token…), each in the input of the same name, and nothing else. (The plan names an invented secret by its
 * key without the namespace: aws:secretKey's is `secretKey`.)
 */
const PROVIDER_SECRET_SINKS: SecretSink[] = Object.keys(aws.config)
  .filter((key) => key !== 'region')
  .map((key) => ({ input: `pulumi:providers:aws.${key}`, only: [key] }));
/**
 * The only resource inputs that may hold the token or the webhook secret (the plan's leak check); besides them,
 * the health check's provider holds the stack's own aws: secrets.
 */
export const AWS_SECRET_SINKS: SecretSink[] = [{ input: 'aws:secretsmanager/secretVersion:SecretVersion.secretString' }, ...PROVIDER_SECRET_SINKS];

/** The alarms on the host's figures (put-host-metrics), with GCP's and DigitalOcean's thresholds. */
export const HOST_ALARMS = [
  { key: 'disk', metric: 'disk_used_percent', threshold: 85, what: 'a data disk above 85% full', fix: 'Raise dataDiskSizeGb and pulumi up (the filesystem grows at the next boot).' },
  { key: 'memory', metric: 'mem_used_percent', threshold: 90, what: 'memory above 90%', fix: 'Choose a larger instance type (size).' },
] as const;

/** The bridge's log line for each event that became a dead letter (bridge/src/delivery). */
export const DEAD_LETTER_LOG_LINE = 'webhook delivery: dead letter';
/** Where this program's own metrics go (the certificate's days left, the dead letters). */
export const METRIC_NAMESPACE = 'scim-bridge';
/**
 * The certificate check: a small scheduled Lambda function (no dependencies: Node's tls module) that connects to
 * https://<domain>, reads the served certificate's expiry and publishes the days left as a CloudWatch metric.
 * Route 53's health check cannot see a certificate's expiry, and a CloudWatch Synthetics canary would bring a
 * browser runtime, an S3 bucket for its artifacts and more permissions for the same number.
 */
export function certificateCheckSource(): string {
  return [
    "import tls from 'node:tls';",
    "import { CloudWatchClient, PutMetricDataCommand } from '@aws-sdk/client-cloudwatch';",
    'const cloudwatch = new CloudWatchClient({});',
    'function daysLeft(host) {',
    '  return new Promise((resolve, reject) => {',
    '    const socket = tls.connect({ host, port: 443, servername: host, timeout: 10000 }, () => {',
    '      const cert = socket.getPeerCertificate();',
    '      socket.end();',
    "      if (!cert || !cert.valid_to) return reject(new Error('no certificate'));",
    '      resolve((Date.parse(cert.valid_to) - Date.now()) / 86400000);',
    '    });',
    "    socket.on('timeout', () => socket.destroy(new Error('timed out')));",
    "    socket.on('error', reject);",
    '  });',
    '}',
    'export async function handler() {',
    '  const domain = process.env.DOMAIN;',
    '  const days = await daysLeft(domain);',
    '  await cloudwatch.send(new PutMetricDataCommand({',
    '    Namespace: process.env.NAMESPACE,',
    "    MetricData: [{ MetricName: 'CertificateDaysLeft', Dimensions: [{ Name: 'Domain', Value: domain }], Value: days, Unit: 'None' }],",
    '  }));',
    '  return { domain, days };',
    '}',
    '',
  ].join('\n');
}

/** An IAM policy document, as JSON. */
function policy(statements: pulumi.Input<Record<string, unknown>>[]): pulumi.Output<string> {
  return pulumi.jsonStringify({ Version: '2012-10-17', Statement: statements });
}

function trustedBy(service: pulumi.Input<string>): pulumi.Output<string> {
  return policy([{ Effect: 'Allow', Principal: { Service: service }, Action: 'sts:AssumeRole' }]);
}

export class AwsBridge extends pulumi.ComponentResource implements BridgeOutputs {
  readonly ipAddress: pulumi.Output<string>;
  readonly baseUrl: pulumi.Output<string>;
  readonly tokenReference: pulumi.Output<string>;
  readonly appTokenReference: pulumi.Output<string>;

  constructor(name: string, args: AwsBridgeArgs, opts?: pulumi.ComponentResourceOptions) {
    if (XEN_FAMILIES.test(args.size)) {
      throw new pulumi.RunError(
        `scim-bridge:size "${args.size}" is a Xen instance type: the host finds its data volume as an NVMe device, which only Nitro types have; use one such as t3.small, t3a.small or t4g.small`,
      );
    }
    // Before anything is registered: a region where the health check's alarm cannot work, or an aws: setting
    // that its provider could not carry, is refused here.
    const healthCheckRegion = healthCheckRegionOf(args.region);
    const healthCheckProvider = { ...stackProviderArgs(), region: healthCheckRegion };
    super('scim-bridge:aws:Bridge', name, {}, opts);
    const parent = { parent: this };
    const { region, availabilityZone } = args;
    // The partition (aws, aws-us-gov, aws-cn) and its DNS suffix, as the stack's provider sees them: every ARN,
    // service principal and endpoint below is built from them.
    const partition = aws.getPartitionOutput({}, parent);
    const tags = (role: string) => ({ Name: `${name}-${role}`, app: 'scim-bridge', 'scim-bridge': name });

    // A network of its own, so nothing depends on (or is opened by) the account's default VPC.
    const vpc = new aws.ec2.Vpc(`${name}-vpc`, { cidrBlock: '10.81.0.0/24', enableDnsSupport: true, enableDnsHostnames: true, tags: tags('vpc') }, parent);
    const subnet = new aws.ec2.Subnet(
      `${name}-subnet`,
      { vpcId: vpc.id, availabilityZone, cidrBlock: '10.81.0.0/28', mapPublicIpOnLaunch: false, tags: tags('subnet') },
      parent,
    );
    const gateway = new aws.ec2.InternetGateway(`${name}-igw`, { vpcId: vpc.id, tags: tags('igw') }, parent);
    const routes = new aws.ec2.RouteTable(`${name}-routes`, { vpcId: vpc.id, routes: [{ cidrBlock: '0.0.0.0/0', gatewayId: gateway.id }], tags: tags('routes') }, parent);
    const routesAssociation = new aws.ec2.RouteTableAssociation(`${name}-routes`, { subnetId: subnet.id, routeTableId: routes.id }, parent);

    // Descriptions here take letters, digits, spaces and ._-:/()#,@[]+=&;{}!$* only (no apostrophe).
    const ingress: aws.types.input.ec2.SecurityGroupIngress[] = [
      { description: 'HTTPS for the IdP', protocol: 'tcp', fromPort: 443, toPort: 443, cidrBlocks: ['0.0.0.0/0'] },
      { description: 'HTTP for ACME challenges and the redirect to HTTPS', protocol: 'tcp', fromPort: 80, toPort: 80, cidrBlocks: ['0.0.0.0/0'] },
    ];
    if (args.adminSourceRanges.length) {
      // IPv6 ranges are kept in the rule, but this VPC has no IPv6: only IPv4 ranges can reach the host.
      const v4 = args.adminSourceRanges.filter((r) => !r.includes(':'));
      const v6 = args.adminSourceRanges.filter((r) => r.includes(':'));
      ingress.push({ description: 'SSH from the admin ranges', protocol: 'tcp', fromPort: 22, toPort: 22, ...(v4.length ? { cidrBlocks: v4 } : {}), ...(v6.length ? { ipv6CidrBlocks: v6 } : {}) });
    }
    const firewall = new aws.ec2.SecurityGroup(
      `${name}-host`,
      {
        vpcId: vpc.id,
        description: 'scim-bridge host: tcp 80/443 from anywhere, SSH from the admin ranges only',
        ingress,
        egress: [{ description: 'Packages, images, ACME, AWS APIs, webhooks', protocol: '-1', fromPort: 0, toPort: 0, cidrBlocks: ['0.0.0.0/0'] }],
        tags: tags('host'),
      },
      parent,
    );

    // The static address sits on a network interface of its own, associated before any instance exists: the
    // host has its public address from its first boot (cloud-init installs packages right away), and a new
    // instance takes over the interface, its address and its security group unchanged.
    const nic = new aws.ec2.NetworkInterface(
      `${name}-nic`,
      { subnetId: subnet.id, securityGroups: [firewall.id], description: 'scim-bridge host: its address outlives the instance', tags: tags('nic') },
      parent,
    );
    const eip = new aws.ec2.Eip(`${name}-ip`, { domain: 'vpc', tags: tags('ip') }, parent);
    const eipAssociation = new aws.ec2.EipAssociation(
      `${name}-ip`,
      { allocationId: eip.allocationId, networkInterfaceId: nic.id },
      // Associating an address needs the VPC's internet gateway.
      { parent: this, dependsOn: [gateway] },
    );

    const logGroup = new aws.cloudwatch.LogGroup(`${name}-logs`, { name: `/scim-bridge/${args.domain}`, retentionInDays: 30, tags: tags('logs') }, parent);

    // The token in clear: only in Secrets Manager (for operators) and Pulumi's encrypted state. The host gets its
    // hash and no access to this secret. Secret names are generated (name-<random>): a deleted secret keeps its
    // name for its recovery window, which would block a stack stood up again within it.
    const token = bridgeToken(name, args.token, this);
    const tokenSecret = new aws.secretsmanager.Secret(
      `${name}-token`,
      { description: `scim-bridge ${args.domain}: the IdP's bearer token`, recoveryWindowInDays: 7, tags: tags('token') },
      parent,
    );
    new aws.secretsmanager.SecretVersion(`${name}-token`, { secretId: tokenSecret.id, secretString: token }, parent);
    // The application API's token, the same way (generated; the downstream application reads it from here).
    const appToken = bridgeToken(name, undefined, this, 'app-token');
    const appTokenSecret = new aws.secretsmanager.Secret(
      `${name}-app-token`,
      { description: `scim-bridge ${args.domain}: the application API's token`, recoveryWindowInDays: 7, tags: tags('app-token') },
      parent,
    );
    new aws.secretsmanager.SecretVersion(`${name}-app-token`, { secretId: appTokenSecret.id, secretString: appToken }, parent);

    // What the host needs from its first boot, besides its address and route: its permissions and its secret.
    const neededAtBoot: pulumi.Resource[] = [];
    // The hashes the bridge accepts (two during a rotation), where the host reads them every minute: a rotation
    // puts a new version of this secret, never a new instance.
    const tokenHashesSecret = new aws.secretsmanager.Secret(
      `${name}-token-sha256`,
      { description: `scim-bridge ${args.domain}: the SHA-256 of each accepted IdP token, read by the host every minute`, recoveryWindowInDays: 7, tags: tags('token-sha256') },
      parent,
    );
    neededAtBoot.push(
      new aws.secretsmanager.SecretVersion(`${name}-token-sha256`, { secretId: tokenHashesSecret.id, secretString: acceptedTokenHashes(token, args.previousToken) }, parent),
    );
    let webhookSecret: aws.secretsmanager.Secret | undefined;
    if (args.webhook) {
      webhookSecret = new aws.secretsmanager.Secret(
        `${name}-webhook-secret`,
        { description: `scim-bridge ${args.domain}: the webhook signing secret, read by the host at start`, recoveryWindowInDays: 7, tags: tags('webhook-secret') },
        parent,
      );
      neededAtBoot.push(new aws.secretsmanager.SecretVersion(`${name}-webhook-secret`, { secretId: webhookSecret.id, secretString: pulumi.secret(args.webhook.secret) }, parent));
    }
    // The Google Workspace connector's key, the same way: a new key is a new version, never a new instance.
    let googleKey: aws.secretsmanager.Secret | undefined;
    if (args.googleWorkspace) {
      googleKey = new aws.secretsmanager.Secret(
        `${name}-google-credentials`,
        { description: `scim-bridge ${args.domain}: the Google Workspace connector's service account key, read by the host every minute`, recoveryWindowInDays: 7, tags: tags('google-credentials') },
        parent,
      );
      neededAtBoot.push(new aws.secretsmanager.SecretVersion(`${name}-google-credentials`, { secretId: googleKey.id, secretString: pulumi.secret(args.googleWorkspace.key) }, parent));
    }

    // The metrics token's hash, read by the host every minute like the token's: a new token changes this secret's
    // version, never the instance.
    let metricsHashSecret: aws.secretsmanager.Secret | undefined;
    if (args.metricsToken !== undefined) {
      metricsHashSecret = new aws.secretsmanager.Secret(
        `${name}-metrics-token-sha256`,
        { description: `scim-bridge ${args.domain}: the SHA-256 of the token accepted on /metrics, read by the host every minute`, recoveryWindowInDays: 7, tags: tags('metrics-token-sha256') },
        parent,
      );
      neededAtBoot.push(
        new aws.secretsmanager.SecretVersion(`${name}-metrics-token-sha256`, { secretId: metricsHashSecret.id, secretString: tokenSha256(pulumi.output(args.metricsToken)) }, parent),
      );
    }

    // The host's role: write its log group's streams and its metrics, read the accepted token hashes and the webhook
    // secret; nothing else.
    const role = new aws.iam.Role(
      `${name}-host`,
      {
        description: `scim-bridge ${args.domain} host: writes its container logs and disk and memory metrics, reads the accepted token hashes${args.webhook ? ' and the webhook secret' : ''}`,
        // (ec2.amazonaws.com.cn in the China regions.)
        assumeRolePolicy: trustedBy(pulumi.interpolate`ec2.${partition.dnsSuffix}`),
        tags: tags('host'),
      },
      parent,
    );
    const statements: pulumi.Input<Record<string, unknown>>[] = [
      { Sid: 'ContainerLogs', Effect: 'Allow', Action: ['logs:CreateLogStream', 'logs:PutLogEvents'], Resource: pulumi.interpolate`${logGroup.arn}:*` },
    ];
    statements.push({ Sid: 'TokenHashes', Effect: 'Allow', Action: 'secretsmanager:GetSecretValue', Resource: tokenHashesSecret.arn });
    if (webhookSecret) {
      statements.push({ Sid: 'WebhookSecret', Effect: 'Allow', Action: 'secretsmanager:GetSecretValue', Resource: webhookSecret.arn });
    }
    if (metricsHashSecret) {
      statements.push({ Sid: 'MetricsTokenHash', Effect: 'Allow', Action: 'secretsmanager:GetSecretValue', Resource: metricsHashSecret.arn });
    }
    // put-host-metrics: PutMetricData has no resource to name; the condition keeps it to the program's namespace.
    statements.push({ Sid: 'HostMetrics', Effect: 'Allow', Action: 'cloudwatch:PutMetricData', Resource: '*', Condition: { StringEquals: { 'cloudwatch:namespace': METRIC_NAMESPACE } } });
    if (googleKey) statements.push({ Sid: 'GoogleCredentials', Effect: 'Allow', Action: 'secretsmanager:GetSecretValue', Resource: googleKey.arn });
    // image: build: the checkout's image in the stack's ECR repository, which the role may pull from (infra/aws/registry.ts).
    const built = args.image === BUILD_IMAGE ? awsBuiltImage(name, { architecture: architectureOf(args.size), tags: tags('images') }, parent) : undefined;
    if (built) statements.push(...built.statements);
    const rolePolicy = new aws.iam.RolePolicy(`${name}-host`, { role: role.name, policy: policy(statements) }, parent);
    const profile = new aws.iam.InstanceProfile(`${name}-host`, { role: role.name, tags: tags('host') }, parent);
    neededAtBoot.push(rolePolicy);

    // The data volume is its own resource: replacing the instance (a new image, new settings) re-attaches it,
    // and `pulumi destroy` leaves it (retainOnDelete) so the directory survives a teardown. It is protected too:
    // a change that would replace it (another availability zone, a smaller size, no encryption) fails the update
    // instead of swapping the directory for a blank volume; moving it is a deliberate act (see the README).
    // dataDiskImport adopts a volume kept by an earlier destroy: current Pulumi CLIs import it and then update what
    // differs (older ones refused any difference); `protect` makes a difference that needs a new volume fail. No input is ignored (ignoreChanges): the zone, size, type and encryption are the volume itself,
    // and its tags are how the snapshot policy finds it; a difference must surface, not be kept silently.
    const dataTag = { [SNAPSHOT_TAG]: args.domain };
    const volume = new aws.ebs.Volume(
      `${name}-data`,
      { availabilityZone, size: args.dataDiskSizeGb, type: 'gp3', encrypted: true, tags: { ...tags('data'), ...dataTag } },
      { parent: this, retainOnDelete: true, protect: true, ...(args.dataDiskImport ? { import: args.dataDiskImport } : {}) },
    );
    this.snapshots(name, dataTag, tags, partition.partition);

    // Debian's newest Debian 12 image, taken when the host is created: a newer one published by Debian does not
    // replace a running host by itself (ignoreChanges below); the next replacement (a new bridge image or
    // setting) boots the newest. Meanwhile the host installs security updates itself (infra/host: unattended-upgrades).
    const architecture = architectureOf(args.size);
    const ami = aws.ec2.getAmiOutput(
      {
        mostRecent: true,
        owners: [DEBIAN_AMI_OWNER],
        filters: [
          { name: 'name', values: [`debian-12-${architecture === 'arm64' ? 'arm64' : 'amd64'}-*`] },
          { name: 'architecture', values: [architecture] },
          { name: 'virtualization-type', values: ['hvm'] },
          { name: 'root-device-type', values: ['ebs'] },
        ],
      },
      parent,
    );

    const userData = pulumi
      .all([
        tokenSha256(appToken),
        volume.id,
        logGroup.name,
        tokenHashesSecret.arn,
        webhookSecret ? webhookSecret.arn : pulumi.output(''),
        partition.dnsSuffix,
        googleKey ? googleKey.arn : pulumi.output(''),
        built ? built.image : pulumi.output(args.image),
        built ? built.repositoryUrl : pulumi.output(''),
        metricsHashSecret ? metricsHashSecret.arn : pulumi.output(''),
      ])
      .apply(([appHash, volumeId, logGroupName, tokenHashesArn, webhookSecretArn, dnsSuffix, googleKeyArn, image, repositoryUrl, metricsHashArn]) => {
        const metricsUnits = hostMetricsUnits(MOUNT_POINT);
        // Secrets' ARNs, never their values: a rotation leaves the user-data (and the instance) as it is.
        const secrets: HostSecret[] = [
          { env: 'SCIM_BRIDGE_TOKEN_SHA256', command: `aws_secret ${tokenHashesArn}` },
          ...(webhookSecretArn ? [{ env: 'SCIM_BRIDGE_WEBHOOK_SECRET', command: `aws_secret ${webhookSecretArn}` }] : []),
          ...(googleKeyArn ? [{ env: GOOGLE_CREDENTIALS_SETTING, command: `aws_secret ${googleKeyArn}` }] : []),
          ...(metricsHashArn ? [{ env: 'SCIM_BRIDGE_METRICS_TOKEN_SHA256', command: `aws_secret ${metricsHashArn}` }] : []),
        ];
        const rendered = renderUserData({
          ...bridgeHostSpec(args, { appToken: appHash }),
          image,
          ...(built ? built.host(repositoryUrl) : {}),
          dataDevice: nvmeDevicePath(volumeId),
          logging: {
            driver: 'awslogs',
            options: {
              'awslogs-region': region,
              'awslogs-group': logGroupName,
              'awslogs-create-group': 'false',
              tag: '{{.Name}}',
              // A slow or unreachable CloudWatch, or a role not yet usable at first boot, never blocks the bridge:
              // its lines wait in a buffer (dropped past 4 MB) and the log stream is created when the first one
              // is sent, not before the container may start.
              mode: 'non-blocking',
              'max-buffer-size': '4m',
            },
          },
          secrets,
          // One copy of the functions that call AWS on the host, for fetch-secrets and put-host-metrics.
          secretFunctions: `# shellcheck source=/dev/null\n. "\${HOST_AWS_FUNCTIONS:-${AWS_FUNCTIONS_FILE}}"`,
          // EC2 takes 16 KB of user-data: the scripts travel gzipped (the host's own and these two).
          compressScripts: true,
          extraFiles: [
            { path: AWS_FUNCTIONS_FILE, permissions: '0644', encoding: 'gz+b64', content: gzipBase64(awsFunctions(region, dnsSuffix, args.domain)) },
            { path: HOST_METRICS_SCRIPT, permissions: '0755', encoding: 'gz+b64', content: gzipBase64(hostMetricsScript()) },
            { path: `/etc/systemd/system/${HOST_METRICS_SERVICE}`, permissions: '0644', content: metricsUnits.service },
          ],
          extraUnits: { [HOST_METRICS_TIMER]: metricsUnits.timer },
        });
        if (Buffer.byteLength(rendered) > USER_DATA_LIMIT) {
          throw new pulumi.RunError(`the host's user-data is ${Buffer.byteLength(rendered)} bytes; EC2 takes at most ${USER_DATA_LIMIT} (is acmeCaRoot a whole bundle? give the one root)`);
        }
        return rendered;
      });

    const instance = new aws.ec2.Instance(
      `${name}-host`,
      {
        ami: ami.id,
        instanceType: args.size,
        primaryNetworkInterface: { networkInterfaceId: nic.id },
        iamInstanceProfile: profile.name,
        ...(args.keyName ? { keyName: args.keyName } : {}),
        // IMDSv2 only, and not reachable from a container on a bridged network (one hop).
        metadataOptions: { httpEndpoint: 'enabled', httpTokens: 'required', httpPutResponseHopLimit: 1 },
        rootBlockDevice: { encrypted: true, volumeType: 'gp3', volumeSize: 16, deleteOnTermination: true, tags: tags('root') },
        userData,
        // Every setting the host runs with is in its user-data: a change means a new instance.
        userDataReplaceOnChange: true,
        maintenanceOptions: { autoRecovery: 'default' },
        tags: tags('host'),
      },
      // The old instance goes first, since the volume and the network interface attach to one instance at a time.
      // The new one boots with its address, its route out, its permissions and its secret in place.
      { parent: this, deleteBeforeReplace: true, ignoreChanges: ['ami'], dependsOn: [eipAssociation, routesAssociation, ...neededAtBoot] },
    );
    new aws.ec2.VolumeAttachment(
      `${name}-data`,
      { instanceId: instance.id, volumeId: volume.id, deviceName: DATA_DEVICE_NAME, stopInstanceBeforeDetaching: true },
      parent,
    );

    // The host itself comes back on other hardware when AWS's side of it fails.
    new aws.cloudwatch.MetricAlarm(
      `${name}-recover`,
      {
        name: `scim-bridge ${args.domain} host recovery`,
        alarmDescription: `Recovers the scim-bridge host of ${args.domain} (same id, address and volumes) when its system status check fails`,
        namespace: 'AWS/EC2',
        metricName: 'StatusCheckFailed_System',
        dimensions: { InstanceId: instance.id },
        statistic: 'Maximum',
        period: 60,
        evaluationPeriods: 2,
        threshold: 1,
        comparisonOperator: 'GreaterThanOrEqualToThreshold',
        alarmActions: [pulumi.interpolate`arn:${partition.partition}:automate:${region}:ec2:recover`],
        tags: tags('recover'),
      },
      parent,
    );

    const zoneId = /^Z[A-Z0-9]{5,32}$/.test(args.dnsZone) ? pulumi.output(args.dnsZone) : aws.route53.getZoneOutput({ name: args.dnsZone, privateZone: false }, parent).zoneId;
    new aws.route53.Record(`${name}-a`, { zoneId, name: args.domain, type: 'A', ttl: 300, records: [eip.publicIp] }, parent);
    if (args.acme.letsEncrypt) {
      new aws.route53.Record(`${name}-caa`, { zoneId, name: args.domain, type: 'CAA', ttl: 3600, records: ['0 issue "letsencrypt.org"'] }, parent);
    }

    this.healthCheck(name, args, tags, healthCheckProvider);
    this.alerts(name, args, tags, logGroup, partition.partition);

    this.ipAddress = eip.publicIp;
    this.baseUrl = pulumi.output(baseUrlOf(args.domain));
    const reference = (secret: aws.secretsmanager.Secret) =>
      pulumi.interpolate`Secrets Manager secret ${secret.arn}; print it with: aws secretsmanager get-secret-value --secret-id ${secret.arn} --query SecretString --output text --region ${region}`;
    this.tokenReference = reference(tokenSecret);
    this.appTokenReference = reference(appTokenSecret);
    this.registerOutputs({ ipAddress: this.ipAddress, baseUrl: this.baseUrl, tokenReference: this.tokenReference, appTokenReference: this.appTokenReference, instance: instance.id });
  }

  /** Daily snapshots of the data volume (Data Lifecycle Manager, which finds it by its tag), kept 14 days. */
  private snapshots(name: string, targetTags: Record<string, string>, tags: (role: string) => Record<string, string>, partition: pulumi.Output<string>): void {
    const parent = { parent: this };
    const role = new aws.iam.Role(
      `${name}-snapshots`,
      { description: 'scim-bridge: lets Data Lifecycle Manager snapshot the data volume', assumeRolePolicy: trustedBy('dlm.amazonaws.com'), tags: tags('snapshots') },
      parent,
    );
    const attachment = new aws.iam.RolePolicyAttachment(
      `${name}-snapshots`,
      { role: role.name, policyArn: pulumi.interpolate`arn:${partition}:iam::aws:policy/service-role/AWSDataLifecycleManagerServiceRole` },
      parent,
    );
    new aws.dlm.LifecyclePolicy(
      `${name}-snapshots`,
      {
        // DLM takes letters, digits, spaces, - and _ only here.
        description: 'scim-bridge data volume daily snapshots kept 14 days',
        executionRoleArn: role.arn,
        state: 'ENABLED',
        policyDetails: {
          resourceTypes: ['VOLUME'],
          targetTags,
          schedules: [
            {
              name: 'daily at 0300 UTC kept 14 days',
              createRule: { interval: 24, intervalUnit: 'HOURS', times: '03:00' },
              retainRule: { count: 14 },
              copyTags: true,
            },
          ],
        },
        tags: tags('snapshots'),
      },
      { parent: this, dependsOn: [attachment] },
    );
  }

  /**
   * The alerts in the stack's region, by email through a topic there (an alarm's action must be in its region):
   * the certificate within 14 days of expiry (a scheduled check, certificateCheckSource), and webhook dead letters
   * (a metric filter on the bridge's log line in the log group).
   */
  private alerts(name: string, args: AwsBridgeArgs, tags: (role: string) => Record<string, string>, logGroup: aws.cloudwatch.LogGroup, partition: pulumi.Output<string>): void {
    const parent = { parent: this };
    const topic = new aws.sns.Topic(`${name}-alerts-local`, { displayName: `scim-bridge ${args.domain}`, tags: tags('alerts') }, parent);
    new aws.sns.TopicSubscription(`${name}-alerts-local-email`, { topic: topic.arn, protocol: 'email', endpoint: args.alertEmail }, parent);

    const role = new aws.iam.Role(
      `${name}-certificate-check`,
      { description: `scim-bridge ${args.domain}: the certificate check publishes its metric and logs`, assumeRolePolicy: trustedBy('lambda.amazonaws.com'), tags: tags('certificate-check') },
      parent,
    );
    new aws.iam.RolePolicyAttachment(
      `${name}-certificate-check-logs`,
      { role: role.name, policyArn: pulumi.interpolate`arn:${partition}:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole` },
      parent,
    );
    new aws.iam.RolePolicy(
      `${name}-certificate-check`,
      {
        role: role.name,
        policy: policy([{ Sid: 'Metric', Effect: 'Allow', Action: 'cloudwatch:PutMetricData', Resource: '*', Condition: { StringEquals: { 'cloudwatch:namespace': METRIC_NAMESPACE } } }]),
      },
      parent,
    );
    const check = new aws.lambda.Function(
      `${name}-certificate-check`,
      {
        description: `scim-bridge ${args.domain}: days left on the served TLS certificate`,
        runtime: 'nodejs20.x',
        handler: 'index.handler',
        role: role.arn,
        timeout: 30,
        memorySize: 128,
        code: new pulumi.asset.AssetArchive({ 'index.mjs': new pulumi.asset.StringAsset(certificateCheckSource()) }),
        environment: { variables: { DOMAIN: args.domain, NAMESPACE: METRIC_NAMESPACE } },
        tags: tags('certificate-check'),
      },
      parent,
    );
    const schedule = new aws.cloudwatch.EventRule(`${name}-certificate-check`, { description: `scim-bridge ${args.domain}: check the certificate`, scheduleExpression: 'rate(6 hours)', tags: tags('certificate-check') }, parent);
    new aws.cloudwatch.EventTarget(`${name}-certificate-check`, { rule: schedule.name, arn: check.arn }, parent);
    new aws.lambda.Permission(`${name}-certificate-check`, { action: 'lambda:InvokeFunction', function: check.name, principal: 'events.amazonaws.com', sourceArn: schedule.arn }, parent);
    new aws.cloudwatch.MetricAlarm(
      `${name}-certificate`,
      {
        name: `scim-bridge ${args.domain} certificate expires soon`,
        alarmDescription: `The certificate of ${args.domain} expires in less than 14 days (Caddy renews at 30): check that ports 80/443 reach the instance and the A and CAA records, then read Caddy's logs (CloudWatch Logs group /scim-bridge/${args.domain}, stream scim-bridge-caddy). No data for a day means the check itself fails.`,
        namespace: METRIC_NAMESPACE,
        metricName: 'CertificateDaysLeft',
        dimensions: { Domain: args.domain },
        statistic: 'Minimum',
        period: 21600,
        evaluationPeriods: 4,
        datapointsToAlarm: 1,
        threshold: 14,
        comparisonOperator: 'LessThanThreshold',
        treatMissingData: 'breaching',
        alarmActions: [topic.arn],
        okActions: [topic.arn],
        tags: tags('certificate'),
      },
      parent,
    );

    new aws.cloudwatch.LogMetricFilter(
      `${name}-dead-letters`,
      {
        logGroupName: logGroup.name,
        pattern: `{ $.msg = "${DEAD_LETTER_LOG_LINE}" }`,
        metricTransformation: { name: 'DeadLetters', namespace: METRIC_NAMESPACE, value: '1', defaultValue: '0' },
      },
      parent,
    );
    new aws.cloudwatch.MetricAlarm(
      `${name}-dead-letters`,
      {
        name: `scim-bridge ${args.domain} webhook dead letters`,
        alarmDescription: `Events of scim-bridge ${args.domain} became webhook dead letters (GET /health lists them; POST /api/v1/dead-letters/replay sends them again once the receiver is fixed). Logs: CloudWatch Logs group /scim-bridge/${args.domain}.`,
        namespace: METRIC_NAMESPACE,
        metricName: 'DeadLetters',
        statistic: 'Sum',
        period: 300,
        evaluationPeriods: 1,
        threshold: 0,
        comparisonOperator: 'GreaterThanThreshold',
        treatMissingData: 'notBreaching',
        alarmActions: [topic.arn],
        tags: tags('dead-letters'),
      },
      parent,
    );

    // The host's own figures (put-host-metrics, every minute): as on GCP, a disk above 85% and memory above 90%,
    // held for five minutes. No data (the host replaced or down) changes nothing: the down alarm speaks for that.
    for (const alarm of HOST_ALARMS) {
      new aws.cloudwatch.MetricAlarm(
        `${name}-${alarm.key}`,
        {
          name: `scim-bridge ${args.domain} ${alarm.what}`,
          alarmDescription: `The host ${name}-host of scim-bridge ${args.domain} has ${alarm.what}. ${alarm.fix} Logs: CloudWatch Logs group /scim-bridge/${args.domain}.`,
          namespace: METRIC_NAMESPACE,
          metricName: alarm.metric,
          dimensions: { Domain: args.domain },
          statistic: 'Minimum',
          period: 60,
          evaluationPeriods: 5,
          threshold: alarm.threshold,
          comparisonOperator: 'GreaterThanThreshold',
          treatMissingData: 'missing',
          alarmActions: [topic.arn],
          okActions: [topic.arn],
          tags: tags(alarm.key),
        },
        parent,
      );
    }
  }

  /**
   * Route 53 checks https://<domain>/healthz from several regions; its metric is published in the partition's
   * Route 53 region only (HEALTH_CHECK_REGIONS), so the alarm and the SNS topic it emails through are created
   * there, with a provider of their own.
   */
  private healthCheck(name: string, args: AwsBridgeArgs, tags: (role: string) => Record<string, string>, providerArgs: aws.ProviderArgs & { region: string }): void {
    const parent = { parent: this };
    // An explicit provider reads none of the stack's aws: settings: it is given all of them (but the region).
    const provider = new aws.Provider(`${name}-${providerArgs.region}`, providerArgs, parent);
    const there = { parent: this, provider };

    const check = new aws.route53.HealthCheck(
      `${name}-health`,
      {
        type: 'HTTPS',
        fqdn: args.domain,
        port: 443,
        resourcePath: '/healthz',
        enableSni: true,
        requestInterval: 30,
        failureThreshold: 3,
        measureLatency: false,
        tags: tags('health'),
      },
      parent,
    );
    const topic = new aws.sns.Topic(`${name}-alerts`, { displayName: `scim-bridge ${args.domain}`, tags: tags('alerts') }, there);
    new aws.sns.TopicSubscription(`${name}-alerts-email`, { topic: topic.arn, protocol: 'email', endpoint: args.alertEmail }, there);
    new aws.cloudwatch.MetricAlarm(
      `${name}-down`,
      {
        name: `scim-bridge ${args.domain} is down`,
        alarmDescription: `https://${args.domain}/healthz fails from Route 53's checkers, so the IdP cannot provision. Look at the instance ${name}-host in ${args.region} and its container logs (CloudWatch Logs group /scim-bridge/${args.domain}).`,
        namespace: 'AWS/Route53',
        metricName: 'HealthCheckStatus',
        dimensions: { HealthCheckId: check.id },
        statistic: 'Minimum',
        period: 60,
        evaluationPeriods: 3,
        threshold: 1,
        comparisonOperator: 'LessThanThreshold',
        treatMissingData: 'breaching',
        alarmActions: [topic.arn],
        okActions: [topic.arn],
        tags: tags('down'),
      },
      there,
    );
  }
}
