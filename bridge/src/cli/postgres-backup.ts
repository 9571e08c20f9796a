/**
 * `backup` and `restore` on PostgreSQL, without pg_dump (the image ships none): a logical export of the bridge's
 * own tables, and its import into a database of its own.
 *
 * The backup is JSON lines. The first line names the format and the schema (every migration the database went
 * through); then, table by table, a line naming the table and its columns followed by one line per row (the values
 * in the columns' order); the last line counts the rows of each table, so a cut-off file is recognised. Every
 * table is read in one REPEATABLE READ, READ ONLY transaction: one snapshot, so the copy is consistent (every
 * transaction the bridge had committed when it began, none after), and the bridge's writers are never blocked.
 * Rows are read through a cursor, a page at a time, so memory stays flat however big the directory.
 *
 * The restore reads the file twice: once to check it all (format, a schema this version knows, whole), then to
 * load it. Everything happens in one transaction: the schema is built by this version's migrations up to the
 * backup's (the bridge brings it up to date at its next start, as it does an older SQLite backup), the rows go in,
 * the sequences continue after the highest restored value. A failure leaves the database as it was. It refuses
 * while another session uses the database (a running replica), and a database that holds users, groups or
 * events unless --force, which replaces what it holds (take a backup of it first).
 */
import { createReadStream, createWriteStream, renameSync, rmSync } from 'node:fs';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { CompiledQuery, Kysely, PostgresDialect, sql, Transaction } from 'kysely';
import { Client, Pool } from 'pg';
import { StaticMigrations } from '../store/migrations';
import { connectionConfig } from '../store/postgres';
import { redactUrl } from './database';
import { CliError, CliIo, progressReporter } from './io';
import { DatabaseSummary, fsyncPath, isEmpty, knownMigrations } from './sqlite-file';

export const POSTGRES_BACKUP_FORMAT = 'scim-bridge-postgres-backup';
const FORMAT_VERSION = 1;
/** Kysely's migration bookkeeping: the schema's version is the header's, and the restore writes them itself. */
const MIGRATION_TABLE = 'kysely_migration';
const MIGRATION_LOCK_TABLE = 'kysely_migration_lock';
const ROWS_PER_FETCH = 1000;
/** Rows per insert statement, under PostgreSQL's 65,535 parameters for the widest table. */
const ROWS_PER_INSERT = 500;

interface Header {
  format: typeof POSTGRES_BACKUP_FORMAT;
  version: number;
  /** Every migration the database went through, in order: the last one is its schema. */
  migrations: string[];
  createdAt: string;
}
type Line = Header | { table: string; columns: string[] } | { row: unknown[] } | { end: true; rows: Record<string, number> };

const quote = (name: string) => `"${name.replace(/"/g, '""')}"`;

function summaryOf(migration: string, rows: Record<string, number>): DatabaseSummary {
  return { migration, users: rows.users ?? 0, groups: rows.groups ?? 0, events: rows.events ?? 0, deadLetters: rows.dead_letters ?? 0 };
}

async function connect(databaseUrl: string, caPem: string | undefined): Promise<Client> {
  const { sslmode: _mode, ...config } = connectionConfig(databaseUrl, caPem ? { caPem } : {});
  const client = new Client({ ...config, application_name: 'scim-bridge-cli' });
  client.on('error', () => undefined);
  try {
    await client.connect();
  } catch (err) {
    throw new CliError(`cannot connect to ${redactUrl(databaseUrl)}: ${(err as Error).message}`);
  }
  return client;
}

