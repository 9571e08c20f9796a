/**
 * The Directory API as a service account with domain-wide delegation reads it: a signed JWT assertion (RS256,
 * `sub` = the impersonated administrator, read-only scopes) exchanged for an access token, then plain GETs.
 * node:crypto and node:https only: see README, "Google Workspace" (why not googleapis). Not fetch: its first use
 * loads undici (and its WebAssembly HTTP parser) into the process, about 10 MB resident in the bridge, which the
 * 128 MB budget does not have during a first sync (bench/google-sync-memory.ts).
 *
 * Robust the way Google asks clients to be: 429, 5xx and rate-limit 403s are retried with exponential backoff
 * (Retry-After honoured), a 401 fetches a new token once (a token that expired mid-sync), every request has a
 * timeout, and an abort (the bridge stopping) ends the wait at once.
 */
import { createSign } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';

/** Read-only, and no more than the sync reads: users, and groups with their members. */
export const SCOPES = [
  'https://www.googleapis.com/auth/admin.directory.user.readonly',
  'https://www.googleapis.com/auth/admin.directory.group.readonly',
] as const;

export interface ServiceAccount {
  readonly clientEmail: string;
  readonly privateKey: string;
  readonly privateKeyId?: string;
}

export interface ApiTimings {
  /** The first retry's delay; each further one doubles, with jitter. */
  readonly retryBaseDelayMs: number;
  readonly retryMaxDelayMs: number;
  /** Attempts of one request in all (the first included). */
  readonly maxAttempts: number;
  /** A Retry-After longer than this ends the sync with an error (the next one tries again) instead of waiting. */
  readonly maxRetryAfterMs: number;
  /** One request, from its start to its last byte. */
  readonly requestTimeoutMs: number;
}

export const API_TIMINGS: ApiTimings = {
  retryBaseDelayMs: 1_000,
  retryMaxDelayMs: 32_000,
  maxAttempts: 6,
  maxRetryAfterMs: 5 * 60_000,
  requestTimeoutMs: 30_000,
};

export interface DirectoryApiOptions {
  readonly serviceAccount: ServiceAccount;
  readonly admin: string;
  /** The Directory API's root, such as https://admin.googleapis.com. */
  readonly apiUrl: string;
  /** The token endpoint, and the assertion's audience. */
  readonly tokenUrl: string;
  readonly timings?: Partial<ApiTimings>;
}

/** A failure of Google's API (or of reaching it), with what to do about it. */
export class GoogleApiError extends Error {
  constructor(
    message: string,
    readonly status?: number,
  ) {
    super(message);
    this.name = 'GoogleApiError';
  }
}

const base64url = (data: string | Buffer) => Buffer.from(data).toString('base64url');

/** The JWT assertion of RFC 7523 as Google's token endpoint takes it, signed with the service account's key. */
export function signedAssertion(account: ServiceAccount, admin: string, tokenUrl: string, nowSeconds = Math.floor(Date.now() / 1000)): string {
  const header = { alg: 'RS256', typ: 'JWT', ...(account.privateKeyId ? { kid: account.privateKeyId } : {}) };
  const claims = { iss: account.clientEmail, sub: admin, scope: SCOPES.join(' '), aud: tokenUrl, iat: nowSeconds, exp: nowSeconds + 3600 };
  const unsigned = `${base64url(JSON.stringify(header))}.${base64url(JSON.stringify(claims))}`;
  const signature = createSign('RSA-SHA256').update(unsigned).sign(account.privateKey);
  return `${unsigned}.${base64url(signature)}`;
}

