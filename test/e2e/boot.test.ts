/**
 * A real first boot of the VM host, for the user-data each VM target generates (gcp, digitalocean, aws).
 *
 * The program's offline plan renders each target's user-data; it goes into a QEMU VM unchanged (NoCloud seed),
 * on a Debian 12 cloud image, with a blank data disk. The seams around it (docker.io preinstalled, images loaded
 * from a kit disk instead of a registry, once per pair of images into a cached Docker store, the cloud's disk
 * name given by a udev rule, fake metadata and secret stores) are in test/helpers/vm.ts, each named and explained. Caddy in the VM gets its certificate from pebble
 * on this machine after real HTTP-01 / TLS-ALPN-01 validation through the VM's forwarded ports.
 *
 * Then, as JumpCloud meets the bridge: the Base URL (https, no trailing slash), Test Connection (GET /Users with
 * the token), a user created. On gcp the whole life of a host follows: a reboot keeps the data; a replacement
 * (a second VM, new instance id, new root disk) whose data disk is attached only after it booted finds the
 * disk without a reboot, and with it the user and the certificate (no new order at pebble).
 *
 * What it cannot show: images pulled from a real registry, the clouds' own logging, DNS and metadata services.
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import * as http from 'node:http';
import * as https from 'node:https';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { inventedSecret, plan, PlanResult } from '../../tools/plan';
import { all, writtenFiles } from '../helpers/plan';
import { bootImages, BootImages } from '../helpers/boot-images';
import { freePort, httpsRequest, makeListenerCertificate, ListenerCertificate, Pebble, poll, startPebble, stopAllProcesses, TlsResponse, which } from '../helpers/pebble';
import { BaseImage, baseImage, blankDisk, DockerStore, dockerStore, dockerStoreDisk, FAKE_API_ADDRESS, HOST_FROM_GUEST, kitDisk, METADATA_ADDRESS, rootDisk, seedImage, Slots, Vm } from '../helpers/vm';

jest.setTimeout(30 * 60_000);

const TOKEN = inventedSecret('token');
const WEBHOOK_SECRET = inventedSecret('webhookSecret');
const TOKEN_SHA256 = createHash('sha256').update(TOKEN).digest('hex');
/** What each secret the hosts fetch holds, by the variable it becomes (the cloud's secret store holds these). */
const SECRET_VALUES: Record<string, string> = { SCIM_BRIDGE_TOKEN_SHA256: TOKEN_SHA256, SCIM_BRIDGE_WEBHOOK_SECRET: WEBHOOK_SECRET };
const USER_SCHEMA = 'urn:ietf:params:scim:schemas:core:2.0:User';
const TARGETS = ['gcp', 'aws', 'digitalocean'] as const;
type Target = (typeof TARGETS)[number];
const HOST_TYPE: Record<Target, string> = { gcp: 'gcp:compute/instance:Instance', digitalocean: 'digitalocean:index/droplet:Droplet', aws: 'aws:ec2/instance:Instance' };
const REGION: Record<Target, string> = { gcp: 'europe-west1', digitalocean: 'fra1', aws: 'eu-west-1' };

const log = (line: string) => console.log(`boot test: ${line}`);
const figures: string[] = [];
const figure = (line: string) => {
  figures.push(line);
  log(line);
};

const missing = ['qemu-system-x86_64', 'qemu-img', 'mmdebstrap', 'cloud-localds', 'mkfs.ext4', 'socat', 'buildah', 'podman', 'caddy', 'pebble', 'pebble-challtestsrv', 'openssl'].filter(
  (tool) => which(tool) === undefined,
);

// ---------------------------------------------------------------------------------------------------------
// Fake clouds: metadata (GCP, AWS) and secret stores (Secret Manager, Secrets Manager)

interface Seen {
  method: string;
  host: string;
  path: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

const GCP_ACCESS_TOKEN = `ya29.boot-test-${randomUUID()}`;
const AWS_IMDS_TOKEN = `imds-${randomUUID()}`;
const AWS_KEY_ID = 'ASIABOOTTEST00000000';
// As AWS's look: base64 alphabets (the host refuses anything else).
const AWS_SECRET_KEY = randomBytes(30).toString('base64');
const AWS_SESSION_TOKEN = randomBytes(96).toString('base64');
const AWS_ROLE = 'scim-bridge-host';

function listen(server: http.Server | https.Server): Promise<number> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)));
}

