/**
 * One sync: read the synced groups, their members and those users from Google (every page, before anything is
 * written), then apply the differences through the directory, as the connector's source ('google'), so the
 * application sees the events SCIM would cause. A failure while reading applies nothing: no half-read group is
 * ever taken for members removed.
 *
 * What the connector owns is what carries its mark (externalId `google:<Google's id>`): users and groups of any
 * other source are never read for changes, never written. A user who leaves every synced group, or is suspended,
 * archived or deleted in Google, is deprovisioned (active: false); one who comes back is reactivated.
 */
import { createHash } from 'node:crypto';
import { CONNECTOR_PREFIX, Directory, StoreFilter, UserContent } from '../../directory';
import { ScimError } from '../../errors';
import { groupContent, userContent } from '../../scim';
import type { DirectoryApi } from './api';

const PREFIX = CONNECTOR_PREFIX.google;
const USER_SCHEMA = 'urn:ietf:params:scim:schemas:core:2.0:User';
const GROUP_SCHEMA = 'urn:ietf:params:scim:schemas:core:2.0:Group';
/** Google's largest pages: 500 users, 200 members. */
const USERS_PAGE = '500';
const MEMBERS_PAGE = '200';
/** The connector's own resources, read from the directory this many at a time. */
const DIRECTORY_PAGE = 500;
/**
 * Member changes per write: a group of 10,000 is filled in writes of this many, so that no one transaction holds
 * 10,000 events at once. Additions may show half-way; removals are computed from the full snapshot all the same.
 */
const MEMBERS_PER_WRITE = 1000;
/** Warnings kept in a sync's report (the log has them all). */
const MAX_WARNINGS = 20;

interface GoogleUser {
  readonly id: string;
  readonly email: string;
  readonly givenName?: string;
  readonly familyName?: string;
  /** Suspended or archived in Google: deprovisioned here. */
  readonly inactive: boolean;
}

interface GoogleGroup {
  readonly id: string;
  readonly email: string;
  readonly name: string;
  /** Google ids of the member users (nested groups flattened by Google). */
  readonly members: string[];
}

/**
 * A user as the sync keeps it between reading and writing: one string, `email NUL givenName NUL familyName NUL 0|1`
 * (1: inactive). The sync reads every page before it writes anything; one short string a user instead of an object
 * and its three strings keeps 10,000 users within the bridge's memory budget (see bench/google-sync-memory.ts).
 */
export type CompactUser = string;
const SEP = '\u0000';

export function compactUser(u: Omit<GoogleUser, 'id'>): CompactUser {
  return [u.email, u.givenName ?? '', u.familyName ?? '', u.inactive ? '1' : '0'].join(SEP);
}

export function expandUser(id: string, packed: CompactUser): GoogleUser {
  const [email, givenName, familyName, inactive] = packed.split(SEP);
  return { id, email, givenName: givenName || undefined, familyName: familyName || undefined, inactive: inactive === '1' };
}

/** The synced part of Google's directory, read in full. */
export interface Snapshot {
  readonly groups: GoogleGroup[];
  /** Google id -> the user, compact. */
  readonly users: Map<string, CompactUser>;
  /** Configured groups Google does not know (deleted, or a wrong address). */
  readonly missingGroups: string[];
  /** Members that are no user of the domain (external accounts): not synced. */
  readonly externalMembers: number;
}

// A type (not an interface), so that it is a record of numbers to whoever shows it (/metrics).
export type SyncCounts = {
  groups: number;
  users: number;
  usersCreated: number;
  usersUpdated: number;
  usersDeprovisioned: number;
  groupsCreated: number;
  groupsUpdated: number;
  groupsDeleted: number;
  membersAdded: number;
  membersRemoved: number;
  /** Users and groups left alone: another source holds the name, or the directory refused them (the warnings say why). */
  skipped: number;
};

export interface SyncReport {
  readonly startedAt: string;
  readonly finishedAt: string;
  readonly durationMs: number;
  readonly ok: boolean;
  /** Not run here: another replica holds the sync lease (syncNow() on a standby replica). */
  readonly standby?: true;
  readonly counts: SyncCounts;
  /** Requests sent to Google (token requests and retries included). */
  readonly requests: number;
  readonly error?: string;
  readonly warnings: string[];
}

interface GoogleUserJson {
  id?: string;
  primaryEmail?: string;
  name?: { givenName?: string; familyName?: string };
  suspended?: boolean;
  archived?: boolean;
}

