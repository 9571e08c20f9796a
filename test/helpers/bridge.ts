/**
 * Starts the real bridge in-process on a free loopback port with a fresh store (a SQLite file, or a PostgreSQL
 * database of its own on the run's server), as `npm start` would, and gives tests an HTTP client that sends the
 * bearer token. Suites that every store must pass run `describe.each(STORES)` and hand the store to startBridge.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import request from 'supertest';
import { readConfig } from '../../bridge/src/config';
import { createLogger } from '../../bridge/src/log';
import { RunningBridge, start, StartOptions } from '../../bridge/src/server';
import { createTestDatabase } from './postgres';

export const TOKEN = 'test-token-0123456789abcdef';
/** The application API's token: never the IdP's. */
export const APP_TOKEN = 'app-token-0123456789abcdef';

export interface TestBridge {
  readonly url: string;
  readonly bridge: RunningBridge;
  readonly dir: string;
  /** Requests with `Authorization: Bearer <TOKEN>`. */
  get(path: string): request.Test;
  post(path: string, body?: unknown): request.Test;
  put(path: string, body?: unknown): request.Test;
  patch(path: string, body?: unknown): request.Test;
  delete(path: string): request.Test;
  /** Requests without credentials. */
  anonymous(): ReturnType<typeof request>;
  /** Application API requests (`/api/v1…`) with the application token. */
  app: {
    get(path: string): request.Test;
    post(path: string, body?: unknown): request.Test;
    put(path: string, body?: unknown): request.Test;
  };
  /** The application says the person joined: invited -> active. */
  join(userId: string): Promise<void>;
  stop(): Promise<void>;
}

/** The stores every store-level and HTTP suite runs against. */
export const STORES = ['sqlite', 'postgres'] as const;
export type StoreKind = (typeof STORES)[number];

/** A fresh database of this kind, empty of data (PostgreSQL: a copy of the migrated template): its SCIM_BRIDGE_DATABASE_URL. */
export async function freshDatabaseUrl(store: StoreKind, dir: string): Promise<string> {
  return store === 'postgres' ? createTestDatabase('bridge', { migrated: true }) : `sqlite:${join(dir, 'bridge.db')}`;
}

export async function startBridge(
  env: Record<string, string> = {},
  options: Omit<StartOptions, 'logger'> & { store?: StoreKind } = {},
): Promise<TestBridge> {
  const dir = mkdtempSync(join(tmpdir(), 'scim-bridge-test-'));
  const { store = 'sqlite', ...startOptions } = options;
  const config = readConfig({
    SCIM_BRIDGE_PORT: '0',
    SCIM_BRIDGE_DATABASE_URL: await freshDatabaseUrl(store, dir),
    SCIM_BRIDGE_TOKEN: TOKEN,
    SCIM_BRIDGE_APP_TOKEN: APP_TOKEN,
    ...env,
  });
  const bridge = await start(config, { ...startOptions, logger: createLogger({ level: 'silent', pretty: false }) });
  const http = request(bridge.url);
  const auth = (t: request.Test) => t.set('Authorization', `Bearer ${TOKEN}`);
  const withBody = (t: request.Test, body: unknown) =>
    body === undefined ? auth(t) : auth(t).set('Content-Type', 'application/scim+json').send(JSON.stringify(body));
  return {
    url: bridge.url,
    bridge,
    dir,
    get: (path) => auth(http.get(path)),
    post: (path, body) => withBody(http.post(path), body),
    put: (path, body) => withBody(http.put(path), body),
    patch: (path, body) => withBody(http.patch(path), body),
    delete: (path) => auth(http.delete(path)),
    anonymous: () => http,
    app: {
      get: (path) => http.get(path).set('Authorization', `Bearer ${APP_TOKEN}`),
      post: (path, body) => http.post(path).set('Authorization', `Bearer ${APP_TOKEN}`).set('Content-Type', 'application/json').send(JSON.stringify(body ?? {})),
      put: (path, body) => http.put(path).set('Authorization', `Bearer ${APP_TOKEN}`).set('Content-Type', 'application/json').send(JSON.stringify(body ?? {})),
    },
    async join(userId) {
      const res = await http.post(`/api/v1/users/${userId}/join`).set('Authorization', `Bearer ${APP_TOKEN}`);
      if (res.status !== 200) throw new Error(`join ${userId}: ${res.status} ${res.text}`);
    },
    async stop() {
      await bridge.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export const USER_SCHEMA = 'urn:ietf:params:scim:schemas:core:2.0:User';
export const GROUP_SCHEMA = 'urn:ietf:params:scim:schemas:core:2.0:Group';
export const ENTERPRISE = 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User';
export const PATCH_OP = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';

/** A user body as IdPs send it. */
export function userBody(userName: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  const [given, family] = userName.split('@')[0].split('.');
  return {
    schemas: [USER_SCHEMA],
    userName,
    name: { givenName: given ?? 'Given', familyName: family ?? 'Family' },
    emails: [{ value: userName, type: 'work', primary: true }],
    active: true,
    ...extra,
  };
}

export function patchBody(...operations: Record<string, unknown>[]): Record<string, unknown> {
  return { schemas: [PATCH_OP], Operations: operations };
}
