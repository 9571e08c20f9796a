/**
 * The Google Workspace connector in every target (docs/idp/google.md, "Deploy"): the stack's `googleWorkspace`
 * ({ admin, groups, interval }) reaches the bridge as its SCIM_BRIDGE_GOOGLE_* settings, and the service account's
 * JSON key (`googleWorkspaceKey`, a secret) as a file through SCIM_BRIDGE_GOOGLE_CREDENTIALS_FILE, the way the
 * webhook secret goes: GCP and AWS from the cloud's secret store (fetch-secrets), DigitalOcean in the Droplet's
 * secret user-data, Kubernetes from the mounted Secret. Never in clear; a new key never replaces a GCP or AWS VM.
 */
import { parseStackConfig, RawConfig } from '../../infra/config';
import { minifiedServiceAccountKey } from '../../infra/google-workspace';
import { inventedSecret, plan, PlanResult } from '../../tools/plan';
import { all, one, writtenFiles } from '../helpers/plan';

type Any = any; // eslint-disable-line @typescript-eslint/no-explicit-any

const GOOGLE = {
  'scim-bridge:googleWorkspace': { admin: 'admin@example.com', groups: ['engineering@example.com', 'Sales@example.com'], interval: '15m' },
  'scim-bridge:googleWorkspaceKey': { secure: 'v1:key-one' },
};
const NEW_KEY = { ...GOOGLE, 'scim-bridge:googleWorkspaceKey': { secure: 'v1:key-two' } };
const INVENTED = inventedSecret('googleWorkspaceKey');
const SETTINGS = ['SCIM_BRIDGE_GOOGLE_ADMIN=admin@example.com', 'SCIM_BRIDGE_GOOGLE_GROUPS=engineering@example.com,sales@example.com', 'SCIM_BRIDGE_GOOGLE_INTERVAL=15m'];

/** The host's env file and the files its cloud-init writes. */
function hostFiles(userData: string): { env: string; files: Array<{ path: string; content: string }> } {
  const files = writtenFiles(userData);
  return { env: files.find((f) => f.path === '/etc/scim-bridge/bridge.env')!.content, files };
}

interface VmView {
  host: string;
  userData(host: Any): string;
  /** Where the key is kept outside the host: the secret store's version (none on DigitalOcean). */
  stored?(r: PlanResult): string;
}

const VMS: Record<string, VmView> = {
  gcp: {
    host: 'gcp:compute/instance:Instance',
    userData: (h) => h.metadata['user-data'],
    stored: (r) => one(r, 'gcp:secretmanager/secretVersion:SecretVersion', 'scim-bridge-google-credentials').in.secretData,
  },
  aws: {
    host: 'aws:ec2/instance:Instance',
    userData: (h) => h.userData,
    stored: (r) => one(r, 'aws:secretsmanager/secretVersion:SecretVersion', 'scim-bridge-google-credentials').in.secretString,
  },
  digitalocean: { host: 'digitalocean:index/droplet:Droplet', userData: (h) => h.userData },
};

const plans: Record<string, { off: PlanResult; on: PlanResult; rekeyed: PlanResult }> = {};

beforeAll(async () => {
  for (const stack of [...Object.keys(VMS), 'kubernetes']) {
    plans[stack] = { off: await plan(stack), on: await plan(stack, { config: GOOGLE }), rekeyed: await plan(stack, { config: NEW_KEY }) };
  }
}, 120_000);