/** Reads the groups (by email or id), their members and those users; throws on any failure but a group's 404. */
export async function readDirectory(api: DirectoryApi, groupKeys: readonly string[], signal?: AbortSignal): Promise<Snapshot> {
  const groups: GoogleGroup[] = [];
  const missingGroups: string[] = [];
  const memberIds = new Set<string>();
  for (const key of groupKeys) {
    const group = await api.get<{ id?: string; email?: string; name?: string }>(`/admin/directory/v1/groups/${encodeURIComponent(key)}`, { fields: 'id,email,name' }, signal);
    if (group === null || typeof group.id !== 'string') {
      missingGroups.push(key);
      continue;
    }
    if (groups.some((g) => g.id === group.id)) continue; // named twice (by email and by id)
    const members = new Set<string>();
    const pages = api.pages<{ members?: { id?: string; type?: string }[] }>(
      `/admin/directory/v1/groups/${encodeURIComponent(group.id)}/members`,
      { maxResults: MEMBERS_PAGE, includeDerivedMembership: 'true', fields: 'nextPageToken,members(id,type)' },
      signal,
    );
    for await (const page of pages) {
      for (const m of page.members ?? []) {
        // Nested groups come flattened (includeDerivedMembership): their users are listed as USER members.
        if (m.type === 'USER' && typeof m.id === 'string') {
          members.add(m.id);
          memberIds.add(m.id);
        }
      }
    }
    groups.push({ id: group.id, email: group.email ?? key, name: group.name || group.email || key, members: [...members] });
  }
  // The domain's users, a page at a time, keeping only the members: a page of 500 is dropped once read.
  const users = new Map<string, CompactUser>();
  if (memberIds.size > 0) {
    const pages = api.pages<{ users?: GoogleUserJson[] }>(
      '/admin/directory/v1/users',
      { customer: 'my_customer', maxResults: USERS_PAGE, projection: 'basic', fields: 'nextPageToken,users(id,primaryEmail,name(givenName,familyName),suspended,archived)' },
      signal,
    );
    for await (const page of pages) {
      for (const u of page.users ?? []) {
        if (typeof u.id !== 'string' || !memberIds.has(u.id) || typeof u.primaryEmail !== 'string') continue;
        users.set(u.id, compactUser({ email: u.primaryEmail, givenName: u.name?.givenName || undefined, familyName: u.name?.familyName || undefined, inactive: u.suspended === true || u.archived === true }));
      }
    }
  }
  let externalMembers = 0;
  for (const id of memberIds) if (!users.has(id)) externalMembers++;
  for (const g of groups) {
    const known = g.members.filter((id) => users.has(id));
    g.members.length = 0;
    g.members.push(...known);
  }
  return { groups, users, missingGroups, externalMembers };
}

/** The user as SCIM would receive it from an IdP: Google's primary email as userName and work email. */
function userDocument(u: GoogleUser): Record<string, unknown> {
  const name: Record<string, string> = {};
  if (u.givenName) name.givenName = u.givenName;
  if (u.familyName) name.familyName = u.familyName;
  return {
    schemas: [USER_SCHEMA],
    userName: u.email,
    externalId: `${PREFIX}${u.id}`,
    ...(Object.keys(name).length > 0 ? { name } : {}),
    emails: [{ value: u.email, type: 'work', primary: true }],
    active: !u.inactive,
  };
}

interface OwnedUser {
  readonly id: string;
  readonly userName: string;
  readonly active: boolean;
  /** A digest of what the connector sets in it: equal digests, nothing to write. */
  readonly sketch: string;
}

/**
 * What the connector sets in a user's document (userName, externalId, names, emails, active), as a short digest:
 * 10,000 users are compared without holding their documents, and without building the unchanged ones.
 */
function sketch(doc: Record<string, unknown>, active: boolean): string {
  const name = (doc.name ?? {}) as Record<string, unknown>;
  const emails = (doc.emails ?? []) as Record<string, unknown>[];
  const fields = [doc.userName, doc.externalId, name.givenName ?? null, name.familyName ?? null, emails.map((e) => [e.value, e.type ?? null, e.primary ?? null]), active];
  return createHash('sha1').update(JSON.stringify(fields)).digest('base64');
}

const ownedFilter: StoreFilter = { kind: 'compare', path: 'externalId', op: 'sw', value: PREFIX };

