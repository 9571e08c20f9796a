/**
 * `image: build`, the default while no published image of this version is known: on every target the plan builds
 * bridge/Dockerfile from the checkout (context the repository root, the host's platform), pushes it to a registry of
 * the target's own cloud that the stack declares, and the host or the pods run the pushed image by digest, with a
 * pull permission and no secret in clear. A published image (by digest) still deploys as it is, with no build.
 */
import { spawnSync } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { ECR_PULL_ACTIONS } from '../../infra/aws/registry';
import { parseStackConfig } from '../../infra/config';
import { gcpCredentialHelper, gcpPlatform, GCP_CREDENTIAL_HELPER_PATH } from '../../infra/gcp/registry';
import { BUILD_CONTEXT, BUILD_IMAGE, defaultImage, DOCKERFILE, planDigest, PUBLISHED_IMAGES } from '../../infra/image';
import { inventedSecret, plan, PlanResult, SECRET_SIG_KEY } from '../../tools/plan';
import { all, Inputs, one, Planned } from '../helpers/plan';

type Any = any; // eslint-disable-line @typescript-eslint/no-explicit-any
const IMAGE = 'docker-build:index:Image';
const VERSION = require('../../bridge/package.json').version as string;
const PUBLISHED = `ghcr.io/scim-bridge/scim-bridge:${VERSION}@sha256:${'a'.repeat(64)}`;
const K8S_LOGIN = { 'scim-bridge:registryUsername': 'scim-bridge-ci', 'scim-bridge:registryPassword': { secure: 'v1:x' } };

/** The one build: its inputs, and the reference the host or pods must run (the tag's repository @ the digest). */
function build(r: PlanResult): { image: Planned; reference: string; repository: string } {
  const image = one(r, IMAGE);
  const [tag] = image.in.tags as string[];
  const repository = tag.slice(0, tag.lastIndexOf(':'));
  return { image, repository, reference: `${repository}@${planDigest(image.in)}` };
}

/** The `docker run` line of the bridge in a host's user-data. */
function bridgeRun(userData: string): string {
  return userData.split('\n').find((l) => l.includes('docker run --rm --name scim-bridge '))!;
}

function writeFile(userData: string, path: string): { content: string; permissions: string } {
  const doc = parse(userData) as { write_files: Array<{ path: string; content: string; permissions: string }> };
  return doc.write_files.find((f) => f.path === path)!;
}

const HOSTS = {
  gcp: { type: 'gcp:compute/instance:Instance', userData: (h: Inputs) => h.metadata['user-data'] as string },
  digitalocean: { type: 'digitalocean:index/droplet:Droplet', userData: (h: Inputs) => h.userData as string },
  aws: { type: 'aws:ec2/instance:Instance', userData: (h: Inputs) => h.userData as string },
} as const;

const plans: Record<string, PlanResult> = {};
beforeAll(async () => {
  for (const stack of ['gcp', 'digitalocean', 'aws', 'kubernetes']) plans[stack] = await plan(stack);
}, 120_000);

describe('the default image', () => {
  test('is build while this version has no published image; the published one (by digest) once it has', () => {
    expect(PUBLISHED_IMAGES[VERSION]).toBeUndefined();
    expect(defaultImage()).toBe(BUILD_IMAGE);
    const digest = `sha256:${'b'.repeat(64)}`;
    expect(defaultImage('0.2.0', { '0.2.0': digest })).toBe(`ghcr.io/scim-bridge/scim-bridge:0.2.0@${digest}`);
    expect(defaultImage('0.3.0', { '0.2.0': digest })).toBe(BUILD_IMAGE);
  });

  test('build is accepted as the image setting; anything else must still be pinned', () => {
    const raw = (image: string) => {
      const all: Record<string, string> = {
        'gcp:project': 'p',
        'scim-bridge:target': 'gcp',
        'scim-bridge:domain': 'scim.example.com',
        'scim-bridge:dnsZone': 'example-com',
        'scim-bridge:zone': 'europe-west1-b',
        'scim-bridge:alertEmail': 'ops@example.com',
        'scim-bridge:image': image,
      };
      return { get: (k: string) => all[k], isSecret: () => false, keys: () => Object.keys(all) };
    };
    expect(parseStackConfig(raw('build'), (v) => v as Any).image).toBe('build');
    expect(() => parseStackConfig(raw('ghcr.io/x/y:latest'), (v) => v as Any)).toThrow(/scim-bridge:image "ghcr.io\/x\/y:latest" is pinned to "latest"/);
  });
});

