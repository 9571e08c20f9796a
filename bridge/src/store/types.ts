/**
 * The store contract: one async interface, implemented by SQLite (embedded default) and, later, PostgreSQL.
 * The store knows tables and indexes, not SCIM: it receives documents already validated, index rows already
 * normalised, and filters already resolved against the schema.
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

  /** Users by status, every status present (0 when none), from the status index: for /metrics and the status page. */
  countUsersByStatus(): Promise<Record<UserStatus, number>>;
  countGroups(): Promise<number>;
}
