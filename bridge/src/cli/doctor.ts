/**
 * `doctor <baseUrl>`: checks a deployed bridge the way an identity provider will meet it, before its address is
 * given to one: the Base URL's form, DNS, TLS (chain, name, days to expiry), /healthz, the host's clock, and the
 * token on /ServiceProviderConfig. One line per check, with what to fix; exit 1 when one fails.
 *
 * For tests and private CAs: `--ca <pem>` trusts one more root (NODE_EXTRA_CA_CERTS works too), and
 * `--resolve host:port:address` (as curl's) connects there instead of asking DNS.
 */
import { promises as dns } from 'node:dns';
import { readFileSync } from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import { isIP } from 'node:net';
import * as tls from 'node:tls';
import { Args, CliError, CliIo, option, usageError } from './io';

export type CheckStatus = 'ok' | 'warn' | 'FAIL' | 'skip';

export interface CheckResult {
  readonly name: string;
  readonly status: CheckStatus;
  readonly detail: string;
  /** What to do about it (a failure or a warning). */
  readonly fix?: string;
}

const DAY_MS = 86_400_000;
/** The clock: beyond this the host is wrong enough to fail webhook signatures checked against 5 minutes. */
const CLOCK_FAIL_SECONDS = 300;
const CLOCK_WARN_SECONDS = 30;
const DEFAULT_TIMEOUT_MS = 10_000;

interface Target {
  /** The Base URL as given, and as the IdP should have it (no trailing slash). */
  readonly given: string;
  readonly url: URL;
  readonly secure: boolean;
  readonly hostname: string;
  readonly port: number;
}

interface Options {
  readonly token?: string;
  /** Roots trusted besides the system's (each --ca file). */
  readonly ca?: readonly string[];
  readonly resolve: Map<string, string>;
  readonly timeoutMs: number;
}

function parseResolve(values: readonly string[]): Map<string, string> {
  const map = new Map<string, string>();
  for (const value of values) {
    const m = /^([^:]+):(\d{1,5}):\[?([^\]]+)\]?$/.exec(value);
    if (!m || isIP(m[3]) === 0) throw usageError(`--resolve takes host:port:address, such as scim.example.com:443:127.0.0.1 (got ${value})`);
    map.set(`${m[1].toLowerCase()}:${m[2]}`, m[3]);
  }
  return map;
}

function readTokenFile(path: string): string {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new CliError(`doctor: cannot read --token-file ${path} (${(e as NodeJS.ErrnoException).code ?? 'unreadable'})`, 2);
  }
  const token = text.replace(/(\r?\n)+$/, '');
  if (token === '') throw new CliError(`doctor: --token-file ${path} is empty`, 2);
  return token;
}

/** The Base URL's form: https, a host, no trailing slash, no path other than /scim/v2, no query. */
function checkUrl(given: string): { result: CheckResult; target?: Target } {
  let url: URL;
  try {
    url = new URL(given);
  } catch {
    return { result: { name: 'url', status: 'FAIL', detail: `${given} is not a URL`, fix: 'give the Base URL as the IdP will have it, such as https://scim.example.com' } };
  }
  const secure = url.protocol === 'https:';
  const target: Target = {
    given,
    url: new URL(`${url.protocol}//${url.host}${url.pathname.replace(/\/+$/, '')}`),
    secure,
    hostname: url.hostname.replace(/^\[|\]$/g, ''),
    port: Number(url.port || (secure ? 443 : 80)),
  };
  if (!secure && url.protocol !== 'http:') {
    return { result: { name: 'url', status: 'FAIL', detail: `${url.protocol} is not a web address`, fix: 'give the Base URL as https://<domain>' } };
  }
  const problems: string[] = [];
  const fixes: string[] = [];
  if (!secure) {
    problems.push('it is plain http');
    fixes.push(`use https://${url.host}: identity providers require HTTPS and would send the token in clear`);
  }
  if (given.endsWith('/')) {
    problems.push('it ends with a slash');
    fixes.push(`remove the trailing slash (give the IdP ${target.url.toString().replace(/\/$/, '')}): IdPs append /Users to the Base URL, and a trailing slash makes it //Users`);
  }
  const path = target.url.pathname;
  if (path !== '/' && path.toLowerCase() !== '/scim/v2') {
    problems.push(`its path is ${path}`);
    fixes.push('the bridge serves SCIM at the root and at /scim/v2 only: give https://<domain> or https://<domain>/scim/v2');
  }
  if (url.search || url.hash || url.username || url.password) {
    problems.push('it carries a query, fragment or credentials');
    fixes.push('give the bare Base URL; the token goes in the IdP\'s token field');
  }
  if (problems.length > 0) return { target, result: { name: 'url', status: 'FAIL', detail: `${given}: ${problems.join('; ')}`, fix: fixes.join('; ') } };
  return { target, result: { name: 'url', status: 'ok', detail: `${given}` } };
}

