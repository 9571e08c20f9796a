/**
 * The store contract: one async interface, implemented by SQLite (embedded default, one replica) and PostgreSQL
 * (one or more replicas on one database). The store knows tables and indexes, not SCIM: it receives documents
 * already validated, index rows already normalised, and filters already resolved against the schema.
 *
 * Rules the stores keep. SQLite kept them without saying so (one writer at a time, binary collation, one process);
 * PostgreSQL keeps them on purpose. test/bridge/store.test.ts checks each on both stores.
 *
 * 1. userName (users) and displayName (groups) are unique case-insensitively, also under concurrent creates and
 *    renames: a unique index on the folded value (foldCase, in JS, the same on both) decides; the loser's insert
 *    fails with a unique violation, which becomes 409 uniqueness. Never check-then-insert.
 * 2. Text compares byte by byte in UTF-8, which is code point order: SQLite's BINARY collation, PostgreSQL's
 *    COLLATE "C" on every text column (never the database's own collation, which managed databases set to
 *    en_US.UTF-8). `sw` is the range [prefix, prefix + U+10FFFF), `gt`/`lt`/sorting compare the same way, `co`/`ew`
 *    are LIKE with `\` escaping and case-sensitive on both (values are folded before). NULL sorts first ascending
 *    and last descending (SQLite's order; PostgreSQL says NULLS FIRST/LAST and indexes nullable sort columns so).
 * 3. A write reads what it changes and writes it back in one transaction; concurrent writes of one resource run
 *    one after the other (PostgreSQL: select … for update of the row, and a rerun of a transaction that lost a
 *    deadlock), so no update is lost and one If-Match wins while the others get 412.
 * 4. A group's members are rows: adding or removing some is a primary-key lookup per member, never a read of the
 *    membership (except `replace`), so a group of 50,000 members costs what an empty one costs. Reads of a group
 *    load members only when asked.
 * 5. The events feed never passes an event that commits after a later-numbered one. SQLite commits one writer at
 *    a time, so seq order is commit order (and readers stop at durableSeq, the last event whose sync finished).
 *    On PostgreSQL, writers take the events lock shared as the last step of their transaction (appendEvents
 *    comes after every row lock, so holding it never waits for one); readers first take it exclusive in a short
 *    transaction, which waits for every writer holding it to end, and read the sequence: the horizon. They return
 *    events up to the horizon only: every seq below it belongs to a transaction that has committed or never will.
 * 6. Every selective filter a SCIM client sends is served by an index (test/bridge/query-plans.test.ts: EXPLAIN on
 *    both): the same planner runs from the candidates of a selective term (an `or` is the union of both sides'
 *    candidates) or checks rows in slices within a budget. `co`/`ew` of 3 characters or more find their candidates
 *    through a trigram index: SQLite's FTS5 table of texts, PostgreSQL's pg_trgm GIN indexes on the same columns.
 * 7. Text never holds U+0000 (PostgreSQL cannot store it): a value or a filter with it is a 400 on both stores.
 * 8. A write is durable when its promise resolves: SQLite syncs its WAL (group commit), PostgreSQL commits with
 *    synchronous_commit on (its server groups concurrent commits).
 */

/** Case folding for attributes whose schema says caseExact=false; index rows and filter values use it alike. */
export function foldCase(value: string): string {
  return value.toLowerCase();
}

/** One searchable value of a resource: `path` is canonical ("emails.value"), `idx` the element of a multi-valued attribute. */
export interface IndexRow {
  readonly path: string;
  /** Element number for sub-attributes of multi-valued attributes; 0 otherwise. */
  readonly idx: number;
  /** Already normalised: folded when caseExact=false, ISO-8601 for dateTime, "true"/"false" for booleans. */
  readonly v: string;
}

/**
 * invited until the person joins the application (then active); deprovisioned (active false), an invited user
 * is revoked (its invitation withdrawn) and an active one suspended. Stored as text: no constraint to migrate.
 */
export type UserStatus = 'invited' | 'active' | 'suspended' | 'revoked';

export interface UserWrite {
  /** See UserStatus. */
  readonly status: UserStatus;
  readonly userName: string;
  readonly externalId: string | null;
  readonly displayName: string | null;
  readonly active: boolean;
  /** The SCIM document without id, meta and groups. */
  readonly doc: Record<string, unknown>;
  readonly index: readonly IndexRow[];
}

export interface UserRecord extends UserWrite {
  readonly id: string;
  readonly created: string;
  readonly lastModified: string;
  readonly version: number;
}