describe.each(['gcp', 'digitalocean', 'aws', 'kubernetes'])('image build on %s', (stack) => {
  const r = () => plans[stack];

  test('builds bridge/Dockerfile with the repository root as context, pushes it, and runs it by digest; nothing leaks', () => {
    const { image, reference } = build(r());
    expect(image.in).toMatchObject({ context: { location: BUILD_CONTEXT }, dockerfile: { location: DOCKERFILE }, push: true, buildArgs: { VERSION } });
    // The Dockerfile copies the root's lockfile: its context is the repository root.
    expect(BUILD_CONTEXT).toBe('.');
    expect(DOCKERFILE).toBe('bridge/Dockerfile');
    expect(image.in.tags).toEqual([expect.stringMatching(new RegExp(`:${VERSION.replace(/\./g, '\\.')}$`))]);
    expect(reference).toMatch(/@sha256:[0-9a-f]{64}$/);
    if (stack === 'kubernetes') {
      const deployment = one(r(), 'kubernetes:apps/v1:Deployment');
      expect(deployment.in.spec.template.spec.containers.map((c: Any) => c.image)).toEqual([reference]);
    } else {
      const host = one(r(), HOSTS[stack as keyof typeof HOSTS].type);
      expect(bridgeRun(HOSTS[stack as keyof typeof HOSTS].userData(host.in))).toMatch(new RegExp(` ${reference.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`));
    }
    expect(r().leaks).toEqual([]);
    expect(JSON.stringify(r().plan)).not.toContain('PLAN-SECRET-');
  });

  test('a push credential the cloud issues reaches the build\'s registries only', () => {
    const holders = r().raw.filter((x) => JSON.stringify(x.inputs).includes(inventedSecret('registryPushToken'))).map((x) => `${x.type} ${x.name}`);
    // Kubernetes pushes with your Docker's login unless the stack names one (registryPassword, tested below).
    expect(holders).toEqual(stack === 'kubernetes' ? [] : [`${IMAGE} scim-bridge-image`]);
  });

  test('an unchanged checkout plans the same digest again (no change for Pulumi)', async () => {
    const again = await plan(stack);
    expect(build(again).reference).toBe(build(r()).reference);
  });

  test('a published image by digest deploys as it is: no build, no registry', async () => {
    const published = await plan(stack, { config: { 'scim-bridge:image': PUBLISHED, 'scim-bridge:registry': null } });
    expect(all(published, IMAGE)).toHaveLength(0);
    const registries = published.raw.filter((x) => /artifactregistry|ecr\/|containerRegistry/.test(x.type));
    expect(registries.map((x) => x.type)).toEqual([]);
    if (stack === 'kubernetes') {
      expect(one(published, 'kubernetes:apps/v1:Deployment').in.spec.template.spec.containers[0].image).toBe(PUBLISHED);
    } else {
      const userData = HOSTS[stack as keyof typeof HOSTS].userData(one(published, HOSTS[stack as keyof typeof HOSTS].type).in);
      expect(bridgeRun(userData).endsWith(` ${PUBLISHED}`)).toBe(true);
      expect(userData).not.toContain('DOCKER_CONFIG');
    }
    expect(published.leaks).toEqual([]);
  });
});