describe.each(Object.keys(VMS))('the %s target with googleWorkspace', (stack) => {
  const view = VMS[stack];
  const host = (r: PlanResult) => one(r, view.host);

  test('the settings reach the host\'s env file, the key as SCIM_BRIDGE_GOOGLE_CREDENTIALS_FILE fetched by fetch-secrets', () => {
    const { env, files } = hostFiles(view.userData(host(plans[stack].on).in));
    for (const line of SETTINGS) expect(env).toContain(`${line}\n`);
    expect(env).toContain('SCIM_BRIDGE_GOOGLE_CREDENTIALS_FILE=/run/secrets/google-credentials\n');
    expect(env).not.toMatch(/SCIM_BRIDGE_GOOGLE_CREDENTIALS=/);
    const fetchSecrets = files.find((f) => f.path.endsWith('/fetch-secrets'))!.content;
    expect(fetchSecrets).toMatch(/check SCIM_BRIDGE_GOOGLE_CREDENTIALS "\$value_\d+"/);
    expect(fetchSecrets).toContain('put google-credentials ');
  });

  test('without it, nothing of the connector is there', () => {
    const ud = view.userData(host(plans[stack].off).in);
    expect(ud).not.toContain('SCIM_BRIDGE_GOOGLE_');
    expect(plans[stack].off.raw.filter((x) => x.name.includes('google'))).toEqual([]);
  });

  test('the key is never in clear (the plan\'s leak check), and kept on one line (fetch-secrets refuses line breaks)', () => {
    const { on } = plans[stack];
    expect(on.leaks).toEqual([]);
    expect(JSON.stringify(on.plan)).not.toContain('PLAN-SECRET-');
    if (view.stored) {
      const stored = view.stored(on);
      expect(stored).toContain(INVENTED);
      expect(stored).not.toMatch(/[\r\n]/);
      expect(JSON.parse(stored)).toMatchObject({ type: 'service_account', private_key: expect.stringContaining(INVENTED) });
      // The host gets where the key is, never the key.
      expect(view.userData(host(on).in)).not.toContain(INVENTED);
    } else {
      // DigitalOcean has no secret store: the key is a root-only file of the user-data, which is a secret then.
      const hostRaw = on.raw.find((x) => x.type === view.host)!;
      expect(JSON.stringify(hostRaw.inputs.userData)).toContain('4dabf18193072939515e22adb298388d');
      const file = hostFiles(view.userData(host(on).in)).files.find((f) => f.path === '/etc/scim-bridge/secrets/google-credentials')!;
      expect(JSON.parse(file.content)).toMatchObject({ type: 'service_account' });
      expect(file.content.trimEnd()).not.toMatch(/[\r\n]/);
    }
  });

  if (stack !== 'digitalocean') {
    test('a new key is a new secret version: the host\'s inputs stay byte for byte (no new VM), as a token rotation', () => {
      const { on, rekeyed } = plans[stack];
      expect(rekeyed.leaks).toEqual([]);
      expect(view.stored!(rekeyed)).not.toBe(view.stored!(on));
      expect(JSON.stringify(host(rekeyed).inputs)).toBe(JSON.stringify(host(on).inputs));
      expect(host(rekeyed).options).toEqual(host(on).options);
    });
  } else {
    test('a new key replaces the Droplet, as a new webhook secret does (DigitalOcean has no secret store)', () => {
      const { on, rekeyed } = plans[stack];
      expect(rekeyed.leaks).toEqual([]);
      expect(view.userData(host(rekeyed).in)).not.toBe(view.userData(host(on).in));
      expect(host(on).options.replaceOnChanges).toContain('userData');
    });
  }
});

test('gcp: the key in Secret Manager, readable by the host\'s service account only', () => {
  const { on } = plans.gcp;
  const secret = one(on, 'gcp:secretmanager/secret:Secret', 'scim-bridge-google-credentials');
  const reader = one(on, 'gcp:secretmanager/secretIamMember:SecretIamMember', 'scim-bridge-google-credentials-reader');
  expect(reader.in).toMatchObject({ role: 'roles/secretmanager.secretAccessor', member: expect.stringMatching(/^serviceAccount:/) });
  const ud = VMS.gcp.userData(one(on, VMS.gcp.host).in);
  expect(ud).toContain(`gcp_secret projects/my-gcp-project/secrets/${secret.in.secretId}`);
});

