/**
 * The Store on Kysely: the same queries for SQLite and PostgreSQL. What differs between the two (how a
 * unique violation looks, row locks, the feed's horizon, which trigram index serves substrings, how a plan is
 * explained) comes in through `SqlDialect`; the rules both keep are written down in types.ts.
 */
import { randomUUID } from 'node:crypto';
import { Compilable, CompiledQuery, Generated, Insertable, Kysely, RawBuilder, Selectable, Migrator, Transaction, sql } from 'kysely';
import { badRequest, conflict, preconditionFailed, ScimError } from '../errors';
import { countTerms, FilterTarget, memberPredicate, rowPredicate, SubstringIndex, termSource, trigramQuery, trigrams } from './compile-filter';
import { DialectName, StaticMigrations, TEXT_COLUMNS, TEXT_TRIGGER_TABLES } from './migrations';
import {
  foldCase,
  ExpectedVersion,
  GroupRecord,
  GroupWrite,
  IndexRow,
  ListQuery,
  MemberChange,
  MemberRef,
  Page,
  SortablePath,
  Store,
  StoreFilter,
  EventRecord,
  MembershipDelta,
  NewEvent,
  UserRecord,
  UserStatus,
  UserWrite,
} from './types';

interface UsersTable {
  seq: Generated<number>;
  id: string;
  user_name: string;
  user_name_ci: string;
  external_id: string | null;
  display_name: string | null;
  display_name_ci: string | null;
  active: number;
  status: string;
  doc: string;
  created: string;
  last_modified: string;
  version: number;
}
interface GroupsTable {
  seq: Generated<number>;
  id: string;
  display_name: string;
  display_name_ci: string;
  external_id: string | null;
  managed: number;
  doc: string;
  created: string;
  last_modified: string;
  version: number;
}
interface EventsTable {
  seq: Generated<number>;
  id: string;
  type: string;
  resource_id: string;
  occurred_at: string;
  data: string;
}
interface LeasesTable {
  name: string;
  holder: string;
  /** Milliseconds since the epoch, by the database's clock. */
  expires_at: number;
  cursor: number;
}
interface Database {
  leases: LeasesTable;
  users: UsersTable;
  groups: GroupsTable;
  attr_values: { res_id: string; path: string; idx: number; v: string };
  group_members: { group_id: string; member_id: string; member_type: string };
  settings: { key: string; value: string };
  events: EventsTable;
  dead_letters: { seq: number; failed_at: string; error: string };
}

export interface SqlDialect {
  readonly name: DialectName;
  isUniqueViolation(error: unknown): boolean;
  /** Bound parameters per statement, to size batches. */
  readonly maxParameters: number;
  /**
   * Group commit: writes that arrive while a commit is under way share the next transaction and its one
   * fsync (SQLite has one writer; PostgreSQL groups commits itself).
   */
  readonly groupCommit: boolean;
  /**
   * Makes what the last commit wrote durable, without blocking the event loop (SQLite: an fdatasync of
   * the WAL on libuv's thread pool). A write is acknowledged only after this resolves. Absent when the
   * commit itself is durable.
   */
  readonly makeDurable?: () => Promise<void>;
  /** Refreshes the planner's statistics, so that filters choose their index by what the data looks like. */
  readonly optimize?: string;
  /** Whether a write failed for want of disk space (SQLite: SQLITE_FULL; the sync: ENOSPC), which freeing space cures. */
  isStorageFull?(error: unknown): boolean;
  /**
   * Several writers at once (PostgreSQL, several replicas): a write reads the row it changes with `for update`,
   * so that concurrent writes of one resource run one after the other (no lost update, one If-Match winner).
   * SQLite has one writer at a time and no such clause.
   */
  readonly rowLocks?: boolean;
  /** A transaction that failed for the concurrency's sake (deadlock, serialization failure) and may run again. */
  isRetryable?(error: unknown): boolean;
  /**
   * The feed's horizon: the highest event seq below which every transaction that took a seq has ended. Absent:
   * seq order is commit order (SQLite has one writer; durableSeq covers the sync).
   */
  eventHorizon?(db: Kysely<any>): Promise<number>;
  /**
   * A condition that takes the lock eventHorizon waits for (PostgreSQL: EVENTS_LOCK, shared): the insert of a
   * transaction's events is filtered by it, so that the lock is held before the first seq is drawn, in the same
   * round trip. Absent where seq order is commit order.
   */
  readonly eventsLock?: RawBuilder<unknown>;
  /** ORDER BY says where NULLs go (PostgreSQL puts them last; SQLite, whose order is the contract, first). */
  readonly explicitNulls?: boolean;
  /**
   * How `co`/`ew` find candidates: SQLite's FTS5 table of texts (the rarest trigram of a few tried), or pg_trgm's
   * GIN index on the column itself (PostgreSQL: the LIKE is the index lookup).
   */
  readonly substringIndex: SubstringIndex;
  /**
   * A join that keeps its left side as the outer loop: SQLite's CROSS JOIN is that hint; PostgreSQL has no such
   * hint (its CROSS JOIN takes no ON) and plans a plain JOIN by its statistics.
   */
  readonly joinInOrder: 'cross join' | 'join';
  /** A list of ids as a table of one column `id`, bound as one parameter whatever its length (`from … as w`). */
  idList(ids: readonly string[]): RawBuilder<unknown>;
  /** The n-th (from 1) bound parameter in raw SQL: `?` on SQLite, `$n` on PostgreSQL. */
  parameter(n: number): string;
  /**
   * The database runs inside this process (SQLite): a slice's work is this process's CPU time. Otherwise
   * (PostgreSQL) the work is the database server's, and a slice is measured by the clock.
   */
  readonly inProcess: boolean;
  /** The database's plan of a compiled query, one line per step. */
  explain(db: Kysely<any>, query: CompiledQuery): Promise<string[]>;
  /** Runs the migrations under a lock that other replicas starting at the same time wait for. */
  withMigrationLock?<T>(run: () => Promise<T>): Promise<T>;
  /** SQL for the database's clock in milliseconds since the epoch (leases use it: one clock for every replica). */
  readonly nowMs: string;
  /** One replica only (SQLite): a lease is taken over at once, the previous holder being this process before a restart. */
  readonly singleReplica?: boolean;
}

/**
 * Retry-After on a write refused for a full disk. Space comes back by someone's hand, not in seconds; a minute
 * keeps an IdP's retries from hammering a bridge that cannot write, and recovery needs no restart.
 */
export const STORAGE_FULL_RETRY_AFTER_SECONDS = 60;

interface WriteJob {
  run(trx: Transaction<Database>): Promise<unknown>;
  resolve(value: unknown): void;
  reject(error: unknown): void;
}

/** The most writes one group commit takes: bounds how long one batch holds the database. */
const MAX_BATCH = 128;
/** Runs of one write that lost a deadlock or serialization check, at most. */
const MAX_WRITE_ATTEMPTS = 5;

type Db = Kysely<Database> | Transaction<Database>;

const SLOT = '\u0000slot:';

/**
 * A query built and compiled once, with named slots for its values, then run many times: the hot paths
 * (read by id, insert a user, its index rows) do not pay the query builder on every request.
 */
class Prepared<Row = unknown> {
  private compiled?: { sql: string; params: readonly unknown[] };

  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  constructor(private readonly build: (slot: (name: string) => any) => Compilable<Row>) {}

  private compile() {
    const q = this.build((name: string) => `${SLOT}${name}`).compile();
    return (this.compiled = { sql: q.sql, params: q.parameters });
  }

  async run(db: Db, values: Record<string, unknown>): Promise<Row[]> {
    const { sql: text, params } = this.compiled ?? this.compile();
    const bound = params.map((p) => (typeof p === 'string' && p.startsWith(SLOT) ? values[p.slice(SLOT.length)] : p));
    return (await db.executeQuery<Row>(CompiledQuery.raw(text, bound as unknown[]))).rows;
  }
}

/**
 * UUIDs whose first 48 bits are the creation time in milliseconds (the layout of UUID version 7): new
 * rows land at the end of every index keyed by id instead of on a random page, so a commit writes
 * (and fsyncs) a few pages rather than one per index per user.
 */
export function timeOrderedId(now = Date.now()): string {
  const time = now.toString(16).padStart(12, '0');
  // randomUUID draws from a cached pool of entropy: its random part, behind our timestamp and version 7.
  return `${time.slice(0, 8)}-${time.slice(8, 12)}-7${randomUUID().slice(15)}`;
}

