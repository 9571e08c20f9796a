/**
 * Authentication (DESIGN.md): only /healthz is open; bearer tokens are checked against hashes, several at
 * once; failed attempts are rate-limited per client address without slowing clients with a good token.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import request from 'supertest';
import { readConfig } from '../../bridge/src/config';
import { createLogger } from '../../bridge/src/log';
import { RunningBridge, start } from '../../bridge/src/server';
import { startBridge, TestBridge, TOKEN } from '../helpers/bridge';

const ERROR_URN = 'urn:ietf:params:scim:api:messages:2.0:Error';
const sha256 = (text: string) => createHash('sha256').update(text, 'utf8').digest('hex');

function expectScimError(res: { status: number; headers: Record<string, any>; text: string }, status: number): void {
  expect(res.status).toBe(status);
  expect(res.headers['content-type']).toMatch(/^application\/scim\+json/);
  const body = JSON.parse(res.text);
  expect(body.schemas).toEqual([ERROR_URN]);
  expect(body.status).toBe(String(status));
  expect(typeof body.detail).toBe('string');
  expect(body.detail.length).toBeGreaterThan(0);
}

function expect401(res: { status: number; headers: Record<string, any>; text: string }): void {
  expectScimError(res, 401);
  expect(res.headers['www-authenticate']).toMatch(/^Bearer( |$)/);
}

/** A GET from a chosen loopback source address (127.0.0.0/8 is all loopback on Linux). */
function getFrom(url: string, path: string, localAddress: string, token?: string): Promise<{ status: number; headers: Record<string, any>; text: string }> {
  return new Promise((resolve, reject) => {
    const u = new URL(path, url);
    const req = httpRequest(
      {
        host: u.hostname,
        port: u.port,
        path: u.pathname + u.search,
        localAddress,
        agent: false,
        headers: token === undefined ? {} : { Authorization: `Bearer ${token}` },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(chunks).toString('utf8') }));
      },
    );
    req.setTimeout(10_000, () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

const PROTECTED = [
  '/ServiceProviderConfig',
  '/ResourceTypes',
  '/Schemas',
  '/Users',
  '/Groups',
  '/Users/00000000-0000-4000-8000-000000000000',
  '/scim/v2/Users',
  '/scim/v2/Groups',
  '/scim/v2/ServiceProviderConfig',
  '/health',
  '/metrics',
  // The status page's figures; the page itself (GET /) is open and holds none (see below).
  '/status.json',
  '/no-such-endpoint',
];

describe('bearer authentication', () => {
  let b: TestBridge;
  beforeAll(async () => {
    b = await startBridge();
  });
  afterAll(() => b.stop());

  it('when /healthz is asked without a token, then 200 with no details', async () => {
    const res = await b.anonymous().get('/healthz');
    expect(res.status).toBe(200);
    expect(res.text.length).toBeLessThanOrEqual(16);
    expect(res.text).not.toMatch(/version|store|sqlite|\d+\.\d+\.\d+|users|groups/i);
    expect(res.headers['cache-control']).toMatch(/no-store/);
  });

  it('when /healthz is asked with a wrong token, then it is still 200 (it is open)', async () => {
    await b.anonymous().get('/healthz').set('Authorization', 'Bearer wrong-token-000000000000').expect(200);
  });

  it.each(PROTECTED)('when GET %s is sent without a token, then 401 with WWW-Authenticate: Bearer and a SCIM error', async (path) => {
    expect401(await b.anonymous().get(path));
  });

  it('when GET / (the status page) is sent without a token, then its HTML, with no figure and no version in it', async () => {
    const res = await b.anonymous().get('/').expect(200);
    expect(res.headers['content-type']).toMatch(/^text\/html/);
    expect(res.text).toContain('/status.js');
    expect(res.text).not.toMatch(/\d+\.\d+\.\d+|sqlite/i);
    // Anything but GET at the root still needs the token.
    expect401(await b.anonymous().post('/').set('Content-Type', 'application/scim+json').send('{}'));
  });

  it('when POST /Users is sent without a token, then 401 (before the body is looked at) and nothing is created', async () => {
    const res = await b.anonymous().post('/Users').set('Content-Type', 'application/scim+json').send(JSON.stringify({ userName: 'anon@example.com' }));
    expect401(res);
    const list = await b.get('/Users').query({ filter: 'userName eq "anon@example.com"' }).expect(200);
    expect(list.body.totalResults).toBe(0);
  });

  it.each(['PUT', 'PATCH', 'DELETE'])('when %s /Users/{id} is sent without a token, then 401', async (method) => {
    const t = b.anonymous()[method.toLowerCase() as 'put' | 'patch' | 'delete']('/Users/00000000-0000-4000-8000-000000000000');
    expect401(await t);
  });

  it('when a non-JSON body is sent without a token, then 401 rather than 415', async () => {
    expect401(await b.anonymous().post('/Users').set('Content-Type', 'text/plain').send('hello'));
  });

  it('when the right token is sent, then SCIM answers 200 at the root and at /scim/v2', async () => {
    for (const path of ['/ServiceProviderConfig', '/Users', '/scim/v2/Users', '/Groups']) {
      const res = await b.get(path);
      expect(res.status).toBe(200);
    }
  });

  it('when "bearer" is written in lower case, then the token is still accepted', async () => {
    await b.anonymous().get('/Users').set('Authorization', `bearer ${TOKEN}`).expect(200);
  });

  it('when GET /health is sent with the token, then store ok and a version', async () => {
    const res = await b.get('/health').expect(200);
    expect(res.body.store).toBe('ok');
    expect(typeof res.body.version).toBe('string');
    expect(res.body.version).toMatch(/^\d+\.\d+\.\d+/);
  });
});

describe('wrong credentials', () => {
  // A bridge of its own, so these failures stay well under the rate limit of the one above.
  let b: TestBridge;
  beforeAll(async () => {
    b = await startBridge();
  });
  afterAll(() => b.stop());

  it.each([
    ['a wrong token', `Bearer ${TOKEN}x`],
    ['a prefix of the token', `Bearer ${TOKEN.slice(0, -1)}`],
    ['the token in another case', `Bearer ${TOKEN.toUpperCase()}`],
    ['the token\'s hash instead of the token', `Bearer ${sha256(TOKEN)}`],
    ['Basic instead of Bearer', `Basic ${Buffer.from(`user:${TOKEN}`).toString('base64')}`],
    ['Bearer without a token', 'Bearer '],
    ['the token without Bearer', TOKEN],
  ])('when %s is sent, then 401 with WWW-Authenticate: Bearer and a SCIM error', async (_what, header) => {
    expect401(await b.anonymous().get('/Users').set('Authorization', header));
  });

  it('when a wrong token is sent, then WWW-Authenticate says the token is invalid and the detail does not echo the token', async () => {
    const wrong = 'echo-check-token-5a5a5a5a5a5a';
    const res = await b.anonymous().get('/Users').set('Authorization', `Bearer ${wrong}`);
    expect401(res);
    expect(res.headers['www-authenticate']).toMatch(/invalid_token/);
    expect(res.text).not.toContain(wrong);
    expect(res.headers['www-authenticate']).not.toContain(wrong);
  });
});

describe('several accepted tokens', () => {
  const A = 'rotation-token-A-0123456789abcdef';
  const B = 'rotation-token-B-fedcba9876543210';
  let b: TestBridge;
  beforeAll(async () => {
    b = await startBridge({ SCIM_BRIDGE_TOKEN_SHA256: `${sha256(A)},${sha256(B).toUpperCase()}` });
  });
  afterAll(() => b.stop());

  it('when the hashes of A and B are configured beside the clear token, then all three tokens are accepted', async () => {
    for (const token of [A, B, TOKEN]) {
      const res = await b.anonymous().get('/Users').set('Authorization', `Bearer ${token}`);
      expect(res.status).toBe(200);
    }
  });

  it('when a fourth token is sent, then 401', async () => {
    expect401(await b.anonymous().get('/Users').set('Authorization', 'Bearer rotation-token-C-0000000000000000'));
  });

  it('when a hash is configured, then the hash itself is not a token', async () => {
    expect401(await b.anonymous().get('/Users').set('Authorization', `Bearer ${sha256(A)}`));
  });
});

describe('rate limit on failed authentication', () => {
  let b: TestBridge;
  beforeEach(async () => {
    b = await startBridge();
  });
  afterEach(() => b.stop());

  it('when an address sends many wrong tokens, then it gets 429 with a SCIM body, while the good token from the same address still gets 200', async () => {
    const statuses: number[] = [];
    let limited: request.Response | undefined;
    for (let i = 0; i < 60; i++) {
      const res = await b.anonymous().get('/Users').set('Authorization', `Bearer wrong-${i}-000000000000000`);
      statuses.push(res.status);
      if (res.status === 429) limited ??= res;
    }
    expect(statuses.slice(0, 5)).toEqual([401, 401, 401, 401, 401]);
    expect(statuses).toContain(429);
    expect(statuses.slice(-5)).toEqual([429, 429, 429, 429, 429]);
    expectScimError(limited!, 429);
    // The limited address with the good token: never slowed, never refused.
    for (let i = 0; i < 20; i++) {
      const good = await b.get('/Users');
      expect(good.status).toBe(200);
    }
    // Still limited for wrong tokens, and without a token at all.
    expectScimError(await b.anonymous().get('/Users').set('Authorization', 'Bearer wrong-again-000000000000'), 429);
    expectScimError(await b.anonymous().get('/Users'), 429);
  });

  it('when the good token is used many times, then those requests do not count as failures', async () => {
    for (let i = 0; i < 100; i++) {
      const good = await b.get('/ServiceProviderConfig');
      expect(good.status).toBe(200);
    }
    expect401(await b.anonymous().get('/Users').set('Authorization', 'Bearer wrong-after-good-0000000'));
  });

  it('when one address is limited, then another address still gets 401 (not 429): the limit is per address', async () => {
    let limitedSeen = false;
    for (let i = 0; i < 60; i++) {
      const res = await getFrom(b.url, '/Users', '127.0.0.2', `wrong-${i}-000000000000000`);
      if (res.status === 429) limitedSeen = true;
    }
    expect(limitedSeen).toBe(true);
    expectScimError(await getFrom(b.url, '/Users', '127.0.0.2', 'wrong-token-00000000000000'), 429);
    expect401(await getFrom(b.url, '/Users', '127.0.0.3', 'wrong-token-00000000000000'));
    expect((await getFrom(b.url, '/Users', '127.0.0.2', TOKEN)).status).toBe(200);
  });

  it('when /healthz is polled by a limited address, then it still answers 200', async () => {
    for (let i = 0; i < 60; i++) await b.anonymous().get('/Users').set('Authorization', `Bearer wrong-${i}-000000000000000`);
    expect((await b.anonymous().get('/Users').set('Authorization', 'Bearer wrong-000000000000000')).status).toBe(429);
    await b.anonymous().get('/healthz').expect(200);
  });
});

describe('the token generated on first start', () => {
  let dir: string;
  let running: RunningBridge | undefined;
  const logger = createLogger({ level: 'silent', pretty: false });

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'scim-bridge-auth-'));
  });
  afterAll(async () => {
    await running?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const config = () => readConfig({ SCIM_BRIDGE_PORT: '0', SCIM_BRIDGE_DATABASE_URL: `sqlite:${join(dir, 'x.db')}` });
  const dbBytes = () => {
    const file = join(dir, 'x.db');
    const parts = [readFileSync(file)];
    if (existsSync(`${file}-wal`)) parts.push(readFileSync(`${file}-wal`));
    return Buffer.concat(parts);
  };

  it('when the bridge starts without token variables, then a token is generated once, works, survives a restart, and only its hash is stored', async () => {
    running = await start(config(), { logger });
    const token = running.generatedToken;
    expect(typeof token).toBe('string');
    expect(token!.length).toBeGreaterThanOrEqual(32);
    const first = request(running.url);
    expect((await first.get('/Users').set('Authorization', `Bearer ${token}`)).status).toBe(200);
    expect401(await first.get('/Users'));
    expect401(await first.get('/Users').set('Authorization', `Bearer ${token}x`));

    await running.stop();
    running = undefined;
    let bytes = dbBytes();
    expect(bytes.includes(Buffer.from(sha256(token!)))).toBe(true);
    expect(bytes.includes(Buffer.from(token!))).toBe(false);

    running = await start(config(), { logger });
    expect(running.generatedToken).toBeUndefined();
    const second = request(running.url);
    expect((await second.get('/Users').set('Authorization', `Bearer ${token}`)).status).toBe(200);
    expect401(await second.get('/Users'));

    await running.stop();
    running = undefined;
    bytes = dbBytes();
    expect(bytes.includes(Buffer.from(token!))).toBe(false);
  });

  it('when a token is configured for a database that holds a generated one, then the configured token rules and nothing is generated', async () => {
    const configured = 'configured-token-0123456789abcdef';
    running = await start(readConfig({ SCIM_BRIDGE_PORT: '0', SCIM_BRIDGE_DATABASE_URL: `sqlite:${join(dir, 'x.db')}`, SCIM_BRIDGE_TOKEN: configured }), { logger });
    expect(running.generatedToken).toBeUndefined();
    const http = request(running.url);
    expect((await http.get('/Users').set('Authorization', `Bearer ${configured}`)).status).toBe(200);
    await running.stop();
    running = undefined;
  });

  it('when two fresh databases start, then each gets a different token', async () => {
    const one = await start(readConfig({ SCIM_BRIDGE_PORT: '0', SCIM_BRIDGE_DATABASE_URL: `sqlite:${join(dir, 'one.db')}` }), { logger });
    const two = await start(readConfig({ SCIM_BRIDGE_PORT: '0', SCIM_BRIDGE_DATABASE_URL: `sqlite:${join(dir, 'two.db')}` }), { logger });
    try {
      expect(one.generatedToken).toBeDefined();
      expect(two.generatedToken).toBeDefined();
      expect(one.generatedToken).not.toBe(two.generatedToken);
      expect401(await request(one.url).get('/Users').set('Authorization', `Bearer ${two.generatedToken}`));
    } finally {
      await one.stop();
      await two.stop();
    }
  });
});
