/**
 * The bridge's configuration, read from the environment once at start (see the table in README.md).
 * A bad value stops the start with one line naming the variable and what it expects.
 */
import { createHash } from 'node:crypto';
import { closeSync, fstatSync, openSync, readFileSync } from 'node:fs';
import { isIP } from 'node:net';

export interface BridgeConfig {
  readonly port: number;
  readonly host: string;
  readonly databaseUrl: string;
  /** Hex SHA-256 hashes of the accepted IdP bearer tokens (two during a rotation). */
  readonly tokenHashes: readonly string[];
  /** Hashes of the application API's tokens; empty: the API is off. Never one of the IdP's. */
  readonly appTokenHashes: readonly string[];
  /** Whether any gateway is trusted for X-Forwarded-For/-Proto (trustedProxies is not empty). */
  readonly trustProxy: boolean;
  /**
   * The peers whose X-Forwarded-* headers are believed, in Express's `trust proxy` terms: addresses, CIDR ranges,
   * or `loopback` / `linklocal` / `uniquelocal`. Empty: none (the peer's own address is the client's).
   */
  readonly trustedProxies: readonly string[];
  /**
   * The Base URL as the identity provider sees it (`https://scim.example.com`, no trailing slash): Location and
   * meta.location are built from it. Absent: from the request's Host, which is then validated.
   */
  readonly publicUrl?: string;
  /** Email domains accepted for userName and emails (lower case); empty: all. */
  readonly allowedDomains: readonly string[];
  /** The downstream webhook, when set: URL, signing secret, and how long an event is retried. */
  readonly webhook?: { readonly url: string; readonly secret: string; readonly retryHours: number };
  /** How long the events feed keeps events (delivered ones, when a webhook is set). */
  readonly eventsRetentionDays: number;
  /** Hashes of tokens that open GET /metrics only (a Prometheus scraper's); the IdP's token opens it too. */
  readonly metricsTokenHashes: readonly string[];
}

export class ConfigError extends Error {
  constructor(
    readonly variable: string,
    readonly expected: string,
  ) {
    super(`${variable}: ${expected}`);
    this.name = 'ConfigError';
  }
}

/**
 * The variables with a `_FILE` form (DESIGN.md): secrets, and what a Kubernetes Secret or a systemd credential
 * holds (the token hashes, the database URL with its password). `<NAME>_FILE=/path` reads the value from the file.
 */
export const SECRET_VARIABLES = [
  'SCIM_BRIDGE_DATABASE_URL',
  'SCIM_BRIDGE_TOKEN_SHA256',
  'SCIM_BRIDGE_TOKEN',
  'SCIM_BRIDGE_APP_TOKEN_SHA256',
  'SCIM_BRIDGE_APP_TOKEN',
  'SCIM_BRIDGE_WEBHOOK_SECRET',
  'SCIM_BRIDGE_METRICS_TOKEN_SHA256',
] as const;

/** Every variable this version reads (the table in README.md), the `_FILE` forms included. */
export const SUPPORTED_VARIABLES: readonly string[] = [
  'SCIM_BRIDGE_PORT',
  'SCIM_BRIDGE_HOST',
  'SCIM_BRIDGE_ALLOWED_DOMAINS',
  'SCIM_BRIDGE_WEBHOOK_URL',
  'SCIM_BRIDGE_WEBHOOK_RETRY_HOURS',
  'SCIM_BRIDGE_EVENTS_RETENTION_DAYS',
  'SCIM_BRIDGE_TRUST_PROXY',
  'SCIM_BRIDGE_PUBLIC_URL',
  ...SECRET_VARIABLES,
  ...SECRET_VARIABLES.map((v) => `${v}_FILE`),
];

/**
 * Known, never suggested: SCIM_BRIDGE_SHUTDOWN_GRACE_MS (main.ts; tests shorten the stop's grace period with it)
 * and the test suite's own SCIM_BRIDGE_TEST_CACHE (README, "A real first boot in the tests"), which bridges
 * started by the tests inherit.
 */
