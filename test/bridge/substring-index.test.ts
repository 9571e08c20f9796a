/**
 * The trigram index behind `co` and `ew`: it follows every write (create, update, rename, delete, bulk insert) on
 * both stores (SQLite: texts and texts_fts, kept by triggers; PostgreSQL: pg_trgm GIN indexes on the columns). On
 * SQLite it is also built for a database that existed before it, and forgets texts no row holds.
 * Each filter here runs from the index (its plan says so), so a stale index would show as a wrong answer.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { Kysely, Migrator, SqliteDialect } from 'kysely';
import { parseAndResolveFilter } from '../../bridge/src/scim/query';
import { readDocument, toGroupWrite, toUserWrite } from '../../bridge/src/scim/resource';
import { resourceTypes } from '../../bridge/src/scim/schemas';
import { StaticMigrations } from '../../bridge/src/store/migrations';
import { openSqlite } from '../../bridge/src/store/sqlite';
import type { SqlStore } from '../../bridge/src/store/sql-store';
import { STORES, StoreKind } from '../helpers/bridge';
import { openTestStore, TestStore } from '../helpers/stores';

const user = (body: Record<string, unknown>) => ({ ...toUserWrite(readDocument(resourceTypes.User, body)), status: 'active' as const });

async function names(store: SqlStore, filter: string): Promise<string[]> {
  const query = { filter: parseAndResolveFilter(resourceTypes.User, filter), offset: 0, limit: 100 };
  expect((await store.explain('users', query)).join('\n')).toMatch(/texts_fts/);
  return (await store.listUsers(query)).items.map((u) => u.userName).sort();
}

async function textRows(store: SqlStore): Promise<{ v: string; refs: number }[]> {
  // The store's own connection: the test reads the bookkeeping it keeps.
  const db = (store as unknown as { db: Kysely<{ texts: { v: string; refs: number } }> }).db;
  return db.selectFrom('texts').select(['v', 'refs']).orderBy('v').execute();
}

/** How each store's plan names its trigram index: SQLite's FTS5 table of texts, PostgreSQL's pg_trgm GIN indexes. */
const TRIGRAM_PLAN: Record<StoreKind, RegExp> = { sqlite: /texts_fts/, postgres: /Bitmap Index Scan on \w+_trgm/ };

