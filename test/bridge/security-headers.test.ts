/**
 * Security headers on every response (issue 13): nothing the API answers may load anything or be framed, so each
 * response carries `Content-Security-Policy: default-src 'none'; frame-ancestors 'none'`, errors, 404s, 429s
 * and /healthz included, beside nosniff, no-store and X-Frame-Options.
 */
import request from 'supertest';
import { startBridge, TestBridge, userBody } from '../helpers/bridge';

const CSP = "default-src 'none'; frame-ancestors 'none'";

describe('security headers', () => {
  let b: TestBridge;
  beforeAll(async () => {
    b = await startBridge();
  });
  afterAll(() => b.stop());

  const cases: Array<[string, () => request.Test, number]> = [
    ['GET /healthz', () => b.anonymous().get('/healthz'), 200],
    ['GET /Users with the token', () => b.get('/Users'), 200],
    ['GET /scim/v2/ServiceProviderConfig', () => b.get('/scim/v2/ServiceProviderConfig'), 200],
    ['POST /Users (201)', () => b.post('/Users', userBody('csp.user@example.com')), 201],
    ['GET /health', () => b.get('/health'), 200],
    ['GET /Users without a token (401)', () => b.anonymous().get('/Users'), 401],
    ['an unknown endpoint (404)', () => b.get('/no-such-endpoint'), 404],
    ['an unknown endpoint without a token (401)', () => b.anonymous().get('/no-such-endpoint'), 401],
    ['an unknown user (404)', () => b.get('/Users/00000000-0000-4000-8000-000000000000'), 404],
    ['a bad filter (400)', () => b.get('/Users').query({ filter: 'userName eq' }), 400],
    ['a body that is not JSON (400)', () => b.post('/Users').set('Content-Type', 'application/scim+json').send('{'), 400],
    ['a body of the wrong type (415)', () => b.post('/Users').set('Content-Type', 'text/plain').send('x'), 415],
    ['a bad Host (400)', () => b.get('/Users').set('Host', 'evil.example.com/<x>'), 400],
    ['the application API (200)', () => b.app.get('/api/v1/events'), 200],
    ['the application API without its token (401)', () => b.anonymous().get('/api/v1/events'), 401],
    ['an unknown application endpoint (404)', () => b.app.get('/api/v1/nothing'), 404],
    ['GET /metrics', () => b.get('/metrics'), 200],
    ['GET /metrics without a token (401)', () => b.anonymous().get('/metrics'), 401],
    ["GET /status.json (the status page's figures)", () => b.get('/status.json'), 200],
    ["the status page's script", () => b.anonymous().get('/status.js'), 200],
    ["the status page's stylesheet", () => b.anonymous().get('/status.css'), 200],
  ];

  it.each(cases)('when %s, then the response carries the CSP and the other security headers', async (_what, send, status) => {
    const res = await send();
    expect(res.status).toBe(status);
    expect(res.headers['content-security-policy']).toBe(CSP);
    expect(res.headers['x-content-type-options']).toBe('nosniff');
    expect(res.headers['x-frame-options']).toBe('DENY');
    expect(res.headers['cache-control']).toMatch(/no-store/);
  });

  it('when the status page is served, then its policy allows its own script, stylesheet and icon, nothing inline, and it may not be framed', async () => {
    const res = await b.anonymous().get('/').expect(200);
    expect(res.headers['content-type']).toMatch(/^text\/html/);
    const csp = res.headers['content-security-policy'];
    expect(csp.split(/;\s*/)).toEqual(expect.arrayContaining(["default-src 'none'", "script-src 'self'", "style-src 'self'", "img-src 'self'", "connect-src 'self'", "frame-ancestors 'none'"]));
    expect(csp).not.toMatch(/unsafe-inline|unsafe-eval|\*|https?:|data:/);
    expect(res.headers['x-frame-options']).toBe('DENY');
    expect(res.headers['x-content-type-options']).toBe('nosniff');
    expect(res.headers['cache-control']).toMatch(/no-store/);
    // Nothing inline to allow: no <script> or <style> with content, no style or on* attributes.
    expect(res.text).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>|<style|\sstyle=|\son[a-z]+=/i);
  });

  it('when an address is rate-limited (429), then the response carries the CSP too', async () => {
    let res: request.Response | undefined;
    for (let i = 0; i < 40 && res?.status !== 429; i++) res = await b.anonymous().get('/Groups').set('Authorization', `Bearer wrong-${i}-000000000000000`);
    expect(res!.status).toBe(429);
    expect(res!.headers['content-security-policy']).toBe(CSP);
  });
});