/** Retry-After as seconds or an HTTP date, in milliseconds; undefined when absent or unreadable. */
export function retryAfterMs(header: string | null, now = Date.now()): number | undefined {
  if (header === null || header.trim() === '') return undefined;
  if (/^\d+$/.test(header.trim())) return Number(header.trim()) * 1000;
  const at = Date.parse(header);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Google's error body: `{ error: { code, message, errors: [{ reason }] } }` (API) or `{ error, error_description }` (OAuth). */
interface ErrorBody {
  error?: string | { message?: string; errors?: { reason?: string }[] };
  error_description?: string;
}

function errorBody(res: Answer): ErrorBody {
  try {
    return res.json() as ErrorBody;
  } catch {
    return {};
  }
}

/** An HTTP answer read in full (Google's pages are a few hundred kB at most). */
interface Answer {
  readonly status: number;
  readonly ok: boolean;
  header(name: string): string | null;
  json(): unknown;
}

/** One request over node:http(s), its body read in full; `signal` (the timeout, the bridge stopping) cuts it. */
function request(url: URL, init: { method: 'GET' | 'POST'; headers: Record<string, string>; body?: string; signal: AbortSignal; agents: Agents }): Promise<Answer> {
  const secure = url.protocol === 'https:';
  return new Promise((resolve, reject) => {
    const req = (secure ? https : http).request(
      url,
      {
        method: init.method,
        headers: { ...init.headers, ...(init.body !== undefined ? { 'Content-Length': String(Buffer.byteLength(init.body)) } : {}) },
        agent: secure ? init.agents.https : init.agents.http,
        signal: init.signal,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          const status = res.statusCode ?? 0;
          resolve({
            status,
            ok: status >= 200 && status < 300,
            header: (name) => {
              const v = res.headers[name.toLowerCase()];
              return v === undefined ? null : Array.isArray(v) ? v.join(', ') : v;
            },
            json: () => JSON.parse(text),
          });
        });
      },
    );
    req.on('error', (err) => reject(init.signal.aborted ? (init.signal.reason ?? err) : err));
    req.end(init.body);
  });
}

/** Kept-alive connections: one sync sends dozens of requests to the same two hosts. */
interface Agents {
  readonly http: http.Agent;
  readonly https: https.Agent;
}

/** 403s that are rate limits, not refusals (Google sends both as 403). */
const RATE_LIMIT_REASONS = new Set(['rateLimitExceeded', 'userRateLimitExceeded', 'quotaExceeded']);

const RETRIED_STATUSES = new Set([429, 500, 502, 503, 504]);

export class DirectoryApi {
  private readonly timings: ApiTimings;
  private token?: { value: string; expiresAt: number };
  /** Requests sent (token requests included), for the sync's counts. */
  requests = 0;
  private readonly agents: Agents = { http: new http.Agent({ keepAlive: true, maxSockets: 2 }), https: new https.Agent({ keepAlive: true, maxSockets: 2 }) };

  constructor(private readonly options: DirectoryApiOptions) {
    this.timings = { ...API_TIMINGS, ...options.timings };
  }

  /** Closes the kept-alive connections (the bridge stopping). */
  close(): void {
    this.agents.http.destroy();
    this.agents.https.destroy();
  }

  /** One request with retries; `attempt` runs it once and says whether to retry and after how long. */
  private async withRetries<T>(what: string, signal: AbortSignal | undefined, attempt: () => Promise<{ done: T } | { retryAfterMs?: number; error: string }>): Promise<T> {
    let last = '';
    for (let n = 1; n <= this.timings.maxAttempts; n++) {
      signal?.throwIfAborted();
      let outcome: { done: T } | { retryAfterMs?: number; error: string };
      try {
        outcome = await attempt();
      } catch (err) {
        if (err instanceof GoogleApiError) throw err;
        if (signal?.aborted) throw signal.reason;
        // A connection refused or reset, a DNS failure, a timeout: worth another try.
        outcome = { error: `${what}: ${(err as Error).message}${(err as { cause?: Error }).cause ? ` (${(err as { cause: Error }).cause.message})` : ''}` };
      }
      if ('done' in outcome) return outcome.done;
      last = outcome.error;
      if (n === this.timings.maxAttempts) break;
      if (outcome.retryAfterMs !== undefined && outcome.retryAfterMs > this.timings.maxRetryAfterMs) {
        throw new GoogleApiError(`${last}; Google asked to wait ${Math.ceil(outcome.retryAfterMs / 1000)} s (Retry-After), longer than a sync waits; the next sync tries again`);
      }
      const backoff = Math.min(this.timings.retryMaxDelayMs, this.timings.retryBaseDelayMs * 2 ** (n - 1)) * (0.5 + Math.random() / 2);
      await sleep(outcome.retryAfterMs ?? backoff, signal);
    }
    throw new GoogleApiError(`${last} (gave up after ${this.timings.maxAttempts} attempts)`);
  }

