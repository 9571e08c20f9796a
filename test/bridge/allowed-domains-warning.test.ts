/**
 * SCIM_BRIDGE_ALLOWED_DOMAINS that fits no real user (a stack that kept the example's `allowedDomains: [example.com]`):
 * the bridge says so once, in its log, with the rejected domain (never the address) and the fix; it says which domains
 * are allowed when it starts; it stays quiet once a user has been accepted, and when the setting is off.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import request from 'supertest';
import { readConfig } from '../../bridge/src/config';
import { createLogger } from '../../bridge/src/log';
import { RunningBridge, start } from '../../bridge/src/server';
import { LineSink } from '../helpers/line-sink';

const TOKEN = 'domains-warning-token-5d1e8a2c';
const APP_TOKEN = 'domains-warning-app-token-7b3f90e4';
const USER_SCHEMA = 'urn:ietf:params:scim:schemas:core:2.0:User';
const PATCH_SCHEMA = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';
/** Local parts that must never reach the log. */
const LOCAL_PARTS = ['jane.private-7c21', 'joe.private-4e90', 'ann.private-1b55', 'bob.private-93d0', 'no-at-sign-private-62fa'];
const WARN = 40;
const INFO = 30;

type Line = Record<string, unknown> & { level: number; msg: string };

interface Logged {
  bridge: RunningBridge;
  sink: LineSink;
  dir: string;
  post(path: string, body: unknown): request.Test;
  patch(path: string, body: unknown): request.Test;
  appPost(path: string, body: unknown): request.Test;
  lines(): Line[];
  warnings(): Line[];
  /** Waits for the request lines of `n` requests (written when each response finishes). */
  settle(n: number): Promise<void>;
  stop(keepDir?: boolean): Promise<void>;
}