describe('GCP: Artifact Registry, read by the VM\'s service account', () => {
  const r = () => plans.gcp;

  test('the repository is the stack\'s, in the VM\'s region; the build pushes there with the provider\'s token, for the machine\'s platform', () => {
    const repo = one(r(), 'gcp:artifactregistry/repository:Repository');
    expect(repo.in).toMatchObject({ project: 'my-gcp-project', location: 'europe-west1', format: 'DOCKER', repositoryId: 'scim-bridge-gcp-images' });
    const { image, repository } = build(r());
    expect(repository).toBe('europe-west1-docker.pkg.dev/my-gcp-project/scim-bridge-gcp-images/scim-bridge');
    expect(image.in.platforms).toEqual(['linux/amd64']);
    expect(image.in.registries).toEqual([{ address: 'europe-west1-docker.pkg.dev', username: 'oauth2accesstoken', password: inventedSecret('registryPushToken') }]);
    // The token is a secret in the plan's inputs.
    expect(JSON.stringify(image.inputs.registries)).toContain(SECRET_SIG_KEY);
    expect(gcpPlatform('t2a-standard-1')).toBe('linux/arm64');
    expect(gcpPlatform('c4a-standard-2')).toBe('linux/arm64');
    expect(gcpPlatform('e2-small')).toBe('linux/amd64');
  });

  test('the VM\'s service account may read that repository, and nothing more of Artifact Registry', () => {
    const account = one(r(), 'gcp:serviceaccount/account:Account');
    const grants = all(r(), 'gcp:artifactregistry/repositoryIamMember:RepositoryIamMember');
    expect(grants.map((g) => g.in)).toEqual([
      { project: 'my-gcp-project', location: 'europe-west1', repository: 'scim-bridge-gcp-images', role: 'roles/artifactregistry.reader', member: `serviceAccount:${account.in.accountId}@my-gcp-project.iam.gserviceaccount.com` },
    ]);
    expect(all(r(), 'gcp:projects/iAMMember:IAMMember').filter((m) => /artifactregistry/.test(m.in.role))).toEqual([]);
    expect(all(r(), 'gcp:projects/service:Service').map((s) => s.in.service)).toContain('artifactregistry.googleapis.com');
  });

  test('the host\'s Docker logs in with the metadata server\'s token through a credential helper; no credential in the user-data', () => {
    const userData = HOSTS.gcp.userData(one(r(), HOSTS.gcp.type).in);
    const config = writeFile(userData, '/etc/scim-bridge/docker/config.json');
    expect(config.permissions).toBe('0600');
    expect(JSON.parse(config.content)).toEqual({ credHelpers: { 'europe-west1-docker.pkg.dev': 'scim-bridge-gcp' } });
    expect(userData).toContain('Environment=DOCKER_CONFIG=/etc/scim-bridge/docker');
    expect(writeFile(userData, GCP_CREDENTIAL_HELPER_PATH)).toMatchObject({ permissions: '0755', content: gcpCredentialHelper() });
    const check = spawnSync('shellcheck', ['-s', 'sh', '-S', 'style', '-'], { input: gcpCredentialHelper(), encoding: 'utf8' });
    expect(check.stdout + check.stderr).toBe('');
  });

  test('the credential helper answers Docker with the token the metadata server gives, as Artifact Registry takes it', async () => {
    const server = createServer((req, res) => {
      if (req.url !== '/computeMetadata/v1/instance/service-accounts/default/token' || req.headers['metadata-flavor'] !== 'Google') {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ access_token: 'ya29.token-from-metadata', expires_in: 3599, token_type: 'Bearer' }));
    });
    await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
    const dir = mkdtempSync(join(tmpdir(), 'gcp-helper-'));
    try {
      const helper = join(dir, 'docker-credential-scim-bridge-gcp');
      writeFileSync(helper, gcpCredentialHelper(), { mode: 0o755 });
      const env = { ...process.env, GCE_METADATA_HOST: `127.0.0.1:${(server.address() as AddressInfo).port}` };
      const got = await new Promise<{ code: number | null; out: string }>((ok) => {
        const child = require('node:child_process').spawn(helper, ['get'], { env });
        let out = '';
        child.stdout.on('data', (d: Buffer) => (out += d));
        child.on('close', (code: number | null) => ok({ code, out }));
        child.stdin.end('https://europe-west1-docker.pkg.dev\n');
      });
      expect(got.code).toBe(0);
      expect(JSON.parse(got.out)).toEqual({ Username: 'oauth2accesstoken', Secret: 'ya29.token-from-metadata' });
      expect(spawnSync(helper, ['erase'], { input: 'x', env }).status).toBe(0);
      expect(spawnSync(helper, ['bogus'], { env }).status).toBe(1);
    } finally {
      rmSync(dir, { recursive: true, force: true });
      server.close();
    }
  });
});

