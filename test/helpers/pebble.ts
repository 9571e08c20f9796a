/**
 * Real ACME for the TLS tests: pebble (Let's Encrypt's test CA) with pebble-challtestsrv as its DNS, and
 * Caddy, each a child process with its output captured, plus the certificates and HTTPS client around them.
 * Nothing is mocked: pebble validates the challenge against Caddy's own listeners.
 */
import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import { randomBytes, X509Certificate } from 'node:crypto';
import * as dgram from 'node:dgram';
import { accessSync, constants, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import * as net from 'node:net';
import { delimiter, join } from 'node:path';
import type { TLSSocket } from 'node:tls';

const LOOPBACK = '127.0.0.1';

// ---------------------------------------------------------------------------------------------------------
// Binaries

/** Where `name` is on PATH, or undefined. */
export function which(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** Throws (the test fails, it is not skipped) when a peer is missing, saying how to install it. */
export function requireBinaries(...names: string[]): void {
  const missing = names.filter((name) => which(name) === undefined);
  if (missing.length > 0) {
    throw new Error(
      `missing on PATH: ${missing.join(', ')}. The TLS tests run the real Caddy and pebble: run test/setup.sh ` +
        '(bash test/setup.sh, as root: it installs caddy, pebble and pebble-challtestsrv from Debian' +
        `${missing.includes('openssl') ? '; openssl: apt-get install openssl' : ''}) and run the tests again`,
    );
  }
}

// ---------------------------------------------------------------------------------------------------------
// Ports

const handedOut = new Set<number>();

function tcpPortZero(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, host, () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

function udpFree(port: number, host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = dgram.createSocket('udp4');
    socket.unref();
    socket.once('error', () => {
      socket.close();
      resolve(false);
    });
    socket.bind(port, host, () => socket.close(() => resolve(true)));
  });
}

/**
 * A loopback port the kernel just gave out (listening on port 0), also free for UDP (Caddy's HTTP/3 listener
 * and challtestsrv's DNS take the UDP port too), and never the same one twice in this process.
 */
export async function freePort(host = LOOPBACK): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = await tcpPortZero(host);
    if (handedOut.has(port) || !(await udpFree(port, host))) continue;
    handedOut.add(port);
    return port;
  }
  throw new Error('no free loopback port (TCP and UDP) after 50 attempts');
}