/** The last migration the database went through (its schema), or undefined when it has none. */
export async function postgresSchema(databaseUrl: string, caPem?: string): Promise<string | undefined> {
  const client = await connect(databaseUrl, caPem);
  try {
    const { rows } = await client.query<{ name: string | null }>(`select max(name) as name from ${MIGRATION_TABLE}`);
    return rows[0]?.name ?? undefined;
  } catch {
    return undefined;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** What runs a query: a pg Client, or the restore's transaction. */
interface Queryable {
  query<R>(text: string, parameters?: unknown[]): Promise<{ rows: R[] }>;
}

/** The bridge's tables in the connection's schema (its search path), Kysely's bookkeeping apart. */
async function bridgeTables(client: Queryable): Promise<string[]> {
  const { rows } = await client.query<{ name: string }>(
    `select table_name as name from information_schema.tables
     where table_schema = current_schema() and table_type = 'BASE TABLE' and table_name not in ($1, $2) order by table_name`,
    [MIGRATION_TABLE, MIGRATION_LOCK_TABLE],
  );
  return rows.map((r) => r.name);
}

async function columnsOf(client: Queryable, table: string): Promise<string[]> {
  const { rows } = await client.query<{ name: string }>(
    'select column_name as name from information_schema.columns where table_schema = current_schema() and table_name = $1 order by ordinal_position',
    [table],
  );
  return rows.map((r) => r.name);
}

/** Writes a line and waits when the file's buffer is full. */
async function writeLine(out: NodeJS.WritableStream, line: Line): Promise<void> {
  if (!out.write(`${JSON.stringify(line)}\n`)) await once(out, 'drain');
}

/**
 * Exports the database at `databaseUrl` to `out` (see the top of this file); returns what the copy holds. Tests
 * read small pages (`rowsPerFetch`) and run `betweenPages` between two of them, to write while the export reads.
 */
export async function backupPostgres(
  databaseUrl: string,
  out: NodeJS.WritableStream,
  io: CliIo,
  { caPem, rowsPerFetch = ROWS_PER_FETCH, betweenPages }: { caPem?: string; rowsPerFetch?: number; betweenPages?: () => Promise<void> } = {},
): Promise<DatabaseSummary> {
  const client = await connect(databaseUrl, caPem);
  const progress = progressReporter(io);
  try {
    await client.query('begin isolation level repeatable read, read only');
    const migrations = await client
      .query<{ name: string }>(`select name from ${MIGRATION_TABLE} order by name`)
      .then((r) => r.rows.map((x) => x.name))
      .catch(() => [] as string[]);
    if (migrations.length === 0) throw new CliError(`backup: ${redactUrl(databaseUrl)} holds no scim-bridge schema (no migration has run): nothing to back up`);
    const tables = await bridgeTables(client);
    const { rows: sizes } = await client.query<{ n: string }>(
      `select coalesce(sum(c.reltuples), 0)::bigint as n from pg_class c where c.relnamespace = current_schema()::regnamespace and c.relname = any($1)`,
      [tables],
    );
    const estimate = Math.max(1, Number(sizes[0].n));
    await writeLine(out, { format: POSTGRES_BACKUP_FORMAT, version: FORMAT_VERSION, migrations, createdAt: new Date().toISOString() });
    const counts: Record<string, number> = {};
    let done = 0;
    for (const table of tables) {
      const columns = await columnsOf(client, table);
      await writeLine(out, { table, columns });
      counts[table] = 0;
      // In the table's own order where it has a primary key: a restore inserts in the same order.
      await client.query(`declare rows no scroll cursor for select ${columns.map(quote).join(', ')} from ${quote(table)}`);
      for (;;) {
        const page = await client.query({ text: `fetch ${rowsPerFetch} from rows`, rowMode: 'array' });
        for (const row of page.rows as unknown[][]) await writeLine(out, { row });
        counts[table] += page.rowCount ?? 0;
        done += page.rowCount ?? 0;
        progress(`backup: ${done} of about ${estimate} rows exported (${table})`);
        if ((page.rowCount ?? 0) < rowsPerFetch) break;
        await betweenPages?.();
      }
      await client.query('close rows');
    }
    await writeLine(out, { end: true, rows: counts });
    await client.query('commit');
    progress(`backup: ${done} rows exported`, true);
    return summaryOf(migrations.at(-1)!, counts);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Exports to `file` through a temporary file beside it, fsynced and renamed: `file` is always a whole backup. */
export async function backupPostgresToFile(databaseUrl: string, file: string, io: CliIo, caPem?: string): Promise<DatabaseSummary> {
  const temporary = `${file}.partial-${process.pid}`;
  try {
    const out = createWriteStream(temporary);
    const summary = await backupPostgres(databaseUrl, out, io, { caPem }).finally(() => out.end());
    await once(out, 'close');
    fsyncPath(temporary);
    renameSync(temporary, file);
    return summary;
  } catch (err) {
    rmSync(temporary, { force: true });
    throw err;
  }
}

/** Reads the backup's lines one by one. */
async function* linesOf(file: string, shownAs: string): AsyncGenerator<Line> {
  const lines = createInterface({ input: createReadStream(file), crlfDelay: Infinity });
  let n = 0;
  for await (const text of lines) {
    n++;
    let line: unknown;
    try {
      line = JSON.parse(text);
    } catch {
      throw new CliError(`restore: ${shownAs} line ${n} is not JSON: ${n === 1 ? 'not a scim-bridge PostgreSQL backup (a SQLite backup restores into a sqlite: database)' : 'the file is damaged'}; nothing was changed`);
    }
    if (typeof line !== 'object' || line === null) throw new CliError(`restore: ${shownAs} line ${n} is not a backup line; nothing was changed`);
    yield line as Line;
  }
}

interface CheckedBackup {
  readonly header: Header;
  readonly rows: Record<string, number>;
}

/** Reads the whole file once: the header, a schema this version knows, rows under their tables, and the end line's counts. */
export async function checkPostgresBackup(file: string, shownAs: string): Promise<CheckedBackup> {
  let header: Header | undefined;
  let table: { name: string; width: number } | undefined;
  const seen: Record<string, number> = {};
  let end: Record<string, number> | undefined;
  for await (const line of linesOf(file, shownAs)) {
    if (!header) {
      if ((line as Header).format !== POSTGRES_BACKUP_FORMAT) throw new CliError(`restore: ${shownAs} is not a scim-bridge PostgreSQL backup (it does not start with its header); nothing was changed`);
      header = line as Header;
      if (header.version !== FORMAT_VERSION) throw new CliError(`restore: ${shownAs} is a backup of format ${header.version}; this scim-bridge reads format ${FORMAT_VERSION}; nothing was changed`);
      const known = await knownMigrations();
      const unknown = header.migrations.filter((m) => !known.includes(m));
      if (!Array.isArray(header.migrations) || header.migrations.length === 0) throw new CliError(`restore: ${shownAs} names no schema; nothing was changed`);
      if (unknown.length) {
        throw new CliError(`restore: ${shownAs} comes from a newer scim-bridge (schema ${header.migrations.at(-1)}, unknown here); restore it with that version or a later one; nothing was changed`);
      }
      if (header.migrations.join() !== known.slice(0, header.migrations.length).join()) throw new CliError(`restore: ${shownAs} names migrations out of order; nothing was changed`);
      continue;
    }
    if (end) throw new CliError(`restore: ${shownAs} goes on after its end line; nothing was changed`);
    if ('table' in line) {
      if (!Array.isArray(line.columns) || typeof line.table !== 'string' || line.table in seen) throw new CliError(`restore: ${shownAs} has a damaged table line; nothing was changed`);
      table = { name: line.table, width: line.columns.length };
      seen[line.table] = 0;
    } else if ('row' in line) {
      if (!table || !Array.isArray(line.row) || line.row.length !== table.width) throw new CliError(`restore: ${shownAs} has a damaged row${table ? ` in ${table.name}` : ''}; nothing was changed`);
      seen[table.name]++;
    } else if ('end' in line) {
      end = line.rows;
    } else throw new CliError(`restore: ${shownAs} has a line this version does not know; nothing was changed`);
  }
  if (!header) throw new CliError(`restore: ${shownAs} is empty; nothing was changed`);
  if (!end) throw new CliError(`restore: ${shownAs} stops before its end (a backup cut off: copy it again); nothing was changed`);
  const mismatch = Object.keys({ ...end, ...seen }).filter((t) => end![t] !== seen[t]);
  if (mismatch.length) throw new CliError(`restore: ${shownAs} does not hold the rows its end line counts (${mismatch.join(', ')}); nothing was changed`);
  return { header, rows: end };
}

export interface PostgresRestoreResult {
  readonly restored: DatabaseSummary;
  /** With --force: what the database held before. */
  readonly replaced?: Pick<DatabaseSummary, 'users' | 'groups' | 'events'>;
}

/** Loads the backup `file` into the database (see the top of this file). */
export async function restorePostgres(
  databaseUrl: string,
  file: string,
  io: CliIo,
  { force, shownAs = file, caPem }: { force: boolean; shownAs?: string; caPem?: string },
): Promise<PostgresRestoreResult> {
  const checked = await checkPostgresBackup(file, shownAs);
  const { sslmode: _mode, ...config } = connectionConfig(databaseUrl, caPem ? { caPem } : {});
  const pool = new Pool({ ...config, max: 1, application_name: 'scim-bridge-cli' });
  pool.on('error', () => undefined);
  const db = new Kysely<any>({ dialect: new PostgresDialect({ pool }) });
  const progress = progressReporter(io);
  try {
    let replaced: PostgresRestoreResult['replaced'];
    await db
      .transaction()
      .execute(async (trx) => {
        const query = <R>(text: string, parameters: unknown[] = []) => trx.executeQuery<R>(CompiledQuery.raw(text, parameters)).then((r) => r.rows);
        const within: Queryable = { query: async <R>(text: string, parameters: unknown[] = []) => ({ rows: await query<R>(text, parameters) }) };
        // No replica may write while the tables are replaced: any other session on this database is one.
        const others = await query<{ n: string }>(
          "select count(*) as n from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid() and backend_type = 'client backend'",
        );
        if (Number(others[0].n) > 0) {
          throw new CliError(
            `restore: ${others[0].n} other sessions use ${redactUrl(databaseUrl)} (running bridge replicas?). Stop every replica first ` +
              '(on Kubernetes scale the Deployment to 0), then restore; nothing was changed',
          );
        }
        const tables = await bridgeTables(within);
        const count = async (t: string) => (tables.includes(t) ? Number((await query<{ n: string }>(`select count(*) as n from ${quote(t)}`))[0].n) : 0);
        const content = { users: await count('users'), groups: await count('groups'), events: await count('events') };
        if (!isEmpty(content)) {
          if (!force) {
            throw new CliError(
              `restore: ${redactUrl(databaseUrl)} is not empty (${content.users} users, ${content.groups} groups, ${content.events} events); ` +
                'restore goes into an empty database only. Back it up first if it matters (scim-bridge backup), then run again with --force to replace it; nothing was changed',
            );
          }
          replaced = content;
        }
        // What is there goes (empty, or replaced with --force), then this version's migrations build the backup's schema.
        for (const t of [...tables, MIGRATION_TABLE, MIGRATION_LOCK_TABLE]) await query(`drop table if exists ${quote(t)} cascade`);
        await migrateTo(trx, checked.header.migrations);
        const restoredTables = new Set(await bridgeTables(within));
        let loaded = 0;
        const total = Object.values(checked.rows).reduce((a, b) => a + b, 0);
        let current: { name: string; columns: string[]; batch: unknown[][] } | undefined;
        const flush = async () => {
          if (!current || current.batch.length === 0) return;
          const width = current.columns.length;
          const values = current.batch.map((_, i) => `(${current!.columns.map((__, j) => `$${i * width + j + 1}`).join(', ')})`).join(', ');
          await query(`insert into ${quote(current.name)} (${current.columns.map(quote).join(', ')}) values ${values}`, current.batch.flat());
          loaded += current.batch.length;
          current.batch = [];
          progress(`restore: ${loaded}/${total} rows loaded (${current.name})`);
        };
        for await (const line of linesOf(file, shownAs)) {
          if ('table' in line) {
            await flush();
            if (!restoredTables.has(line.table)) throw new CliError(`restore: ${shownAs} holds a table ${line.table} that schema ${checked.header.migrations.at(-1)} does not have; nothing was changed`);
            const columns = await columnsOf(within, line.table);
            const missing = line.columns.filter((c) => !columns.includes(c));
            if (missing.length) throw new CliError(`restore: ${shownAs}'s table ${line.table} has columns schema ${checked.header.migrations.at(-1)} does not (${missing.join(', ')}); nothing was changed`);
            current = { name: line.table, columns: line.columns, batch: [] };
          } else if ('row' in line) {
            current!.batch.push(line.row);
            if (current!.batch.length >= ROWS_PER_INSERT) await flush();
          }
        }
        await flush();
        // Sequences go on after the highest restored value (users.seq, events.seq…).
        for (const t of restoredTables) {
          for (const c of await columnsOf(within, t)) {
            const [{ seq }] = await query<{ seq: string | null }>('select pg_get_serial_sequence($1, $2) as seq', [quote(t), c]);
            if (seq) await query(`select setval($1::regclass, coalesce((select max(${quote(c)}) from ${quote(t)}), 0) + 1, false)`, [seq]);
          }
        }
        progress(`restore: ${loaded}/${total} rows loaded`, true);
      })
      .catch((err: unknown) => {
        if (err instanceof CliError) throw err;
        throw new CliError(`restore: ${(err as Error).message}; nothing was changed (the transaction was rolled back)`);
      });
    return { restored: summaryOf(checked.header.migrations.at(-1)!, checked.rows), ...(replaced ? { replaced } : {}) };
  } finally {
    await db.destroy();
  }
}

/**
 * Builds the schema as this version's migrations do, up to the backup's last one, inside the restore's
 * transaction, and records them where Kysely's Migrator looks (its own table layout), so the bridge runs only the
 * later ones at its next start.
 */
async function migrateTo(trx: Transaction<any>, names: string[]): Promise<void> {
  const migrations = await new StaticMigrations('postgres').getMigrations();
  await sql`create table ${sql.id(MIGRATION_TABLE)} (name varchar(255) not null primary key, timestamp varchar(255) not null)`.execute(trx);
  await sql`create table ${sql.id(MIGRATION_LOCK_TABLE)} (id varchar(255) not null primary key, is_locked integer not null default 0)`.execute(trx);
  await sql`insert into ${sql.id(MIGRATION_LOCK_TABLE)} (id, is_locked) values ('migration_lock', 0)`.execute(trx);
  for (const name of names) {
    await migrations[name].up(trx);
    await sql`insert into ${sql.id(MIGRATION_TABLE)} (name, timestamp) values (${name}, ${new Date().toISOString()})`.execute(trx);
  }
}