describe('AWS: ECR, read by the instance role', () => {
  const r = () => plans.aws;

  test('the stack\'s repository, pushed with a provider-issued token, for the instance type\'s architecture', async () => {
    const repo = one(r(), 'aws:ecr/repository:Repository');
    expect(repo.in).toMatchObject({ name: 'scim-bridge-aws', imageScanningConfiguration: { scanOnPush: true } });
    const { image, repository } = build(r());
    expect(repository).toBe('123456789012.dkr.ecr.eu-west-1.amazonaws.com/scim-bridge-aws');
    expect(image.in.platforms).toEqual(['linux/amd64']);
    expect(image.in.registries).toEqual([{ address: '123456789012.dkr.ecr.eu-west-1.amazonaws.com', username: 'AWS', password: inventedSecret('registryPushToken') }]);
    // Images the host may still need (the running one, untagged once a newer build moves the tag) are kept.
    const lifecycle = JSON.parse(one(r(), 'aws:ecr/lifecyclePolicy:LifecyclePolicy').in.policy);
    expect(lifecycle.rules).toEqual([expect.objectContaining({ selection: expect.objectContaining({ tagStatus: 'any', countType: 'imageCountMoreThan' }) })]);
    const graviton = await plan('aws', { config: { 'scim-bridge:size': 't4g.small' } });
    expect(build(graviton).image.in.platforms).toEqual(['linux/arm64']);
  });

  test('the role may pull from that repository only (and get the registry token); the host logs in through Debian\'s ECR helper', () => {
    const policy = JSON.parse(one(r(), 'aws:iam/rolePolicy:RolePolicy', 'scim-bridge-host').in.policy);
    const repoArn = 'arn:aws:ecr:eu-west-1:123456789012:repository/scim-bridge-aws';
    expect(policy.Statement).toEqual(
      expect.arrayContaining([
        { Sid: 'ImageRegistryToken', Effect: 'Allow', Action: 'ecr:GetAuthorizationToken', Resource: '*' },
        { Sid: 'ImagePull', Effect: 'Allow', Action: ECR_PULL_ACTIONS, Resource: repoArn },
      ]),
    );
    expect(ECR_PULL_ACTIONS.every((a) => /^ecr:(BatchGetImage|GetDownloadUrlForLayer|BatchCheckLayerAvailability)$/.test(a))).toBe(true);
    const userData = HOSTS.aws.userData(one(r(), HOSTS.aws.type).in);
    expect((parse(userData) as { packages: string[] }).packages).toContain('amazon-ecr-credential-helper');
    const config = writeFile(userData, '/etc/scim-bridge/docker/config.json');
    expect(JSON.parse(config.content)).toEqual({ credHelpers: { '123456789012.dkr.ecr.eu-west-1.amazonaws.com': 'ecr-login' } });
    expect(config.permissions).toBe('0600');
  });
});