export interface GroupWrite {
  /** Pushed by the IdP (true) or the application's own (false). */
  readonly managed: boolean;
  readonly displayName: string;
  readonly externalId: string | null;
  /** The SCIM document without id, meta and members. */
  readonly doc: Record<string, unknown>;
}

export interface MemberRef {
  readonly value: string;
  readonly type: 'User' | 'Group';
  readonly display: string | null;
}

export interface GroupRecord extends GroupWrite {
  readonly id: string;
  readonly created: string;
  readonly lastModified: string;
  readonly version: number;
  /** Present only when asked for: a group of 50,000 members is not loaded to be renamed. */
  readonly members?: MemberRef[];
}

export type CompareOp = 'eq' | 'ne' | 'co' | 'sw' | 'ew' | 'gt' | 'lt' | 'ge' | 'le';

/** A filter resolved against the schema: paths are canonical, values normalised like index rows. */
export type StoreFilter =
  | { readonly kind: 'and' | 'or'; readonly left: StoreFilter; readonly right: StoreFilter }
  | { readonly kind: 'not'; readonly operand: StoreFilter }
  | { readonly kind: 'compare'; readonly path: string; readonly op: CompareOp; readonly value: string }
  | { readonly kind: 'present'; readonly path: string }
  /** A condition on one element of a multi-valued attribute: `emails[type eq "work" and value co "@x"]`. */
  | { readonly kind: 'element'; readonly path: string; readonly filter: StoreFilter }
  | { readonly kind: 'constant'; readonly value: boolean };

export type SortablePath = 'id' | 'userName' | 'displayName' | 'externalId' | 'meta.created' | 'meta.lastModified';

export interface ListQuery {
  readonly filter?: StoreFilter;
  readonly sortBy?: SortablePath;
  readonly descending?: boolean;
  /** 0-based offset. */
  readonly offset: number;
  readonly limit: number;
}

export interface Page<T> {
  readonly total: number;
  readonly items: T[];
}

/** One change to a group's members; a PATCH's changes apply in order, in the group's transaction. */
export type MemberChange =
  | { readonly op: 'replace' | 'add' | 'remove'; readonly ids: readonly string[] }
  /** Remove the members this filter matches (paths "members.value", "members.type"). */
  | { readonly op: 'removeWhere'; readonly filter: StoreFilter };

/** An event to write to the outbox, in the transaction of the change it describes. */
export interface NewEvent {
  readonly type: string;
  readonly resourceId: string;
  readonly data: Record<string, unknown>;
}

export interface EventRecord extends NewEvent {
  /** Position in the outbox: the feed's cursor. */
  readonly seq: number;
  readonly id: string;
  readonly occurredAt: string;
  /** `data` as stored (JSON text), so that a webhook body is built without parsing it again. */
  readonly dataJson: string;
}

/** What an update of a group did to its members, for events. */
export interface MembershipDelta {
  readonly added: readonly string[];
  readonly removed: readonly string[];
}

/** A precondition on the current version (If-Match lists one or more); none of them current is a 412. */
export type ExpectedVersion = readonly number[] | undefined;

export interface Store {
  /** Creates the schema or brings it up to date. Idempotent. */
  migrate(): Promise<void>;
  close(): Promise<void>;
  /** A cheap round trip, for /health; rejects while the store's last write failed (a full disk), until one succeeds. */
  ping(): Promise<void>;

  /** A setting of the bridge, or null when it was never set. */
  getSetting(key: string): Promise<string | null>;
  /** Sets the setting unless it is set already; returns the value that holds afterwards. */
  setSettingIfAbsent(key: string, value: string): Promise<string>;
  /** Sets the setting, durably. */
  setSetting(key: string, value: string): Promise<void>;

  /** The user, or null when no user has this id. */
  getUser(id: string): Promise<UserRecord | null>;
  /** Users matching the query in a stable order (creation order unless sorted). */
  listUsers(query: ListQuery): Promise<Page<UserRecord>>;
  /**
   * Creates a user, and the events `events` names for it, in one transaction. 409 uniqueness when the folded
   * userName is taken. Durable when it resolves.
   */
  createUser(user: UserWrite, events?: (created: UserRecord) => NewEvent[]): Promise<UserRecord>;
  /**
   * Reads the user and writes what `change` returns ('delete' removes it), with the events `events` names,
   * in one transaction; `change` may throw to abort. null when no user has this id; 412 when `expected` is
   * set and differs; 409 uniqueness on a taken userName. Resolves to the user as written (as it was, when deleted).
   */
  updateUser(
    id: string,
    change: (current: UserRecord) => UserWrite | 'delete',
    expected?: ExpectedVersion,
    events?: (before: UserRecord, after: UserRecord | null) => NewEvent[],
  ): Promise<UserRecord | null>;
  /**
   * Sets the user's status (and nothing else) to what `change` returns, with its events, in one
   * transaction; `change` may throw to refuse. null when no user has this id.
   */
  setUserStatus(id: string, change: (current: UserRecord) => UserStatus, events?: (after: UserRecord) => NewEvent[]): Promise<UserRecord | null>;
  /** Deletes the user and its memberships, with its events. false when no user has this id. */
  deleteUser(id: string, expected?: ExpectedVersion, events?: (deleted: UserRecord) => NewEvent[]): Promise<boolean>;

