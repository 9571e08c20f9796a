/**
 * A stand-in for Google Workspace on loopback: the OAuth token endpoint, which checks the service account's signed
 * JWT assertion the way Google does (RS256 against the key's public half, `iss`, `sub` = the administrator, the
 * read-only scopes, `aud` = the token URL, the times), and the Directory API's groups.get, members.list and
 * users.list, paged with Google's page sizes. Tests change its data between syncs and inject faults.
 */
import { generateKeyPairSync, KeyObject, verify } from 'node:crypto';
import { once } from 'node:events';
import { createServer, IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export const SCOPES = [
  'https://www.googleapis.com/auth/admin.directory.user.readonly',
  'https://www.googleapis.com/auth/admin.directory.group.readonly',
];

export interface ServiceAccountKey {
  /** The JSON key as the Google Cloud console downloads it. */
  readonly json: string;
  readonly clientEmail: string;
  readonly publicKey: KeyObject;
}

/** A fresh service account key (RSA 2048), in Google's JSON key format. */
export function serviceAccountKey(clientEmail = 'scim-bridge@acme-project.iam.gserviceaccount.com'): ServiceAccountKey {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const json = JSON.stringify({
    type: 'service_account',
    project_id: 'acme-project',
    private_key_id: '3f1c0ffee0ddba11',
    private_key: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    client_email: clientEmail,
    client_id: '109876543210987654321',
    auth_uri: 'https://accounts.google.com/o/oauth2/auth',
    token_uri: 'https://oauth2.googleapis.com/token',
  });
  return { json, clientEmail, publicKey };
}

export function serviceAccountKeyJson(): string {
  return serviceAccountKey().json;
}

export interface GUser {
  id: string;
  primaryEmail: string;
  name: { givenName: string; familyName: string; fullName?: string };
  suspended?: boolean;
  archived?: boolean;
}

export interface GGroup {
  id: string;
  email: string;
  name: string;
  /** Member user ids. */
  members: string[];
}

/** What a test makes one request answer instead (`expireTokens`: the token in use stops being valid first). */
export type Fault = { status: number; retryAfter?: string; body?: unknown } | { expireTokens: true };

export interface Seen {
  readonly method: string;
  readonly path: string;
  readonly query: URLSearchParams;
  readonly at: number;
  status?: number;
}

export class StandInGoogle {
  readonly users = new Map<string, GUser>();
  readonly groups = new Map<string, GGroup>();
  readonly requests: Seen[] = [];
  /** Why assertions were refused (a test expects none unless it sends a bad one). */
  readonly refusedAssertions: string[] = [];
  /** The claims of every accepted assertion. */
  readonly assertions: Record<string, unknown>[] = [];
  /** Called before each answer; a fault it returns replaces the answer. */
  fault?: (req: Seen, n: number) => Fault | undefined;
  private readonly tokens = new Set<string>();
  private tokenSeq = 0;
  private server?: Server;
  url = '';

  constructor(
    readonly key: ServiceAccountKey,
    readonly admin: string,
  ) {}

  get tokenUrl(): string {
    return `${this.url}/token`;
  }

  async start(): Promise<this> {
    this.server = createServer((req, res) => void this.handle(req, res));
    this.server.listen(0, '127.0.0.1');
    await once(this.server, 'listening');
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise((resolve) => this.server?.close(resolve));
  }

  /** Every token issued so far stops being accepted (as when one expires in the middle of a sync). */
  expireTokens(): void {
    this.tokens.clear();
  }

  /** Requests to one path prefix (`/token`, `/admin/directory/v1/users`…). */
  seen(prefix: string): Seen[] {
    return this.requests.filter((r) => r.path.startsWith(prefix));
  }

  addUser(id: string, email: string, extra: Partial<GUser> = {}): GUser {
    const [given, family] = email.split('@')[0].split('.');
    const cap = (s: string | undefined) => (s ? s[0].toUpperCase() + s.slice(1) : 'X');
    const user: GUser = { id, primaryEmail: email, name: { givenName: cap(given), familyName: cap(family) }, ...extra };
    this.users.set(id, user);
    return user;
  }

  addGroup(id: string, email: string, name: string, members: string[] = []): GGroup {
    const group = { id, email, name, members };
    this.groups.set(id, group);
    return group;
  }

  private send(res: ServerResponse, seen: Seen, status: number, body: unknown, headers: Record<string, string> = {}): void {
    seen.status = status;
    res.writeHead(status, { 'Content-Type': 'application/json; charset=UTF-8', ...headers });
    res.end(JSON.stringify(body));
  }

  private apiError(res: ServerResponse, seen: Seen, status: number, message: string, reason: string): void {
    this.send(res, seen, status, { error: { code: status, message, errors: [{ message, domain: 'global', reason }] } });
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://stand-in');
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const seen: Seen = { method: req.method ?? '', path: url.pathname, query: url.searchParams, at: Date.now() };
    this.requests.push(seen);
    const fault = this.fault?.(seen, this.requests.length);
    if (fault && 'expireTokens' in fault) this.expireTokens();
    else if (fault) {
      this.send(res, seen, fault.status, fault.body ?? { error: { code: fault.status, message: 'injected', errors: [{ reason: 'backendError' }] } }, fault.retryAfter ? { 'Retry-After': fault.retryAfter } : {});
      return;
    }
    if (url.pathname === '/token') return this.token(res, seen, req, Buffer.concat(chunks).toString('utf8'));
    const auth = req.headers.authorization ?? '';
    if (!auth.startsWith('Bearer ') || !this.tokens.has(auth.slice('Bearer '.length))) {
      return this.apiError(res, seen, 401, 'Request had invalid authentication credentials.', 'authError');
    }
    const m = /^\/admin\/directory\/v1\/(users|groups\/([^/]+)(\/members)?)$/.exec(url.pathname);
    if (!m || req.method !== 'GET') return this.apiError(res, seen, 404, 'Not Found', 'notFound');
    if (m[1] === 'users') {
      if (url.searchParams.get('customer') !== 'my_customer') return this.apiError(res, seen, 400, 'Bad Request: customer', 'badRequest');
      const users = [...this.users.values()];
      return this.page(res, seen, url, users, 500, 100, 'users', 'admin#directory#users');
    }
    const key = decodeURIComponent(m[2]);
    const group = this.groups.get(key) ?? [...this.groups.values()].find((g) => g.email.toLowerCase() === key.toLowerCase());
    if (!group) return this.apiError(res, seen, 404, 'Resource Not Found: groupKey', 'notFound');
    if (!m[3]) return this.send(res, seen, 200, { kind: 'admin#directory#group', id: group.id, email: group.email, name: group.name, directMembersCount: String(group.members.length) });
    const member = (id: string) => ({ kind: 'admin#directory#member', id, email: this.users.get(id)?.primaryEmail ?? `${id}@external.example`, role: 'MEMBER', type: 'USER', status: 'ACTIVE' });
    return this.page(res, seen, url, group.members, 200, 200, 'members', 'admin#directory#members', member);
  }

  /** Google's paging: maxResults up to `max` (default `byDefault`), an opaque nextPageToken while more remain. */
  private page<T>(res: ServerResponse, seen: Seen, url: URL, items: T[], max: number, byDefault: number, key: string, kind: string, render: (item: T) => unknown = (i) => i): void {
    const maxResults = url.searchParams.has('maxResults') ? Number(url.searchParams.get('maxResults')) : byDefault;
    if (!Number.isInteger(maxResults) || maxResults < 1 || maxResults > max) return this.apiError(res, seen, 400, `Invalid value for maxResults (1-${max})`, 'invalid');
    const token = url.searchParams.get('pageToken');
    const offset = token ? Number(Buffer.from(token, 'base64url').toString('utf8').replace('offset:', '')) : 0;
    const slice = items.slice(offset, offset + maxResults).map(render);
    const body: Record<string, unknown> = { kind, etag: '"stand-in"', [key]: slice };
    if (offset + maxResults < items.length) body.nextPageToken = Buffer.from(`offset:${offset + maxResults}`).toString('base64url');
    this.send(res, seen, 200, body);
  }

  /** The OAuth token endpoint: a JWT bearer grant, verified as Google verifies it. */
  private token(res: ServerResponse, seen: Seen, req: IncomingMessage, body: string): void {
    const refuse = (status: number, error: string, description: string) => {
      this.refusedAssertions.push(description);
      this.send(res, seen, status, { error, error_description: description });
    };
    if (req.method !== 'POST' || !/application\/x-www-form-urlencoded/.test(req.headers['content-type'] ?? '')) return refuse(400, 'invalid_request', 'POST a form');
    const form = new URLSearchParams(body);
    if (form.get('grant_type') !== 'urn:ietf:params:oauth:grant-type:jwt-bearer') return refuse(400, 'unsupported_grant_type', 'grant_type');
    const parts = (form.get('assertion') ?? '').split('.');
    if (parts.length !== 3) return refuse(400, 'invalid_grant', 'not a JWT');
    const [h, c, sig] = parts;
    let header: Record<string, unknown>;
    let claims: Record<string, unknown>;
    try {
      header = JSON.parse(Buffer.from(h, 'base64url').toString('utf8'));
      claims = JSON.parse(Buffer.from(c, 'base64url').toString('utf8'));
    } catch {
      return refuse(400, 'invalid_grant', 'unreadable JWT');
    }
    if (header.alg !== 'RS256') return refuse(400, 'invalid_grant', `alg ${String(header.alg)}`);
    if (!verify('RSA-SHA256', Buffer.from(`${h}.${c}`), this.key.publicKey, Buffer.from(sig, 'base64url'))) return refuse(400, 'invalid_grant', 'Invalid JWT Signature.');
    if (claims.iss !== this.key.clientEmail) return refuse(400, 'invalid_grant', `iss ${String(claims.iss)}`);
    if (claims.aud !== this.tokenUrl) return refuse(400, 'invalid_grant', `aud ${String(claims.aud)}`);
    if (claims.sub !== this.admin) return refuse(400, 'invalid_grant', `sub ${String(claims.sub)}`);
    const now = Math.floor(Date.now() / 1000);
    if (typeof claims.iat !== 'number' || typeof claims.exp !== 'number' || claims.iat > now + 60 || claims.exp <= now || claims.exp - claims.iat > 3600) {
      return refuse(400, 'invalid_grant', 'Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe.');
    }
    const scopes = String(claims.scope ?? '').split(' ').sort();
    if (JSON.stringify(scopes) !== JSON.stringify([...SCOPES].sort())) {
      return refuse(401, 'unauthorized_client', 'Client is unauthorized to retrieve access tokens using this method, or client not authorized for any of the scopes requested.');
    }
    this.assertions.push(claims);
    const token = `ya29.stand-in-${++this.tokenSeq}`;
    this.tokens.add(token);
    this.send(res, seen, 200, { access_token: token, expires_in: 3599, token_type: 'Bearer' });
  }
}
