/**
 * The policy pack (infra/policy), run without a Pulumi CLI: each policy is called the way @pulumi/policy's
 * analyzer server (server.js) calls it for the engine, on the resources of the offline plan of every stack (no
 * violation) and on variants of those resources made to violate it (the expected message).
 *
 * How the engine's view is rebuilt: resource inputs come from the plan (secrets unwrapped, behind @pulumi/policy's
 * unknown-checking proxy, as the server does); URNs, parents, dependencies, property dependencies and options come
 * from the same registrations as Pulumi's mock monitor receives them (the plan does not record them), captured by
 * wrapping MockMonitor.registerResource. Options are reduced to what the analyzer protocol carries
 * (PolicyResourceOptions: no retainOnDelete).
 */
import { ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import type {
  EnforcementLevel,
  Policy,
  PolicyPackConfig,
  PolicyResource,
  PolicyResourceOptions,
  ResourceValidationArgs,
  ResourceValidationPolicy,
  StackValidationArgs,
  StackValidationPolicy,
} from '@pulumi/policy';
import { unknownCheckingProxy, UnknownValueError } from '@pulumi/policy';
import { MockMonitor } from '@pulumi/pulumi/runtime/mocks';
import { parse } from 'yaml';
import { WEBHOOK_SECRET_FILE } from '../../infra/digitalocean';
import { T } from '../../infra/policy/common';
import { DATA_DISK_NOT_INLINE, DATA_DISK_OUTLIVES_HOST } from '../../infra/policy/data-disk';
import { DISKS_ENCRYPTED } from '../../infra/policy/encryption';
import { KUBERNETES_NETWORK_POLICY, KUBERNETES_NO_SECRETS_IN_ENV, KUBERNETES_RESOURCES_SET, KUBERNETES_RESTRICTED_PODS } from '../../infra/policy/kubernetes';
import { ONLY_HTTPS_OPEN } from '../../infra/policy/network';
import { packArgs, POLICY_PACK_NAME } from '../../infra/policy/policies';
import { DIGITALOCEAN_WEBHOOK_SECRET_FILE, NO_SECRETS_IN_USER_DATA, scanText } from '../../infra/policy/secrets';
import { plan, PlanResult } from '../../tools/plan';
import { writtenFiles } from '../helpers/plan';

type Any = any; // eslint-disable-line @typescript-eslint/no-explicit-any
const ROOT = join(__dirname, '..', '..');
const SECRET_SIG_KEY = '4dabf18193072939515e22adb298388d';

// ---------------------------------------------------------------------------------------------------------------
// What the engine would hand the analyzer: registrations captured from the mock monitor.

interface Registration {
  urn: string;
  type: string;
  name: string;
  custom: boolean;
  parent: string;
  dependencies: string[];
  propertyDependencies: Record<string, string[]>;
  opts: PolicyResourceOptions;
  /** Visible here, not to a policy: for the test of what the pack leaves to the plan. */
  retainOnDelete: boolean;
}

let captured: Registration[] = [];
const registerResource = MockMonitor.prototype.registerResource;
beforeAll(() => {
  MockMonitor.prototype.registerResource = function (this: MockMonitor, req: Any, callback: (err: Any, res: Any) => void) {
    return registerResource.call(this, req, (err: Any, res: Any) => {
      if (res) {
        // As @pulumi/policy's getResourceOptions builds them from pulumirpc.AnalyzerResourceOptions.
        const opts: PolicyResourceOptions = {
          protect: !!req.getProtect(),
          ignoreChanges: req.getIgnorechangesList(),
          aliases: req.getAliasurnsList(),
          customTimeouts: { createSeconds: 0, updateSeconds: 0, deleteSeconds: 0 },
          additionalSecretOutputs: req.getAdditionalsecretoutputsList(),
        };
        if (req.getDeletebeforereplacedefined()) opts.deleteBeforeReplace = req.getDeletebeforereplace();
        if (req.getParent()) opts.parent = req.getParent();
        captured.push({
          urn: res.getUrn(),
          type: req.getType(),
          name: req.getName(),
          custom: req.getCustom(),
          parent: req.getParent(),
          dependencies: req.getDependenciesList(),
          propertyDependencies: Object.fromEntries([...req.getPropertydependenciesMap().entries()].map(([k, v]: [string, Any]) => [k, v.getUrnsList()])),
          opts,
          retainOnDelete: !!req.getRetainondelete(),
        });
      }
      callback(err, res);
    });
  };
});
afterAll(() => {
  MockMonitor.prototype.registerResource = registerResource;
});

/** A resource as a policy receives it: plain inputs (secrets unwrapped) and the engine's metadata. */
interface Res {
  type: string;
  name: string;
  urn: string;
  props: Any;
  reg: Registration;
}

interface Planned {
  result: PlanResult;
  resources: Res[];
  /** Every registration (stack, component, providers too), as analyzeStack receives the whole stack. */
  registrations: Registration[];
}

function plain(v: unknown): Any {
  if (Array.isArray(v)) return v.map(plain);
  if (v && typeof v === 'object') {
    if (SECRET_SIG_KEY in v) return plain((v as unknown as { value: unknown }).value);
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)]));
  }
  return v;
}

async function planned(stack: string, config?: Record<string, Any>): Promise<Planned> {
  captured = [];
  const result = await plan(stack, config ? { config } : {});
  const registrations = captured;
  const resources = result.raw.map((r) => {
    const reg = registrations.find((x) => x.type === r.type && x.name === r.name);
    if (!reg) throw new Error(`no registration captured for ${r.type} ${r.name}`);
    return { type: r.type, name: r.name, urn: reg.urn, props: plain(r.inputs), reg };
  });
  return { result, resources, registrations };
}

function one(p: Planned, type: string, name?: string): Res {
  const found = p.resources.filter((r) => r.type === type && (name === undefined || r.name === name));
  expect(found.map((r) => `${r.type} ${r.name}`)).toHaveLength(1);
  return found[0];
}

/**
 * A deep copy made in the test's own realm: Jest runs tests in a separate V8 context, and @pulumi/policy's proxy
 * wraps only objects that are `instanceof Object` there (structuredClone would return objects of the outer realm,
 * which the proxy would silently leave unchecked).
 */
const copy = <V>(v: V): V => JSON.parse(JSON.stringify(v)) as V;

/** A copy of a planned resource with changed inputs (and optionally another type). */
function variant(r: Res, change: (props: Any) => void, type = r.type): Res {
  const props = copy(r.props);
  change(props);
  return { ...r, type, props };
}

// ---------------------------------------------------------------------------------------------------------------
// The analyzer, as @pulumi/policy's server.js runs policies (makeAnalyzeRpcFun, makeAnalyzeStackRpcFun).

class NotApplicableError extends Error {
  constructor(readonly reason?: string) {
    super(reason ?? 'Policy does not apply');
  }
}
const throwNotApplicable = (reason?: string): never => {
  throw new NotApplicableError(reason);
};
const stackTags: ReadonlyMap<string, string> = new Map();

interface Violation {
  policy: string;
  /** What the engine prints: the policy's description, a line break, the message. */
  message: string;
  /** The message the policy gave. */
  detail: string;
  urn?: string;
  enforcementLevel: EnforcementLevel;
}
interface Outcome {
  violations: Violation[];
  notApplicable: Array<{ policy: string; reason?: string }>;
  /** "can't run policy during preview" notes (an unknown input). */
  advisories: string[];
}

const isResourcePolicy = (p: Policy): p is ResourceValidationPolicy => typeof (p as ResourceValidationPolicy).validateResource === 'function';
const isStackPolicy = (p: Policy): p is StackValidationPolicy => typeof (p as StackValidationPolicy).validateStack === 'function';

function enforcementLevelOf(p: Policy, config: PolicyPackConfig): EnforcementLevel {
  const c = config[p.name];
  return (typeof c === 'object' ? c.enforcementLevel : undefined) || p.enforcementLevel || packArgs.enforcementLevel || 'advisory';
}

function getConfigFor(p: Policy, config: PolicyPackConfig) {
  return <C extends object>(): C => {
    const c = config[p.name];
    if (!c || typeof c !== 'object') return {} as C;
    const { enforcementLevel: _level, ...properties } = c;
    return properties as C;
  };
}

function collect(p: Policy, level: EnforcementLevel, out: Outcome) {
  return (message: string, urn?: string) => {
    out.violations.push({ policy: p.name, message: `${p.description}\n${message}`, detail: message, urn, enforcementLevel: level });
  };
}

async function guarded(p: Policy, out: Outcome, run: () => Promise<void> | void): Promise<void> {
  try {
    await Promise.resolve(run());
  } catch (e) {
    // (@pulumi/policy ships UnknownValueError without its type: the import is typed any, so no narrowing here.)
    if (e instanceof UnknownValueError) out.advisories.push(`can't run policy '${p.name}' during preview: ${(e as Error).message}`);
    else if (e instanceof NotApplicableError) out.notApplicable.push({ policy: p.name, reason: e.reason });
    else throw e;
  }
}