const USER_COLUMNS: FilterTarget['columns'] = {
  id: { sql: 'id', kind: 'text', indexed: true, unique: true },
  userName: { sql: 'user_name_ci', kind: 'text', indexed: true, unique: true, texts: true },
  externalId: { sql: 'external_id', kind: 'text', indexed: true, texts: true },
  displayName: { sql: 'display_name_ci', kind: 'text', indexed: true, texts: true },
  active: { sql: 'active', kind: 'bool' },
  'meta.created': { sql: 'created', kind: 'text', indexed: true },
  'meta.lastModified': { sql: 'last_modified', kind: 'text', indexed: true },
};
const GROUP_COLUMNS: FilterTarget['columns'] = {
  id: { sql: 'id', kind: 'text', indexed: true, unique: true },
  displayName: { sql: 'display_name_ci', kind: 'text', indexed: true, unique: true, texts: true },
  externalId: { sql: 'external_id', kind: 'text', indexed: true, texts: true },
  'meta.created': { sql: 'created', kind: 'text', indexed: true },
  'meta.lastModified': { sql: 'last_modified', kind: 'text', indexed: true },
};
const USER_TARGET: FilterTarget = { table: 'users', alias: 'u', columns: USER_COLUMNS, lookup: () => 'values' };
const GROUP_TARGET: FilterTarget = {
  table: 'groups',
  alias: 'g',
  columns: GROUP_COLUMNS,
  lookup: (path) => (path === 'members' || path.startsWith('members.') ? 'members' : undefined),
};

const SORT_COLUMNS: Record<SortablePath, { users: keyof UsersTable; groups: keyof GroupsTable }> = {
  id: { users: 'id', groups: 'id' },
  userName: { users: 'user_name_ci', groups: 'display_name_ci' },
  displayName: { users: 'display_name_ci', groups: 'display_name_ci' },
  externalId: { users: 'external_id', groups: 'external_id' },
  'meta.created': { users: 'created', groups: 'created' },
  'meta.lastModified': { users: 'last_modified', groups: 'last_modified' },
};

function toUser(row: Selectable<UsersTable>, index: readonly IndexRow[] = []): UserRecord {
  return {
    id: row.id,
    userName: row.user_name,
    externalId: row.external_id,
    displayName: row.display_name,
    active: row.active === 1,
    status: row.status as UserStatus,
    doc: JSON.parse(row.doc),
    index,
    created: row.created,
    lastModified: row.last_modified,
    version: Number(row.version),
  };
}

function memberOf(r: { member_id: string; member_type: string; user_display: string | null; user_name: string | null; group_display: string | null }): MemberRef {
  return {
    value: r.member_id,
    type: r.member_type === 'group' ? 'Group' : 'User',
    display: (r.member_type === 'group' ? r.group_display : r.user_display ?? r.user_name) ?? null,
  };
}

function toGroup(row: Selectable<GroupsTable>, members?: MemberRef[]): GroupRecord {
  return {
    id: row.id,
    displayName: row.display_name,
    externalId: row.external_id,
    managed: row.managed === 1,
    doc: JSON.parse(row.doc),
    created: row.created,
    lastModified: row.last_modified,
    version: Number(row.version),
    members,
  };
}

/** Index rows for paths that have a column of their own are not stored twice. */
function valueRows(id: string, index: readonly IndexRow[]) {
  const seen = new Set<string>();
  const rows: Database['attr_values'][] = [];
  for (const r of index) {
    if (USER_COLUMNS[r.path]) continue;
    const key = `${r.path}\u0000${r.idx}\u0000${r.v}`;
    if (seen.has(key)) continue;
    seen.add(key);
    rows.push({ res_id: id, path: r.path, idx: r.idx, v: r.v });
  }
  return rows;
}

/**
 * A filter that asks for a range of meta.lastModified or meta.created ("what changed since …") is served
 * in that order, so that one index answers both the range and the order: sorting by creation instead
 * would tempt the planner to walk every row.
 */
function dateRangeOf(filter: StoreFilter | undefined): SortablePath | undefined {
  if (!filter) return undefined;
  if (filter.kind === 'and') return dateRangeOf(filter.left) ?? dateRangeOf(filter.right);
  if (filter.kind === 'compare' && (filter.path === 'meta.lastModified' || filter.path === 'meta.created') && ['gt', 'ge', 'lt', 'le'].includes(filter.op)) {
    return filter.path;
  }
  return undefined;
}

function eventOf(r: { seq: number; id: string; type: string; resource_id: string; occurred_at: string; data: string }): EventRecord {
  return { seq: Number(r.seq), id: r.id, type: r.type, resourceId: r.resource_id, occurredAt: r.occurred_at, data: JSON.parse(r.data), dataJson: r.data };
}

/** The total is known without counting when the page came back short (and not past the end). */
function pageTotal(query: ListQuery, got: number): number | undefined {
  return query.limit > 0 && got < query.limit && (got > 0 || query.offset === 0) ? query.offset + got : undefined;
}

/** An error as one line for /health: SQLite's code and message ("SQLITE_FULL: database or disk is full"). */
function errorText(error: unknown): string {
  const { code, message } = (error ?? {}) as { code?: unknown; message?: unknown };
  const text = typeof message === 'string' ? message : String(error);
  return typeof code === 'string' && !text.startsWith(code) ? `${code}: ${text}` : text;
}

/**
 * What one list may cost. A filtered list runs from the candidates of a selective term when a bounded count
 * shows that candidates x terms stays within CANDIDATE_BUDGET (each candidate is checked against every term);
 * otherwise it is evaluated in slices of rows, each about SLICE_MS of work (CPU time), with a turn of the
 * event loop between slices, so that no request holds the server; a filter that needs more than
 * SCAN_BUDGET_MS of work in slices is refused (400 tooMany).
 */
export const CANDIDATE_BUDGET = 20_000;
export const SCAN_BUDGET_MS = 10_000;
const SLICE_MS = 8;
/** How many of an operand's trigrams are tried for the rarest one (each try is a bounded count), and how many texts that one may be in. */
const TRIGRAM_TRIES = 4;
const MAX_TRIGRAM_TEXTS = 2_000;
/** An unfiltered page further down than this is reached by slices (walking the offset costs a row each). */
const INLINE_OFFSET = 5_000;
/** A page holds at most this much of stored documents (and at least one resource); the rest comes with the next page. */
export const PAGE_BYTES = 4 * 1024 * 1024;

interface PageRow {
  readonly seq: number;
  readonly bytes: number;
}

/** Columns that may be NULL: a keyset scan walks their NULLs apart (they sort first). */
const NULLABLE_SORT = new Set(['external_id', 'display_name_ci']);

/** How a filtered list will run: from these candidates, or by slices. */
type ListPlan = { readonly kind: 'candidates'; readonly ids: RawBuilder<unknown>; readonly count: number } | { readonly kind: 'slices' };

/**
 * U+0000 never reaches the database: PostgreSQL's text cannot hold it, so neither store takes it (rule 7 in
 * types.ts). An id with it names nothing; a value or a filter with it is a 400.
 */
const NUL = '\u0000';
const hasNul = (value: string | null | undefined): boolean => typeof value === 'string' && value.includes(NUL);

function refuseNul(values: readonly (string | null | undefined)[]): void {
  if (values.some(hasNul)) throw badRequest('invalidValue', 'A value contains the character U+0000 (NUL), which the bridge does not store; remove it.');
}

function refuseNulInFilter(filter: StoreFilter | undefined): void {
  if (!filter) return;
  switch (filter.kind) {
    case 'and':
    case 'or':
      refuseNulInFilter(filter.left);
      refuseNulInFilter(filter.right);
      return;
    case 'not':
      refuseNulInFilter(filter.operand);
      return;
    case 'element':
      refuseNulInFilter(filter.filter);
      return;
    case 'compare':
      if (hasNul(filter.value)) throw badRequest('invalidFilter', 'The filter compares with a value that contains the character U+0000 (NUL), which no stored value holds; remove it.');
      return;
    default:
      return;
  }
}

function userTexts(user: UserWrite): (string | null)[] {
  return [user.userName, user.externalId, user.displayName, ...user.index.map((r) => r.v), ...user.index.map((r) => r.path)];
}

function checkVersion(kind: string, id: string, actual: number, expected: ExpectedVersion): void {
  if (expected !== undefined && !expected.includes(actual)) {
    throw preconditionFailed(`The ${kind} ${id} is at version W/"${actual}", not the one in If-Match; read it again and retry.`);
  }
}

export class SqlStore implements Store {
  private readonly migrator: Migrator;

  constructor(
    private readonly db: Kysely<Database>,
    private readonly dialect: SqlDialect,
    private readonly onClose: () => Promise<void> = async () => undefined,
  ) {
    this.migrator = new Migrator({ db, provider: new StaticMigrations(dialect.name) });
  }

