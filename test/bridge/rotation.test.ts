/**
 * Token and webhook-secret rotation on a running bridge, as a host does it (infra/host: fetch-secrets rewrites the
 * files on a timer; on Kubernetes the kubelet swaps a Secret's files): the bridge, a child process reading
 * SCIM_BRIDGE_TOKEN_SHA256_FILE and SCIM_BRIDGE_WEBHOOK_SECRET_FILE, is hammered with requests while its hash file
 * goes from the old token, to both (the `previousToken` window), to the new one only. It accepts both during the
 * window, then only the new one, and never refuses a request made with a token it accepts; no restart. A new
 * webhook secret signs the deliveries made after its file changed.
 */
import { createHash, createHmac } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ChildBridge, spawnBridge } from '../helpers/child';

const OLD = 'rotation-old-token-0123456789abcdef';
const NEW = 'rotation-new-token-fedcba9876543210';
const SECRET_1 = 'rotation-webhook-secret-one-0123';
const SECRET_2 = 'rotation-webhook-secret-two-4567';
const sha = (t: string) => createHash('sha256').update(t, 'utf8').digest('hex');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** As fetch-secrets writes: a new file renamed over the old one. */
function replaceFile(path: string, content: string): void {
  writeFileSync(`${path}.tmp`, content, { mode: 0o600 });
  renameSync(`${path}.tmp`, path);
}

jest.setTimeout(60_000);

