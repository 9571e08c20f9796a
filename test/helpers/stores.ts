/** Opening each store implementation for the store-level suites (describe.each over STORES). */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openPostgres } from '../../bridge/src/store/postgres';
import type { SqlStore } from '../../bridge/src/store/sql-store';
import { openSqlite } from '../../bridge/src/store/sqlite';
import type { StoreKind } from './bridge';
import { adminClient, createTestDatabase } from './postgres';

export interface TestStore {
  readonly store: SqlStore;
  /** The database URL (postgres) or file (sqlite), to open a second store on the same data. */
  readonly url: string;
  close(): Promise<void>;
}

/** A fresh, migrated store of this kind: a SQLite file of its own, or a PostgreSQL database of its own. */
export async function openTestStore(kind: StoreKind, options: { poolSize?: number; preferIndexes?: boolean } = {}): Promise<TestStore> {
  if (kind === 'postgres') {
    const url = await createTestDatabase('store', { migrated: true });
    if (options.preferIndexes) {
      // Tables of a few rows are rightly scanned by PostgreSQL's planner; a test that shows an index answering
      // tells this database to prefer indexes (SQLite's planner takes them at any size).
      const admin = await adminClient(url);
      try {
        await admin.query(`alter database ${admin.database} set enable_seqscan = off`);
      } finally {
        await admin.end();
      }
    }
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