  async migrate(): Promise<void> {
    const migrate = () => this.migrator.migrateToLatest();
    const { error, results } = await (this.dialect.withMigrationLock ? this.dialect.withMigrationLock(migrate) : migrate());
    const failed = results?.find((r) => r.status === 'Error');
    if (error) {
      throw new Error(`Database migration ${failed?.migrationName ?? ''} failed: ${(error as Error).message ?? error}`);
    }
    // Whatever the database holds at open is on disk.
    if (this.dialect.makeDurable) this.durableSeq = await this.lastEventSeq(this.db);
  }

  /**
   * The last event whose change is durable: the feed and delivery never show an event before the change
   * it describes is on disk (a reader may see a commit before its sync has finished).
   */
  private durableSeq = Number.MAX_SAFE_INTEGER;

  /** Built once: it runs after every group commit. */
  private readonly lastSeqQuery = new Prepared<{ seq: number | string | null }>(() => this.db.selectFrom('events').select((eb) => eb.fn.max('seq').as('seq')));

  private async lastEventSeq(db: Db): Promise<number> {
    const [row] = await this.lastSeqQuery.run(db, {});
    return Number(row?.seq ?? 0);
  }

  private maintenance?: NodeJS.Timeout;

  /** Runs the dialect's statistics refresh now and then every `intervalMs`. */
  async startMaintenance(intervalMs: number): Promise<void> {
    await this.optimize();
    this.maintenance = setInterval(() => void this.optimize().then(() => this.collectUnusedTexts()).catch(() => undefined), intervalMs);
    this.maintenance.unref();
  }

  /**
   * Texts that no row holds any more (refs 0) leave `texts` and the trigram index, a thousand per write.
   * Returns how many went.
   */
  async collectUnusedTexts(): Promise<number> {
    if (this.dialect.name !== 'sqlite') return 0;
    let removed = 0;
    for (;;) {
      const n = await this.write(async (trx) => {
        const result = await sql`delete from texts where id in (select id from texts where refs <= 0 limit 1000)`.execute(trx);
        return Number(result.numAffectedRows ?? 0);
      });
      removed += n;
      if (n < 1000) return removed;
    }
  }

  async optimize(): Promise<void> {
    if (this.dialect.optimize) await sql.raw(this.dialect.optimize).execute(this.db);
  }

  async close(): Promise<void> {
    clearInterval(this.maintenance);
    // Writes still queued or syncing finish first: closing under them would lose their acknowledgement.
    while (this.flushing || this.pending.length > 0 || this.syncing.size > 0 || this.writesInFlight > 0) {
      await Promise.allSettled([...this.syncing, new Promise((resolve) => setImmediate(resolve))]);
    }
    await this.db.destroy();
    await this.onClose();
  }

  /**
   * Answers, and its last write did not fail: a write that failed for the store's reasons (a full disk, a failed
   * commit or sync) is reported from then on, until a write succeeds again.
   */
  async ping(): Promise<void> {
    await sql`select 1`.execute(this.db);
    const failed = this.writeFailure;
    if (failed) throw new Error(`writes fail since ${failed.since}: ${errorText(failed.error)}`);
  }

  /** The failure of the last write (when it failed for the store's reasons, not the request's), and since when. */
  private writeFailure?: { error: unknown; since: string };

  private writeFailed(error: unknown): void {
    this.writeFailure = { error, since: this.writeFailure?.since ?? new Date().toISOString() };
  }

  /** What a write's caller gets: a full disk becomes a 503 with Retry-After; the SQLite error stays its cause, for the log. */
  private refusal(error: unknown): unknown {
    if (!this.dialect.isStorageFull?.(error)) return error;
    return new ScimError(503, 'The bridge cannot store changes: its disk is full. Nothing of this request was written; retry later (an operator has to free space).', undefined, {
      retryAfterSeconds: STORAGE_FULL_RETRY_AFTER_SECONDS,
      cause: error,
    });
  }

  private readonly q = {
    userById: new Prepared<Selectable<UsersTable>>((slot) => this.db.selectFrom('users').selectAll().where('id', '=', slot('id'))),
    insertUser: new Prepared((slot) =>
      this.db.insertInto('users').values({
        id: slot('id'),
        user_name: slot('user_name'),
        user_name_ci: slot('user_name_ci'),
        external_id: slot('external_id'),
        display_name: slot('display_name'),
        display_name_ci: slot('display_name_ci'),
        active: slot('active'),
        status: slot('status'),
        doc: slot('doc'),
        created: slot('created'),
        last_modified: slot('last_modified'),
        version: slot('version'),
      }),
    ),
    insertValue: new Prepared((slot) => this.db.insertInto('attr_values').values({ res_id: slot('res_id'), path: slot('path'), idx: slot('idx'), v: slot('v') })),
    deleteValues: new Prepared((slot) => this.db.deleteFrom('attr_values').where('res_id', '=', slot('id'))),
    groupsOfOne: new Prepared<{ id: string; display_name: string }>((slot) =>
      this.db
        .selectFrom('group_members as m')
        .innerJoin('groups as g', 'g.id', 'm.group_id')
        .select(['g.id', 'g.display_name'])
        .where('m.member_id', '=', slot('id'))
        .orderBy('g.seq'),
    ),
    insertEvent: new Prepared((slot) =>
      this.db.insertInto('events').values({ id: slot('id'), type: slot('type'), resource_id: slot('resource_id'), occurred_at: slot('occurred_at'), data: slot('data') }),
    ),
    groupById: new Prepared<Selectable<GroupsTable>>((slot) => this.db.selectFrom('groups').selectAll().where('id', '=', slot('id'))),
    /** The row a write is about to change, locked until the write commits where writers run at once. */
    userForWrite: new Prepared<Selectable<UsersTable>>((slot) => {
      const q = this.db.selectFrom('users').selectAll().where('id', '=', slot('id'));
      return this.dialect.rowLocks ? q.forUpdate() : q;
    }),
    groupForWrite: new Prepared<Selectable<GroupsTable>>((slot) => {
      const q = this.db.selectFrom('groups').selectAll().where('id', '=', slot('id'));
      return this.dialect.rowLocks ? q.forUpdate() : q;
    }),
  };

  private readonly durableListeners: (() => void)[] = [];

  onDurable(listener: () => void): void {
    this.durableListeners.push(listener);
  }

  private readonly pending: WriteJob[] = [];
  /** Durability syncs under way. */
  private readonly syncing = new Set<Promise<void>>();
  private flushing = false;

  /** Runs `work` in a transaction; resolves once it is committed (durably). */
  private write<T>(work: (trx: Transaction<Database>) => Promise<T>): Promise<T> {
    if (!this.dialect.groupCommit) return this.writeAlone(work);
    return new Promise<T>((resolve, reject) => {
      this.pending.push({ run: work, resolve: resolve as (v: unknown) => void, reject: (error) => reject(this.refusal(error)) });
      if (!this.flushing) void this.flush();
    });
  }

  /**
   * One write, one transaction (PostgreSQL: the server groups concurrent commits itself). A transaction that lost
   * a deadlock or a serialization check runs again, a few times: the work is a function of what it reads.
   */
  private async writeAlone<T>(work: (trx: Transaction<Database>) => Promise<T>): Promise<T> {
    this.writesInFlight++;
    try {
      for (let attempt = 1; ; attempt++) {
        try {
          const value = await this.db.transaction().execute(work);
          this.writeFailure = undefined;
          for (const listener of this.durableListeners) listener();
          return value;
        } catch (error) {
          if (attempt < MAX_WRITE_ATTEMPTS && this.dialect.isRetryable?.(error)) {
            await new Promise((resolve) => setTimeout(resolve, Math.random() * 10 * attempt));
            continue;
          }
          if (this.dialect.isStorageFull?.(error)) this.writeFailed(error);
          throw this.refusal(error);
        }
      }
    } finally {
      this.writesInFlight--;
    }
  }

  private writesInFlight = 0;

