/**
 * PostgreSQL, for one replica or several on one database: `pg` through Kysely's PostgresDialect, a bounded pool,
 * TLS when the URL asks for it. What differs from SQLite comes in through SqlDialect (see the rules in types.ts):
 * row locks for writes, retries of a transaction that lost a deadlock, the events feed's horizon, the migration
 * lock. A commit is durable when it returns (synchronous_commit on, PostgreSQL's default), and PostgreSQL groups
 * concurrent commits into one WAL flush itself, so every write is its own transaction.
 */
import { readFileSync } from 'node:fs';
import { CompiledQuery, Kysely, PostgresDialect, sql } from 'kysely';
import { Client, Pool, PoolConfig } from 'pg';
import { SqlStore } from './sql-store';

/** Advisory lock keys (one 64-bit namespace per database; these are ours). */
const MIGRATION_LOCK = 7_353_810_201_400_001n;
/** Writers take it shared before appending events; the feed's horizon takes it exclusive. */
export const EVENTS_LOCK = 7_353_810_201_400_002n;

export const DEFAULT_POOL_SIZE = 10;

export interface PostgresOptions {
  /** Connections at most (SCIM_BRIDGE_DATABASE_POOL). */
  readonly poolSize?: number;
  /** PEM of the CA that signs the server's certificate (SCIM_BRIDGE_DATABASE_CA); the system's CAs otherwise. */
  readonly caPem?: string;
  /** Told when an idle connection fails (the pool replaces it); never given the URL. */
  readonly onError?: (error: Error) => void;
}

/** A URL the bridge cannot use: the message never contains the URL (it may hold a password). */
export class DatabaseUrlError extends Error {}

const SSL_MODES = ['disable', 'require', 'verify-ca', 'verify-full'] as const;
type SslMode = (typeof SSL_MODES)[number];

/** Query parameters of a PostgreSQL URL that the bridge understands; any other is refused rather than ignored. */
const KNOWN_PARAMETERS = new Set(['sslmode', 'host', 'port', 'user', 'password', 'dbname', 'application_name', 'connect_timeout']);

/**
 * `postgres://user:password@host:port/database?sslmode=…` -> pg's connection settings. TLS as libpq means it:
 * `require` encrypts (and checks the chain when a CA is given, as libpq does with a root certificate),
 * `verify-ca` checks the chain, `verify-full` the chain and the host name; `disable` or none: no TLS.
 * libpq's `prefer` and `allow` (TLS only if the server offers it) are refused: say which you mean.
 */
