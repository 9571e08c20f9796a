/**
 * The directory: the reference product's rules of what may change and how, and the events that describe
 * each change, written to the outbox in the change's own transaction.
 *
 * - A user provisioned by the IdP is *invited* until the application says the person joined (*active*).
 * - Deprovisioning (active: false) of an invited user withdraws the invitation (*revoked*), of an active one
 *   suspends it (*suspended*); the directory keeps both, as IdPs reactivate by the same id. active: true makes
 *   a revoked user invited again and a suspended one active; DELETE removes.
 * - A group pushed by the IdP is *managed*; pushing a group named like an application group that is not
 *   managed takes that group over; a managed one of that name is a conflict.
 * - Every user and group has one source: an IdP over SCIM (and the application), or a connector the bridge runs
 *   (Google Workspace). A source writes only its own resources: the others answer 409.
 */
import { conflict, notFound, ScimError } from '../errors';
import type { Logger } from '../log';
import type {
  EventRecord,
  ExpectedVersion,
  GroupRecord,
  GroupWrite,
  ListQuery,
  MemberChange,
  MemberRef,
  MembershipDelta,
  NewEvent,
  Page,
  Store,
  UserRecord,
  UserStatus,
  UserWrite,
} from '../store';
import { foldCase } from '../store';

export { foldCase } from '../store';
export type {
  CompareOp,
  EventRecord,
  ExpectedVersion,
  GroupRecord,
  GroupWrite,
  IndexRow,
  ListQuery,
  MemberChange,
  MemberRef,
  Page,
  SortablePath,
  StoreFilter,
  UserRecord,
  UserStatus,
  UserWrite,
} from '../store';

export type UserContent = Omit<UserWrite, 'status'>;

/** Who writes: an IdP over SCIM (or the application through its API), or a connector the bridge runs itself. */
export type Source = 'scim' | 'google';

/**
 * A connector's users and groups carry its prefix in externalId (`google:<Google's id>`): the mark of their source,
 * which the connector finds them by (externalId has an index), and which SCIM can neither set nor change.
 */
export const CONNECTOR_PREFIX: Readonly<Record<Exclude<Source, 'scim'>, string>> = { google: 'google:' };

export function sourceOf(externalId: string | null | undefined): Source {
  return typeof externalId === 'string' && externalId.startsWith(CONNECTOR_PREFIX.google) ? 'google' : 'scim';
}

const SOURCE_NAMES: Record<Source, string> = { scim: 'an identity provider over SCIM', google: "this bridge's Google Workspace connector" };
export type GroupContent = Omit<GroupWrite, 'managed'>;

/** How a resource looks in an event's `data`: as SCIM returns it (the protocol layer provides this). */
export interface Presenter {
  user(rec: UserRecord): Record<string, unknown>;
  group(rec: GroupRecord): Record<string, unknown>;
}

/** The lifecycle: the status a user has after the IdP sets `active`. */
function statusAfter(status: UserStatus, active: boolean): UserStatus {
  if (active) return status === 'revoked' ? 'invited' : status === 'suspended' ? 'active' : status;
  return status === 'invited' ? 'revoked' : status === 'active' ? 'suspended' : status;
}

/** The event of a status change, or undefined when the status stayed. */
function lifecycleEvent(before: UserStatus, after: UserStatus): string | undefined {
  if (before === after) return undefined;
  if (after === 'revoked') return 'user.revoked';
  if (after === 'suspended') return 'user.suspended';
  if (before === 'revoked') return 'user.reinvited';
  if (before === 'suspended') return 'user.reactivated';
  return undefined;
}

/** Why the application cannot make this user join, and what would change that. */
function cannotJoin(id: string, status: UserStatus): string {
  switch (status) {
    case 'revoked':
      return (
        `The user ${id} is revoked: the identity provider deprovisioned it (active: false) before it joined, which withdrew its invitation. ` +
        `It can join once the identity provider sets active: true again, which makes it invited.`
      );
    case 'suspended':
      return `The user ${id} is suspended: it joined before and the identity provider deprovisioned it; the identity provider reactivates it (active: true), not a join.`;
    default:
      return `The user ${id} is ${status}, not invited: it has joined already.`;
  }
}

function primaryEmail(rec: UserRecord): string | undefined {
  const emails = rec.doc.emails as { value?: string; primary?: boolean }[] | undefined;
  return (emails?.find((e) => e.primary === true) ?? emails?.[0])?.value;
}

export interface DirectoryOptions {
  /** Email domains accepted for userName and emails (lower case); empty: all. */
  readonly allowedDomains?: readonly string[];
  /** The bridge's logger, for the one warning when the allowed domains reject the first user (see noteRejection). */
  readonly logger?: Logger;
}

