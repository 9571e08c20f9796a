/**
 * What makes a SQLite file a scim-bridge database, and how much it holds: checked before a restore touches
 * anything, and printed after a backup.
 */
import { closeSync, fsyncSync, openSync, readSync } from 'node:fs';
import BetterSqlite3 from 'better-sqlite3';
import { StaticMigrations } from '../store/migrations';
import { CliError } from './io';

const SQLITE_HEADER = 'SQLite format 3\0';
/** Kysely's Migrator keeps the names of the migrations run in this table (its default name). */
const MIGRATION_TABLE = 'kysely_migration';
const REQUIRED_TABLES = ['users', 'groups', 'group_members', 'events', 'settings'];

/** The migrations this version knows, in order: a database holds a prefix of them. */
export async function knownMigrations(): Promise<string[]> {
  return Object.keys(await new StaticMigrations('sqlite').getMigrations()).sort();
}

export interface DatabaseSummary {
  /** The last migration the database went through. */
  readonly migration: string;
  readonly users: number;
  readonly groups: number;
  readonly events: number;
  readonly deadLetters: number;
}

export const describeSummary = (s: DatabaseSummary) =>
  `${s.users} users, ${s.groups} groups, ${s.events} events (${s.deadLetters} dead letters), schema ${s.migration}`;

export const isEmpty = (s: Pick<DatabaseSummary, 'users' | 'groups' | 'events'>) => s.users === 0 && s.groups === 0 && s.events === 0;

/** Whether the file starts like a SQLite database (a cheap check with a clear message, before SQLite opens it). */
export function hasSqliteHeader(path: string): boolean {
  const fd = openSync(path, 'r');
  try {
    const header = Buffer.alloc(16);
    return readSync(fd, header, 0, 16, 0) === 16 && header.toString('latin1') === SQLITE_HEADER;
  } finally {
    closeSync(fd);
  }
}

const tableNames = (db: BetterSqlite3.Database): Set<string> =>
  new Set((db.prepare("select name from sqlite_master where type = 'table'").all() as { name: string }[]).map((r) => r.name));

const count = (db: BetterSqlite3.Database, table: string): number => Number((db.prepare(`select count(*) as n from ${table}`).get() as { n: number }).n);

/** What the database holds; tables that do not exist yet count as empty (a database no bridge has written to). */
export function contentOf(db: BetterSqlite3.Database): Pick<DatabaseSummary, 'users' | 'groups' | 'events'> {
  const tables = tableNames(db);
  const n = (t: string) => (tables.has(t) ? count(db, t) : 0);
  return { users: n('users'), groups: n('groups'), events: n('events') };
}

/**
 * Checks that `db` is an undamaged scim-bridge database whose schema this version knows (the same or an older
 * one: the bridge brings an older one up to date at its next start). `what` names the file in errors.
 */
export async function inspectScimBridgeDatabase(db: BetterSqlite3.Database, what: string): Promise<DatabaseSummary> {
  const check = db.pragma('quick_check', { simple: true });
  if (check !== 'ok') throw new CliError(`${what} is damaged (SQLite's quick_check: ${String(check)}); use another backup`);
  const tables = tableNames(db);
  if (!tables.has(MIGRATION_TABLE)) {
    throw new CliError(`${what} is a SQLite database but not a scim-bridge one (it has no ${MIGRATION_TABLE} table); give a file that \`scim-bridge backup\` wrote`);
  }
  const applied = (db.prepare(`select name from ${MIGRATION_TABLE} order by name`).all() as { name: string }[]).map((r) => r.name);
  const known = await knownMigrations();
  const unknown = applied.filter((name) => !known.includes(name));
  if (unknown.length > 0) {
    throw new CliError(
      `${what} was written by a newer scim-bridge (its schema has ${unknown.join(', ')}; this version knows up to ${known.at(-1)}): ` +
        'restore it with the scim-bridge version (image) that wrote it, or a newer one',
    );
  }
  if (applied.length === 0 || applied.some((name, i) => name !== known[i])) {
    throw new CliError(`${what} has an unexpected set of migrations (${applied.join(', ') || 'none'}); it is not a database scim-bridge wrote`);
  }
  const missing = REQUIRED_TABLES.filter((t) => !tables.has(t));
  if (missing.length > 0) throw new CliError(`${what} lacks the tables ${missing.join(', ')}; it is not a complete scim-bridge database`);
  return {
    migration: applied[applied.length - 1],
    ...contentOf(db),
    deadLetters: tables.has('dead_letters') ? count(db, 'dead_letters') : 0,
  };
}

/** fsync of a file or a directory (a rename is durable once its directory is synced). */
export function fsyncPath(path: string): void {
  const fd = openSync(path, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