/** Resolves once something accepts TCP connections on host:port. */
export async function waitForPort(port: number, timeoutMs: number, what: string, host = LOOPBACK): Promise<void> {
  await poll(`${what} to listen on ${host}:${port}`, timeoutMs, 25, () => {
    return new Promise<boolean>((resolve) => {
      const socket = net.connect({ host, port });
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
  });
}

/**
 * Calls `attempt` every `intervalMs` until it returns something other than false/undefined (a throw counts
 * as "not yet"), for up to `timeoutMs`; then fails with the last error. `describe` adds context (process output).
 */
export async function poll<T>(
  what: string,
  timeoutMs: number,
  intervalMs: number,
  attempt: () => Promise<T | false | undefined>,
  describe: () => string = () => '',
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const result = await attempt();
      if (result !== false && result !== undefined) return result;
      last = undefined;
    } catch (err) {
      if (err instanceof GiveUp) throw new Error(`gave up waiting for ${what}: ${err.message}${describe()}`);
      last = err;
    }
    if (Date.now() >= deadline) {
      const reason = last instanceof Error ? last.message : last === undefined ? 'not yet' : String(last);
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (last: ${reason})${describe()}`);
    }
    await sleep(intervalMs);
  }
}

/** Thrown by a `poll` attempt to stop waiting at once (the process it waits on has exited, say). */
export class GiveUp extends Error {}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

// ---------------------------------------------------------------------------------------------------------
// Processes

export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
  error?: string;
}

const running = new Set<ManagedProcess>();

/** Stops every process this module started that is still running (afterAll's backstop). */
export async function stopAllProcesses(): Promise<void> {
  await Promise.all([...running].map((p) => p.stop()));
}

/** A child process whose stdout and stderr are kept (interleaved) for assertions and failure messages. */
export class ManagedProcess {
  private readonly child: ChildProcess;
  private text = '';
  private status: ExitStatus | undefined;
  readonly exited: Promise<ExitStatus>;

  constructor(
    readonly name: string,
    command: string,
    args: string[],
    options: { env: NodeJS.ProcessEnv; cwd?: string },
  ) {
    this.child = spawn(command, args, { env: options.env, cwd: options.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (this.text += chunk));
    this.child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (this.text += chunk));
    running.add(this);
    this.exited = new Promise((resolve) => {
      this.child.once('exit', (code, signal) => {
        this.status ??= { code, signal };
        running.delete(this);
        resolve(this.status);
      });
      this.child.once('error', (err) => {
        this.text += `\n[${name}: ${err.message}]\n`;
        this.status ??= { code: null, signal: null, error: err.message };
        running.delete(this);
        resolve(this.status);
      });
    });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /** Set once the process has exited. */
  get exitStatus(): ExitStatus | undefined {
    return this.status;
  }

  output(): string {
    return this.text;
  }

  /** The end of the output with a header, for failure messages. */
  describe(maxChars = 6000): string {
    const state = this.status ? `exited: ${this.status.error ?? this.status.signal ?? `code ${this.status.code}`}` : 'running';
    const out = this.text.length > maxChars ? `[... ${this.text.length - maxChars} characters before]\n${this.text.slice(-maxChars)}` : this.text;
    return `\n----- ${this.name} (pid ${this.pid ?? '-'}, ${state}) -----\n${out.trimEnd() || '(no output)'}\n`;
  }

  /** Resolves with the first match of `pattern` in the output; fails if the process exits first or time runs out. */
  async waitForOutput(pattern: RegExp, timeoutMs: number): Promise<RegExpExecArray> {
    return poll(`${this.name} to print ${pattern}`, timeoutMs, 20, async () => {
      const match = pattern.exec(this.text);
      if (match) return match;
      if (this.status) throw new GiveUp(`${this.name} exited before printing ${pattern}`);
      return undefined;
    }, () => this.describe());
  }

  /** SIGTERM, wait for the exit; SIGKILL if it has not exited after `graceMs`. */
  async stop(graceMs = 10_000): Promise<ExitStatus> {
    if (this.status) return this.status;
    if (this.child.pid === undefined) return this.exited;
    const pid = this.child.pid;
    signal(pid, 'SIGTERM');
    const timer = setTimeout(() => {
      this.text += `\n[${this.name} did not exit ${graceMs} ms after SIGTERM: SIGKILL]\n`;
      signal(pid, 'SIGKILL');
    }, graceMs);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
}

// ---------------------------------------------------------------------------------------------------------
// Certificates

export interface ListenerCertificate {
  /** The CA that signed pebble's listener certificate: what Caddy's acme_ca_root and our client trust. */
  caFile: string;
  caPem: string;
  certFile: string;
  keyFile: string;
}

/**
 * A throwaway CA and a P-256 certificate for localhost and 127.0.0.1 signed by it, for pebble's own HTTPS
 * listeners (the Debian package ships none). Uses its own openssl config, independent of the system's.
 */
export function makeListenerCertificate(dir: string, names: string[] = ['DNS:localhost', 'IP:127.0.0.1']): ListenerCertificate {
  mkdirSync(dir, { recursive: true });
  const cnf = join(dir, 'openssl.cnf');
  writeFileSync(
    cnf,
    [
      '[req]',
      'distinguished_name = dn',
      'prompt = no',
      '[dn]',
      'CN = scim-bridge tests pebble listener CA',
      '[ca_ext]',
      'basicConstraints = critical,CA:TRUE',
      'keyUsage = critical,keyCertSign,cRLSign',
      'subjectKeyIdentifier = hash',
      '[leaf_ext]',
      'basicConstraints = critical,CA:FALSE',
      'keyUsage = critical,digitalSignature',
      'extendedKeyUsage = serverAuth',
      `subjectAltName = ${names.join(',')}`,
      'subjectKeyIdentifier = hash',
      'authorityKeyIdentifier = keyid',
      '',
    ].join('\n'),
  );
  const caFile = join(dir, 'listener-ca.pem');
  const caKey = join(dir, 'listener-ca.key');
  const certFile = join(dir, 'listener.pem');
  const keyFile = join(dir, 'listener.key');
  const csr = join(dir, 'listener.csr');
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  const openssl = (args: string[]) => {
    try {
      execFileSync('openssl', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (err) {
      const e = err as { stderr?: Buffer; message: string };
      throw new Error(`openssl ${args.join(' ')} failed: ${e.stderr?.toString() || e.message}`);
    }
  };
  openssl(['req', '-x509', '-config', cnf, '-extensions', 'ca_ext', ...ec, '-keyout', caKey, '-out', caFile, '-days', '2']);
  openssl(['req', '-new', '-config', cnf, ...ec, '-subj', '/CN=localhost', '-keyout', keyFile, '-out', csr]);
  openssl([
    'x509', '-req', '-in', csr, '-CA', caFile, '-CAkey', caKey, '-set_serial', `0x${randomBytes(8).toString('hex')}`,
    '-days', '2', '-extfile', cnf, '-extensions', 'leaf_ext', '-out', certFile,
  ]);
  const caPem = readFileSync(caFile, 'utf8');
  return { caFile, caPem, certFile, keyFile };
}

/** The PEM blocks of a file's text as X509Certificates, in order. */
export function parsePemChain(pem: string): X509Certificate[] {
  return (pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []).map((block) => new X509Certificate(block));
}

/** Serial numbers compare as numbers: Node prints them upper-case (maybe zero-padded), pebble lower-case. */
export function sameSerial(a: string, b: string): boolean {
  return BigInt(`0x${a}`) === BigInt(`0x${b}`);
}

// ---------------------------------------------------------------------------------------------------------
// HTTP(S) client

export interface Response {
  status: number;
  headers: http.IncomingHttpHeaders;
  /** Header names and values as received, alternating (duplicates kept). */
  rawHeaders: string[];
  body: string;
}

export interface TlsResponse extends Response {
  /** The certificate the server presented, and whether Node verified its chain against `ca`. */
  certificate: X509Certificate;
  authorized: boolean;
}

export interface RequestOptions {
  port: number;
  /** The name the client asks for: SNI and Host header. */
  hostname: string;
  method?: string;
  path: string;
  headers?: Record<string, string>;
  body?: string;
  timeoutMs?: number;
}

/**
 * HTTPS to 127.0.0.1:port as a client that resolved `hostname` there: SNI and Host are the name, and only
 * `ca` is trusted (a chain to anything else fails the handshake). A fresh connection every time.
 */
export function httpsRequest(options: RequestOptions & { ca: string }): Promise<TlsResponse> {
  return send(https, { ...options, servername: options.hostname, ca: options.ca, rejectUnauthorized: true });
}

/** Plain HTTP to 127.0.0.1:port with Host: hostname:port. */
export function httpRequest(options: RequestOptions): Promise<Response> {
  return send(http, options);
}

function send<R extends Response>(
  lib: typeof http | typeof https,
  options: RequestOptions & { servername?: string; ca?: string; rejectUnauthorized?: boolean },
): Promise<R> {
  const { port, hostname, method = 'GET', path, headers = {}, body, timeoutMs = 5000 } = options;
  return new Promise<R>((resolve, reject) => {
    const req = lib.request(
      {
        host: LOOPBACK,
        port,
        method,
        path,
        agent: false,
        headers: { Host: `${hostname}:${port}`, ...headers, ...(body === undefined ? {} : { 'Content-Length': String(Buffer.byteLength(body)) }) },
        ...(options.servername ? { servername: options.servername, ca: options.ca, rejectUnauthorized: options.rejectUnauthorized } : {}),
      },
      (res) => {
        const socket = res.socket as TLSSocket;
        const tls = typeof socket.getPeerX509Certificate === 'function' ? { certificate: socket.getPeerX509Certificate(), authorized: socket.authorized } : {};
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, rawHeaders: res.rawHeaders, body: text, ...tls } as unknown as R));
        res.on('error', reject);
      },
    );
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`${method} ${path} on port ${port}: no response in ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(body);
  });
}

