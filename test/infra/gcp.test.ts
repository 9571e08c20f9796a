/**
 * The gcp stack, evaluated offline with Pulumi's mocks (the same run as `npm run plan -- --stack gcp`):
 * assertions on the real inputs of every resource the program declares. The host's log agent script and its
 * unit are also checked with the real tools (shellcheck, cloud-init's schema, systemd-analyze where it runs).
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { MockMonitor } from '@pulumi/pulumi/runtime/mocks';
import { parse } from 'yaml';
import { byAddressFamily, GCP_APIS, GCP_DISK_IGNORED } from '../../infra/gcp';
import { GCP_IMAGE_API } from '../../infra/gcp/registry';
import { GCP_LOG_RECEIVER, LOG_AGENT_SCRIPT, LOG_AGENT_UNIT, OPS_AGENT_CONFIG } from '../../infra/gcp/logging';
import { SECRET_ID, secretId, SERVICE_ACCOUNT_ID, serviceAccountId } from '../../infra/gcp/names';
import { inventedSecret, plan, PlanResult } from '../../tools/plan';
import { all, one, SECRET_SIG_KEY, sha256 } from '../helpers/plan';

type Any = any; // eslint-disable-line @typescript-eslint/no-explicit-any
const GCP_STACK_FILE = path.join(__dirname, '..', '..', 'stacks', 'Pulumi.gcp.yaml');

function userData(result: PlanResult): string {
  return one(result, 'gcp:compute/instance:Instance').in.metadata['user-data'];
}

let base: PlanResult;
beforeAll(async () => {
  base = await plan('gcp');
});

describe('the gcp stack (stacks/Pulumi.gcp.yaml)', () => {
  test('declares every resource the target needs, inside one scim-bridge:gcp:Bridge', () => {
    const types = new Set(base.raw.map((r) => r.type));
    for (const t of [
      'scim-bridge:gcp:Bridge',
      'gcp:compute/network:Network',
      'gcp:compute/subnetwork:Subnetwork',
      'gcp:compute/address:Address',
      'gcp:compute/firewall:Firewall',
      'gcp:serviceaccount/account:Account',
      'gcp:projects/iAMMember:IAMMember',
      'gcp:secretmanager/secret:Secret',
      'gcp:secretmanager/secretVersion:SecretVersion',
      'gcp:compute/disk:Disk',
      'gcp:compute/resourcePolicy:ResourcePolicy',
      'gcp:compute/diskResourcePolicyAttachment:DiskResourcePolicyAttachment',
      'gcp:compute/instance:Instance',
      'gcp:dns/recordSet:RecordSet',
      'gcp:monitoring/notificationChannel:NotificationChannel',
      'gcp:monitoring/uptimeCheckConfig:UptimeCheckConfig',
      'gcp:monitoring/alertPolicy:AlertPolicy',
      'random:index/randomPassword:RandomPassword',
      'time:index/sleep:Sleep',
    ]) {
      expect(types).toContain(t);
    }
    expect(base.leaks).toEqual([]);
  });

  test('the world reaches tcp 80 and 443 only; SSH is closed unless admin ranges are configured', async () => {
    const rules = all(base, 'gcp:compute/firewall:Firewall');
    expect(rules.map((r) => r.name)).toEqual(['scim-bridge-https']);
    const [https] = rules;
    expect(https.in).toMatchObject({ direction: 'INGRESS', sourceRanges: ['0.0.0.0/0'], allows: [{ protocol: 'tcp', ports: ['80', '443'] }] });
    // The VM lives in a network of its own, so GCP's default network rules (SSH, RDP, ICMP from anywhere) do
    // not apply to it.
    const network = one(base, 'gcp:compute/network:Network');
    expect(network.in.autoCreateSubnetworks).toBe(false);
    expect(https.in.network).toBe(`${network.name}-id`);
    const instance = one(base, 'gcp:compute/instance:Instance');
    expect(instance.in.networkInterfaces[0].subnetwork).toBe(`${one(base, 'gcp:compute/subnetwork:Subnetwork').name}-id`);
    expect(instance.in.tags).toEqual(https.in.targetTags);

    const withSsh = await plan('gcp', { config: { 'scim-bridge:adminSourceRanges': ['203.0.113.0/24', '198.51.100.7/32'] } });
    const ssh = one(withSsh, 'gcp:compute/firewall:Firewall', 'scim-bridge-ssh');
    expect(ssh.in).toMatchObject({ sourceRanges: ['203.0.113.0/24', '198.51.100.7/32'], allows: [{ protocol: 'tcp', ports: ['22'] }] });
    for (const rule of all(withSsh, 'gcp:compute/firewall:Firewall')) {
      if (rule.in.sourceRanges.includes('0.0.0.0/0')) expect(rule.in.allows).toEqual([{ protocol: 'tcp', ports: ['80', '443'] }]);
    }
  });

  test('the A record points at the static address the VM uses, in the configured zone; CAA allows Let\'s Encrypt', () => {
    const address = one(base, 'gcp:compute/address:Address');
    expect(address.in).toMatchObject({ addressType: 'EXTERNAL', region: 'europe-west1' });
    const records = all(base, 'gcp:dns/recordSet:RecordSet');
    const a = records.find((r) => r.in.type === 'A')!;
    expect(a.in).toMatchObject({ managedZone: 'example-com', name: 'scim.example.com.', rrdatas: ['203.0.113.10'] });
    const instance = one(base, 'gcp:compute/instance:Instance');
    expect(instance.in.networkInterfaces[0].accessConfigs[0].natIp).toBe('203.0.113.10');
    const caa = records.find((r) => r.in.type === 'CAA')!;
    expect(caa.in).toMatchObject({ managedZone: 'example-com', name: 'scim.example.com.', rrdatas: ['0 issue "letsencrypt.org"'] });
    expect(base.plan.outputs.ipAddress).toBe('203.0.113.10');
  });

  test('the data disk is its own resource, attached to the VM and kept when the VM or the stack goes', () => {
    const disk = one(base, 'gcp:compute/disk:Disk');
    expect(disk.in).toMatchObject({ zone: 'europe-west1-b', size: 10, type: 'pd-balanced' });
    expect(disk.options.retainOnDelete).toBe(true);
    expect(disk.options.protect).toBe(true);
    const instance = one(base, 'gcp:compute/instance:Instance');
    expect(instance.in.attachedDisks).toEqual([{ source: `${disk.name}-id`, deviceName: 'scim-bridge-data', mode: 'READ_WRITE' }]);
    expect(instance.in.bootDisk.autoDelete).toBe(true);
    expect(instance.in.bootDisk.source).toBeUndefined();
    // The host formats only a blank disk and finds it by its device name.
    expect(userData(base)).toContain('prepare-disk /dev/disk/by-id/google-scim-bridge-data /srv/scim-bridge 10001');
    // Snapshotted daily; the snapshots outlive the disk.
    const policy = one(base, 'gcp:compute/resourcePolicy:ResourcePolicy');
    expect(policy.in.snapshotSchedulePolicy.retentionPolicy).toEqual({ maxRetentionDays: 14, onSourceDiskDelete: 'KEEP_AUTO_SNAPSHOTS' });
    expect(one(base, 'gcp:compute/diskResourcePolicyAttachment:DiskResourcePolicyAttachment').in).toMatchObject({ disk: disk.name, name: policy.name });
  });

  test('a new image replaces the VM (old one first) and leaves the disk, address and records untouched', async () => {
    const next = await plan('gcp', { config: { 'scim-bridge:image': 'ghcr.io/scim-bridge/scim-bridge:0.2.0' } });
    const before = one(base, 'gcp:compute/instance:Instance');
    const after = one(next, 'gcp:compute/instance:Instance');
    expect(userData(next)).toContain('ghcr.io/scim-bridge/scim-bridge:0.2.0');
    expect(userData(next)).not.toContain('scim-bridge:0.1.0');
    expect(after.in.metadata['user-data']).not.toBe(before.in.metadata['user-data']);
    // user-data lives in metadata: a change there replaces the VM, deleting the old one first because the disk
    // and the address attach to one VM at a time.
    expect(after.options).toMatchObject({ deleteBeforeReplace: true, replaceOnChanges: ['metadata'] });
    for (const type of ['gcp:compute/disk:Disk', 'gcp:compute/address:Address', 'gcp:dns/recordSet:RecordSet', 'gcp:secretmanager/secret:Secret']) {
      expect(all(next, type).map((r) => r.in)).toEqual(all(base, type).map((r) => r.in));
    }
  });

  test('dataDiskImport adopts the kept disk under its own name; without it the disk is named by Pulumi', async () => {
    expect(one(base, 'gcp:compute/disk:Disk').in.name).toBeUndefined();
    const adopted = await plan('gcp', { config: { 'scim-bridge:dataDiskImport': 'scim-bridge-data-1a2b3c4' } });
    const disk = one(adopted, 'gcp:compute/disk:Disk');
    expect(disk.in).toMatchObject({ name: 'scim-bridge-data-1a2b3c4', zone: 'europe-west1-b', size: 10, type: 'pd-balanced' });
    expect(disk.options.import).toBe('projects/my-gcp-project/zones/europe-west1-b/disks/scim-bridge-data-1a2b3c4');
  });

  test('the uptime check probes https://<domain>/healthz and alerts the configured email', () => {
    const check = one(base, 'gcp:monitoring/uptimeCheckConfig:UptimeCheckConfig');
    expect(check.in.monitoredResource).toEqual({ type: 'uptime_url', labels: { host: 'scim.example.com', project_id: 'my-gcp-project' } });
    expect(check.in.httpCheck).toMatchObject({ path: '/healthz', port: 443, useSsl: true, validateSsl: true });
    const channel = one(base, 'gcp:monitoring/notificationChannel:NotificationChannel');
    expect(channel.in).toMatchObject({ type: 'email', labels: { email_address: 'ops@example.com' } });
    const policies = all(base, 'gcp:monitoring/alertPolicy:AlertPolicy').filter((p) => ['scim-bridge-certificate', 'scim-bridge-down'].includes(p.name));
    expect(policies).toHaveLength(2);
    for (const p of policies) {
      expect(p.in.notificationChannels).toEqual([`projects/my-gcp-project/notificationChannels/${channel.name}`]);
      expect(p.in.conditions[0].conditionThreshold.filter).toContain(`metric.label.check_id="${check.name}-check-id"`);
    }
    const down = policies.find((p) => p.name === 'scim-bridge-down')!;
    expect(down.in.conditions[0].conditionThreshold.filter).toContain('uptime_check/check_passed');
    const certificate = policies.find((p) => p.name === 'scim-bridge-certificate')!.in.conditions[0].conditionThreshold;
    expect(certificate).toMatchObject({ comparison: 'COMPARISON_LT', thresholdValue: 14 });
    expect(certificate.filter).toContain('uptime_check/time_until_ssl_cert_expires');
  });

  test('alerts that reach a person: down, certificate, memory, disk and dead letters, each to the on-call email', () => {
    const channel = one(base, 'gcp:monitoring/notificationChannel:NotificationChannel');
    const policies = all(base, 'gcp:monitoring/alertPolicy:AlertPolicy');
    expect(policies.map((p) => p.name).sort()).toEqual(['scim-bridge-certificate', 'scim-bridge-dead-letters', 'scim-bridge-disk', 'scim-bridge-down', 'scim-bridge-memory']);
    for (const p of policies) expect(p.in.notificationChannels).toEqual([`projects/my-gcp-project/notificationChannels/${channel.name}`]);
    const condition = (name: string) => one(base, 'gcp:monitoring/alertPolicy:AlertPolicy', name).in.conditions[0].conditionThreshold;
    const instanceId = one(base, 'gcp:compute/instance:Instance').name;
    // The Ops Agent's host metrics of this VM (the agent sends them: hostmetrics on, roles/monitoring.metricWriter).
    expect(condition('scim-bridge-memory')).toMatchObject({ comparison: 'COMPARISON_GT', thresholdValue: 90, duration: '300s' });
    expect(condition('scim-bridge-memory').filter).toMatch(/^metric\.type="agent\.googleapis\.com\/memory\/percent_used" AND metric\.label\.state="used" AND resource\.type="gce_instance" AND resource\.label\.instance_id="\S+"$/);
    expect(condition('scim-bridge-disk')).toMatchObject({ comparison: 'COMPARISON_GT', thresholdValue: 85, duration: '300s' });
    expect(condition('scim-bridge-disk').filter).toContain('metric.type="agent.googleapis.com/disk/percent_used" AND metric.label.state="used"');
    expect(instanceId).toBe('scim-bridge-host');
    // Dead letters: the bridge's own log line, counted by a log-based metric; any one alerts.
    const metric = one(base, 'gcp:logging/metric:Metric');
    expect(metric.in.filter).toBe('logName="projects/my-gcp-project/logs/journald" AND jsonPayload.CONTAINER_NAME="scim-bridge" AND jsonPayload.MESSAGE:"webhook delivery: dead letter"');
    expect(metric.in.metricDescriptor).toEqual({ metricKind: 'DELTA', valueType: 'INT64', unit: '1' });
    expect(condition('scim-bridge-dead-letters')).toMatchObject({ comparison: 'COMPARISON_GT', thresholdValue: 0 });
    expect(condition('scim-bridge-dead-letters').filter).toContain(`metric.type="logging.googleapis.com/user/${metric.in.name}"`);
  });

  test('least privilege: a dedicated service account that can write logs and metrics and nothing else by default', () => {
    const account = one(base, 'gcp:serviceaccount/account:Account');
    const email = `${account.in.accountId}@my-gcp-project.iam.gserviceaccount.com`;
    const instance = one(base, 'gcp:compute/instance:Instance');
    expect(instance.in.serviceAccount.email).toBe(email);
    const grants = all(base, 'gcp:projects/iAMMember:IAMMember').map((m) => [m.in.role, m.in.member]);
    expect(grants).toEqual([
      ['roles/logging.logWriter', `serviceAccount:${email}`],
      ['roles/monitoring.metricWriter', `serviceAccount:${email}`],
    ]);
    // No access to the token's secret: the VM reads only the accepted hashes' secret.
    expect(all(base, 'gcp:secretmanager/secretIamMember:SecretIamMember').map((m) => [m.in.secretId, m.in.role, m.in.member])).toEqual([
      ['scim-bridge-gcp-token-sha256', 'roles/secretmanager.secretAccessor', `serviceAccount:${email}`],
    ]);
    expect(instance.in.shieldedInstanceConfig).toEqual({ enableSecureBoot: true, enableVtpm: true, enableIntegrityMonitoring: true });
    expect(instance.in.metadata).toMatchObject({ 'enable-oslogin': 'TRUE', 'block-project-ssh-keys': 'TRUE' });
  });

  test('outputs: baseUrl is https://<domain> without a trailing slash; tokenReference says where the token is', () => {
    expect(Object.keys(base.plan.outputs).sort()).toEqual(['appTokenReference', 'baseUrl', 'ipAddress', 'target', 'tokenReference']);
    expect(base.plan.outputs.baseUrl).toBe('https://scim.example.com');
    expect(base.plan.outputs.target).toBe('gcp');
    expect(base.plan.outputs.tokenReference).toBe(
      'Secret Manager secret projects/my-gcp-project/secrets/scim-bridge-gcp-token; print it with: gcloud secrets versions access latest --secret=scim-bridge-gcp-token --project=my-gcp-project',
    );
    expect(base.plan.outputs.appTokenReference).toBe(
      'Secret Manager secret projects/my-gcp-project/secrets/scim-bridge-gcp-app-token; print it with: gcloud secrets versions access latest --secret=scim-bridge-gcp-app-token --project=my-gcp-project',
    );
  });

  test('the application API\'s token: generated, in its own secret (which the VM cannot read), its SHA-256 on the VM', () => {
    const appToken = inventedSecret('scim-bridge-app-token');
    const holders = base.raw.filter((r) => JSON.stringify(r.inputs).includes(appToken)).map((r) => `${r.type} ${r.name}`);
    expect(holders).toEqual(['gcp:secretmanager/secretVersion:SecretVersion scim-bridge-app-token']);
    expect(one(base, 'random:index/randomPassword:RandomPassword', 'scim-bridge-app-token').in).toMatchObject({ length: 48, special: false });
    expect(userData(base)).toContain(`SCIM_BRIDGE_APP_TOKEN_SHA256=${sha256(appToken)}`);
    expect(all(base, 'gcp:secretmanager/secretIamMember:SecretIamMember').map((m) => m.in.secretId)).toEqual(['scim-bridge-gcp-token-sha256']);
  });

  test('a generated token is only in the secret store\'s version; the VM gets its SHA-256', () => {
    const token = inventedSecret('scim-bridge-token');
    const holders = base.raw.filter((r) => JSON.stringify(r.inputs).includes(token)).map((r) => `${r.type} ${r.name}`);
    expect(holders).toEqual(['gcp:secretmanager/secretVersion:SecretVersion scim-bridge-token']);
    const version = one(base, 'gcp:secretmanager/secretVersion:SecretVersion', 'scim-bridge-token');
    expect(version.inputs.secretData).toEqual({ [SECRET_SIG_KEY]: expect.any(String), value: token });
    expect(version.in.secret).toBe('scim-bridge-token-id');
    // Its hash in a secret of its own, which the VM reads every minute (fetch-secrets); not in the user-data.
    expect(one(base, 'gcp:secretmanager/secretVersion:SecretVersion', 'scim-bridge-token-sha256').in.secretData).toBe(sha256(token));
    expect(one(base, 'gcp:secretmanager/secret:Secret', 'scim-bridge-token-sha256').in.secretId).toBe('scim-bridge-gcp-token-sha256');
    expect(userData(base)).toContain('value_0=$(gcp_secret projects/my-gcp-project/secrets/scim-bridge-gcp-token-sha256)');
    expect(userData(base)).toContain('SCIM_BRIDGE_TOKEN_SHA256_FILE=/run/secrets/token-sha256');
    expect(userData(base)).not.toContain(sha256(token));
    expect(one(base, 'random:index/randomPassword:RandomPassword', 'scim-bridge-token').in).toMatchObject({ length: 48, special: false });
    // The printed plan shows it masked.
    const printed = base.plan.resources.find((r) => r.type === 'gcp:secretmanager/secretVersion:SecretVersion')!;
    expect(printed.inputs.secretData).toBe('[secret]');
  });

  test('a configured token (pulumi config set --secret token) is used instead of a generated one', async () => {
    const p = await plan('gcp', { config: { 'scim-bridge:token': { secure: 'v1:abc' } } });
    // Only the application API's token is generated then.
    expect(all(p, 'random:index/randomPassword:RandomPassword').map((r) => r.name)).toEqual(['scim-bridge-app-token']);
    const token = inventedSecret('token');
    expect(one(p, 'gcp:secretmanager/secretVersion:SecretVersion', 'scim-bridge-token').in.secretData).toBe(token);
    expect(one(p, 'gcp:secretmanager/secretVersion:SecretVersion', 'scim-bridge-token-sha256').in.secretData).toBe(sha256(token));
    expect(p.leaks).toEqual([]);
  });

  test('a metrics token: its SHA-256 in a Secret Manager secret the VM reads every minute; the user-data names the secret only', async () => {
    const p = await plan('gcp', { config: { 'scim-bridge:metricsToken': { secure: 'v1:m' } } });
    expect(p.leaks).toEqual([]);
    const token = inventedSecret('metricsToken');
    expect(one(p, 'gcp:secretmanager/secretVersion:SecretVersion', 'scim-bridge-metrics-token-sha256').in.secretData).toBe(sha256(token));
    expect(one(p, 'gcp:secretmanager/secretIamMember:SecretIamMember', 'scim-bridge-metrics-token-sha256-reader').in).toMatchObject({
      secretId: 'scim-bridge-gcp-metrics-token-sha256',
      role: 'roles/secretmanager.secretAccessor',
      member: 'serviceAccount:scim-bridge-gcp-host@my-gcp-project.iam.gserviceaccount.com',
    });
    const ud = userData(p);
    expect(ud).toContain('value_1=$(gcp_secret projects/my-gcp-project/secrets/scim-bridge-gcp-metrics-token-sha256)');
    expect(ud).toContain('SCIM_BRIDGE_METRICS_TOKEN_SHA256_FILE=/run/secrets/metrics-token-sha256');
    // A new token changes the secret's version only: nothing of it (nor its hash) is in the user-data.
    expect(ud).not.toContain(token);
    expect(ud).not.toContain(sha256(token));
    expect(userData(base)).not.toContain('METRICS_TOKEN');
  });

  test('a webhook: its secret in Secret Manager, readable by the VM\'s account only, fetched at start', async () => {
    const p = await plan('gcp', {
      config: { 'scim-bridge:webhookUrl': 'https://app.example.com/hooks/scim', 'scim-bridge:webhookSecret': { secure: 'v1:xyz' } },
    });
    expect(p.leaks).toEqual([]);
    const secret = inventedSecret('webhookSecret');
    expect(one(p, 'gcp:secretmanager/secretVersion:SecretVersion', 'scim-bridge-webhook-secret').in.secretData).toBe(secret);
    const reader = one(p, 'gcp:secretmanager/secretIamMember:SecretIamMember', 'scim-bridge-webhook-secret-reader');
    expect(reader.in).toMatchObject({
      secretId: 'scim-bridge-gcp-webhook-secret',
      role: 'roles/secretmanager.secretAccessor',
      member: 'serviceAccount:scim-bridge-gcp-host@my-gcp-project.iam.gserviceaccount.com',
    });
    const ud = userData(p);
    expect(ud).not.toContain(secret);
    expect(ud).toContain('SCIM_BRIDGE_WEBHOOK_URL=https://app.example.com/hooks/scim');
    expect(ud).toContain('value_1=$(gcp_secret projects/my-gcp-project/secrets/scim-bridge-gcp-webhook-secret)');
    expect(ud).toContain('put webhook-secret "$value_1"');
    expect(ud).toContain('SCIM_BRIDGE_WEBHOOK_SECRET_FILE=/run/secrets/webhook-secret');
  });

  test('ACME: Let\'s Encrypt staging keeps the CAA record; a private directory drops it and ships its root', async () => {
    const staging = await plan('gcp', { config: { 'scim-bridge:acmeCa': 'staging' } });
    expect(userData(staging)).toContain('acme_ca https://acme-staging-v02.api.letsencrypt.org/directory');
    expect(all(staging, 'gcp:dns/recordSet:RecordSet').map((r) => r.in.type).sort()).toEqual(['A', 'CAA']);
    const pem = '-----BEGIN CERTIFICATE-----\nMIIBprivate\n-----END CERTIFICATE-----';
    const custom = await plan('gcp', { config: { 'scim-bridge:acmeCa': 'https://ca.internal.example/acme/directory', 'scim-bridge:acmeCaRoot': pem } });
    expect(all(custom, 'gcp:dns/recordSet:RecordSet').map((r) => r.in.type)).toEqual(['A']);
    expect(userData(custom)).toContain('acme_ca https://ca.internal.example/acme/directory');
    expect(userData(custom)).toContain('acme_ca_root /etc/caddy/acme-ca-root.pem');
    expect(userData(custom)).toContain('MIIBprivate');
  });

  test('a bad stack configuration stops the plan before any resource, with every problem named', async () => {
    await expect(plan('gcp', { config: { 'scim-bridge:domain': 'https://scim.example.com/', 'gcp:project': null } })).rejects.toThrow(
      /scim-bridge:domain "https:\/\/scim\.example\.com\/" has a scheme[^\n]*\ngcp:project is not set/,
    );
  });
});

// ---------------------------------------------------------------------------------------------------------------
// Review findings: firewall families, per-stack names, API propagation, the protected disk, container logs.

describe('SSH from admin ranges: one firewall rule per address family (GCP refuses a rule that mixes them)', () => {
  const sshRules = (p: PlanResult) => all(p, 'gcp:compute/firewall:Firewall').filter((r) => r.in.allows.some((a: Any) => a.ports?.includes('22')));
  const isV6 = (range: string) => range.includes(':');

  test('mixed ranges give an IPv4 rule and an IPv6 rule, each holding one family only', async () => {
    const p = await plan('gcp', { config: { 'scim-bridge:adminSourceRanges': ['203.0.113.0/24', '2001:db8::/32', '198.51.100.7/32', '2001:db8:1::1/128'] } });
    const rules = sshRules(p);
    expect(rules.map((r) => [r.name, r.in.sourceRanges])).toEqual([
      ['scim-bridge-ssh', ['203.0.113.0/24', '198.51.100.7/32']],
      ['scim-bridge-ssh-ipv6', ['2001:db8::/32', '2001:db8:1::1/128']],
    ]);
    for (const rule of all(p, 'gcp:compute/firewall:Firewall')) {
      const families = new Set(rule.in.sourceRanges.map(isV6));
      expect({ rule: rule.name, families: families.size }).toEqual({ rule: rule.name, families: 1 });
    }
    for (const rule of rules) expect(rule.in).toMatchObject({ direction: 'INGRESS', allows: [{ protocol: 'tcp', ports: ['22'] }], targetTags: ['scim-bridge'] });
  });

  test('only a family that has ranges gets a rule; none gives no SSH rule at all', async () => {
    const v6 = await plan('gcp', { config: { 'scim-bridge:adminSourceRanges': ['2001:db8::/32'] } });
    expect(sshRules(v6).map((r) => [r.name, r.in.sourceRanges])).toEqual([['scim-bridge-ssh-ipv6', ['2001:db8::/32']]]);
    const v4 = await plan('gcp', { config: { 'scim-bridge:adminSourceRanges': ['203.0.113.0/24'] } });
    expect(sshRules(v4).map((r) => [r.name, r.in.sourceRanges])).toEqual([['scim-bridge-ssh', ['203.0.113.0/24']]]);
    expect(sshRules(base)).toEqual([]);
    expect(byAddressFamily(['10.0.0.0/8', '::1/128', 'fe80::/10'])).toEqual({ ipv4: ['10.0.0.0/8'], ipv6: ['::1/128', 'fe80::/10'] });
  });

  test('80/443 is open to the IPv4 world only, because the VM has no IPv6 address (a ::/0 rule would open nothing)', () => {
    const instance = one(base, 'gcp:compute/instance:Instance');
    const hasIpv6 = instance.in.networkInterfaces.some((n: Any) => n.ipv6AccessConfigs?.length || n.stackType === 'IPV4_IPV6');
    const subnet = one(base, 'gcp:compute/subnetwork:Subnetwork');
    expect(hasIpv6 || subnet.in.stackType === 'IPV4_IPV6').toBe(false);
    expect(all(base, 'gcp:dns/recordSet:RecordSet').map((r) => r.in.type)).not.toContain('AAAA');
    // Should the VM get IPv6, the world rule needs an IPv6 twin: this test then fails until it has one.
    const worldV6 = all(base, 'gcp:compute/firewall:Firewall').filter((r) => r.in.sourceRanges.includes('::/0'));
    expect(worldV6.length > 0).toBe(hasIpv6);
  });
});

describe('names a project holds once derive from the stack, so two stacks share a GCP project', () => {
  const ids = (p: PlanResult) => [
    one(p, 'gcp:serviceaccount/account:Account').in.accountId,
    ...all(p, 'gcp:secretmanager/secret:Secret').map((x) => x.in.secretId),
  ];
  const webhook = { 'scim-bridge:webhookUrl': 'https://app.example.com/hooks/scim', 'scim-bridge:webhookSecret': { secure: 'v1:xyz' } };

  test('staging and production in one project: distinct service account and secret ids, and references that name them', async () => {
    const staging = await plan('staging', { stackFile: GCP_STACK_FILE, config: webhook });
    const production = await plan('production', { stackFile: GCP_STACK_FILE, config: webhook });
    expect(ids(staging)).toEqual(['scim-bridge-staging-host', 'scim-bridge-staging-token', 'scim-bridge-staging-app-token', 'scim-bridge-staging-token-sha256', 'scim-bridge-staging-webhook-secret']);
    expect(ids(production)).toEqual(['scim-bridge-production-host', 'scim-bridge-production-token', 'scim-bridge-production-app-token', 'scim-bridge-production-token-sha256', 'scim-bridge-production-webhook-secret']);
    expect(ids(staging).filter((id) => ids(production).includes(id))).toEqual([]);
    expect(staging.plan.outputs.tokenReference).toBe(
      'Secret Manager secret projects/my-gcp-project/secrets/scim-bridge-staging-token; print it with: gcloud secrets versions access latest --secret=scim-bridge-staging-token --project=my-gcp-project',
    );
    expect(production.plan.outputs.appTokenReference).toContain('--secret=scim-bridge-production-app-token ');
    // The host reads the webhook secret of its own stack, with its own account.
    expect(userData(staging)).toContain('gcp_secret projects/my-gcp-project/secrets/scim-bridge-staging-webhook-secret)');
    expect(userData(staging)).toContain('gcp_secret projects/my-gcp-project/secrets/scim-bridge-staging-token-sha256)');
    expect(one(production, 'gcp:secretmanager/secretIamMember:SecretIamMember', 'scim-bridge-webhook-secret-reader').in).toMatchObject({
      secretId: 'scim-bridge-production-webhook-secret',
      member: 'serviceAccount:scim-bridge-production-host@my-gcp-project.iam.gserviceaccount.com',
    });
    for (const p of [staging, production]) expect(p.leaks).toEqual([]);
  });

  test('long stack names (and characters an id cannot hold) stay valid, deterministic and distinct', async () => {
    const a = 'customer-acme-production-europe-west1';
    const b = 'customer-acme-production-europe-west2';
    const [pa, pb] = [await plan(a, { stackFile: GCP_STACK_FILE }), await plan(b, { stackFile: GCP_STACK_FILE })];
    for (const p of [pa, pb]) {
      const [account, ...secrets] = ids(p);
      expect(account).toMatch(SERVICE_ACCOUNT_ID);
      expect(account.length).toBeLessThanOrEqual(30);
      for (const id of secrets) expect(id).toMatch(SECRET_ID);
      const ref = p.plan.outputs.tokenReference as string;
      expect(ref).toContain(`secrets/${secrets[0]};`);
      expect(ref).toContain(`--secret=${secrets[0]} `);
    }
    expect(ids(pa).filter((id) => ids(pb).includes(id))).toEqual([]);

    const stacks = [a, b, 'dev', 'Dev', 'dev.eu', 'dev_eu', 'dev-eu', '9lives', 'x'.repeat(100), `${'x'.repeat(99)}y`, 'a.b_c-D'];
    const accounts = stacks.map((st) => serviceAccountId('scim-bridge', st));
    const secrets = stacks.flatMap((st) => ['token', 'app-token', 'webhook-secret'].map((purpose) => secretId('scim-bridge', st, purpose)));
    for (const id of accounts) expect(id).toMatch(SERVICE_ACCOUNT_ID);
    for (const id of secrets) expect(id).toMatch(SECRET_ID);
    expect(new Set(accounts).size).toBe(accounts.length);
    expect(new Set(secrets).size).toBe(secrets.length);
    // Deterministic: the same stack always gets the same ids (a replacement is never triggered by a rerun).
    expect(stacks.map((st) => serviceAccountId('scim-bridge', st))).toEqual(accounts);
    // A valid, short enough id is kept as it reads; the others end with a hash of the exact stack name.
    expect(serviceAccountId('scim-bridge', 'dev')).toBe('scim-bridge-dev-host');
    expect(secretId('scim-bridge', 'Dev', 'token')).toBe('scim-bridge-Dev-token');
    expect(serviceAccountId('scim-bridge', a)).toMatch(/^scim-bridge-custom-[0-9a-f]{6}-host$/);
    expect(secretId('scim-bridge', 'dev.eu', 'token')).toMatch(/^scim-bridge-dev-eu-[0-9a-f]{6}-token$/);
  });
});

describe('the APIs the program enables are waited for before anything uses them', () => {
  interface Reg {
    urn: string;
    type: string;
    name: string;
    custom: boolean;
    deps: string[];
  }
  let regs: Reg[] = [];
  const registerResource = MockMonitor.prototype.registerResource;
  beforeAll(async () => {
    MockMonitor.prototype.registerResource = function (this: MockMonitor, req: Any, callback: (err: Any, res: Any) => void) {
      return registerResource.call(this, req, (err: Any, res: Any) => {
        if (res) regs.push({ urn: res.getUrn(), type: req.getType(), name: req.getName(), custom: req.getCustom(), deps: req.getDependenciesList() });
        callback(err, res);
      });
    };
    regs = [];
    try {
      await plan('gcp', { config: { 'scim-bridge:webhookUrl': 'https://app.example.com/hooks/scim', 'scim-bridge:webhookSecret': { secure: 'v1:x' }, 'scim-bridge:adminSourceRanges': ['203.0.113.0/24', '2001:db8::/32'] } });
    } finally {
      MockMonitor.prototype.registerResource = registerResource;
    }
  });

  /** Every URN a resource depends on, directly or through others. */
  function closure(urn: string): Set<string> {
    const byUrn = new Map(regs.map((r) => [r.urn, r]));
    const seen = new Set<string>();
    const todo = [...(byUrn.get(urn)?.deps ?? [])];
    while (todo.length) {
      const u = todo.pop()!;
      if (seen.has(u)) continue;
      seen.add(u);
      todo.push(...(byUrn.get(u)?.deps ?? []));
    }
    return seen;
  }
  /** The API each Google resource type needs; IAM grants need cloudresourcemanager, a prerequisite (README). */
  const apiOf = (type: string): string | undefined =>
    ({ compute: 'compute', dns: 'dns', secretmanager: 'secretmanager', monitoring: 'monitoring', serviceaccount: 'iam', logging: 'logging', artifactregistry: 'artifactregistry' } as Record<string, string>)[
      type.split(':')[1].split('/')[0]
    ];

  test('a wait follows every API the program enables, and lasts long enough for enabling to propagate', () => {
    const services = regs.filter((r) => r.type === 'gcp:projects/service:Service');
    // The stack builds its image (image: build, the default): Artifact Registry's API too.
    const enabled = [...GCP_APIS, GCP_IMAGE_API];
    expect(services.map((r) => r.name.replace(/^scim-bridge-/, '')).sort()).toEqual(enabled.map((a) => a.split('.')[0]).sort());
    const waits = regs.filter((r) => r.type === 'time:index/sleep:Sleep');
    expect(waits).toHaveLength(1);
    expect(closure(waits[0].urn)).toEqual(new Set(services.map((s) => s.urn)));
    const sleep = one(base, 'time:index/sleep:Sleep');
    const seconds = Number(/^(\d+)s$/.exec(sleep.in.createDuration)?.[1]);
    expect(seconds).toBeGreaterThanOrEqual(60);
    expect(seconds).toBeLessThanOrEqual(180);
    // A change of the list of APIs waits again (the time provider re-runs a sleep whose triggers change).
    expect(sleep.in.triggers.services.split(' ').sort()).toEqual([...enabled].sort());
  });

  test('every resource of a Google API depends, through the wait, on its API being enabled', () => {
    const wait = regs.find((r) => r.type === 'time:index/sleep:Sleep')!;
    const google = regs.filter((r) => r.custom && r.type.startsWith('gcp:') && r.type !== 'gcp:projects/service:Service' && !r.type.startsWith('pulumi:providers:'));
    expect(google.length).toBeGreaterThan(20);
    const missing: string[] = [];
    for (const r of google) {
      const deps = closure(r.urn);
      if (!deps.has(wait.urn)) missing.push(`${r.type} ${r.name}: does not wait`);
      const api = apiOf(r.type);
      if (api && !regs.some((s) => s.type === 'gcp:projects/service:Service' && s.name === `scim-bridge-${api}` && deps.has(s.urn))) missing.push(`${r.type} ${r.name}: not after ${api}`);
    }
    expect(missing).toEqual([]);
    // The grants on the project need cloudresourcemanager, enabled before the program runs, and wait all the same.
    expect([...new Set(google.filter((r) => !apiOf(r.type)).map((r) => r.type))]).toEqual(['gcp:projects/iAMMember:IAMMember']);
    // The repository's read grant waits for Artifact Registry's API like the repository.
    expect(google.filter((r) => r.type.startsWith('gcp:artifactregistry/')).map((r) => r.type).sort()).toEqual([
      'gcp:artifactregistry/repository:Repository',
      'gcp:artifactregistry/repositoryIamMember:RepositoryIamMember',
    ]);
  });
});