/** Every resource policy on one resource (the engine's `analyze`). */
async function analyze(r: Res, config: PolicyPackConfig = {}): Promise<Outcome> {
  const out: Outcome = { violations: [], notApplicable: [], advisories: [] };
  for (const p of packArgs.policies) {
    const level = enforcementLevelOf(p, config);
    if (level === 'disabled' || !isResourcePolicy(p) || typeof p.validateResource !== 'function') continue;
    const validate = p.validateResource;
    const props = unknownCheckingProxy(r.props);
    const args: ResourceValidationArgs = {
      type: r.type,
      props,
      urn: r.urn,
      name: r.name,
      opts: r.reg.opts,
      stackTags,
      isType: (cls) => (cls as Any).__pulumiType === r.type,
      asType: (cls) => ((cls as Any).__pulumiType === r.type ? props : undefined) as Any,
      getConfig: getConfigFor(p, config),
      notApplicable: throwNotApplicable,
    };
    await guarded(p, out, () => validate(args, collect(p, level, out)));
  }
  return out;
}

/** The stack as analyzeStack receives it: every resource, with parent and dependencies as resource objects. */
function stackResources(registrations: Registration[], propsOf: (urn: string) => Any): PolicyResource[] {
  const resources = registrations.map((reg) => {
    const props = unknownCheckingProxy(propsOf(reg.urn) ?? {});
    const resource: PolicyResource = {
      type: reg.type,
      props,
      urn: reg.urn,
      name: reg.name,
      opts: reg.opts,
      dependencies: [],
      propertyDependencies: {},
      isType: (cls) => (cls as Any).__pulumiType === reg.type,
      asType: (cls) => ((cls as Any).__pulumiType === reg.type ? props : undefined) as Any,
    };
    return resource;
  });
  const byUrn = new Map(resources.map((r) => [r.urn, r]));
  registrations.forEach((reg, i) => {
    const r = resources[i];
    const parent = byUrn.get(reg.parent);
    if (parent) r.parent = parent;
    r.dependencies = reg.dependencies.map((u) => byUrn.get(u)).filter((x): x is PolicyResource => !!x);
    for (const [k, urns] of Object.entries(reg.propertyDependencies)) {
      r.propertyDependencies[k] = urns.map((u) => byUrn.get(u)).filter((x): x is PolicyResource => !!x);
    }
  });
  return resources;
}

/** Every stack policy on the whole stack (the engine's `analyzeStack`). */
async function analyzeStack(p: Planned, registrations = p.registrations, config: PolicyPackConfig = {}): Promise<Outcome> {
  const out: Outcome = { violations: [], notApplicable: [], advisories: [] };
  const props = new Map(p.resources.map((r) => [r.urn, r.props]));
  for (const policy of packArgs.policies) {
    const level = enforcementLevelOf(policy, config);
    if (level === 'disabled' || !isStackPolicy(policy)) continue;
    const args: StackValidationArgs = {
      resources: stackResources(registrations, (urn) => props.get(urn)),
      getConfig: getConfigFor(policy, config),
      stackTags,
      notApplicable: throwNotApplicable,
    };
    await guarded(policy, out, () => policy.validateStack(args, collect(policy, level, out)));
  }
  return out;
}

const details = (o: Outcome, policy: string) => o.violations.filter((v) => v.policy === policy).map((v) => v.detail);
/** The violations of one policy on one resource, with nothing else reported by any other policy. */
async function violations(r: Res, policy: string, config: PolicyPackConfig = {}): Promise<string[]> {
  const o = await analyze(r, config);
  expect(o.advisories).toEqual([]);
  return details(o, policy);
}

// ---------------------------------------------------------------------------------------------------------------
// The stacks.

const WEBHOOK = { 'scim-bridge:webhookUrl': 'https://app.example.com/hooks/scim', 'scim-bridge:webhookSecret': { secure: 'v1:x' } };
const ADMIN = { 'scim-bridge:adminSourceRanges': ['203.0.113.0/24', '2001:db8::/32'] };
/** The DigitalOcean trade-off, accepted deliberately (README, "Who can read what on DigitalOcean"). */
const ACCEPT_DO_WEBHOOK: PolicyPackConfig = { [NO_SECRETS_IN_USER_DATA]: { allowDigitalOceanWebhookSecretInUserData: true } };

const VARIANTS: Record<string, { stack: string; config?: Record<string, Any>; policyConfig?: PolicyPackConfig }> = {
  gcp: { stack: 'gcp' },
  digitalocean: { stack: 'digitalocean' },
  aws: { stack: 'aws' },
  'gcp with a webhook and SSH from admin ranges': { stack: 'gcp', config: { ...WEBHOOK, ...ADMIN } },
  'digitalocean with a webhook and SSH from admin ranges': { stack: 'digitalocean', config: { ...WEBHOOK, ...ADMIN }, policyConfig: ACCEPT_DO_WEBHOOK },
  'aws with a webhook and SSH from admin ranges': { stack: 'aws', config: { ...WEBHOOK, ...ADMIN } },
};
const plans: Record<string, Planned> = {};

// The pack as the Pulumi CLI runs it (`pulumi preview --policy-pack infra/policy` starts this runner in the pack's
// directory, which type-checks it with ts-node and serves it over gRPC). Started first: loading takes seconds.
let packServer: ChildProcess | undefined;
let packPort: Promise<number>;
beforeAll(() => {
  const server = spawn(process.execPath, [require.resolve('@pulumi/pulumi/cmd/run-policy-pack'), '127.0.0.1:0', '.'], {
    cwd: join(ROOT, 'infra', 'policy'),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  packServer = server;
  packPort = new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    server.stdout!.on('data', (d) => {
      out += d;
      const m = /^(\d+)\s*$/m.exec(out);
      if (m) resolve(Number(m[1]));
    });
    server.stderr!.on('data', (d) => (err += d));
    server.on('exit', (code) => reject(new Error(`the policy pack exited (${code}): ${out}${err}`)));
  });
  packPort.catch(() => undefined); // reported by the test that needs it
});
afterAll(() => {
  packServer?.kill();
});

beforeAll(async () => {
  for (const [label, v] of Object.entries(VARIANTS)) plans[label] = await planned(v.stack, v.config);
}, 60_000);

const HOST = { gcp: T.gcpInstance, digitalocean: T.doDroplet, aws: T.awsInstance } as const;
const DISK = { gcp: T.gcpDisk, digitalocean: T.doVolume, aws: T.awsVolume } as const;
const userDataOf = (r: Res): string => (r.type === T.gcpInstance ? r.props.metadata['user-data'] : r.props.userData);
function setUserData(props: Any, type: string, text: string) {
  if (type === T.gcpInstance) props.metadata['user-data'] = text;
  else props.userData = text;
}
/** Adds a line to the bridge's environment file inside a #cloud-config user-data. */
const withBridgeEnvLine = (userData: string, line: string) => {
  expect(userData).toMatch(/^ +SCIM_BRIDGE_TRUST_PROXY=true$/m);
  return userData.replace(/^( +)(SCIM_BRIDGE_TRUST_PROXY=true)$/m, `$1$2\n$1${line}`);
};

// ---------------------------------------------------------------------------------------------------------------

describe('the pack', () => {
  test('declares nine policies (five for the VM hosts, four for Kubernetes) with unique, valid names, every one mandatory (the pack\'s default too)', () => {
    const names = packArgs.policies.map((p) => p.name);
    expect(names).toEqual([
      ONLY_HTTPS_OPEN,
      DISKS_ENCRYPTED,
      NO_SECRETS_IN_USER_DATA,
      DATA_DISK_NOT_INLINE,
      DATA_DISK_OUTLIVES_HOST,
      KUBERNETES_RESTRICTED_PODS,
      KUBERNETES_RESOURCES_SET,
      KUBERNETES_NO_SECRETS_IN_ENV,
      KUBERNETES_NETWORK_POLICY,
    ]);
    expect(new Set(names).size).toBe(names.length);
    expect(packArgs.enforcementLevel).toBe('mandatory');
    for (const p of packArgs.policies) {
      expect(p.name).not.toBe('all'); // reserved by @pulumi/policy
      expect(p.name).toMatch(/^scim-bridge-[a-z0-9-]+$/);
      expect(p.enforcementLevel).toBe('mandatory');
      expect(enforcementLevelOf(p, {})).toBe('mandatory');
      expect(p.description.length).toBeGreaterThan(80);
      // @pulumi/policy refuses enforcementLevel inside a config schema.
      expect(p.configSchema?.properties?.enforcementLevel).toBeUndefined();
      expect(p.configSchema?.required ?? []).not.toContain('enforcementLevel');
    }
    expect(packArgs.policies.filter(isStackPolicy).map((p) => p.name)).toEqual([DATA_DISK_OUTLIVES_HOST, KUBERNETES_NETWORK_POLICY]);
  });

  test('PulumiPolicy.yaml is a nodejs pack; package.json gives the version; the name passes Pulumi\'s rule', () => {
    const dir = join(ROOT, 'infra', 'policy');
    const manifest = parse(readFileSync(join(dir, 'PulumiPolicy.yaml'), 'utf8')) as Record<string, unknown>;
    expect(manifest.runtime).toBe('nodejs');
    // PulumiPolicy.yaml's fields (workspace.PolicyPackProject); the name is the one given to PolicyPack.
    for (const k of Object.keys(manifest)) expect(['runtime', 'version', 'main', 'description', 'author', 'website', 'license']).toContain(k);
    expect(typeof manifest.description).toBe('string');
    // PolicyPack reads the version from package.json in the directory the CLI runs the pack in.
    const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { version?: string; main?: string };
    expect(pkg.version).toMatch(/^\d+\.\d+\.\d+/);
    expect(readFileSync(join(dir, pkg.main ?? 'index.ts'), 'utf8')).toMatch(/new PolicyPack\(POLICY_PACK_NAME, packArgs\)/);
    expect(POLICY_PACK_NAME).toMatch(/^[a-zA-Z0-9-_.]{1,100}$/);
  });

  test('the only policy setting is allowDigitalOceanWebhookSecretInUserData, a boolean that defaults to false', () => {
    const withConfig = packArgs.policies.filter((p) => p.configSchema);
    expect(withConfig.map((p) => p.name)).toEqual([NO_SECRETS_IN_USER_DATA]);
    expect(withConfig[0].configSchema).toEqual({
      properties: { allowDigitalOceanWebhookSecretInUserData: expect.objectContaining({ type: 'boolean', default: false }) },
    });
  });

  test('the DigitalOcean webhook file it may accept is the one the digitalocean target writes', () => {
    expect(DIGITALOCEAN_WEBHOOK_SECRET_FILE).toBe(WEBHOOK_SECRET_FILE);
  });
});