/** The 400 of an address outside the allowed domains; `domain` is null when the address has no '@'. */
class DomainNotAllowed extends ScimError {
  constructor(
    readonly domain: string | null,
    detail: string,
  ) {
    super(400, detail, 'invalidValue');
  }
}

/** Where the allowed domains are set: the environment, or the Pulumi stack setting that fills it. */
const DOMAINS_SETTING = 'SCIM_BRIDGE_ALLOWED_DOMAINS (on a Pulumi stack: the setting scim-bridge:allowedDomains)';

export class Directory {
  private readonly allowed: ReadonlySet<string>;
  private readonly logger?: Logger;
  /** This process has written a user (so the allowed domains let at least one through). */
  private accepted = false;
  /** The first domain rejection of this process has been looked at: the warning is decided once. */
  private firstRejectionSeen = false;

  constructor(
    private readonly store: Store,
    private readonly present: Presenter,
    options: DirectoryOptions = {},
  ) {
    this.allowed = new Set(options.allowedDomains ?? []);
    this.logger = options.logger;
  }

  /** userName and every email must be in an allowed domain (SCIM_BRIDGE_ALLOWED_DOMAINS), when it is set. */
  private checkDomains(user: UserContent): UserContent {
    if (this.allowed.size === 0) return user;
    const emails = ((user.doc.emails as { value?: string }[] | undefined) ?? []).map((e) => e.value).filter((v): v is string => typeof v === 'string');
    const allowed = [...this.allowed].join(', ');
    for (const address of [user.userName, ...emails]) {
      const at = address.lastIndexOf('@');
      const domain = at >= 0 ? address.slice(at + 1).toLowerCase() : '';
      if (!this.allowed.has(domain)) {
        throw new DomainNotAllowed(
          domain || null,
          domain
            ? `'${address}' is in the domain ${domain}, which this bridge does not accept: ${DOMAINS_SETTING} allows only ${allowed}. ` +
                `Add ${domain} to that list if its users belong in this application.`
            : `'${address}' is not an email address, which this bridge does not accept: ${DOMAINS_SETTING} allows only addresses in ${allowed}. ` +
                `Send userName and emails as email addresses in one of these domains.`,
        );
      }
    }
    return user;
  }

  /**
   * Runs a write that checks domains; a domain rejection is looked at (noteRejection) before it goes on to the client.
   */
  private async checked<T>(write: () => Promise<T>): Promise<T> {
    try {
      return await write();
    } catch (err) {
      if (err instanceof DomainNotAllowed) await this.noteRejection(err.domain);
      throw err;
    }
  }

  /**
   * One warning when the allowed domains look wrong for this directory, as when a stack kept the example's
   * `allowedDomains: [example.com]` and every real user gets 400. The rule, decided once per process on its first
   * domain rejection (one store read, then never again): warn if this process has accepted no user and the store
   * holds none. Later rejections, and rejections after any user was accepted, log nothing beyond their request line.
   * A PUT or PATCH is of a user the directory holds, so only a POST (SCIM or the application API) can warn.
   * Only the domain is logged, never the address.
   */
  private async noteRejection(domain: string | null): Promise<void> {
    if (!this.logger || this.accepted || this.firstRejectionSeen) return;
    this.firstRejectionSeen = true;
    try {
      if ((await this.store.listUsers({ offset: 0, limit: 1 })).items.length > 0) return;
    } catch {
      return; // The store's trouble is reported where it matters; this warning is only a hint.
    }
    if (this.accepted) return;
    const allowedDomains = [...this.allowed];
    const rejectedDomain = domain === null ? null : domain.slice(0, 253);
    const what = rejectedDomain === null ? 'its userName or email is not an email address' : `its domain is ${rejectedDomain}`;
    const fix =
      rejectedDomain === null
        ? `have the identity provider send email addresses in these domains, or remove ${DOMAINS_SETTING} to accept every domain`
        : `if ${rejectedDomain} is yours, add it to ${DOMAINS_SETTING} and restart the bridge, or remove the setting to accept every domain`;
    this.logger.warn(
      { allowedDomains, rejectedDomain, setting: 'SCIM_BRIDGE_ALLOWED_DOMAINS', stackSetting: 'scim-bridge:allowedDomains' },
      `The allowed domains (${allowedDomains.join(', ')}) rejected the first user this bridge saw, and no user has been accepted yet: ${what}. ` +
        `Every user outside these domains gets 400 invalidValue. To fix it: ${fix}. (Logged once.)`,
    );
  }

  health(): Promise<void> {
    return this.store.ping();
  }

  /** 409 when `by` writes to a resource another source manages. */
  private checkSource(kind: 'user' | 'group', rec: { id: string; externalId: string | null }, by: Source): void {
    const owner = sourceOf(rec.externalId);
    if (owner === by) return;
    const fix = owner === 'google' ? 'change it in Google Workspace: the next sync applies it' : 'the identity provider that created it manages it';
    throw new ScimError(409, `The ${kind} ${rec.id} is managed by ${SOURCE_NAMES[owner]}, not by ${SOURCE_NAMES[by]}: ${fix}.`);
  }