function collect(req: http.IncomingMessage): Promise<Seen> {
  return new Promise((resolve) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (body += c));
    req.on('end', () => resolve({ method: req.method ?? '', host: (req.headers.host ?? '').split(':')[0], path: req.url ?? '', headers: req.headers, body }));
  });
}

/** 169.254.169.254 as GCP's metadata server and AWS's IMDSv2 answer it (the parts the host uses). */
function metadataServer(seen: Seen[], dropletTags: string[]): http.Server {
  return http.createServer(async (req, res) => {
    const r = await collect(req);
    seen.push(r);
    const send = (status: number, body: string, type = 'text/plain') => {
      res.writeHead(status, { 'Content-Type': type });
      res.end(body);
    };
    if (r.path === '/computeMetadata/v1/instance/service-accounts/default/token') {
      if (r.headers['metadata-flavor'] !== 'Google') return send(403, 'Missing Metadata-Flavor:Google header');
      return send(200, JSON.stringify({ access_token: GCP_ACCESS_TOKEN, expires_in: 3599, token_type: 'Bearer' }), 'application/json');
    }
    if (r.path === '/latest/api/token' && r.method === 'PUT') {
      if (!r.headers['x-aws-ec2-metadata-token-ttl-seconds']) return send(400, 'missing ttl');
      return send(200, AWS_IMDS_TOKEN);
    }
    // DigitalOcean's metadata: the Droplet's tags, one per line (the accepted token hashes are among them).
    if (r.path === '/metadata/v1/tags/' || r.path === '/metadata/v1/tags') return send(200, dropletTags.map((t) => `${t}\n`).join(''));
    if (r.path.startsWith('/latest/')) {
      // IMDSv2 only, as the instance is configured (httpTokens required).
      if (r.headers['x-aws-ec2-metadata-token'] !== AWS_IMDS_TOKEN) return send(401, 'Unauthorized');
      if (r.path === '/latest/meta-data/iam/security-credentials/' || r.path === '/latest/meta-data/iam/security-credentials') return send(200, AWS_ROLE);
      if (r.path === `/latest/meta-data/iam/security-credentials/${AWS_ROLE}`) {
        const expiration = new Date(Date.now() + 6 * 3600_000).toISOString();
        return send(200, JSON.stringify({ Code: 'Success', Type: 'AWS-HMAC', AccessKeyId: AWS_KEY_ID, SecretAccessKey: AWS_SECRET_KEY, Token: AWS_SESSION_TOKEN, Expiration: expiration }), 'application/json');
      }
      if (r.path === '/latest/meta-data/placement/region') return send(200, REGION.aws);
    }
    send(404, 'not found');
  });
}