/** The connector's users in the directory, by Google id. */
async function ownedUsers(directory: Directory): Promise<Map<string, OwnedUser>> {
  const owned = new Map<string, OwnedUser>();
  // A page may hold fewer than asked (the store caps a page's bytes): the total says when the list ends.
  for (let offset = 0; ; ) {
    const page = await directory.listUsers({ filter: ownedFilter, sortBy: 'id', offset, limit: DIRECTORY_PAGE });
    for (const u of page.items) {
      owned.set(u.externalId!.slice(PREFIX.length), { id: u.id, userName: u.userName, active: u.active, sketch: sketch(u.doc, u.active) });
    }
    offset += page.items.length;
    if (page.items.length === 0 || offset >= page.total) return owned;
  }
}

/**
 * Writes of different users at once, so that the store commits them in groups (one disk sync for many users)
 * rather than one after the other; a handful at a time keeps memory flat and leaves room for SCIM's requests.
 */
const CONCURRENT_WRITES = 16;

async function concurrently<T>(items: Iterable<T>, run: (item: T) => Promise<void>): Promise<void> {
  const iterator = items[Symbol.iterator]();
  let failure: unknown;
  const worker = async () => {
    for (let next = iterator.next(); !next.done && failure === undefined; next = iterator.next()) {
      try {
        await run(next.value);
      } catch (err) {
        failure ??= err;
      }
    }
  };
  await Promise.all(Array.from({ length: CONCURRENT_WRITES }, worker));
  if (failure !== undefined) throw failure;
}

/** A refusal of one user or group (a name another source holds, a domain not allowed): skipped, not fatal. */
function refusal(err: unknown): string | undefined {
  return err instanceof ScimError && (err.status === 409 || err.status === 400) ? err.detail : undefined;
}

/** Applies the snapshot to the directory; per-resource refusals become warnings, anything else throws. */
export async function applySnapshot(directory: Directory, snapshot: Snapshot, counts: SyncCounts, warn: (text: string) => void, signal?: AbortSignal): Promise<void> {
  const owned = await ownedUsers(directory);
  /** Google id -> the directory's id, for membership. */
  const bridgeIds = new Map<string, string>();
  // A user deleted in Google and created again with the same address is a new Google id for the same person: the
  // directory's user (deprovisioned, holding the userName) is taken up again rather than blocking the new one.
  const leaving = new Map<string, { googleId: string; user: OwnedUser }>();
  for (const [googleId, user] of owned) if (!snapshot.users.has(googleId)) leaving.set(user.userName.toLowerCase(), { googleId, user });

  await concurrently(snapshot.users, async ([googleId, packed]) => {
    signal?.throwIfAborted();
    const gu = expandUser(googleId, packed);
    const document = userDocument(gu);
    const known = owned.get(googleId);
    if (known !== undefined && known.sketch === sketch(document, document.active === true)) {
      bridgeIds.set(googleId, known.id);
      return;
    }
    let content: UserContent;
    try {
      content = userContent(document);
    } catch (err) {
      const why = refusal(err);
      if (why === undefined) throw err;
      counts.skipped++;
      warn(`user ${gu.email}: ${why}`);
      return;
    }
    let current = owned.get(googleId);
    const predecessor = current === undefined ? leaving.get(gu.email.toLowerCase()) : undefined;
    if (predecessor) {
      leaving.delete(gu.email.toLowerCase());
      owned.delete(predecessor.googleId);
      current = predecessor.user;
    }
    try {
      if (current === undefined) {
        // Suspended in Google and never seen here: nothing to invite, nothing to withdraw.
        if (!content.active) return;
        const created = await directory.createUser(content, 'google');
        bridgeIds.set(googleId, created.id);
        counts.usersCreated++;
        return;
      }
      bridgeIds.set(googleId, current.id);
      // Different only before SCIM's normalisation (a userName in another Unicode form): nothing to write.
      if (predecessor === undefined && sketch(content.doc, content.active) === current.sketch) return;
      await directory.updateUser(current.id, () => content, undefined, 'google');
      if (current.active && !content.active) counts.usersDeprovisioned++;
      else counts.usersUpdated++;
    } catch (err) {
      const why = refusal(err);
      if (why === undefined) throw err;
      counts.skipped++;
      warn(`user ${gu.email}: ${why}`);
    }
  });

  await applyGroups(directory, snapshot, bridgeIds, counts, warn, signal);

  // Users of the connector no synced group holds any more (removed, or deleted in Google): deprovisioned.
  await concurrently(owned, async ([googleId, user]) => {
    signal?.throwIfAborted();
    if (snapshot.users.has(googleId) || !user.active) return;
    await directory.updateUser(
      user.id,
      (current) => {
        const { meta: _meta, ...doc } = current.doc as Record<string, unknown>;
        return userContent({ ...doc, schemas: [USER_SCHEMA], active: false });
      },
      undefined,
      'google',
    );
    counts.usersDeprovisioned++;
  });
}

