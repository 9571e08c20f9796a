/**
 * `scim-bridge backup` and `restore`: a backup taken while IdPs write holds every user the bridge had
 * acknowledged (201) when it began, and restores into a fresh directory where a bridge starts and serves them;
 * restore refuses what would lose data or not work, before it touches anything. The same on PostgreSQL, whose
 * backup is the bridge's own logical export (one snapshot), restored into an empty database.
 */
import { copyFileSync, createWriteStream, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { backupSqlite } from '../../bridge/src/cli/backup';
import { backupPostgres } from '../../bridge/src/cli/postgres-backup';
import { knownMigrations } from '../../bridge/src/cli/sqlite-file';
import { startBridge, TestBridge, TOKEN, userBody } from '../helpers/bridge';
import { runCli } from '../helpers/cli';
import { adminClient, createTestDatabase } from '../helpers/postgres';

const dirs: string[] = [];
const bridges: TestBridge[] = [];
afterEach(async () => {
  for (const b of bridges.splice(0)) await b.stop().catch(() => undefined);
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function scratch(): string {
  const dir = mkdtempSync(join(tmpdir(), 'scim-bridge-backup-test-'));
  dirs.push(dir);
  return dir;
}

async function bridgeOn(env: Record<string, string> = {}): Promise<TestBridge> {
  const b = await startBridge(env);
  bridges.push(b);
  return b;
}

const dbPath = (b: TestBridge) => join(b.dir, 'bridge.db');
const envFor = (path: string) => ({ SCIM_BRIDGE_DATABASE_URL: `sqlite:${path}` });

/** POSTs a user over a keep-alive connection as an IdP does; returns the status and the id. */
async function createUser(b: TestBridge, userName: string): Promise<{ status: number; id?: string }> {
  const res = await fetch(`${b.url}/Users`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${TOKEN}`, 'Content-Type': 'application/scim+json' },
    body: JSON.stringify(userBody(userName, { displayName: `${userName} ${'x'.repeat(200)}` })),
  });
  const body = (await res.json()) as { id?: string };
  return { status: res.status, id: body.id };
}

async function seed(b: TestBridge, prefix: string, count: number): Promise<Map<string, string>> {
  const acked = new Map<string, string>();
  for (let i = 0; i < count; i += 20) {
    await Promise.all(
      Array.from({ length: Math.min(20, count - i) }, async (_, j) => {
        const name = `${prefix}.${i + j}@example.com`;
        const r = await createUser(b, name);
        if (r.status !== 201) throw new Error(`seeding ${name}: ${r.status}`);
        acked.set(name, r.id!);
      }),
    );
  }
  return acked;
}

/**
 * Writers that POST new users until stopped, as several IdP connections do; `acked` gets every 201 as it
 * arrives. A 503 (load shedding) is a refusal, not an acknowledgement; anything else fails the test.
 */
function writeLoad(b: TestBridge, writers = 6) {
  const acked = new Map<string, string>();
  const attempted = new Set<string>();
  let running = true;
  let n = 0;
  const done = Promise.all(
    Array.from({ length: writers }, async (_, w) => {
      while (running) {
        const name = `load.${w}.${n++}@example.com`;
        attempted.add(name);
        const r = await createUser(b, name);
        if (r.status === 201) acked.set(name, r.id!);
        else if (r.status !== 503) throw new Error(`POST ${name}: ${r.status}`);
      }
    }),
  );
  return {
    acked,
    attempted,
    async waitFor(count: number) {
      const deadline = Date.now() + 20_000;
      while (acked.size < count) {
        if (Date.now() > deadline) throw new Error(`only ${acked.size} users acknowledged under load`);
        await new Promise((r) => setTimeout(r, 10));
      }
    },
    async stop() {
      running = false;
      await done;
    },
  };
}

/** The users a database holds, userName -> id, read as the bridge would after a restart. */
function usersIn(path: string): Map<string, string> {
  const db = new BetterSqlite3(path, { readonly: true });
  try {
    return new Map((db.prepare('select user_name, id from users').all() as { user_name: string; id: string }[]).map((r) => [r.user_name, r.id]));
  } finally {
    db.close();
  }
}

async function expectRestoredBridgeServes(target: string, expected: Map<string, string>, allowed: Set<string>, { store = 'sqlite' }: { store?: 'sqlite' | 'postgres' } = {}): Promise<void> {
  const restored = await bridgeOn(store === 'postgres' ? { SCIM_BRIDGE_DATABASE_URL: target } : envFor(target));
  const page = await restored.bridge.store.listUsers({ offset: 0, limit: 100_000 });
  const names = new Map(page.items.map((u) => [u.userName, u.id]));
  const missing = [...expected].filter(([name, id]) => names.get(name) !== id);
  expect(missing).toEqual([]);
  // Nothing that was never sent, and nothing torn: every user the backup holds is one the test sent.
  expect([...names.keys()].filter((name) => !allowed.has(name))).toEqual([]);
  const [name, id] = [...expected][expected.size - 1];
  const one = await restored.get(`/Users/${id}`);
  expect(one.status).toBe(200);
  expect(one.body.userName).toBe(name);
}

describe('backup under a write load, then restore into a fresh directory', () => {
  test('when IdPs keep creating users during `backup`, then the restored bridge has every user acknowledged before it began', async () => {
    const source = await bridgeOn();
    const seeded = await seed(source, 'seed', 300);
    const load = writeLoad(source);
    await load.waitFor(50);
    const ackedBefore = new Map([...seeded, ...load.acked]);
    const file = join(scratch(), 'backups', 'scim-bridge.db');
    const result = await runCli(['backup', file], { env: envFor(dbPath(source)) });
    const ackedWhenDone = load.acked.size;
    await load.waitFor(ackedWhenDone + 20); // the bridge kept acknowledging: it was never paused
    await load.stop();
    expect(result).toMatchObject({ code: 0 });
    expect(result.stderr).toMatch(/^backup: (\d+)\/\1 pages copied \(100%\)$/m);
    expect(result.stdout).toMatch(new RegExp(`^backup: ${file.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} \\(\\d+ bytes\\): \\d+ users`));
    // One self-contained file: no WAL beside it, no temporary left behind.
    expect(readdirSync(join(file, '..'))).toEqual(['scim-bridge.db']);

    const target = join(scratch(), 'restored', 'bridge.db');
    const restored = await runCli(['restore', file], { env: envFor(target) });
    expect(restored).toMatchObject({ code: 0, stderr: '' });
    expect(restored.stdout).toMatch(/now holds \d+ users/);
    await expectRestoredBridgeServes(target, ackedBefore, new Set([...seeded.keys(), ...load.attempted]));
  });

  test('when the writes outpace a copy in small steps, then the backup still completes, consistent, with every acknowledged user', async () => {
    const source = await bridgeOn();
    const seeded = await seed(source, 'seed', 200);
    const load = writeLoad(source);
    await load.waitFor(30);
    const ackedBefore = new Map([...seeded, ...load.acked]);
    const file = join(scratch(), 'small-steps.db');
    let stderr = '';
    // 4 pages a step, and a commit of another connection between steps (as a busy bridge's, from another process,
    // would land): SQLite restarts the copy after each one, until the rest goes in one step.
    const other = new BetterSqlite3(dbPath(source));
    let commits = 0;
    const commit = other.prepare("insert into settings (key, value) values ('backup-test', ?) on conflict (key) do update set value = excluded.value");
    const io = { stdin: process.stdin, stdout: { write: () => true }, stderr: { write: (t: string) => (stderr += t) }, env: {} };
    await backupSqlite(dbPath(source), file, io, { pagesPerStep: 4, betweenSteps: () => commit.run(String(++commits)) });
    other.close();
    await load.stop();
    expect(stderr).toMatch(/changed during the copy \d+ times; copying the rest in one step/);
    const db = new BetterSqlite3(file, { readonly: true });
    expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
    db.close();
    const target = join(scratch(), 'bridge.db');
    expect((await runCli(['restore', file], { env: envFor(target) })).code).toBe(0);
    await expectRestoredBridgeServes(target, ackedBefore, new Set([...seeded.keys(), ...load.attempted]));
  });
});

describe('through stdout and stdin, for containers without tar or cat (kubectl exec, docker exec)', () => {
  test('when `backup -` streams the copy and `restore -` reads it, then the restored database has the users', async () => {
    const source = await bridgeOn();
    const users = await seed(source, 'streamed', 5);
    const streamed = await runCli(['backup', '-'], { env: envFor(dbPath(source)) });
    expect(streamed.code).toBe(0);
    expect(streamed.stdoutBytes.subarray(0, 16).toString('latin1')).toBe('SQLite format 3\0');
    expect(streamed.stderr).toMatch(/backup: \d+ bytes to stdout: 5 users/);
    // Nothing left beside the live database but its own files.
    expect(readdirSync(source.dir).filter((f) => !/^bridge\.db(-wal|-shm)?$/.test(f))).toEqual([]);

    const target = join(scratch(), 'from-stdin', 'bridge.db');
    const restored = await runCli(['restore', '-'], { env: envFor(target), stdin: streamed.stdoutBytes });
    expect(restored).toMatchObject({ code: 0, stderr: '' });
    expect(usersIn(target)).toEqual(users);
    expect(readdirSync(join(target, '..'))).toEqual(['bridge.db']);
  });

  test('when nothing comes on stdin (a failed `backup -` upstream), then `restore -` refuses and leaves no file', async () => {
    const target = join(scratch(), 'nothing', 'bridge.db');
    const refused = await runCli(['restore', '-'], { env: envFor(target), stdin: '' });
    expect(refused).toMatchObject({ code: 1, stderr: expect.stringMatching(/the backup on stdin is empty; nothing was changed/) });
    expect(readdirSync(join(target, '..'))).toEqual([]);
  });
});

describe('restore refuses, and changes nothing', () => {
  /** A backup of a bridge with three users. */
  async function aBackup(): Promise<{ file: string; users: Map<string, string> }> {
    const b = await bridgeOn();
    const users = await seed(b, 'backed-up', 3);
    const file = join(scratch(), 'backup.db');
    expect((await runCli(['backup', file], { env: envFor(dbPath(b)) })).code).toBe(0);
    return { file, users };
  }

  /** A stopped bridge's database holding users. */
  async function aStoppedDatabaseWithUsers(): Promise<string> {
    const b = await bridgeOn();
    await seed(b, 'already-here', 2);
    const path = join(scratch(), 'bridge.db');
    await b.bridge.stop();
    copyFileSync(dbPath(b), path);
    return path;
  }

  test('when the database holds users, then it refuses without --force; with --force it replaces it and keeps the old one beside it', async () => {
    const { file, users } = await aBackup();
    const target = await aStoppedDatabaseWithUsers();
    const before = usersIn(target);

    const refused = await runCli(['restore', file], { env: envFor(target) });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/is not empty \(2 users, 0 groups, 2 events\).*--force.*nothing was changed/);
    expect(usersIn(target)).toEqual(before);

    const forced = await runCli(['restore', file, '--force'], { env: envFor(target) });
    expect(forced).toMatchObject({ code: 0, stderr: '' });
    expect(usersIn(target)).toEqual(users);
    const kept = /kept at (\S+) /.exec(forced.stdout)![1];
    expect(usersIn(kept)).toEqual(before);
  });

  test('when a bridge is running on the database, then it refuses even with --force', async () => {
    const { file } = await aBackup();
    const running = await bridgeOn();
    const mine = await seed(running, 'live', 2);
    const refused = await runCli(['restore', file, '--force'], { env: envFor(dbPath(running)) });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/is open in another process \(a running bridge\?\).*Stop the bridge first/);
    // The bridge goes on, with its own users.
    const [name, id] = [...mine][0];
    const res = await running.get(`/Users/${id}`);
    expect(res.status).toBe(200);
    expect(res.body.userName).toBe(name);
    expect((await running.post('/Users', userBody('after-the-refusal@example.com'))).status).toBe(201);
  });

  test('when the file is not a SQLite database, then it says so', async () => {
    const file = join(scratch(), 'dump.sql');
    writeFileSync(file, '-- PostgreSQL database dump\n');
    const target = join(scratch(), 'bridge.db');
    const refused = await runCli(['restore', file], { env: envFor(target) });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/is not a SQLite database.*a PostgreSQL backup restores into a postgres:\/\/ database.*nothing was changed/);
    expect(existsSync(target)).toBe(false);
  });

  test('when the file is a SQLite database of something else, then it says it is not a scim-bridge one', async () => {
    const file = join(scratch(), 'other.db');
    const other = new BetterSqlite3(file);
    other.exec('create table notes (id integer primary key, text text)');
    other.close();
    const target = await aStoppedDatabaseWithUsers();
    const before = usersIn(target);
    const refused = await runCli(['restore', file, '--force'], { env: envFor(target) });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/is a SQLite database but not a scim-bridge one/);
    expect(usersIn(target)).toEqual(before);
  });

  test('when the backup comes from a newer scim-bridge, then it names the version to restore it with', async () => {
    const { file } = await aBackup();
    const newer = new BetterSqlite3(file);
    newer.prepare('insert into kysely_migration (name, timestamp) values (?, ?)').run('0099_from_the_future', new Date().toISOString());
    newer.close();
    const target = join(scratch(), 'fresh', 'bridge.db');
    const refused = await runCli(['restore', file], { env: envFor(target) });
    expect(refused.code).toBe(1);
    const latest = (await knownMigrations()).at(-1)!;
    expect(refused.stderr).toContain(`written by a newer scim-bridge (its schema has 0099_from_the_future; this version knows up to ${latest})`);
    expect(existsSync(target)).toBe(false);
    expect(readdirSync(join(target, '..'))).toEqual([]);
  });

  test('when the database exists but is empty (a bridge started once), then it restores without --force', async () => {
    const { file, users } = await aBackup();
    const empty = await bridgeOn();
    await empty.bridge.stop();
    const restored = await runCli(['restore', file], { env: envFor(dbPath(empty)) });
    expect(restored).toMatchObject({ code: 0, stderr: '' });
    expect(usersIn(dbPath(empty))).toEqual(users);
  });
});

describe('PostgreSQL: a logical export in one snapshot, and its restore into an empty database', () => {
  const pgEnv = (url: string) => ({ SCIM_BRIDGE_DATABASE_URL: url });
  /** The users a PostgreSQL database holds, userName -> id. */
  async function pgUsers(url: string): Promise<Map<string, string>> {
    const client = await adminClient(url);
    try {
      return new Map((await client.query<{ user_name: string; id: string }>('select user_name, id from users')).rows.map((r) => [r.user_name, r.id]));
    } finally {
      await client.end();
    }
  }
  /** The backup's lines, parsed. */
  const linesOf = (file: string) => readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l));

  test('when IdPs keep creating users during `backup`, then a fresh database restored from it serves every user acknowledged before it began', async () => {
    const sourceUrl = await createTestDatabase('backup_source', { migrated: true });
    const source = await bridgeOn(pgEnv(sourceUrl));
    const seeded = await seed(source, 'seed', 300);
    const load = writeLoad(source);
    await load.waitFor(50);
    const ackedBefore = new Map([...seeded, ...load.acked]);
    const file = join(scratch(), 'backups', 'scim-bridge.jsonl');
    const result = await runCli(['backup', file], { env: pgEnv(sourceUrl) });
    const ackedWhenDone = load.acked.size;
    await load.waitFor(ackedWhenDone + 20); // the bridge kept acknowledging: never paused
    await load.stop();
    expect(result).toMatchObject({ code: 0 });
    expect(result.stderr).toMatch(/^backup: \d+ rows exported$/m);
    expect(result.stdout).toMatch(/^backup: .*scim-bridge\.jsonl \(\d+ bytes\): \d+ users, 0 groups, \d+ events \(0 dead letters\), schema 0\d+_/);
    expect(readdirSync(join(file, '..'))).toEqual(['scim-bridge.jsonl']);
    // One snapshot: every user in the copy has its user.created event in it, and no event names a user it lacks.
    const lines = linesOf(file);
    const rowsOf = (table: string) => {
      const at = lines.findIndex((l) => l.table === table);
      const columns: string[] = lines[at].columns;
      const rows: Array<Record<string, unknown>> = [];
      for (let i = at + 1; i < lines.length && 'row' in lines[i]; i++) rows.push(Object.fromEntries(columns.map((c, j) => [c, lines[i].row[j]])));
      return rows;
    };
    const users = new Set(rowsOf('users').map((u) => u.id));
    const created = new Set(rowsOf('events').filter((e) => e.type === 'user.created').map((e) => e.resource_id));
    expect(created).toEqual(users);
    expect(lines.at(-1)).toEqual({ end: true, rows: expect.objectContaining({ users: users.size }) });

    const target = await createTestDatabase('restore_target');
    const restored = await runCli(['restore', file], { env: pgEnv(target) });
    expect(restored).toMatchObject({ code: 0 });
    expect(restored.stdout).toMatch(new RegExp(`now holds ${users.size} users`));
    await expectRestoredBridgeServes(target, ackedBefore, new Set([...seeded.keys(), ...load.attempted]), { store: 'postgres' });
  });

  test('when writes land between the pages the export reads, then the copy is the snapshot of its start, and a restored bridge goes on numbering', async () => {
    const sourceUrl = await createTestDatabase('snapshot_source', { migrated: true });
    const source = await bridgeOn(pgEnv(sourceUrl));
    const seeded = await seed(source, 'seed', 200);
    const file = join(scratch(), 'snapshot.jsonl');
    let during = 0;
    const out = createWriteStream(file);
    const io = { stdin: process.stdin, stdout: { write: () => true }, stderr: { write: () => true }, env: {} };
    // Pages of 50 rows: a user is created (and committed) between every two of them.
    const summary = await backupPostgres(sourceUrl, out, io, {
      rowsPerFetch: 50,
      betweenPages: async () => {
        expect((await createUser(source, `during.${during++}@example.com`)).status).toBe(201);
      },
    });
    out.end();
    await once(out, 'close');
    expect(during).toBeGreaterThan(2);
    expect(summary.users).toBe(seeded.size);
    expect((await pgUsers(sourceUrl)).size).toBe(seeded.size + during);

    const target = await createTestDatabase('snapshot_target');
    expect((await runCli(['restore', file], { env: pgEnv(target) })).code).toBe(0);
    expect(await pgUsers(target)).toEqual(seeded);
    // The sequences continue after the restored rows: a new user and its event get numbers of their own.
    const restored = await bridgeOn(pgEnv(target));
    expect((await createUser(restored, 'after.restore@example.com')).status).toBe(201);
    const events = await restored.bridge.store.listEvents(0, 100_000);
    expect(new Set(events.map((e) => e.seq)).size).toBe(events.length);
    expect(events.at(-1)!.type).toBe('user.created');
  });

  test('when the backup goes to stdout and comes back on stdin, then the restored database has the users', async () => {
    const sourceUrl = await createTestDatabase('stdio_source', { migrated: true });
    const source = await bridgeOn(pgEnv(sourceUrl));
    const users = await seed(source, 'pipe', 40);
    const backup = await runCli(['backup', '-'], { env: pgEnv(sourceUrl) });
    expect(backup.code).toBe(0);
    expect(backup.stderr).toMatch(/backup: postgres:\/\/.* to stdout: 40 users/);
    const target = await createTestDatabase('stdio_target');
    const restored = await runCli(['restore', '-'], { env: pgEnv(target), stdin: backup.stdoutBytes });
    expect(restored).toMatchObject({ code: 0 });
    expect(await pgUsers(target)).toEqual(users);
  });

  test('when the database holds users, then restore refuses without --force and with --force replaces them; while a replica runs it refuses', async () => {
    const sourceUrl = await createTestDatabase('force_source', { migrated: true });
    const source = await bridgeOn(pgEnv(sourceUrl));
    const users = await seed(source, 'kept', 10);
    const file = join(scratch(), 'force.jsonl');
    expect((await runCli(['backup', file], { env: pgEnv(sourceUrl) })).code).toBe(0);

    const busyUrl = await createTestDatabase('force_target', { migrated: true });
    const busy = await bridgeOn(pgEnv(busyUrl));
    const other = await seed(busy, 'other', 3);
    const running = await runCli(['restore', file, '--force'], { env: pgEnv(busyUrl) });
    expect(running.code).toBe(1);
    expect(running.stderr).toMatch(/other sessions use .*Stop every replica first.*nothing was changed/);
    await busy.stop();
    bridges.splice(bridges.indexOf(busy), 1);

    const refused = await runCli(['restore', file], { env: pgEnv(busyUrl) });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/is not empty \(3 users, 0 groups, 3 events\); restore goes into an empty database only.*--force.*nothing was changed/);
    expect(await pgUsers(busyUrl)).toEqual(other);

    const forced = await runCli(['restore', file, '--force'], { env: pgEnv(busyUrl) });
    expect(forced).toMatchObject({ code: 0 });
    expect(forced.stdout).toMatch(/now holds 10 users.*it replaced 3 users, 0 groups and 3 events/);
    expect(await pgUsers(busyUrl)).toEqual(users);
  });

  test('when the file is cut off, damaged or not a PostgreSQL backup, then restore says so and changes nothing', async () => {
    const sourceUrl = await createTestDatabase('damaged_source', { migrated: true });
    const source = await bridgeOn(pgEnv(sourceUrl));
    await seed(source, 'x', 5);
    const file = join(scratch(), 'whole.jsonl');
    expect((await runCli(['backup', file], { env: pgEnv(sourceUrl) })).code).toBe(0);
    const lines = readFileSync(file, 'utf8').trim().split('\n');
    const target = await createTestDatabase('damaged_target', { migrated: true });
    const before = await pgUsers(target);
    const cases: Array<[string, string, RegExp]> = [
      ['cut.jsonl', lines.slice(0, -3).join('\n') + '\n', /stops before its end \(a backup cut off: copy it again\); nothing was changed/],
      ['row.jsonl', lines.map((l, i) => (i === 3 ? '{"row":[1]}' : l)).join('\n') + '\n', /has a damaged row in .*; nothing was changed/],
      ['sqlite.db', 'SQLite format 3\0' + 'x'.repeat(100), /is not JSON: not a scim-bridge PostgreSQL backup/],
      ['newer.jsonl', [JSON.stringify({ ...JSON.parse(lines[0]), migrations: [...JSON.parse(lines[0]).migrations, '9999_future'] }), ...lines.slice(1)].join('\n') + '\n', /comes from a newer scim-bridge \(schema 9999_future, unknown here\)/],
    ];
    const dir = scratch();
    for (const [name, content, message] of cases) {
      writeFileSync(join(dir, name), content);
      const r = await runCli(['restore', join(dir, name)], { env: pgEnv(target) });
      expect(`${name} ${r.code} ${r.stderr}`).toMatch(new RegExp(`^${name} 1 `));
      expect(r.stderr).toMatch(message);
    }
    expect(await pgUsers(target)).toEqual(before);
  });

  test('when PostgreSQL cannot be reached, then backup says so without printing the password', async () => {
    const env = { SCIM_BRIDGE_DATABASE_URL: 'postgres://bridge:s3cret-pw@127.0.0.1:1/scim' };
    const backup = await runCli(['backup', join(scratch(), 'x.jsonl')], { env });
    expect(backup.code).toBe(1);
    expect(backup.stderr).toMatch(/cannot connect to postgres:\/\/bridge:\*\*\*@127\.0\.0\.1:1\/scim/);
    expect(backup.stderr).not.toContain('s3cret-pw');
  });
});
