/**
 * `scim-bridge doctor` against a bridge deployed as on a VM host: the production Caddyfile in the real Caddy,
 * its certificate from pebble over ACME, the real bridge behind it. The good deployment passes every check
 * (exit 0); each broken variant fails (exit 1) with a line that names the fix: an expired certificate and one
 * for another name (served by a second Caddy with certificates from a test CA), a wrong token, a Base URL with
 * a trailing slash, plain http.
 *
 * Needs caddy, pebble, pebble-challtestsrv and openssl on PATH (test/setup.sh installs them); fails without them.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { renderCaddyfile } from '../../infra/host/caddy';
import { startBridge, TestBridge, TOKEN } from '../helpers/bridge';
import { CliRun, runCli } from '../helpers/cli';
import { freePort, GiveUp, httpsRequest, ManagedProcess, Pebble, poll, requireBinaries, startCaddy, startPebble, stopAllProcesses } from '../helpers/pebble';

const DOMAIN = 'scim.test';

let dir = '';
let pebble: Pebble | undefined;
let bridge: TestBridge | undefined;
const caddies: ManagedProcess[] = [];
/** The good deployment's port, and the broken ones' (a second Caddy, certificates from the test CA). */
let httpsPort = 0;
let expiredPort = 0;
let wrongNamePort = 0;
let pebbleRoot = '';
let testCa = '';
let tokenFile = '';

function logs(): string {
  return (pebble?.describe() ?? '') + caddies.map((c) => c.describe()).join('');
}

/**
 * A test CA and two leaf certificates from it, made with `openssl ca` (which can date a certificate in the past):
 * one for DOMAIN that expired in 2025, one valid today for another name.
 */
function makeBrokenCertificates(at: string): { caFile: string; expired: [string, string]; wrongName: [string, string] } {
  const openssl = (args: string[]) => execFileSync('openssl', args, { cwd: at, stdio: ['ignore', 'pipe', 'pipe'] });
  const config = (san: string) =>
    [
      '[ca]', 'default_ca = test_ca',
      '[test_ca]', 'dir = .', 'database = index.txt', 'new_certs_dir = .', 'serial = serial', 'default_md = sha256', 'policy = any', 'unique_subject = no',
      '[any]', 'commonName = supplied',
      '[req]', 'distinguished_name = dn', 'prompt = no',
      '[dn]', 'CN = scim-bridge doctor test CA',
      '[ca_ext]', 'basicConstraints = critical,CA:TRUE', 'keyUsage = critical,keyCertSign,cRLSign',
      '[leaf_ext]', 'basicConstraints = critical,CA:FALSE', 'keyUsage = critical,digitalSignature', 'extendedKeyUsage = serverAuth', `subjectAltName = DNS:${san}`,
      '',
    ].join('\n');
  writeFileSync(join(at, 'index.txt'), '');
  writeFileSync(join(at, 'serial'), '01\n');
  writeFileSync(join(at, 'right.cnf'), config(DOMAIN));
  writeFileSync(join(at, 'other.cnf'), config('other.test'));
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  openssl(['req', '-x509', '-config', 'right.cnf', '-extensions', 'ca_ext', ...ec, '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2']);
  const leaf = (name: string, cnf: string, cn: string, dates: string[]): [string, string] => {
    openssl(['req', '-new', ...ec, '-subj', `/CN=${cn}`, '-keyout', `${name}.key`, '-out', `${name}.csr`]);
    openssl(['ca', '-batch', '-config', cnf, '-extensions', 'leaf_ext', '-cert', 'ca.pem', '-keyfile', 'ca.key', ...dates, '-in', `${name}.csr`, '-out', `${name}.pem`]);
    return [join(at, `${name}.pem`), join(at, `${name}.key`)];
  };
  return {
    caFile: join(at, 'ca.pem'),
    expired: leaf('expired', 'right.cnf', DOMAIN, ['-startdate', '20250101000000Z', '-enddate', '20250201000000Z']),
    wrongName: leaf('wrong-name', 'other.cnf', 'other.test', ['-days', '2']),
  };
}

