/** The door to the store: pick the implementation from the database URL. */
import { resolve } from 'node:path';
import { openSqlite } from './sqlite';
import type { Store } from './types';

export * from './types';

export async function openStore(databaseUrl: string): Promise<Store> {
  let store: Store;
  if (databaseUrl.startsWith('sqlite:')) {
    const path = databaseUrl.slice('sqlite:'.length);
    store = openSqlite(path === ':memory:' ? path : resolve(path));
  } else {
    throw new Error(`SCIM_BRIDGE_DATABASE_URL: '${databaseUrl.split(':')[0]}:' is not supported yet; use sqlite:<path>.`);
  }
  await store.migrate();
  return store;
}