async function startLogged(env: Record<string, string>, dir = mkdtempSync(join(tmpdir(), 'scim-bridge-domains-'))): Promise<Logged> {
  const sink = new LineSink();
  const config = readConfig({
    SCIM_BRIDGE_PORT: '0',
    SCIM_BRIDGE_DATABASE_URL: `sqlite:${join(dir, 'bridge.db')}`,
    SCIM_BRIDGE_TOKEN: TOKEN,
    SCIM_BRIDGE_APP_TOKEN: APP_TOKEN,
    ...env,
  });
  const bridge = await start(config, { logger: createLogger({ destination: sink, pretty: false, level: 'info' }) });
  const http = request(bridge.url);
  const send = (t: request.Test, token: string, body: unknown) =>
    t.set('Authorization', `Bearer ${token}`).set('Content-Type', 'application/scim+json').send(JSON.stringify(body));
  const lines = () => sink.lines.map((l) => JSON.parse(l) as Line);
  return {
    bridge,
    sink,
    dir,
    post: (path, body) => send(http.post(path), TOKEN, body),
    patch: (path, body) => send(http.patch(path), TOKEN, body),
    appPost: (path, body) => send(http.post(path), APP_TOKEN, body).set('Content-Type', 'application/json'),
    lines,
    warnings: () => lines().filter((l) => l.level === WARN),
    async settle(n) {
      const deadline = Date.now() + 5000;
      while (lines().filter((l) => 'status' in l && 'method' in l).length < n && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      // Room for a stray late line to show up before anything is counted.
      await new Promise((r) => setTimeout(r, 30));
    },
    async stop(keepDir = false) {
      await bridge.stop();
      if (!keepDir) rmSync(dir, { recursive: true, force: true });
    },
  };
}

const user = (userName: string, extra: Record<string, unknown> = {}) => ({ schemas: [USER_SCHEMA], userName, ...extra });

function expectNoPersonalData(b: Logged): void {
  const all = b.sink.lines.join('\n');
  for (const local of LOCAL_PARTS) expect(all).not.toContain(local);
}

describe('allowed domains that reject the first user', () => {
  let b: Logged;
  let requests = 0;
  const rejected: request.Response[] = [];

  beforeAll(async () => {
    b = await startLogged({ SCIM_BRIDGE_ALLOWED_DOMAINS: 'example.com' });
    // The first user the IdP pushes, from the organisation's real domain.
    rejected.push(await b.post('/Users', user(`${LOCAL_PARTS[0]}@Acme-Corp.io`)));
    // More of the same, another domain, an email outside, several at once, and the application API.
    rejected.push(await b.post('/Users', user(`${LOCAL_PARTS[1]}@acme-corp.io`)));
    rejected.push(await b.post('/Users', user(`${LOCAL_PARTS[2]}@other.org`)));
    rejected.push(await b.post('/Users', user(`${LOCAL_PARTS[3]}@example.com`, { emails: [{ value: `${LOCAL_PARTS[3]}@acme-corp.io`, type: 'work' }] })));
    rejected.push(...(await Promise.all([1, 2, 3, 4].map((i) => b.post('/Users', user(`${LOCAL_PARTS[1]}${i}@acme-corp.io`))))));
    rejected.push(await b.appPost('/api/v1/users', user(`${LOCAL_PARTS[2]}@acme-corp.io`)));
    requests = rejected.length;
    await b.settle(requests);
  });
  afterAll(() => b.stop());

  it('when the setting is on, then the start is logged at info with the allowed domains', () => {
    const started = b.lines().filter((l) => l.level === INFO && Array.isArray(l.allowedDomains));
    expect(started).toHaveLength(1);
    expect(started[0].allowedDomains).toEqual(['example.com']);
    expect(started[0].msg).toContain('SCIM_BRIDGE_ALLOWED_DOMAINS');
    expect(started[0].msg).toContain('example.com');
  });

  it('when users outside the allowed domains are pushed, then each gets the 400 invalidValue naming its domain, the allowed ones and the fix', () => {
    expect(rejected.map((r) => r.status)).toEqual(rejected.map(() => 400));
    const first = rejected[0].body;
    expect(first.scimType).toBe('invalidValue');
    expect(first.detail).toContain('acme-corp.io');
    expect(first.detail).toContain('example.com');
    expect(first.detail).toContain('SCIM_BRIDGE_ALLOWED_DOMAINS');
    expect(first.detail).toContain('scim-bridge:allowedDomains');
    expect(rejected[3].body.detail).toContain('acme-corp.io');
  });

  it('when no user has been accepted yet, then exactly one warning names the allowed domains, the rejected domain and the fix', () => {
    const warnings = b.warnings();
    expect(warnings).toHaveLength(1);
    const [w] = warnings;
    expect(w.allowedDomains).toEqual(['example.com']);
    expect(w.rejectedDomain).toBe('acme-corp.io');
    expect(w.msg).toContain('rejected the first user');
    expect(w.msg).toContain('example.com');
    expect(w.msg).toContain('acme-corp.io');
    expect(w.msg).toContain('SCIM_BRIDGE_ALLOWED_DOMAINS');
    expect(w.msg).toContain('scim-bridge:allowedDomains');
    expect(w.msg).not.toContain('other.org');
  });

  it('when the warning is logged, then no line carries an address or its local part', () => {
    expectNoPersonalData(b);
    expect(b.sink.lines.join('\n')).not.toContain('@acme-corp.io');
  });

  it('when a user is accepted afterwards and more are rejected, then there is still only the one warning', async () => {
    await b.post('/Users', user('accepted.person@example.com')).expect(201);
    await b.post('/Users', user(`${LOCAL_PARTS[0]}@third.net`)).expect(400);
    await b.settle(requests + 2);
    expect(b.warnings()).toHaveLength(1);
  });
});

describe('allowed domains once a user has been accepted', () => {
  it('when a user of an allowed domain came first, then later rejections (POST and PATCH) log no warning', async () => {
    const b = await startLogged({ SCIM_BRIDGE_ALLOWED_DOMAINS: 'example.com,example.org' });
    try {
      const ok = await b.post('/Users', user('first.person@example.org')).expect(201);
      const res = await b.post('/Users', user(`${LOCAL_PARTS[0]}@acme-corp.io`)).expect(400);
      expect(res.body.scimType).toBe('invalidValue');
      await b
        .patch(`/Users/${ok.body.id}`, { schemas: [PATCH_SCHEMA], Operations: [{ op: 'replace', path: 'userName', value: `${LOCAL_PARTS[1]}@acme-corp.io` }] })
        .expect(400);
      await b.settle(3);
      expect(b.warnings()).toEqual([]);
      expectNoPersonalData(b);
    } finally {
      await b.stop();
    }
  });

  it('when the store holds users from an earlier run, then a rejection after a restart logs no warning', async () => {
    const before = await startLogged({});
    const dir = before.dir;
    await before.post('/Users', user('earlier.person@acme-corp.io')).expect(201);
    await before.stop(true);
    const b = await startLogged({ SCIM_BRIDGE_ALLOWED_DOMAINS: 'example.com' }, dir);
    try {
      await b.post('/Users', user(`${LOCAL_PARTS[0]}@acme-corp.io`)).expect(400);
      await b.settle(1);
      expect(b.warnings()).toEqual([]);
    } finally {
      await b.stop();
    }
  });

  it('when a PATCH is the first rejection, then no warning (the user being changed was accepted)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'scim-bridge-domains-'));
    const before = await startLogged({}, dir);
    const made = await before.post('/Users', user('someone@example.com')).expect(201);
    await before.stop(true);
    const b = await startLogged({ SCIM_BRIDGE_ALLOWED_DOMAINS: 'example.com' }, dir);
    try {
      await b
        .patch(`/Users/${made.body.id}`, { schemas: [PATCH_SCHEMA], Operations: [{ op: 'replace', path: 'userName', value: `${LOCAL_PARTS[1]}@acme-corp.io` }] })
        .expect(400);
      await b.post('/Users', user(`${LOCAL_PARTS[0]}@acme-corp.io`)).expect(400);
      await b.settle(2);
      expect(b.warnings()).toEqual([]);
    } finally {
      await b.stop();
    }
  });
});

