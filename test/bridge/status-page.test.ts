/**
 * The status page (issue 16) in a real browser: Debian's chromium driven by playwright-core (TEST-PEERS.md). An
 * operator signs in with the bearer token, sees the bridge's figures change as an IdP provisions, is refused with a
 * wrong token, and the page runs under its Content Security Policy (no 'unsafe-inline') without a violation. The
 * screenshot is kept in test-artifacts/status-page.png.
 */
import { once } from 'node:events';
import { existsSync, mkdirSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join, resolve } from 'node:path';
import { Browser, chromium, ConsoleMessage, Page } from 'playwright-core';
import { GROUP_SCHEMA, startBridge, TestBridge, TOKEN, userBody } from '../helpers/bridge';
import { serviceAccountKey, StandInGoogle } from '../helpers/google';

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = resolve(__dirname, '../../test-artifacts');
const OKTA = 'Okta SCIM Client 1.0.0';
const KEY = 'scim-bridge-token';

jest.setTimeout(90_000);

describe('the status page in chromium', () => {
  let b: TestBridge;
  let browser: Browser;
  let page: Page;
  const consoleMessages: ConsoleMessage[] = [];
  const pageErrors: Error[] = [];
  const requested: string[] = [];
  // The application's webhook: it takes every event but a group's creation, which it refuses for good (a dead letter).
  const receiver = http.createServer((req, res) => {
    let raw = '';
    req.on('data', (c) => (raw += c));
    req.on('end', () => res.writeHead(JSON.parse(raw).type === 'group.created' ? 410 : 200).end());
  });

  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) {
      throw new Error(`${CHROMIUM} is missing: the status page test needs Debian's chromium (test/setup.sh installs it: apt-get install chromium)`);
    }
    receiver.listen(0, '127.0.0.1');
    await once(receiver, 'listening');
    b = await startBridge(
      { SCIM_BRIDGE_WEBHOOK_URL: `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/events`, SCIM_BRIDGE_WEBHOOK_SECRET: 'webhook-secret-0123456789abcdef' },
      { delivery: { baseDelayMs: 20, maxDelayMs: 50, pollMs: 20 }, observe: { statsMaxAgeMs: 0 } },
    );
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    page = await (await browser.newContext({ viewport: { width: 1100, height: 900 } })).newPage();
    page.on('console', (m) => consoleMessages.push(m));
    page.on('pageerror', (e) => pageErrors.push(e));
    page.on('request', (r) => requested.push(r.url()));
  });
  afterAll(async () => {
    await browser?.close();
    await b?.stop();
    receiver.close();
  });

  const text = (id: string) => page.locator(`#${id}`).innerText();
  /**
   * What runs in the page is a function (never source text: the page's CSP forbids eval, and Playwright would need
   * it); it reaches the page's globals through `globalThis`, as the tests are type-checked without the DOM's types.
   * Playwright sends its source to the page: it may use nothing of this file.
   */
  /** Waits until the element shows exactly `value` (the page polls on its own, or after a click on Refresh). */
  const shows = (id: string, value: string, timeout = 5_000) =>
    page.waitForFunction(([i, v]) => (globalThis as any).document.getElementById(i).textContent === v, [id, value], { timeout });
  const showsMatching = (id: string, pattern: RegExp, timeout = 15_000) =>
    page.waitForFunction(([i, source]) => new RegExp(source).test((globalThis as any).document.getElementById(i).textContent), [id, pattern.source], { timeout });
  const storedToken = () => page.evaluate((key) => (globalThis as any).sessionStorage.getItem(key), KEY);
  const violations = () => consoleMessages.filter((m) => /Content Security Policy/i.test(m.text()));

  it('when an operator opens the page, then it is plain HTML under a policy that allows only its own files, nothing inline', async () => {
    const res = await page.goto(`${b.url}/`);
    expect(res!.status()).toBe(200);
    expect(res!.headers()['content-type']).toMatch(/^text\/html/);
    const csp = res!.headers()['content-security-policy'];
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("style-src 'self'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).not.toContain('unsafe-inline');
    expect(csp).not.toContain('unsafe-eval');
    await page.locator('#sign-in').waitFor({ state: 'visible' });
    expect(await page.locator('#dashboard').isVisible()).toBe(false);
    // Without the token, the page shows no figure at all.
    expect(await text('users-invited')).toBe('-');
  });

  it('when the token is wrong, then the page says it was refused, keeps nothing and shows no figure', async () => {
    await page.fill('#token', 'a-wrong-token-0123456789abcdef');
    await page.click('#sign-in button[type=submit]');
    await page.locator('#refusal').waitFor({ state: 'visible' });
    expect(await text('refusal')).toMatch(/Refused: the bridge does not accept this token \(401\)/);
    expect(await page.locator('#dashboard').isVisible()).toBe(false);
    expect(await storedToken()).toBeNull();
  });

  it('when the right token is given, then the figures show, and the token is kept in the tab\'s sessionStorage only', async () => {
    await page.fill('#token', TOKEN);
    await page.click('#sign-in button[type=submit]');
    await page.locator('#dashboard').waitFor({ state: 'visible' });
    expect(await page.locator('#refusal').isVisible()).toBe(false);
    expect(await text('health')).toBe('ok');
    expect(await text('version')).toMatch(/^\d+\.\d+\.\d+/);
    expect(await text('users-invited')).toBe('0');
    expect(await text('groups')).toBe('0');
    expect(await text('webhook')).toBe('on');
    expect(await text('dead-letters')).toBe('0');
    expect(await text('idps')).toMatch(/No identity provider has called yet/);
    // No connector configured: no Google Workspace section.
    expect(await page.locator('#google').isVisible()).toBe(false);
    const storage = await page.evaluate(() => ({ session: { ...(globalThis as any).sessionStorage }, local: { ...(globalThis as any).localStorage }, cookie: (globalThis as any).document.cookie }));
    expect(storage).toEqual({ session: { [KEY]: TOKEN }, local: {}, cookie: '' });
    // The token never travels in a URL.
    expect(requested.filter((u) => u.includes(TOKEN))).toEqual([]);
  });

  it('when an IdP provisions, then the figures, its last request and the recent errors change, without personal data', async () => {
    const one = (await b.post('/Users', userBody('status.one@example.com')).set('User-Agent', OKTA).expect(201)).body;
    await b.post('/Users', userBody('status.two@example.com')).set('User-Agent', OKTA).expect(201);
    await b.join(one.id);
    await b.post('/Groups', { schemas: [GROUP_SCHEMA], displayName: 'Status watchers' }).set('User-Agent', OKTA).expect(201);
    await b.post('/Users', userBody('status.two@example.com')).set('User-Agent', OKTA).expect(409);

    await page.click('#refresh');
    await shows('groups', '1');
    expect(await text('users-invited')).toBe('1');
    expect(await text('users-active')).toBe('1');
    expect(await text('users-suspended')).toBe('0');
    const idps = await text('idps');
    expect(idps).toContain('okta');
    expect(idps).toContain('POST /Users');
    expect(idps).toContain('409');
    const errors = await text('errors');
    expect(errors).toContain('POST /Users');
    expect(errors).toContain('uniqueness');
    // Delivery: the users' events delivered, the group's a dead letter, nothing left waiting.
    // (The dead letter is written, then counted: one refresh may show the one without the other.)
    await shows('dead-letters', '1', 15_000);
    await showsMatching('deliveries', /^[1-9]\d* delivered, 0 failed, 1 dead letter$/);
    expect(await text('pending')).toBe('0 events');
    expect(await text('lag')).toBe('0 s');
    const body = await page.locator('body').innerText();
    expect(body).not.toContain('status.two@example.com');
    expect(body).not.toContain(one.id);
  });

  it('when the figures change again, then the page follows by itself (it polls every few seconds)', async () => {
    await b.post('/Users', userBody('status.three@example.com')).set('User-Agent', OKTA).expect(201);
    await shows('users-invited', '2', 15_000);
  });

  it('when the page is reloaded in the same tab, then it is still signed in; the screenshot is kept', async () => {
    await page.reload();
    await page.locator('#dashboard').waitFor({ state: 'visible' });
    await shows('users-invited', '2');
    mkdirSync(ARTIFACTS, { recursive: true });
    const path = join(ARTIFACTS, 'status-page.png');
    await page.screenshot({ path, fullPage: true });
    expect(existsSync(path)).toBe(true);
  });

  it('when the page ran, then it loaded only its own origin\'s files and reported no CSP violation or script error', async () => {
    expect(requested.length).toBeGreaterThan(0);
    for (const url of requested) expect(url.startsWith(`${b.url}/`)).toBe(true);
    expect(violations().map((m) => m.text())).toEqual([]);
    expect(pageErrors).toEqual([]);
    // The only error the console saw is the refused sign-in (the browser logs a 401 it fetched).
    const errors = consoleMessages.filter((m) => m.type() === 'error').map((m) => m.text());
    for (const e of errors) expect(e).toMatch(/status of 401/);
  });

  it('when something inline tries to run, then the policy refuses it and the console says so (the check above can see a violation)', async () => {
    await page.evaluate(() => {
      const s = (globalThis as any).document.createElement('script');
      s.textContent = 'document.title = "inline ran"';
      (globalThis as any).document.body.appendChild(s);
    });
    for (let i = 0; i < 40 && violations().length === 0; i++) await page.waitForTimeout(25);
    expect(violations().length).toBeGreaterThan(0);
    expect(await page.title()).toBe('scim-bridge status');
  });

  it('when the operator signs out, then the token leaves the tab and the sign-in form is back', async () => {
    await page.click('#sign-out');
    await page.locator('#sign-in').waitFor({ state: 'visible' });
    expect(await storedToken()).toBeNull();
    expect(await page.locator('#dashboard').isVisible()).toBe(false);
  });
});

