/**
 * What the three VM targets share, as one table of tests run over gcp, digitalocean and aws: the firewall,
 * DNS pointing at the static IP, the data disk kept, the uptime alert, the token only as a hash on the host,
 * the outputs' form, and an image update that replaces the host and nothing else. Each target's own rules
 * are in its own file (gcp.test.ts, digitalocean.test.ts, aws.test.ts).
 */
import { inventedSecret, plan, PlanResource, PlanResult } from '../../tools/plan';
import { all, sha256 } from '../helpers/plan';

type Any = any; // eslint-disable-line @typescript-eslint/no-explicit-any
const of = all;
const WORLD = ['0.0.0.0/0', '::/0'];
const portsOf = (from: number, to: number) => (from === to ? `${from}` : `${from}-${to}`);

/** How to read each target's plan for the shared questions. */
interface View {
  host: string;
  userData(host: Any): string;
  disk: string;
  /** "tcp/80"-style entries for everything the world can reach. */
  worldOpen(r: PlanResult): string[];
  /** The A record's name and value. */
  aRecord(r: PlanResult): { name: string; value: string };
  /** The URL the uptime check probes. */
  uptimeUrl(r: PlanResult): string;
  /** Every email address an alert about the bridge goes to. */
  alertEmails(r: PlanResult): string[];
  /** A kept disk's id as dataDiskImport takes it, and the import id Pulumi is given. */
  keptDisk: { id: string; importId: string };
  /** The accepted token hashes where the host fetches them (not its user-data), comma-separated, sorted. */
  tokenHashes(r: PlanResult): string;
  /**
   * The host's inputs a rotation changes in place (never one that replaces it): DigitalOcean's Droplet carries the
   * hashes as tags (no secret store); the others' hosts none.
   */
  rotatedInPlace: string[];
}

const sortedList = (v: string) => v.split(',').sort().join(',');