describe('the data disk is protected: a change that needs a new disk fails instead of swapping in a blank one', () => {
  test('protect and retainOnDelete, with and without dataDiskImport; only creation-time inputs are ignored', async () => {
    const adopted = await plan('gcp', { config: { 'scim-bridge:dataDiskImport': 'scim-bridge-data-1a2b3c4' } });
    for (const p of [base, adopted]) {
      const disk = one(p, 'gcp:compute/disk:Disk');
      expect(disk.options).toMatchObject({ protect: true, retainOnDelete: true, ignoreChanges: GCP_DISK_IGNORED });
    }
    expect(one(adopted, 'gcp:compute/disk:Disk').options.import).toBe('projects/my-gcp-project/zones/europe-west1-b/disks/scim-bridge-data-1a2b3c4');
    // A disk made from a snapshot (the README's way to start from one) has `snapshot` set: it still imports.
    expect(GCP_DISK_IGNORED).toEqual(expect.arrayContaining(['snapshot', 'sourceDisk', 'image', 'description']));
    // What must match, or fail loudly, is never ignored: where the disk is, its type and its size.
    for (const key of ['zone', 'type', 'size', 'name', 'project']) expect(GCP_DISK_IGNORED).not.toContain(key);
    // Nothing else in the stack is protected: `pulumi destroy` stays possible after unprotecting the disk.
    expect(base.raw.filter((r) => r.options.protect).map((r) => r.type)).toEqual(['gcp:compute/disk:Disk']);
  });
});

