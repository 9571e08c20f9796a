/**
 * `backup <file>` and `restore <file>`.
 *
 * SQLite: the backup is SQLite's online backup API (better-sqlite3's `db.backup()`) on a connection of its own:
 * in WAL mode it reads a snapshot while the bridge goes on writing, so the copy is consistent and the bridge is
 * never paused. It goes to a temporary file beside the target, is switched to a single self-contained file
 * (no WAL), checked, fsynced and only then renamed into place: `<file>` is either the previous copy or a whole
 * new one, never half of one.
 *
 * The restore replaces the database file with the backup, so it must not run under a bridge: it refuses while
 * any process has the database open, detected the way SQLite itself does it. Leaving WAL mode needs the only
 * connection to the database; with a bridge attached SQLite answers "database is locked" (SQLITE_BUSY) and the
 * restore stops before it has changed anything.
 *
 * PostgreSQL: a logical export of the bridge's tables in one snapshot, and its import into an empty database
 * (./postgres-backup.ts): the image ships no pg_dump, and a bridge's backup should restore with the bridge alone.
 */
import { copyFileSync, createReadStream, createWriteStream, existsSync, mkdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { basename, dirname, join, resolve } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { tmpdir } from 'node:os';
import { configFor, locate, redactUrl } from './database';
import { backupPostgres, backupPostgresToFile, restorePostgres } from './postgres-backup';
import { Args, CliError, CliIo, flag, progressReporter, usageError } from './io';
import { contentOf, DatabaseSummary, describeSummary, fsyncPath, hasSqliteHeader, inspectScimBridgeDatabase, isEmpty } from './sqlite-file';

/** Pages per backup step (4 MiB at 4 KiB pages): a progress line per step, the bridge's writes in between. */
const PAGES_PER_STEP = 1024;
/**
 * The backup API starts over when another connection writes between two steps. After this many restarts (a
 * bridge busier than the copy) the rest goes in one step: one read snapshot, which in WAL mode does not block
 * the bridge's writers either.
 */
const RESTARTS_BEFORE_ONE_STEP = 2;
const ALL_PAGES = 0x7fffffff;

function oneFile(args: Args, command: string): string {
  if (args.positionals.length !== 1) throw usageError(`${command} takes one file: npx scim-bridge ${command} <file>`);
  return resolve(args.positionals[0]);
}

const temporaryBeside = (file: string, what: string) => join(dirname(file), `.${basename(file)}.${what}-${process.pid}`);

function removeQuietly(path: string): void {
  rmSync(path, { force: true });
}

export async function backup(io: CliIo, args: Args): Promise<number> {
  const toStdout = args.positionals.length === 1 && args.positionals[0] === '-';
  const file = toStdout ? '-' : oneFile(args, 'backup');
  const config = configFor(io, args);
  const db = locate(config.databaseUrl);
  if (db.kind === 'postgres') {
    if (toStdout) {
      if (io.stdout === process.stdout && process.stdout.isTTY) throw usageError('backup -: stdout is a terminal; redirect it to a file (> scim-bridge.jsonl)');
      const out = stdoutStream(io);
      const summary = await backupPostgres(db.url, out, io, { caPem: config.databaseCaPem });
      io.stderr.write(`backup: ${redactUrl(db.url)} to stdout: ${describeSummary(summary)}\n`);
      return 0;
    }
    mkdirSync(dirname(file), { recursive: true });
    const summary = await backupPostgresToFile(db.url, file, io, config.databaseCaPem);
    io.stdout.write(`backup: ${file} (${statSync(file).size} bytes): ${describeSummary(summary)}\n`);
    return 0;
  }
  if (!existsSync(db.path)) throw new CliError(`backup: there is no database at ${db.path}; check SCIM_BRIDGE_DATABASE_URL (or pass --database sqlite:<path>)`);
  if (toStdout) {
    // `-`: the copy goes to stdout (kubectl exec and docker exec carry it out of a container that has no tar or
    // cat), staged beside the database: the container's /tmp is small.
    if (io.stdout === process.stdout && process.stdout.isTTY) throw usageError('backup -: stdout is a terminal; redirect it to a file (> scim-bridge.db)');
    const staged = temporaryBeside(db.path, 'backup');
    try {
      const summary = await backupSqlite(db.path, staged, io);
      await pipeline(createReadStream(staged), stdoutStream(io));
      io.stderr.write(`backup: ${statSync(staged).size} bytes to stdout: ${describeSummary(summary)}\n`);
    } finally {
      removeQuietly(staged);
    }
    return 0;
  }
  if (resolve(file) === db.path) throw usageError('backup: the backup file is the database itself; give another path');
  mkdirSync(dirname(file), { recursive: true });
  const summary = await backupSqlite(db.path, file, io);
  io.stdout.write(`backup: ${file} (${statSync(file).size} bytes): ${describeSummary(summary)}\n`);
  return 0;
}

/** stdout as a stream for pipeline(): the process's own, or (tests) one that forwards to io.stdout's write. */
function stdoutStream(io: CliIo): NodeJS.WritableStream {
  if (io.stdout instanceof Writable) return io.stdout;
  return new Writable({
    write(chunk: Buffer, _encoding, callback) {
      io.stdout.write(chunk as unknown as string);
      callback();
    },
  });
}

/**
 * Copies the live database at `path` to `file` (see the top of this file); returns what the copy holds.
 * Tests make steps small (`pagesPerStep`) and write between them (`betweenSteps`) as a busy bridge does.
 */
export async function backupSqlite(
  path: string,
  file: string,
  io: CliIo,
  { pagesPerStep = PAGES_PER_STEP, betweenSteps }: { pagesPerStep?: number; betweenSteps?: () => void } = {},
): Promise<DatabaseSummary> {
  const source = new BetterSqlite3(path, { fileMustExist: true });
  const temporary = temporaryBeside(file, 'partial');
  const progress = progressReporter(io);
  try {
    source.pragma('busy_timeout = 5000');
    let restarts = 0;
    let lastRemaining = Infinity;
    let step = pagesPerStep;
    removeQuietly(temporary);
    const done = await source.backup(temporary, {
      // Called between steps (not after the last one).
      progress({ totalPages, remainingPages }) {
        if (remainingPages > lastRemaining && ++restarts >= RESTARTS_BEFORE_ONE_STEP && step !== ALL_PAGES) {
          step = ALL_PAGES;
          io.stderr.write(`backup: the database changed during the copy ${restarts} times; copying the rest in one step\n`);
        }
        lastRemaining = remainingPages;
        const copied = totalPages - remainingPages;
        progress(`backup: ${copied}/${totalPages} pages copied (${totalPages ? Math.floor((copied * 100) / totalPages) : 100}%)`);
        betweenSteps?.();
        return step;
      },
    });
    progress(`backup: ${done.totalPages}/${done.totalPages} pages copied (100%)`, true);
  } catch (err) {
    removeQuietly(temporary);
    throw err;
  } finally {
    source.close();
  }
  let summary: DatabaseSummary;
  try {
    const copy = new BetterSqlite3(temporary, { fileMustExist: true });
    try {
      // One self-contained file: no -wal beside it to forget when it is moved.
      copy.pragma('journal_mode = DELETE');
      summary = await inspectScimBridgeDatabase(copy, `the copy of ${path}`);
    } finally {
      copy.close();
    }
    fsyncPath(temporary);
    renameSync(temporary, file);
    fsyncPath(dirname(file));
  } catch (err) {
    removeQuietly(temporary);
    throw err;
  }
  return summary;
}

export async function restore(io: CliIo, args: Args): Promise<number> {
  const fromStdin = args.positionals.length === 1 && args.positionals[0] === '-';
  const file = fromStdin ? '-' : oneFile(args, 'restore');
  const force = flag(args, 'force');
  const config = configFor(io, args);
  const db = locate(config.databaseUrl);
  if (db.kind === 'postgres') {
    let result: Awaited<ReturnType<typeof restorePostgres>>;
    if (fromStdin) {
      // Read twice (checked whole, then loaded): received into a file first.
      const received = join(tmpdir(), `scim-bridge-restore-${process.pid}.jsonl`);
      try {
        await pipeline(io.stdin, createWriteStream(received, { mode: 0o600 }));
        result = await restorePostgres(db.url, received, io, { force, shownAs: 'the backup on stdin', caPem: config.databaseCaPem });
      } finally {
        removeQuietly(received);
      }
    } else {
      if (!existsSync(file) || !statSync(file).isFile()) throw new CliError(`restore: there is no file ${file}`);
      result = await restorePostgres(db.url, file, io, { force, caPem: config.databaseCaPem });
    }
    io.stdout.write(
      `restore: ${redactUrl(db.url)} now holds ${describeSummary(result.restored)}` +
        (result.replaced ? `; it replaced ${result.replaced.users} users, ${result.replaced.groups} groups and ${result.replaced.events} events` : '') +
        '. Start the bridge.\n',
    );
    return 0;
  }
  let result: RestoreResult;
  if (fromStdin) {
    // `-`: the backup comes on stdin (kubectl exec -i, docker run -i), received beside the database first.
    mkdirSync(dirname(db.path), { recursive: true });
    const received = temporaryBeside(db.path, 'received');
    try {
      await pipeline(io.stdin, createWriteStream(received));
      result = await restoreSqlite(received, db.path, { force, shownAs: 'the backup on stdin' });
    } finally {
      removeQuietly(received);
    }
  } else {
    result = await restoreSqlite(file, db.path, { force });
  }
  io.stdout.write(
    `restore: ${db.path} now holds ${describeSummary(result.restored)}` +
      (result.replacedKeptAt ? `; the database it replaced is kept at ${result.replacedKeptAt} (delete it once the bridge runs well)` : '') +
      '. Start the bridge.\n',
  );
  return 0;
}

export interface RestoreResult {
  readonly restored: DatabaseSummary;
  /** With --force over a database that held data: where that database went. */
  readonly replacedKeptAt?: string;
}

/** Puts the backup `file` in place of the database at `path` (see the top of this file). */
export async function restoreSqlite(file: string, path: string, { force, shownAs = file }: { force: boolean; shownAs?: string }): Promise<RestoreResult> {
  if (!existsSync(file) || !statSync(file).isFile()) throw new CliError(`restore: there is no file ${file}`);
  if (statSync(file).size === 0) throw new CliError(`restore: ${shownAs} is empty; nothing was changed`);
  if (!hasSqliteHeader(file)) {
    throw new CliError(`restore: ${shownAs} is not a SQLite database, so not a scim-bridge backup of one (a PostgreSQL backup restores into a postgres:// database); nothing was changed`);
  }
  if (resolve(file) === path) throw usageError('restore: the backup file is the database itself; give the backup');
  mkdirSync(dirname(path), { recursive: true });
  // Checked on a copy beside the database (the same filesystem, so the final rename is atomic): the backup itself
  // is never written to, not even by SQLite's journal switch.
  const staged = temporaryBeside(path, 'restoring');
  let replacedKeptAt: string | undefined;
  try {
    copyFileSync(file, staged);
    let restored: DatabaseSummary;
    const copy = new BetterSqlite3(staged, { fileMustExist: true });
    try {
      copy.pragma('journal_mode = DELETE');
      restored = await inspectScimBridgeDatabase(copy, `restore: ${shownAs}`);
    } catch (err) {
      if (err instanceof CliError) throw new CliError(`${err.message.startsWith('restore:') ? '' : 'restore: '}${err.message}; nothing was changed`);
      throw err;
    } finally {
      copy.close();
    }
    fsyncPath(staged);
    if (existsSync(path)) replacedKeptAt = releaseTarget(path, force);
    renameSync(staged, path);
    fsyncPath(dirname(path));
    return { restored, replacedKeptAt };
  } finally {
    removeQuietly(staged);
  }
}

/**
 * Makes way for the restored file: refuses while a process has the database open or (without --force) while it
 * holds anything; with --force a database with data is kept beside it under a dated name rather than deleted.
 */
function releaseTarget(path: string, force: boolean): string | undefined {
  const target = new BetterSqlite3(path, { fileMustExist: true });
  let content: ReturnType<typeof contentOf>;
  try {
    target.pragma('busy_timeout = 0');
    let mode: unknown;
    try {
      mode = target.pragma('journal_mode = DELETE', { simple: true });
    } catch (err) {
      if ((err as { code?: string }).code?.startsWith('SQLITE_BUSY')) mode = 'busy';
      else throw err;
    }
    if (mode !== 'delete') {
      throw new CliError(
        `restore: ${path} is open in another process (a running bridge?): SQLite refused exclusive access. ` +
          'Stop the bridge first (docker stop scim-bridge; on Kubernetes scale the Deployment to 0), then restore; nothing was changed',
      );
    }
    content = contentOf(target);
  } finally {
    target.close();
  }
  let keptAt: string | undefined;
  if (!isEmpty(content)) {
    if (!force) {
      throw new CliError(
        `restore: ${path} is not empty (${content.users} users, ${content.groups} groups, ${content.events} events); ` +
          'restore goes into an empty database only. Back it up first if it matters, then run again with --force to replace it; nothing was changed',
      );
    }
    keptAt = `${path}.replaced-${new Date().toISOString().replace(/[:.]/g, '-')}`;
    renameSync(path, keptAt);
  } else {
    removeQuietly(path);
  }
  // Leaving WAL mode removed the WAL; whatever is left of it would be replayed into the restored file.
  removeQuietly(`${path}-wal`);
  removeQuietly(`${path}-shm`);
  return keptAt;
}
