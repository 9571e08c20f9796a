/**
 * The digitalocean stack, evaluated offline with Pulumi's mocks (the same run as `npm run plan -- --stack
 * digitalocean`): assertions on the real inputs of every resource the program declares.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { MockMonitor } from '@pulumi/pulumi/runtime/mocks';
import { parse } from 'yaml';
import { BACKUP_SCRIPT, DIGITALOCEAN_SECRET_SINKS, DROPLET_DELETE_TIMEOUT, recordName, resourcePrefix, volumeName } from '../../infra/digitalocean';
import { inventedSecret, plan, PlanResult } from '../../tools/plan';
import { all, one, SECRET_SIG_KEY, sha256 } from '../helpers/plan';

const DROPLET = 'digitalocean:index/droplet:Droplet';
const FIREWALL = 'digitalocean:index/firewall:Firewall';
const RECORD = 'digitalocean:index/dnsRecord:DnsRecord';
const VOLUME = 'digitalocean:index/volume:Volume';
const VOLUME_ATTACHMENT = 'digitalocean:index/volumeAttachment:VolumeAttachment';
function userData(result: PlanResult): string {
  return one(result, DROPLET).in.userData;
}
const WORLD = ['0.0.0.0/0', '::/0'];
/** The mocks' numbers: the Droplet's id and the Reserved IP (infra/digitalocean/mocks.ts). */
const DROPLET_ID = '424242424';
const RESERVED_IP = '203.0.113.20';
const WEBHOOK = { 'scim-bridge:webhookUrl': 'https://app.example.com/hooks/scim', 'scim-bridge:webhookSecret': { secure: 'v1:xyz' } };

/**
 * What the engine gets and the plan does not record: URNs, dependencies (per property too) and custom timeouts,
 * captured from Pulumi's mock monitor as the program registers each resource (as test/infra/policy.test.ts does).
 */
interface Registration {
  urn: string;
  type: string;
  name: string;
  dependencies: string[];
  propertyDependencies: Record<string, string[]>;
  deleteTimeout: string;
}
type Any = any; // eslint-disable-line @typescript-eslint/no-explicit-any
let captured: Registration[] = [];
const registerResource = MockMonitor.prototype.registerResource;

let base: PlanResult;
let baseRegs: Registration[];
beforeAll(async () => {
  MockMonitor.prototype.registerResource = function (this: MockMonitor, req: Any, callback: (err: Any, res: Any) => void) {
    return registerResource.call(this, req, (err: Any, res: Any) => {
      if (res) {
        captured.push({
          urn: res.getUrn(),
          type: req.getType(),
          name: req.getName(),
          dependencies: req.getDependenciesList(),
          propertyDependencies: Object.fromEntries([...req.getPropertydependenciesMap().entries()].map(([k, v]: [string, Any]) => [k, v.getUrnsList()])),
          deleteTimeout: req.getCustomtimeouts()?.getDelete() ?? '',
        });
      }
      callback(err, res);
    });
  };
  captured = [];
  base = await plan('digitalocean');
  baseRegs = captured;
  // Later plans register into a fresh list, not this one.
  captured = [];
});
afterAll(() => {
  MockMonitor.prototype.registerResource = registerResource;
});
const reg = (regs: Registration[], type: string) => {
  const found = regs.filter((r) => r.type === type);
  expect(found).toHaveLength(1);
  return found[0];
};
/** Everything a registration takes from other resources: dependsOn and every input. */
const dependsOn = (r: Registration) => new Set([...r.dependencies, ...Object.values(r.propertyDependencies).flat()]);

