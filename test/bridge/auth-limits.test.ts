/**
 * The failed-auth limiters (issue 13): X-Forwarded-For is believed only from the gateway's addresses
 * (SCIM_BRIDGE_TRUST_PROXY), so a client that reaches the port directly cannot pose as many clients; and a ceiling
 * across all addresses stops a guesser spread over many. A client with a good token never meets either limiter.
 */
import express from 'express';
import { request as httpRequest } from 'node:http';
import { readConfig } from '../../bridge/src/config';
import { FAILURES_PER_MINUTE, GLOBAL_FAILURES_PER_MINUTE } from '../../bridge/src/http/auth';
import { APP_TOKEN, startBridge, TestBridge, TOKEN } from '../helpers/bridge';

const ERROR_URN = 'urn:ietf:params:scim:api:messages:2.0:Error';

interface Res {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
}

/** A GET from a chosen loopback source address (127.0.0.0/8 is all loopback on Linux), with extra headers. */
function getFrom(url: string, path: string, localAddress: string, token: string | undefined, headers: Record<string, string> = {}): Promise<Res> {
  return new Promise((resolve, reject) => {
    const u = new URL(path, url);
    const req = httpRequest(
      {
        host: u.hostname,
        port: u.port,
        path: u.pathname + u.search,
        localAddress,
        agent: false,
        headers: { ...headers, ...(token === undefined ? {} : { Authorization: `Bearer ${token}` }) },
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

function expect429(res: Res): void {
  expect(res.status).toBe(429);
  expect(res.headers['content-type']).toMatch(/^application\/scim\+json/);
  const body = JSON.parse(res.text);
  expect(body.schemas).toEqual([ERROR_URN]);
  expect(body.status).toBe('429');
  const retryAfter = Number(res.headers['retry-after']);
  expect(Number.isInteger(retryAfter)).toBe(true);
  expect(retryAfter).toBeGreaterThanOrEqual(1);
  expect(retryAfter).toBeLessThanOrEqual(60);
}

const wrong = (i: number) => `wrong-token-${i}-0000000000000000`;

describe('SCIM_BRIDGE_TRUST_PROXY=true trusts loopback and private addresses only', () => {
  const trusts = (value: string) => {
    const app = express();
    app.set('trust proxy', readConfig({ SCIM_BRIDGE_TRUST_PROXY: value }).trustedProxies);
    const fn = app.get('trust proxy fn') as (addr: string, i: number) => boolean;
    return (addr: string) => fn(addr, 0);
  };

  it('when it is true, then a gateway on loopback or a private network is believed and a public address is not', () => {
    const t = trusts('true');
    for (const a of ['127.0.0.1', '::1', '10.1.2.3', '172.18.0.2', '192.168.1.10', 'fd00::5']) expect(t(a)).toBe(true);
    for (const a of ['203.0.113.5', '198.51.100.7', '8.8.8.8', '2001:db8::1']) expect(t(a)).toBe(false);
  });

  it('when it lists addresses and ranges, then only those are believed', () => {
    const t = trusts('10.0.0.5, 192.168.7.0/24,fd00::/8');
    for (const a of ['10.0.0.5', '192.168.7.200', 'fd00::1']) expect(t(a)).toBe(true);
    for (const a of ['10.0.0.6', '192.168.8.1', '127.0.0.1', '203.0.113.5']) expect(t(a)).toBe(false);
  });
});

describe('X-Forwarded-For and the per-address limiter', () => {
  // The gateway is 127.0.0.9; clients elsewhere on loopback are not it.
  let b: TestBridge;
  beforeEach(async () => {
    b = await startBridge({ SCIM_BRIDGE_TRUST_PROXY: '127.0.0.9' });
  });
  afterEach(() => b.stop());

  it('when a client that is not the gateway rotates X-Forwarded-For, then it is still one address and gets 429; its good token still passes', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < FAILURES_PER_MINUTE + 10; i++) {
      const res = await getFrom(b.url, '/Users', '127.0.0.2', wrong(i), { 'X-Forwarded-For': `203.0.113.${i + 1}` });
      statuses.push(res.status);
    }
    expect(statuses.slice(0, 5)).toEqual([401, 401, 401, 401, 401]);
    expect(statuses.slice(-5)).toEqual([429, 429, 429, 429, 429]);
    expect429(await getFrom(b.url, '/Users', '127.0.0.2', wrong(999), { 'X-Forwarded-For': '198.51.100.77' }));
    expect((await getFrom(b.url, '/Users', '127.0.0.2', TOKEN, { 'X-Forwarded-For': '203.0.113.1' })).status).toBe(200);
  });

  it('when the gateway forwards, then each client behind it has its own budget', async () => {
    const via = (client: string, token: string) => getFrom(b.url, '/Users', '127.0.0.9', token, { 'X-Forwarded-For': client });
    for (let i = 0; i < FAILURES_PER_MINUTE + 5; i++) await via('198.51.100.7', wrong(i));
    expect429(await via('198.51.100.7', wrong(0)));
    // Another client behind the same gateway has its own budget; an entry the client wrote in front of the one the
    // gateway added does not change who the client is.
    expect((await via('198.51.100.8', wrong(0))).status).toBe(401);
    expect429(await via('10.9.9.9, 198.51.100.7', wrong(0)));
    expect((await via('198.51.100.7', TOKEN)).status).toBe(200);
  });
});

describe('the ceiling across all addresses', () => {
  let b: TestBridge;
  beforeEach(async () => {
    b = await startBridge();
  });
  afterEach(() => b.stop());

  it('when wrong tokens come from many addresses, each under its own limit, then the ceiling answers 429 with Retry-After; good tokens still pass', async () => {
    const addresses = Array.from({ length: 25 }, (_, i) => `127.0.1.${i + 1}`);
    const perAddress = Math.ceil((GLOBAL_FAILURES_PER_MINUTE + 10) / addresses.length);
    expect(perAddress).toBeLessThan(FAILURES_PER_MINUTE);
    const statuses: number[] = [];
    let n = 0;
    for (let round = 0; round < perAddress; round++) {
      for (const a of addresses) statuses.push((await getFrom(b.url, '/Users', a, wrong(n++))).status);
    }
    expect(statuses.filter((s) => s === 401)).toHaveLength(GLOBAL_FAILURES_PER_MINUTE);
    expect(statuses.slice(GLOBAL_FAILURES_PER_MINUTE).every((s) => s === 429)).toBe(true);
    // An address never seen before, with a wrong token or none, on SCIM or on the application API: the ceiling.
    expect429(await getFrom(b.url, '/Users', '127.0.2.1', wrong(n++)));
    expect429(await getFrom(b.url, '/Groups', '127.0.2.2', undefined));
    expect429(await getFrom(b.url, '/api/v1/events', '127.0.2.3', wrong(n++)));
    // Good tokens, from a guessing address and from a new one: never limited.
    for (const a of ['127.0.1.1', '127.0.2.4']) {
      expect((await getFrom(b.url, '/Users', a, TOKEN)).status).toBe(200);
      expect((await getFrom(b.url, '/api/v1/events', a, APP_TOKEN)).status).toBe(200);
    }
    expect((await getFrom(b.url, '/healthz', '127.0.2.5', undefined)).status).toBe(200);
  });
});
