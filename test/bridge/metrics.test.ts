/**
 * GET /metrics (issue 16, DESIGN.md "HTTP surface"): Prometheus text with the scim_bridge_ families and Node's
 * process metrics, behind the IdP's token or the metrics token (which opens nothing else). Labels stay bounded:
 * the route is the route's pattern, never a path with ids or a query; the IdP is one of a fixed set. The figures
 * follow what the bridge does, and a scrape meets the same load shedding as any request.
 */
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import request from 'supertest';
import { ConfigError, readConfig, sha256Hex } from '../../bridge/src/config';
import { IDP_LABELS, idpLabel } from '../../bridge/src/http/app';
import { Observer } from '../../bridge/src/observe';
import { GROUP_SCHEMA, startBridge, TestBridge, TOKEN, userBody } from '../helpers/bridge';

const METRICS_TOKEN = 'metrics-token-0123456789abcdef';
const OKTA = 'Okta SCIM Client 1.0.0';
const PREFIX = 'scim_bridge_';

interface Sample {
  readonly name: string;
  readonly labels: Record<string, string>;
  readonly value: number;
}

/** The exposition format's samples and TYPE lines. */
function parse(text: string): { samples: Sample[]; types: Map<string, string> } {
  const samples: Sample[] = [];
  const types = new Map<string, string>();
  for (const line of text.split('\n')) {
    const type = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (type) types.set(type[1], type[2]);
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`not a sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const [, k, v] of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[k] = v;
    samples.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return { samples, types };
}

/** The value of the one sample with this name and these labels (0 when absent). */
function value(samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  const found = samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  if (found.length > 1) throw new Error(`${found.length} samples of ${name} match ${JSON.stringify(labels)}`);
  return found[0]?.value ?? 0;
}

describe('GET /metrics', () => {
  let b: TestBridge;
  const scrape = async () => parse((await b.get('/metrics').expect(200)).text).samples;
  beforeAll(async () => {
    b = await startBridge({ SCIM_BRIDGE_METRICS_TOKEN_SHA256: sha256Hex(METRICS_TOKEN) }, { observe: { statsMaxAgeMs: 0 } });
  });
  afterAll(() => b.stop());

  it('when scraped with the IdP token, then every family DESIGN.md lists is there with its type, and Node\'s process metrics', async () => {
    await b.get('/Users').set('User-Agent', OKTA).expect(200);
    const res = await b.get('/metrics').expect(200);
    expect(res.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
    const { types } = parse(res.text);
    expect(Object.fromEntries([...types].filter(([name]) => name.startsWith(PREFIX)))).toEqual({
      scim_bridge_requests_total: 'counter',
      scim_bridge_request_duration_seconds: 'histogram',
      scim_bridge_users: 'gauge',
      scim_bridge_groups: 'gauge',
      scim_bridge_events_pending: 'gauge',
      scim_bridge_webhook_deliveries_total: 'counter',
      scim_bridge_dead_letters: 'gauge',
      scim_bridge_last_request_timestamp_seconds: 'gauge',
    });
    for (const name of ['process_cpu_seconds_total', 'process_resident_memory_bytes', 'nodejs_heap_size_used_bytes', 'nodejs_eventloop_lag_seconds']) {
      expect(types.has(name)).toBe(true);
    }
  });

  it('when requests name ids and queries, then the route label is the pattern, never the id or the query', async () => {
    const user = (await b.post('/Users', userBody('route.label@example.com')).set('User-Agent', OKTA).expect(201)).body;
    await b.get(`/Users/${user.id}`).set('User-Agent', OKTA).expect(200);
    await b.get(`/scim/v2/Users/${user.id}?attributes=userName`).set('User-Agent', OKTA).expect(200);
    await b.get('/Users/00000000-0000-4000-8000-000000000000').set('User-Agent', OKTA).expect(404);
    await b.get('/Users').query({ filter: 'userName eq "route.label@example.com"' }).set('User-Agent', OKTA).expect(200);
    const samples = await scrape();
    const requests = samples.filter((s) => s.name === `${PREFIX}requests_total`);
    expect(value(requests, `${PREFIX}requests_total`, { method: 'GET', route: '/Users/:id', status: '200', idp: 'okta' })).toBe(1);
    expect(value(requests, `${PREFIX}requests_total`, { method: 'GET', route: '/scim/v2/Users/:id', status: '200', idp: 'okta' })).toBe(1);
    expect(value(requests, `${PREFIX}requests_total`, { method: 'GET', route: '/Users/:id', status: '404', idp: 'okta' })).toBe(1);
    expect(value(requests, `${PREFIX}requests_total`, { method: 'POST', route: '/Users', status: '201', idp: 'okta' })).toBe(1);
    const text = JSON.stringify(samples.map((s) => s.labels));
    expect(text).not.toContain(user.id);
    expect(text).not.toContain('00000000-0000-4000-8000-000000000000');
    expect(text).not.toContain('route.label');
    for (const s of samples.filter((x) => x.labels.route !== undefined)) expect(s.labels.route).toMatch(/^(unmatched|\/[A-Za-z0-9/.:_-]*)$/);
    expect(value(samples, `${PREFIX}request_duration_seconds_count`, { method: 'GET', route: '/Users/:id' })).toBe(2);
  });

  it('when paths match no route, then they all share one route label, with or without a token', async () => {
    await b.get('/no/such/thing-1').expect(404);
    await b.get('/no/such/thing-2').expect(404);
    await b.anonymous().get('/Users/abc-unauthenticated').expect(401);
    const requests = (await scrape()).filter((s) => s.name === `${PREFIX}requests_total`);
    const routes = new Set(requests.map((s) => s.labels.route));
    expect([...routes].some((r) => r.includes('thing') || r.includes('abc-'))).toBe(false);
    expect(value(requests, `${PREFIX}requests_total`, { method: 'GET', route: 'unmatched', status: '404', idp: 'unknown' })).toBe(2);
    expect(value(requests, `${PREFIX}requests_total`, { method: 'GET', route: 'unmatched', status: '401', idp: 'unknown' })).toBeGreaterThanOrEqual(1);
  });

  it('when clients send any User-Agent, then the idp label is one of a fixed set', async () => {
    await b.get('/Groups').set('User-Agent', `curl/8.0 build-${Date.now()}`).expect(200);
    await b.get('/Groups').set('User-Agent', 'Azure AD SCIM Client').expect(200);
    await b.get('/Groups').set('User-Agent', 'JumpCloud SCIM').expect(200);
    const requests = (await scrape()).filter((s) => s.name === `${PREFIX}requests_total`);
    for (const s of requests) expect(IDP_LABELS).toContain(s.labels.idp);
    expect(value(requests, `${PREFIX}requests_total`, { method: 'GET', route: '/Groups', status: '200', idp: 'other' })).toBe(1);
    expect(value(requests, `${PREFIX}requests_total`, { method: 'GET', route: '/Groups', status: '200', idp: 'entra' })).toBe(1);
    expect(value(requests, `${PREFIX}requests_total`, { method: 'GET', route: '/Groups', status: '200', idp: 'jumpcloud' })).toBe(1);
  });

  it('when users and groups are provisioned, then the gauges and counters follow at the next scrape', async () => {
    const before = await scrape();
    const invited = value(before, `${PREFIX}users`, { status: 'invited' });
    const active = value(before, `${PREFIX}users`, { status: 'active' });
    const groups = value(before, `${PREFIX}groups`);
    const posts = value(before, `${PREFIX}requests_total`, { method: 'POST', route: '/Users', status: '201', idp: 'okta' });
    const started = Date.now() / 1000;

    const u1 = (await b.post('/Users', userBody('gauge.one@example.com')).set('User-Agent', OKTA).expect(201)).body;
    await b.post('/Users', userBody('gauge.two@example.com')).set('User-Agent', OKTA).expect(201);
    await b.join(u1.id);
    await b.post('/Groups', { schemas: [GROUP_SCHEMA], displayName: 'Gauged' }).set('User-Agent', OKTA).expect(201);

    const after = await scrape();
    expect(value(after, `${PREFIX}users`, { status: 'invited' })).toBe(invited + 1);
    expect(value(after, `${PREFIX}users`, { status: 'active' })).toBe(active + 1);
    expect(value(after, `${PREFIX}users`, { status: 'suspended' })).toBe(0);
    expect(value(after, `${PREFIX}users`, { status: 'revoked' })).toBe(0);
    expect(value(after, `${PREFIX}groups`)).toBe(groups + 1);
    expect(value(after, `${PREFIX}requests_total`, { method: 'POST', route: '/Users', status: '201', idp: 'okta' })).toBe(posts + 2);
    const last = value(after, `${PREFIX}last_request_timestamp_seconds`, { idp: 'okta' });
    expect(last).toBeGreaterThanOrEqual(Math.floor(started));
    expect(last).toBeLessThanOrEqual(Date.now() / 1000 + 1);
    // No webhook: nothing pending, nothing dead, nothing sent.
    expect(value(after, `${PREFIX}events_pending`)).toBe(0);
    expect(value(after, `${PREFIX}dead_letters`)).toBe(0);
    expect(value(after, `${PREFIX}webhook_deliveries_total`, { result: 'delivered' })).toBe(0);
  });

  it('when an operator scrapes or reads the status page, then that is no IdP\'s last request', async () => {
    const last = value(await scrape(), `${PREFIX}last_request_timestamp_seconds`, { idp: 'okta' });
    expect(last).toBeGreaterThan(0);
    await new Promise((r) => setTimeout(r, 20));
    await b.get('/metrics').set('User-Agent', OKTA).expect(200);
    await b.get('/status.json').set('User-Agent', OKTA).expect(200);
    await b.anonymous().get('/').set('User-Agent', OKTA).expect(200);
    const samples = await scrape();
    expect(value(samples, `${PREFIX}last_request_timestamp_seconds`, { idp: 'okta' })).toBe(last);
    expect(value(samples, `${PREFIX}requests_total`, { method: 'GET', route: '/metrics', status: '200', idp: 'okta' })).toBe(1);
  });

  describe('who may scrape', () => {
    it('when no token is sent, then 401 with a SCIM error', async () => {
      const res = await b.anonymous().get('/metrics').expect(401);
      expect(res.headers['www-authenticate']).toMatch(/^Bearer/);
      expect(res.text).not.toContain(PREFIX);
    });

    it('when a wrong token is sent, then 401', async () => {
      await b.anonymous().get('/metrics').set('Authorization', 'Bearer wrong-token-0123456789abcdef').expect(401);
    });

    it('when the metrics token is sent, then /metrics answers', async () => {
      const res = await b.anonymous().get('/metrics').set('Authorization', `Bearer ${METRICS_TOKEN}`).expect(200);
      expect(res.text).toContain(`${PREFIX}requests_total`);
    });

    it.each(['/Users', '/Groups', '/ServiceProviderConfig', '/health', '/status.json', '/scim/v2/Users', '/api/v1/events'])(
      'when the metrics token is sent to %s, then it is refused (it opens /metrics only)',
      async (path) => {
        await b.anonymous().get(path).set('Authorization', `Bearer ${METRICS_TOKEN}`).expect(401);
      },
    );

    it('when the application token is sent to /metrics, then it is refused', async () => {
      await b.app.get('/metrics').expect(401);
    });
  });
});

describe('the idp label', () => {
  it.each([
    ['Okta SCIM Client 1.0.0', undefined, 'okta'],
    ['Mozilla/5.0', '6.0', 'entra'],
    ['Azure AD SCIM Client', undefined, 'entra'],
    ['JumpCloud SCIM', undefined, 'jumpcloud'],
    ['Google-SCIM', undefined, 'google'],
    ['OneLogin SCIM', undefined, 'onelogin'],
    ['Rippling', undefined, 'rippling'],
    ['curl/8.5.0', undefined, 'other'],
    [`x`.repeat(500), undefined, 'other'],
    [undefined, undefined, 'unknown'],
  ])('when the User-Agent is %s and ADSCIMVersion %s, then the label is %s', (ua, adscim, label) => {
    expect(idpLabel(ua, adscim)).toBe(label);
    expect(IDP_LABELS).toContain(label);
  });
});

/** Its _FILE form is tested with the other secrets' (config-variables.test.ts). */
describe('the metrics token setting', () => {
  it('when SCIM_BRIDGE_METRICS_TOKEN_SHA256 holds hashes, then they are the metrics token hashes', () => {
    const hash = sha256Hex(METRICS_TOKEN);
    expect(readConfig({ SCIM_BRIDGE_METRICS_TOKEN_SHA256: hash.toUpperCase() }).metricsTokenHashes).toEqual([hash]);
    expect(readConfig({}).metricsTokenHashes).toEqual([]);
  });

  it('when it is not a hash, then the start stops naming the variable, never the value', () => {
    let thrown: unknown;
    try {
      readConfig({ SCIM_BRIDGE_METRICS_TOKEN_SHA256: METRICS_TOKEN });
    } catch (e) {
      thrown = e;
    }
    expect(thrown).toBeInstanceOf(ConfigError);
    expect((thrown as ConfigError).variable).toBe('SCIM_BRIDGE_METRICS_TOKEN_SHA256');
    expect((thrown as ConfigError).message).not.toContain(METRICS_TOKEN);
  });
});

describe('webhook figures', () => {
  let b: TestBridge;
  let answer = 200;
  const receiver = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => res.writeHead(answer).end());
  });
  const scrape = async () => parse((await b.get('/metrics').expect(200)).text).samples;
  async function until(check: () => Promise<boolean>): Promise<void> {
    const end = Date.now() + 10_000;
    while (!(await check())) {
      if (Date.now() > end) throw new Error('timed out waiting');
      await new Promise((r) => setTimeout(r, 25));
    }
  }
  beforeAll(async () => {
    receiver.listen(0, '127.0.0.1');
    await once(receiver, 'listening');
    const url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/events`;
    b = await startBridge(
      { SCIM_BRIDGE_WEBHOOK_URL: url, SCIM_BRIDGE_WEBHOOK_SECRET: 'webhook-secret-0123456789abcdef' },
      { delivery: { baseDelayMs: 20, maxDelayMs: 50, pollMs: 20 }, observe: { statsMaxAgeMs: 0 } },
    );
  });
  afterAll(async () => {
    await b.stop();
    receiver.close();
  });

  it('when the downstream accepts, fails, then refuses for good, then deliveries, pending events and dead letters say so', async () => {
    await b.post('/Users', userBody('hook.ok@example.com')).expect(201);
    await until(async () => value(await scrape(), `${PREFIX}webhook_deliveries_total`, { result: 'delivered' }) >= 1);
    await until(async () => value(await scrape(), `${PREFIX}events_pending`) === 0);

    answer = 503;
    await b.post('/Users', userBody('hook.retry@example.com')).expect(201);
    await until(async () => value(await scrape(), `${PREFIX}webhook_deliveries_total`, { result: 'failed' }) >= 1);
    expect(value(await scrape(), `${PREFIX}events_pending`)).toBeGreaterThanOrEqual(1);

    answer = 410;
    // The dead letter is written, then counted: a scrape between the two sees one without the other.
    await until(async () => {
      const samples = await scrape();
      return value(samples, `${PREFIX}dead_letters`) === 1 && value(samples, `${PREFIX}webhook_deliveries_total`, { result: 'dead_letter' }) === 1;
    });
    expect(value(await scrape(), `${PREFIX}events_pending`)).toBe(0);
  });
});