export const INTERNAL_VARIABLES: readonly string[] = ['SCIM_BRIDGE_SHUTDOWN_GRACE_MS', 'SCIM_BRIDGE_TEST_CACHE'];

const POSTGRES_LATER = 'PostgreSQL is not implemented yet';
const GOOGLE_LATER = 'the Google Workspace connector is not implemented yet';
/** Named by DESIGN.md, not implemented by this version: refused when set, never silently ignored. */
export const RESERVED_VARIABLES: Readonly<Record<string, string>> = {
  SCIM_BRIDGE_DATABASE_CA: POSTGRES_LATER,
  SCIM_BRIDGE_GOOGLE_CREDENTIALS: GOOGLE_LATER,
  SCIM_BRIDGE_GOOGLE_CREDENTIALS_FILE: GOOGLE_LATER,
  SCIM_BRIDGE_GOOGLE_ADMIN: GOOGLE_LATER,
  SCIM_BRIDGE_GOOGLE_GROUPS: GOOGLE_LATER,
  SCIM_BRIDGE_GOOGLE_INTERVAL: GOOGLE_LATER,
  SCIM_BRIDGE_GOOGLE_API_URL: GOOGLE_LATER,
  SCIM_BRIDGE_GOOGLE_TOKEN_URL: GOOGLE_LATER,
};

/** Levenshtein distance: the number of one-character edits from a to b. */
export function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(previous[j] + 1, row[j - 1] + 1, previous[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = row;
  }
  return previous[b.length];
}

/** The documented variable nearest to `name` (ties: the first in the table's order). */
export function nearestVariable(name: string): string {
  const candidates = [...SUPPORTED_VARIABLES, ...Object.keys(RESERVED_VARIABLES)];
  let best = candidates[0];
  let bestDistance = Infinity;
  for (const c of candidates) {
    const d = editDistance(name.toUpperCase(), c);
    if (d < bestDistance) [best, bestDistance] = [c, d];
  }
  return best;
}

/**
 * Every SCIM_BRIDGE_* variable in the environment must be one this version reads: a misspelt one would otherwise
 * be ignored without a word (the stack configuration refuses unknown keys the same way). One documented but not
 * implemented yet is refused too, rather than the bridge running without what it asks for.
 */
function checkNames(env: NodeJS.ProcessEnv): void {
  for (const name of Object.keys(env).sort()) {
    if (!name.startsWith('SCIM_BRIDGE_')) continue;
    if (SUPPORTED_VARIABLES.includes(name) || INTERNAL_VARIABLES.includes(name)) continue;
    const reason = RESERVED_VARIABLES[name];
    if (reason !== undefined) {
      if (env[name] === undefined || env[name] === '') continue;
      throw new ConfigError(name, `not supported by this version of scim-bridge (${reason}); unset it`);
    }
    const base = name.endsWith('_FILE') ? name.slice(0, -'_FILE'.length) : undefined;
    if (base && SUPPORTED_VARIABLES.includes(base)) {
      throw new ConfigError(name, `${base} has no _FILE form (only ${SECRET_VARIABLES.join(', ')} have one); set ${base} itself`);
    }
    throw new ConfigError(name, `not a setting of scim-bridge; did you mean ${nearestVariable(name)}? (the settings: README.md, "Configuration")`);
  }
}

/** Secret files are small: a token, a hash list, a URL. Anything larger is a wrong path (a disk image, a log). */
const SECRET_FILE_MAX_BYTES = 64 * 1024;

