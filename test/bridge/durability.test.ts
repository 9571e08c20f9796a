/**
 * A 2xx means the change is on disk. Writes are committed in groups and made durable by an fdatasync of
 * SQLite's WAL off the event loop; no write is answered before that sync has finished, and a process
 * killed right after an answer keeps what it answered.
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { readDocument, toUserWrite } from '../../bridge/src/scim/resource';
import { resourceTypes } from '../../bridge/src/scim/schemas';
import { ScimError } from '../../bridge/src/errors';
import { STORAGE_FULL_RETRY_AFTER_SECONDS } from '../../bridge/src/store/sql-store';
import { JOURNAL_SIZE_LIMIT_BYTES, openSqlite, sqliteStore, WAL_AUTOCHECKPOINT_PAGES } from '../../bridge/src/store/sqlite';
import { spawnBridge } from '../helpers/child';

const user = (name: string) => ({ ...toUserWrite(readDocument(resourceTypes.User, { userName: name })), status: 'invited' as const });
/** A user as IdPs send it, with a name and an email (more index rows). */
const fullUser = (name: string) => ({
  ...toUserWrite(readDocument(resourceTypes.User, { userName: name, name: { givenName: 'Given', familyName: 'Family' }, emails: [{ value: name, type: 'work', primary: true }] })),
  status: 'invited' as const,
});

function deferred() {
  let resolve!: () => void;
  let reject!: (e: Error) => void;
  const promise = new Promise<void>((res, rej) => ((resolve = res), (reject = rej)));
  return { promise, resolve, reject };
}

describe('writes are acknowledged only once durable', () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'scim-bridge-durable-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  /** The production store on a file database, its WAL sync replaced by `makeDurable`. */
  function storeWithSync(makeDurable: () => Promise<void>) {
    return sqliteStore(new BetterSqlite3(join(dir, 'x.db')), { makeDurable });
  }

  it('when the sync has not finished, then the create has not resolved; when it finishes, then it does', async () => {
    const gate = deferred();
    let syncs = 0;
    const store = storeWithSync(async () => {
      syncs++;
      await gate.promise;
    });
    await store.migrate();
    let settled = false;
    const created = store.createUser(user('slow@example.com')).then((u) => ((settled = true), u));
    await new Promise((r) => setTimeout(r, 50));
    expect(syncs).toBe(1);
    expect(settled).toBe(false);
    gate.resolve();
    expect((await created).userName).toBe('slow@example.com');
    await store.close();
  });

  it('when writes arrive together, then they share one commit and one sync', async () => {
    let syncs = 0;
    const store = storeWithSync(async () => {
      syncs++;
    });
    await store.migrate();
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => store.createUser(user(`u${i}@example.com`))));
    expect(results).toHaveLength(20);
    expect(syncs).toBeLessThan(20);
    await store.close();
  });

  it('when the sync fails, then the write is not acknowledged', async () => {
    const store = storeWithSync(async () => {
      throw new Error('EIO: disk gone');
    });
    await store.migrate();
    await expect(store.createUser(user('lost@example.com'))).rejects.toThrow('EIO');
    await store.close();
  });

  it('when the first start keeps the generated token\'s hash, then it is synced before setSettingIfAbsent resolves', async () => {
    const gate = deferred();
    let syncs = 0;
    const store = storeWithSync(async () => {
      syncs++;
      await gate.promise;
    });
    await store.migrate();
    let settled = false;
    const kept = store.setSettingIfAbsent('idp_token_sha256', 'a'.repeat(64)).then((v) => ((settled = true), v));
    await new Promise((r) => setTimeout(r, 50));
    expect(syncs).toBe(1);
    expect(settled).toBe(false);
    gate.resolve();
    expect(await kept).toBe('a'.repeat(64));
    // A second start's attempt keeps the first value.
    expect(await store.setSettingIfAbsent('idp_token_sha256', 'b'.repeat(64))).toBe('a'.repeat(64));
    await store.close();
  });

  it('when one write of a group fails, then the others still commit', async () => {
    const store = storeWithSync(async () => undefined);
    await store.migrate();
    const outcomes = await Promise.allSettled([
      store.createUser(user('same@example.com')),
      store.createUser(user('SAME@example.com')),
      store.createUser(user('other@example.com')),
    ]);
    expect(outcomes.map((o) => o.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect((await store.listUsers({ offset: 0, limit: 10 })).total).toBe(2);
    await store.close();
  });
});

describe('a crash right after an answer', () => {
  it('when the bridge is killed just after a 201, then the user is there when it starts again', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'scim-bridge-crash-'));
    const env = { SCIM_BRIDGE_DATABASE_URL: `sqlite:${join(dir, 'x.db')}`, SCIM_BRIDGE_TOKEN: 'crash-test-token-0123456789' };
    const startBridge = () => spawnBridge(env);
    const headers = { Authorization: `Bearer ${env.SCIM_BRIDGE_TOKEN}`, 'Content-Type': 'application/scim+json' };
    try {
      const first = await startBridge();
      const created = await fetch(`${first.url}/Users`, { method: 'POST', headers, body: JSON.stringify({ userName: 'survivor@example.com' }) });
      expect(created.status).toBe(201);
      first.kill();
      const second = await startBridge();
      const found = await fetch(`${second.url}/Users?filter=${encodeURIComponent('userName eq "survivor@example.com"')}`, { headers });
      expect(((await found.json()) as { totalResults: number }).totalResults).toBe(1);
      second.kill();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000); // jest's limit, not the bridge's: two starts of the bridge, slow on a machine the VM boot test fills
});