  private async flush(): Promise<void> {
    this.flushing = true;
    try {
      for (;;) {
        // One turn of the event loop first: requests that arrived meanwhile get read and queue their
        // writes, so they share this commit.
        await new Promise<void>((resolve) => setImmediate(resolve));
        if (this.pending.length === 0) break;
        const batch = this.pending.splice(0, MAX_BATCH);
        const outcomes: { ok: boolean; value: unknown }[] = [];
        /** A lone write's own error (a conflict, say), which says nothing about the store, unlike a failed commit. */
        let jobError: unknown;
        try {
          await this.db.transaction().execute(async (trx) => {
            if (batch.length === 1) {
              try {
                outcomes.push({ ok: true, value: await batch[0].run(trx) });
              } catch (error) {
                jobError = error;
                throw error;
              }
              return;
            }
            // Each write in its own savepoint: one that fails is undone alone, the others commit.
            for (const job of batch) {
              await sql`savepoint write_job`.execute(trx);
              try {
                outcomes.push({ ok: true, value: await job.run(trx) });
              } catch (error) {
                // After some errors (SQLITE_FULL, SQLITE_IOERR) SQLite has rolled the whole transaction back itself:
                // no savepoint is left to return to, and the batch fails with this error, not with the rollback's.
                await sql`rollback to write_job`.execute(trx).catch(() => {
                  throw error;
                });
                if (this.dialect.isStorageFull?.(error)) this.writeFailed(error);
                outcomes.push({ ok: false, value: error });
              }
              await sql`release write_job`.execute(trx);
            }
          });
        } catch (error) {
          // The transaction (or its commit) failed: nothing of this batch was written.
          if (error !== jobError || this.dialect.isStorageFull?.(error)) this.writeFailed(error);
          for (const job of batch) job.reject(error);
          continue;
        }
        const settle = () => {
          if (outcomes.some((o) => o.ok)) this.writeFailure = undefined;
          batch.forEach((job, i) => (outcomes[i].ok ? job.resolve(outcomes[i].value) : job.reject(outcomes[i].value)));
          for (const listener of this.durableListeners) listener();
        };
        if (!this.dialect.makeDurable) {
          settle();
          continue;
        }
        // The next batch may commit while this one's sync runs; each batch is answered once its own sync,
        // which covers everything committed before it, has finished.
        const upTo = await this.lastEventSeq(this.db);
        const sync: Promise<void> = this.dialect.makeDurable().then(
          () => {
            this.durableSeq = Math.max(this.durableSeq, upTo);
            settle();
          },
          (error: unknown) => {
            this.writeFailed(error);
            for (const job of batch) job.reject(error);
          },
        );
        this.syncing.add(sync);
        void sync.finally(() => this.syncing.delete(sync));
      }
    } finally {
      this.flushing = false;
    }
  }

  private unique<T>(what: () => Promise<T>, message: () => string): Promise<T> {
    return what().catch((e: unknown) => {
      if (this.dialect.isUniqueViolation(e)) throw conflict(message());
      throw e;
    });
  }

  /** Runs `batch` over `items` in chunks small enough for the dialect's parameter limit. */
  private async chunked<T>(items: readonly T[], perItem: number, batch: (chunk: T[]) => Promise<unknown>): Promise<void> {
    const size = Math.max(1, Math.floor(this.dialect.maxParameters / perItem));
    for (let i = 0; i < items.length; i += size) await batch(items.slice(i, i + size));
  }

  async getSetting(key: string): Promise<string | null> {
    const row = await this.db.selectFrom('settings').select('value').where('key', '=', key).executeTakeFirst();
    return row?.value ?? null;
  }

  async setSettingIfAbsent(key: string, value: string): Promise<string> {
    // Through the write queue, so it is durable when this resolves (the first start prints the token only then).
    return this.write(async (trx) => {
      await trx.insertInto('settings').values({ key, value }).onConflict((oc) => oc.column('key').doNothing()).execute();
      const row = await trx.selectFrom('settings').select('value').where('key', '=', key).executeTakeFirstOrThrow();
      return row.value;
    });
  }

  async setSetting(key: string, value: string): Promise<void> {
    await this.write((trx) =>
      trx.insertInto('settings').values({ key, value }).onConflict((oc) => oc.column('key').doUpdateSet({ value })).execute(),
    );
  }

  // ---- lists: from an index's candidates, or by slices ----

  private sortColumn(target: FilterTarget, query: ListQuery): string | undefined {
    const sortBy = query.sortBy ?? dateRangeOf(query.filter);
    return sortBy ? SORT_COLUMNS[sortBy][target.table] : undefined;
  }

  /**
   * Descending is the exact reverse of ascending (ties by creation, reversed too). NULLs sort first ascending and
   * last descending, SQLite's order, on every store (PostgreSQL is told; its indexes on nullable columns agree).
   */
  private orderBy(target: FilterTarget, column: string | undefined, descending: boolean) {
    const dir = descending ? 'desc' : 'asc';
    const a = target.alias;
    const nulls = column && this.dialect.explicitNulls && NULLABLE_SORT.has(column) ? (descending ? ' nulls last' : ' nulls first') : '';
    return sql.raw(column ? `${a}.${column} ${dir}${nulls}, ${a}.seq ${dir}` : `${a}.seq ${dir}`);
  }

  /** How many rows `ids` selects, counting no further than `limit + 1`. Its own turn of the event loop. */
  private async boundedCount(ids: RawBuilder<unknown>, limit: number): Promise<number> {
    await new Promise<void>((resolve) => setImmediate(resolve));
    const { rows } = await sql<{ n: number }>`select count(*) as n from (${ids} limit ${limit + 1}) as bounded`.execute(this.db);
    return Number(rows[0].n);
  }

  /**
   * The candidates of a filter: ids among which every match is, found through indexes, and at most `limit`
   * of them; undefined when no term (or combination of terms) narrows the filter that far. `and` takes the
   * narrower side, `or` needs both sides and adds them up, `not` narrows nothing.
   */
  private async candidates(filter: StoreFilter, target: FilterTarget, limit: number): Promise<{ ids: RawBuilder<unknown>; count: number } | undefined> {
    switch (filter.kind) {
      case 'constant':
        return filter.value ? undefined : { ids: sql`select null as id where 1 = 0`, count: 0 };
      case 'not':
        return undefined;
      case 'and': {
        const left = await this.candidates(filter.left, target, limit);
        if (left && left.count <= 1) return left;
        const right = await this.candidates(filter.right, target, left ? Math.min(limit, left.count) : limit);
        return left && (!right || left.count <= right.count) ? left : right;
      }
      case 'or': {
        const left = await this.candidates(filter.left, target, limit);
        const right = left && (await this.candidates(filter.right, target, limit - left.count));
        return left && right ? { ids: sql`${left.ids} union all ${right.ids}`, count: left.count + right.count } : undefined;
      }
      case 'element':
        return this.candidates(filter.filter, target, limit);
      case 'compare':
      case 'present': {
        const source = termSource(filter, target, this.dialect.substringIndex);
        if (!source) return undefined;
        if (source.kind === 'index') {
          // One row at most: no need to count.
          if (filter.kind === 'compare' && filter.op === 'eq' && target.columns[filter.path]?.unique) return { ids: source.ids, count: 1 };
          const count = await this.boundedCount(source.ids, limit);
          return count <= limit ? { ids: source.ids, count } : undefined;
        }
        // A substring: its candidates are the texts holding its rarest trigram (of a few tried), compared exactly.
        const all = trigrams(source.operand);
        const tried = all.length <= TRIGRAM_TRIES ? all : Array.from({ length: TRIGRAM_TRIES }, (_, i) => all[Math.floor((i * (all.length - 1)) / (TRIGRAM_TRIES - 1))]);
        let best: { trigram: string; texts: number } | undefined;
        for (const trigram of tried) {
          const bound = best ? best.texts - 1 : Math.min(limit, MAX_TRIGRAM_TEXTS);
          const texts = await this.boundedCount(sql`select rowid from texts_fts where texts_fts match ${trigramQuery(trigram)}`, bound);
          if (texts <= bound) best = { trigram, texts };
          if (best?.texts === 0) break;
        }
        if (!best) return undefined;
        const ids = source.ids(best.trigram);
        const count = await this.boundedCount(ids, limit);
        return count <= limit ? { ids, count } : undefined;
      }
    }
  }

  /** From candidates (when some term narrows the filter enough), or by slices. */
  private async listPlan(target: FilterTarget, filter: StoreFilter): Promise<ListPlan> {
    const limit = Math.floor(CANDIDATE_BUDGET / Math.max(1, countTerms(filter)));
    const found = await this.candidates(filter, target, limit);
    return found ? { kind: 'candidates', ...found } : { kind: 'slices' };
  }