/** GET over HTTPS to a loopback listener whose certificate chains to `ca` (pebble's management interface). */
async function httpsGetText(url: string, ca: string): Promise<string> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = https.get({ host: u.hostname, port: u.port, path: u.pathname, ca, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => (res.statusCode === 200 ? resolve(text) : reject(new Error(`GET ${url}: ${res.statusCode} ${text}`))));
    });
    req.setTimeout(5000, () => req.destroy(new Error(`GET ${url}: no response in 5 s`)));
    req.on('error', reject);
  });
}

// ---------------------------------------------------------------------------------------------------------
// pebble

export interface PebbleOptions {
  /** Where the config and listener certificate go. */
  dir: string;
  /** Where pebble's validation authority connects for HTTP-01 and TLS-ALPN-01: Caddy's ports. */
  httpPort: number;
  tlsPort: number;
  /** More names for pebble's listener certificate than localhost and 127.0.0.1 (e.g. IP:10.0.2.2 for a VM). */
  listenerNames?: string[];
}

export interface Pebble {
  /** The ACME directory URL. */
  readonly directory: string;
  readonly listener: ListenerCertificate;
  /** The root and intermediate pebble generated at this start (they change every start). */
  readonly rootPem: string;
  readonly root: X509Certificate;
  readonly intermediate: X509Certificate;
  /** The environment pebble runs with (no PEBBLE_VA_ALWAYS_VALID: challenges are really validated). */
  readonly env: NodeJS.ProcessEnv;
  readonly pebble: ManagedProcess;
  readonly challtestsrv: ManagedProcess;
  /** Order ids pebble created, from its log ("Added order "<id>" to the db"). */
  orders(): string[];
  /** Certificates pebble issued, from its log ("Issued certificate serial <hex> for order <id>"). */
  issued(): { serial: string; order: string }[];
  /** Authorizations pebble set valid after a challenge ("authz <id> set VALID by completed challenge <id>"). */
  validatedAuthorizations(): string[];
  /** The management interface's record of a certificate (hex serial as pebble prints it). */
  certificateStatus(serial: string): Promise<{ Certificate: string; Status: string; Serial: string }>;
  describe(): string;
  stop(): Promise<void>;
}

