/**
 * The VM host's TLS, end to end and for real: the production Caddyfile (infra/host/caddy.ts, unchanged)
 * runs in the real Caddy, which gets its certificate from pebble over ACME; pebble validates the challenge
 * against Caddy's own listeners (pebble-challtestsrv resolves every name to 127.0.0.1; no ALWAYS_VALID), and
 * a client that trusts only pebble's root reaches the real bridge through Caddy. Then Caddy restarts on the
 * same storage and must serve the same certificate without ordering another one.
 *
 * Needs caddy, pebble and pebble-challtestsrv on PATH (test/setup.sh installs them); fails without them.
 */
import { X509Certificate } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { renderCaddyfile } from '../../infra/host/caddy';
import { startBridge, TestBridge, TOKEN, USER_SCHEMA } from '../helpers/bridge';
import {
  freePort,
  GiveUp,
  httpRequest,
  httpsRequest,
  ManagedProcess,
  parsePemChain,
  Pebble,
  poll,
  requireBinaries,
  sameSerial,
  sleep,
  startCaddy,
  startPebble,
  stopAllProcesses,
  TlsResponse,
} from '../helpers/pebble';

const DOMAIN = 'scim.test';
const ACME_EMAIL = 'tls-test@example.com';
const HSTS = 'max-age=31536000';

let dir: string | undefined;
let pebble: Pebble | undefined;
let bridge: TestBridge | undefined;
/** Every Caddy started, in order (kept after they exit, for their output). */
const caddyRuns: ManagedProcess[] = [];
let httpPort = 0;
let httpsPort = 0;
let caddyfile = '';
let storageDir = '';
let caddyHome = '';

/** Everything the processes printed, for failure messages. */
function logs(): string {
  return (pebble?.describe() ?? '') + caddyRuns.map((c) => c.describe()).join('');
}

/** Runs `fn`; a failure carries the processes' output. */
async function withLogs<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    const text = err instanceof Error ? (err.stack ?? err.message) : String(err);
    throw new Error(`${text}\n${logs()}`);
  }
}

const currentCaddy = () => caddyRuns[caddyRuns.length - 1];

