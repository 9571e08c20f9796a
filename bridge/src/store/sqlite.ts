/**
 * The embedded default: SQLite through better-sqlite3, in WAL mode with synchronous=FULL, so a write has
 * reached the disk when its promise resolves (and the 201 goes out only then).
 */
import { mkdirSync } from 'node:fs';
import { FileHandle, open } from 'node:fs/promises';
import { dirname } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { CompiledQuery, DatabaseConnection, Driver, Kysely, SqliteDialect, SqliteDatabase, SqliteDriver, SqliteStatement, sql } from 'kysely';
import { SqlStore } from './sql-store';

const STATEMENT_CACHE_SIZE = 256;

/** better-sqlite3 prepares a statement on every call; keeping the prepared ones saves that work per query. */
function withStatementCache(db: BetterSqlite3.Database): SqliteDatabase {
  const cache = new Map<string, SqliteStatement>();
  return {
    close: () => db.close(),
    prepare(text: string): SqliteStatement {
      let stmt = cache.get(text);
      if (stmt === undefined) {
        stmt = db.prepare(text) as unknown as SqliteStatement;
        if (cache.size >= STATEMENT_CACHE_SIZE) cache.delete(cache.keys().next().value as string);
        cache.set(text, stmt);
      }
      return stmt;
    },
  };
}

/**
 * After some errors (SQLITE_FULL, SQLITE_IOERR) SQLite rolls the transaction back itself; Kysely's ROLLBACK then
 * fails with "cannot rollback - no transaction is active", and that error replaced the real one in the log. This
 * dialect rolls back only a transaction that is still open, so the error that ended it is the one reported.
 */
class SqliteDialectKeepingErrors extends SqliteDialect {
  constructor(
    private readonly db: BetterSqlite3.Database,
    private readonly database: SqliteDatabase = withStatementCache(db),
  ) {
    super({ database });
  }

  override createDriver(): Driver {
    const db = this.db;
    return new (class extends SqliteDriver {
      override async rollbackTransaction(connection: DatabaseConnection): Promise<void> {
        if (db.inTransaction) await super.rollbackTransaction(connection);
      }
    })({ database: this.database });
  }
}

/** A write that failed for want of space: SQLite's SQLITE_FULL, or the WAL's sync refused by the filesystem. */
function isStorageFull(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === 'SQLITE_FULL' || code === 'ENOSPC' || code === 'EDQUOT';
}

/** fdatasync of the WAL file (opened at the first commit, which creates it): every frame committed so far reaches the disk. */
function walSync(walPath: string) {
  let handle: FileHandle | undefined;
  let opening: Promise<FileHandle | undefined> | undefined;
  const openWal = async (): Promise<FileHandle | undefined> => {
    try {
      return await open(walPath, 'r');
    } catch (err) {
      // No WAL yet: the commits so far changed nothing (SQLite creates the file with the first change).
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    } finally {
      opening = undefined;
    }
  };
  return {
    sync: async () => {
      if (!handle) handle = await (opening ??= openWal());
      await handle?.datasync();
    },
    close: async () => {
      await handle?.close();
    },
  };
}

export function openSqlite(path: string): SqlStore {
  if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
  return sqliteStore(new BetterSqlite3(path));
}

/**
 * WAL size: SQLite folds the WAL back into the database (a checkpoint, run by the commit that crosses the limit)
 * every WAL_AUTOCHECKPOINT_PAGES pages, 4 MiB at 4 KiB pages (SQLite's default). It was 10,000 pages (40 MiB): on a
 * small disk the WAL filled it before its first checkpoint, and each checkpoint copied 40 MiB while holding the
 * event loop. Once the WAL is reset, a file grown past JOURNAL_SIZE_LIMIT_BYTES (by one big transaction) is cut
 * back to it, so the disk holds at most about 8 MiB of WAL beyond the database.
 */
export const WAL_AUTOCHECKPOINT_PAGES = 1000;
export const JOURNAL_SIZE_LIMIT_BYTES = 8 * 1024 * 1024;

/** The store on an open better-sqlite3 database: its settings, the durable sync of its WAL, the dialect. */
export function sqliteStore(db: BetterSqlite3.Database, options: { makeDurable?: () => Promise<void> } = {}): SqlStore {
  const path = db.name;
  db.pragma('journal_mode = WAL');
  // Durability without stalling the server: commits write the WAL (synchronous=NORMAL: no fsync inside
  // the commit, which would block the event loop), then the store fdatasyncs the WAL on libuv's thread
  // pool and acknowledges the batch only after that (see makeDurable below). A 2xx therefore means the
  // change is on disk, as with synchronous=FULL, while other requests are served during the sync.
  // In-memory databases have nothing to sync.
  const onDisk = path !== ':memory:' && path !== '';
  db.pragma(onDisk ? 'synchronous = NORMAL' : 'synchronous = FULL');
  db.pragma('busy_timeout = 5000');
  // Filters compare folded values themselves; LIKE must not fold case a second time.
  db.pragma('case_sensitive_like = ON');
  // 16 MiB of page cache keeps the indexes of 100,000 users hot within the 128 MB budget.
  db.pragma('cache_size = -16384');
  db.pragma('temp_store = MEMORY');
  db.pragma(`wal_autocheckpoint = ${WAL_AUTOCHECKPOINT_PAGES}`);
  db.pragma(`journal_size_limit = ${JOURNAL_SIZE_LIMIT_BYTES}`);
  // Analyse tables that need it now (0x10002: also those never analysed), as SQLite advises at open.
  db.pragma('analysis_limit = 1000');
  db.pragma('optimize = 0x10002');
  const wal = onDisk ? walSync(`${db.name}-wal`) : undefined;
  const dialect = new SqliteDialectKeepingErrors(db);
  return new SqlStore(new Kysely({ dialect }), {
    name: 'sqlite',
    maxParameters: 30000,
    groupCommit: true,
    // The WAL's fdatasync; `options.makeDurable` stands in for it (tests hold or fail the sync).
    makeDurable: options.makeDurable ?? wal?.sync,
    // Cheap when nothing changed; with fresh statistics (STAT4) a selective range uses its index.
    optimize: 'pragma optimize = 0x10002',
    isUniqueViolation: (e) => (e as { code?: string })?.code?.startsWith('SQLITE_CONSTRAINT_UNIQUE') === true,
    isStorageFull,
    explain: async (kysely, query) =>
      (await kysely.executeQuery<{ detail: string }>(CompiledQuery.raw(`explain query plan ${query.sql}`, [...query.parameters]))).rows.map((r) => r.detail),
    nowMs: `cast((julianday('now') - 2440587.5) * 86400000 as integer)`,
    singleReplica: true,
    substringIndex: 'fts5',
    joinInOrder: 'cross join',
    parameter: () => '?',
    idList: (ids) => sql`(select value as id from json_each(${JSON.stringify(ids)}))`,
    inProcess: true,
  }, async () => wal?.close());
}
