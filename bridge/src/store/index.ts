/** The door to the store: pick the implementation from the database URL. */
import { resolve } from 'node:path';
import { openSqlite } from './sqlite';
import type { Store } from './types';

/** How often the planner's statistics are refreshed. */
const MAINTENANCE_INTERVAL_MS = 10 * 60_000;

export * from './types';

export async function openStore(databaseUrl: string): Promise<Store> {
  if (!databaseUrl.startsWith('sqlite:')) {
    throw new Error(`SCIM_BRIDGE_DATABASE_URL: '${databaseUrl.split(':')[0]}:' is not supported yet; use sqlite:<path>.`);
  }
  const path = databaseUrl.slice('sqlite:'.length);
  const store = openSqlite(path === ':memory:' ? path : resolve(path));
  await store.migrate();
  await store.startMaintenance(MAINTENANCE_INTERVAL_MS);
  return store;
}
