/** The door to the store: pick the implementation from the database URL. */
import { resolve } from 'node:path';
import { openPostgres } from './postgres';
import { openSqlite } from './sqlite';
import type { Store } from './types';

/** How often the planner's statistics are refreshed. */
const MAINTENANCE_INTERVAL_MS = 10 * 60_000;

export * from './types';

export interface OpenStoreOptions {
  /** PostgreSQL: connections at most. */
  readonly poolSize?: number;
  /** PostgreSQL: PEM of the CA that signs the server's certificate. */
  readonly caPem?: string;
  /** PostgreSQL: an idle connection failed (the pool replaces it). */
  readonly onError?: (error: Error) => void;
}

export async function openStore(databaseUrl: string, options: OpenStoreOptions = {}): Promise<Store> {
  if (/^postgres(ql)?:\/\//.test(databaseUrl)) {
    const store = openPostgres(databaseUrl, options);
    try {
      await store.migrate();
      await store.startMaintenance(MAINTENANCE_INTERVAL_MS);
    } catch (err) {
      await store.close().catch(() => undefined);
      throw err;
    }
    return store;
  }
  if (!databaseUrl.startsWith('sqlite:')) {
    throw new Error(`SCIM_BRIDGE_DATABASE_URL: '${databaseUrl.split(':')[0]}:' is not supported; use sqlite:<path> or postgres://…`);
  }
  const path = databaseUrl.slice('sqlite:'.length);
  const store = openSqlite(path === ':memory:' ? path : resolve(path));
  await store.migrate();
  await store.startMaintenance(MAINTENANCE_INTERVAL_MS);
  return store;
}