const PRIVATE = [/^10\./, /^192\.168\./, /^172\.(1[6-9]|2\d|3[01])\./, /^127\./, /^169\.254\./, /^::1$/, /^f[cd]/i, /^fe80:/i];

async function checkDns(target: Target, options: Options): Promise<{ result: CheckResult; address?: string }> {
  const forced = options.resolve.get(`${target.hostname.toLowerCase()}:${target.port}`);
  if (forced) return { address: forced, result: { name: 'dns', status: 'ok', detail: `${target.hostname} -> ${forced} (from --resolve; DNS not asked)` } };
  if (isIP(target.hostname)) {
    return {
      address: target.hostname,
      result: { name: 'dns', status: 'warn', detail: `${target.hostname} is an address, not a name`, fix: 'give the bridge a DNS name: certificates from Let\'s Encrypt are for names' },
    };
  }
  try {
    const answers = await dns.lookup(target.hostname, { all: true });
    const addresses = answers.map((a) => a.address);
    const detail = `${target.hostname} -> ${addresses.join(', ')}`;
    if (addresses.every((a) => PRIVATE.some((p) => p.test(a)))) {
      return {
        address: addresses[0],
        result: { name: 'dns', status: 'warn', detail: `${detail}: private addresses only`, fix: 'an IdP on the internet cannot reach a private address: point the A record at the host\'s public IP (the stack\'s ipAddress output)' },
      };
    }
    return { address: addresses[0], result: { name: 'dns', status: 'ok', detail } };
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? 'failed';
    return {
      result: {
        name: 'dns',
        status: 'FAIL',
        detail: `${target.hostname} has no address (${code})`,
        fix: 'create the DNS A record for it with the host\'s IP (the stack\'s ipAddress output), or wait for it to propagate, then run doctor again',
      },
    };
  }
}

function tlsOptions(target: Target, address: string, options: Options): tls.ConnectionOptions {
  return {
    host: address,
    port: target.port,
    servername: isIP(target.hostname) ? undefined : target.hostname,
    ...(options.ca ? { ca: [...tls.rootCertificates, ...options.ca] } : {}),
  };
}

const dateOf = (ms: number) => new Date(ms).toISOString().slice(0, 10);