/**
 * Starts pebble-challtestsrv (DNS only: every name resolves to 127.0.0.1, no AAAA, its own challenge
 * listeners off) and pebble using it, with no artificial validation sleeps and no rejected nonces.
 */
export async function startPebble(options: PebbleOptions): Promise<Pebble> {
  requireBinaries('pebble', 'pebble-challtestsrv', 'openssl');
  mkdirSync(options.dir, { recursive: true });
  const listener = makeListenerCertificate(join(options.dir, 'listener'), ['DNS:localhost', 'IP:127.0.0.1', ...(options.listenerNames ?? [])]);
  const [dnsPort, challManagementPort, acmePort, managementPort] = [await freePort(), await freePort(), await freePort(), await freePort()];
  const baseEnv: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) if (!key.startsWith('PEBBLE_')) baseEnv[key] = value;

  const challtestsrv = new ManagedProcess(
    'pebble-challtestsrv',
    'pebble-challtestsrv',
    [
      '-defaultIPv4', LOOPBACK,
      '-defaultIPv6', '',
      '-dns01', `${LOOPBACK}:${dnsPort}`,
      '-http01', '',
      '-https01', '',
      '-tlsalpn01', '',
      '-management', `${LOOPBACK}:${challManagementPort}`,
    ],
    { env: baseEnv, cwd: options.dir },
  );
  const processes: ManagedProcess[] = [challtestsrv];
  const describe = () => processes.map((p) => p.describe()).join('');
  const stop = async () => {
    await Promise.all(processes.map((p) => p.stop()));
  };
  try {
    await waitForPort(dnsPort, 10_000, 'pebble-challtestsrv DNS').catch((err: Error) => {
      throw new Error(err.message + describe());
    });

    const configFile = join(options.dir, 'pebble-config.json');
    writeFileSync(
      configFile,
      JSON.stringify(
        {
          pebble: {
            listenAddress: `${LOOPBACK}:${acmePort}`,
            managementListenAddress: `${LOOPBACK}:${managementPort}`,
            certificate: listener.certFile,
            privateKey: listener.keyFile,
            httpPort: options.httpPort,
            tlsPort: options.tlsPort,
            ocspResponderURL: '',
            externalAccountBindingRequired: false,
          },
        },
        null,
        2,
      ),
    );
    const env: NodeJS.ProcessEnv = { ...baseEnv, PEBBLE_VA_NOSLEEP: '1', PEBBLE_WFE_NONCEREJECT: '0' };
    const pebble = new ManagedProcess('pebble', 'pebble', ['-config', configFile, '-dnsserver', `${LOOPBACK}:${dnsPort}`], { env, cwd: options.dir });
    processes.push(pebble);
    await pebble.waitForOutput(/ACME directory available at/, 10_000);
    const directory = `https://${LOOPBACK}:${acmePort}/dir`;
    const management = `https://${LOOPBACK}:${managementPort}`;
    // Both listeners answer over HTTPS with the listener certificate (which also checks that certificate).
    const get = (url: string) => poll(`pebble: GET ${url}`, 10_000, 50, () => httpsGetText(url, listener.caPem), describe);
    await get(directory);
    const rootPem = await get(`${management}/roots/0`);
    const intermediatePem = await get(`${management}/intermediates/0`);

    const all = (pattern: RegExp) => [...pebble.output().matchAll(pattern)];
    return {
      directory,
      listener,
      rootPem,
      root: new X509Certificate(rootPem),
      intermediate: new X509Certificate(intermediatePem),
      env,
      pebble,
      challtestsrv,
      orders: () => all(/Added order "([^"]+)" to the db/g).map((m) => m[1]),
      issued: () => all(/Issued certificate serial ([0-9a-f]+) for order (\S+)/g).map((m) => ({ serial: m[1], order: m[2] })),
      validatedAuthorizations: () => all(/authz (\S+) set VALID by completed challenge/g).map((m) => m[1]),
      certificateStatus: async (serial) => JSON.parse(await httpsGetText(`${management}/cert-status-by-serial/${serial}`, listener.caPem)),
      describe,
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

// ---------------------------------------------------------------------------------------------------------
// Caddy

/**
 * `caddy run` with a Caddyfile, HOME and XDG directories under `home` (nothing written elsewhere), resolved
 * once Caddy says it serves the configuration. The config must enable the admin endpoint for `caddy run`.
 */
export async function startCaddy(name: string, caddyfile: string, home: string): Promise<ManagedProcess> {
  requireBinaries('caddy');
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: home,
    XDG_DATA_HOME: join(home, 'data'),
    XDG_CONFIG_HOME: join(home, 'config'),
    XDG_CACHE_HOME: join(home, 'cache'),
  };
  mkdirSync(home, { recursive: true });
  const caddy = new ManagedProcess(name, 'caddy', ['run', '--config', caddyfile, '--adapter', 'caddyfile'], { env, cwd: home });
  try {
    await caddy.waitForOutput(/"msg":"serving initial configuration"/, 15_000);
  } catch (err) {
    await caddy.stop();
    throw err;
  }
  return caddy;
}