describe('a crash right after the first start prints its token', () => {
  it('when the bridge is killed as soon as it printed a generated token, then that token works after a restart', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'scim-bridge-token-crash-'));
    const env = { SCIM_BRIDGE_DATABASE_URL: `sqlite:${join(dir, 'x.db')}`, SCIM_BRIDGE_TOKEN: undefined, SCIM_BRIDGE_TOKEN_SHA256: undefined };
    try {
      const first = await spawnBridge(env);
      const token = /Bearer token \(shown this once[^:]*: (\S+)/.exec(first.stdout())?.[1];
      first.kill();
      await first.exited;
      expect(token).toBeDefined();
      const second = await spawnBridge(env);
      expect(second.stdout()).not.toMatch(/shown this once/);
      expect((await fetch(`${second.url}/Users`, { headers: { Authorization: `Bearer ${token}` } })).status).toBe(200);
      second.kill();
      await second.exited;
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000); // jest's limit, not the bridge's: two starts of the bridge, slow on a machine the VM boot test fills
});

describe('the WAL sync on a database reopened after a clean stop', () => {
  it('when a write is still syncing as the store closes, then close waits for it and the write succeeds', async () => {
    const { openSqlite } = await import('../../bridge/src/store/sqlite');
    const dir = mkdtempSync(join(tmpdir(), 'scim-bridge-wal-'));
    try {
      const store = openSqlite(join(dir, 'x.db'));
      await store.migrate();
      const writes = Array.from({ length: 20 }, (_, i) => store.createUser(user(`closing${i}@example.com`)));
      await store.close();
      expect((await Promise.allSettled(writes)).map((r) => r.status)).toEqual(Array(20).fill('fulfilled'));
      const again = openSqlite(join(dir, 'x.db'));
      await again.migrate();
      expect((await again.listUsers({ offset: 0, limit: 100 })).total).toBe(20);
      await again.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('a full disk', () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'scim-bridge-full-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  /** Rejected as the HTTP layer will see it: a 503 with Retry-After whose cause is SQLite's own SQLITE_FULL. */
  function expectStorageFull(error: unknown): void {
    expect(error).toBeInstanceOf(ScimError);
    expect(error).toMatchObject({ status: 503, retryAfterSeconds: STORAGE_FULL_RETRY_AFTER_SECONDS });
    expect((error as ScimError).cause).toMatchObject({ code: 'SQLITE_FULL' });
  }

  it('when the database cannot grow, then writes fail with SQLITE_FULL (not a failed rollback), ping reports it until a write succeeds again', async () => {
    // max_page_count makes SQLite itself answer SQLITE_FULL, as it does when the filesystem refuses to grow a file.
    const db = new BetterSqlite3(join(dir, 'x.db'));
    const store = sqliteStore(db);
    await store.migrate();
    db.pragma(`max_page_count = ${Number(db.pragma('page_count', { simple: true })) + 2}`);
    let refused: unknown;
    for (let i = 0; i < 500 && refused === undefined; i++) await store.createUser(user(`fill${i}@example.com`)).catch((e: unknown) => (refused = e));
    expectStorageFull(refused);
    // Several writes in one group commit (each in its savepoint): all refused with the same real error.
    const together = await Promise.allSettled(Array.from({ length: 5 }, (_, i) => store.createUser(user(`together${i}@example.com`))));
    for (const outcome of together) expectStorageFull((outcome as PromiseRejectedResult).reason);
    await expect(store.ping()).rejects.toThrow(/SQLITE_FULL/);

    // Space again: the next write succeeds, and from then on the store reports healthy.
    db.pragma('max_page_count = 1073741823');
    await expect(store.ping()).rejects.toThrow(/SQLITE_FULL/);
    expect((await store.createUser(user('after@example.com'))).userName).toBe('after@example.com');
    await expect(store.ping()).resolves.toBeUndefined();
    await store.close();
  });

  it('when the IdP writes thousands of users, then the WAL is folded back every ~4 MiB instead of growing to 40 MiB', async () => {
    const path = join(dir, 'x.db');
    const store = openSqlite(path);
    await store.migrate();
    const reader = new BetterSqlite3(path, { readonly: true });
    const pageSize = Number(reader.pragma('page_size', { simple: true }));
    reader.close();
    let largestWal = 0;
    for (let batch = 0; batch < 30; batch++) {
      await Promise.all(Array.from({ length: 100 }, (_, i) => store.createUser(fullUser(`wal${batch}-${i}@example.com`))));
      largestWal = Math.max(largestWal, statSync(`${path}-wal`).size);
    }
    // 3,000 users write about 10 MiB of WAL frames; a checkpoint every 1,000 pages keeps the file near 4 MiB (one
    // group commit of 100 users adds well under 250 pages past the mark).
    expect(largestWal).toBeLessThanOrEqual((1000 + 250) * pageSize);
    expect(WAL_AUTOCHECKPOINT_PAGES).toBe(1000);
    expect(JOURNAL_SIZE_LIMIT_BYTES).toBe(8 * 1024 * 1024);
    // The checkpoints ran: the database file holds the users, not only the WAL.
    expect(statSync(path).size).toBeGreaterThan(512 * 1024);
    await store.close();
  });
});