async function checkTls(target: Target, address: string, options: Options): Promise<CheckResult> {
  let socket: tls.TLSSocket;
  try {
    socket = await new Promise<tls.TLSSocket>((resolve, reject) => {
      const s = tls.connect({ ...tlsOptions(target, address, options), rejectUnauthorized: false }, () => resolve(s));
      s.setTimeout(options.timeoutMs, () => s.destroy(new Error(`no TLS handshake within ${options.timeoutMs} ms`)));
      s.once('error', reject);
    });
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    return {
      name: 'tls',
      status: 'FAIL',
      detail: `no TLS connection to ${target.hostname}:${target.port} (${address}): ${err.code ?? err.message}`,
      fix: `check that the firewall lets port ${target.port} in and that the proxy in front of the bridge (Caddy, the ingress) runs; its log says why it has no certificate`,
    };
  }
  try {
    const cert = socket.getPeerX509Certificate();
    const error = socket.authorized ? undefined : String(socket.authorizationError ?? 'unverified');
    if (!cert) return { name: 'tls', status: 'FAIL', detail: 'the server sent no certificate', fix: 'configure a certificate on the proxy in front of the bridge' };
    const validTo = Date.parse(cert.validTo);
    const validFrom = Date.parse(cert.validFrom);
    const days = Math.floor((validTo - Date.now()) / DAY_MS);
    const issuer = /CN=([^\n,]+)/.exec(cert.issuer)?.[1] ?? cert.issuer.replace(/\n/g, ', ');
    const names = cert.subjectAltName ?? cert.subject;
    const renewal = "renewal failed: read the log of the proxy that obtains it (VM hosts: docker logs scim-bridge-caddy; Kubernetes: kubectl describe certificate)";
    switch (error) {
      case undefined:
        break;
      case 'CERT_HAS_EXPIRED':
        return { name: 'tls', status: 'FAIL', detail: `the certificate for ${names} expired on ${dateOf(validTo)} (${-days} days ago)`, fix: renewal };
      case 'CERT_NOT_YET_VALID':
        return {
          name: 'tls',
          status: 'FAIL',
          detail: `the certificate is valid only from ${cert.validFrom}`,
          fix: 'a clock is wrong (this machine\'s or the host\'s): enable NTP (timedatectl set-ntp true)',
        };
      case 'ERR_TLS_CERT_ALTNAME_INVALID':
        return {
          name: 'tls',
          status: 'FAIL',
          detail: `the certificate is for ${names}, not for ${target.hostname}`,
          fix: `set the stack's domain to ${target.hostname} (so the proxy obtains a certificate for it), or give the IdP the name the certificate is for`,
        };
      case 'DEPTH_ZERO_SELF_SIGNED_CERT':
      case 'SELF_SIGNED_CERT_IN_CHAIN':
        return {
          name: 'tls',
          status: 'FAIL',
          detail: `the certificate is self-signed (${issuer})`,
          fix: 'IdPs accept only publicly trusted certificates: let Caddy or cert-manager obtain one from Let\'s Encrypt (check that ports 80 and 443 are open to it)',
        };
      case 'UNABLE_TO_VERIFY_LEAF_SIGNATURE':
      case 'UNABLE_TO_GET_ISSUER_CERT':
      case 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY':
        return {
          name: 'tls',
          status: 'FAIL',
          detail: `the chain from ${names} (issued by ${issuer}) does not reach a trusted root`,
          fix: 'serve the full chain (the certificate and its intermediates: fullchain.pem), from a public CA; for a private test CA pass --ca <root.pem>',
        };
      default:
        return { name: 'tls', status: 'FAIL', detail: `the certificate for ${names} is not trusted: ${error}`, fix: 'serve a certificate from a public CA (Let\'s Encrypt) for this name, with its full chain' };
    }
    const detail = `certificate for ${names} from ${issuer}, valid until ${dateOf(validTo)} (${days} days left), ${socket.getProtocol() ?? 'TLS'}`;
    // ACME clients renew with a third of the lifetime left (30 days of Let's Encrypt's 90): less than that, or
    // than two weeks, means renewal is failing.
    const lifetime = validTo - validFrom;
    if (validTo - Date.now() < Math.min(14 * DAY_MS, lifetime / 3)) return { name: 'tls', status: 'warn', detail, fix: `it has not been renewed in time: ${renewal}` };
    return { name: 'tls', status: 'ok', detail };
  } finally {
    socket.destroy();
  }
}

interface HttpAnswer {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: string;
  /** Local time halfway through the exchange, to compare with the Date header. */
  readonly midpoint: number;
}