describe.each(Object.keys(VARIANTS))('the %s stack', (label) => {
  const p = () => plans[label];
  const config = () => VARIANTS[label].policyConfig ?? {};

  test('passes every resource policy on every resource, and each policy saw the resources it is for', async () => {
    expect(p().result.leaks).toEqual([]);
    const applied = new Map<string, Set<string>>();
    for (const r of p().resources) {
      const o = await analyze(r, config());
      expect({ resource: `${r.type} ${r.name}`, violations: o.violations.map((v) => `${v.policy}: ${v.detail}`), advisories: o.advisories }).toEqual({
        resource: `${r.type} ${r.name}`,
        violations: [],
        advisories: [],
      });
      for (const pol of packArgs.policies.filter(isResourcePolicy)) {
        if (!o.notApplicable.some((n) => n.policy === pol.name)) applied.set(pol.name, (applied.get(pol.name) ?? new Set()).add(r.type));
      }
    }
    const cloud = VARIANTS[label].stack as keyof typeof HOST;
    const firewall = { gcp: T.gcpFirewall, digitalocean: T.doFirewall, aws: T.awsSecurityGroup }[cloud];
    expect([...(applied.get(ONLY_HTTPS_OPEN) ?? [])]).toEqual([firewall]);
    expect([...(applied.get(NO_SECRETS_IN_USER_DATA) ?? [])]).toEqual([HOST[cloud]]);
    // DigitalOcean volumes are always encrypted and its Droplets carry no disk of their own: nothing to check.
    expect([...(applied.get(DISKS_ENCRYPTED) ?? [])].sort()).toEqual(cloud === 'digitalocean' ? [] : [DISK[cloud], HOST[cloud]].sort());
    expect([...(applied.get(DATA_DISK_NOT_INLINE) ?? [])]).toEqual(cloud === 'digitalocean' ? [] : [HOST[cloud]]);
  });

  test('passes the stack policy: the host has a data disk of its own that takes nothing from it', async () => {
    const o = await analyzeStack(p(), undefined, config());
    expect(o).toEqual({ violations: [], notApplicable: [], advisories: [] });
  });
});

describe(`${ONLY_HTTPS_OPEN}: nothing but tcp 80/443 open to the world`, () => {
  const gcpRule = () => one(plans.gcp, T.gcpFirewall, 'scim-bridge-https');
  const doFirewall = () => one(plans.digitalocean, T.doFirewall);
  const awsGroup = () => one(plans.aws, T.awsSecurityGroup);

  test('SSH from the admin ranges is not open to the world, on every cloud', async () => {
    // GCP: one rule per address family (a rule cannot mix IPv4 and IPv6 ranges).
    const sshRule = one(plans['gcp with a webhook and SSH from admin ranges'], T.gcpFirewall, 'scim-bridge-ssh');
    expect(sshRule.props.sourceRanges).toEqual(['203.0.113.0/24']);
    expect(await violations(sshRule, ONLY_HTTPS_OPEN)).toEqual([]);
    const sshRuleV6 = one(plans['gcp with a webhook and SSH from admin ranges'], T.gcpFirewall, 'scim-bridge-ssh-ipv6');
    expect(sshRuleV6.props.sourceRanges).toEqual(['2001:db8::/32']);
    expect(await violations(sshRuleV6, ONLY_HTTPS_OPEN)).toEqual([]);
  });

  test.each([
    ['tcp 22 added to the world rule', { protocol: 'tcp', ports: ['22'] }, /allows\[1\] opens tcp port 22 to 0\.0\.0\.0\/0\. Only tcp 80 and 443 may be open/],
    ['tcp 0-65535', { protocol: 'tcp', ports: ['0-65535'] }, /allows\[1\] opens tcp all ports to 0\.0\.0\.0\/0/],
    ['tcp 80-443', { protocol: 'tcp', ports: ['80-443'] }, /allows\[1\] opens tcp ports 80-443 to 0\.0\.0\.0\/0/],
    ['tcp with no port list', { protocol: 'tcp' }, /allows\[1\] opens tcp all ports/],
    ['every protocol', { protocol: 'all' }, /allows\[1\] opens every protocol and port/],
    ['udp 443', { protocol: 'udp', ports: ['443'] }, /allows\[1\] opens protocol udp/],
  ])('GCP: %s is refused', async (_what, allow, message) => {
    const bad = variant(gcpRule(), (props) => props.allows.push(allow));
    expect(await violations(bad, ONLY_HTTPS_OPEN)).toEqual([expect.stringMatching(message)]);
  });

  test('GCP: an ingress rule with no source is the world; ::/0 is the world; an egress rule is not judged', async () => {
    const noSource = variant(gcpRule(), (props) => {
      delete props.sourceRanges;
      props.allows = [{ protocol: 'tcp', ports: ['22'] }];
    });
    expect(await violations(noSource, ONLY_HTTPS_OPEN)).toEqual([expect.stringMatching(/names no source, so GCP applies it to 0\.0\.0\.0\/0\) opens tcp port 22/)]);
    const v6 = variant(gcpRule(), (props) => {
      props.sourceRanges = ['::/0'];
      props.allows = [{ protocol: 'tcp', ports: ['8443'] }];
    });
    expect(await violations(v6, ONLY_HTTPS_OPEN)).toEqual([expect.stringMatching(/opens tcp port 8443 to ::\/0/)]);
    const egress = variant(gcpRule(), (props) => {
      props.direction = 'EGRESS';
      props.allows = [{ protocol: 'all' }];
    });
    expect(await violations(egress, ONLY_HTTPS_OPEN)).toEqual([]);
  });

  test.each([
    ['tcp 22', { protocol: 'tcp', portRange: '22' }, /inboundRules\[2\] opens tcp port 22 to 0\.0\.0\.0\/0, ::\/0/],
    ['tcp 1-65535', { protocol: 'tcp', portRange: '1-65535' }, /inboundRules\[2\] opens tcp ports 1-65535/],
    ['tcp "all"', { protocol: 'tcp', portRange: 'all' }, /inboundRules\[2\] opens tcp all ports/],
    ['tcp 80-443', { protocol: 'tcp', portRange: '80-443' }, /inboundRules\[2\] opens tcp ports 80-443/],
    ['udp 53', { protocol: 'udp', portRange: '53' }, /inboundRules\[2\] opens protocol udp/],
    ['icmp', { protocol: 'icmp' }, /inboundRules\[2\] opens protocol icmp/],
  ])('DigitalOcean: %s from the world is refused', async (_what, rule, message) => {
    const bad = variant(doFirewall(), (props) => props.inboundRules.push({ ...rule, sourceAddresses: ['0.0.0.0/0', '::/0'] }));
    expect(await violations(bad, ONLY_HTTPS_OPEN)).toEqual([expect.stringMatching(message)]);
  });

  test('DigitalOcean: the outbound rules (tcp/udp 1-65535 to the world) are not ingress', async () => {
    expect(doFirewall().props.outboundRules.some((r: Any) => r.portRange === '1-65535')).toBe(true);
    expect(await violations(doFirewall(), ONLY_HTTPS_OPEN)).toEqual([]);
  });

  test.each([
    ['tcp 22', { protocol: 'tcp', fromPort: 22, toPort: 22, cidrBlocks: ['0.0.0.0/0'] }, /ingress\[2\] opens tcp port 22 to 0\.0\.0\.0\/0/],
    ['tcp 80-443', { protocol: 'tcp', fromPort: 80, toPort: 443, cidrBlocks: ['0.0.0.0/0'] }, /ingress\[2\] opens tcp ports 80-443/],
    ['tcp 0-65535', { protocol: 'tcp', fromPort: 0, toPort: 65535, cidrBlocks: ['0.0.0.0/0'] }, /ingress\[2\] opens tcp all ports/],
    ['protocol -1', { protocol: '-1', fromPort: 0, toPort: 0, cidrBlocks: ['0.0.0.0/0'] }, /ingress\[2\] opens every protocol and port/],
    ['tcp 8080 from ::/0', { protocol: 'tcp', fromPort: 8080, toPort: 8080, ipv6CidrBlocks: ['::/0'] }, /ingress\[2\] opens tcp port 8080 to ::\/0/],
  ])('AWS security group: inline %s is refused', async (_what, rule, message) => {
    const bad = variant(awsGroup(), (props) => props.ingress.push({ description: 'test', ...rule }));
    expect(await violations(bad, ONLY_HTTPS_OPEN)).toEqual([expect.stringMatching(message)]);
  });

  test('AWS: standalone rules (SecurityGroupIngressRule, SecurityGroupRule) made from the group\'s own rules pass; wider ones fail', async () => {
    const group = awsGroup();
    const https = group.props.ingress.find((r: Any) => r.fromPort === 443);
    const asIngressRule = (rule: Any) =>
      variant(group, (props) => {
        for (const k of Object.keys(props)) delete props[k];
        Object.assign(props, { securityGroupId: 'sg-1', ipProtocol: rule.protocol, fromPort: rule.fromPort, toPort: rule.toPort, cidrIpv4: rule.cidrBlocks[0] });
      }, T.awsIngressRule);
    const asRule = (rule: Any, type = 'ingress') =>
      variant(group, (props) => {
        for (const k of Object.keys(props)) delete props[k];
        Object.assign(props, { securityGroupId: 'sg-1', type, protocol: rule.protocol, fromPort: rule.fromPort, toPort: rule.toPort, cidrBlocks: rule.cidrBlocks });
      }, T.awsSecurityGroupRule);
    expect(await violations(asIngressRule(https), ONLY_HTTPS_OPEN)).toEqual([]);
    expect(await violations(asRule(https), ONLY_HTTPS_OPEN)).toEqual([]);
    const wide = { ...https, fromPort: 1, toPort: 65535 };
    expect(await violations(asIngressRule(wide), ONLY_HTTPS_OPEN)).toEqual([expect.stringMatching(/the ingress rule opens tcp ports 1-65535 to 0\.0\.0\.0\/0/)]);
    expect(await violations(asRule(wide), ONLY_HTTPS_OPEN)).toEqual([expect.stringMatching(/the ingress rule opens tcp ports 1-65535/)]);
    expect(await violations(asIngressRule({ ...https, protocol: '-1' }), ONLY_HTTPS_OPEN)).toEqual([expect.stringMatching(/opens every protocol and port/)]);
    // An egress rule to the world is not ingress.
    expect(await violations(asRule({ ...wide, protocol: '-1' }, 'egress'), ONLY_HTTPS_OPEN)).toEqual([]);
  });
});