export function connectionConfig(databaseUrl: string, options: Pick<PostgresOptions, 'caPem'> = {}): PoolConfig & { sslmode: SslMode } {
  let url: URL;
  try {
    // libpq allows an empty host (postgres://user@/db?host=/run/postgresql); WHATWG URLs do not.
    url = new URL(databaseUrl.replace(/^(postgres(?:ql)?:\/\/(?:[^@/]*@)?)\//, '$1localhost/'));
  } catch {
    throw new DatabaseUrlError('not a URL; expected postgres://user:password@host:5432/database');
  }
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') throw new DatabaseUrlError('expected a postgres:// URL');
  const params = url.searchParams;
  for (const key of params.keys()) {
    if (!KNOWN_PARAMETERS.has(key)) throw new DatabaseUrlError(`the URL's parameter '${key}' is not supported (supported: ${[...KNOWN_PARAMETERS].join(', ')})`);
  }
  const mode = (params.get('sslmode') ?? 'disable') as SslMode;
  if (!SSL_MODES.includes(mode)) {
    throw new DatabaseUrlError(`sslmode=${params.get('sslmode')} is not supported; use sslmode=verify-full (TLS, certificate and host name checked), verify-ca, require, or disable`);
  }
  const decode = (v: string) => {
    try {
      return decodeURIComponent(v);
    } catch {
      throw new DatabaseUrlError('the URL has a badly %-encoded part (user, password or database)');
    }
  };
  const database = decode(url.pathname.replace(/^\//, '')) || params.get('dbname') || undefined;
  const ca = options.caPem;
  const ssl =
    mode === 'disable'
      ? false
      : mode === 'verify-full'
        ? { rejectUnauthorized: true, ...(ca ? { ca } : {}) }
        : mode === 'verify-ca' || ca
          ? // The chain, not the name (libpq's verify-ca).
            { rejectUnauthorized: true, ...(ca ? { ca } : {}), checkServerIdentity: () => undefined }
          : { rejectUnauthorized: false };
  const connectTimeout = Number(params.get('connect_timeout') ?? 10);
  return {
    sslmode: mode,
    host: params.get('host') ?? (url.hostname.replace(/^\[(.*)\]$/, '$1') || 'localhost'),
    port: Number(params.get('port') ?? (url.port || 5432)),
    user: params.get('user') ?? (url.username ? decode(url.username) : undefined),
    password: params.get('password') ?? (url.password ? decode(url.password) : undefined),
    database,
    application_name: params.get('application_name') ?? 'scim-bridge',
    ssl,
    connectionTimeoutMillis: Number.isFinite(connectTimeout) && connectTimeout > 0 ? connectTimeout * 1000 : 10_000,
  };
}

/** The CA file of SCIM_BRIDGE_DATABASE_CA, checked to hold a PEM certificate. */
export function readCaFile(path: string): string {
  const pem = readFileSync(path, 'utf8');
  if (!/-----BEGIN CERTIFICATE-----/.test(pem)) throw new DatabaseUrlError(`${path} holds no PEM certificate (-----BEGIN CERTIFICATE-----)`);
  return pem;
}

function code(error: unknown): string | undefined {
  const c = (error as { code?: unknown } | null)?.code;
  return typeof c === 'string' ? c : undefined;
}

/**
 * The store on a PostgreSQL database. The pool is created here and closed with the store. Migrations are run by
 * `migrate()` (openStore does), once across replicas starting together.
 */
export function openPostgres(databaseUrl: string, options: PostgresOptions = {}): SqlStore {
  const { sslmode: _mode, ...config } = connectionConfig(databaseUrl, options);
  const pool = new Pool({ ...config, max: options.poolSize ?? DEFAULT_POOL_SIZE, idleTimeoutMillis: 30_000 });
  // An idle connection that breaks (a server restart, a failover) is dropped by the pool; without a listener
  // the 'error' event would end the process.
  pool.on('error', (err) => options.onError?.(err));
  const kysely = new Kysely<any>({ dialect: new PostgresDialect({ pool }) });
  return new SqlStore(
    kysely,
    {
      name: 'postgres',
      maxParameters: 30000,
      groupCommit: false,
      rowLocks: true,
      explicitNulls: true,
      substringIndex: 'pg_trgm',
      joinInOrder: 'join',
      parameter: (n) => `$${n}`,
      idList: (ids) => sql`(select unnest(${ids}::text[]) as id)`,
      inProcess: false,
      // unique_violation
      isUniqueViolation: (e) => code(e) === '23505',
      // deadlock_detected, serialization_failure
      isRetryable: (e) => code(e) === '40P01' || code(e) === '40001',
      // disk_full
      isStorageFull: (e) => code(e) === '53100',
      // Fresh statistics for the planner (autovacuum also runs it); cheap at the bridge's sizes.
      optimize: 'analyze',
      explain: async (db, query) =>
        (await db.executeQuery<{ 'QUERY PLAN': string }>(CompiledQuery.raw(`explain ${query.sql}`, [...query.parameters]))).rows.map((r) => r['QUERY PLAN']),
      nowMs: `(extract(epoch from clock_timestamp()) * 1000)::bigint`,
      /**
       * Sequence order is not commit order when writers run at once: seq 7 can commit after seq 8. Writers hold
       * EVENTS_LOCK shared from their first event to their commit; this takes it exclusive, which waits for every
       * such writer to commit or roll back (and holds new ones back for that moment), then reads the sequence. Every
       * seq up to that value belongs to a transaction that has ended: a reader that stops there never passes an
       * event that commits later.
       */
      eventHorizon: async (db) =>
        db.transaction().execute(async (trx) => {
          await sql`select pg_advisory_xact_lock(${EVENTS_LOCK.toString()}::bigint)`.execute(trx);
          const { rows } = await sql<{ horizon: string }>`
            select case when is_called then last_value else last_value - 1 end as horizon from events_seq_seq`.execute(trx);
          return Number(rows[0].horizon);
        }),
      eventsLock: sql`(select true from (select pg_advisory_xact_lock_shared(${EVENTS_LOCK.toString()}::bigint)) as l)`,
      /**
       * A session lock on a connection of its own, outside the pool (a pool of one must still run the migrator):
       * replicas starting together wait here, and each finds the schema up to date once it has the lock.
       */
      withMigrationLock: async (run) => {
        const client = new Client({ ...config });
        client.on('error', () => undefined);
        await client.connect();
        try {
          await client.query('select pg_advisory_lock($1::bigint)', [MIGRATION_LOCK.toString()]);
          try {
            return await run();
          } finally {
            await client.query('select pg_advisory_unlock($1::bigint)', [MIGRATION_LOCK.toString()]).catch(() => undefined);
          }
        } finally {
          await client.end().catch(() => undefined);
        }
      },
    },
  );
}
