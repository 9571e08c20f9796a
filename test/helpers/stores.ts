/** Opening each store implementation for the store-level suites (describe.each over STORES). */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openPostgres } from '../../bridge/src/store/postgres';
import type { SqlStore } from '../../bridge/src/store/sql-store';
import { openSqlite } from '../../bridge/src/store/sqlite';
import type { StoreKind } from './bridge';
import { createTestDatabase } from './postgres';

export interface TestStore {
  readonly store: SqlStore;
  /** The database URL (postgres) or file (sqlite), to open a second store on the same data. */
  readonly url: string;
  close(): Promise<void>;
}

/** A fresh, migrated store of this kind: a SQLite file of its own, or a PostgreSQL database of its own. */
export async function openTestStore(kind: StoreKind, options: { poolSize?: number } = {}): Promise<TestStore> {
  if (kind === 'postgres') {
    const url = await createTestDatabase('store');
    const store = openPostgres(url, { poolSize: options.poolSize ?? 10 });
    await store.migrate();
    return { store, url, close: () => store.close() };
  }
  const dir = mkdtempSync(join(tmpdir(), 'scim-bridge-store-'));
  const file = join(dir, 'store.db');
  const store = openSqlite(file);
  await store.migrate();
  return {
    store,
    url: file,
    close: async () => {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