  /** 400 when a write would give a resource another source's mark (an externalId starting with google:). */
  private checkMark(externalId: string | null, by: Source): void {
    if (sourceOf(externalId) === by) return;
    if (by === 'scim') throw new ScimError(400, `externalId values starting with '${CONNECTOR_PREFIX.google}' are reserved for ${SOURCE_NAMES.google}; send another externalId.`, 'invalidValue');
    throw new Error(`${SOURCE_NAMES[by]} wrote externalId without its prefix`);
  }

  private userEvent(type: string, rec: UserRecord, extra: Record<string, unknown> = {}): NewEvent {
    return { type, resourceId: rec.id, data: { ...this.present.user(rec), ...extra } };
  }

  private groupEvent(type: string, rec: GroupRecord, extra: Record<string, unknown> = {}): NewEvent {
    const { members: _members, ...group } = rec;
    return { type, resourceId: rec.id, data: { ...this.present.group(group), ...extra } };
  }

  // ---- users ----

  getUser(id: string): Promise<UserRecord | null> {
    return this.store.getUser(id);
  }
  listUsers(query: ListQuery): Promise<Page<UserRecord>> {
    return this.store.listUsers(query);
  }
  groupsOf(userIds: readonly string[]) {
    return this.store.groupsOf(userIds);
  }

  /**
   * Provisioned by the IdP: invited until the person joins. Provisioned with active false, it is revoked from
   * the start (no invitation to send): user.created, then user.revoked for an application that invites on the first.
   */
  async createUser(user: UserContent, by: Source = 'scim'): Promise<UserRecord> {
    this.checkMark(user.externalId, by);
    const status = statusAfter('invited', user.active);
    const rec = await this.checked(() =>
      this.store.createUser({ ...this.checkDomains(user), status }, (created) => [
        this.userEvent('user.created', created),
        ...(status === 'revoked' ? [this.userEvent('user.revoked', created)] : []),
      ]),
    );
    this.accepted = true;
    return rec;
  }

  /** A user that exists in the application already: active, and listed to the IdP so its import can match it. */
  async createApplicationUser(user: UserContent): Promise<UserRecord> {
    this.checkMark(user.externalId, 'scim');
    const rec = await this.checked(() =>
      this.store.createUser({ ...this.checkDomains(user), active: true, status: 'active' }, (created) => [this.userEvent('user.created', created)]),
    );
    this.accepted = true;
    return rec;
  }

  /** Applies a change from the IdP with the lifecycle rules. Resolves to the user as written. */
  updateUser(id: string, change: (current: UserRecord) => UserContent, expected?: ExpectedVersion, by: Source = 'scim'): Promise<UserRecord | null> {
    return this.store.updateUser(
      id,
      (current) => {
        this.checkSource('user', current, by);
        // A user to update is a user the directory accepted: a later domain rejection is no first-user surprise.
        this.accepted = true;
        const next = change(current);
        this.checkMark(next.externalId, by);
        // Only new addresses are checked: deprovisioning a user from a domain no longer allowed must work.
        if (next.userName !== current.userName || JSON.stringify(next.doc.emails) !== JSON.stringify(current.doc.emails)) this.checkDomains(next);
        return { ...next, status: statusAfter(current.status, next.active) };
      },
      expected,
      (before, after) => {
        if (after === null) return []; // never: the directory does not delete on update
        const lifecycle = lifecycleEvent(before.status, after.status);
        if (lifecycle) return [this.userEvent(lifecycle, after)];
        const events = [this.userEvent('user.updated', after)];
        const [was, now] = [primaryEmail(before), primaryEmail(after)];
        if (after.status === 'active' && was !== now && now !== undefined) {
          events.push(this.userEvent('user.email_changed', after, { previousEmail: was ?? null, email: now }));
        }
        return events;
      },
    );
  }

  async deleteUser(id: string, expected?: ExpectedVersion, by: Source = 'scim'): Promise<boolean> {
    const current = await this.store.getUser(id);
    if (current) this.checkSource('user', current, by);
    return this.store.deleteUser(id, expected, (deleted) => [this.userEvent('user.deleted', deleted)]);
  }

  /** The application says the person accepted the invitation: invited -> active. */
  async joinUser(id: string): Promise<UserRecord> {
    const rec = await this.store.setUserStatus(
      id,
      (current) => {
        if (current.status !== 'invited') throw new ScimError(409, cannotJoin(id, current.status));
        return 'active';
      },
      (after) => [this.userEvent('user.joined', after)],
    );
    if (!rec) throw notFound(`No user has the id '${id}'.`);
    return rec;
  }