  /** The page (creation numbers and document sizes, in order) and the count of a list, from the candidates when there are some. */
  private listQueries(target: FilterTarget, query: ListQuery, plan: ListPlan | undefined) {
    const a = target.alias;
    const from =
      plan?.kind === 'candidates'
        ? // SQLite's CROSS JOIN keeps the candidates as the outer loop: the planner may not trade them for a walk in sort order.
          sql`(select distinct id from (${plan.ids}) as c) d ${sql.raw(this.dialect.joinInOrder)} ${sql.raw(`${target.table} ${a}`)} on ${sql.ref(`${a}.id`)} = d.id`
        : sql.raw(`${target.table} ${a}`);
    const where = query.filter ? rowPredicate(query.filter, target) : sql<boolean>`1 = 1`;
    const order = this.orderBy(target, this.sortColumn(target, query), query.descending === true);
    return {
      page: sql<PageRow>`select ${sql.ref(`${a}.seq`)} as seq, octet_length(${sql.ref(`${a}.doc`)}) as bytes from ${from} where ${where} order by ${order} limit ${query.limit} offset ${query.offset}`,
      count: sql<{ n: number }>`select count(*) as n from ${from} where ${where}`,
    };
  }

  /** The row whose unique column equals a value, by table and column (`userName eq "x"`, the IdPs' lookup before a create). */
  private readonly uniqueLookups = new Map<string, Prepared<unknown>>();

  private uniqueLookup(table: 'users' | 'groups', column: string): Prepared<unknown> {
    const key = `${table}.${column}`;
    let q = this.uniqueLookups.get(key);
    if (!q) {
      // eslint-disable-next-line @typescript-eslint/no-explicit-any
      q = new Prepared((slot) => (this.db.selectFrom(table).selectAll() as any).where(column, '=', slot('v')));
      this.uniqueLookups.set(key, q);
    }
    return q;
  }

  private async listRows<Row>(target: FilterTarget, query: ListQuery): Promise<{ total: number; rows: Row[] }> {
    refuseNulInFilter(query.filter);
    const f = query.filter;
    const unique = f?.kind === 'compare' && f.op === 'eq' ? target.columns[f.path] : undefined;
    if (f?.kind === 'compare' && unique?.unique && unique.kind === 'text') {
      // One row at most, by a unique index: the plan below (candidates, page, rows) comes to the same answer in
      // three queries built anew each time; this is one prepared statement. The page is that row, unless the
      // list starts past it or asks for none (the total says it is there all the same).
      const rows = (await this.uniqueLookup(target.table, unique.sql).run(this.db, { v: f.value })) as Row[];
      return { total: rows.length, rows: query.offset === 0 && query.limit > 0 ? rows : [] };
    }
    const plan = query.filter ? await this.listPlan(target, query.filter) : undefined;
    let page: PageRow[];
    let total: number;
    if (plan?.kind === 'slices' || (!query.filter && query.offset > INLINE_OFFSET)) {
      ({ total, page } = await this.listBySlices(target, query));
    } else {
      const { page: pageQuery, count } = this.listQueries(target, query, plan);
      page = query.limit === 0 ? [] : (await pageQuery.execute(this.db)).rows;
      total = pageTotal(query, page.length) ?? Number((await count.execute(this.db)).rows[0].n);
    }
    // A page holds at most PAGE_BYTES of documents (and at least one): the rest comes with the next page.
    let bytes = 0;
    const kept = page.filter((r, i) => (bytes += Number(r.bytes)) <= PAGE_BYTES || i === 0);
    if (kept.length === 0) return { total, rows: [] };
    const { rows } = await sql<Row & { seq: number }>`select * from ${sql.raw(target.table)} where seq in (${sql.join(kept.map((r) => Number(r.seq)))})`.execute(this.db);
    const bySeq = new Map(rows.map((r) => [Number(r.seq), r]));
    return { total, rows: kept.map((r) => bySeq.get(Number(r.seq))).filter((r): r is Row & { seq: number } => r !== undefined) };
  }

  /**
   * A list evaluated row by row in its order: a filter no index narrows, or a page far down an unfiltered
   * list. A slice of rows at a time (keyset on the order's index, about SLICE_MS of work each), with a turn
   * of the event loop between slices so that other requests are served meanwhile. Counts every match (an
   * unfiltered list is counted by SQLite instead), keeps the page's. Writes between slices are seen by later
   * slices, as between the pages of a list.
   */
  private async listBySlices(target: FilterTarget, query: ListQuery): Promise<{ total: number; page: PageRow[] }> {
    const a = target.alias;
    const column = this.sortColumn(target, query);
    const desc = query.descending === true;
    const after = desc ? '<' : '>';
    const predicate = query.filter ? rowPredicate(query.filter, target) : sql<boolean>`1 = 1`;
    const phases: ('nulls' | 'values')[] = column && NULLABLE_SORT.has(column) ? (desc ? ['values', 'nulls'] : ['nulls', 'values']) : ['values'];
    const page: PageRow[] = [];
    const end = query.offset + query.limit;
    let total = 0;
    let size = 256;
    // Slices are sized, and the filter's budget counted, in CPU time: on a machine busy with other work a
    // slice may take longer by the clock without holding the event loop any longer.
    let spentMs = 0;
    scan: for (const phase of phases) {
      // The key of the slice's order: the sort column, or creation (seq) alone.
      const key = phase === 'values' && column ? column : undefined;
      let last: { k: unknown; seq: number } | undefined;
      for (;;) {
        await new Promise<void>((resolve) => setImmediate(resolve));
        const began = process.cpuUsage();
        const beganAt = performance.now();
        const conditions: RawBuilder<unknown>[] = [];
        if (column) conditions.push(sql.raw(`${a}.${column} is ${phase === 'nulls' ? '' : 'not '}null`));
        if (last) {
          conditions.push(
            key
              ? sql`(${sql.ref(`${a}.${key}`)}, ${sql.ref(`${a}.seq`)}) ${sql.raw(after)} (${last.k}, ${last.seq})`
              : sql`${sql.ref(`${a}.seq`)} ${sql.raw(after)} ${last.seq}`,
          );
        }
        const where = conditions.length > 0 ? sql.join(conditions, sql` and `) : sql`1 = 1`;
        const { rows } = await sql<PageRow & { k: unknown; hit: number | null }>`select ${sql.ref(`${a}.seq`)} as seq, ${sql.ref(`${a}.${key ?? 'seq'}`)} as k, case when ${predicate} then 1 else 0 end as hit, octet_length(${sql.ref(`${a}.doc`)}) as bytes from ${sql.raw(
          `${target.table} ${a}`,
        )} where ${where} order by ${this.orderBy(target, key, desc)} limit ${size}`.execute(this.db);
        for (const r of rows) {
          if (Number(r.hit) !== 1) continue;
          if (total >= query.offset && total < end) page.push(r);
          total++;
        }
        if (!query.filter && total >= end) break scan;
        if (rows.length < size) break;
        last = { k: rows[rows.length - 1].k, seq: Number(rows[rows.length - 1].seq) };
        const used = process.cpuUsage(began);
        const sliceMs = this.dialect.inProcess ? (used.user + used.system) / 1000 : performance.now() - beganAt;
        spentMs += sliceMs;
        if (spentMs > SCAN_BUDGET_MS) {
          const noun = target.table === 'users' ? 'user' : 'group';
          throw badRequest(
            'tooMany',
            `This filter needs more than ${SCAN_BUDGET_MS / 1000} s of work: none of its terms narrows the ${target.table} to a few candidates through an index, so every ${noun} is checked against all its terms. ` +
              `Narrow it with a selective comparison (eq on userName, externalId, id or emails.value; co, ew or sw with at least 3 characters) or use fewer terms.`,
          );
        }
        // Slices of about SLICE_MS: grow or shrink by what the last one took (at most 4 times at once).
        size = Math.max(16, Math.min(20_000, Math.round(size * Math.min(4, SLICE_MS / Math.max(sliceMs, 0.25)))));
      }
    }
    if (!query.filter) {
      const { rows } = await sql<{ n: number }>`select count(*) as n from ${sql.raw(target.table)}`.execute(this.db);
      total = Number(rows[0].n);
    }
    return { total, page };
  }

  /** The database's plan for a page of a list (EXPLAIN QUERY PLAN): how operators and tests see index use. */
  async explain(kind: 'users' | 'groups', query: ListQuery): Promise<string[]> {
    const target = kind === 'users' ? USER_TARGET : GROUP_TARGET;
    refuseNulInFilter(query.filter);
    const plan = query.filter ? await this.listPlan(target, query.filter) : undefined;
    if (plan?.kind === 'slices') return [`SLICED SCAN ${target.alias}: no term narrows the filter to a few candidates; rows are checked a slice at a time`];
    const compiled = this.listQueries(target, query, plan).page.compile(this.db);
    return this.dialect.explain(this.db, compiled);
  }

  // ---- users ----

  async getUser(id: string): Promise<UserRecord | null> {
    if (hasNul(id)) return null;
    const [row] = await this.q.userById.run(this.db, { id });
    return row ? toUser(row) : null;
  }

  async listUsers(query: ListQuery): Promise<Page<UserRecord>> {
    const { total, rows } = await this.listRows<Selectable<UsersTable>>(USER_TARGET, query);
    return { total, items: rows.map((r) => toUser(r)) };
  }