describe('the digitalocean stack (stacks/Pulumi.digitalocean.yaml)', () => {
  test('declares every resource the target needs, inside one scim-bridge:digitalocean:Bridge', () => {
    const types = new Set(base.raw.map((r) => r.type));
    for (const t of [
      'scim-bridge:digitalocean:Bridge',
      'digitalocean:index/tag:Tag',
      FIREWALL,
      'digitalocean:index/reservedIp:ReservedIp',
      'digitalocean:index/reservedIpAssignment:ReservedIpAssignment',
      VOLUME,
      DROPLET,
      RECORD,
      'digitalocean:index/uptimeCheck:UptimeCheck',
      'digitalocean:index/uptimeAlert:UptimeAlert',
      'digitalocean:index/monitorAlert:MonitorAlert',
      'digitalocean:index/project:Project',
      'random:index/randomPassword:RandomPassword',
    ]) {
      expect(types).toContain(t);
    }
    // The Droplet attaches the volume itself (volumeIds): no VolumeAttachment, which a replacement would delete first.
    expect(types).not.toContain(VOLUME_ATTACHMENT);
    // Nothing of another cloud, and no stray secret store (docker-build builds the image on your machine).
    expect([...types].filter((t) => !/^(digitalocean:|random:|docker-build:|scim-bridge:digitalocean:)/.test(t))).toEqual([]);
    expect(base.leaks).toEqual([]);
  });

  test('the world reaches tcp 80 and 443 only; SSH is closed unless admin ranges are configured', async () => {
    const firewall = one(base, FIREWALL);
    expect(firewall.in.inboundRules).toEqual([
      { protocol: 'tcp', portRange: '80', sourceAddresses: WORLD },
      { protocol: 'tcp', portRange: '443', sourceAddresses: WORLD },
    ]);
    // Outbound is open: the host pulls images, reaches Let's Encrypt and the webhook.
    expect(firewall.in.outboundRules).toEqual([
      { protocol: 'tcp', portRange: '1-65535', destinationAddresses: WORLD },
      { protocol: 'udp', portRange: '1-65535', destinationAddresses: WORLD },
      { protocol: 'icmp', destinationAddresses: WORLD },
    ]);
    // It applies by tag, and the Droplet carries that tag from its creation (so a replacement is covered at
    // its first boot); nothing else carries it but the volume.
    const tag = one(base, 'digitalocean:index/tag:Tag', 'scim-bridge-tag');
    expect(firewall.in.tags).toEqual([tag.in.name]);
    expect(firewall.in.dropletIds).toBeUndefined();
    // Besides it, the Droplet carries the accepted token hash as a tag (read by the host; the firewall ignores it).
    const hashTag = one(base, 'digitalocean:index/tag:Tag', 'scim-bridge-token-sha256');
    expect(one(base, DROPLET).in.tags).toEqual([tag.in.name, hashTag.in.name]);

    const withSsh = await plan('digitalocean', { config: { 'scim-bridge:adminSourceRanges': ['203.0.113.0/24', '2001:db8::/48'] } });
    const rules = one(withSsh, FIREWALL).in.inboundRules as Array<{ protocol: string; portRange: string; sourceAddresses: string[] }>;
    expect(rules).toContainEqual({ protocol: 'tcp', portRange: '22', sourceAddresses: ['203.0.113.0/24', '2001:db8::/48'] });
    for (const rule of rules) {
      if (rule.sourceAddresses.some((a) => WORLD.includes(a))) expect(['80', '443']).toContain(rule.portRange);
    }
    expect(withSsh.leaks).toEqual([]);
  });

  test('the A record points at the Reserved IP, which is assigned to the Droplet; CAA allows Let\'s Encrypt', async () => {
    const ip = one(base, 'digitalocean:index/reservedIp:ReservedIp');
    expect(ip.in).toEqual({ region: 'fra1' });
    const assignment = one(base, 'digitalocean:index/reservedIpAssignment:ReservedIpAssignment');
    expect(assignment.in).toEqual({ ipAddress: RESERVED_IP, dropletId: Number(DROPLET_ID) });
    const records = all(base, RECORD);
    expect(records.find((r) => r.in.type === 'A')!.in).toEqual({ domain: 'example.com', name: 'scim', type: 'A', value: RESERVED_IP, ttl: 300 });
    expect(records.find((r) => r.in.type === 'CAA')!.in).toMatchObject({ domain: 'example.com', name: 'scim', flags: 0, tag: 'issue', value: 'letsencrypt.org.' });
    expect(base.plan.outputs.ipAddress).toBe(RESERVED_IP);

    // The domain can be the DigitalOcean domain itself: its records are then on "@".
    const apex = await plan('digitalocean', { config: { 'scim-bridge:domain': 'example.com' } });
    expect(all(apex, RECORD).map((r) => [r.in.type, r.in.name]).sort()).toEqual([
      ['A', '@'],
      ['CAA', '@'],
    ]);
    expect(apex.plan.outputs.baseUrl).toBe('https://example.com');
  });

  test('the data volume is its own resource, attached to the Droplet and kept when the Droplet or the stack goes', () => {
    const volume = one(base, VOLUME);
    expect(volume.in).toMatchObject({ name: 'scim-bridge-digitalocean-data', region: 'fra1', size: 10 });
    // Blank: the host formats it (only when it carries no filesystem at all).
    expect(volume.in.initialFilesystemType).toBeUndefined();
    expect(volume.options.retainOnDelete).toBe(true);
    // Attached by the Droplet's own volumeIds only: a VolumeAttachment as well would make the two fight.
    expect(all(base, VOLUME_ATTACHMENT)).toEqual([]);
    expect(one(base, DROPLET).in.volumeIds).toEqual([`${volume.name}-id`]);
    // The host finds it by the name DigitalOcean gives its device.
    expect(userData(base)).toContain('prepare-disk /dev/disk/by-id/scsi-0DO_Volume_scim-bridge-digitalocean-data /srv/scim-bridge 10001');
  });

  test('a Droplet replacement stops the bridge before the volume is detached: the Droplet holds the volume itself', () => {
    // The provider deletes a Droplet this way (terraform-provider-digitalocean, resource_droplet.go,
    // resourceDigitalOceanDropletDelete): with gracefulShutdown, a shutdown (systemd stops the bridge) and a wait
    // until it is off; then it detaches its volumes; then it deletes it. A resource that depends on the Droplet
    // is deleted before it on a delete-before-replace, so none of those may hold the volume: no attachment.
    const droplet = one(base, DROPLET);
    const volume = one(base, VOLUME);
    expect(droplet.in.gracefulShutdown).toBe(true);
    expect(droplet.options).toMatchObject({ deleteBeforeReplace: true, replaceOnChanges: ['userData'] });
    expect(droplet.in.volumeIds).toEqual([`${volume.name}-id`]);
    // The engine's view: the Droplet takes the volume by volumeIds; the volume takes nothing from the Droplet.
    const d = reg(baseRegs, DROPLET);
    const v = reg(baseRegs, VOLUME);
    expect(d.propertyDependencies.volumeIds).toEqual([v.urn]);
    expect(dependsOn(v).has(d.urn)).toBe(false);
    // What goes before the Droplet on its replacement (its dependents) holds no volume.
    const dependents = baseRegs.filter((r) => dependsOn(r).has(d.urn));
    expect(dependents.map((r) => r.type)).not.toContain(VOLUME_ATTACHMENT);
    expect(baseRegs.filter((r) => r.type === VOLUME_ATTACHMENT)).toEqual([]);
    // The shutdown gets more than the provider's default 60 s to finish before the deletion gives up.
    expect(d.deleteTimeout).toBe(DROPLET_DELETE_TIMEOUT);
    expect(DROPLET_DELETE_TIMEOUT).toMatch(/^\d+m$/);
    expect(parseInt(DROPLET_DELETE_TIMEOUT, 10)).toBeGreaterThanOrEqual(5);
  });

  test('the data volume is protected: a change that would replace it fails instead of making a blank one', () => {
    const volume = one(base, VOLUME);
    expect(volume.options).toMatchObject({ protect: true, retainOnDelete: true });
    // The description cannot change in place (a new wording would mean a new volume) and decides nothing.
    expect(volume.options.ignoreChanges).toEqual(['description']);
    // Name, region and size stay compared: the name is the host's device path, the region the Droplet's, and a
    // larger dataDiskSizeGb grows the volume.
    for (const key of ['name', 'region', 'size']) expect(volume.options.ignoreChanges).not.toContain(key);
    // Nothing else is protected: the Droplet and the rest are replaced or deleted freely.
    expect(base.raw.filter((r) => r.options.protect).map((r) => r.type)).toEqual([VOLUME]);
  });

  test('dataDiskImport: the adopted volume is protected too, and attached by the Droplet\'s volumeIds', async () => {
    const id = '506f78a4-e098-11e5-ad9f-000f53306ae1';
    captured = [];
    const adopted = await plan('digitalocean', { config: { 'scim-bridge:dataDiskImport': id } });
    const regs = captured;
    const volume = one(adopted, VOLUME);
    // An import whose volume differs in what forces a new one (region, name) must never replace it.
    expect(volume.options).toMatchObject({ import: id, protect: true, retainOnDelete: true });
    // A volume kept by an earlier destroy lost its tag with that destroy: a label, no reason to refuse the import.
    expect(volume.options.ignoreChanges).toEqual(['description', 'tags']);
    for (const key of ['name', 'region', 'size']) expect(volume.options.ignoreChanges).not.toContain(key);
    expect(volume.in).toMatchObject({ name: 'scim-bridge-digitalocean-data', region: 'fra1', size: 10 });
    expect(all(adopted, VOLUME_ATTACHMENT)).toEqual([]);
    expect(reg(regs, DROPLET).propertyDependencies.volumeIds).toEqual([reg(regs, VOLUME).urn]);
    expect(adopted.leaks).toEqual([]);
  });

  test('the Droplet: Ubuntu with cloud-init, the monitoring agent on, the configured region and size', () => {
    const droplet = one(base, DROPLET);
    expect(droplet.in).toMatchObject({ image: 'ubuntu-24-04-x64', region: 'fra1', size: 's-1vcpu-1gb', monitoring: true });
    const doc = parse(userData(base)) as { write_files: Array<{ path: string; content: string }> };
    expect(userData(base).startsWith('#cloud-config\n')).toBe(true);
    // No log service on DigitalOcean: container logs go to the journal.
    expect(JSON.parse(doc.write_files.find((f) => f.path === '/etc/docker/daemon.json')!.content)).toEqual({ 'log-driver': 'journald' });
    // The shipped stack builds the image (image: build) and runs it from Container Registry by digest.
    expect(userData(base)).toMatch(/ registry\.digitalocean\.com\/scim-bridge-digitalocean\/scim-bridge-digitalocean@sha256:[0-9a-f]{64}\n/);
    // No SSH key unless configured (DigitalOcean then emails a root password; the firewall keeps SSH closed).
    expect(droplet.in.sshKeys).toBeUndefined();
  });

  test('SSH keys from the stack configuration go to the Droplet', async () => {
    const p = await plan('digitalocean', { config: { 'scim-bridge:sshKeys': ['1234567', '3b:16:bf:e4:8b:00:8b:b8:59:8c:a9:d3:f0:19:45:fa'] } });
    expect(one(p, DROPLET).in.sshKeys).toEqual(['1234567', '3b:16:bf:e4:8b:00:8b:b8:59:8c:a9:d3:f0:19:45:fa']);
  });

  test('a new image replaces the Droplet (old one first) and leaves the volume, IP, records and firewall untouched', async () => {
    const next = await plan('digitalocean', { config: { 'scim-bridge:image': 'ghcr.io/scim-bridge/scim-bridge:0.2.0' } });
    const before = one(base, DROPLET);
    const after = one(next, DROPLET);
    expect(userData(next)).toContain('ghcr.io/scim-bridge/scim-bridge:0.2.0');
    expect(userData(next)).not.toContain('scim-bridge:0.1.0');
    expect(after.in.userData).not.toBe(before.in.userData);
    // DigitalOcean replaces a Droplet whose user-data changes; the old one goes first because the volume and
    // the Reserved IP attach to one Droplet at a time.
    expect(after.options).toMatchObject({ deleteBeforeReplace: true, replaceOnChanges: ['userData'] });
    for (const type of [
      'digitalocean:index/volume:Volume',
      'digitalocean:index/reservedIp:ReservedIp',
      RECORD,
      FIREWALL,
      'digitalocean:index/tag:Tag',
      'digitalocean:index/uptimeCheck:UptimeCheck',
    ]) {
      expect(all(next, type).map((r) => r.in)).toEqual(all(base, type).map((r) => r.in));
    }
  });

  test('the uptime check probes https://<domain>/healthz and alerts the configured email when down or the certificate is old', () => {
    const check = one(base, 'digitalocean:index/uptimeCheck:UptimeCheck');
    expect(check.in).toMatchObject({ type: 'https', target: 'https://scim.example.com/healthz', regions: ['eu_west', 'us_east'] });
    const alerts = all(base, 'digitalocean:index/uptimeAlert:UptimeAlert');
    expect(alerts.map((a) => a.in.type).sort()).toEqual(['down', 'ssl_expiry']);
    for (const a of alerts) {
      expect(a.in.checkId).toBe(`${check.name}-check-id`);
      expect(a.in.notifications).toEqual([{ emails: ['ops@example.com'] }]);
    }
    expect(alerts.find((a) => a.in.type === 'down')!.in.period).toBe('5m');
    expect(alerts.find((a) => a.in.type === 'ssl_expiry')!.in).toMatchObject({ threshold: 14, comparison: 'less_than' });
  });

  test('the Droplet alerts on CPU, memory and disk, by email', () => {
    const alerts = all(base, 'digitalocean:index/monitorAlert:MonitorAlert');
    expect(Object.fromEntries(alerts.map((a) => [a.in.type, a.in.value]))).toEqual({
      'v1/insights/droplet/cpu': 90,
      'v1/insights/droplet/memory_utilization_percent': 90,
      'v1/insights/droplet/disk_utilization_percent': 85,
    });
    for (const a of alerts) {
      expect(a.in).toMatchObject({ compare: 'GreaterThan', window: '5m', entities: [DROPLET_ID], alerts: { emails: ['ops@example.com'] } });
      expect(a.in.description).toContain('scim.example.com');
    }
  });

  test('everything is tagged and placed in a project of its own', () => {
    const tag = one(base, 'digitalocean:index/tag:Tag', 'scim-bridge-tag');
    expect(tag.in.name).toBe('scim-bridge-digitalocean');
    expect(one(base, 'digitalocean:index/volume:Volume').in.tags).toEqual(['scim-bridge-digitalocean']);
    const project = one(base, 'digitalocean:index/project:Project');
    expect(project.in).toMatchObject({ name: 'scim-bridge-digitalocean', environment: 'Production' });
    expect(project.in.resources).toEqual([`do:droplet:${DROPLET_ID}`, 'do:volume:scim-bridge-data-id', `do:reservedip:${RESERVED_IP}`]);
  });

  test('outputs: baseUrl is https://<domain> without a trailing slash; the token is a secret output', () => {
    expect(Object.keys(base.plan.outputs).sort()).toEqual(['appToken', 'appTokenReference', 'baseUrl', 'ipAddress', 'target', 'token', 'tokenReference']);
    expect(base.plan.outputs.baseUrl).toBe('https://scim.example.com');
    expect(base.plan.outputs.target).toBe('digitalocean');
    expect(base.plan.outputs.token).toBe('[secret]');
    expect(base.plan.outputs.tokenReference).toBe(
      'Pulumi secret stack output "token" (DigitalOcean has no secret store); print it with: pulumi stack output token --show-secrets --stack digitalocean',
    );
    expect(base.plan.outputs.appToken).toBe('[secret]');
    expect(base.plan.outputs.appTokenReference).toBe(
      'Pulumi secret stack output "appToken" (DigitalOcean has no secret store); print it with: pulumi stack output appToken --show-secrets --stack digitalocean',
    );
  });

  test('the application API\'s token: generated, a secret output only, its SHA-256 on the Droplet', () => {
    const appToken = inventedSecret('scim-bridge-app-token');
    expect(base.raw.filter((r) => JSON.stringify(r.inputs).includes(appToken))).toEqual([]);
    expect(JSON.stringify(base.rawOutputs.appToken)).toContain(appToken);
    expect(userData(base)).toContain(`SCIM_BRIDGE_APP_TOKEN_SHA256=${sha256(appToken)}`);
  });

  test('a generated token is in no resource; the Droplet gets its SHA-256 as a tag its host reads, in user-data that is not a secret with a published image', async () => {
    const token = inventedSecret('scim-bridge-token');
    expect(base.raw.filter((r) => JSON.stringify(r.inputs).includes(token)).map((r) => `${r.type} ${r.name}`)).toEqual([]);
    // The hash travels as a tag of the Droplet (changed in place by a rotation), read by fetch-secrets from the
    // metadata service; the user-data names only the file the bridge reads.
    expect(one(base, 'digitalocean:index/tag:Tag', 'scim-bridge-token-sha256').in.name).toBe(`scim-bridge-digitalocean:token-sha256:${sha256(token)}`);
    expect(userData(base)).not.toContain(sha256(token));
    expect(userData(base)).toContain('SCIM_BRIDGE_TOKEN_SHA256_FILE=/run/secrets/token-sha256\n');
    expect(userData(base)).toContain('value_0=$(do_token_hashes)');
    expect(userData(base)).toContain("sed -n 's/^scim-bridge-digitalocean:token-sha256:\\([0-9a-f]\\{64\\}\\)$/\\1/p'");
    // With a published image no secret is in it, so it stays readable in previews; fetch-secrets has nothing to
    // fetch. (The shipped stack's holds the registry's read-only credential: test/infra/image-build.test.ts.)
    const published = await plan('digitalocean', { config: { 'scim-bridge:image': 'ghcr.io/scim-bridge/scim-bridge:0.1.0' } });
    expect(typeof one(published, DROPLET).inputs.userData).toBe('string');
    expect(userData(published)).not.toContain('webhook-secret');
    expect(userData(base)).not.toContain('webhook-secret');
    expect(one(base, 'random:index/randomPassword:RandomPassword', 'scim-bridge-token').in).toMatchObject({ length: 48, special: false });
    expect(JSON.stringify(base.plan)).not.toContain('PLAN-SECRET-');
  });

  test('a configured token (pulumi config set --secret token) is used instead of a generated one', async () => {
    const p = await plan('digitalocean', { config: { 'scim-bridge:token': { secure: 'v1:abc' } } });
    // Only the application API's token is generated then.
    expect(all(p, 'random:index/randomPassword:RandomPassword').map((r) => r.name)).toEqual(['scim-bridge-app-token']);
    const token = inventedSecret('token');
    expect(one(p, 'digitalocean:index/tag:Tag', 'scim-bridge-token-sha256').in.name).toBe(`scim-bridge-digitalocean:token-sha256:${sha256(token)}`);
    expect(p.raw.filter((r) => JSON.stringify(r.inputs).includes(token))).toEqual([]);
    expect(p.plan.outputs.token).toBe('[secret]');
    expect(p.leaks).toEqual([]);
  });

  test('a webhook: its secret reaches the Droplet as a root-only file in user-data, which becomes a secret', async () => {
    const p = await plan('digitalocean', { config: WEBHOOK });
    expect(p.leaks).toEqual([]);
    const secret = inventedSecret('webhookSecret');
    const droplet = one(p, DROPLET);
    // Marked secret (masked in the plan, encrypted in the state) and the only input holding the secret.
    expect(droplet.inputs.userData).toEqual({ [SECRET_SIG_KEY]: expect.any(String), value: expect.any(String) });
    expect(p.plan.resources.find((r) => r.type === DROPLET)!.inputs.userData).toBe('[secret]');
    expect(p.raw.filter((r) => JSON.stringify(r.inputs).includes(secret)).map((r) => `${r.type} ${r.name}`)).toEqual([`${DROPLET} scim-bridge-host`]);
    const doc = parse(userData(p)) as { write_files: Array<{ path: string; owner: string; permissions: string; content: string }> };
    expect(doc.write_files.find((f) => f.path === '/etc/scim-bridge/secrets/webhook-secret')).toEqual({
      path: '/etc/scim-bridge/secrets/webhook-secret',
      owner: 'root:root',
      permissions: '0600',
      content: `${secret}\n`,
    });
    const ud = userData(p);
    expect(ud).toContain('SCIM_BRIDGE_WEBHOOK_URL=https://app.example.com/hooks/scim');
    expect(ud).toContain('value_1=$(cat /etc/scim-bridge/secrets/webhook-secret)');
    expect(ud).toContain('put webhook-secret "$value_1"');
    expect(ud).toContain('SCIM_BRIDGE_WEBHOOK_SECRET_FILE=/run/secrets/webhook-secret\n');
    // Nothing of the token is there (its hash is a tag).
    const token = inventedSecret('scim-bridge-token');
    expect(ud).not.toContain(token);
    expect(ud).not.toContain(sha256(token));
    // The leak check lets the user-data hold the webhook secret and the Google Workspace connector's key (which
    // travels the same way), and nothing else the plan invents.
    expect(DIGITALOCEAN_SECRET_SINKS).toEqual([{ input: `${DROPLET}.userData`, only: ['webhookSecret', 'googleWorkspaceKey'] }]);
  });

  test('ACME: Let\'s Encrypt staging keeps the CAA record; a private directory drops it and ships its root', async () => {
    const staging = await plan('digitalocean', { config: { 'scim-bridge:acmeCa': 'staging' } });
    expect(userData(staging)).toContain('acme_ca https://acme-staging-v02.api.letsencrypt.org/directory');
    expect(all(staging, RECORD).map((r) => r.in.type).sort()).toEqual(['A', 'CAA']);
    const pem = '-----BEGIN CERTIFICATE-----\nMIIBprivate\n-----END CERTIFICATE-----';
    const custom = await plan('digitalocean', { config: { 'scim-bridge:acmeCa': 'https://ca.internal.example/acme/directory', 'scim-bridge:acmeCaRoot': pem } });
    expect(all(custom, RECORD).map((r) => r.in.type)).toEqual(['A']);
    expect(userData(custom)).toContain('acme_ca_root /etc/caddy/acme-ca-root.pem');
    expect(userData(custom)).toContain('MIIBprivate');
  });

  test('a bad stack configuration stops the plan before any resource, with every problem named', async () => {
    await expect(plan('digitalocean', { config: { 'scim-bridge:region': null, 'scim-bridge:dnsZone': 'example.org' } })).rejects.toThrow(
      /scim-bridge:dnsZone "example\.org" does not contain the domain scim\.example\.com[^\n]*\nscim-bridge:region is not set/,
    );
  });

  test('names: what DigitalOcean accepts for any stack name; records relative to the DigitalOcean domain', () => {
    expect(resourcePrefix('scim-bridge', 'Prod_EU.1')).toBe('scim-bridge-prod-eu-1');
    const long = volumeName(resourcePrefix('scim-bridge', 'x'.repeat(100)));
    expect(long.length).toBeLessThanOrEqual(64);
    expect(long).toMatch(/^[a-z][a-z0-9-]*-data$/);
    expect(recordName('scim.eu.example.com', 'example.com')).toBe('scim.eu');
    expect(recordName('example.com', 'example.com')).toBe('@');
    expect(() => recordName('scim.example.org', 'example.com')).toThrow(/not inside/);
  });
});