/** The content of `<NAME>_FILE`'s file, without its trailing line break. Errors name the variable and the path, never the content. */
function readSecretFile(variable: string, path: string): string {
  let text: string;
  try {
    const fd = openSync(path, 'r');
    try {
      const stat = fstatSync(fd);
      if (!stat.isFile()) throw new ConfigError(variable, `${path} is not a regular file; expected the file that holds the value`);
      if (stat.size > SECRET_FILE_MAX_BYTES) throw new ConfigError(variable, `${path} is larger than ${SECRET_FILE_MAX_BYTES / 1024} KiB; expected the file that holds the value`);
      text = readFileSync(fd, 'utf8');
    } finally {
      closeSync(fd);
    }
  } catch (e) {
    if (e instanceof ConfigError) throw e;
    const code = (e as NodeJS.ErrnoException).code ?? 'unreadable';
    throw new ConfigError(variable, `cannot read ${path} (${code}); expected a file the bridge's user can read that holds the value`);
  }
  const value = text.replace(/(\r?\n)+$/, '');
  if (value === '') throw new ConfigError(variable, `${path} is empty; expected the file to hold the value`);
  return value;
}

/** A secret variable's value, from the variable or from its `_FILE` form (never both), with where it came from. */
function secretValue(env: NodeJS.ProcessEnv, name: string): { raw: string; file?: { variable: string; path: string } } | undefined {
  const direct = env[name];
  const fileVariable = `${name}_FILE`;
  const path = env[fileVariable];
  const hasDirect = direct !== undefined && direct !== '';
  const hasFile = path !== undefined && path !== '';
  if (hasDirect && hasFile) {
    const imageDefault = name === 'SCIM_BRIDGE_DATABASE_URL' ? ' (the image sets SCIM_BRIDGE_DATABASE_URL: set it to the empty string beside the _FILE form)' : '';
    throw new ConfigError(fileVariable, `expected either ${name} or ${fileVariable}, not both${imageDefault}`);
  }
  if (hasFile) return { raw: readSecretFile(fileVariable, path), file: { variable: fileVariable, path } };
  return hasDirect ? { raw: direct } : undefined;
}