describe(`${DISKS_ENCRYPTED}: disks and volumes encrypted where the cloud offers it`, () => {
  const volume = () => one(plans.aws, T.awsVolume);
  const instance = () => one(plans.aws, T.awsInstance);

  test('AWS: the data volume and the root volume say encrypted: true', () => {
    expect(volume().props.encrypted).toBe(true);
    expect(instance().props.rootBlockDevice.encrypted).toBe(true);
  });

  test('AWS: a volume with encrypted false or unset is refused', async () => {
    for (const encrypted of [false, undefined]) {
      const bad = variant(volume(), (props) => {
        props.encrypted = encrypted;
      });
      expect(await violations(bad, DISKS_ENCRYPTED)).toEqual([expect.stringMatching(/scim-bridge-data: the EBS volume is not encrypted: set `encrypted: true`/)]);
    }
  });

  test('AWS: an instance with an unencrypted root volume, or none declared, or an unencrypted inline device is refused', async () => {
    const rootOff = variant(instance(), (props) => {
      props.rootBlockDevice.encrypted = false;
    });
    expect(await violations(rootOff, DISKS_ENCRYPTED)).toEqual([expect.stringMatching(/scim-bridge-host: the root volume is not encrypted/)]);
    const noRoot = variant(instance(), (props) => {
      delete props.rootBlockDevice;
    });
    expect(await violations(noRoot, DISKS_ENCRYPTED)).toEqual([expect.stringMatching(/give the instance rootBlockDevice with set `encrypted: true`/)]);
    const inline = variant(instance(), (props) => {
      props.ebsBlockDevices = [{ deviceName: '/dev/sdg', volumeSize: 10, encrypted: false }];
    });
    expect(await violations(inline, DISKS_ENCRYPTED)).toEqual([expect.stringMatching(/ebsBlockDevices\[0\] \(\/dev\/sdg\) is not encrypted/)]);
  });

  test('AWS: a launch template\'s EBS mappings must be encrypted ("true" as the provider takes it)', async () => {
    const template = (encrypted: unknown) =>
      variant(instance(), (props) => {
        for (const k of Object.keys(props)) delete props[k];
        props.blockDeviceMappings = [{ deviceName: '/dev/xvda', ebs: { volumeSize: 16, encrypted } }];
      }, T.awsLaunchTemplate);
    expect(await violations(template('true'), DISKS_ENCRYPTED)).toEqual([]);
    expect(await violations(template('false'), DISKS_ENCRYPTED)).toEqual([expect.stringMatching(/blockDeviceMappings\[0\] \(\/dev\/xvda\) is not encrypted/)]);
  });

  test('GCP: disks are encrypted by Google; a raw or RSA-wrapped key in the program is refused, a KMS key is fine', async () => {
    const disk = one(plans.gcp, T.gcpDisk);
    expect(await violations(disk, DISKS_ENCRYPTED)).toEqual([]);
    const kms = variant(disk, (props) => {
      props.diskEncryptionKey = { kmsKeySelfLink: 'projects/p/locations/europe-west1/keyRings/r/cryptoKeys/k' };
    });
    expect(await violations(kms, DISKS_ENCRYPTED)).toEqual([]);
    const raw = variant(disk, (props) => {
      props.diskEncryptionKey = { rawKey: Buffer.alloc(32, 7).toString('base64') };
    });
    expect(await violations(raw, DISKS_ENCRYPTED)).toEqual([expect.stringMatching(/scim-bridge-data: diskEncryptionKey\.rawKey puts an encryption key in the program: .*Cloud KMS/)]);
    const rsa = variant(disk, (props) => {
      props.diskEncryptionKey = { rsaEncryptedKey: 'ieCx/NcW06PcT7Ep1X6LUTc/hLvUDYyzSZPPVCVPTVEohpeHASqC8uw5TzyO9U+Fka9JFHz0mBibXUInrC/jEk014kCK/NPjYgEMOyssZ4ZINPKxlUh2zn1bV+MCaTICrdmuSBTWlUUiFoDD6PYznLwh8ZNdaheCeZ8ewEXgFQ8V+sDroLaN3Xs3MDTXQEMMoNUXMCZEIpg9Vtp9x2oeQ5lAbtt7bYAAHf5l+gJWw3sUfs0/Glw5fpdjT8Uggrr+RMZezGrltJEF293rvTIjWOEB3z5OHyHwQkvdrPDFcTqsLfh+8Hr8g+mf+7zVPEC8nEbqpdl3GPv3A7AwpFp7MA==' };
    });
    expect(await violations(rsa, DISKS_ENCRYPTED)).toEqual([expect.stringMatching(/diskEncryptionKey\.rsaEncryptedKey puts an encryption key in the program/)]);
    const attachedRaw = variant(one(plans.gcp, T.gcpInstance), (props) => {
      props.attachedDisks[0].diskEncryptionKeyRaw = Buffer.alloc(32, 7).toString('base64');
    });
    expect(await violations(attachedRaw, DISKS_ENCRYPTED)).toEqual([expect.stringMatching(/attachedDisks\[0\]\.diskEncryptionKeyRaw puts an encryption key in the program/)]);
  });

  test('DigitalOcean: volumes are always encrypted at rest, so the policy does not apply to them', async () => {
    const o = await analyze(one(plans.digitalocean, T.doVolume));
    expect(o.notApplicable.map((n) => n.policy)).toContain(DISKS_ENCRYPTED);
    expect(o.violations).toEqual([]);
  });
});