function https(path: string, init: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<TlsResponse> {
  return httpsRequest({ port: httpsPort, hostname: DOMAIN, ca: pebble!.rootPem, path, ...init });
}

/** Polls until the running Caddy completes a TLS handshake for DOMAIN that chains to pebble's root. */
function waitForCertificate(timeoutMs = 30_000): Promise<TlsResponse> {
  const caddy = currentCaddy();
  return poll(`${caddy.name} to serve a certificate for ${DOMAIN} from pebble`, timeoutMs, 100, async () => {
    if (caddy.exitStatus) throw new GiveUp(`${caddy.name} exited`);
    return https('/healthz');
  });
}

beforeAll(
  () =>
    withLogs(async () => {
      requireBinaries('caddy', 'pebble', 'pebble-challtestsrv', 'openssl');
      dir = mkdtempSync(join(tmpdir(), 'scim-bridge-tls-'));
      httpPort = await freePort();
      httpsPort = await freePort();
      pebble = await startPebble({ dir: join(dir, 'pebble'), httpPort, tlsPort: httpsPort });
      // As on a host: behind Caddy, the bridge trusts the proxy's X-Forwarded-* (README: "behind a
      // TLS-terminating gateway"), or every client would share Caddy's address in its failed-auth limiter.
      bridge = await startBridge({ SCIM_BRIDGE_TRUST_PROXY: 'true' });
      storageDir = join(dir, 'caddy-storage');
      caddyHome = join(dir, 'caddy-home');
      caddyfile = join(dir, 'Caddyfile');
      writeFileSync(
        caddyfile,
        renderCaddyfile({
          domain: DOMAIN,
          upstream: new URL(bridge.url).host,
          acmeEmail: ACME_EMAIL,
          acmeDirectory: pebble.directory,
          acmeCaRootFile: pebble.listener.caFile,
          storageDir,
          httpPort,
          httpsPort,
          bind: '127.0.0.1',
          admin: `127.0.0.1:${await freePort()}`,
        }),
      );
      caddyRuns.push(await startCaddy('caddy', caddyfile, caddyHome));
      await waitForCertificate();
    }),
  60_000,
);

afterAll(async () => {
  // Each step on its own: one failing does not leave the others running.
  for (const caddy of caddyRuns) await caddy.stop().catch(() => undefined);
  await pebble?.stop().catch(() => undefined);
  await stopAllProcesses().catch(() => undefined);
  await bridge?.stop().catch(() => undefined);
  if (dir) rmSync(dir, { recursive: true, force: true });
}, 30_000);

describe('Caddy in front of the bridge, with a certificate from a real ACME CA (pebble)', () => {
  test('serves the bridge over HTTPS with a certificate pebble issued for the domain after validating a challenge', () =>
    withLogs(async () => {
      const res = await https('/healthz');
      expect(res.status).toBe(200);
      expect(res.body).toBe('ok');

      // Node trusted only pebble's root (this start's) and verified the chain and the name during the handshake.
      expect(res.authorized).toBe(true);
      const cert = res.certificate;
      expect(cert.subjectAltName).toBe(`DNS:${DOMAIN}`);
      expect(cert.checkHost(DOMAIN)).toBe(DOMAIN);
      expect(cert.checkIssued(pebble!.intermediate)).toBe(true);
      expect(cert.verify(pebble!.intermediate.publicKey)).toBe(true);
      expect(pebble!.intermediate.checkIssued(pebble!.root)).toBe(true);
      expect(pebble!.intermediate.verify(pebble!.root.publicKey)).toBe(true);
      expect(new Date(cert.validTo).getTime()).toBeGreaterThan(Date.now());

      // Exactly one order, and the certificate it produced is the one served.
      const issued = pebble!.issued();
      expect(issued).toHaveLength(1);
      expect(sameSerial(issued[0].serial, cert.serialNumber)).toBe(true);
      expect(pebble!.orders()).toEqual([issued[0].order]);
      const status = await pebble!.certificateStatus(issued[0].serial);
      expect(status.Status).toBe('Valid');
      expect(new X509Certificate(status.Certificate).fingerprint256).toBe(cert.fingerprint256);

      // Real validation: pebble runs without ALWAYS_VALID (and does not say it skips validation), its
      // validation authority set the authorization valid after a challenge, and Caddy logged answering that
      // challenge, the type it chose (Caddy picks HTTP-01 or TLS-ALPN-01 at random), on its own listener.
      expect(pebble!.env.PEBBLE_VA_ALWAYS_VALID).toBeUndefined();
      expect(pebble!.pebble.output()).not.toMatch(/ALWAYS_VALID|always returns valid/);
      expect(pebble!.validatedAuthorizations()).toHaveLength(1);
      const caddyLog = caddyRuns[0].output();
      const chosen = /"msg":"trying to solve challenge","identifier":"scim\.test","challenge_type":"(http-01|tls-alpn-01)"/.exec(caddyLog);
      expect(chosen).not.toBeNull();
      const served = [...caddyLog.matchAll(/"msg":"served key authentication[^"]*",[^\n]*"challenge":"([a-z0-9-]+)","remote":"127\.0\.0\.1:\d+"/g)];
      expect(served.length).toBeGreaterThan(0);
      expect(served.map((m) => m[1])).toEqual(served.map(() => chosen![1]));
      expect(caddyLog).toMatch(/"msg":"certificate obtained successfully","identifier":"scim\.test"/);
    }));

  test('proxies authenticated SCIM requests to the bridge', () =>
    withLogs(async () => {
      const scim = { Authorization: `Bearer ${TOKEN}`, Accept: 'application/scim+json' };
      const created = await https('/Users', {
        method: 'POST',
        headers: { ...scim, 'Content-Type': 'application/scim+json' },
        body: JSON.stringify({ schemas: [USER_SCHEMA], userName: 'tls@example.com' }),
      });
      expect({ status: created.status, body: created.body }).toMatchObject({ status: 201 });
      const user = JSON.parse(created.body);
      expect(user.userName).toBe('tls@example.com');
      expect(typeof user.id).toBe('string');
      // Caddy said the request came over HTTPS (X-Forwarded-Proto) and kept the Host: links are the public ones.
      expect(created.headers.location).toBe(`https://${DOMAIN}:${httpsPort}/Users/${user.id}`);
      expect(user.meta.location).toBe(created.headers.location);

      const filter = encodeURIComponent('userName eq "tls@example.com"');
      const found = await https(`/Users?filter=${filter}`, { headers: scim });
      expect({ status: found.status, body: found.body }).toMatchObject({ status: 200 });
      const list = JSON.parse(found.body);
      expect(list.totalResults).toBe(1);
      expect(list.Resources.map((r: { id: string; userName: string }) => [r.id, r.userName])).toEqual([[user.id, 'tls@example.com']]);

      // Without the token, the bridge (not Caddy) refuses.
      const anonymous = await https(`/Users?filter=${filter}`);
      expect(anonymous.status).toBe(401);

      // Caddy keeps no access log (the bridge logs requests without their query strings): neither the token
      // nor a filter's email address reaches Caddy's output.
      const caddyLog = caddyRuns.map((c) => c.output()).join('');
      expect(caddyLog).not.toContain('"uri":"/Users');
      expect(caddyLog).not.toContain(TOKEN);
      expect(caddyLog).not.toContain('tls@example.com');
    }));

  test('a body over the bridge\'s limit gets the bridge\'s own SCIM 413, not a cut stream', () =>
    withLogs(async () => {
      const big = JSON.stringify({ schemas: [USER_SCHEMA], userName: 'big@example.com', title: 'x'.repeat(3 * 1024 * 1024) });
      const res = await https('/Users', {
        method: 'POST',
        headers: { Authorization: `Bearer ${TOKEN}`, 'Content-Type': 'application/scim+json' },
        body: big,
      });
      expect(res.status).toBe(413);
      expect(JSON.parse(res.body)).toMatchObject({ schemas: ['urn:ietf:params:scim:api:messages:2.0:Error'], status: '413' });
    }));

  test('adds Strict-Transport-Security and sends no Server header', () =>
    withLogs(async () => {
      const names = (raw: string[], name: string) => raw.filter((h, i) => i % 2 === 0 && h.toLowerCase() === name);
      for (const res of [await https('/healthz'), await https('/Users'), await https('/Users', { headers: { Authorization: `Bearer ${TOKEN}` } })]) {
        // Exactly one: the bridge sets the same header itself on requests it trusts came over HTTPS, and
        // Caddy's (deferred) header directive replaces it rather than adding a second one.
        expect(names(res.rawHeaders, 'strict-transport-security')).toHaveLength(1);
        expect(res.headers['strict-transport-security']).toBe(HSTS);
        expect(names(res.rawHeaders, 'server')).toEqual([]);
      }
    }));

  test('a client cannot dodge the failed-token limiter by sending its own X-Forwarded-For', () =>
    withLogs(async () => {
      // The bridge trusts X-Forwarded-For (trust proxy), so this holds only because Caddy replaces what an
      // untrusted client sends with the client's real address: 30 failures a minute per address, then 429.
      // (61 tries: enough even if the limiter's one-minute window restarts once during the loop.)
      const statuses: number[] = [];
      for (let i = 1; i <= 61 && !statuses.includes(429); i++) {
        const res = await https('/Users', { headers: { Authorization: 'Bearer wrong-token-0123456789', 'X-Forwarded-For': `203.0.113.${i}` } });
        statuses.push(res.status);
      }
      expect(statuses.filter((s) => s !== 401 && s !== 429)).toEqual([]);
      expect(statuses).toContain(429);
      // A good token never meets the limiter.
      expect((await https('/Users', { headers: { Authorization: `Bearer ${TOKEN}` } })).status).toBe(200);
    }));

  test('redirects plain HTTP to HTTPS', () =>
    withLogs(async () => {
      const res = await httpRequest({ port: httpPort, hostname: DOMAIN, path: '/healthz?probe=1' });
      expect(res.status).toBe(308);
      // Caddy leaves the port out of the redirect when it is the configured https_port: that port stands
      // for 443 (what it is on a host), so the Location is exactly what a client of a real host gets.
      expect(res.headers.location).toBe(`https://${DOMAIN}/healthz?probe=1`);
    }));

  test('keeps the certificate, its key and the ACME account in storageDir', () =>
    withLogs(async () => {
      const served = (await https('/healthz')).certificate;
      // Caddy names the issuer's directory after the ACME directory URL: host-port-path.
      const acme = new URL(pebble!.directory);
      const issuer = `${acme.hostname}-${acme.port}${acme.pathname.replace(/\//g, '-')}`;
      expect(readdirSync(join(storageDir, 'certificates'))).toEqual([issuer]);
      const site = join(storageDir, 'certificates', issuer, DOMAIN);
      expect(readdirSync(site).sort()).toEqual([`${DOMAIN}.crt`, `${DOMAIN}.json`, `${DOMAIN}.key`]);
      const chain = parsePemChain(readFileSync(join(site, `${DOMAIN}.crt`), 'utf8'));
      expect(chain.map((c) => c.fingerprint256)).toEqual([served.fingerprint256, pebble!.intermediate.fingerprint256]);
      expect(readFileSync(join(site, `${DOMAIN}.key`), 'utf8')).toMatch(/^-----BEGIN (EC |RSA )?PRIVATE KEY-----/);
      expect(existsSync(join(storageDir, 'acme', issuer, 'users', ACME_EMAIL))).toBe(true);
    }));

  test('after a restart on the same storage, serves the same certificate and orders nothing', () =>
    withLogs(async () => {
      const before = (await https('/healthz')).certificate;
      const orders = pebble!.orders().length;
      const issued = pebble!.issued().length;
      expect(orders).toBe(1);

      const first = currentCaddy();
      // Caddy shuts down cleanly on SIGTERM (what the host's service manager sends), with exit code 0.
      expect(await first.stop()).toEqual({ code: 0, signal: null });
      await expect(https('/healthz')).rejects.toThrow();

      caddyRuns.push(await startCaddy('caddy (restarted)', caddyfile, caddyHome));
      const after = await waitForCertificate(15_000);
      expect(after.status).toBe(200);
      expect(after.certificate.serialNumber).toBe(before.serialNumber);
      expect(after.certificate.fingerprint256).toBe(before.fingerprint256);

      // An order the restart started would reach pebble within milliseconds (the first took well under
      // one second end to end); give it a moment, then check that none came.
      await sleep(750);
      expect(pebble!.orders()).toHaveLength(orders);
      expect(pebble!.issued()).toHaveLength(issued);
      expect(currentCaddy().output()).not.toMatch(/"msg":"obtaining certificate"/);
      expect(pebble!.pebble.output().match(/POST \/order-plz/g)).toHaveLength(1);
    }),
  30_000);
});