  /** An access token, from the cache unless it is about to expire or `renew` (after a 401). */
  private async accessToken(signal: AbortSignal | undefined, renew = false): Promise<string> {
    if (!renew && this.token && this.token.expiresAt - 60_000 > Date.now()) return this.token.value;
    const { tokenUrl, admin, serviceAccount } = this.options;
    const value = await this.withRetries<{ value: string; expiresAt: number }>('the token endpoint', signal, async () => {
      this.requests++;
      const res = await request(new URL(tokenUrl), {
        method: 'POST',
        headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer', assertion: signedAssertion(serviceAccount, admin, tokenUrl) }).toString(),
        signal: this.requestSignal(signal),
        agents: this.agents,
      });
      if (res.ok) {
        const body = res.json() as { access_token?: string; expires_in?: number };
        if (typeof body.access_token !== 'string') throw new GoogleApiError(`the token endpoint ${tokenUrl} answered without an access_token`);
        return { done: { value: body.access_token, expiresAt: Date.now() + (Number(body.expires_in) || 3600) * 1000 } };
      }
      if (RETRIED_STATUSES.has(res.status)) {
        return { retryAfterMs: retryAfterMs(res.header('retry-after')), error: `the token endpoint answered ${res.status}` };
      }
      const body = errorBody(res);
      const code = typeof body.error === 'string' ? body.error : undefined;
      const description = body.error_description ? ` (${body.error_description})` : '';
      const fix =
        code === 'unauthorized_client'
          ? `: grant the service account's client id domain-wide delegation with the scopes ${SCOPES.join(', ')} (Admin console > Security > API controls > Domain-wide delegation)`
          : code === 'invalid_grant'
            ? `: check SCIM_BRIDGE_GOOGLE_ADMIN (${admin}) is an administrator of the domain, that the key is not deleted, and the clock`
            : '';
      throw new GoogleApiError(`the token endpoint refused the service account ${serviceAccount.clientEmail} impersonating ${admin}: ${res.status} ${code ?? ''}${description}${fix}`, res.status);
    });
    this.token = value;
    return value.value;
  }

  private requestSignal(signal: AbortSignal | undefined): AbortSignal {
    const timeout = AbortSignal.timeout(this.timings.requestTimeoutMs);
    return signal ? AbortSignal.any([signal, timeout]) : timeout;
  }

  /**
   * GET `path` (under the API's root) with `query`; the parsed JSON, or null on 404 when `notFound` is 'null'.
   * A 401 fetches a new token and tries once more; a second 401 is an error.
   */
  async get<T>(path: string, query: Record<string, string | undefined>, signal?: AbortSignal): Promise<T | null> {
    const url = new URL(`${this.options.apiUrl}${path}`);
    for (const [k, v] of Object.entries(query)) if (v !== undefined) url.searchParams.set(k, v);
    let renewed = false;
    return this.withRetries<T | null>(`GET ${path}`, signal, async () => {
      for (;;) {
        const token = await this.accessToken(signal, false);
        this.requests++;
        const res = await request(url, { method: 'GET', headers: { Authorization: `Bearer ${token}`, Accept: 'application/json' }, signal: this.requestSignal(signal), agents: this.agents });
        if (res.ok) return { done: res.json() as T };
        if (res.status === 404) return { done: null };
        if (res.status === 401 && !renewed) {
          // The token expired (or was revoked) since it was issued: one new token, one more try.
          renewed = true;
          await this.accessToken(signal, true);
          continue;
        }
        if (RETRIED_STATUSES.has(res.status)) {
          return { retryAfterMs: retryAfterMs(res.header('retry-after')), error: `GET ${path} answered ${res.status}` };
        }
        const body = errorBody(res);
        const detail = typeof body.error === 'object' ? body.error : undefined;
        const reason = detail?.errors?.[0]?.reason;
        if (res.status === 403 && reason !== undefined && RATE_LIMIT_REASONS.has(reason)) {
          return { retryAfterMs: retryAfterMs(res.header('retry-after')), error: `GET ${path} answered 403 ${reason}` };
        }
        const fix =
          res.status === 403
            ? `; check that ${this.options.admin} may read the directory and that domain-wide delegation grants ${SCOPES.join(', ')}`
            : res.status === 401
              ? '; a new token was refused as well: check domain-wide delegation'
              : '';
        throw new GoogleApiError(`GET ${path} answered ${res.status}${reason ? ` ${reason}` : ''}${detail?.message ? `: ${detail.message}` : ''}${fix}`, res.status);
      }
    });
  }

  /**
   * Every page of a list (`nextPageToken`), one at a time: the caller keeps what it needs from each page, so a
   * large directory is never held as Google sent it. A list that is gone (404) throws.
   */
  async *pages<T>(path: string, query: Record<string, string | undefined>, signal?: AbortSignal): AsyncGenerator<T> {
    let pageToken: string | undefined;
    do {
      const page = await this.get<T & { nextPageToken?: string }>(path, { ...query, pageToken }, signal);
      if (page === null) throw new GoogleApiError(`GET ${path} answered 404 (it disappeared while being read)`, 404);
      yield page as T;
      pageToken = page.nextPageToken || undefined;
    } while (pageToken !== undefined);
  }
}