describe('DigitalOcean: Container Registry, read with a read-only credential kept like the webhook secret', () => {
  const r = () => plans.digitalocean;

  test('the stack creates the registry (or uses the one named), a repository per stack; pushes with a write credential', async () => {
    const registry = one(r(), 'digitalocean:index/containerRegistry:ContainerRegistry');
    expect(registry.in).toMatchObject({ name: 'scim-bridge-digitalocean', subscriptionTierSlug: 'basic', region: 'fra1' });
    const { image, repository } = build(r());
    expect(repository).toBe('registry.digitalocean.com/scim-bridge-digitalocean/scim-bridge-digitalocean');
    expect(image.in.platforms).toEqual(['linux/amd64']);
    expect(image.in.registries).toEqual([{ address: 'registry.digitalocean.com', username: inventedSecret('registryPushToken'), password: inventedSecret('registryPushToken') }]);
    const credentials = all(r(), 'digitalocean:index/containerRegistryDockerCredentials:ContainerRegistryDockerCredentials');
    expect(credentials.map((c) => [c.name, c.in.write])).toEqual([
      ['scim-bridge-registry-push', true],
      ['scim-bridge-registry-pull', false],
    ]);

    const shared = await plan('digitalocean', { config: { 'scim-bridge:containerRegistry': 'acme-registry' } });
    expect(all(shared, 'digitalocean:index/containerRegistry:ContainerRegistry')).toHaveLength(0);
    expect(build(shared).repository).toBe('registry.digitalocean.com/acme-registry/scim-bridge-digitalocean');
    expect(shared.leaks).toEqual([]);
  });

  test('the Droplet gets the read-only credential only, root\'s, in a user-data that is then a secret', () => {
    const droplet = one(r(), HOSTS.digitalocean.type);
    expect(JSON.stringify(droplet.inputs.userData)).toContain(SECRET_SIG_KEY);
    const userData = HOSTS.digitalocean.userData(droplet.in);
    const config = writeFile(userData, '/etc/scim-bridge/docker/config.json');
    expect(config.permissions).toBe('0600');
    const auth = JSON.parse(config.content).auths['registry.digitalocean.com'].auth as string;
    expect(Buffer.from(auth, 'base64').toString()).toBe(`${inventedSecret('registryPullToken')}:${inventedSecret('registryPullToken')}`);
    expect(userData).not.toContain(Buffer.from(`${inventedSecret('registryPushToken')}:${inventedSecret('registryPushToken')}`).toString('base64'));
    expect(userData).toContain('Environment=DOCKER_CONFIG=/etc/scim-bridge/docker');
    // The read-only login (base64, as Docker keeps it) is in the Droplet's user-data and in no other input.
    const holders = r().raw.filter((x) => JSON.stringify(x.inputs).includes(auth)).map((x) => `${x.type} ${x.name}`);
    expect(holders).toEqual([`${HOSTS.digitalocean.type} scim-bridge-host`]);
  });

  test('containerRegistry with a published image is refused', async () => {
    const refused = await plan('digitalocean', { config: { 'scim-bridge:image': PUBLISHED, 'scim-bridge:containerRegistry': 'acme-registry' } }).catch((e: Error) => e.message);
    expect(refused).toMatch(/scim-bridge:containerRegistry is for image build only/);
  });
});