/**
 * The Google Workspace connector's sync (DESIGN.md, "Connectors": the last sync, its counts and its error show on
 * /health, the status page and /metrics): a bridge syncing from the stand-in Google, once well, once refused.
 */
describe('the Google Workspace sync on the status page, /status.json and /metrics', () => {
  const ADMIN = 'admin@acme.example';
  const KEY_ = serviceAccountKey();
  let google: StandInGoogle;
  let b: TestBridge;
  let browser: Browser;
  let page: Page;
  const pageErrors: Error[] = [];

  beforeAll(async () => {
    google = await new StandInGoogle(KEY_, ADMIN).start();
    google.addUser('101', 'ada.lovelace@acme.example');
    google.addUser('102', 'alan.turing@acme.example');
    google.addGroup('g1', 'staff@acme.example', 'Staff', ['101', '102']);
    b = await startBridge(
      {
        SCIM_BRIDGE_GOOGLE_CREDENTIALS: KEY_.json,
        SCIM_BRIDGE_GOOGLE_ADMIN: ADMIN,
        SCIM_BRIDGE_GOOGLE_GROUPS: 'staff@acme.example',
        SCIM_BRIDGE_GOOGLE_API_URL: google.url,
        SCIM_BRIDGE_GOOGLE_TOKEN_URL: google.tokenUrl,
      },
      { google: { timings: { retryBaseDelayMs: 10, retryMaxDelayMs: 20, maxAttempts: 2 }, schedule: false }, observe: { statsMaxAgeMs: 0 } },
    );
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'] });
    page = await (await browser.newContext({ viewport: { width: 1100, height: 900 } })).newPage();
    page.on('pageerror', (e) => pageErrors.push(e));
  });
  afterAll(async () => {
    await browser?.close();
    await b?.stop();
    await google?.stop();
  });

  const metric = (body: string, line: RegExp) => body.split('\n').find((l) => line.test(l));
  const text = (id: string) => page.locator(`#${id}`).innerText();

  it('when a sync has run, then /status.json and /metrics show its time, counts and result', async () => {
    const before = (await b.get('/status.json').expect(200)).body;
    expect(before.connectors.google).toMatchObject({ state: 'starting', lastSync: null, lastSuccessAt: null });
    const zero = (await b.get('/metrics').expect(200)).text;
    expect(metric(zero, /^scim_bridge_connector_syncs_total\{connector="google",result="failed"\} /)).toMatch(/ 0$/);

    expect(await b.bridge.google!.syncNow()).toMatchObject({ ok: true });
    const status = (await b.get('/status.json').expect(200)).body;
    const g = status.connectors.google;
    expect(g).toMatchObject({ state: 'ok', lastSync: { ok: true, counts: { users: 2, usersCreated: 2, groupsCreated: 1, membersAdded: 2 } } });
    expect(Date.parse(g.lastSync.finishedAt)).toBeGreaterThan(Date.now() - 60_000);
    expect(g.lastSuccessAt).toBe(g.lastSync.finishedAt);
    // The key never shows.
    expect(JSON.stringify(status)).not.toContain('PRIVATE KEY');

    const body = (await b.get('/metrics').expect(200)).text;
    expect(metric(body, /^scim_bridge_connector_syncs_total\{connector="google",result="ok"\} /)).toMatch(/ 1$/);
    expect(metric(body, /^scim_bridge_connector_last_sync_ok\{connector="google"\} /)).toMatch(/ 1$/);
    expect(metric(body, /^scim_bridge_connector_last_sync_changes\{connector="google",count="usersCreated"\} /)).toMatch(/ 2$/);
    expect(metric(body, /^scim_bridge_connector_standby\{connector="google"\} /)).toMatch(/ 0$/);
    const success = Number(metric(body, /^scim_bridge_connector_last_success_timestamp_seconds\{connector="google"\} /)!.split(' ').pop());
    expect(success).toBeCloseTo(Date.parse(g.lastSuccessAt) / 1000, 0);
  });

  it('when the page is open, then its Google Workspace section shows the last sync and what it changed', async () => {
    await page.goto(`${b.url}/`);
    await page.fill('#token', TOKEN);
    await page.click('#sign-in button[type=submit]');
    await page.locator('#google').waitFor({ state: 'visible' });
    expect(await text('google-state')).toBe('ok');
    expect(await text('google-result')).toBe('ok');
    expect(await text('google-changes')).toBe('2 users in 1 group: 2 created, 0 updated, 0 deprovisioned, 2 members added, 0 removed');
    expect(await text('google-last')).not.toBe('-');
  });

  it('when a sync fails, then its error shows on the page, /status.json and /metrics; the last success stays', async () => {
    const succeededAt = (await b.get('/status.json').expect(200)).body.connectors.google.lastSuccessAt;
    // The delegation was withdrawn: the token endpoint refuses.
    google.expireTokens();
    google.fault = (req) => (req.path === '/token' ? { status: 401, body: { error: 'unauthorized_client', error_description: 'Client is unauthorized' } } : undefined);
    const report = await b.bridge.google!.syncNow();
    expect(report).toMatchObject({ ok: false, error: expect.stringContaining('unauthorized_client') });
    const g = (await b.get('/status.json').expect(200)).body.connectors.google;
    expect(g).toMatchObject({ state: 'failed', lastSync: { ok: false, error: expect.stringContaining('unauthorized_client') }, lastSuccessAt: succeededAt });
    const body = (await b.get('/metrics').expect(200)).text;
    expect(metric(body, /^scim_bridge_connector_syncs_total\{connector="google",result="failed"\} /)).toMatch(/ 1$/);
    expect(metric(body, /^scim_bridge_connector_last_sync_ok\{connector="google"\} /)).toMatch(/ 0$/);
    await page.click('#refresh');
    await page.waitForFunction(() => (globalThis as any).document.getElementById('google-state').textContent === 'failed', undefined, { timeout: 10_000 });
    expect(await text('google-result')).toMatch(/^failed: .*unauthorized_client/);
    expect(await page.locator('#google-result').getAttribute('class')).toBe('bad');
    expect(pageErrors).toEqual([]);
  });
});