function chunks(ids: string[]): string[][] {
  const out: string[][] = [];
  for (let i = 0; i < ids.length; i += MEMBERS_PER_WRITE) out.push(ids.slice(i, i + MEMBERS_PER_WRITE));
  return out;
}

async function applyGroups(
  directory: Directory,
  snapshot: Snapshot,
  bridgeIds: ReadonlyMap<string, string>,
  counts: SyncCounts,
  warn: (text: string) => void,
  signal?: AbortSignal,
): Promise<void> {
  const owned = new Map<string, { id: string; displayName: string }>();
  for (let offset = 0; ; ) {
    const page = await directory.listGroups({ filter: ownedFilter, sortBy: 'id', offset, limit: DIRECTORY_PAGE }, false);
    for (const g of page.items) owned.set(g.externalId!.slice(PREFIX.length), { id: g.id, displayName: g.displayName });
    offset += page.items.length;
    if (page.items.length === 0 || offset >= page.total) break;
  }
  for (const gg of snapshot.groups) {
    signal?.throwIfAborted();
    const members = gg.members.map((id) => bridgeIds.get(id)).filter((id): id is string => id !== undefined);
    const content = groupContent({ schemas: [GROUP_SCHEMA], displayName: gg.name, externalId: `${PREFIX}${gg.id}` });
    const current = owned.get(gg.id);
    try {
      if (current === undefined) {
        const created = await directory.createGroup(content, members.slice(0, MEMBERS_PER_WRITE), 'google');
        counts.groupsCreated++;
        counts.membersAdded += Math.min(members.length, MEMBERS_PER_WRITE);
        for (let i = MEMBERS_PER_WRITE; i < members.length; i += MEMBERS_PER_WRITE) {
          const ids = members.slice(i, i + MEMBERS_PER_WRITE);
          await directory.updateGroup(created.id, () => ({ group: content, members: [{ op: 'add', ids }] }), undefined, 'google');
          counts.membersAdded += ids.length;
        }
        continue;
      }
      const held = await directory.getGroup(current.id, true);
      if (held === null) continue; // deleted meanwhile: created again by the next sync
      const wanted = new Set(members);
      const had = new Set((held.members ?? []).map((m) => m.value));
      const added = members.filter((id) => !had.has(id));
      const removed = [...had].filter((id) => !wanted.has(id));
      if (held.displayName === content.displayName && added.length === 0 && removed.length === 0) continue;
      const changes = [
        ...chunks(added).map((ids) => ({ op: 'add' as const, ids })),
        ...chunks(removed).map((ids) => ({ op: 'remove' as const, ids })),
      ];
      // The rename goes with the first write (or alone).
      for (const change of changes.length > 0 ? changes : [undefined]) {
        await directory.updateGroup(current.id, () => ({ group: content, members: change ? [change] : [] }), undefined, 'google');
      }
      if (held.displayName !== content.displayName) counts.groupsUpdated++;
      counts.membersAdded += added.length;
      counts.membersRemoved += removed.length;
    } catch (err) {
      const why = refusal(err);
      if (why === undefined) throw err;
      counts.skipped++;
      warn(`group ${gg.email}: ${why}`);
    }
  }
  // Groups of the connector that are no longer synced (gone from Google, or from SCIM_BRIDGE_GOOGLE_GROUPS): deleted,
  // their members left as they are (the directory's rule); those in no other synced group were deprovisioned above.
  const synced = new Set(snapshot.groups.map((g) => g.id));
  for (const [googleId, group] of owned) {
    if (synced.has(googleId)) continue;
    if (await directory.deleteGroup(group.id, undefined, 'google')) counts.groupsDeleted++;
  }
}

export function emptyCounts(): SyncCounts {
  return {
    groups: 0,
    users: 0,
    usersCreated: 0,
    usersUpdated: 0,
    usersDeprovisioned: 0,
    groupsCreated: 0,
    groupsUpdated: 0,
    groupsDeleted: 0,
    membersAdded: 0,
    membersRemoved: 0,
    skipped: 0,
  };
}

export { MAX_WARNINGS };