describe.each(STORES)('co and ew through the trigram index on %s', (kind) => {
  let t: TestStore;
  let store: SqlStore;
  beforeEach(async () => {
    // Tables this small PostgreSQL's planner rightly scans: it is told to prefer its indexes, so that the answers
    // below come from the trigram index (query-plans.test.ts shows it chosen unaided at 3,000 users).
    t = await openTestStore(kind, { preferIndexes: true });
    store = t.store;
    // Fillers that hold the same attributes and none of the substrings below: the users under test are a few among
    // many, as in a directory (PostgreSQL finds a path held by 3 rows faster by its b-tree than by trigrams).
    const letters = (n: number) => Array.from({ length: 4 }, (_, k) => String.fromCharCode(97 + (Math.floor(n / 26 ** k) % 26))).join('');
    await store.bulkInsertUsers(Array.from({ length: 500 }, (_, i) => user({ userName: `filler-${letters(i)}@fill.test`, emails: [{ value: `filler-${letters(i)}@fill.test` }], title: 'Filler' })));
    await store.optimize();
  });
  afterEach(() => t.close());

  const found = async (filter: string) => {
    const query = { filter: parseAndResolveFilter(resourceTypes.User, filter), offset: 0, limit: 100 };
    expect((await store.explain('users', query)).join('\n')).toMatch(TRIGRAM_PLAN[kind]);
    return (await store.listUsers(query)).items.map((u) => u.userName).sort();
  };

  it('when a user is created, changed and deleted, then co and ew find exactly what the user holds at each moment', async () => {
    const ada = await store.createUser(user({ userName: 'ada@example.com', emails: [{ value: 'Ada.Lovelace@Analytical.org' }], title: 'Countess' }));
    expect(await found('emails.value co "lovelace@analyt"')).toEqual(['ada@example.com']);
    expect(await found('title ew "tess"')).toEqual(['ada@example.com']);
    await store.updateUser(ada.id, () => user({ userName: 'ada.king@example.com', emails: [{ value: 'ada@engine.org' }], title: 'Countess' }));
    expect(await found('emails.value co "lovelace@analyt"')).toEqual([]);
    expect(await found('emails.value co "@engine"')).toEqual(['ada.king@example.com']);
    expect(await found('userName co "king@"')).toEqual(['ada.king@example.com']);
    expect(await found('userName co "ada@ex"')).toEqual([]);
    await store.deleteUser(ada.id);
    expect(await found('title ew "tess"')).toEqual([]);
  });

  it('when a group is renamed, then co on displayName finds it by its new name only', async () => {
    const groupNamed = (displayName: string) => ({ ...toGroupWrite(readDocument(resourceTypes.Group, { displayName })).group, managed: true });
    // Filler groups, as the filler users above.
    for (let i = 0; i < 200; i += 50) await Promise.all(Array.from({ length: 50 }, (_, j) => store.createGroup(groupNamed(`Filler team ${i + j}`), [])));
    const g = await store.createGroup(groupNamed('Engineering'), []);
    await store.optimize();
    await store.updateGroup(g.id, (current) => ({ group: { ...current, displayName: 'Research' }, members: [] }));
    const groups = async (filter: string) => {
      const query = { filter: parseAndResolveFilter(resourceTypes.Group, filter), offset: 0, limit: 10 };
      expect((await store.explain('groups', query)).join('\n')).toMatch(TRIGRAM_PLAN[kind]);
      return (await store.listGroups(query, false)).items.map((x) => x.displayName);
    };
    expect(await groups('displayName co "ngine"')).toEqual([]);
    expect(await groups('displayName co "earc"')).toEqual(['Research']);
  });

  it('when users are inserted in bulk, then co finds them as if inserted one by one', async () => {
    await store.createUser(user({ userName: 'one@example.com', title: 'Engineer' }));
    await store.bulkInsertUsers([user({ userName: 'two@example.com', title: 'Engineer' }), user({ userName: 'three@example.com', title: 'Engineer' })]);
    expect(await found('title co "ngine"')).toEqual(['one@example.com', 'three@example.com', 'two@example.com']);
    await store.createUser(user({ userName: 'four@example.com', title: 'Engineer' }));
    expect(await found('title co "ngine"')).toEqual(['four@example.com', 'one@example.com', 'three@example.com', 'two@example.com']);
  });
});