  private async writeUserValues(db: Db, id: string, index: readonly IndexRow[]): Promise<void> {
    const rows = valueRows(id, index);
    if (this.dialect.inProcess) {
      // One prepared insert per row (SQLite: a statement is a function call): cheaper than building a multi-row
      // insert of varying shape each time.
      for (const row of rows) await this.q.insertValue.run(db, row);
    } else if (rows.length > 0) {
      // One statement for all of them: across a network every statement is a round trip.
      await this.chunked(rows, 4, (chunk) => db.insertInto('attr_values').values(chunk).execute());
    }
  }

  async createUser(user: UserWrite, events?: (created: UserRecord) => NewEvent[]): Promise<UserRecord> {
    refuseNul(userTexts(user));
    const now = new Date().toISOString();
    const row: Insertable<UsersTable> = {
      id: timeOrderedId(),
      user_name: user.userName,
      user_name_ci: foldCase(user.userName),
      external_id: user.externalId,
      display_name: user.displayName,
      display_name_ci: user.displayName === null ? null : foldCase(user.displayName),
      active: user.active ? 1 : 0,
      status: user.status,
      doc: JSON.stringify(user.doc),
      created: now,
      last_modified: now,
      version: 1,
    };
    const created: UserRecord = { ...user, id: row.id, created: now, lastModified: now, version: 1 };
    await this.unique(
      () =>
        this.write(async (trx) => {
          await this.q.insertUser.run(trx, row);
          await this.writeUserValues(trx, row.id, user.index);
          await this.appendEvents(trx, events?.(created));
        }),
      () => `A user with userName '${user.userName}' exists already (userName is unique, case-insensitively).`,
    );
    return created;
  }

  /**
   * Many users in one transaction, without events: for tests and benchmarks that need a large directory in
   * seconds. Not for the IdP's writes (no uniqueness message, no outbox). Returns their ids, in order.
   */
  async bulkInsertUsers(users: readonly UserWrite[]): Promise<string[]> {
    const now = new Date().toISOString();
    const rows = users.map((user, i) => [
      timeOrderedId(Date.now() + i),
      user.userName,
      foldCase(user.userName),
      user.externalId,
      user.displayName,
      user.displayName === null ? null : foldCase(user.displayName),
      user.active ? 1 : 0,
      user.status,
      JSON.stringify(user.doc),
      now,
      now,
      1,
    ]);
    const values = rows.flatMap((row, i) => valueRows(row[0] as string, users[i].index).map((v) => [v.res_id, v.path, v.idx, v.v]));
    // One statement per chunk, its text built once: the query builder would cost more than the inserts.
    const insert = async (db: Db, head: string, all: unknown[][]) => {
      const width = all[0]?.length ?? 1;
      const per = Math.max(1, Math.floor(this.dialect.maxParameters / width));
      // The text of a full chunk is built once; a shorter last chunk builds its own.
      const text = (count: number) => {
        const tuples = Array.from({ length: count }, (_, r) => `(${Array.from({ length: width }, (_, c) => this.dialect.parameter(r * width + c + 1)).join(', ')})`);
        return `${head} values ${tuples.join(', ')}`;
      };
      let full: string | undefined;
      for (let i = 0; i < all.length; i += per) {
        const chunk = all.slice(i, i + per);
        const statement = chunk.length === per ? (full ??= text(per)) : text(chunk.length);
        await db.executeQuery(CompiledQuery.raw(statement, chunk.flat()));
      }
    };
    await this.write(async (trx) => {
      // SQLite: the triggers that count texts row by row are set aside, and the new rows' texts counted at once.
      const triggers =
        this.dialect.name === 'sqlite'
          ? (
              await sql<{ name: string; sql: string }>`select name, sql from sqlite_master where type = 'trigger' and tbl_name in (${sql.join([...TEXT_TRIGGER_TABLES])})`.execute(trx)
            ).rows
          : [];
      for (const t of triggers) await sql.raw(`drop trigger ${t.name}`).execute(trx);
      const before = await this.lastSeq(trx);
      await insert(trx, 'insert into users (id, user_name, user_name_ci, external_id, display_name, display_name_ci, active, status, doc, created, last_modified, version)', rows);
      await insert(trx, 'insert into attr_values (res_id, path, idx, v)', values);
      if (triggers.length > 0) {
        const sources = [
          sql`select a.v as v from users u join attr_values a on a.res_id = u.id where u.seq > ${before}`,
          ...TEXT_COLUMNS.users.map((c) => sql`select ${sql.ref(c)} from users where seq > ${before}`),
        ];
        await sql`insert into texts (v, refs) select v, count(*) from (${sql.join(sources, sql` union all `)}) where length(v) >= 3 group by v
          on conflict (v) do update set refs = refs + excluded.refs`.execute(trx);
        for (const t of triggers) await sql.raw(t.sql).execute(trx);
      }
    });
    return rows.map((r) => r[0] as string);
  }

  private async lastSeq(db: Db): Promise<number> {
    const row = await db.selectFrom('users').select((eb) => eb.fn.max('seq').as('seq')).executeTakeFirst();
    return Number(row?.seq ?? 0);
  }

  /**
   * Always the last step of a write transaction (see "Rules the stores keep" in types.ts): on PostgreSQL it takes
   * the shared lock that the feed's horizon waits for, and holding it must never wait for a row lock.
   */
  private async appendEvents(db: Transaction<Database>, events: readonly NewEvent[] | undefined): Promise<void> {
    if (!events || events.length === 0) return;
    const now = new Date().toISOString();
    const rows = events.map((e) => ({ id: timeOrderedId(), type: e.type, resource_id: e.resourceId, occurred_at: now, data: JSON.stringify(e.data) }));
    if (!this.dialect.eventsLock) {
      // In process (SQLite), a prepared insert per event is a function call.
      for (const row of rows) await this.q.insertEvent.run(db, row);
      return;
    }
    // One statement for all of them (a PATCH adding 1,000 members writes 1,000 events), which takes the events
    // lock first: across a network every statement is a round trip. The rows of one VALUES list draw their seq
    // in the list's order, after the filter (the lock) has passed.
    const lock = this.dialect.eventsLock;
    await this.chunked(rows, 5, (chunk) =>
      sql`insert into events (id, type, resource_id, occurred_at, data)
        select v.id, v.type, v.resource_id, v.occurred_at, v.data
        from (values ${sql.join(chunk.map((r) => sql`(${r.id}, ${r.type}, ${r.resource_id}, ${r.occurred_at}, ${r.data})`))}) as v (id, type, resource_id, occurred_at, data)
        where ${lock}`.execute(db),
    );
  }

  async updateUser(
    id: string,
    change: (current: UserRecord) => UserWrite | 'delete',
    expected?: ExpectedVersion,
    events?: (before: UserRecord, after: UserRecord | null) => NewEvent[],
  ): Promise<UserRecord | null> {
    return this.unique(
      () =>
        this.write(async (trx) => {
          const [row] = hasNul(id) ? [] : await this.q.userForWrite.run(trx, { id });
          if (!row) return null;
          const current = toUser(row);
          checkVersion('user', id, current.version, expected);
          const next = change(current);
          if (next !== 'delete') refuseNul(userTexts(next));
          if (next === 'delete') {
            await this.removeUser(trx, id);
            await this.appendEvents(trx, events?.(current, null));
            return current;
          }
          const now = new Date().toISOString();
          const version = current.version + 1;
          await trx
            .updateTable('users')
            .set({
              status: next.status,
              user_name: next.userName,
              user_name_ci: foldCase(next.userName),
              external_id: next.externalId,
              display_name: next.displayName,
              display_name_ci: next.displayName === null ? null : foldCase(next.displayName),
              active: next.active ? 1 : 0,
              doc: JSON.stringify(next.doc),
              last_modified: now,
              version,
            })
            .where('id', '=', id)
            .execute();
          await this.q.deleteValues.run(trx, { id });
          await this.writeUserValues(trx, id, next.index);
          const after: UserRecord = { ...next, id, created: current.created, lastModified: now, version };
          await this.appendEvents(trx, events?.(current, after));
          return after;
        }),
      () => `Another user has this userName already (userName is unique, case-insensitively).`,
    );
  }

  async deleteUser(id: string, expected?: ExpectedVersion, events?: (deleted: UserRecord) => NewEvent[]): Promise<boolean> {
    return this.write(async (trx) => {
      const [row] = hasNul(id) ? [] : await this.q.userForWrite.run(trx, { id });
      if (!row) return false;
      checkVersion('user', id, Number(row.version), expected);
      await this.removeUser(trx, id);
      await this.appendEvents(trx, events?.(toUser(row)));
      return true;
    });
  }