  // ---- groups ----

  getGroup(id: string, withMembers: boolean): Promise<GroupRecord | null> {
    return this.store.getGroup(id, withMembers);
  }
  listGroups(query: ListQuery, withMembers: boolean): Promise<Page<GroupRecord>> {
    return this.store.listGroups(query, withMembers);
  }
  /** A page of the group's members (see Store.groupMembers): a big group is read, and served, page by page. */
  groupMembers(groupId: string, after: string | null, limit: number): Promise<MemberRef[]> {
    return this.store.groupMembers(groupId, after, limit);
  }

  private groupEvents(before: GroupRecord | null, after: GroupRecord, delta: MembershipDelta): NewEvent[] {
    const events: NewEvent[] = [];
    if (before === null) events.push(this.groupEvent('group.created', after));
    else if (before.displayName !== after.displayName || before.externalId !== after.externalId || before.managed !== after.managed) {
      events.push(this.groupEvent('group.updated', after));
    }
    for (const value of delta.added) events.push(this.groupEvent('group.member_added', after, { member: { value } }));
    for (const value of delta.removed) events.push(this.groupEvent('group.member_removed', after, { member: { value } }));
    return events;
  }

  private async groupNamed(displayName: string): Promise<GroupRecord | undefined> {
    const page = await this.store.listGroups(
      { filter: { kind: 'compare', path: 'displayName', op: 'eq', value: foldCase(displayName) }, offset: 0, limit: 1 },
      false,
    );
    return page.items[0];
  }

  /**
   * A group pushed by the IdP. Named like an application group that is not managed: that group is taken
   * over (same id, now managed, members as pushed). Named like a managed group: 409.
   */
  async createGroup(group: GroupContent, members: readonly string[], by: Source = 'scim'): Promise<GroupRecord> {
    this.checkMark(group.externalId, by);
    const existing = await this.groupNamed(group.displayName);
    if (existing && !existing.managed) {
      const adopted = await this.store.updateGroup(
        existing.id,
        (current) => {
          // Another request (on this replica or another) took it over since it was looked up: that one won.
          if (current.managed) throw conflict(`A group named '${group.displayName}' exists already (displayName is unique, case-insensitively).`);
          return { group: { ...group, managed: true }, members: [{ op: 'replace', ids: members }] };
        },
        undefined,
        (before, after, delta) => this.groupEvents(before, after, delta),
      );
      if (adopted) return (await this.store.getGroup(adopted.id, true))!;
    }
    if (existing) throw conflict(`A group named '${group.displayName}' exists already (displayName is unique, case-insensitively).`);
    return this.store.createGroup({ ...group, managed: true }, members, (created, delta) => this.groupEvents(null, created, delta));
  }

  /** An application group: not managed by the IdP until it is marked so or taken over. */
  createApplicationGroup(displayName: string): Promise<GroupRecord> {
    return this.store.createGroup({ displayName, externalId: null, doc: { displayName }, managed: false }, [], (created, delta) =>
      this.groupEvents(null, created, delta),
    );
  }

  async setManaged(id: string, managed: boolean): Promise<GroupRecord> {
    const rec = await this.store.updateGroup(id, (current) => ({ group: { ...current, managed }, members: [] }), undefined, (before, after, delta) =>
      this.groupEvents(before, after, delta),
    );
    if (!rec) throw notFound(`No group has the id '${id}'.`);
    return rec;
  }

  updateGroup(
    id: string,
    change: (current: GroupRecord) => { group: GroupContent; members: readonly MemberChange[] },
    expected?: ExpectedVersion,
    by: Source = 'scim',
  ): Promise<GroupRecord | null> {
    return this.store.updateGroup(
      id,
      (current) => {
        this.checkSource('group', current, by);
        const next = change(current);
        this.checkMark(next.group.externalId, by);
        // A group the IdP writes to is pushed by it: an application group found by a lookup is taken over.
        return { group: { ...next.group, managed: true }, members: next.members };
      },
      expected,
      (before, after, delta) => this.groupEvents(before, after, delta),
    );
  }

  /** Deleting a group leaves its members as they are. */
  async deleteGroup(id: string, expected?: ExpectedVersion, by: Source = 'scim'): Promise<boolean> {
    const current = await this.store.getGroup(id, false);
    if (current) this.checkSource('group', current, by);
    return this.store.deleteGroup(id, expected, (deleted) => [this.groupEvent('group.deleted', deleted)]);
  }

  // ---- events ----

  listEvents(after: number, limit: number): Promise<EventRecord[]> {
    return this.store.listEvents(after, limit);
  }

  deadLetters() {
    return this.store.listDeadLetters(1000);
  }

  countDeadLetters(): Promise<number> {
    return this.store.countDeadLetters();
  }
}