test('aws: the host\'s role may read the key\'s secret, and the user-data names its ARN', () => {
  const { on } = plans.aws;
  const policy = JSON.parse(all(on, 'aws:iam/rolePolicy:RolePolicy').find((p) => p.name === 'scim-bridge-host')!.in.policy);
  const statement = policy.Statement.find((s: Any) => s.Sid === 'GoogleCredentials');
  expect(statement).toMatchObject({ Effect: 'Allow', Action: 'secretsmanager:GetSecretValue' });
  const { files } = hostFiles(VMS.aws.userData(one(on, VMS.aws.host).in));
  expect(files.find((f) => f.path === '/usr/local/lib/scim-bridge/fetch-secrets')!.content).toContain(`aws_secret ${statement.Resource}`);
});

describe('the kubernetes target with googleWorkspace', () => {
  const pod = (r: PlanResult) => one(r, 'kubernetes:apps/v1:Deployment').in.spec.template.spec;
  const envOf = (r: PlanResult): Record<string, string> => Object.fromEntries(pod(r).containers[0].env.map((e: Any) => [e.name, e.value]));
  const egressPorts = (r: PlanResult) =>
    one(r, 'kubernetes:networking.k8s.io/v1:NetworkPolicy', 'scim-bridge-bridge').in.spec.egress.map((e: Any) => e.ports.map((p: Any) => p.port).join(','));

  test('the settings are the pod\'s env, the key a file of the mounted Secret', () => {
    const env = envOf(plans.kubernetes.on);
    for (const line of SETTINGS) {
      const [k, v] = line.split('=');
      expect(env[k]).toBe(v);
    }
    expect(env.SCIM_BRIDGE_GOOGLE_CREDENTIALS_FILE).toBe('/run/secrets/scim-bridge/google-credentials');
    expect(env.SCIM_BRIDGE_GOOGLE_CREDENTIALS).toBeUndefined();
    const data = one(plans.kubernetes.on, 'kubernetes:core/v1:Secret', 'scim-bridge-settings').in.stringData;
    expect(JSON.parse(data['google-credentials'])).toMatchObject({ type: 'service_account', private_key: expect.stringContaining(INVENTED) });
    expect(plans.kubernetes.on.leaks).toEqual([]);
    expect(JSON.stringify(plans.kubernetes.on.plan)).not.toContain('PLAN-SECRET-');
  });

  test('the NetworkPolicy lets the pods out to 443 (Google\'s APIs) only when the connector is on, never to the metadata service', () => {
    expect(egressPorts(plans.kubernetes.off)).not.toContain('443');
    expect(egressPorts(plans.kubernetes.on)).toEqual([...egressPorts(plans.kubernetes.off), '443']);
    const rule = one(plans.kubernetes.on, 'kubernetes:networking.k8s.io/v1:NetworkPolicy', 'scim-bridge-bridge').in.spec.egress.at(-1);
    expect(rule.to[0].ipBlock.except).toEqual(['169.254.0.0/16']);
    expect(Object.keys(envOf(plans.kubernetes.off)).filter((k) => k.startsWith('SCIM_BRIDGE_GOOGLE_'))).toEqual([]);
  });

  test('a new key rolls the pods (the Secret\'s digest), as a token rotation does', () => {
    const digest = (r: PlanResult) => one(r, 'kubernetes:apps/v1:Deployment').in.spec.template.metadata.annotations['scim-bridge/settings-sha256'];
    expect(digest(plans.kubernetes.rekeyed)).not.toBe(digest(plans.kubernetes.on));
    expect(plans.kubernetes.rekeyed.leaks).toEqual([]);
  });
});