  async setUserStatus(id: string, change: (current: UserRecord) => UserStatus, events?: (after: UserRecord) => NewEvent[]): Promise<UserRecord | null> {
    return this.write(async (trx) => {
      const [row] = hasNul(id) ? [] : await this.q.userForWrite.run(trx, { id });
      if (!row) return null;
      const current = toUser(row);
      const status = change(current);
      const now = new Date().toISOString();
      const version = current.version + 1;
      await trx.updateTable('users').set({ status, last_modified: now, version }).where('id', '=', id).execute();
      const after: UserRecord = { ...current, status, lastModified: now, version };
      await this.appendEvents(trx, events?.(after));
      return after;
    });
  }

  private async removeUser(trx: Db, id: string): Promise<void> {
    await this.touchGroupsOf(trx, id);
    await trx.deleteFrom('group_members').where('member_id', '=', id).execute();
    await this.q.deleteValues.run(trx, { id });
    await trx.deleteFrom('users').where('id', '=', id).execute();
  }

  /** A member leaving changes its groups: their version and lastModified move on. */
  private async touchGroupsOf(db: Db, memberId: string): Promise<void> {
    await db
      .updateTable('groups')
      .set((eb) => ({ version: eb('version', '+', 1), last_modified: new Date().toISOString() }))
      .where('id', 'in', db.selectFrom('group_members').select('group_id').where('member_id', '=', memberId))
      .execute();
  }

  async groupsOf(userIds: readonly string[]): Promise<Map<string, { id: string; displayName: string }[]>> {
    const result = new Map<string, { id: string; displayName: string }[]>();
    if (userIds.length === 0) return result;
    if (userIds.length === 1) {
      const rows = await this.q.groupsOfOne.run(this.db, { id: userIds[0] });
      if (rows.length > 0) result.set(userIds[0], rows.map((r) => ({ id: r.id, displayName: r.display_name })));
      return result;
    }
    await this.chunked(userIds, 1, async (chunk) => {
      const rows = await this.db
        .selectFrom('group_members as m')
        .innerJoin('groups as g', 'g.id', 'm.group_id')
        .select(['m.member_id', 'g.id', 'g.display_name'])
        .where('m.member_id', 'in', chunk)
        .orderBy('g.seq')
        .execute();
      for (const r of rows) {
        const list = result.get(r.member_id) ?? [];
        list.push({ id: r.id, displayName: r.display_name });
        result.set(r.member_id, list);
      }
    });
    return result;
  }

  // ---- groups ----

  async groupMembers(groupId: string, after: string | null, limit: number): Promise<MemberRef[]> {
    if (hasNul(groupId) || (after !== null && hasNul(after))) return [];
    let q = this.db
      .selectFrom('group_members as m')
      .leftJoin('users as u', 'u.id', 'm.member_id')
      .leftJoin('groups as g', 'g.id', 'm.member_id')
      .select(['m.member_id', 'm.member_type', 'u.display_name as user_display', 'u.user_name', 'g.display_name as group_display'])
      .where('m.group_id', '=', groupId);
    if (after !== null) q = q.where('m.member_id', '>', after);
    const rows = await q.orderBy('m.member_id').limit(limit).execute();
    return rows.map(memberOf);
  }

  private async membersOf(db: Db, groupIds: readonly string[]): Promise<Map<string, MemberRef[]>> {
    const result = new Map<string, MemberRef[]>(groupIds.map((id) => [id, []]));
    if (groupIds.length === 0) return result;
    await this.chunked(groupIds, 1, async (chunk) => {
      const rows = await db
        .selectFrom('group_members as m')
        .leftJoin('users as u', 'u.id', 'm.member_id')
        .leftJoin('groups as g', 'g.id', 'm.member_id')
        .select(['m.group_id', 'm.member_id', 'm.member_type', 'u.display_name as user_display', 'u.user_name', 'g.display_name as group_display'])
        .where('m.group_id', 'in', chunk)
        .orderBy('m.group_id')
        .orderBy('m.member_id')
        .execute();
      for (const r of rows) {
        result.get(r.group_id)!.push(memberOf(r));
      }
    });
    return result;
  }

  async getGroup(id: string, withMembers: boolean): Promise<GroupRecord | null> {
    if (hasNul(id)) return null;
    const [row] = await this.q.groupById.run(this.db, { id });
    if (!row) return null;
    return toGroup(row, withMembers ? (await this.membersOf(this.db, [id])).get(id) : undefined);
  }

  async listGroups(query: ListQuery, withMembers: boolean): Promise<Page<GroupRecord>> {
    const { total, rows } = await this.listRows<Selectable<GroupsTable>>(GROUP_TARGET, query);
    const members = withMembers ? await this.membersOf(this.db, rows.map((r) => r.id)) : undefined;
    return { total, items: rows.map((r) => toGroup(r, members?.get(r.id))) };
  }

  /** Which of `ids` are members of the group already: a lookup on the primary key, whatever the group's size. */
  private async existingMembers(db: Db, groupId: string, ids: readonly string[]): Promise<Set<string>> {
    const found = new Set<string>();
    await this.chunked(ids.filter((id) => !hasNul(id)), 1, async (chunk) => {
      const rows = await db.selectFrom('group_members').select('member_id').where('group_id', '=', groupId).where('member_id', 'in', chunk).execute();
      for (const r of rows) found.add(r.member_id);
    });
    return found;
  }

  /**
   * Adds the members that are not in the group yet; returns those, in the order asked. One statement does it
   * (each id typed by a primary-key lookup in users, then groups; a member already there is a conflict that does
   * nothing), so adding costs one round trip to PostgreSQL. Only when some id was not added does a second query
   * tell members already there from ids that name nothing (400 invalidValue naming the first) or the group itself.
   */
  private async addMembers(db: Db, groupId: string, ids: readonly string[]): Promise<string[]> {
    const unique = [...new Set(ids)];
    if (unique.length === 0) return [];
    const valid = unique.filter((id) => !hasNul(id));
    const isUser = (alias: string) => sql`exists (select 1 from users u where u.id = ${sql.ref(alias)})`;
    const inserted = new Set<string>();
    if (valid.length > 0) {
      const { rows } = await sql<{ member_id: string }>`
        insert into group_members (group_id, member_id, member_type)
        select ${groupId}, w.id, case when ${isUser('w.id')} then 'user' else 'group' end
        from ${this.dialect.idList(valid)} as w
        where w.id <> ${groupId} and (${isUser('w.id')} or exists (select 1 from groups g where g.id = w.id))
        on conflict do nothing
        returning member_id`.execute(db);
      for (const r of rows) inserted.add(r.member_id);
    }
    if (inserted.size < unique.length) {
      const existing = await this.existingMembers(db, groupId, unique.filter((id) => !inserted.has(id)));
      const refused = unique.filter((id) => !inserted.has(id) && !existing.has(id));
      const missing = refused.find((id) => id !== groupId);
      if (missing !== undefined) {
        throw badRequest('invalidValue', `The member '${missing}' is neither a user nor a group of this bridge; members[].value takes an id returned by /Users or /Groups.`);
      }
      if (refused.length > 0) throw badRequest('invalidValue', 'A group cannot be a member of itself.');
    }
    return inserted.size === unique.length ? unique : unique.filter((id) => inserted.has(id));
  }

  private async removeMembers(db: Db, groupId: string, ids: readonly string[]): Promise<string[]> {
    const present = [...(await this.existingMembers(db, groupId, [...new Set(ids)]))];
    await this.chunked(present, 1, (chunk) => db.deleteFrom('group_members').where('group_id', '=', groupId).where('member_id', 'in', chunk).execute());
    return present;
  }

  async createGroup(group: GroupWrite, members: readonly string[], events?: (created: GroupRecord, delta: MembershipDelta) => NewEvent[]): Promise<GroupRecord> {
    refuseNul([group.displayName, group.externalId]);
    const now = new Date().toISOString();
    const row: Insertable<GroupsTable> = {
      id: timeOrderedId(),
      display_name: group.displayName,
      display_name_ci: foldCase(group.displayName),
      external_id: group.externalId,
      managed: group.managed ? 1 : 0,
      doc: JSON.stringify(group.doc),
      created: now,
      last_modified: now,
      version: 1,
    };
    return this.unique(
      () =>
        this.write(async (trx) => {
          await trx.insertInto('groups').values(row).execute();
          const added = await this.addMembers(trx, row.id, members);
          const created = toGroup({ ...row, seq: 0 } as Selectable<GroupsTable>, (await this.membersOf(trx, [row.id])).get(row.id));
          await this.appendEvents(trx, events?.(created, { added, removed: [] }));
          return created;
        }),
      () => `A group named '${group.displayName}' exists already (displayName is unique, case-insensitively).`,
    );
  }

