/**
 * The embedded default: SQLite through better-sqlite3, in WAL mode with synchronous=FULL, so a write has
 * reached the disk when its promise resolves (and the 201 goes out only then).
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { Kysely, SqliteDialect, SqliteDatabase, SqliteStatement } from 'kysely';
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

export function openSqlite(path: string): SqlStore {
  if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
  const db = new BetterSqlite3(path);
  db.pragma('journal_mode = WAL');
  // FULL: every commit is fsynced before it returns; a 2xx means the change survives a power cut.
  db.pragma('synchronous = FULL');
  db.pragma('busy_timeout = 5000');
  // Filters compare folded values themselves; LIKE must not fold case a second time.
  db.pragma('case_sensitive_like = ON');
  // 16 MiB of page cache keeps the indexes of 100,000 users hot within the 128 MB budget.
  db.pragma('cache_size = -16384');
  db.pragma('temp_store = MEMORY');
  // A longer WAL between checkpoints: an index page changed by many commits is copied back once.
  db.pragma('wal_autocheckpoint = 10000');
  // Analyse tables that need it now (0x10002: also those never analysed), as SQLite advises at open.
  db.pragma('analysis_limit = 1000');
  db.pragma('optimize = 0x10002');
  const dialect = new SqliteDialect({ database: withStatementCache(db) });
  return new SqlStore(new Kysely({ dialect }), {
    name: 'sqlite',
    maxParameters: 30000,
    groupCommit: true,
    // Cheap when nothing changed; with fresh statistics (STAT4) a selective range uses its index.
    optimize: 'pragma optimize = 0x10002',
    isUniqueViolation: (e) => (e as { code?: string })?.code?.startsWith('SQLITE_CONSTRAINT_UNIQUE') === true,
  });
}