beforeAll(async () => {
  try {
    requireBinaries('caddy', 'pebble', 'pebble-challtestsrv', 'openssl');
    dir = mkdtempSync(join(tmpdir(), 'scim-bridge-doctor-'));
    const httpPort = await freePort();
    httpsPort = await freePort();
    pebble = await startPebble({ dir: join(dir, 'pebble'), httpPort, tlsPort: httpsPort });
    bridge = await startBridge({ SCIM_BRIDGE_TRUST_PROXY: 'true' });
    const upstream = new URL(bridge.url).host;
    const caddyfile = join(dir, 'Caddyfile');
    writeFileSync(
      caddyfile,
      renderCaddyfile({
        domain: DOMAIN,
        upstream,
        acmeEmail: 'doctor-test@example.com',
        acmeDirectory: pebble.directory,
        acmeCaRootFile: pebble.listener.caFile,
        storageDir: join(dir, 'caddy-storage'),
        httpPort,
        httpsPort,
        bind: '127.0.0.1',
        admin: `127.0.0.1:${await freePort()}`,
      }),
    );
    caddies.push(await startCaddy('caddy', caddyfile, join(dir, 'caddy-home')));
    await poll(`caddy to serve a certificate for ${DOMAIN}`, 30_000, 100, async () => {
      if (caddies[0].exitStatus) throw new GiveUp('caddy exited');
      return httpsRequest({ port: httpsPort, hostname: DOMAIN, ca: pebble!.rootPem, path: '/healthz' });
    });
    pebbleRoot = join(dir, 'pebble-root.pem');
    writeFileSync(pebbleRoot, pebble.rootPem);

    // The broken deployments: the same bridge behind a second Caddy, with certificates it is given.
    const certs = makeBrokenCertificates(mkdtempSync(join(dir, 'certs-')));
    testCa = certs.caFile;
    expiredPort = await freePort();
    wrongNamePort = await freePort();
    const site = (port: number, [cert, key]: [string, string]) =>
      [`https://${DOMAIN}:${port} {`, '\tbind 127.0.0.1', `\ttls ${cert} ${key}`, `\treverse_proxy ${upstream}`, '}'].join('\n');
    const broken = join(dir, 'Caddyfile.broken');
    writeFileSync(
      broken,
      [
        '{',
        `\tadmin 127.0.0.1:${await freePort()}`,
        '\tskip_install_trust',
        `\thttp_port ${await freePort()}`,
        '\tauto_https disable_redirects',
        `\tstorage file_system ${join(dir, 'caddy-broken-storage')}`,
        '}',
        site(expiredPort, certs.expired),
        site(wrongNamePort, certs.wrongName),
        '',
      ].join('\n'),
    );
    caddies.push(await startCaddy('caddy-broken', broken, join(dir, 'caddy-broken-home')));
    tokenFile = join(dir, 'token');
    writeFileSync(tokenFile, `${TOKEN}\n`);
  } catch (err) {
    throw new Error(`${(err as Error).stack}\n${logs()}`);
  }
}, 90_000);

afterAll(async () => {
  for (const caddy of caddies) await caddy.stop().catch(() => undefined);
  await pebble?.stop().catch(() => undefined);
  await stopAllProcesses().catch(() => undefined);
  await bridge?.stop().catch(() => undefined);
  if (dir) rmSync(dir, { recursive: true, force: true });
}, 30_000);

/** doctor as an operator runs it against the test domain: resolved to loopback, the test roots trusted. */
function doctor(url: string, port: number, extra: string[] = ['--token-file', tokenFile]): Promise<CliRun> {
  return runCli(['doctor', url, '--resolve', `${DOMAIN}:${port}:127.0.0.1`, '--ca', pebbleRoot, '--ca', testCa, '--timeout', '5000', ...extra]);
}

/** The line of one check. */
function line(result: CliRun, check: string): string {
  const found = result.stdout.split('\n').find((l) => new RegExp(`^\\S+\\s+${check}\\s`).test(l));
  if (!found) throw new Error(`no ${check} line in:\n${result.stdout}${result.stderr}`);
  return found;
}