describe('container logs: the journal, shipped to Cloud Logging by the Ops Agent; the bridge never waits for logging', () => {
  interface WriteFile {
    path: string;
    permissions: string;
    content: string;
  }
  const doc = () => parse(userData(base)) as { write_files: WriteFile[]; runcmd: string[][]; packages: string[] };
  const file = (p: string) => {
    const f = doc().write_files.find((w) => w.path === p);
    if (!f) throw new Error(`user-data writes no ${p}`);
    return f;
  };
  const units = () => Object.fromEntries(doc().write_files.filter((w) => w.path.startsWith('/etc/systemd/system/')).map((w) => [path.basename(w.path), w.content]));
  const run = (cmd: string, args: string[], opts: { input?: string; env?: NodeJS.ProcessEnv } = {}) => {
    const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 30_000, ...opts });
    if (r.error) throw new Error(`${cmd} could not run (${r.error.message}): run test/setup.sh (as root on Debian) to install it`);
    return { code: r.status, out: r.stdout + r.stderr };
  };
  let scratch: string;
  beforeAll(() => {
    scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'scim-bridge-gcp-test-'));
  });
  afterAll(() => fs.rmSync(scratch, { recursive: true, force: true }));

  test('Docker logs to journald (never gcplogs, which blocks a container\'s start on Cloud Logging)', () => {
    expect(JSON.parse(file('/etc/docker/daemon.json').content)).toEqual({ 'log-driver': 'journald', 'log-opts': { tag: '{{.Name}}' } });
    expect(userData(base)).not.toContain('gcplogs');
  });

  test('the log agent unit: a oneshot that retries, enabled without blocking, that nothing of the bridge requires or follows', () => {
    const all = units();
    const agent = all[LOG_AGENT_UNIT];
    expect(agent).toBeDefined();
    expect(agent).toMatch(/^Type=oneshot$/m);
    expect(agent).toMatch(/^Restart=on-failure$/m);
    expect(agent).toMatch(/^RestartSec=60$/m);
    expect(agent).toMatch(/^StartLimitIntervalSec=0$/m);
    expect(agent).toContain(`ExecStart=${LOG_AGENT_SCRIPT} ${OPS_AGENT_CONFIG}`);
    // It orders itself before nothing and binds nothing to itself.
    expect(agent).not.toMatch(/^(Before|RequiredBy|Requires|BindsTo|PartOf)=/m);
    for (const [name, text] of Object.entries(all)) {
      if (name === LOG_AGENT_UNIT) continue;
      expect({ name, mentions: text.includes('log-agent') }).toEqual({ name, mentions: false });
    }
    const enables = doc().runcmd.filter((c) => c.includes(LOG_AGENT_UNIT));
    expect(enables).toEqual([['systemctl', 'enable', '--now', '--no-block', LOG_AGENT_UNIT]]);
    expect(doc().runcmd.findIndex((c) => c.includes(LOG_AGENT_UNIT))).toBeGreaterThan(doc().runcmd.findIndex((c) => c.includes('scim-bridge.service')));
    expect(file(LOG_AGENT_SCRIPT).permissions).toBe('0755');
  });

  test('the Ops Agent configuration: the journal in a pipeline of its own, under the log name the alerts give', () => {
    const config = parse(file(OPS_AGENT_CONFIG).content);
    expect(config.logging.receivers).toEqual({ [GCP_LOG_RECEIVER]: { type: 'systemd_journald' } });
    const pipelines = config.logging.service.pipelines;
    expect(Object.values(pipelines).filter((p: Any) => p.receivers.includes(GCP_LOG_RECEIVER))).toHaveLength(1);
    // The built-in syslog files would repeat the journal; host metrics (memory, disk) feed the alerts.
    expect(pipelines.default_pipeline).toEqual({ receivers: [] });
    expect(config.metrics.receivers).toEqual({ hostmetrics: { type: 'hostmetrics', collection_interval: '60s' } });
    expect(config.metrics.service.pipelines.default_pipeline).toEqual({ receivers: ['hostmetrics'] });
    for (const policy of all(base, 'gcp:monitoring/alertPolicy:AlertPolicy')) {
      expect(policy.in.documentation.content).toContain(`log name ${GCP_LOG_RECEIVER}`);
      expect(policy.in.documentation.content).not.toContain('gcplogs');
    }
    expect(one(base, 'gcp:monitoring/alertPolicy:AlertPolicy', 'scim-bridge-down').in.documentation.content).toContain('jsonPayload.CONTAINER_NAME="scim-bridge"');
    expect(one(base, 'gcp:monitoring/alertPolicy:AlertPolicy', 'scim-bridge-certificate').in.documentation.content).toContain('jsonPayload.CONTAINER_NAME="scim-bridge-caddy"');
  });

  test('cloud-init\'s schema accepts the GCP user-data; shellcheck finds nothing in the log agent script', () => {
    const ud = path.join(scratch, 'user-data.yaml');
    fs.writeFileSync(ud, userData(base));
    const schema = run('cloud-init', ['schema', '--config-file', ud]);
    expect(schema).toMatchObject({ code: 0 });
    const check = run('shellcheck', ['-s', 'bash', '-S', 'style', '-'], { input: file(LOG_AGENT_SCRIPT).content });
    expect(check).toEqual({ code: 0, out: '' });
  });

  test('systemd-analyze verify accepts the unit (skipped where it cannot run)', () => {
    const dir = path.join(scratch, 'units');
    fs.mkdirSync(dir);
    const verify = (name: string, text: string) => {
      fs.writeFileSync(path.join(dir, name), text);
      const r = spawnSync('systemd-analyze', ['verify', path.join(dir, name)], { encoding: 'utf8', env: { ...process.env, SYSTEMD_UNIT_PATH: `${dir}:`, SYSTEMD_LOG_COLOR: '0' } });
      if (r.error) return undefined;
      return (r.stdout + r.stderr).split('\n').filter((l) => l.trim() && !/Command \/usr\/local\/lib\/scim-bridge\/[\w-]+ is not executable/.test(l));
    };
    const probe = verify('probe.service', '[Unit]\nDescription=probe\n[Service]\nExecStart=/bin/true\n');
    if (!probe || probe.length) {
      console.info(`gcp.test: systemd-analyze verify cannot run here (${probe?.join(' / ') ?? 'not installed'})`);
      return;
    }
    expect(verify(LOG_AGENT_UNIT, units()[LOG_AGENT_UNIT])).toEqual([]);
  });

  describe('the log agent script, run with stand-ins for dpkg-query, curl and systemctl', () => {
    let bin: string;
    let log: string;
    const runAgent = (env: Record<string, string>) => {
      const script = path.join(scratch, 'log-agent');
      fs.writeFileSync(script, file(LOG_AGENT_SCRIPT).content, { mode: 0o755 });
      const config = path.join(scratch, 'ops-agent.yaml');
      fs.writeFileSync(config, file(OPS_AGENT_CONFIG).content);
      fs.writeFileSync(log, '');
      const agentDir = path.join(scratch, `agent-${Math.random().toString(36).slice(2)}`);
      const r = spawnSync(script, [config], {
        encoding: 'utf8',
        timeout: 20_000,
        env: { ...process.env, PATH: `${bin}:${process.env.PATH}`, LOG: log, OPS_AGENT_DIR: agentDir, OPS_AGENT_REPO_SCRIPT: 'https://dl.example/add-repo.sh', ...env },
      });
      const written = path.join(agentDir, 'config.yaml');
      return { code: r.status, err: r.stderr, calls: fs.readFileSync(log, 'utf8').trim().split('\n').filter(Boolean), config: fs.existsSync(written) ? fs.readFileSync(written, 'utf8') : undefined };
    };
    beforeAll(() => {
      bin = path.join(scratch, 'bin');
      log = path.join(scratch, 'calls.log');
      fs.mkdirSync(bin);
      const stub = (name: string, body: string) => fs.writeFileSync(path.join(bin, name), `#!/bin/bash\n${body}\n`, { mode: 0o755 });
      stub('dpkg-query', '[ -n "${DPKG_STATUS:-}" ] || exit 1\nprintf %s "$DPKG_STATUS"');
      // curl -fsS ... -o FILE URL: writes a repository script that records how it was run.
      stub(
        'curl',
        'echo "curl ${*: -1}" >> "$LOG"\n[ -z "${CURL_FAILS:-}" ] || exit 22\nwhile [ $# -gt 0 ]; do [ "$1" = -o ] && out=$2; shift; done\nprintf \'#!/bin/bash\\necho "repo-script $*" >> "$LOG"\\n\' > "$out"',
      );
      stub('systemctl', 'echo "systemctl $*" >> "$LOG"');
    });

    test('not installed: fetches Google\'s repository script, installs with it, then configures and restarts the agent', () => {
      const r = runAgent({});
      expect(r.err).toBe('');
      expect(r.code).toBe(0);
      expect(r.calls).toEqual(['curl https://dl.example/add-repo.sh', 'repo-script --also-install', 'systemctl restart google-cloud-ops-agent.service']);
      expect(r.config).toBe(file(OPS_AGENT_CONFIG).content);
    });

    test('installed: configures and restarts only', () => {
      const r = runAgent({ DPKG_STATUS: 'install ok installed' });
      expect(r.code).toBe(0);
      expect(r.calls).toEqual(['systemctl restart google-cloud-ops-agent.service']);
      expect(r.config).toBe(file(OPS_AGENT_CONFIG).content);
    });

    test('a failed download fails the run (systemd retries a minute later) and changes nothing', () => {
      const r = runAgent({ CURL_FAILS: '1' });
      expect(r.code).not.toBe(0);
      expect(r.calls).toEqual(['curl https://dl.example/add-repo.sh']);
      expect(r.config).toBeUndefined();
    });
  });
});
