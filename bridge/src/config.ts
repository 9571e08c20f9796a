/**
 * The bridge's configuration, read from the environment once at start (see the table in README.md).
 * A bad value stops the start with one line naming the variable and what it expects.
 */
import { createHash, createPrivateKey } from 'node:crypto';
import { closeSync, fstatSync, openSync, readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { connectionConfig, DatabaseUrlError, DEFAULT_POOL_SIZE, readCaFile } from './store/postgres';

export interface BridgeConfig {
  readonly port: number;
  readonly host: string;
  readonly databaseUrl: string;
  /** PostgreSQL: connections at most, per replica (SCIM_BRIDGE_DATABASE_POOL). */
  readonly databasePool: number;
  /** PostgreSQL: PEM of the CA that signs the server's certificate (read from SCIM_BRIDGE_DATABASE_CA's file). */
  readonly databaseCaPem?: string;
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
  /** The Google Workspace connector (SCIM_BRIDGE_GOOGLE_*), when set: off otherwise. */
  readonly google?: GoogleConfig;
  /** Hashes of tokens that open GET /metrics only (a Prometheus scraper's); the IdP's token opens it too. */
  readonly metricsTokenHashes: readonly string[];
}

/** What the Google Workspace connector needs (README, "Google Workspace"). */
export interface GoogleConfig {
  /** The service account's JSON key: its email, private key (PEM) and key id. */
  readonly serviceAccount: { readonly clientEmail: string; readonly privateKey: string; readonly privateKeyId?: string };
  /** The administrator the service account impersonates (domain-wide delegation). */
  readonly admin: string;
  /** The groups to sync, by email address (or Google's group id); their members are the users. */
  readonly groups: readonly string[];
  /** How often the directory is read. */
  readonly intervalMs: number;
  /** The Directory API's root (Google's, or a stand-in), without a trailing slash. */
  readonly apiUrl: string;
  /** The OAuth token endpoint; also the audience of the signed assertion. */
  readonly tokenUrl: string;
}

export const GOOGLE_API_URL = 'https://admin.googleapis.com';
export const GOOGLE_TOKEN_URL = 'https://oauth2.googleapis.com/token';
export const GOOGLE_DEFAULT_INTERVAL_MS = 10 * 60_000;

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
  'SCIM_BRIDGE_GOOGLE_CREDENTIALS',
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
  'SCIM_BRIDGE_DATABASE_POOL',
  'SCIM_BRIDGE_DATABASE_CA',
  'SCIM_BRIDGE_GOOGLE_ADMIN',
  'SCIM_BRIDGE_GOOGLE_GROUPS',
  'SCIM_BRIDGE_GOOGLE_INTERVAL',
  'SCIM_BRIDGE_GOOGLE_API_URL',
  'SCIM_BRIDGE_GOOGLE_TOKEN_URL',
  ...SECRET_VARIABLES,
  ...SECRET_VARIABLES.map((v) => `${v}_FILE`),
];

/**
 * Known, never suggested: SCIM_BRIDGE_SHUTDOWN_GRACE_MS (main.ts; tests shorten the stop's grace period with it)
 * and the test suite's own SCIM_BRIDGE_TEST_CACHE (README, "A real first boot in the tests"), which bridges
 * started by the tests inherit.
 */
export const INTERNAL_VARIABLES: readonly string[] = ['SCIM_BRIDGE_SHUTDOWN_GRACE_MS', 'SCIM_BRIDGE_TEST_CACHE'];

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
  const candidates = SUPPORTED_VARIABLES;
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
 * be ignored without a word (the stack configuration refuses unknown keys the same way).
 */