function get(target: Target, address: string, path: string, options: Options, headers: Record<string, string> = {}): Promise<HttpAnswer> {
  const started = Date.now();
  const base = target.url.pathname === '/' ? '' : target.url.pathname;
  return new Promise((resolve, reject) => {
    const lib = target.secure ? https : http;
    const req = lib.request(
      {
        ...(target.secure ? tlsOptions(target, address, options) : { host: address, port: target.port }),
        method: 'GET',
        path: path.startsWith('/healthz') ? path : `${base}${path}`,
        agent: false,
        headers: { Host: target.url.host, 'User-Agent': 'scim-bridge-doctor', Accept: 'application/scim+json', ...headers },
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          if (body.length < 64 * 1024) body += chunk;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body, midpoint: (started + Date.now()) / 2 }));
        res.on('error', reject);
      },
    );
    req.setTimeout(options.timeoutMs, () => req.destroy(new Error(`no answer within ${options.timeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
}

async function checkHealthz(target: Target, address: string, options: Options): Promise<{ result: CheckResult; answer?: HttpAnswer }> {
  try {
    const answer = await get(target, address, '/healthz', options);
    if (answer.status === 200 && answer.body.trim() === 'ok') return { answer, result: { name: 'healthz', status: 'ok', detail: 'GET /healthz answered 200 ok' } };
    const fix =
      answer.status === 502 || answer.status === 503 || answer.status === 504
        ? 'the proxy runs but the bridge behind it does not answer: look at the bridge container (docker ps -a; docker logs scim-bridge; kubectl logs)'
        : 'something other than scim-bridge answers on this address: check the proxy\'s configuration and the DNS record';
    return { answer, result: { name: 'healthz', status: 'FAIL', detail: `GET /healthz answered ${answer.status} ${answer.body.slice(0, 80).trim()}`, fix } };
  } catch (e) {
    return {
      result: { name: 'healthz', status: 'FAIL', detail: `GET /healthz failed: ${(e as Error).message}`, fix: 'check that the proxy and the bridge run and that the firewall lets the port in' },
    };
  }
}

function checkClock(answer: HttpAnswer | undefined): CheckResult {
  const date = answer?.headers.date;
  if (!answer || !date) return { name: 'clock', status: 'skip', detail: 'no Date header to compare with' };
  // The Date header has whole seconds: up to one second of difference is rounding.
  const skew = Math.round((Date.parse(date) - answer.midpoint) / 1000);
  const detail = `the host's clock is ${Math.abs(skew)} s ${skew >= 0 ? 'ahead of' : 'behind'} this machine's`;
  const fix = 'enable NTP on the host (timedatectl set-ntp true) or on this machine: webhook signatures, certificates and SCIM timestamps depend on the time';
  if (Math.abs(skew) > CLOCK_FAIL_SECONDS) return { name: 'clock', status: 'FAIL', detail, fix };
  if (Math.abs(skew) > CLOCK_WARN_SECONDS) return { name: 'clock', status: 'warn', detail, fix };
  return { name: 'clock', status: 'ok', detail };
}

async function checkToken(target: Target, address: string, options: Options): Promise<CheckResult> {
  if (options.token === undefined) return { name: 'token', status: 'skip', detail: 'no --token-file given', fix: 'pass --token-file <file> (the IdP\'s token) to check it' };
  try {
    const answer = await get(target, address, '/ServiceProviderConfig', options, { Authorization: `Bearer ${options.token}` });
    if (answer.status === 200 && /ServiceProviderConfig/.test(answer.body)) return { name: 'token', status: 'ok', detail: 'the bridge accepts the token (GET /ServiceProviderConfig answered 200)' };
    if (answer.status === 401) {
      return {
        name: 'token',
        status: 'FAIL',
        detail: 'the bridge refuses the token (GET /ServiceProviderConfig answered 401)',
        fix: "give the bridge this token's hash (npx scim-bridge token hash < token-file, into SCIM_BRIDGE_TOKEN_SHA256 or the stack's token setting), or give the IdP the token the bridge has",
      };
    }
    if (answer.status === 429) return { name: 'token', status: 'FAIL', detail: 'too many wrong tokens from this address (429)', fix: 'wait a minute, then run doctor again with the right token' };
    return { name: 'token', status: 'FAIL', detail: `GET /ServiceProviderConfig answered ${answer.status}`, fix: 'something other than scim-bridge answers here: check the proxy\'s configuration' };
  } catch (e) {
    return { name: 'token', status: 'FAIL', detail: `GET /ServiceProviderConfig failed: ${(e as Error).message}`, fix: 'check that the proxy and the bridge run' };
  }
}

/** Runs the checks in order; a check whose premise failed (no address, no TLS) is reported as not run. */
export async function runChecks(given: string, options: Options): Promise<CheckResult[]> {
  const results: CheckResult[] = [];
  const { result: urlResult, target } = checkUrl(given);
  results.push(urlResult);
  const skip = (reason: string, ...names: string[]) => names.forEach((name) => results.push({ name, status: 'skip', detail: `not checked: ${reason}` }));
  if (!target) {
    skip('no URL to check', 'dns', 'tls', 'healthz', 'clock', 'token');
    return results;
  }
  const { result: dnsResult, address } = await checkDns(target, options);
  results.push(dnsResult);
  if (!address) {
    skip('the name has no address', 'tls', 'healthz', 'clock', 'token');
    return results;
  }
  if (target.secure) {
    const tlsResult = await checkTls(target, address, options);
    results.push(tlsResult);
    if (tlsResult.status === 'FAIL') {
      skip('an IdP cannot connect until TLS is fixed', 'healthz', 'clock', 'token');
      return results;
    }
  } else {
    skip('plain http', 'tls');
  }
  const { result: healthResult, answer } = await checkHealthz(target, address, options);
  results.push(healthResult, checkClock(answer));
  // The token never crosses a network in clear: over plain http it is sent to a loopback address only.
  if (!target.secure && options.token !== undefined && !/^(127\.|::1$)/.test(address)) skip('the token is never sent over plain http', 'token');
  else results.push(await checkToken(target, address, options));
  return results;
}

export function formatResult(r: CheckResult): string {
  return `${r.status.padEnd(4)} ${r.name.padEnd(7)} ${r.detail}${r.fix && r.status !== 'ok' ? `. Fix: ${r.fix}` : ''}`;
}

export async function doctor(io: CliIo, args: Args): Promise<number> {
  if (args.positionals.length !== 1) throw usageError('doctor takes the Base URL: npx scim-bridge doctor https://scim.example.com [--token-file F]');
  const tokenFile = option(args, 'token-file');
  const cas = (args.options.get('ca') ?? []).map((caFile) => {
    try {
      return readFileSync(caFile, 'utf8');
    } catch (e) {
      throw new CliError(`doctor: cannot read --ca ${caFile} (${(e as NodeJS.ErrnoException).code ?? 'unreadable'})`, 2);
    }
  });
  const timeout = option(args, 'timeout');
  if (timeout !== undefined && !/^\d{1,6}$/.test(timeout)) throw usageError('--timeout takes milliseconds, such as 10000');
  const options: Options = {
    token: tokenFile === undefined ? undefined : readTokenFile(tokenFile),
    ca: cas.length > 0 ? cas : undefined,
    resolve: parseResolve(args.options.get('resolve') ?? []),
    timeoutMs: timeout === undefined ? DEFAULT_TIMEOUT_MS : Number(timeout),
  };
  const results = await runChecks(args.positionals[0], options);
  for (const r of results) io.stdout.write(`${formatResult(r)}\n`);
  const failed = results.filter((r) => r.status === 'FAIL').length;
  const warned = results.filter((r) => r.status === 'warn').length;
  io.stdout.write(
    failed > 0
      ? `doctor: ${failed} check${failed > 1 ? 's' : ''} failed: fix ${failed > 1 ? 'them' : 'it'} before giving the Base URL to the identity provider\n`
      : `doctor: ready for the identity provider${warned ? ` (${warned} warning${warned > 1 ? 's' : ''})` : ''}\n`,
  );
  return failed > 0 ? 1 : 0;
}