describe('Kubernetes: the registry the stack names', () => {
  const r = () => plans.kubernetes;

  test('without a login: your Docker pushes, the nodes\' identity pulls (no pull secret, no credential in the plan)', () => {
    const { image, repository } = build(r());
    expect(repository).toBe('registry.example.com/platform/scim-bridge');
    expect(image.in.platforms).toEqual(['linux/amd64']);
    expect(image.in.registries).toBeUndefined();
    expect(one(r(), 'kubernetes:apps/v1:Deployment').in.spec.template.spec.imagePullSecrets).toBeUndefined();
  });

  test('with a login: it pushes, and becomes the pods\' imagePullSecret; the password only in secrets', async () => {
    const withLogin = await plan('kubernetes', { config: { ...K8S_LOGIN, 'scim-bridge:platform': 'linux/arm64' } });
    expect(withLogin.leaks).toEqual([]);
    const password = inventedSecret('registryPassword');
    const { image } = build(withLogin);
    expect(image.in.platforms).toEqual(['linux/arm64']);
    expect(image.in.registries).toEqual([{ address: 'registry.example.com', username: 'scim-bridge-ci', password }]);
    const pull = one(withLogin, 'kubernetes:core/v1:Secret', 'scim-bridge-registry');
    expect(pull.in.type).toBe('kubernetes.io/dockerconfigjson');
    expect(JSON.stringify(pull.inputs.stringData)).toContain(SECRET_SIG_KEY);
    const auths = JSON.parse(pull.in.stringData['.dockerconfigjson']).auths;
    expect(auths['registry.example.com']).toEqual({ username: 'scim-bridge-ci', password, auth: Buffer.from(`scim-bridge-ci:${password}`).toString('base64') });
    const spec = one(withLogin, 'kubernetes:apps/v1:Deployment').in.spec.template.spec;
    expect(spec.imagePullSecrets).toEqual([{ name: pull.in.metadata.name }]);
    expect(pull.in.metadata.namespace).toBe(one(withLogin, 'kubernetes:apps/v1:Deployment').in.metadata.namespace);
    const holders = withLogin.raw.filter((x) => JSON.stringify(x.inputs).includes(password)).map((x) => `${x.type} ${x.name}`);
    expect(holders.sort()).toEqual([`${IMAGE} scim-bridge-image`, 'kubernetes:core/v1:Secret scim-bridge-registry']);
  });

  test('registry is required with image build; a half login, a password in clear, a bad platform are refused', async () => {
    const problems = async (config: Record<string, Any>) => plan('kubernetes', { config }).then(() => '', (e: Error) => e.message);
    expect(await problems({ 'scim-bridge:registry': null })).toMatch(/scim-bridge:registry is not set but image is build/);
    expect(await problems({ 'scim-bridge:registry': 'registry.example.com/x:1.0' })).toMatch(/scim-bridge:registry "registry.example.com\/x:1.0" is not a repository/);
    expect(await problems({ 'scim-bridge:registryUsername': 'ci' })).toMatch(/scim-bridge:registryPassword is not set but registryUsername is/);
    expect(await problems({ ...K8S_LOGIN, 'scim-bridge:registryPassword': 'in-clear' })).toMatch(/scim-bridge:registryPassword is stored in clear/);
    expect(await problems({ 'scim-bridge:platform': 'linux/s390x' })).toMatch(/scim-bridge:platform "linux\/s390x" must be linux\/amd64 or linux\/arm64/);
    expect(await problems({ 'scim-bridge:image': PUBLISHED })).toMatch(/scim-bridge:registry is for image build only/);
  });
});

describe('the plan\'s digest follows the checkout, as a build\'s does', () => {
  test('a change in what the Dockerfile copies changes it; a change elsewhere does not', () => {
    const root = mkdtempSync(join(tmpdir(), 'context-'));
    try {
      writeFileSync(join(root, '.dockerignore'), '*\n!package.json\n!bridge/src/\n');
      writeFileSync(join(root, 'package.json'), '{}');
      mkdirSync(join(root, 'bridge', 'src'), { recursive: true });
      writeFileSync(join(root, 'bridge', 'src', 'main.ts'), 'a');
      writeFileSync(join(root, 'README.md'), 'a');
      const inputs = { context: { location: '.' }, tags: ['r/x:1'] };
      const first = planDigest(inputs, root);
      expect(first).toMatch(/^sha256:[0-9a-f]{64}$/);
      writeFileSync(join(root, 'README.md'), 'b');
      expect(planDigest(inputs, root)).toBe(first);
      // The registries' credentials are not part of what is built.
      expect(planDigest({ ...inputs, registries: [{ password: 'p' }] }, root)).toBe(first);
      writeFileSync(join(root, 'bridge', 'src', 'main.ts'), 'b');
      expect(planDigest(inputs, root)).not.toBe(first);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