describe(`${NO_SECRETS_IN_USER_DATA}: no secret-looking value in instance metadata or user-data`, () => {
  const host = (label: string, type: string) => one(plans[label], type);

  test('our real user-data passes: the app token\'s hash, _FILE paths, Secret Manager names, ARNs, $(…) and "$value_N" are not secrets', async () => {
    const gcp = userDataOf(host('gcp with a webhook and SSH from admin ranges', T.gcpInstance));
    expect(gcp).toMatch(/^ +SCIM_BRIDGE_APP_TOKEN_SHA256=[0-9a-f]{64}$/m);
    expect(gcp).toMatch(/^ +SCIM_BRIDGE_TOKEN_SHA256_FILE=\/run\/secrets\/token-sha256$/m);
    expect(gcp).toMatch(/^ +SCIM_BRIDGE_WEBHOOK_SECRET_FILE=\/run\/secrets\/webhook-secret$/m);
    expect(gcp).toMatch(/value_1=\$\(gcp_secret projects\/my-gcp-project\/secrets\/scim-bridge-gcp-webhook-secret\)/);
    expect(gcp).toMatch(/access_token=\$\(curl /);
    expect(gcp).toContain('put webhook-secret "$value_1"');
    // AWS's scripts travel gzipped (EC2's 16 KB): read them as cloud-init writes them, which the policy does too.
    const awsUserData = userDataOf(host('aws with a webhook and SSH from admin ranges', T.awsInstance));
    const aws = writtenFiles(awsUserData).map((f) => f.content).join('\n');
    expect(aws).toMatch(/value_1=\$\(aws_secret arn:aws:secretsmanager:/);
    const doUserData = userDataOf(host('digitalocean with a webhook and SSH from admin ranges', T.doDroplet));
    expect(doUserData).toContain(`value_1=$(cat ${WEBHOOK_SECRET_FILE})`);
    for (const label of Object.keys(VARIANTS)) {
      const cloud = VARIANTS[label].stack as keyof typeof HOST;
      expect(await violations(host(label, HOST[cloud]), NO_SECRETS_IN_USER_DATA, VARIANTS[label].policyConfig)).toEqual([]);
    }
  });

  test.each(['gcp', 'digitalocean', 'aws'] as const)('%s: SCIM_BRIDGE_TOKEN=… or SCIM_BRIDGE_WEBHOOK_SECRET=… in the bridge\'s env file is refused', async (cloud) => {
    const h = host(cloud, HOST[cloud]);
    for (const [line, name] of [
      ['SCIM_BRIDGE_TOKEN=Zx8pQ2rT6vW9yB3dF5hJ7kM1nP4sU0wA2cE6gI8', 'SCIM_BRIDGE_TOKEN'],
      ['SCIM_BRIDGE_WEBHOOK_SECRET=whsec_5f1d0b9c7a2e4d6f8b0c1e3a5d7f9b2c', 'SCIM_BRIDGE_WEBHOOK_SECRET'],
    ]) {
      const bad = variant(h, (props) => setUserData(props, h.type, withBridgeEnvLine(userDataOf(h), line)));
      const found = await violations(bad, NO_SECRETS_IN_USER_DATA);
      expect(found).toEqual([expect.stringMatching(new RegExp(`write_files\\[\\d+\\]\\.content \\(/etc/scim-bridge/bridge\\.env\\) line 5: ${name} is set to a literal value\\.`))]);
      // The message says what to do, and never repeats the secret.
      expect(found[0]).toMatch(cloud === 'aws' ? /Secrets Manager/ : cloud === 'gcp' ? /Secret Manager/ : /DigitalOcean has no secret store/);
      expect(found[0]).not.toContain(line.split('=')[1]);
    }
  });

  test('AWS: an access key in a runcmd, and the same user-data given base64 (userDataBase64) or gzip+base64 (launch template), are refused', async () => {
    const h = host('aws', T.awsInstance);
    const leaky = userDataOf(h).replace(/^runcmd:\n/m, 'runcmd:\n  - [sh, -c, "echo AKIAIOSFODNN7EXAMPLE > /root/key"]\n');
    expect(leaky).not.toBe(userDataOf(h));
    const inline = variant(h, (props) => {
      props.userData = leaky;
    });
    expect(await violations(inline, NO_SECRETS_IN_USER_DATA)).toEqual([expect.stringMatching(/userData\.runcmd\[0\]\[2\]: an AWS access key id\./)]);
    const base64 = variant(h, (props) => {
      delete props.userData;
      props.userDataBase64 = Buffer.from(leaky).toString('base64');
    });
    expect(await violations(base64, NO_SECRETS_IN_USER_DATA)).toEqual([expect.stringMatching(/userDataBase64 \(base64-decoded\)\.runcmd\[0\]\[2\]: an AWS access key id/)]);
    const template = (text: string) =>
      variant(h, (props) => {
        for (const k of Object.keys(props)) delete props[k];
        props.userData = gzipSync(text).toString('base64');
      }, T.awsLaunchTemplate);
    expect(await violations(template(userDataOf(h)), NO_SECRETS_IN_USER_DATA)).toEqual([]);
    expect(await violations(template(leaky), NO_SECRETS_IN_USER_DATA)).toEqual([expect.stringMatching(/userData \(base64-decoded\)\.runcmd\[0\]\[2\]: an AWS access key id/)]);
  });

  test('GCP: a metadata key named like a secret, a private key in a startup script, a token in metadataStartupScript are refused', async () => {
    const h = host('gcp', T.gcpInstance);
    const bad = variant(h, (props) => {
      props.metadata['api-token'] = 'c2VjcmV0LXZhbHVlLTEyMzQ1Njc4OTA';
      props.metadata['startup-script'] = '#!/bin/sh\ncat > /root/id <<EOF\n-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\nEOF\n';
      props.metadataStartupScript = '#!/bin/sh\nexport GITHUB_TOKEN=ghp_0123456789abcdefghijABCDEFGHIJ012345\n';
    });
    expect(await violations(bad, NO_SECRETS_IN_USER_DATA)).toEqual([
      expect.stringMatching(/metadata\.api-token: api-token is set to a literal value/),
      expect.stringMatching(/metadata\.startup-script line 3: a PEM private key/),
      expect.stringMatching(/metadataStartupScript line 2: a GitHub token/),
      expect.stringMatching(/metadataStartupScript line 2: GITHUB_TOKEN is set to a literal value/),
    ]);
    // Harmless metadata stays fine: the real keys plus an ssh public key and a reference.
    const fine = variant(h, (props) => {
      props.metadata['ssh-keys'] = 'admin:ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHhSmEv7Wg admin@example.com';
      props.metadata['db-password-secret'] = 'projects/my-gcp-project/secrets/db-password';
    });
    expect(await violations(fine, NO_SECRETS_IN_USER_DATA)).toEqual([]);
  });

  test('a #cloud-config that is not YAML cannot be checked, so it is refused', async () => {
    const h = host('gcp', T.gcpInstance);
    const bad = variant(h, (props) => {
      props.metadata['user-data'] = '#cloud-config\nwrite_files: [\n';
    });
    expect(await violations(bad, NO_SECRETS_IN_USER_DATA)).toEqual([expect.stringMatching(/metadata\.user-data: a #cloud-config that is not valid YAML/)]);
  });

  describe('the DigitalOcean webhook secret (no secret store there)', () => {
    const droplet = () => host('digitalocean with a webhook and SSH from admin ranges', T.doDroplet);

    test('travels as a root-only file under /etc/scim-bridge/secrets/ in the user-data, which is a Pulumi secret', () => {
      const raw = plans['digitalocean with a webhook and SSH from admin ranges'].result.raw.find((r) => r.type === T.doDroplet)!;
      expect(SECRET_SIG_KEY in (raw.inputs.userData as object)).toBe(true);
      const doc = parse(userDataOf(droplet()).replace(/^#.*\n/gm, ''), { version: '1.1' }) as Any;
      const file = doc.write_files.find((f: Any) => f.path === WEBHOOK_SECRET_FILE);
      expect(file).toMatchObject({ owner: 'root:root', permissions: '0600', content: expect.stringMatching(/^PLAN-SECRET-webhookSecret/) });
    });

    test('fails by default, and with the setting explicitly false', async () => {
      for (const config of [{}, { [NO_SECRETS_IN_USER_DATA]: { allowDigitalOceanWebhookSecretInUserData: false } }] as PolicyPackConfig[]) {
        const found = await violations(droplet(), NO_SECRETS_IN_USER_DATA, config);
        expect(found).toEqual([
          expect.stringMatching(
            /userData\.write_files\[\d+\] \(\/etc\/scim-bridge\/secrets\/webhook-secret\): a file under a secrets directory, with its content in the user-data \(the DigitalOcean webhook secret: accepted only when the policy setting allowDigitalOceanWebhookSecretInUserData is true/,
          ),
          expect.stringMatching(/webhook-secret\) line 1: a secret invented by the offline plan/),
        ]);
      }
    });

    test('passes when the operator accepts the trade-off (allowDigitalOceanWebhookSecretInUserData: true)', async () => {
      expect(await violations(droplet(), NO_SECRETS_IN_USER_DATA, ACCEPT_DO_WEBHOOK)).toEqual([]);
    });

    test('infra/policy/accept-digitalocean-webhook-secret.json (for --policy-pack-config) is that setting, and only that', async () => {
      const file = JSON.parse(readFileSync(join(ROOT, 'infra', 'policy', 'accept-digitalocean-webhook-secret.json'), 'utf8')) as PolicyPackConfig;
      expect(file).toEqual(ACCEPT_DO_WEBHOOK);
      expect(await violations(droplet(), NO_SECRETS_IN_USER_DATA, file)).toEqual([]);
      // It leaves every policy mandatory.
      for (const p of packArgs.policies) expect(enforcementLevelOf(p, file)).toBe('mandatory');
    });

    test('the setting covers that one root-only file, on DigitalOcean only; any other secret still fails', async () => {
      const withFile = (change: (file: Any) => void) =>
        variant(droplet(), (props) => {
          const lines = props.userData.split('\n');
          const doc = parse(props.userData, { version: '1.1' }) as Any;
          change(doc.write_files.find((f: Any) => f.path === WEBHOOK_SECRET_FILE));
          props.userData = `${lines[0]}\n${JSON.stringify(doc)}`;
        });
      const readable = withFile((f) => {
        f.permissions = '0644';
      });
      expect(await violations(readable, NO_SECRETS_IN_USER_DATA, ACCEPT_DO_WEBHOOK)).toEqual([
        expect.stringMatching(/needs it root-only: permissions "0600", owner root:root; it has 0644, root:root/),
        expect.stringMatching(/line 1: a secret invented by the offline plan/),
      ]);
      const elsewhere = withFile((f) => {
        f.path = '/etc/scim-bridge/secrets/other';
      });
      expect(await violations(elsewhere, NO_SECRETS_IN_USER_DATA, ACCEPT_DO_WEBHOOK)).toEqual([
        expect.stringMatching(/allowDigitalOceanWebhookSecretInUserData covers \/etc\/scim-bridge\/secrets\/webhook-secret only/),
        expect.stringMatching(/line 1: a secret invented by the offline plan/),
      ]);
      const tokenToo = variant(droplet(), (props) => {
        props.userData = withBridgeEnvLine(props.userData, 'SCIM_BRIDGE_TOKEN=Zx8pQ2rT6vW9yB3dF5hJ7kM1nP4sU0wA2cE6gI8');
      });
      expect(await violations(tokenToo, NO_SECRETS_IN_USER_DATA, ACCEPT_DO_WEBHOOK)).toEqual([expect.stringMatching(/SCIM_BRIDGE_TOKEN is set to a literal value/)]);
      // The same file in a GCP instance's user-data: GCP has Secret Manager, the setting does not apply.
      const gcp = host('gcp', T.gcpInstance);
      const file = `  - path: ${WEBHOOK_SECRET_FILE}\n    owner: root:root\n    permissions: "0600"\n    content: |\n      whsec-literal-value\n`;
      const onGcp = variant(gcp, (props) => {
        props.metadata['user-data'] = props.metadata['user-data'].replace(/^write_files:\n/m, `write_files:\n${file}`);
      });
      expect(await violations(onGcp, NO_SECRETS_IN_USER_DATA, ACCEPT_DO_WEBHOOK)).toEqual([expect.stringMatching(/covers DigitalOcean Droplets only; this cloud has a secret store/)]);
    });
  });

  test('during preview, unknown user-data is reported as not checkable (advisory), and a secret elsewhere still fails', async () => {
    // @pulumi/policy's sentinel for a string the engine does not know yet (its proxy.js).
    const unknownString = '04da6b54-80e4-46f7-96ec-b56ff0331ba9';
    const h = host('gcp', T.gcpInstance);
    const preview = variant(h, (props) => {
      props.metadata['user-data'] = unknownString;
      props.metadata['api-token'] = 'c2VjcmV0LXZhbHVlLTEyMzQ1Njc4OTA';
    });
    const o = await analyze(preview);
    expect(details(o, NO_SECRETS_IN_USER_DATA)).toEqual([expect.stringMatching(/metadata\.api-token: api-token is set to a literal value/)]);
    expect(o.advisories).toEqual([expect.stringMatching(new RegExp(`can't run policy '${NO_SECRETS_IN_USER_DATA}' during preview: string value at \\.metadata\\.user-data can't be known`))]);
  });

  test.each([
    // [text, what is found (empty: nothing)]
    ['SCIM_BRIDGE_TOKEN_SHA256=b0524287fee70b50f6a9471cdd9cdf5032159aacc6bb707689e01c312c568190', []],
    ['DB_PASSWORD_FILE=/run/secrets/db', []],
    ['WEBHOOK_SECRET_ARN=arn:aws:secretsmanager:eu-west-1:1:secret:x', []],
    ['export API_KEY="$API_KEY_FROM_VAULT"', []],
    ['TOKEN=$(cat /run/token)', []],
    ['password: ${DB_PASSWORD}', []],
    ['echo "fetch-secrets: could not read the secret" >&2', []],
    ['curl -H "Authorization: Bearer $access_token" https://x', []],
    ['SECRET_NAME=projects/p/secrets/webhook', []],
    ['export DB_PASSWORD=hunter2hunter2', ['DB_PASSWORD is set to a literal value']],
    ['  password: correct-horse-battery', ['password is set to a literal value']],
    ['{"apiKey": "0f3c9a7b"}', ['apiKey is set to a literal value']],
    ['curl "https://api.example.com/v1?token=abcdef123456"', ['token is set to a literal value']],
    ['Environment=CLIENT_SECRET=s3cr3t', ['CLIENT_SECRET is set to a literal value']],
    ['slack: xoxb-123456789012-abcdefghijkl', ['a Slack token']],
    ['key AIzaSyA1b2C3d4E5f6G7h8I9j0KLmNoPqRsTuVw', ['a Google API key']],
    [`do ${'dop_v1_' + 'a'.repeat(64)}`, ['a DigitalOcean token']],
    [`pulumi ${'pul-' + 'b'.repeat(40)}`, ['a Pulumi access token']],
    ['-----BEGIN RSA PRIVATE KEY-----', ['a PEM private key']],
    ['-----BEGIN PUBLIC KEY-----', []],
    ['github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz', ['a GitHub token']],
  ])('the detector: %s', (text, expected) => {
    expect(scanText(text, 'x').map((f) => f.what)).toEqual(expected);
  });
});

describe('the data disk is never deleted with the instance', () => {
  test('what no policy can see, the plan shows: every data disk is retainOnDelete; the analyzer protocol has no such option', () => {
    for (const cloud of ['gcp', 'digitalocean', 'aws'] as const) {
      const disk = one(plans[cloud], DISK[cloud]);
      expect(disk.reg.retainOnDelete).toBe(true);
      expect(Object.keys(disk.reg.opts)).not.toContain('retainOnDelete');
    }
    // If Pulumi ever passes retainOnDelete to policies, scim-bridge-data-disk-outlives-host should require it.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const analyzer = require('@pulumi/pulumi/proto/analyzer_pb') as Any;
    expect(Object.keys(analyzer.AnalyzerResourceOptions.prototype).filter((k) => /^get/.test(k)).sort()).toEqual(
      ['getAdditionalsecretoutputsList', 'getAliasesList', 'getCustomtimeouts', 'getDeletebeforereplace', 'getDeletebeforereplacedefined', 'getIgnorechangesList', 'getParent', 'getProtect'].sort(),
    );
  });

  describe(DATA_DISK_NOT_INLINE, () => {
    test('AWS: an inline EBS device is refused, whether deleteOnTermination is true (the default) or false', async () => {
      const h = one(plans.aws, T.awsInstance);
      const inline = (deleteOnTermination?: boolean) =>
        variant(h, (props) => {
          props.ebsBlockDevices = [{ deviceName: '/dev/sdf', volumeSize: 10, volumeType: 'gp3', encrypted: true, ...(deleteOnTermination === undefined ? {} : { deleteOnTermination }) }];
        });
      for (const flag of [undefined, true]) {
        expect(await violations(inline(flag), DATA_DISK_NOT_INLINE)).toEqual([
          expect.stringMatching(/scim-bridge-host: ebsBlockDevices\[0\] \(\/dev\/sdf\) is an inline volume, deleted when the instance terminates .*: keep data on an aws\.ebs\.Volume of its own/),
        ]);
      }
      expect(await violations(inline(false), DATA_DISK_NOT_INLINE)).toEqual([expect.stringMatching(/left behind unattached when the instance is replaced/)]);
    });

    test('GCP: booting from an existing disk that is auto-deleted with the instance is refused; autoDelete false is not', async () => {
      const h = one(plans.gcp, T.gcpInstance);
      const disk = one(plans.gcp, T.gcpDisk);
      const boot = (autoDelete?: boolean) =>
        variant(h, (props) => {
          props.bootDisk = { source: `${disk.name}-id`, ...(autoDelete === undefined ? {} : { autoDelete }) };
        });
      expect(await violations(boot(), DATA_DISK_NOT_INLINE)).toEqual([expect.stringMatching(/bootDisk uses an existing disk \(source\) that GCP deletes with the instance/)]);
      expect(await violations(boot(true), DATA_DISK_NOT_INLINE)).toHaveLength(1);
      expect(await violations(boot(false), DATA_DISK_NOT_INLINE)).toEqual([]);
    });

    test('DigitalOcean: a Droplet never deletes a volume, so the policy does not apply to it', async () => {
      const o = await analyze(one(plans.digitalocean, T.doDroplet));
      expect(o.notApplicable.map((n) => n.policy)).toContain(DATA_DISK_NOT_INLINE);
    });
  });

  describe(DATA_DISK_OUTLIVES_HOST, () => {
    /** The stack's registrations with some changed (deep copies). */
    const edited = (p: Planned, change: (regs: Registration[]) => void) => {
      const regs = copy(p.registrations);
      change(regs);
      return regs;
    };
    const find = (regs: Registration[], type: string) => regs.find((r) => r.type === type)!;

    test.each(['gcp', 'digitalocean', 'aws'] as const)('%s: a stack whose host has no separate data disk is refused', async (cloud) => {
      const p = plans[cloud];
      const disk = one(p, DISK[cloud]);
      // The disk gone, and with it every reference to it (attachments, the host's attachedDisks).
      const regs = edited(p, (rs) => {
        rs.splice(rs.findIndex((r) => r.urn === disk.urn), 1);
        for (const r of rs) {
          r.dependencies = r.dependencies.filter((u) => u !== disk.urn);
          for (const k of Object.keys(r.propertyDependencies)) r.propertyDependencies[k] = r.propertyDependencies[k].filter((u) => u !== disk.urn);
        }
      });
      const o = await analyzeStack(p, regs);
      const h = one(p, HOST[cloud]);
      expect(o.violations.map((v) => [v.detail, v.urn])).toEqual([[expect.stringMatching(new RegExp(`^scim-bridge-host: has no data disk of its own \\(a ${DISK[cloud].replace(/[/.]/g, '\\$&')} `)), h.urn]]);
      expect(o.violations[0].enforcementLevel).toBe('mandatory');
    });

    test.each(['gcp', 'digitalocean', 'aws'] as const)('%s: a data disk that depends on its host (directly or through another resource) is refused', async (cloud) => {
      const p = plans[cloud];
      const h = one(p, HOST[cloud]);
      const disk = one(p, DISK[cloud]);
      const direct = edited(p, (rs) => {
        // e.g. a label or tag on the disk taken from the host's id
        const d = rs.find((r) => r.urn === disk.urn)!;
        d.dependencies.push(h.urn);
        d.propertyDependencies.labels = [h.urn];
      });
      const expected = [[expect.stringMatching(/^scim-bridge-data: the data disk depends on its host scim-bridge-host, so replacing the host \(deleteBeforeReplace\) deletes and re-creates the disk/), disk.urn]];
      expect((await analyzeStack(p, direct)).violations.map((v) => [v.detail, v.urn])).toEqual(expected);
      // Through another resource: the disk takes an input from the address, which takes one from the host.
      const middle = one(p, { gcp: 'gcp:compute/address:Address', digitalocean: 'digitalocean:index/reservedIp:ReservedIp', aws: 'aws:ec2/eip:Eip' }[cloud]);
      const indirect = edited(p, (rs) => {
        rs.find((r) => r.urn === disk.urn)!.dependencies.push(middle.urn);
        rs.find((r) => r.urn === middle.urn)!.propertyDependencies.description = [h.urn];
      });
      expect((await analyzeStack(p, edited(p, (rs) => rs.find((r) => r.urn === disk.urn)!.dependencies.push(middle.urn)))).violations).toEqual([]);
      expect((await analyzeStack(p, indirect)).violations.map((v) => [v.detail, v.urn])).toEqual(expected);
    });

    test('GCP: the data disk as the instance\'s boot disk is refused', async () => {
      const p = plans.gcp;
      const disk = one(p, T.gcpDisk);
      const regs = edited(p, (rs) => {
        const h = find(rs, T.gcpInstance);
        h.propertyDependencies.bootDisk = [disk.urn];
        h.propertyDependencies.attachedDisks = [];
      });
      expect((await analyzeStack(p, regs)).violations.map((v) => v.detail)).toEqual([
        expect.stringMatching(/^scim-bridge-data: the gcp:compute\/disk:Disk is the boot disk of scim-bridge-host/),
        expect.stringMatching(/^scim-bridge-host: has no data disk of its own/),
      ]);
    });

    test('a stack with no host is not this policy\'s business', async () => {
      const p = plans.gcp;
      const regs = p.registrations.filter((r) => r.type !== T.gcpInstance);
      const o = await analyzeStack(p, regs);
      expect(o.violations).toEqual([]);
      expect(o.notApplicable).toEqual([{ policy: DATA_DISK_OUTLIVES_HOST, reason: expect.stringMatching(/no host/) }]);
    });
  });
});

describe('served as the Pulumi CLI runs it (gRPC, @pulumi/policy\'s own server)', () => {
  /* eslint-disable @typescript-eslint/no-require-imports */
  const grpc = require('@grpc/grpc-js') as Any;
  const rpc = require('@pulumi/pulumi/proto/analyzer_grpc_pb') as Any;
  const pb = require('@pulumi/pulumi/proto/analyzer_pb') as Any;
  const { Struct } = require('google-protobuf/google/protobuf/struct_pb') as Any;
  const { Empty } = require('google-protobuf/google/protobuf/empty_pb') as Any;
  /* eslint-enable @typescript-eslint/no-require-imports */

  const options = (reg: Registration) => {
    const o = new pb.AnalyzerResourceOptions();
    o.setProtect(reg.opts.protect);
    o.setIgnorechangesList(reg.opts.ignoreChanges);
    if (reg.opts.deleteBeforeReplace !== undefined) {
      o.setDeletebeforereplacedefined(true);
      o.setDeletebeforereplace(reg.opts.deleteBeforeReplace);
    }
    if (reg.parent) o.setParent(reg.parent);
    return o;
  };
  /** The inputs as the engine sends them: secrets as Pulumi's secret-signature objects, not unwrapped. */
  const wireProps = (p: Planned, reg: Registration) => Struct.fromJavaScript(copy(p.result.raw.find((r) => r.type === reg.type && r.name === reg.name)?.inputs ?? {}));

  test('reports the pack, every policy mandatory, the config schema; analyzes, takes config, analyzes the stack', async () => {
    const port = await packPort;
    const client = new rpc.AnalyzerClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
    const call = (method: string, req: Any): Promise<Any> => new Promise((res, rej) => client[method](req, (e: Error | null, r: Any) => (e ? rej(e) : res(r))));
    try {
      const info = await call('getAnalyzerInfo', new Empty());
      expect(info.getName()).toBe(POLICY_PACK_NAME);
      expect(info.getVersion()).toBe(JSON.parse(readFileSync(join(ROOT, 'infra', 'policy', 'package.json'), 'utf8')).version);
      expect(info.getSupportsconfig()).toBe(true);
      const policies = info.getPoliciesList().map((x: Any) => [x.getName(), x.getEnforcementlevel(), x.getPolicyType()]);
      const { MANDATORY } = pb.EnforcementLevel;
      const { POLICY_TYPE_RESOURCE: RESOURCE, POLICY_TYPE_STACK: STACK } = pb.PolicyType;
      expect(policies).toEqual([
        [ONLY_HTTPS_OPEN, MANDATORY, RESOURCE],
        [DISKS_ENCRYPTED, MANDATORY, RESOURCE],
        [NO_SECRETS_IN_USER_DATA, MANDATORY, RESOURCE],
        [DATA_DISK_NOT_INLINE, MANDATORY, RESOURCE],
        [DATA_DISK_OUTLIVES_HOST, MANDATORY, STACK],
        [KUBERNETES_RESTRICTED_PODS, MANDATORY, RESOURCE],
        [KUBERNETES_RESOURCES_SET, MANDATORY, RESOURCE],
        [KUBERNETES_NO_SECRETS_IN_ENV, MANDATORY, RESOURCE],
        [KUBERNETES_NETWORK_POLICY, MANDATORY, STACK],
      ]);
      const schema = info.getPoliciesList()[2].getConfigschema().getProperties().toJavaScript();
      expect(schema.allowDigitalOceanWebhookSecretInUserData).toMatchObject({ type: 'boolean', default: false });

      const p = plans['digitalocean with a webhook and SSH from admin ranges'];
      const analyzeOne = async (reg: Registration, props = wireProps(p, reg)) => {
        const req = new pb.AnalyzeRequest();
        req.setType(reg.type);
        req.setName(reg.name);
        req.setUrn(reg.urn);
        req.setProperties(props);
        req.setOptions(options(reg));
        const res = await call('analyze', req);
        return res.getDiagnosticsList().map((d: Any) => ({ policy: d.getPolicyname(), level: d.getEnforcementlevel(), message: d.getMessage() }));
      };
      const droplet = one(p, T.doDroplet).reg;
      // The user-data travels as a secret; the server unwraps it for the policy, which still refuses the file.
      expect(await analyzeOne(droplet)).toEqual([
        { policy: NO_SECRETS_IN_USER_DATA, level: MANDATORY, message: expect.stringMatching(/\nscim-bridge-host: userData\.write_files\[\d+\] \(\/etc\/scim-bridge\/secrets\/webhook-secret\): a file under a secrets directory/) },
        { policy: NO_SECRETS_IN_USER_DATA, level: MANDATORY, message: expect.stringMatching(/a secret invented by the offline plan/) },
      ]);
      const firewall = one(p, T.doFirewall);
      expect(await analyzeOne(firewall.reg)).toEqual([]);
      const open22 = copy(p.result.raw.find((r) => r.type === T.doFirewall)!.inputs) as Any;
      open22.inboundRules.push({ protocol: 'tcp', portRange: '22', sourceAddresses: ['0.0.0.0/0'] });
      expect(await analyzeOne(firewall.reg, Struct.fromJavaScript(open22))).toEqual([
        { policy: ONLY_HTTPS_OPEN, level: MANDATORY, message: expect.stringMatching(/\nscim-bridge-firewall: inboundRules\[3\] opens tcp port 22 to 0\.0\.0\.0\/0/) },
      ]);

      // What `--policy-pack-config` (or a Pulumi Cloud policy group) sends: the operator accepts the trade-off.
      const configure = new pb.ConfigureAnalyzerRequest();
      const accepted = new pb.PolicyConfig();
      accepted.setEnforcementlevel(MANDATORY);
      accepted.setProperties(Struct.fromJavaScript({ allowDigitalOceanWebhookSecretInUserData: true }));
      configure.getPolicyconfigMap().set(NO_SECRETS_IN_USER_DATA, accepted);
      await call('configure', configure);
      expect(await analyzeOne(droplet)).toEqual([]);

      // The whole stack, with the dependencies the engine records.
      const stackRequest = (regs: Registration[]) => {
        const req = new pb.AnalyzeStackRequest();
        req.setResourcesList(
          regs.map((reg) => {
            const r = new pb.AnalyzerResource();
            r.setType(reg.type);
            r.setName(reg.name);
            r.setUrn(reg.urn);
            r.setProperties(wireProps(p, reg));
            r.setOptions(options(reg));
            r.setParent(reg.parent);
            r.setDependenciesList(reg.dependencies);
            for (const [k, urns] of Object.entries(reg.propertyDependencies)) {
              const deps = new pb.AnalyzerPropertyDependencies();
              deps.setUrnsList(urns);
              r.getPropertydependenciesMap().set(k, deps);
            }
            return r;
          }),
        );
        return req;
      };
      expect((await call('analyzeStack', stackRequest(p.registrations))).getDiagnosticsList()).toEqual([]);
      const withoutDisk = p.registrations.filter((r) => r.type !== T.doVolume);
      const diagnostics = (await call('analyzeStack', stackRequest(withoutDisk))).getDiagnosticsList();
      expect(diagnostics.map((d: Any) => [d.getPolicyname(), d.getEnforcementlevel(), d.getUrn()])).toEqual([[DATA_DISK_OUTLIVES_HOST, MANDATORY, droplet.urn]]);
    } finally {
      client.close();
    }
  }, 60_000);
});

// ---------------------------------------------------------------------------------------------------------------
// The Kubernetes policies, on the kubernetes target's plans (the shipped stack: PostgreSQL, two replicas; and SQLite
// with a webhook) and on variants made to break them.

describe('the Kubernetes policies', () => {
  const k8sPlans: Record<string, Planned> = {};
  const K8S_VARIANTS: Record<string, Record<string, Any> | undefined> = {
    kubernetes: undefined,
    'kubernetes on SQLite with a webhook': {
      'scim-bridge:database': 'sqlite',
      'scim-bridge:replicas': '1',
      'scim-bridge:databaseUrl': null,
      ...WEBHOOK,
    },
  };
  beforeAll(async () => {
    for (const [label, config] of Object.entries(K8S_VARIANTS)) k8sPlans[label] = await planned('kubernetes', config);
  }, 60_000);
  const deployment = () => one(k8sPlans.kubernetes, T.k8sDeployment);
  const container = (props: Any) => props.spec.template.spec.containers[0];

  test.each(Object.keys(K8S_VARIANTS))('the %s stack passes every policy, and each Kubernetes policy saw what it is for', async (label) => {
    const p = k8sPlans[label];
    expect(p.result.leaks).toEqual([]);
    const applied = new Map<string, Set<string>>();
    for (const r of p.resources) {
      const o = await analyze(r);
      expect({ resource: `${r.type} ${r.name}`, violations: o.violations.map((v) => `${v.policy}: ${v.detail}`), advisories: o.advisories }).toEqual({
        resource: `${r.type} ${r.name}`,
        violations: [],
        advisories: [],
      });
      for (const pol of packArgs.policies.filter(isResourcePolicy)) {
        if (!o.notApplicable.some((n) => n.policy === pol.name)) applied.set(pol.name, (applied.get(pol.name) ?? new Set()).add(r.type));
      }
    }
    expect([...(applied.get(KUBERNETES_RESTRICTED_PODS) ?? [])].sort()).toEqual([T.k8sDeployment, T.k8sNamespace].sort());
    expect([...(applied.get(KUBERNETES_RESOURCES_SET) ?? [])]).toEqual([T.k8sDeployment]);
    expect([...(applied.get(KUBERNETES_NO_SECRETS_IN_ENV) ?? [])]).toEqual([T.k8sDeployment]);
    const stack = await analyzeStack(p);
    expect(stack.violations).toEqual([]);
    expect(stack.notApplicable.map((n) => n.policy)).toEqual([DATA_DISK_OUTLIVES_HOST]);
  });

  test.each([
    ['privilege escalation allowed', (c: Any) => delete c.securityContext.allowPrivilegeEscalation, /allowPrivilegeEscalation must be false/],
    ['root allowed', (c: Any, pod: Any) => { delete c.securityContext.runAsNonRoot; delete pod.securityContext.runAsNonRoot; }, /may run as root: set runAsNonRoot: true/],
    ['uid 0', (c: Any) => (c.securityContext.runAsUser = 0), /runs as uid 0/],
    ['no seccomp profile', (c: Any, pod: Any) => { delete c.securityContext.seccompProfile; delete pod.securityContext.seccompProfile; }, /has no seccomp profile/],
    ['capabilities kept', (c: Any) => (c.securityContext.capabilities = { drop: ['NET_RAW'] }), /capabilities\.drop must include ALL/],
    ['SYS_ADMIN added', (c: Any) => (c.securityContext.capabilities.add = ['SYS_ADMIN']), /adds capabilities SYS_ADMIN/],
    ['a writable root', (c: Any) => (c.securityContext.readOnlyRootFilesystem = false), /readOnlyRootFilesystem must be true/],
    ['a hostPath volume', (_c: Any, pod: Any) => pod.volumes.push({ name: 'host', hostPath: { path: '/' } }), /volumes\[\d\] mounts a hostPath/],
    ['the host network', (_c: Any, pod: Any) => (pod.hostNetwork = true), /hostNetwork is true/],
  ])(`${KUBERNETES_RESTRICTED_PODS}: %s is refused`, async (_what, change, message) => {
    const bad = variant(deployment(), (props) => change(container(props), props.spec.template.spec));
    expect(await violations(bad, KUBERNETES_RESTRICTED_PODS)).toEqual([expect.stringMatching(message)]);
  });

  test(`${KUBERNETES_RESTRICTED_PODS}: a namespace without Pod Security "restricted" is refused`, async () => {
    const ns = variant(one(k8sPlans.kubernetes, T.k8sNamespace), (props) => (props.metadata.labels['pod-security.kubernetes.io/enforce'] = 'baseline'));
    expect(await violations(ns, KUBERNETES_RESTRICTED_PODS)).toEqual([expect.stringMatching(/must enforce Pod Security "restricted"/)]);
  });

  test(`${KUBERNETES_RESOURCES_SET}: a container without a memory limit or requests is refused`, async () => {
    const noLimit = variant(deployment(), (props) => delete container(props).resources.limits);
    expect(await violations(noLimit, KUBERNETES_RESOURCES_SET)).toEqual([expect.stringMatching(/containers\[0\]\.resources has no limits\.memory/)]);
    const none = variant(deployment(), (props) => delete container(props).resources);
    expect(await violations(none, KUBERNETES_RESOURCES_SET)).toEqual([expect.stringMatching(/has no requests\.cpu, requests\.memory, limits\.memory/)]);
  });

  test.each([
    ['the token in clear', { name: 'SCIM_BRIDGE_TOKEN', value: 'x'.repeat(40) }],
    ['the webhook secret in clear', { name: 'SCIM_BRIDGE_WEBHOOK_SECRET', value: 'y'.repeat(40) }],
    ['a database URL with its password', { name: 'SCIM_BRIDGE_DATABASE_URL', value: 'postgres://scim:hunter2@db:5432/scim' }],
    ['a database URL with its password as a parameter', { name: 'SCIM_BRIDGE_DATABASE_URL', value: 'postgres://db:5432/scim?user=scim&password=hunter2' }],
    ['any variable holding a URL with a password', { name: 'UPSTREAM', value: 'https://user:pass@example.com/' }],
  ])(`${KUBERNETES_NO_SECRETS_IN_ENV}: %s is refused`, async (_what, env) => {
    const bad = variant(deployment(), (props) => container(props).env.push(env));
    expect(await violations(bad, KUBERNETES_NO_SECRETS_IN_ENV)).toEqual([expect.stringMatching(new RegExp(`gives ${env.name} in clear .*set ${env.name}_FILE`))]);
  });

  test(`${KUBERNETES_NO_SECRETS_IN_ENV}: a SQLite URL (a path, no password) passes`, async () => {
    const sqlite = one(k8sPlans['kubernetes on SQLite with a webhook'], T.k8sDeployment);
    expect(container(sqlite.props).env).toContainEqual({ name: 'SCIM_BRIDGE_DATABASE_URL', value: 'sqlite:/data/scim-bridge.db' });
    expect(await violations(sqlite, KUBERNETES_NO_SECRETS_IN_ENV)).toEqual([]);
  });

  test(`${KUBERNETES_NO_SECRETS_IN_ENV}: the files (_FILE), the empty DATABASE_URL beside one, and plain settings pass`, async () => {
    const env = container(deployment().props).env.map((e: Any) => e.name);
    expect(env).toEqual(expect.arrayContaining(['SCIM_BRIDGE_TOKEN_SHA256_FILE', 'SCIM_BRIDGE_DATABASE_URL', 'SCIM_BRIDGE_DATABASE_URL_FILE', 'SCIM_BRIDGE_PUBLIC_URL']));
    expect(await violations(deployment(), KUBERNETES_NO_SECRETS_IN_ENV)).toEqual([]);
  });

  test(`${KUBERNETES_NETWORK_POLICY}: without the deny-by-default NetworkPolicy the workload is reported; allow-rules alone are not enough`, async () => {
    const p = k8sPlans.kubernetes;
    const deny = one(p, T.k8sNetworkPolicy, 'scim-bridge-default-deny');
    const without = p.registrations.filter((r) => r.urn !== deny.urn);
    const o = await analyzeStack(p, without);
    expect(details(o, KUBERNETES_NETWORK_POLICY)).toEqual([expect.stringMatching(/^scim-bridge-server: its namespace scim-bridge-kubernetes has no deny-by-default NetworkPolicy/)]);
    expect(o.violations.map((v) => v.urn)).toEqual([deployment().urn]);
  });
});