export function sha256Hex(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

type Parse<T> = (raw: string) => T;

/** Each variable: how to read it, or throw the one-line explanation of what it expects. */
function read<T>(env: NodeJS.ProcessEnv, name: string, parse: Parse<T>, fallback: T): T {
  if ((SECRET_VARIABLES as readonly string[]).includes(name)) {
    const value = secretValue(env, name);
    if (value === undefined) return fallback;
    if (value.file === undefined) return parse(value.raw);
    try {
      return parse(value.raw);
    } catch (e) {
      // The value came from the file: the error names the _FILE variable and the file (never the content).
      if (e instanceof ConfigError) throw new ConfigError(value.file.variable, `the content of ${value.file.path}: ${e.expected}`);
      throw e;
    }
  }
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  return parse(raw);
}

function expect(name: string, ok: boolean, what: string): void {
  if (!ok) throw new ConfigError(name, what);
}

const port: Parse<number> = (raw) => {
  const n = Number(raw);
  expect('SCIM_BRIDGE_PORT', /^\d{1,5}$/.test(raw) && n <= 65535, 'expected a port number from 0 to 65535');
  return n;
};
const host: Parse<string> = (raw) => {
  expect('SCIM_BRIDGE_HOST', /^[A-Za-z0-9.:[\]-]+$/.test(raw), 'expected an address to listen on, such as 127.0.0.1 or 0.0.0.0');
  return raw;
};
const databaseUrl: Parse<string> = (raw) => {
  expect('SCIM_BRIDGE_DATABASE_URL', /^sqlite:.+/.test(raw) || /^postgres(ql)?:\/\/.+/.test(raw), 'expected sqlite:<path> or postgres://user:password@host/database');
  return raw;
};
const tokenHashes = (name: string): Parse<string[]> => (raw) => {
  const list = raw.split(',').map((h) => h.trim().toLowerCase()).filter((h) => h !== '');
  expect(name, list.length > 0 && list.every((h) => /^[0-9a-f]{64}$/.test(h)), 'expected hex SHA-256 hashes (64 hex digits each), comma-separated');
  return list;
};
const clearToken = (name: string): Parse<string> => (raw) => {
  expect(name, raw.length >= 16, 'expected a token of at least 16 characters');
  return raw;
};
const domains: Parse<string[]> = (raw) => {
  const list = raw.split(',').map((d) => d.trim().toLowerCase().replace(/^@/, '')).filter((d) => d !== '');
  expect('SCIM_BRIDGE_ALLOWED_DOMAINS', list.length > 0 && list.every((d) => /^[a-z0-9-]+(\.[a-z0-9-]+)+$/.test(d)), 'expected email domains, comma-separated, such as example.com,example.org');
  return list;
};
const webhookUrl: Parse<string> = (raw) => {
  let ok = false;
  try {
    ok = ['http:', 'https:'].includes(new URL(raw).protocol);
  } catch {
    ok = false;
  }
  expect('SCIM_BRIDGE_WEBHOOK_URL', ok, 'expected an http(s) URL of the downstream endpoint, such as https://app.example.com/scim-events');
  return raw;
};
const hours: Parse<number> = (raw) => {
  const n = Number(raw);
  expect('SCIM_BRIDGE_WEBHOOK_RETRY_HOURS', Number.isFinite(n) && n > 0 && n <= 24 * 30, 'expected a number of hours from 0 to 720');
  return n;
};
const days: Parse<number> = (raw) => {
  const n = Number(raw);
  expect('SCIM_BRIDGE_EVENTS_RETENTION_DAYS', Number.isInteger(n) && n >= 1 && n <= 3650, 'expected a whole number of days from 1 to 3650');
  return n;
};
/**
 * `true`: the gateway is on this machine or a private network (loopback and private addresses: 127.0.0.0/8, ::1,
 * 10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16, fc00::/7), as on our hosts, where Caddy reaches the bridge over a
 * Docker network and nothing else can. A client from any other address is its own client: its X-Forwarded-For is
 * not believed, so it cannot pose as many addresses to the failed-auth limiter.
 */
export const TRUST_PROXY_TRUE = ['loopback', 'uniquelocal'] as const;
const PROXY_NAMES = ['loopback', 'linklocal', 'uniquelocal'];

function proxyEntry(entry: string): boolean {
  if (PROXY_NAMES.includes(entry) || isIP(entry) !== 0) return true;
  const cidr = /^([^/]+)\/(\d{1,3})$/.exec(entry);
  if (!cidr) return false;
  const family = isIP(cidr[1]);
  return family !== 0 && Number(cidr[2]) <= (family === 4 ? 32 : 128);
}

const trustProxy: Parse<readonly string[]> = (raw) => {
  const v = raw.trim().toLowerCase();
  if (v === 'false' || v === '0') return [];
  if (v === 'true' || v === '1') return [...TRUST_PROXY_TRUE];
  const list = raw.split(',').map((e) => e.trim()).filter((e) => e !== '');
  expect(
    'SCIM_BRIDGE_TRUST_PROXY',
    list.length > 0 && list.every(proxyEntry),
    "expected false, true (a gateway on loopback or a private network), or the gateway's addresses or CIDR ranges, comma-separated, such as 10.0.0.5 or 10.0.0.0/24",
  );
  return list;
};

const publicUrl: Parse<string> = (raw) => {
  let url: URL | undefined;
  try {
    url = /^https?:\/\/[^\s\\?#]+$/i.test(raw) ? new URL(raw) : undefined;
  } catch {
    url = undefined;
  }
  // The bridge answers at the root and at /scim/v2 alike, and a location keeps the prefix the client used: a Base URL
  // ending in /scim/v2 names the same host. Any other path would need a gateway that strips it: not supported.
  const path = url?.pathname.replace(/\/+$/, '') ?? '';
  expect(
    'SCIM_BRIDGE_PUBLIC_URL',
    url !== undefined && url.hostname !== '' && url.username === '' && url.password === '' && (path === '' || path.toLowerCase() === '/scim/v2'),
    'expected the Base URL as the identity provider sees it, https://<domain> (an optional port; no other path than /scim/v2), such as https://scim.example.com',
  );
  return `${url!.protocol}//${url!.host}`;
};

/** Parses the environment; throws ConfigError naming the first bad variable. Secrets never appear in the message. */
function webhookConfig(env: NodeJS.ProcessEnv): BridgeConfig['webhook'] {
  const url = read<string | undefined>(env, 'SCIM_BRIDGE_WEBHOOK_URL', webhookUrl, undefined);
  const secret = read<string | undefined>(env, 'SCIM_BRIDGE_WEBHOOK_SECRET', clearToken('SCIM_BRIDGE_WEBHOOK_SECRET'), undefined);
  const retryHours = read(env, 'SCIM_BRIDGE_WEBHOOK_RETRY_HOURS', hours, 24);
  if (url === undefined && secret === undefined) return undefined;
  expect(url === undefined ? 'SCIM_BRIDGE_WEBHOOK_URL' : 'SCIM_BRIDGE_WEBHOOK_SECRET', url !== undefined && secret !== undefined, 'expected both SCIM_BRIDGE_WEBHOOK_URL and SCIM_BRIDGE_WEBHOOK_SECRET, or neither');
  return { url: url!, secret: secret!, retryHours };
}

export function readConfig(env: NodeJS.ProcessEnv = process.env): BridgeConfig {
  checkNames(env);
  const hashes = read(env, 'SCIM_BRIDGE_TOKEN_SHA256', tokenHashes('SCIM_BRIDGE_TOKEN_SHA256'), []);
  const token = read<string | undefined>(env, 'SCIM_BRIDGE_TOKEN', clearToken('SCIM_BRIDGE_TOKEN'), undefined);
  if (token !== undefined) hashes.push(sha256Hex(token));
  const appHashes = read(env, 'SCIM_BRIDGE_APP_TOKEN_SHA256', tokenHashes('SCIM_BRIDGE_APP_TOKEN_SHA256'), []);
  const appToken = read<string | undefined>(env, 'SCIM_BRIDGE_APP_TOKEN', clearToken('SCIM_BRIDGE_APP_TOKEN'), undefined);
  if (appToken !== undefined) appHashes.push(sha256Hex(appToken));
  const trustedProxies = read<readonly string[]>(env, 'SCIM_BRIDGE_TRUST_PROXY', trustProxy, []);
  const shared = appHashes.some((h) => hashes.includes(h));
  expect(appToken !== undefined ? 'SCIM_BRIDGE_APP_TOKEN' : 'SCIM_BRIDGE_APP_TOKEN_SHA256', !shared, "expected the application's own token, never the identity provider's");
  return {
    appTokenHashes: [...new Set(appHashes)],
    port: read(env, 'SCIM_BRIDGE_PORT', port, 8080),
    host: read(env, 'SCIM_BRIDGE_HOST', host, '127.0.0.1'),
    databaseUrl: read(env, 'SCIM_BRIDGE_DATABASE_URL', databaseUrl, 'sqlite:./data/scim-bridge.db'),
    tokenHashes: [...new Set(hashes)],
    trustProxy: trustedProxies.length > 0,
    trustedProxies,
    publicUrl: read<string | undefined>(env, 'SCIM_BRIDGE_PUBLIC_URL', publicUrl, undefined),
    allowedDomains: read(env, 'SCIM_BRIDGE_ALLOWED_DOMAINS', domains, []),
    webhook: webhookConfig(env),
    eventsRetentionDays: read(env, 'SCIM_BRIDGE_EVENTS_RETENTION_DAYS', days, 30),
    metricsTokenHashes: [...new Set(read(env, 'SCIM_BRIDGE_METRICS_TOKEN_SHA256', tokenHashes('SCIM_BRIDGE_METRICS_TOKEN_SHA256'), []))],
  };
}