  async updateGroup(
    id: string,
    change: (current: GroupRecord) => { group: GroupWrite; members: readonly MemberChange[] },
    expected?: ExpectedVersion,
    events?: (before: GroupRecord, after: GroupRecord, delta: MembershipDelta) => NewEvent[],
  ): Promise<GroupRecord | null> {
    return this.unique(
      () =>
        this.write(async (trx) => {
          const [row] = hasNul(id) ? [] : await this.q.groupForWrite.run(trx, { id });
          if (!row) return null;
          const current = toGroup(row);
          checkVersion('group', id, current.version, expected);
          const { group, members } = change(current);
          refuseNul([group.displayName, group.externalId]);
          for (const m of members) if (m.op === 'removeWhere') refuseNulInFilter(m.filter);
          // The net change of membership, for events: a member added then removed is no change.
          const added = new Set<string>();
          const removed = new Set<string>();
          const noteAdded = (ids: readonly string[]) => ids.forEach((m) => (removed.has(m) ? removed.delete(m) : added.add(m)));
          const noteRemoved = (ids: readonly string[]) => ids.forEach((m) => (added.has(m) ? added.delete(m) : removed.add(m)));
          for (const m of members) {
            if (m.op === 'replace') {
              // Replacing the membership is the one change that reads all of it.
              const now = (await trx.selectFrom('group_members').select('member_id').where('group_id', '=', id).execute()).map((r) => r.member_id);
              const wanted = new Set(m.ids);
              noteRemoved(await this.removeMembers(trx, id, now.filter((x) => !wanted.has(x))));
              noteAdded(await this.addMembers(trx, id, m.ids));
            } else if (m.op === 'add') {
              noteAdded(await this.addMembers(trx, id, m.ids));
            } else if (m.op === 'remove') {
              noteRemoved(await this.removeMembers(trx, id, m.ids));
            } else if (m.op === 'removeWhere') {
              const matched = await trx.selectFrom('group_members as m').select('m.member_id').where('m.group_id', '=', id).where(memberPredicate(m.filter, 'm')).execute();
              noteRemoved(await this.removeMembers(trx, id, matched.map((r) => r.member_id)));
            }
          }
          const now = new Date().toISOString();
          const version = current.version + 1;
          await trx
            .updateTable('groups')
            .set({
              display_name: group.displayName,
              display_name_ci: foldCase(group.displayName),
              external_id: group.externalId,
              managed: group.managed ? 1 : 0,
              doc: JSON.stringify(group.doc),
              last_modified: now,
              version,
            })
            .where('id', '=', id)
            .execute();
          const after: GroupRecord = { ...group, id, created: current.created, lastModified: now, version };
          await this.appendEvents(trx, events?.(current, after, { added: [...added], removed: [...removed] }));
          return after;
        }),
      () => `Another group is named like this already (displayName is unique, case-insensitively).`,
    );
  }

  async deleteGroup(id: string, expected?: ExpectedVersion, events?: (deleted: GroupRecord) => NewEvent[]): Promise<boolean> {
    return this.write(async (trx) => {
      const [row] = hasNul(id) ? [] : await this.q.groupForWrite.run(trx, { id });
      if (!row) return false;
      checkVersion('group', id, Number(row.version), expected);
      await this.touchGroupsOf(trx, id);
      await trx.deleteFrom('group_members').where('group_id', '=', id).execute();
      await trx.deleteFrom('group_members').where('member_id', '=', id).execute();
      await trx.deleteFrom('groups').where('id', '=', id).execute();
      await this.appendEvents(trx, events?.(toGroup(row)));
      return true;
    });
  }

  // ---- leases ----

  async acquireLease(name: string, holder: string, ttlMs: number): Promise<{ held: boolean; cursor: number }> {
    const now = sql.raw(this.dialect.nowMs);
    // Taken when free, expired, or ours already (a renewal); on one replica (SQLite) always: the holder before
    // was this bridge before a restart.
    const free = this.dialect.singleReplica ? sql`1 = 1` : sql`(leases.holder = excluded.holder or leases.expires_at < ${now})`;
    const rows = await this.write(async (trx) =>
      (
        await sql<{ holder: string; cursor: number | string }>`
          insert into leases (name, holder, expires_at, cursor) values (${name}, ${holder}, ${now} + ${Math.round(ttlMs)}, 0)
          on conflict (name) do update set holder = excluded.holder, expires_at = excluded.expires_at
          where ${free}
          returning holder, cursor`.execute(trx)
      ).rows,
    );
    return rows.length === 1 && rows[0].holder === holder ? { held: true, cursor: Number(rows[0].cursor) } : { held: false, cursor: 0 };
  }

  async releaseLease(name: string, holder: string): Promise<void> {
    await this.write((trx) => trx.updateTable('leases').set({ expires_at: 0 }).where('name', '=', name).where('holder', '=', holder).execute());
  }

  async saveLeaseCursor(name: string, holder: string, cursor: number): Promise<boolean> {
    const result = await this.write((trx) =>
      trx.updateTable('leases').set({ cursor }).where('name', '=', name).where('holder', '=', holder).executeTakeFirst(),
    );
    return Number(result.numUpdatedRows) === 1;
  }

  async leaseCursor(name: string): Promise<number> {
    const row = await this.db.selectFrom('leases').select('cursor').where('name', '=', name).executeTakeFirst();
    return Number(row?.cursor ?? 0);
  }

  async purgeEvents(before: string, upToSeq: number): Promise<number> {
    const result = await this.write((trx) =>
      trx
        .deleteFrom('events')
        .where('occurred_at', '<', before)
        .where('seq', '<=', upToSeq)
        .where('seq', 'not in', trx.selectFrom('dead_letters').select('seq'))
        .executeTakeFirst(),
    );
    return Number(result.numDeletedRows);
  }

  /** The last event seq a reader may show: durable (SQLite), and with no transaction still open below it (PostgreSQL). */
  private async visibleUpTo(): Promise<number> {
    return this.dialect.eventHorizon ? Math.min(this.durableSeq, await this.dialect.eventHorizon(this.db)) : this.durableSeq;
  }

  async countEventsAfter(after: number): Promise<number> {
    const row = await this.db
      .selectFrom('events')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('seq', '>', after)
      .where('seq', '<=', await this.visibleUpTo())
      .executeTakeFirstOrThrow();
    return Number(row.n);
  }

  async addDeadLetter(seq: number, error: string): Promise<void> {
    await this.write((trx) =>
      trx.insertInto('dead_letters').values({ seq, failed_at: new Date().toISOString(), error: error.slice(0, 500) }).onConflict((oc) => oc.column('seq').doNothing()).execute(),
    );
  }

  async listDeadLetters(limit: number): Promise<(EventRecord & { failedAt: string; error: string })[]> {
    const rows = await this.db
      .selectFrom('dead_letters as d')
      .innerJoin('events as e', 'e.seq', 'd.seq')
      .select(['e.seq', 'e.id', 'e.type', 'e.resource_id', 'e.occurred_at', 'e.data', 'd.failed_at', 'd.error'])
      .orderBy('d.seq')
      .limit(limit)
      .execute();
    return rows.map((r) => ({ ...eventOf(r), failedAt: r.failed_at, error: r.error }));
  }

  async countDeadLetters(): Promise<number> {
    const row = await this.db.selectFrom('dead_letters').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
    return Number(row.n);
  }

  async countUsersByStatus(): Promise<Record<UserStatus, number>> {
    const rows = await this.db.selectFrom('users').select(['status', (eb) => eb.fn.countAll<number>().as('n')]).groupBy('status').execute();
    const counts: Record<UserStatus, number> = { invited: 0, active: 0, suspended: 0, revoked: 0 };
    for (const r of rows) if (r.status in counts) counts[r.status as UserStatus] = Number(r.n);
    return counts;
  }

  async countGroups(): Promise<number> {
    const row = await this.db.selectFrom('groups').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
    return Number(row.n);
  }

  async removeDeadLetter(seq: number): Promise<void> {
    await this.write((trx) => trx.deleteFrom('dead_letters').where('seq', '=', seq).execute());
  }

  async listEvents(after: number, limit: number): Promise<EventRecord[]> {
    const rows = await this.db
      .selectFrom('events')
      .selectAll()
      .where('seq', '>', after)
      .where('seq', '<=', await this.visibleUpTo())
      .orderBy('seq')
      .limit(limit)
      .execute();
    return rows.map(eventOf);
  }

}