/** Secret Manager (GCP) and Secrets Manager (AWS) on their own host names, over TLS from the test CA. */
function secretStoreServer(cert: ListenerCertificate, seen: Seen[], secrets: Map<string, string>): https.Server {
  return https.createServer({ cert: readFileSync(cert.certFile), key: readFileSync(cert.keyFile) }, async (req, res) => {
    const r = await collect(req);
    seen.push(r);
    const json = (status: number, body: unknown) => {
      res.writeHead(status, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (r.host === 'secretmanager.googleapis.com') {
      if (r.headers.authorization !== `Bearer ${GCP_ACCESS_TOKEN}`) return json(401, { error: { code: 401, status: 'UNAUTHENTICATED' } });
      const ref = /^\/v1\/(.+)\/versions\/latest:access$/.exec(r.path)?.[1];
      if (r.method === 'GET' && ref && secrets.has(ref)) {
        return json(200, { name: `${ref}/versions/1`, payload: { data: Buffer.from(secrets.get(ref)!).toString('base64') } });
      }
      return json(404, { error: { code: 404, status: 'NOT_FOUND', path: r.path } });
    }
    if (r.host === `secretsmanager.${REGION.aws}.amazonaws.com`) {
      const auth = String(r.headers.authorization ?? '');
      if (!auth.startsWith(`AWS4-HMAC-SHA256 Credential=${AWS_KEY_ID}/`) || r.headers['x-amz-security-token'] !== AWS_SESSION_TOKEN) {
        return json(403, { __type: 'UnrecognizedClientException', message: 'The security token included in the request is invalid.' });
      }
      const body = JSON.parse(r.body || '{}') as { SecretId?: string };
      if (r.headers['x-amz-target'] === 'secretsmanager.GetSecretValue' && body.SecretId && secrets.has(body.SecretId)) {
        return json(200, { ARN: body.SecretId, Name: body.SecretId.split(':').pop(), SecretString: secrets.get(body.SecretId), VersionId: randomUUID() });
      }
      return json(400, { __type: 'ResourceNotFoundException', message: `no secret ${body.SecretId}` });
    }
    json(404, { error: `no such host ${r.host}` });
  });
}

// ---------------------------------------------------------------------------------------------------------
// What each target's plan gives the host

interface Rendered {
  target: Target;
  /** This target's own ACME server and forwarded ports: the three targets boot side by side. */
  pebble: Pebble;
  httpPort: number;
  httpsPort: number;
  plan: PlanResult;
  userData: string;
  baseUrl: string;
  domain: string;
  dataDevice: string;
  /** The secret references fetch-secrets reads (GCP: projects/…/secrets/…, AWS: an ARN), with the variable each becomes. */
  secretRefs: Map<string, string>;
  /** The host's tags (DigitalOcean: the accepted token hashes are among them). */
  tags: string[];
}

async function render(target: Target, images: BootImages, lane: { pebble: Pebble; httpPort: number; httpsPort: number }): Promise<Rendered> {
  const { pebble } = lane;
  const domain = `scim-${target}.example.com`;
  const result = await plan(target, {
    config: {
      'scim-bridge:domain': domain,
      'scim-bridge:image': images.bridge,
      'scim-bridge:caddyImage': images.caddy,
      // The product's own setting for a private ACME CA: pebble on this machine, as the VM reaches it.
      'scim-bridge:acmeCa': pebble.directory.replace('127.0.0.1', HOST_FROM_GUEST),
      'scim-bridge:acmeCaRoot': pebble.listener.caPem.trim(),
      'scim-bridge:token': { secure: 'v1:boot' },
      'scim-bridge:webhookUrl': 'https://hooks.example.com/scim',
      'scim-bridge:webhookSecret': { secure: 'v1:boot' },
    },
  });
  if (result.leaks.length) throw new Error(`the plan leaks: ${result.leaks.join('; ')}`);
  const hosts = all(result, HOST_TYPE[target]);
  if (hosts.length !== 1) throw new Error(`${target}: expected one host, found ${hosts.length}`);
  const userData: string = target === 'gcp' ? hosts[0].in.metadata['user-data'] : hosts[0].in.userData;
  const device = /prepare-disk (\/dev\/disk\/by-id\/\S+) /.exec(userData)?.[1];
  if (!device) throw new Error(`${target}: no data device in the user-data`);
  const outputs = result.rawOutputs as Record<string, unknown>;
  // fetch-secrets: `value_N=$(gcp_secret REF)` (or aws_secret), then `check VARIABLE "$value_N"`, read as cloud-init
  // writes it (AWS's scripts travel gzipped, for EC2's 16 KB).
  const written = writtenFiles(userData).map((f) => f.content).join('\n');
  const secretRefs = new Map([...written.matchAll(/value_\d+=\$\((?:gcp_secret|aws_secret) ([^\s)]+)\)\s*\n\s*check (SCIM_BRIDGE_\w+)/g)].map((m) => [m[1], m[2]]));
  // (GCP's and AWS's `tags` are other things: network tags, a key-value map.)
  const tags = target === 'digitalocean' ? ((hosts[0].in.tags as string[] | undefined) ?? []).map(String) : [];
  return { target, ...lane, plan: result, userData, baseUrl: String(outputs.baseUrl), domain, dataDevice: device, secretRefs, tags };
}

// ---------------------------------------------------------------------------------------------------------

describe('a VM host boots the user-data of every VM target (QEMU, TCG)', () => {
  let dir: string;
  let base: BaseImage;
  let images: BootImages;
  let store: DockerStore;
  let metadataPort: number;
  let apiPort: number;
  let kit: string;
  const metadataSeen: Seen[] = [];
  const apiSeen: Seen[] = [];
  const servers: http.Server[] = [];
  const vms: Vm[] = [];
  const rendered: Partial<Record<Target, Rendered>> = {};
  /** Secret reference -> value, as the fake secret stores serve them. */
  const secrets = new Map<string, string>();
  const dropletTags: string[] = [];

  // test.concurrent starts its tests before beforeAll has run (a jest limitation): each test awaits ready().
  let setupOnce: Promise<void> | undefined;
  const ready = () => (setupOnce ??= setup());
  beforeAll(() => ready());

  async function setup(): Promise<void> {
    if (missing.length) {
      throw new Error(`the boot test needs ${missing.join(', ')}: bash test/setup.sh installs them on Debian as root (apt-get install qemu-system-x86 qemu-utils mmdebstrap cloud-image-utils socat buildah podman caddy pebble)`);
    }
    dir = mkdtempSync(join(tmpdir(), 'scim-bridge-boot-'));
    const t0 = Date.now();
    [base, images] = await Promise.all([baseImage(log), bootImages(log)]);
    store = await dockerStore(base, images.archives, log);
    figure(
      `base image ${base.builtIn ? `built in ${base.builtIn} s` : 'from the cache'}; container images ${images.built.length ? `built: ${images.built.join(', ')}` : 'from the cache'}; ` +
        `Docker store ${store.builtIn ? `made in ${store.builtIn} s` : 'from the cache'} (${((Date.now() - t0) / 1000).toFixed(0)} s)`,
    );
    metadataPort = await listen(servers[servers.push(metadataServer(metadataSeen, dropletTags)) - 1]);
    for (const target of TARGETS) {
      const [httpPort, httpsPort] = [await freePort(), await freePort()];
      // pebble validates every order on one pair of ports: one pebble per target, so the three VMs run side by side.
      const pebble = await startPebble({ dir: join(dir, `pebble-${target}`), httpPort, tlsPort: httpsPort, listenerNames: [`IP:${HOST_FROM_GUEST}`] });
      rendered[target] = await render(target, images, { pebble, httpPort, httpsPort });
    }
    for (const target of ['gcp', 'aws'] as const) {
      const refs = rendered[target]!.secretRefs;
      // Both the accepted token hashes and the webhook secret come from the secret store on these two.
      expect([...refs.values()].sort()).toEqual(['SCIM_BRIDGE_TOKEN_SHA256', 'SCIM_BRIDGE_WEBHOOK_SECRET']);
      for (const [ref, variable] of refs) secrets.set(ref, SECRET_VALUES[variable]);
    }
    dropletTags.push(...rendered.digitalocean!.tags);
    expect(dropletTags).toContain(dropletTags.find((t) => t.endsWith(`:token-sha256:${TOKEN_SHA256}`)));
    const apiCert = makeListenerCertificate(join(dir, 'api-ca'), ['DNS:secretmanager.googleapis.com', `DNS:secretsmanager.${REGION.aws}.amazonaws.com`]);
    apiPort = await listen(servers[servers.push(secretStoreServer(apiCert, apiSeen, secrets)) - 1]);
    kit = await kitDisk(dir, {
      images: images.archives,
      caPem: apiCert.caPem,
      // On GCE the VPC's resolver answers metadata.google.internal; the secret stores' names lead to the fakes.
      hosts: [`${METADATA_ADDRESS} metadata.google.internal`, `${FAKE_API_ADDRESS} secretmanager.googleapis.com secretsmanager.${REGION.aws}.amazonaws.com`],
    });
  }

  afterAll(async () => {
    for (const vm of vms) await vm.kill().catch(() => undefined);
    for (const r of Object.values(rendered)) await r?.pebble.stop();
    for (const s of servers) s.close();
    await stopAllProcesses();
    if (dir) rmSync(dir, { recursive: true, force: true });
    if (figures.length) console.log(`boot test figures:\n  ${figures.join('\n  ')}`);
  });

  // One TCG guest per core at a time (each has one vCPU): more would only slow every one of them down.
  const slots = new Slots(Math.max(1, cpus().length));

  /**
   * A VM of `target`'s user-data, in a slot of its own unless `slot` says whose slot it shares. `ports: false`: no
   * forwarded 80/443 yet (see Vm.forwardPorts).
   */
  async function newVm(name: string, target: Target, instanceId: string, root: string, data?: string, options: { ports?: boolean; sharesSlotOf?: Vm } = {}): Promise<Vm> {
    const release = options.sharesSlotOf ? () => undefined : await slots.acquire();
    const r = rendered[target]!;
    const vm = new Vm({
      name,
      dir,
      base,
      root,
      seed: seedImage(dir, name, instanceId, r.userData),
      kit,
      dockerStore: dockerStoreDisk(store, join(dir, `${name}-docker.qcow2`)),
      ...(data ? { data } : {}),
      dataDevice: r.dataDevice,
      ...(options.ports === false ? {} : { httpPort: r.httpPort, httpsPort: r.httpsPort }),
      metadataPort,
      apiPort,
    }).start();
    void (options.sharesSlotOf ? Promise.all([vm.exited(), options.sharesSlotOf.exited()]) : vm.exited()).then(release);
    vms.push(vm);
    return vm;
  }

  /** An HTTPS request as the IdP makes it: to the Base URL's host (forwarded to the VM's 443), trusting pebble's root. */
  function idp(r: Rendered, method: string, path: string, body?: unknown, token = TOKEN): Promise<TlsResponse> {
    return httpsRequest({
      port: r.httpsPort,
      hostname: r.domain,
      method,
      path,
      ca: r.pebble.rootPem,
      timeoutMs: 30_000,
      // Host as an IdP sends it to https://<domain> (port 443): the forwarded port is this test's business only.
      headers: { Host: r.domain, Authorization: `Bearer ${token}`, Accept: 'application/scim+json', ...(body ? { 'Content-Type': 'application/scim+json' } : {}) },
      ...(body ? { body: JSON.stringify(body) } : {}),
    });
  }

  /** Waits for cloud-init to finish and the HTTPS endpoint to answer /healthz; returns seconds since power-on. */
  async function healthy(vm: Vm, r: Rendered, timeoutMs = 12 * 60_000): Promise<number> {
    await vm.waitForAgent(timeoutMs);
    try {
      await poll(`${vm.options.name}: https://${r.domain}/healthz through Caddy`, timeoutMs, 1_000, async () => {
        const res = await idp(r, 'GET', '/healthz').catch(() => undefined);
        return res?.status === 200 && res.body.trim() === 'ok' ? true : undefined;
      }, () => vm.consoleTail(2000));
    } catch (err) {
      throw new Error(`${(err as Error).message}\n${await diagnostics(vm)}`);
    }
    return Math.round((Date.now() - vm.startedAt) / 1000);
  }

  async function diagnostics(vm: Vm): Promise<string> {
    const r = await vm
      .exec('cloud-init status --long; systemctl --no-pager status scim-bridge-disk scim-bridge-network scim-bridge scim-bridge-caddy 2>&1 | tail -60; journalctl --no-pager -n 60 -u scim-bridge -u scim-bridge-caddy -u scim-bridge-disk', 60_000)
      .catch((e: Error) => ({ stdout: '', stderr: e.message }));
    return `----- ${vm.options.name} diagnostics -----\n${r.stdout}\n${r.stderr}`;
  }

  async function cloudInitResult(vm: Vm): Promise<{ status: string; errors: unknown[] }> {
    // cloud-init writes result.json when its last stage ends. Polled from here, every 2 s: `cloud-init status
    // --wait` polls four times a second, in Python, on the one vCPU that cloud-init itself is using.
    await poll(`${vm.options.name}: cloud-init to finish`, 15 * 60_000, 2_000, async () => ((await vm.exec('test -e /run/cloud-init/result.json')).code === 0 ? true : undefined));
    const status = (await vm.exec('cloud-init status')).stdout;
    const result = JSON.parse(await vm.sh('cat /run/cloud-init/result.json')) as { v1: { errors: unknown[] } };
    return { status: /status: (\w+)/.exec(status)?.[1] ?? status, errors: result.v1.errors };
  }

  async function active(vm: Vm, units: string[]): Promise<Record<string, string>> {
    const out = (await vm.exec(`for u in ${units.join(' ')}; do echo "$u $(systemctl is-active $u)"; done`)).stdout;
    return Object.fromEntries(out.trim().split('\n').map((l) => l.split(' ') as [string, string]));
  }

  const UNITS = ['scim-bridge-disk.service', 'scim-bridge-network.service', 'scim-bridge.service', 'scim-bridge-caddy.service'];
  const allActive = Object.fromEntries(UNITS.map((u) => [u, 'active']));

  /** What every target's first boot must show. */
  async function firstBootChecks(vm: Vm, r: Rendered): Promise<{ userId: string; serial: string }> {
    const seconds = await healthy(vm, r);
    figure(`${r.target}: power-on to a healthy TLS endpoint in ${seconds} s (QEMU used ${vm.cpuSeconds().toFixed(0)} s of CPU)`);
    expect(await cloudInitResult(vm)).toEqual({ status: 'done', errors: [] });
    expect(await active(vm, UNITS)).toEqual(allActive);
    // prepare-disk found the disk blank and formatted it.
    expect(await vm.sh('journalctl --no-pager -o cat -u scim-bridge-disk')).toContain(`prepare-disk: ${r.dataDevice} is blank; creating an ext4 filesystem`);
    // Docker runs with the user-data's daemon.json, which was in place before Docker first started: the user-data
    // applied it without restarting Docker.
    const daemonJson = JSON.parse(await vm.sh('cat /etc/docker/daemon.json')) as { 'log-driver': string };
    expect((await vm.sh("docker info --format '{{.LoggingDriver}}'")).trim()).toBe(daemonJson['log-driver']);
    expect(await vm.sh('cat /var/log/cloud-init-output.log')).toContain('docker.service started after /etc/docker/daemon.json was written: no restart');
    // apparmor came from the user-data (the image has none: docker.io's Recommends were not installed).
    expect((await vm.exec('command -v apparmor_parser')).code).toBe(0);
    expect(await vm.sh("docker info --format '{{json .SecurityOptions}}'")).toContain('apparmor');

    // As JumpCloud: the Base URL is https with no trailing slash; Test Connection is GET /Users with the token.
    expect(r.baseUrl).toBe(`https://${r.domain}`);
    const test = await idp(r, 'GET', `/Users?filter=${encodeURIComponent('userName eq "nobody@example.com"')}`);
    expect(test.authorized).toBe(true);
    expect(test.certificate.checkIssued(r.pebble.intermediate)).toBe(true);
    expect(test.status).toBe(200);
    expect(JSON.parse(test.body).totalResults).toBe(0);
    expect((await idp(r, 'GET', '/Users', undefined, 'wrong-token-0123456789abcdef0123')).status).toBe(401);
    const userName = `first.user@${r.target}.example.org`;
    const created = await idp(r, 'POST', '/Users', { schemas: [USER_SCHEMA], userName, name: { givenName: 'First', familyName: 'User' }, emails: [{ value: userName, primary: true }], active: true });
    expect(created.status).toBe(201);
    const user = JSON.parse(created.body) as { id: string; meta: { location: string } };
    expect(user.meta.location).toBe(`${r.baseUrl}/Users/${user.id}`);

    // fetch-secrets wrote one file per secret, readable by the bridge's group only: the accepted token hashes (GCP,
    // AWS: from the secret store with the host's own identity; DigitalOcean: the Droplet's tags on the metadata
    // service) and the webhook secret (the secret store; DigitalOcean: its file from the user-data). Its timer
    // keeps them current (token rotation without a new VM).
    expect(await vm.sh('cat /run/scim-bridge/secrets/token-sha256')).toBe(`${TOKEN_SHA256}\n`);
    expect(await vm.sh('cat /run/scim-bridge/secrets/webhook-secret')).toBe(`${WEBHOOK_SECRET}\n`);
    expect(await vm.sh('stat -c %a /run/scim-bridge/secrets/token-sha256 /run/scim-bridge/secrets/webhook-secret')).toBe('440\n440\n');
    expect((await vm.sh('systemctl is-active scim-bridge-secrets.timer')).trim()).toBe('active');

    // The containers cannot reach the metadata service; the host can, and the containers reach other addresses.
    // Probed from inside each running container's network namespace (the same routes and firewall as the
    // container's own packets) with the host's curl: the images have no HTTP client of their own.
    const probe = async (container: string, url: string) => {
      const r = await vm.exec(`pid=$(docker inspect -f '{{.State.Pid}}' ${container}) && nsenter -t "$pid" -n curl -sS -o /dev/null -w '%{http_code}' --max-time 10 '${url}'`, 60_000);
      return r.code === 0 ? r.stdout : `curl exit ${r.code}: ${r.stderr.trim()}`;
    };
    for (const container of ['scim-bridge', 'scim-bridge-caddy']) {
      expect(await probe(container, `http://${METADATA_ADDRESS}/latest/api/token`)).toMatch(/^curl exit 7: .*(Connection refused|Couldn't connect)/);
      expect(await probe(container, `http://${HOST_FROM_GUEST}:${metadataPort}/nothing`)).toBe('404');
    }
    expect((await vm.exec(`curl -s -o /dev/null -w '%{http_code}' http://${METADATA_ADDRESS}/nothing`)).stdout).toBe('404');

    // Only 80 and 443 listen on the host's addresses (SSH is not even installed here; the bridge publishes nothing).
    const listening = (await vm.sh("ss -Htln | awk '{print $4}'")).split('\n').filter((a) => a && !/^(127\.|\[::1\]|\[?::ffff:127)/.test(a));
    expect([...new Set(listening.map((a) => a.replace(/^.*:/, '')))].sort()).toEqual(['443', '80']);

    const served = await idp(r, 'GET', '/healthz');
    return { userId: user.id, serial: served.certificate.serialNumber };
  }

  async function memoryAtRest(vm: Vm, target: Target): Promise<void> {
    const meminfo = await vm.sh("awk '/MemTotal|MemAvailable/ {print $2}' /proc/meminfo");
    const [total, available] = meminfo.trim().split('\n').map(Number);
    const containers = (await vm.sh("docker stats --no-stream --format '{{.Name}} {{.MemUsage}}'")).trim().replace(/\n/g, '; ');
    figure(`${target}: memory at rest ${Math.round((total - available) / 1024)} MB used of ${Math.round(total / 1024)} MB (containers: ${containers})`);
  }

  test.concurrent('gcp: first boot, JumpCloud connects; reboot keeps the data; a replacement with a late disk finds it all, no new certificate', async () => {
    await ready();
    const r = rendered.gcp!;
    const data = blankDisk(join(dir, 'gcp-data.raw'));
    const a = await newVm('gcp-a', 'gcp', `i-${randomUUID()}`, rootDisk(base, join(dir, 'gcp-a.qcow2')), data);
    const first = await firstBootChecks(a, r);
    await memoryAtRest(a, 'gcp');
    // The webhook secret came from Secret Manager, with the VM's service account token from the metadata server.
    const gcpRead = apiSeen.filter((s) => s.host === 'secretmanager.googleapis.com').map((s) => `${s.method} ${s.path}`);
    for (const ref of r.secretRefs.keys()) expect(gcpRead).toContain(`GET /v1/${ref}/versions/latest:access`);
    // Logs: Docker writes to the journal, which never blocks; Google's agent cannot be installed here (no way to
    // Google's servers, as when the Logging API or IAM is slow) and the bridge runs regardless.
    expect(JSON.parse(await a.sh('cat /etc/docker/daemon.json'))['log-driver']).toBe('journald');
    expect(await a.sh('journalctl --no-pager -o cat CONTAINER_NAME=scim-bridge | tail -50')).toContain('/Users');
    const ordersAfterFirstBoot = r.pebble.orders().length;
    expect(ordersAfterFirstBoot).toBeGreaterThanOrEqual(1);

    // The replacement (a new instance id, a new root disk, NO data disk) powers on now, beside the reboot below:
    // the two share nothing until the data disk moves to it, and the gcp test (three boots in a row) is the
    // longest path of this file. It shares gcp-a's slot, so the other targets' boots are not held up either.
    const b = await newVm('gcp-b', 'gcp', `i-${randomUUID()}`, rootDisk(base, join(dir, 'gcp-b.qcow2')), undefined, { ports: false, sharesSlotOf: a });

    // A reboot: same disk, same data, same certificate.
    const rebootAt = Date.now();
    const rebootCpu = a.cpuSeconds();
    await a.exec('systemctl reboot').catch(() => undefined);
    await poll('gcp-a to go down for the reboot', 120_000, 1_000, async () => ((await idp(r, 'GET', '/healthz').catch(() => undefined))?.status === 200 ? undefined : true));
    await healthy(a, r);
    figure(`gcp: reboot to a healthy TLS endpoint in ${Math.round((Date.now() - rebootAt) / 1000)} s (QEMU used ${(a.cpuSeconds() - rebootCpu).toFixed(0)} s of CPU; the replacement was booting beside it)`);
    expect(await a.sh('journalctl -b --no-pager -o cat -u scim-bridge-disk')).toContain('has a ext4 filesystem; keeping its data');
    expect((await idp(r, 'GET', `/Users/${first.userId}`)).status).toBe(200);
    expect((await idp(r, 'GET', '/healthz')).certificate.serialNumber).toBe(first.serial);
    expect(r.pebble.orders().length).toBe(ordersAfterFirstBoot);

    // The old VM stops (ACPI, as the cloud deletes it); the replacement finished its first boot without its disk
    // and waits for it; the static IP (the forwarded ports) and then the disk move to it.
    await a.powerdown();
    await b.waitForAgent(12 * 60_000);
    expect(await cloudInitResult(b)).toEqual({ status: 'done', errors: [] });
    figure(`gcp: the replacement, power-on to cloud-init done without its disk in ${Math.round((Date.now() - b.startedAt) / 1000)} s (QEMU used ${b.cpuSeconds().toFixed(0)} s of CPU)`);
    const waiting = await active(b, UNITS);
    expect(waiting['scim-bridge.service']).not.toBe('active');
    expect(waiting['scim-bridge-disk.service']).not.toBe('active');
    await b.forwardPorts(r.httpPort, r.httpsPort);
    const attachedAt = Date.now();
    const attachedCpu = b.cpuSeconds();
    await b.attachDataDisk(data);
    await healthy(b, r);
    figure(`gcp: a data disk attached after boot: healthy ${Math.round((Date.now() - attachedAt) / 1000)} s after the attach, no reboot (QEMU used ${(b.cpuSeconds() - attachedCpu).toFixed(0)} s of CPU)`);
    expect(await active(b, UNITS)).toEqual(allActive);
    expect(await b.sh('journalctl --no-pager -o cat -u scim-bridge-disk')).toContain('has a ext4 filesystem; keeping its data');
    const found = await idp(r, 'GET', `/Users?filter=${encodeURIComponent(`userName eq "first.user@gcp.example.org"`)}`);
    expect(JSON.parse(found.body).Resources.map((u: { id: string }) => u.id)).toEqual([first.userId]);
    expect((await idp(r, 'GET', '/healthz')).certificate.serialNumber).toBe(first.serial);
    expect(r.pebble.orders().length).toBe(ordersAfterFirstBoot);
    await b.powerdown();
  });

  test.concurrent.each(['aws', 'digitalocean'] as const)('%s: first boot, JumpCloud connects, the webhook secret arrives, containers kept off the metadata service', async (target) => {
    await ready();
    const r = rendered[target]!;
    const vm = await newVm(`${target}-a`, target, `i-${randomUUID()}`, rootDisk(base, join(dir, `${target}-a.qcow2`)), blankDisk(join(dir, `${target}-data.raw`)));
    await firstBootChecks(vm, r);
    if (target === 'aws') {
      // IMDSv2 (a token first), then Secrets Manager signed with the role's session credentials.
      expect(metadataSeen.some((s) => s.method === 'PUT' && s.path === '/latest/api/token')).toBe(true);
      expect(apiSeen.some((s) => s.host === `secretsmanager.${REGION.aws}.amazonaws.com` && s.headers['x-amz-target'] === 'secretsmanager.GetSecretValue')).toBe(true);
      // CloudWatch Logs cannot be reached from here (as when it is slow or the role is not yet usable): the
      // awslogs driver in non-blocking mode lets the bridge run anyway.
      expect(JSON.parse(await vm.sh('cat /etc/docker/daemon.json'))).toMatchObject({ 'log-driver': 'awslogs', 'log-opts': { mode: 'non-blocking' } });
    }
    if (target === 'digitalocean') {
      // The accepted token hashes came from the Droplet's tags, on the metadata service.
      expect(metadataSeen.some((s) => s.method === 'GET' && s.path.startsWith('/metadata/v1/tags'))).toBe(true);
    }
    await memoryAtRest(vm, target);
    await vm.powerdown();
  });
});