it('when the token hash file goes old -> old,new -> new under load, then both are accepted in the window, then only the new one, and no request with an accepted token is refused; a new webhook secret signs later deliveries', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'scim-bridge-rotation-'));
  const hashFile = join(dir, 'token-sha256');
  const secretFile = join(dir, 'webhook-secret');
  replaceFile(hashFile, `${sha(OLD)}\n`);
  replaceFile(secretFile, `${SECRET_1}\n`);

  const deliveries: Array<{ userName: string; signature: string; body: string }> = [];
  const receiver = http.createServer((req, res) => {
    let raw = '';
    req.on('data', (c) => (raw += c));
    req.on('end', () => {
      const e = JSON.parse(raw);
      deliveries.push({ userName: e.data?.userName, signature: String(req.headers['scim-bridge-signature']), body: raw });
      res.writeHead(200).end();
    });
  });
  receiver.listen(0, '127.0.0.1');
  await once(receiver, 'listening');

  let child: ChildBridge | undefined;
  try {
    child = await spawnBridge({
      SCIM_BRIDGE_DATABASE_URL: `sqlite:${join(dir, 'x.db')}`,
      SCIM_BRIDGE_TOKEN_SHA256_FILE: hashFile,
      SCIM_BRIDGE_WEBHOOK_URL: `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/`,
      SCIM_BRIDGE_WEBHOOK_SECRET_FILE: secretFile,
      LOG_LEVEL: 'info',
    });
    const url = child.url;
    const get = async (token: string) => (await fetch(`${url}/ServiceProviderConfig`, { headers: { Authorization: `Bearer ${token}` } })).status;

    // Which tokens the IdP side may use: the old one until the window closes; the new one once the bridge took it.
    const refused: string[] = [];
    const counts = { old: 0, new: 0 };
    let useOld = true;
    let useNew = false;
    let stop = false;
    const hammer = Array.from({ length: 8 }, async (_, i) => {
      while (!stop) {
        const which = useOld && useNew ? (i % 2 ? 'old' : 'new') : useNew ? 'new' : useOld ? 'old' : undefined;
        if (!which) {
          await sleep(5);
          continue;
        }
        const status = await get(which === 'old' ? OLD : NEW);
        counts[which]++;
        if (status !== 200) refused.push(`${which}: ${status}`);
      }
    });

    await sleep(500);
    expect(await get(NEW)).toBe(401);

    // The window opens: both hashes (the new token first, as the stack writes them).
    let seen = child.stdout().length;
    replaceFile(hashFile, `${sha(NEW)},${sha(OLD)}\n`);
    await child.waitForOutput(/secret files changed/, 5_000);
    expect(await get(NEW)).toBe(200);
    useNew = true;
    await sleep(1_500);
    expect(await get(OLD)).toBe(200);

    // The IdP has the new token: the old one is removed (previousToken unset).
    useOld = false;
    await sleep(50);
    seen = child.stdout().length;
    replaceFile(hashFile, `${sha(NEW)}\n`);
    const after = async () => {
      const deadline = Date.now() + 5_000;
      while (Date.now() < deadline) {
        if (/secret files changed/.test(child!.stdout().slice(seen))) return;
        await sleep(20);
      }
      throw new Error('the bridge did not take the new hash file within 5 s');
    };
    await after();
    expect(await get(OLD)).toBe(401);
    await sleep(1_000);
    stop = true;
    await Promise.all(hammer);

    expect(refused).toEqual([]);
    expect(counts.old).toBeGreaterThan(20);
    expect(counts.new).toBeGreaterThan(20);
    expect(await get(NEW)).toBe(200);
    expect(await get(OLD)).toBe(401);

    // The webhook secret: a delivery before the change is signed with the first, one after it with the second.
    const create = async (userName: string) => {
      const res = await fetch(`${url}/Users`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${NEW}`, 'Content-Type': 'application/scim+json' },
        body: JSON.stringify({ schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'], userName }),
      });
      expect(res.status).toBe(201);
    };
    const delivered = async (userName: string) => {
      const deadline = Date.now() + 10_000;
      while (Date.now() < deadline) {
        const d = deliveries.find((x) => x.userName === userName);
        if (d) return d;
        await sleep(20);
      }
      throw new Error(`no delivery for ${userName}`);
    };
    const signedWith = (d: { signature: string; body: string }, secret: string) => {
      const m = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(d.signature);
      return !!m && createHmac('sha256', secret).update(`${m[1]}.${d.body}`).digest('hex') === m[2];
    };
    await create('before@example.com');
    const before = await delivered('before@example.com');
    expect(signedWith(before, SECRET_1)).toBe(true);

    seen = child.stdout().length;
    replaceFile(secretFile, `${SECRET_2}\n`);
    await after();
    await create('after@example.com');
    const later = await delivered('after@example.com');
    expect(signedWith(later, SECRET_2)).toBe(true);
    expect(signedWith(later, SECRET_1)).toBe(false);

    // One process all along: rotated without a restart.
    expect(child.process.exitCode).toBeNull();
  } finally {
    child?.kill();
    if (child) await child.exited;
    receiver.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

it('when a hash file is caught empty or broken, then the hashes in use stay, and the next good file is taken', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'scim-bridge-rotation-'));
  const hashFile = join(dir, 'token-sha256');
  replaceFile(hashFile, `${sha(OLD)}\n`);
  let child: ChildBridge | undefined;
  try {
    child = await spawnBridge({ SCIM_BRIDGE_DATABASE_URL: `sqlite:${join(dir, 'x.db')}`, SCIM_BRIDGE_TOKEN_SHA256_FILE: hashFile, LOG_LEVEL: 'info' });
    const url = child.url;
    const get = async (token: string) => (await fetch(`${url}/ServiceProviderConfig`, { headers: { Authorization: `Bearer ${token}` } })).status;
    writeFileSync(hashFile, '');
    await child.waitForOutput(/does not read well/, 5_000);
    expect(await get(OLD)).toBe(200);
    replaceFile(hashFile, `${sha(NEW)}\n`);
    await child.waitForOutput(/secret files changed/, 5_000);
    expect(await get(NEW)).toBe(200);
    expect(await get(OLD)).toBe(401);
  } finally {
    child?.kill();
    if (child) await child.exited;
    rmSync(dir, { recursive: true, force: true });
  }
});

it('when the metrics token\'s hash file changes, then /metrics takes the new token and refuses the old one, without a restart; it opens nothing else', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'scim-bridge-rotation-'));
  const hashFile = join(dir, 'token-sha256');
  const metricsFile = join(dir, 'metrics-token-sha256');
  const METRICS_OLD = 'metrics-old-token-0123456789abcdef';
  const METRICS_NEW = 'metrics-new-token-fedcba9876543210';
  replaceFile(hashFile, `${sha(OLD)}\n`);
  replaceFile(metricsFile, `${sha(METRICS_OLD)}\n`);
  let child: ChildBridge | undefined;
  try {
    child = await spawnBridge({
      SCIM_BRIDGE_DATABASE_URL: `sqlite:${join(dir, 'x.db')}`,
      SCIM_BRIDGE_TOKEN_SHA256_FILE: hashFile,
      SCIM_BRIDGE_METRICS_TOKEN_SHA256_FILE: metricsFile,
      LOG_LEVEL: 'info',
    });
    const url = child.url;
    const get = async (path: string, token: string) => (await fetch(`${url}${path}`, { headers: { Authorization: `Bearer ${token}` } })).status;
    expect(await get('/metrics', METRICS_OLD)).toBe(200);
    replaceFile(metricsFile, `${sha(METRICS_NEW)}\n`);
    await child.waitForOutput(/secret files changed/, 5_000);
    expect(await get('/metrics', METRICS_NEW)).toBe(200);
    expect(await get('/metrics', METRICS_OLD)).toBe(401);
    expect(await get('/ServiceProviderConfig', METRICS_NEW)).toBe(401);
    expect(await get('/ServiceProviderConfig', OLD)).toBe(200);
  } finally {
    child?.kill();
    if (child) await child.exited;
    rmSync(dir, { recursive: true, force: true });
  }
});
