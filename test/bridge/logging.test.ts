/**
 * Logs (issue 3): structured JSON, one line per request with method, path, status, duration and the
 * calling IdP; never a token, a password or a request body.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import request from 'supertest';
import { readConfig } from '../../bridge/src/config';
import { createLogger } from '../../bridge/src/log';
import { RunningBridge, start } from '../../bridge/src/server';
import { LineSink } from '../helpers/line-sink';

const TOKEN = 'logging-test-token-7f3a9c0e1d2b';
const WRONG_TOKEN = 'logging-wrong-token-0b1c2d3e4f5a';
const PASSWORD = 'L0gged-Pa55word-must-not-appear-61ac';
const BODY_MARKER = 'body-marker-never-in-logs-2e7d41';
const FILTER_VALUE = 'filter-value-user@example.com';

interface RequestLine {
  msg?: string;
  method: string;
  path: string;
  status: number;
  ms: number;
  idp: string;
  [key: string]: unknown;
}

describe('request logs', () => {
  let dir: string;
  let bridge: RunningBridge;
  let sink: LineSink;
  let http: ReturnType<typeof request>;
  let userId: string;
  let made = 0;

  const auth = (t: request.Test) => t.set('Authorization', `Bearer ${TOKEN}`);
  const json = (t: request.Test, body: unknown) => t.set('Content-Type', 'application/scim+json').send(JSON.stringify(body));

  /** Every line parsed as JSON (fails the test on a line that is not JSON). */
  const parsed = (): Record<string, unknown>[] => sink.lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  const requestLines = (): RequestLine[] => parsed().filter((l) => 'method' in l && 'status' in l) as RequestLine[];

  /** The request log is written when the response finishes; wait until `n` request lines are there. */
  async function waitForRequestLines(n: number): Promise<RequestLine[]> {
    const deadline = Date.now() + 5000;
    while (requestLines().length < n && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    return requestLines();
  }

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'scim-bridge-log-'));
    sink = new LineSink();
    const logger = createLogger({ destination: sink, pretty: false });
    bridge = await start(readConfig({ SCIM_BRIDGE_PORT: '0', SCIM_BRIDGE_DATABASE_URL: `sqlite:${join(dir, 'log.db')}`, SCIM_BRIDGE_TOKEN: TOKEN }), { logger });
    http = request(bridge.url);

    // The requests whose lines the tests look at, in this order.
    const okta = await auth(http.get('/Users')).set('User-Agent', 'Okta SCIM Client 1.0.0');
    expect(okta.status).toBe(200);
    made++;
    const created = await json(auth(http.post('/Users')).set('User-Agent', 'Azure AD SCIM Client'), {
      schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'],
      userName: FILTER_VALUE,
      password: PASSWORD,
      title: BODY_MARKER,
      name: { givenName: 'Log', familyName: 'Test' },
    });
    expect(created.status).toBe(201);
    userId = created.body.id;
    made++;
    const filtered = await auth(http.get('/Users')).query({ filter: `userName eq "${FILTER_VALUE}"` }).set('User-Agent', 'JumpCloud SCIM');
    expect(filtered.status).toBe(200);
    expect(filtered.body.totalResults).toBe(1);
    made++;
    const wrong = await http.get('/Users').set('Authorization', `Bearer ${WRONG_TOKEN}`).set('User-Agent', 'Okta SCIM Client 1.0.0');
    expect(wrong.status).toBe(401);
    made++;
    const patched = await json(auth(http.patch(`/Users/${userId}`)), {
      schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'],
      Operations: [{ op: 'replace', value: { password: PASSWORD, nickName: BODY_MARKER } }],
    });
    expect(patched.status).toBe(200);
    made++;
    const badJson = await auth(http.post('/Users')).set('Content-Type', 'application/json').send(`{"password": "${PASSWORD}", "title": "${BODY_MARKER}"`);
    expect(badJson.status).toBe(400);
    made++;
    const badValue = await json(auth(http.post('/Users')), { userName: `${BODY_MARKER}@example.com`, active: 'maybe', password: PASSWORD });
    expect(badValue.status).toBe(400);
    made++;
    const health = await http.get('/healthz');
    expect(health.status).toBe(200);
    made++;
    await waitForRequestLines(made);
  });

  afterAll(async () => {
    await bridge.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('when requests are made, then every line written is one JSON object and nothing is left half-written', () => {
    expect(sink.lines.length).toBeGreaterThan(0);
    for (const line of sink.lines) {
      expect(line.trim().startsWith('{')).toBe(true);
      expect(() => JSON.parse(line)).not.toThrow();
    }
    expect(sink.pending).toBe('');
  });

  it('when requests are made, then there is exactly one request line per request, in order', () => {
    const lines = requestLines();
    expect(lines).toHaveLength(made);
    expect(lines.map((l) => `${l.method} ${l.path} ${l.status}`)).toEqual([
      'GET /Users 200',
      'POST /Users 201',
      'GET /Users 200',
      'GET /Users 401',
      `PATCH /Users/${userId} 200`,
      'POST /Users 400',
      'POST /Users 400',
      'GET /healthz 200',
    ]);
  });

  it('when a request is logged, then the line has method, path, status, a duration in ms and the IdP', () => {
    for (const l of requestLines()) {
      expect(typeof l.method).toBe('string');
      expect(typeof l.path).toBe('string');
      expect(l.path.startsWith('/')).toBe(true);
      expect(Number.isInteger(l.status)).toBe(true);
      expect(typeof l.ms).toBe('number');
      expect(Number.isFinite(l.ms)).toBe(true);
      expect(l.ms).toBeGreaterThanOrEqual(0);
      expect(l.ms).toBeLessThan(10_000);
      expect(typeof l.idp).toBe('string');
      expect(l.idp.length).toBeGreaterThan(0);
    }
  });

  it('when the User-Agent is an IdP\'s, then the line names the IdP', () => {
    const lines = requestLines();
    expect(lines[0].idp).toBe('okta');
    expect(lines[1].idp).toBe('entra');
    expect(lines[2].idp).toBe('jumpcloud');
    expect(lines[3].idp).toBe('okta');
  });

  it('when a filter is sent, then the path is logged without the query string', () => {
    const line = requestLines()[2];
    expect(line.path).toBe('/Users');
    expect(JSON.stringify(line)).not.toContain('filter=');
  });

  it('when the token (right or wrong) is sent, then no line contains it or its hash', () => {
    const { createHash } = require('node:crypto') as typeof import('node:crypto');
    const all = sink.lines.join('\n');
    expect(all).not.toContain(TOKEN);
    expect(all).not.toContain(WRONG_TOKEN);
    expect(all).not.toContain(createHash('sha256').update(TOKEN).digest('hex'));
    expect(all.toLowerCase()).not.toContain('bearer');
  });

  it('when a password is sent in a body (POST, PATCH, malformed JSON), then no line contains it', () => {
    expect(sink.lines.join('\n')).not.toContain(PASSWORD);
  });

  it('when a request has a body, then no line contains any of the body', () => {
    const all = sink.lines.join('\n');
    expect(all).not.toContain(BODY_MARKER);
    expect(all).not.toContain('"userName"');
    expect(all).not.toContain('Operations');
  });

  it('when a request fails inside the bridge or in body parsing, then no line carries the body, the password or the token', async () => {
    const before = requestLines().length;
    const secret = 'Err0r-path-Pa55word-9b8c7d';
    const marker = 'error-path-body-marker-3c4d5e';
    const deep = '['.repeat(50_000) + ']'.repeat(50_000);
    // A value nested deep enough to trouble the bridge, beside a password and a marker.
    const r1 = await auth(http.post('/Users')).set('Content-Type', 'application/scim+json').send(`{"userName":"${marker}@example.com","password":"${secret}","title":${deep}}`);
    // A body that is not JSON, and one that is too large.
    const r2 = await auth(http.post('/Users')).set('Content-Type', 'application/scim+json').send(`{"password":"${secret}","title":"${marker}"`);
    const r3 = await auth(http.post('/Users')).set('Content-Type', 'application/scim+json').send(JSON.stringify({ userName: `${marker}@example.com`, password: secret, title: marker.repeat(40_000) }));
    expect(r1.status).toBeGreaterThanOrEqual(400);
    expect(r2.status).toBe(400);
    expect(r3.status).toBe(413);
    await waitForRequestLines(before + 3);
    expect(requestLines().slice(before).map((l) => l.status)).toEqual([r1.status, 400, 413]);
    const all = sink.lines.join('\n');
    expect(all).not.toContain(secret);
    expect(all).not.toContain(marker);
    expect(all).not.toContain(TOKEN);
    expect(all).not.toContain('[[[[');
  });

  it('when more requests are made, then the line count grows by exactly one per request', async () => {
    const before = requestLines().length;
    for (let i = 0; i < 5; i++) await auth(http.get(`/Users/${userId}`)).expect(200);
    await auth(http.get('/Groups/does-not-exist')).expect(404);
    const lines = await waitForRequestLines(before + 6);
    // Give a stray duplicate line the time to show up before counting.
    await new Promise((r) => setTimeout(r, 50));
    expect(requestLines()).toHaveLength(before + 6);
    expect(lines[before + 5]).toMatchObject({ method: 'GET', path: '/Groups/does-not-exist', status: 404 });
  });
});