describe('npm run plan -- --stack digitalocean', () => {
  const ROOT = join(__dirname, '..', '..');
  const cli = (...args: string[]) =>
    promisify(execFile)(process.execPath, ['-r', 'ts-node/register/transpile-only', 'tools/plan.ts', '--stack', 'digitalocean', ...args], {
      cwd: ROOT,
      maxBuffer: 64 * 1024 * 1024,
    });

  test('--json prints the resources and outputs with the token masked; the leak check passes', async () => {
    const { stdout, stderr } = await cli('--json');
    expect(stderr).toBe('');
    const p = JSON.parse(stdout);
    expect(p.stack).toBe('digitalocean');
    expect(p.outputs).toEqual({
      baseUrl: 'https://scim.example.com',
      ipAddress: RESERVED_IP,
      target: 'digitalocean',
      token: '[secret]',
      tokenReference: expect.stringContaining('pulumi stack output token --show-secrets --stack digitalocean'),
      appToken: '[secret]',
      appTokenReference: expect.stringContaining('pulumi stack output appToken --show-secrets --stack digitalocean'),
    });
    expect(p.resources.map((r: { type: string }) => r.type)).toContain(DROPLET);
    expect(stdout).not.toContain('PLAN-SECRET-');
  });

  test('the text form marks the Droplet\'s replacement and the kept, protected volume', async () => {
    const { stdout } = await cli();
    expect(stdout).toMatch(/^digitalocean:index\/droplet:Droplet {2}scim-bridge-host {2}\(deleteBeforeReplace, replaceOnChanges=\["userData"\]\)$/m);
    expect(stdout).toMatch(/^digitalocean:index\/volume:Volume {2}scim-bridge-data {2}\(retainOnDelete, ignoreChanges=\["description"\], protect\)$/m);
    expect(stdout).toMatch(/leak check: passed/);
  });
});