describe('allowed domains and a userName that is not an email address', () => {
  it('when the first user has no domain at all, then the one warning says so without the userName', async () => {
    const b = await startLogged({ SCIM_BRIDGE_ALLOWED_DOMAINS: 'example.com' });
    try {
      const res = await b.post('/Users', user(LOCAL_PARTS[4])).expect(400);
      expect(res.body.scimType).toBe('invalidValue');
      expect(res.body.detail).toContain('not an email address');
      expect(res.body.detail).toContain('example.com');
      await b.settle(1);
      const warnings = b.warnings();
      expect(warnings).toHaveLength(1);
      expect(warnings[0].rejectedDomain).toBeNull();
      expect(warnings[0].msg).toContain('not an email address');
      expect(warnings[0].msg).toContain('SCIM_BRIDGE_ALLOWED_DOMAINS');
      expectNoPersonalData(b);
    } finally {
      await b.stop();
    }
  });
});

describe('allowed domains off', () => {
  it('when SCIM_BRIDGE_ALLOWED_DOMAINS is not set, then every domain is accepted and nothing about domains is logged', async () => {
    const b = await startLogged({});
    try {
      await b.post('/Users', user('someone@acme-corp.io')).expect(201);
      await b.post('/Users', user('someone@other.org')).expect(201);
      await b.settle(2);
      expect(b.warnings()).toEqual([]);
      expect(b.lines().filter((l) => 'allowedDomains' in l || /ALLOWED_DOMAINS/.test(l.msg))).toEqual([]);
    } finally {
      await b.stop();
    }
  });
});