describe('load shedding', () => {
  it('when the bridge is shedding load, then a scrape is refused like any request (503, Retry-After), while /healthz answers', async () => {
    const b = await startBridge({}, { http: { maxOpenConnections: 0 } });
    try {
      const res = await request(b.url).get('/metrics').set('Authorization', `Bearer ${TOKEN}`);
      expect(res.status).toBe(503);
      expect(res.headers['retry-after']).toBeDefined();
      await request(b.url).get('/healthz').expect(200);
    } finally {
      await b.stop();
    }
  });
});

describe('requests refused by load shedding', () => {
  it('when a request is refused because the bridge is at its limit, then it is counted (503, no route) and is its IdP\'s last request', async () => {
    const b = await startBridge({}, { http: { maxInFlight: 1 } });
    const { port } = new URL(b.url);
    // One request in flight: its body is announced and not sent yet, so it holds the only place.
    const held = http.request({ host: '127.0.0.1', port, method: 'POST', path: '/Users', headers: { Authorization: `Bearer ${TOKEN}`, 'Content-Type': 'application/scim+json', 'Content-Length': '1000' } });
    held.on('error', () => undefined);
    held.write('{');
    held.flushHeaders();
    try {
      let refused: request.Response | undefined;
      for (let i = 0; i < 100 && refused?.status !== 503; i++) {
        refused = await request(b.url).get('/Users').set('Authorization', `Bearer ${TOKEN}`).set('User-Agent', OKTA);
        if (refused.status !== 503) await new Promise((r) => setTimeout(r, 20));
      }
      expect(refused!.status).toBe(503);
      held.destroy();
      let samples: Sample[] = [];
      for (let i = 0; i < 100; i++) {
        const res = await b.get('/metrics');
        if (res.status === 200) {
          samples = parse(res.text).samples;
          break;
        }
        await new Promise((r) => setTimeout(r, 20));
      }
      expect(value(samples, `${PREFIX}requests_total`, { method: 'GET', route: 'unmatched', status: '503', idp: 'okta' })).toBeGreaterThanOrEqual(1);
      expect(value(samples, `${PREFIX}last_request_timestamp_seconds`, { idp: 'okta' })).toBeGreaterThan(0);
      const status = (await b.get('/status.json').expect(200)).body;
      expect(status.idps).toEqual([expect.objectContaining({ idp: 'okta', status: 503, route: 'unmatched' })]);
    } finally {
      held.destroy();
      await b.stop();
    }
  });
});

describe('the cost of a scrape', () => {
  it('when scrapes and status reads come together, then the store is counted once per period', async () => {
    let reads = 0;
    const observer = new Observer(
      {
        version: 'test',
        storeHealth: async () => undefined,
        directoryCounts: async () => {
          reads++;
          await new Promise((r) => setTimeout(r, 20));
          return { users: { invited: 1, active: 0, suspended: 0, revoked: 0 }, groups: 0 };
        },
        deliveryBacklog: async () => ({ webhook: 'off', pending: 0, lagSeconds: 0, deadLetters: 0 }),
      },
      { statsMaxAgeMs: 200 },
    );
    await Promise.all([...Array.from({ length: 10 }, () => observer.metrics()), ...Array.from({ length: 10 }, () => observer.status())]);
    expect(reads).toBe(1);
    await observer.metrics();
    expect(reads).toBe(1);
    await new Promise((r) => setTimeout(r, 250));
    const { body } = await observer.metrics();
    expect(reads).toBe(2);
    expect(body).toContain('scim_bridge_users{status="invited"} 1');
  });
});