/**
 * The Droplet's fetch-secrets, as rendered, run for real against a fake metadata service: the accepted token
 * hashes come from the Droplet's tags (`/metadata/v1/tags/`, one per line), the webhook secret from its root-only
 * file. A rotation (a tag added, then one removed) changes the hashes' file in place.
 */
describe('fetch-secrets on a Droplet, against a fake metadata service', () => {
  /* eslint-disable @typescript-eslint/no-require-imports */
  const fs = require('node:fs') as typeof import('node:fs');
  const http = require('node:http') as typeof import('node:http');
  const os = require('node:os') as typeof import('node:os');
  const { spawnSync } = require('node:child_process') as typeof import('node:child_process');
  /* eslint-enable @typescript-eslint/no-require-imports */
  const A = 'a'.repeat(64);
  const B = 'b'.repeat(64);
  let tags: string[];
  let server: import('node:http').Server;
  let dir: string;
  let script: string;
  let env: NodeJS.ProcessEnv;

  beforeAll(async () => {
    const p = await plan('digitalocean');
    const ud = parse(one(p, 'digitalocean:index/droplet:Droplet').in.userData) as { write_files: Array<{ path: string; content: string }> };
    const content = ud.write_files.find((f) => f.path === '/usr/local/lib/scim-bridge/fetch-secrets')!.content;
    const check = spawnSync('shellcheck', ['-s', 'bash', '-S', 'style', '-'], { encoding: 'utf8', input: content });
    expect(`${check.status} ${check.stdout}`).toBe('0 ');
    server = http.createServer((req, res) => {
      if (req.url !== '/metadata/v1/tags/') return void res.writeHead(404).end();
      res.writeHead(200, { 'content-type': 'text/plain' }).end(tags.join('\n'));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    dir = fs.mkdtempSync(join(os.tmpdir(), 'do-fetch-secrets-'));
    script = join(dir, 'fetch-secrets');
    fs.writeFileSync(script, content, { mode: 0o755 });
    env = { PATH: process.env.PATH, DO_METADATA_ENDPOINT: `http://127.0.0.1:${(server.address() as import('node:net').AddressInfo).port}` };
  }, 60_000);
  afterAll(async () => {
    server?.closeAllConnections();
    await new Promise((resolve) => server?.close(resolve));
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  // Asynchronous: the fake metadata service answers from this very process.
  const fetchSecrets = async (out: string) => {
    const r = await promisify(execFile)('bash', [script, out], { env, timeout: 20_000 }).then(
      (x) => ({ status: 0, stdout: x.stdout, stderr: x.stderr }),
      (e: { code?: number; stdout?: string; stderr?: string }) => ({ status: e.code ?? 1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' }),
    );
    return r;
  };

  test('the hashes of the stack\'s own tags (sorted, comma-separated), nothing of other tags; a rotation changes the file', async () => {
    const out = join(dir, 'rotation', 'secrets');
    const prefix = 'scim-bridge-digitalocean';
    tags = [prefix, `${prefix}:token-sha256:${B}`, `other-stack:token-sha256:${'c'.repeat(64)}`, `${prefix}:token-sha256:not-a-hash`];
    let r = await fetchSecrets(out);
    expect(`${r.status} ${r.stderr}`).toBe('0 ');
    expect(fs.readFileSync(join(out, 'token-sha256'), 'utf8')).toBe(`${B}\n`);
    // previousToken set: two hash tags.
    tags = [...tags, `${prefix}:token-sha256:${A}`];
    r = await fetchSecrets(out);
    expect(r.stdout).toBe('fetch-secrets: token-sha256 updated\n');
    expect(fs.readFileSync(join(out, 'token-sha256'), 'utf8')).toBe(`${A},${B}\n`);
    // previousToken removed.
    tags = tags.filter((t) => !t.endsWith(B));
    r = await fetchSecrets(out);
    expect(fs.readFileSync(join(out, 'token-sha256'), 'utf8')).toBe(`${A}\n`);
  });

  test('no hash tag: it fails (the bridge does not start without a token) and leaves the file in use', async () => {
    const out = join(dir, 'none', 'secrets');
    tags = ['scim-bridge-digitalocean', `scim-bridge-digitalocean:token-sha256:${A}`];
    expect((await fetchSecrets(out)).status).toBe(0);
    tags = ['scim-bridge-digitalocean'];
    const r = await fetchSecrets(out);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain("fetch-secrets: no token hash among the Droplet's tags");
    expect(fs.readFileSync(join(out, 'token-sha256'), 'utf8')).toBe(`${A}\n`);
  });
});

describe('the daily database backup on a Droplet (backup-database, a timer)', () => {
  /* eslint-disable @typescript-eslint/no-require-imports */
  const fs = require('node:fs') as typeof import('node:fs');
  const os = require('node:os') as typeof import('node:os');
  const { spawnSync } = require('node:child_process') as typeof import('node:child_process');
  /* eslint-enable @typescript-eslint/no-require-imports */
  const ROOT = join(__dirname, '..', '..');
  let files: Array<{ path: string; permissions: string; content: string }>;
  let runcmd: string[][];
  let dir: string;
  beforeAll(async () => {
    const doc = parse(userData(await plan('digitalocean'))) as { write_files: typeof files; runcmd: string[][] };
    files = doc.write_files;
    runcmd = doc.runcmd;
    dir = fs.mkdtempSync(join(os.tmpdir(), 'do-backup-'));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = (path: string) => files.find((f) => f.path === path)!;

  test('a timer runs it daily at 03:00 UTC (caught up after a downtime), only beside a running bridge; shellcheck passes', () => {
    expect(file(BACKUP_SCRIPT).permissions).toBe('0755');
    const timer = file('/etc/systemd/system/scim-bridge-backup.timer').content;
    expect(timer).toContain('OnCalendar=*-*-* 03:00:00 UTC');
    expect(timer).toContain('Persistent=true');
    const service = file('/etc/systemd/system/scim-bridge-backup.service').content;
    expect(service).toContain('Requisite=scim-bridge.service');
    expect(service).toContain(`ExecStart=${BACKUP_SCRIPT} 14`);
    expect(runcmd).toContainEqual(['systemctl', 'enable', '--now', '--no-block', 'scim-bridge-backup.timer']);
    const check = spawnSync('shellcheck', ['-s', 'bash', '-S', 'style', '-'], { encoding: 'utf8', input: file(BACKUP_SCRIPT).content });
    expect(`${check.status} ${check.stdout}`).toBe('0 ');
  });

  test('run for real: the bridge\'s own `scim-bridge backup` (in place of `docker exec`) writes a whole copy; the newest 14 stay', async () => {
    // The database a bridge would have, and the volume's backups directory with 15 older copies in it.
    const database = join(dir, 'scim-bridge.db');
    const { openStore } = await import('../../bridge/src/store');
    const store = await openStore(`sqlite:${database}`);
    await store.close();
    const backups = join(dir, 'backups');
    fs.mkdirSync(backups);
    const older = Array.from({ length: 15 }, (_, i) => `scim-bridge-202601${String(i + 1).padStart(2, '0')}T030000Z.db`);
    for (const name of older) fs.writeFileSync(join(backups, name), 'old');
    fs.writeFileSync(join(backups, 'notes.txt'), 'not a backup: left alone');
    // `docker exec scim-bridge scim-bridge backup /data/backups/<name>`: the same command, run by the real CLI, with
    // the container's /data/backups being this directory.
    const bin = join(dir, 'bin');
    fs.mkdirSync(bin);
    fs.writeFileSync(
      join(bin, 'docker'),
      [
        '#!/bin/sh',
        '[ "$1 $2 $3 $4" = "exec scim-bridge scim-bridge backup" ] || { echo "unexpected: $*" >&2; exit 2; }',
        // The container's environment is the bridge's, not the host script's.
        `exec env -u HOST_BACKUP_DIR node -r ts-node/register/transpile-only '${join(ROOT, 'bridge/src/cli/main.ts')}' backup "${backups}/\${5#/data/backups/}"`,
        '',
      ].join('\n'),
      { mode: 0o755 },
    );
    const script = join(dir, 'backup-database');
    fs.writeFileSync(script, file(BACKUP_SCRIPT).content, { mode: 0o755 });
    const run = await promisify(execFile)('bash', [script, '14'], {
      cwd: ROOT,
      env: { PATH: `${bin}:${process.env.PATH}`, HOST_BACKUP_DIR: backups, SCIM_BRIDGE_DATABASE_URL: `sqlite:${database}`, TS_NODE_PROJECT: join(ROOT, 'tsconfig.json') },
    });
    const left = fs.readdirSync(backups).sort();
    const made = left.filter((f) => !older.includes(f) && f !== 'notes.txt');
    expect(made).toEqual([expect.stringMatching(/^scim-bridge-\d{8}T\d{6}Z\.db$/)]);
    expect(run.stdout).toContain(`backup-database: ${made[0]}; 14 copies kept in ${backups}`);
    // The new copy is a whole scim-bridge database; of the older ones the two oldest went.
    expect(fs.readFileSync(join(backups, made[0])).subarray(0, 15).toString()).toBe('SQLite format 3');
    expect(left).toEqual([...older.slice(2), made[0], 'notes.txt'].sort());
  }, 60_000);
});

describe('a metrics token on DigitalOcean: its SHA-256 a tag of the Droplet, read every minute like the token\'s', () => {
  /* eslint-disable @typescript-eslint/no-require-imports */
  const fs = require('node:fs') as typeof import('node:fs');
  const http = require('node:http') as typeof import('node:http');
  const os = require('node:os') as typeof import('node:os');
  const { spawnSync } = require('node:child_process') as typeof import('node:child_process');
  /* eslint-enable @typescript-eslint/no-require-imports */
  let p: PlanResult;
  beforeAll(async () => {
    p = await plan('digitalocean', { config: { 'scim-bridge:metricsToken': { secure: 'v1:m' } } });
  });

  test('the tag, on the Droplet; the user-data names the tag\'s kind only, so a new token changes a tag, not the Droplet', async () => {
    expect(p.leaks).toEqual([]);
    const token = inventedSecret('metricsToken');
    const tag = one(p, 'digitalocean:index/tag:Tag', 'scim-bridge-metrics-token-sha256').in.name;
    expect(tag).toBe(`scim-bridge-digitalocean:metrics-token-sha256:${sha256(token)}`);
    expect(one(p, DROPLET).in.tags).toContain(tag);
    const ud = userData(p);
    expect(ud).not.toContain(sha256(token));
    expect(ud).toContain('SCIM_BRIDGE_METRICS_TOKEN_SHA256_FILE=/run/secrets/metrics-token-sha256');
    expect(ud).toContain('value_1=$(do_metrics_hash)');
    // Without one, the user-data is as before (no Droplet replaced by this version).
    expect(userData(await plan('digitalocean'))).not.toContain('metrics');
  });

  test('fetch-secrets, run against a fake metadata service, writes the token hashes and the metrics hash each to its file', async () => {
    const ud = parse(userData(p)) as { write_files: Array<{ path: string; content: string }> };
    const content = ud.write_files.find((f) => f.path === '/usr/local/lib/scim-bridge/fetch-secrets')!.content;
    const check = spawnSync('shellcheck', ['-s', 'bash', '-S', 'style', '-'], { encoding: 'utf8', input: content });
    expect(`${check.status} ${check.stdout}`).toBe('0 ');
    const A = 'a'.repeat(64);
    const M = 'c'.repeat(64);
    const tags = ['scim-bridge-digitalocean', `scim-bridge-digitalocean:token-sha256:${A}`, `scim-bridge-digitalocean:metrics-token-sha256:${M}`];
    const server = http.createServer((req, res) => {
      if (req.url !== '/metadata/v1/tags/') return void res.writeHead(404).end();
      res.writeHead(200, { 'content-type': 'text/plain' }).end(tags.join('\n'));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const dir = fs.mkdtempSync(join(os.tmpdir(), 'do-metrics-'));
    try {
      const script = join(dir, 'fetch-secrets');
      fs.writeFileSync(script, content, { mode: 0o755 });
      const out = join(dir, 'secrets');
      const env = { PATH: process.env.PATH, DO_METADATA_ENDPOINT: `http://127.0.0.1:${(server.address() as import('node:net').AddressInfo).port}` };
      const run = await promisify(execFile)('bash', [script, out], { env });
      expect(run.stdout).toBe('fetch-secrets: token-sha256 updated\nfetch-secrets: metrics-token-sha256 updated\n');
      expect(fs.readFileSync(join(out, 'token-sha256'), 'utf8')).toBe(`${A}\n`);
      expect(fs.readFileSync(join(out, 'metrics-token-sha256'), 'utf8')).toBe(`${M}\n`);
    } finally {
      server.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
