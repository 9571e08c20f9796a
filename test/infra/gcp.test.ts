/**
 * The gcp stack, evaluated offline with Pulumi's mocks (the same run as `npm run plan -- --stack gcp`):
 * assertions on the real inputs of every resource the program declares.
 */
import { inventedSecret, plan, PlanResult } from '../../tools/plan';
import { all, one, SECRET_SIG_KEY, sha256 } from '../helpers/plan';

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
    const policies = all(base, 'gcp:monitoring/alertPolicy:AlertPolicy');
    expect(policies.map((p) => p.name).sort()).toEqual(['scim-bridge-certificate', 'scim-bridge-down']);
    for (const p of policies) {
      expect(p.in.notificationChannels).toEqual([`projects/my-gcp-project/notificationChannels/${channel.name}`]);
      expect(p.in.conditions[0].conditionThreshold.filter).toContain(`metric.label.check_id="${check.name}-check-id"`);
    }
    const down = policies.find((p) => p.name === 'scim-bridge-down')!;
    expect(down.in.conditions[0].conditionThreshold.filter).toContain('uptime_check/check_passed');
  });

  test('least privilege: a dedicated service account that can write logs and nothing else by default', () => {
    const account = one(base, 'gcp:serviceaccount/account:Account');
    const email = `${account.in.accountId}@my-gcp-project.iam.gserviceaccount.com`;
    const instance = one(base, 'gcp:compute/instance:Instance');
    expect(instance.in.serviceAccount.email).toBe(email);
    const grants = all(base, 'gcp:projects/iAMMember:IAMMember').map((m) => [m.in.role, m.in.member]);
    expect(grants).toEqual([['roles/logging.logWriter', `serviceAccount:${email}`]]);
    // No access to the token's secret: the VM gets only the token's hash.
    expect(all(base, 'gcp:secretmanager/secretIamMember:SecretIamMember')).toEqual([]);
    expect(instance.in.shieldedInstanceConfig).toEqual({ enableSecureBoot: true, enableVtpm: true, enableIntegrityMonitoring: true });
    expect(instance.in.metadata).toMatchObject({ 'enable-oslogin': 'TRUE', 'block-project-ssh-keys': 'TRUE' });
  });

  test('outputs: baseUrl is https://<domain> without a trailing slash; tokenReference says where the token is', () => {
    expect(Object.keys(base.plan.outputs).sort()).toEqual(['appTokenReference', 'baseUrl', 'ipAddress', 'target', 'tokenReference']);
    expect(base.plan.outputs.baseUrl).toBe('https://scim.example.com');
    expect(base.plan.outputs.target).toBe('gcp');
    expect(base.plan.outputs.tokenReference).toBe(
      'Secret Manager secret projects/my-gcp-project/secrets/scim-bridge-token; print it with: gcloud secrets versions access latest --secret=scim-bridge-token --project=my-gcp-project',
    );
    expect(base.plan.outputs.appTokenReference).toBe(
      'Secret Manager secret projects/my-gcp-project/secrets/scim-bridge-app-token; print it with: gcloud secrets versions access latest --secret=scim-bridge-app-token --project=my-gcp-project',
    );
  });

  test('the application API\'s token: generated, in its own secret (which the VM cannot read), its SHA-256 on the VM', () => {
    const appToken = inventedSecret('scim-bridge-app-token');
    const holders = base.raw.filter((r) => JSON.stringify(r.inputs).includes(appToken)).map((r) => `${r.type} ${r.name}`);
    expect(holders).toEqual(['gcp:secretmanager/secretVersion:SecretVersion scim-bridge-app-token']);
    expect(one(base, 'random:index/randomPassword:RandomPassword', 'scim-bridge-app-token').in).toMatchObject({ length: 48, special: false });
    expect(userData(base)).toContain(`SCIM_BRIDGE_APP_TOKEN_SHA256=${sha256(appToken)}`);
    expect(all(base, 'gcp:secretmanager/secretIamMember:SecretIamMember')).toEqual([]);
  });

  test('a generated token is only in the secret store\'s version; the VM gets its SHA-256', () => {
    const token = inventedSecret('scim-bridge-token');
    const holders = base.raw.filter((r) => JSON.stringify(r.inputs).includes(token)).map((r) => `${r.type} ${r.name}`);
    expect(holders).toEqual(['gcp:secretmanager/secretVersion:SecretVersion scim-bridge-token']);
    const version = one(base, 'gcp:secretmanager/secretVersion:SecretVersion', 'scim-bridge-token');
    expect(version.inputs.secretData).toEqual({ [SECRET_SIG_KEY]: expect.any(String), value: token });
    expect(version.in.secret).toBe('scim-bridge-token-id');
    expect(userData(base)).toContain(`SCIM_BRIDGE_TOKEN_SHA256=${sha256(token)}`);
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
    expect(userData(p)).toContain(`SCIM_BRIDGE_TOKEN_SHA256=${sha256(token)}`);
    expect(p.leaks).toEqual([]);
  });

  test('a webhook: its secret in Secret Manager, readable by the VM\'s account only, fetched at start', async () => {
    const p = await plan('gcp', {
      config: { 'scim-bridge:webhookUrl': 'https://app.example.com/hooks/scim', 'scim-bridge:webhookSecret': { secure: 'v1:xyz' } },
    });
    expect(p.leaks).toEqual([]);
    const secret = inventedSecret('webhookSecret');
    expect(one(p, 'gcp:secretmanager/secretVersion:SecretVersion', 'scim-bridge-webhook-secret').in.secretData).toBe(secret);
    const reader = one(p, 'gcp:secretmanager/secretIamMember:SecretIamMember');
    expect(reader.in).toMatchObject({ secretId: 'scim-bridge-webhook-secret', role: 'roles/secretmanager.secretAccessor', member: 'serviceAccount:scim-bridge-host@my-gcp-project.iam.gserviceaccount.com' });
    const ud = userData(p);
    expect(ud).not.toContain(secret);
    expect(ud).toContain('SCIM_BRIDGE_WEBHOOK_URL=https://app.example.com/hooks/scim');
    expect(ud).toContain('value=$(gcp_secret projects/my-gcp-project/secrets/scim-bridge-webhook-secret)');
    expect(ud).toContain('put SCIM_BRIDGE_WEBHOOK_SECRET "$value"');
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