  /** The groups each of these users belongs to directly. */
  groupsOf(userIds: readonly string[]): Promise<Map<string, { id: string; displayName: string }[]>>;

  /** The group, with its members only when `withMembers`. null when no group has this id. */
  getGroup(id: string, withMembers: boolean): Promise<GroupRecord | null>;
  listGroups(query: ListQuery, withMembers: boolean): Promise<Page<GroupRecord>>;
  /**
   * One page of the group's members in the order getGroup lists them (by member id): those after `after` (null:
   * from the first), at most `limit`. A group of 50,000 members is read in pages, so that it is never whole in
   * memory. Empty when no group has this id.
   */
  groupMembers(groupId: string, after: string | null, limit: number): Promise<MemberRef[]>;
  /**
   * Creates a group with these members. 409 uniqueness when the folded displayName is taken;
   * 400 invalidValue when a member id names neither a user nor a group.
   */
  createGroup(group: GroupWrite, members: readonly string[], events?: (created: GroupRecord, delta: MembershipDelta) => NewEvent[]): Promise<GroupRecord>;
  /**
   * Reads the group (without members) and writes what `change` returns, with member changes, in one
   * transaction; costs the same for a group of 50,000 members as for an empty one. null when no group has
   * this id; 412 on a version mismatch; 409 on a taken displayName; 400 invalidValue on an unknown member id.
   */
  updateGroup(
    id: string,
    change: (current: GroupRecord) => { group: GroupWrite; members: readonly MemberChange[] },
    expected?: ExpectedVersion,
    events?: (before: GroupRecord, after: GroupRecord, delta: MembershipDelta) => NewEvent[],
  ): Promise<GroupRecord | null>;
  /** Deletes the group and its membership rows (the members themselves stay), with its events. false when unknown. */
  deleteGroup(id: string, expected?: ExpectedVersion, events?: (deleted: GroupRecord) => NewEvent[]): Promise<boolean>;

  /** Calls `listener` whenever writes have become durable (delivery wakes up on it instead of waiting). */
  onDurable(listener: () => void): void;
  /** Events after the cursor `after` (0: from the start), oldest first; only events whose change is durable. */
  listEvents(after: number, limit: number): Promise<EventRecord[]>;
  /**
   * Deletes events that occurred before `before`, up to `upToSeq` (what the webhook has delivered), except
   * dead letters. Returns how many went.
   */
  purgeEvents(before: string, upToSeq: number): Promise<number>;
  /** How many durable events come after the cursor. */
  countEventsAfter(after: number): Promise<number>;
  /** Keeps an event the downstream never accepted. */
  addDeadLetter(seq: number, error: string): Promise<void>;
  /** The dead letters, oldest first, with their events. */
  listDeadLetters(limit: number): Promise<(EventRecord & { failedAt: string; error: string })[]>;
  removeDeadLetter(seq: number): Promise<void>;
  countDeadLetters(): Promise<number>;

  /**
   * A lease: one holder at a time across replicas (webhook delivery runs where the lease is). Takes it when it
   * is free or expired, renews it when `holder` has it; expiry by the database's clock, `ttlMs` from now. A
   * lease keeps a cursor that only its holder can move. On SQLite (one replica) a new holder takes it at once.
   */
  acquireLease(name: string, holder: string, ttlMs: number): Promise<{ held: boolean; cursor: number }>;
  /** Gives the lease up (a clean stop), so that another replica takes it without waiting for the expiry. */
  releaseLease(name: string, holder: string): Promise<void>;
  /** Moves the lease's cursor; false (nothing written) when `holder` no longer has the lease. */
  saveLeaseCursor(name: string, holder: string, cursor: number): Promise<boolean>;
  /** The lease's cursor, whoever holds it (0 when never set). */
  leaseCursor(name: string): Promise<number>;
  /** Users by status, every status present (0 when none), from the status index: for /metrics and the status page. */
  countUsersByStatus(): Promise<Record<UserStatus, number>>;
  countGroups(): Promise<number>;
}