describe('the settings are checked before anything is declared', () => {
  const KEY = JSON.stringify({ type: 'service_account', client_email: 'sa@p.iam.gserviceaccount.com', private_key: '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n' }, null, 2);
  const problems = (extra: Record<string, string>, secret = ['scim-bridge:googleWorkspaceKey']): string[] => {
    const values: Record<string, string> = {
      'scim-bridge:target': 'gcp',
      'scim-bridge:domain': 'scim.example.com',
      'scim-bridge:alertEmail': 'ops@example.com',
      'scim-bridge:dnsZone': 'example-com',
      'scim-bridge:zone': 'europe-west1-b',
      'gcp:project': 'my-gcp-project',
      ...extra,
    };
    const raw: RawConfig = { get: (k) => values[k], isSecret: (k) => secret.includes(k), keys: () => Object.keys(values) };
    try {
      parseStackConfig(raw, (v) => v as never);
      return [];
    } catch (err) {
      return (err as { problems: string[] }).problems.filter((p) => p.includes('google'));
    }
  };
  const settings = (o: Record<string, unknown>) => ({ 'scim-bridge:googleWorkspace': JSON.stringify(o) });
  const valid = { admin: 'admin@example.com', groups: ['eng@example.com'] };

  test('a valid pair passes, the key minified to one line', () => {
    expect(problems({ ...settings(valid), 'scim-bridge:googleWorkspaceKey': KEY })).toEqual([]);
    const minified = minifiedServiceAccountKey(KEY);
    expect(minified).toEqual({ key: JSON.stringify(JSON.parse(KEY)) });
    expect((minified as { key: string }).key).not.toMatch(/\n/);
  });

  test.each([
    ['the key without the settings', { 'scim-bridge:googleWorkspaceKey': KEY }, /^scim-bridge:googleWorkspaceKey is set but googleWorkspace is not: pulumi config set --path googleWorkspace.admin/],
    ['the settings without the key', settings(valid), /^scim-bridge:googleWorkspaceKey is not set but googleWorkspace is: .*pulumi config set --secret googleWorkspaceKey$/],
    ['no admin', { ...settings({ groups: ['eng@example.com'] }), 'scim-bridge:googleWorkspaceKey': KEY }, /^scim-bridge:googleWorkspace has no admin.*pulumi config set --path googleWorkspace.admin admin@example.com$/],
    ['no groups', { ...settings({ admin: 'admin@example.com', groups: [] }), 'scim-bridge:googleWorkspaceKey': KEY }, /^scim-bridge:googleWorkspace groups must list the groups to sync/],
    ['a bad interval', { ...settings({ ...valid, interval: '10 minutes' }), 'scim-bridge:googleWorkspaceKey': KEY }, /^scim-bridge:googleWorkspace interval "10 minutes" must be a duration from 1s to 24h/],
    ['an unknown field', { ...settings({ ...valid, admins: 'x' }), 'scim-bridge:googleWorkspaceKey': KEY }, /^scim-bridge:googleWorkspace has "admins", which is not one of admin, groups, interval/],
    ['a key that is not JSON', { ...settings(valid), 'scim-bridge:googleWorkspaceKey': 'not json at all' }, /^scim-bridge:googleWorkspaceKey is not JSON: it must be the service account's JSON key/],
    ['another kind of JSON key', { ...settings(valid), 'scim-bridge:googleWorkspaceKey': JSON.stringify({ type: 'authorized_user' }) }, /^scim-bridge:googleWorkspaceKey has no "type": "service_account"/],
  ])('%s is refused, naming the key and the fix', (_, config, message) => {
    const found = problems(config as Record<string, string>);
    expect(found).toHaveLength(1);
    expect(found[0]).toMatch(message);
  });

  test('a key in clear is refused, and its content is never quoted', () => {
    const found = problems({ ...settings(valid), 'scim-bridge:googleWorkspaceKey': KEY }, []);
    expect(found).toEqual([expect.stringMatching(/^scim-bridge:googleWorkspaceKey is stored in clear in the stack file: .*revoke that key/)]);
    expect(found.join('\n')).not.toContain('PRIVATE KEY');
  });
});