const VIEWS: Record<string, View> = {
  gcp: {
    host: 'gcp:compute/instance:Instance',
    userData: (h) => h.metadata['user-data'],
    disk: 'gcp:compute/disk:Disk',
    worldOpen: (r) =>
      of(r, 'gcp:compute/firewall:Firewall')
        .filter((f) => f.in.sourceRanges.some((s: string) => WORLD.includes(s)))
        .flatMap((f) => f.in.allows.flatMap((a: Any) => (a.ports ?? ['all']).map((p: string) => `${a.protocol}/${p}`))),
    aRecord: (r) => {
      const a = of(r, 'gcp:dns/recordSet:RecordSet').find((x) => x.in.type === 'A')!;
      return { name: a.in.name.replace(/\.$/, ''), value: a.in.rrdatas.join(',') };
    },
    uptimeUrl: (r) => {
      const c = of(r, 'gcp:monitoring/uptimeCheckConfig:UptimeCheckConfig')[0];
      return `${c.in.httpCheck.useSsl ? 'https' : 'http'}://${c.in.monitoredResource.labels.host}${c.in.httpCheck.path}`;
    },
    alertEmails: (r) => of(r, 'gcp:monitoring/notificationChannel:NotificationChannel').map((c) => c.in.labels.email_address),
    keptDisk: { id: 'scim-bridge-data-1a2b3c4', importId: 'projects/my-gcp-project/zones/europe-west1-b/disks/scim-bridge-data-1a2b3c4' },
    rotatedInPlace: [],
    tokenHashes: (r) => sortedList(of(r, 'gcp:secretmanager/secretVersion:SecretVersion').find((v) => v.name === 'scim-bridge-token-sha256')!.in.secretData),
  },
  digitalocean: {
    host: 'digitalocean:index/droplet:Droplet',
    userData: (h) => h.userData,
    disk: 'digitalocean:index/volume:Volume',
    worldOpen: (r) =>
      of(r, 'digitalocean:index/firewall:Firewall').flatMap((f) =>
        f.in.inboundRules.filter((i: Any) => i.sourceAddresses?.some((s: string) => WORLD.includes(s))).map((i: Any) => `${i.protocol}/${i.portRange ?? 'all'}`),
      ),
    aRecord: (r) => {
      const a = of(r, 'digitalocean:index/dnsRecord:DnsRecord').find((x) => x.in.type === 'A')!;
      return { name: a.in.name === '@' ? a.in.domain : `${a.in.name}.${a.in.domain}`, value: a.in.value };
    },
    uptimeUrl: (r) => of(r, 'digitalocean:index/uptimeCheck:UptimeCheck')[0].in.target,
    alertEmails: (r) => of(r, 'digitalocean:index/uptimeAlert:UptimeAlert').flatMap((a) => a.in.notifications.flatMap((n: Any) => n.emails ?? [])),
    keptDisk: { id: '506f78a4-e098-11e5-ad9f-000f53306ae1', importId: '506f78a4-e098-11e5-ad9f-000f53306ae1' },
    rotatedInPlace: ['tags'],
    tokenHashes: (r) => {
      // The Droplet's tags that carry a hash, by the Tag resources' names.
      const tags = new Set(of(r, 'digitalocean:index/droplet:Droplet')[0].in.tags as string[]);
      return of(r, 'digitalocean:index/tag:Tag')
        .map((t) => t.in.name as string)
        .filter((n) => tags.has(n) && /:token-sha256:[0-9a-f]{64}$/.test(n))
        .map((n) => n.slice(-64))
        .sort()
        .join(',');
    },
  },
  aws: {
    host: 'aws:ec2/instance:Instance',
    userData: (h) => h.userData,
    disk: 'aws:ebs/volume:Volume',
    worldOpen: (r) => {
      const rules: Any[] = [
        ...of(r, 'aws:ec2/securityGroup:SecurityGroup').flatMap((g) => g.in.ingress ?? []),
        ...of(r, 'aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule').map((x) => ({
          protocol: x.in.ipProtocol,
          fromPort: x.in.fromPort,
          toPort: x.in.toPort,
          cidrBlocks: x.in.cidrIpv4 ? [x.in.cidrIpv4] : [],
          ipv6CidrBlocks: x.in.cidrIpv6 ? [x.in.cidrIpv6] : [],
        })),
      ];
      return rules
        .filter((i) => [...(i.cidrBlocks ?? []), ...(i.ipv6CidrBlocks ?? [])].some((s: string) => WORLD.includes(s)))
        .map((i) => `${i.protocol}/${i.protocol === '-1' ? 'all' : portsOf(i.fromPort, i.toPort)}`);
    },
    aRecord: (r) => {
      const a = of(r, 'aws:route53/record:Record').find((x) => x.in.type === 'A')!;
      return { name: a.in.name, value: a.in.records.join(',') };
    },
    uptimeUrl: (r) => {
      const h = of(r, 'aws:route53/healthCheck:HealthCheck')[0];
      return `${h.in.type.toLowerCase()}://${h.in.fqdn}${h.in.resourcePath}`;
    },
    alertEmails: (r) => of(r, 'aws:sns/topicSubscription:TopicSubscription').filter((s) => s.in.protocol === 'email').map((s) => s.in.endpoint),
    keptDisk: { id: 'vol-0123456789abcdef0', importId: 'vol-0123456789abcdef0' },
    rotatedInPlace: [],
    tokenHashes: (r) => sortedList(of(r, 'aws:secretsmanager/secretVersion:SecretVersion').find((v) => v.name === 'scim-bridge-token-sha256')!.in.secretString),
  },
};

const results: Record<string, PlanResult> = {};
const pinned: Record<string, PlanResult> = {};
const updated: Record<string, PlanResult> = {};

beforeAll(async () => {
  for (const stack of Object.keys(VIEWS)) {
    results[stack] = await plan(stack);
    pinned[stack] = await plan(stack, { config: { 'scim-bridge:image': 'ghcr.io/scim-bridge/scim-bridge:9.9.8' } });
    updated[stack] = await plan(stack, { config: { 'scim-bridge:image': 'ghcr.io/scim-bridge/scim-bridge:9.9.9' } });
  }
}, 120_000);