function checkNames(env: NodeJS.ProcessEnv): void {
  for (const name of Object.keys(env).sort()) {
    if (!name.startsWith('SCIM_BRIDGE_')) continue;
    if (SUPPORTED_VARIABLES.includes(name) || INTERNAL_VARIABLES.includes(name)) continue;
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
  if (raw.startsWith('postgres')) {
    try {
      connectionConfig(raw);
    } catch (e) {
      // The message never repeats the URL: it may hold the password.
      if (e instanceof DatabaseUrlError) throw new ConfigError('SCIM_BRIDGE_DATABASE_URL', e.message);
      throw e;
    }
  }
  return raw;
};
const poolSize: Parse<number> = (raw) => {
  const n = Number(raw);
  expect('SCIM_BRIDGE_DATABASE_POOL', /^\d{1,3}$/.test(raw) && n >= 1 && n <= 200, 'expected a number of connections from 1 to 200 (PostgreSQL only; default 10)');
  return n;
};
const caFile: Parse<string> = (raw) => {
  try {
    return readCaFile(raw);
  } catch (e) {
    if (e instanceof DatabaseUrlError) throw new ConfigError('SCIM_BRIDGE_DATABASE_CA', `${e.message}; expected the PEM file of the CA that signs PostgreSQL's certificate`);
    throw new ConfigError('SCIM_BRIDGE_DATABASE_CA', `cannot read ${raw} (${(e as NodeJS.ErrnoException).code ?? 'unreadable'}); expected the PEM file of the CA that signs PostgreSQL's certificate`);
  }
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

const email = (name: string, what: string): Parse<string> => (raw) => {
  const v = raw.trim();
  expect(name, /^[^\s@,]+@[^\s@,]+\.[^\s@,]+$/.test(v), what);
  return v;
};

const googleGroups: Parse<string[]> = (raw) => {
  const list = raw.split(',').map((g) => g.trim()).filter((g) => g !== '');
  expect(
    'SCIM_BRIDGE_GOOGLE_GROUPS',
    list.length > 0 && list.every((g) => /^[^\s@,]+@[^\s@,]+\.[^\s@,]+$/.test(g) || /^[0-9a-z]{6,}$/i.test(g)),
    "expected the groups to sync, by email address, comma-separated, such as engineering@example.com,sales@example.com (or Google's group ids)",
  );
  return [...new Set(list.map((g) => g.toLowerCase()))];
};

/** A duration as `90s`, `10m` or `1h`: from 1 second to 24 hours. */
export function parseDuration(raw: string): number | undefined {
  const m = /^(\d{1,6})(s|m|h)$/.exec(raw.trim());
  if (!m) return undefined;
  const ms = Number(m[1]) * { s: 1_000, m: 60_000, h: 3_600_000 }[m[2] as 's' | 'm' | 'h'];
  return ms >= 1_000 && ms <= 86_400_000 ? ms : undefined;
}

const googleInterval: Parse<number> = (raw) => {
  const ms = parseDuration(raw);
  expect('SCIM_BRIDGE_GOOGLE_INTERVAL', ms !== undefined, 'expected a duration from 1s to 24h, such as 90s, 10m or 1h');
  return ms!;
};

const httpUrl = (name: string, example: string): Parse<string> => (raw) => {
  let ok = false;
  try {
    ok = ['http:', 'https:'].includes(new URL(raw).protocol);
  } catch {
    ok = false;
  }
  expect(name, ok, `expected an http(s) URL, such as ${example} (the default)`);
  return raw.replace(/\/+$/, '');
};

/**
 * The service account's JSON key as the Google Cloud console downloads it. Never quoted in an error: it holds
 * the private key.
 */
const serviceAccountKey: Parse<GoogleConfig['serviceAccount']> = (raw) => {
  const name = 'SCIM_BRIDGE_GOOGLE_CREDENTIALS';
  const fix = "expected the service account's JSON key as downloaded from the Google Cloud console (IAM > Service accounts > Keys > Add key > JSON)";
  let key: Record<string, unknown>;
  try {
    key = JSON.parse(raw) as Record<string, unknown>;
  } catch {
    throw new ConfigError(name, `not JSON; ${fix}`);
  }
  expect(name, typeof key === 'object' && key !== null && !Array.isArray(key), fix);
  expect(name, key.type === 'service_account', `its "type" is not "service_account"; ${fix}`);
  expect(name, typeof key.client_email === 'string' && key.client_email.includes('@'), `it has no "client_email"; ${fix}`);
  expect(name, typeof key.private_key === 'string', `it has no "private_key"; ${fix}`);
  try {
    const k = createPrivateKey(key.private_key as string);
    expect(name, k.asymmetricKeyType === 'rsa', `its "private_key" is not an RSA key; ${fix}`);
  } catch (e) {
    if (e instanceof ConfigError) throw e;
    throw new ConfigError(name, `its "private_key" is not a readable PEM private key; ${fix}`);
  }
  return {
    clientEmail: key.client_email as string,
    privateKey: key.private_key as string,
    privateKeyId: typeof key.private_key_id === 'string' ? key.private_key_id : undefined,
  };
};

/** The connector is on when any of its settings is; then credentials, admin and groups are all required. */
function googleConfig(env: NodeJS.ProcessEnv): GoogleConfig | undefined {
  const serviceAccount = read<GoogleConfig['serviceAccount'] | undefined>(env, 'SCIM_BRIDGE_GOOGLE_CREDENTIALS', serviceAccountKey, undefined);
  const admin = read<string | undefined>(
    env,
    'SCIM_BRIDGE_GOOGLE_ADMIN',
    email('SCIM_BRIDGE_GOOGLE_ADMIN', 'expected the email address of a Google Workspace administrator for the service account to impersonate, such as admin@example.com'),
    undefined,
  );
  const groups = read<string[] | undefined>(env, 'SCIM_BRIDGE_GOOGLE_GROUPS', googleGroups, undefined);
  const intervalMs = read(env, 'SCIM_BRIDGE_GOOGLE_INTERVAL', googleInterval, GOOGLE_DEFAULT_INTERVAL_MS);
  const apiUrl = read(env, 'SCIM_BRIDGE_GOOGLE_API_URL', httpUrl('SCIM_BRIDGE_GOOGLE_API_URL', GOOGLE_API_URL), GOOGLE_API_URL);
  const tokenUrl = read(env, 'SCIM_BRIDGE_GOOGLE_TOKEN_URL', httpUrl('SCIM_BRIDGE_GOOGLE_TOKEN_URL', GOOGLE_TOKEN_URL), GOOGLE_TOKEN_URL);
  const anySet = Object.keys(env).some((n) => n.startsWith('SCIM_BRIDGE_GOOGLE_') && env[n] !== undefined && env[n] !== '');
  if (!anySet) return undefined;
  const missing = [
    serviceAccount === undefined ? 'SCIM_BRIDGE_GOOGLE_CREDENTIALS' : undefined,
    admin === undefined ? 'SCIM_BRIDGE_GOOGLE_ADMIN' : undefined,
    groups === undefined ? 'SCIM_BRIDGE_GOOGLE_GROUPS' : undefined,
  ].filter((m): m is string => m !== undefined);
  if (missing.length > 0) {
    throw new ConfigError(
      missing[0],
      'the Google Workspace connector needs SCIM_BRIDGE_GOOGLE_CREDENTIALS (or its _FILE form), SCIM_BRIDGE_GOOGLE_ADMIN and SCIM_BRIDGE_GOOGLE_GROUPS together; set it, or unset every SCIM_BRIDGE_GOOGLE_* variable',
    );
  }
  return { serviceAccount: serviceAccount!, admin: admin!, groups: groups!, intervalMs, apiUrl, tokenUrl };
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
  const dbUrl = read(env, 'SCIM_BRIDGE_DATABASE_URL', databaseUrl, 'sqlite:./data/scim-bridge.db');
  const databasePool = read(env, 'SCIM_BRIDGE_DATABASE_POOL', poolSize, DEFAULT_POOL_SIZE);
  const databaseCaPem = read<string | undefined>(env, 'SCIM_BRIDGE_DATABASE_CA', caFile, undefined);
  const onPostgres = dbUrl.startsWith('postgres');
  for (const name of ['SCIM_BRIDGE_DATABASE_POOL', 'SCIM_BRIDGE_DATABASE_CA']) {
    expect(name, onPostgres || env[name] === undefined || env[name] === '', 'applies to a postgres:// SCIM_BRIDGE_DATABASE_URL only; unset it for SQLite');
  }
  const shared = appHashes.some((h) => hashes.includes(h));
  expect(appToken !== undefined ? 'SCIM_BRIDGE_APP_TOKEN' : 'SCIM_BRIDGE_APP_TOKEN_SHA256', !shared, "expected the application's own token, never the identity provider's");
  return {
    appTokenHashes: [...new Set(appHashes)],
    port: read(env, 'SCIM_BRIDGE_PORT', port, 8080),
    host: read(env, 'SCIM_BRIDGE_HOST', host, '127.0.0.1'),
    databaseUrl: dbUrl,
    databasePool,
    databaseCaPem,
    tokenHashes: [...new Set(hashes)],
    trustProxy: trustedProxies.length > 0,
    trustedProxies,
    publicUrl: read<string | undefined>(env, 'SCIM_BRIDGE_PUBLIC_URL', publicUrl, undefined),
    allowedDomains: read(env, 'SCIM_BRIDGE_ALLOWED_DOMAINS', domains, []),
    webhook: webhookConfig(env),
    eventsRetentionDays: read(env, 'SCIM_BRIDGE_EVENTS_RETENTION_DAYS', days, 30),
    google: googleConfig(env),
    metricsTokenHashes: [...new Set(read(env, 'SCIM_BRIDGE_METRICS_TOKEN_SHA256', tokenHashes('SCIM_BRIDGE_METRICS_TOKEN_SHA256'), []))],
  };
}