describe('the trigram index of texts (SQLite: its bookkeeping)', () => {
  let store: SqlStore;
  beforeEach(async () => {
    store = openSqlite(':memory:');
    await store.migrate();
  });
  afterEach(() => store.close());

  it('when a user is created, changed and deleted, then co and ew find exactly what the user holds at each moment', async () => {
    const ada = await store.createUser(user({ userName: 'ada@example.com', emails: [{ value: 'Ada.Lovelace@Analytical.org' }], title: 'Countess' }));
    expect(await names(store, 'emails.value co "lovelace@analyt"')).toEqual(['ada@example.com']);
    expect(await names(store, 'title ew "tess"')).toEqual(['ada@example.com']);

    await store.updateUser(ada.id, () => user({ userName: 'ada.king@example.com', emails: [{ value: 'ada@engine.org' }], title: 'Countess' }));
    expect(await names(store, 'emails.value co "lovelace@analyt"')).toEqual([]);
    expect(await names(store, 'emails.value co "@engine"')).toEqual(['ada.king@example.com']);
    expect(await names(store, 'userName co "king@"')).toEqual(['ada.king@example.com']);
    expect(await names(store, 'userName co "ada@ex"')).toEqual([]);

    await store.deleteUser(ada.id);
    expect(await names(store, 'title ew "tess"')).toEqual([]);
    // Every text is still there, held by nothing, until maintenance collects it.
    expect((await textRows(store)).every((t) => t.refs === 0)).toBe(true);
    expect(await store.collectUnusedTexts()).toBeGreaterThan(0);
    expect(await textRows(store)).toEqual([]);
  });

  it('when two rows hold the same text and one goes, then the text stays for the other', async () => {
    const a = await store.createUser(user({ userName: 'a@example.com', displayName: 'Same Name', title: 'Same Name' }));
    await store.createUser(user({ userName: 'b@example.com', title: 'same name' }));
    expect((await textRows(store)).find((t) => t.v === 'same name')?.refs).toBe(3);
    await store.deleteUser(a.id);
    await store.collectUnusedTexts();
    expect(await names(store, 'title co "me na"')).toEqual(['b@example.com']);
  });

  it('when a group is renamed, then co on displayName finds it by its new name only', async () => {
    const groupNamed = (displayName: string) => ({ ...toGroupWrite(readDocument(resourceTypes.Group, { displayName })).group, managed: true });
    // Filler groups, as the filler users above.
    for (let i = 0; i < 200; i += 50) await Promise.all(Array.from({ length: 50 }, (_, j) => store.createGroup(groupNamed(`Filler team ${i + j}`), [])));
    const g = await store.createGroup(groupNamed('Engineering'), []);
    await store.optimize();
    await store.updateGroup(g.id, (current) => ({ group: { ...current, displayName: 'Research' }, members: [] }));
    const groups = async (filter: string) =>
      (await store.listGroups({ filter: parseAndResolveFilter(resourceTypes.Group, filter), offset: 0, limit: 10 }, false)).items.map((x) => x.displayName);
    expect(await groups('displayName co "ngine"')).toEqual([]);
    expect(await groups('displayName co "earc"')).toEqual(['Research']);
  });

  it('when users are inserted in bulk, then their texts are counted as if inserted one by one', async () => {
    await store.createUser(user({ userName: 'one@example.com', title: 'Engineer' }));
    const before = await textRows(store);
    await store.bulkInsertUsers([user({ userName: 'two@example.com', title: 'Engineer' }), user({ userName: 'three@example.com', title: 'Engineer' })]);
    const after = await textRows(store);
    expect(after.find((t) => t.v === 'engineer')?.refs).toBe(3);
    expect(after.map((t) => t.v)).toEqual([...before.map((t) => t.v), 'three@example.com', 'two@example.com'].sort());
    expect(await names(store, 'title co "ngine"')).toEqual(['one@example.com', 'three@example.com', 'two@example.com']);
    // The per-row bookkeeping is back in place for the writes that follow.
    await store.createUser(user({ userName: 'four@example.com', title: 'Engineer' }));
    expect((await textRows(store)).find((t) => t.v === 'engineer')?.refs).toBe(4);
  });
});

describe('a database from before the trigram index', () => {
  it('when it is migrated, then the texts it holds are indexed and counted', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'scim-bridge-texts-'));
    try {
      const file = join(dir, 'old.db');
      const old = new Kysely({ dialect: new SqliteDialect({ database: new BetterSqlite3(file) }) });
      const { error } = await new Migrator({ db: old, provider: new StaticMigrations('sqlite') }).migrateTo('0003_dead_letters');
      expect(error).toBeUndefined();
      await old.destroy();
      // Written by the previous version: rows, and no texts.
      const raw = new BetterSqlite3(file);
      raw
        .prepare(`insert into users (id, user_name, user_name_ci, active, doc, created, last_modified, version, status) values ('u1', 'Old@Example.com', 'old@example.com', 1, '{}', '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z', 1, 'active')`)
        .run();
      raw.prepare(`insert into attr_values (res_id, path, idx, v) values ('u1', 'title', 0, 'archivist'), ('u1', 'emails.value', 0, 'old@example.com')`).run();
      raw.close();
      const store = openSqlite(file);
      await store.migrate();
      try {
        expect(await names(store, 'title co "chiv"')).toEqual(['Old@Example.com']);
        expect(await names(store, 'userName co "old@ex"')).toEqual(['Old@Example.com']);
        expect((await textRows(store)).find((t) => t.v === 'old@example.com')?.refs).toBe(2);
      } finally {
        await store.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