describe('doctor against a deployed bridge (Caddy, a certificate from pebble, the bridge)', () => {
  test('when everything is right, then every check is ok and it exits 0', async () => {
    const result = await doctor(`https://${DOMAIN}:${httpsPort}`, httpsPort);
    expect({ code: result.code, out: result.stdout + result.stderr }).toMatchObject({ code: 0 });
    for (const check of ['url', 'dns', 'tls', 'healthz', 'clock', 'token']) expect(line(result, check)).toMatch(/^ok /);
    expect(line(result, 'tls')).toMatch(new RegExp(`certificate for DNS:${DOMAIN.replace('.', '\\.')} from Pebble Intermediate CA \\S+, valid until \\d{4}-\\d{2}-\\d{2} \\(\\d+ days left\\)`));
    expect(line(result, 'token')).toMatch(/the bridge accepts the token/);
    expect(result.stdout).toMatch(/doctor: ready for the identity provider\n$/);
  });

  test('when the Base URL ends with a slash, then the url check fails and says to remove it', async () => {
    const result = await doctor(`https://${DOMAIN}:${httpsPort}/`, httpsPort);
    expect(result.code).toBe(1);
    expect(line(result, 'url')).toMatch(/^FAIL url .*ends with a slash\. Fix: remove the trailing slash \(give the IdP https:\/\/scim\.test:\d+\)/);
    // The rest of the deployment is fine, and says so.
    for (const check of ['dns', 'tls', 'healthz', 'token']) expect(line(result, check)).toMatch(/^ok /);
    expect(result.stdout).toMatch(/doctor: 1 check failed/);
  });

  test('when the token is not the bridge\'s, then the token check fails and says how to give the bridge its hash', async () => {
    const wrong = join(dir, 'wrong-token');
    writeFileSync(wrong, 'not-the-token-0123456789abcdef\n');
    const result = await doctor(`https://${DOMAIN}:${httpsPort}`, httpsPort, ['--token-file', wrong]);
    expect(result.code).toBe(1);
    expect(line(result, 'token')).toMatch(/^FAIL token .*refuses the token.*401.*Fix: give the bridge this token's hash \(npx scim-bridge token hash < token-file/);
  });

  test('when the certificate has expired, then the tls check fails with its date and the HTTP checks are not run', async () => {
    const result = await doctor(`https://${DOMAIN}:${expiredPort}`, expiredPort);
    expect(result.code).toBe(1);
    expect(line(result, 'tls')).toMatch(/^FAIL tls .*expired on 2025-02-01 \(\d+ days ago\)\. Fix: renewal failed: read the log of the proxy/);
    expect(line(result, 'healthz')).toMatch(/^skip .*until TLS is fixed/);
    expect(line(result, 'token')).toMatch(/^skip /);
  });

  test('when the certificate is for another name, then the tls check fails naming both', async () => {
    const result = await doctor(`https://${DOMAIN}:${wrongNamePort}`, wrongNamePort);
    expect(result.code).toBe(1);
    expect(line(result, 'tls')).toMatch(/^FAIL tls .*the certificate is for DNS:other\.test, not for scim\.test\. Fix: set the stack's domain to scim\.test/);
  });

  test('when the test CA is not trusted, then the chain fails and it says to serve a full chain from a public CA', async () => {
    const result = await runCli(['doctor', `https://${DOMAIN}:${httpsPort}`, '--resolve', `${DOMAIN}:${httpsPort}:127.0.0.1`, '--timeout', '5000']);
    expect(result.code).toBe(1);
    expect(line(result, 'tls')).toMatch(/^FAIL tls .*does not reach a trusted root\. Fix: serve the full chain/);
  });

  test('when the Base URL is plain http, then the url check fails (the token is checked on loopback only)', async () => {
    const port = Number(new URL(bridge!.url).port);
    const result = await runCli(['doctor', `http://${DOMAIN}:${port}`, '--resolve', `${DOMAIN}:${port}:127.0.0.1`, '--token-file', tokenFile]);
    expect(result.code).toBe(1);
    expect(line(result, 'url')).toMatch(/^FAIL url .*plain http\. Fix: use https:\/\//);
    expect(line(result, 'tls')).toMatch(/^skip /);
    expect(line(result, 'healthz')).toMatch(/^ok /);
    expect(line(result, 'token')).toMatch(/^ok /);
  });

  test('when the Base URL is plain http to another host, then the token is not sent', async () => {
    // 192.0.2.1 (TEST-NET-1) answers nothing: healthz times out; the token check is not even tried.
    const result = await runCli(['doctor', 'http://scim.test', '--resolve', 'scim.test:80:192.0.2.1', '--token-file', tokenFile, '--timeout', '300']);
    expect(result.code).toBe(1);
    expect(line(result, 'token')).toMatch(/^skip token\s+not checked: the token is never sent over plain http/);
  });
});