describe.each(Object.keys(VIEWS))('the %s target', (stack) => {
  const view = VIEWS[stack];
  const r = () => results[stack];
  const host = (p: PlanResult) => {
    const hosts = of(p, view.host);
    expect(hosts).toHaveLength(1);
    return hosts[0];
  };

  test('is one scim-bridge:<target>:Bridge component holding every resource', () => {
    expect(r().raw[0]).toMatchObject({ type: `scim-bridge:${stack}:Bridge`, name: 'scim-bridge' });
    expect(r().raw.filter((x) => x.type.startsWith('scim-bridge:'))).toHaveLength(1);
  });

  test('the world reaches tcp 80 and 443, and nothing else', () => {
    expect([...new Set(view.worldOpen(r()))].sort()).toEqual(['tcp/443', 'tcp/80']);
  });

  test('the A record for the domain points at the static IP, which is the ipAddress output', () => {
    const ip = r().plan.outputs.ipAddress as string;
    expect(ip).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
    expect(view.aRecord(r())).toEqual({ name: 'scim.example.com', value: ip });
  });

  test('the data disk is a resource of its own, kept on delete, not the host\'s boot disk', () => {
    const disks = of(r(), view.disk);
    expect(disks).toHaveLength(1);
    expect(disks[0].options.retainOnDelete).toBe(true);
    expect(view.userData(host(r()).in)).toMatch(/prepare-disk \/dev\/disk\/by-id\/\S+ \/srv\/scim-bridge 10001/);
  });

  test('an uptime check probes https://<domain>/healthz and alerts the configured email', () => {
    expect(view.uptimeUrl(r())).toBe('https://scim.example.com/healthz');
    expect(new Set(view.alertEmails(r()))).toEqual(new Set(['ops@example.com']));
  });

  test('the host fetches the token\'s SHA-256 (nothing of the token is in its user-data); the token is nowhere in clear', () => {
    const token = inventedSecret('scim-bridge-token');
    const ud = view.userData(host(r()).in);
    expect(view.tokenHashes(r())).toBe(sha256(token));
    expect(ud).toContain('SCIM_BRIDGE_TOKEN_SHA256_FILE=/run/secrets/token-sha256\n');
    expect(ud).not.toContain('SCIM_BRIDGE_TOKEN_SHA256=');
    expect(ud).not.toContain(sha256(token));
    expect(ud).not.toContain(token);
    expect(r().leaks).toEqual([]);
    expect(JSON.stringify(r().plan)).not.toContain('PLAN-SECRET-');
  });

  test('the bridge builds its links from the Base URL: SCIM_BRIDGE_PUBLIC_URL is https://<domain>, the baseUrl output', () => {
    const ud = view.userData(host(r()).in);
    expect(ud).toContain('SCIM_BRIDGE_PUBLIC_URL=https://scim.example.com\n');
    expect(r().plan.outputs.baseUrl).toBe('https://scim.example.com');
  });

  test('the application API is on: the host gets its token\'s SHA-256, and an output says where the token is', () => {
    const appToken = inventedSecret('scim-bridge-app-token');
    const ud = view.userData(host(r()).in);
    expect(ud).toContain(`SCIM_BRIDGE_APP_TOKEN_SHA256=${sha256(appToken)}`);
    expect(ud).not.toContain(appToken);
    expect(r().plan.outputs.appTokenReference).toEqual(expect.stringContaining('app'));
    expect(r().plan.outputs.appTokenReference).not.toBe(r().plan.outputs.tokenReference);
  });

  test('outputs: baseUrl https://<domain> without a trailing slash, the static IP, the target, a token reference', () => {
    const out = r().plan.outputs;
    expect(out.baseUrl).toBe('https://scim.example.com');
    expect(out.target).toBe(stack);
    expect(typeof out.tokenReference).toBe('string');
    expect(out.tokenReference).not.toContain('PLAN-SECRET-');
    expect((out.tokenReference as string).length).toBeGreaterThan(20);
  });

  test('dataDiskImport adopts a kept disk (Pulumi\'s import) instead of creating a blank one', async () => {
    const adopted = await plan(stack, { config: { 'scim-bridge:dataDiskImport': view.keptDisk.id } });
    expect(adopted.leaks).toEqual([]);
    const disks = of(adopted, view.disk);
    expect(disks).toHaveLength(1);
    expect(disks[0].options).toMatchObject({ import: view.keptDisk.importId, retainOnDelete: true });
    expect(of(r(), view.disk)[0].options.import).toBeUndefined();
    const bad = await plan(stack, { config: { 'scim-bridge:dataDiskImport': 'Not An Id' } }).catch((e: Error) => e.message);
    expect(bad).toMatch(/^the stack configuration has problems:\nscim-bridge:dataDiskImport "Not An Id" is not /);
  });

  test('a new image replaces the host (the old one first) and changes nothing else', () => {
    // From one published image to another (a new build is a new digest the same way: image-build.test.ts).
    const before = host(pinned[stack]);
    const after = host(updated[stack]);
    expect(view.userData(after.in)).toContain('ghcr.io/scim-bridge/scim-bridge:9.9.9');
    expect(view.userData(after.in)).not.toBe(view.userData(before.in));
    expect(after.options.deleteBeforeReplace).toBe(true);
    const others = (p: PlanResult) => p.raw.filter((x: PlanResource) => x.type !== view.host).map((x) => [x.type, x.name, JSON.stringify(x.inputs)]);
    expect(others(updated[stack])).toEqual(others(pinned[stack]));
  });

  // A rotation (DESIGN.md "Pulumi"): a new token with the old one as previousToken, then previousToken removed.
  // The host is neither replaced nor updated: its inputs, user-data included, stay byte for byte; only where the
  // host fetches the hashes changes, and it accepts both during the window.
  test('a token rotation (new token + previousToken, then previousToken removed) leaves the host\'s inputs unchanged', async () => {
    const oldToken = { 'scim-bridge:token': { secure: 'v1:old' } };
    // The plan invents a secret's value from its key: the old token is `token`'s in the first stack, `previousToken`'s after.
    const before = await plan(stack, { config: oldToken });
    const windowOpen = await plan(stack, { config: { 'scim-bridge:token': { secure: 'v1:new' }, 'scim-bridge:previousToken': { secure: 'v1:old' } } });
    const windowClosed = await plan(stack, { config: { 'scim-bridge:token': { secure: 'v1:new' }, 'scim-bridge:previousToken': null } });
    for (const p of [before, windowOpen, windowClosed]) expect(p.leaks).toEqual([]);
    const inputs = (p: PlanResult) => JSON.stringify({ ...host(p).inputs, ...Object.fromEntries(view.rotatedInPlace.map((k) => [k, 'changed in place'])) });
    expect(view.userData(host(windowOpen).in)).toBe(view.userData(host(before).in));
    expect(inputs(windowOpen)).toBe(inputs(before));
    expect(inputs(windowClosed)).toBe(inputs(before));
    expect(host(windowOpen).options).toEqual(host(before).options);
    // What changes in place never replaces the host.
    for (const k of view.rotatedInPlace) expect(host(before).options.replaceOnChanges ?? []).not.toContain(k);
    const tokenHash = sha256(inventedSecret('token'));
    const previousHash = sha256(inventedSecret('previousToken'));
    expect(view.tokenHashes(before)).toBe(tokenHash);
    expect(view.tokenHashes(windowOpen)).toBe([tokenHash, previousHash].sort().join(','));
    expect(view.tokenHashes(windowClosed)).toBe(tokenHash);
  });

  test('previousToken alone, in clear, or equal to token is refused', async () => {
    const alone = await plan(stack, { config: { 'scim-bridge:previousToken': { secure: 'v1:old' } } }).catch((e: Error) => e.message);
    expect(alone).toMatch(/scim-bridge:previousToken is set but token is not/);
    const clear = await plan(stack, { config: { 'scim-bridge:token': { secure: 'v1:new' }, 'scim-bridge:previousToken': 'an-old-token-in-clear-0123456789' } }).catch((e: Error) => e.message);
    expect(clear).toMatch(/scim-bridge:previousToken is stored in clear/);
  });
});
