/**
 * Filters become indexed SQL: for every selective filter an IdP sends, the database's own plan shows an index
 * search, never a scan of all users, on both stores (SQLite's EXPLAIN QUERY PLAN, PostgreSQL's EXPLAIN). (A filter
 * that matches most rows, such as `active eq true` or `not (…)`, is rightly a scan.)
 */
import { parseAndResolveFilter } from '../../bridge/src/scim/query';
import { readDocument, toUserWrite, toGroupWrite } from '../../bridge/src/scim/resource';
import { resourceTypes } from '../../bridge/src/scim/schemas';
import type { SqlStore } from '../../bridge/src/store/sql-store';
import { STORES, StoreKind } from '../helpers/bridge';
import { openTestStore, TestStore } from '../helpers/stores';

const USERS = 3000;
const GROUPS = 1000;

/** How each database words "an index answers this" and "every row of that table is read". */
const PLAN: Record<StoreKind, { search: RegExp; scans: (alias: string) => RegExp; memberIndex: RegExp; lastModified: RegExp; trigram: RegExp }> = {
  sqlite: {
    search: /SEARCH/,
    trigram: /SCAN texts_fts VIRTUAL TABLE INDEX/,
    scans: (alias) => new RegExp(`^SCAN ${alias}\\b`),
    memberIndex: /SEARCH m USING COVERING INDEX group_members_member \(member_id=\?\)/,
    lastModified: /users_last_modified/,
  },
  postgres: {
    search: /Index (Only )?Scan|Bitmap Index Scan/,
    trigram: /Bitmap Index Scan on \w+_trgm/,
    scans: (alias) => new RegExp(`Seq Scan on \\w+ ${alias}\\b`),
    memberIndex: /Index (Only )?Scan using group_members_member on group_members m|Bitmap Index Scan on group_members_member/,
    lastModified: /users_last_modified/,
  },
};

describe.each(STORES)('query plans on %s', (kind) => {
  let t: TestStore;
  let store: SqlStore;
  let someUserId: string;
  let startedAt: string;
  const plan = PLAN[kind];

  beforeAll(async () => {
    // 3,000 users is small enough that PostgreSQL's planner may hash-join a scan of them instead of probing by
    // id (its choice varies with the statistics of the moment); told to prefer indexes, it shows the plan it takes
    // at scale. A missing index still shows as a scan.
    t = await openTestStore(kind, { preferIndexes: true });
    store = t.store;
    // In batches of 50 at once: PostgreSQL commits each create on its own.
    const create = async (i: number) => {
      const doc = readDocument(resourceTypes.User, {
        userName: `user${i}@example.com`,
        externalId: `ext-${i}`,
        displayName: `User ${i}`,
        name: { givenName: `Given${i}`, familyName: `Family${i % 50}` },
        title: `title${i % 10}`,
        emails: [
          { value: `user${i}@example.com`, type: 'work', primary: true },
          { value: `home${i}@example.net`, type: 'home' },
        ],
      });
      const user = await store.createUser({ ...toUserWrite(doc), status: 'active' });
      if (i === 7) someUserId = user.id;
    };
    for (let i = 0; i < USERS; i += 50) await Promise.all(Array.from({ length: 50 }, (_, j) => create(i + j)));
    // Enough groups and memberships that reading them all costs more than an index (PostgreSQL's planner rightly
    // scans a table of one page).
    const userIds = (await store.listUsers({ offset: 0, limit: USERS })).items.map((u) => u.id);
    for (let g = 0; g < GROUPS; g += 50) {
      await Promise.all(
        Array.from({ length: 50 }, (_, j) => {
          const n = g + j;
          const { group } = toGroupWrite(readDocument(resourceTypes.Group, { displayName: `Group ${n}` }));
          const members = n === 3 ? [someUserId] : [userIds[(2 * n + 100) % USERS], userIds[(2 * n + 101) % USERS]];
          return store.createGroup({ ...group, managed: true }, members);
        }),
      );
    }
    startedAt = new Date().toISOString();
    await new Promise((resolve) => setTimeout(resolve, 5)); // the latecomer's timestamp is strictly later
    await store.createUser({ ...toUserWrite(readDocument(resourceTypes.User, { userName: 'latecomer@example.com' })), status: 'active' });
    await store.optimize();
  }, 120_000); // 3,000 users and 1,000 groups, one commit each
  afterAll(() => t.close());

  const userFilters = [
    'userName eq "user42@example.com"',
    'USERNAME Eq "User42@Example.com"',
    'externalId eq "ext-42"',
    'emails.value eq "home42@example.net"',
    'emails[type eq "work" and value eq "user42@example.com"]',
    'emails[type eq "work" and value co "user42@"]',
    'name.givenName eq "Given42" or userName eq "user43@example.com"',
    'displayName eq "User 42"',
    'userName sw "user42"',
    'urn:ietf:params:scim:schemas:core:2.0:User:userName eq "user42@example.com"',
    'id eq "00000000-0000-0000-0000-000000000000"',
  ];

  describe('filters on users', () => {
    it.each(userFilters)('when the filter is %s, then the plan searches an index and never scans all users', async (filter) => {
      const steps = await store.explain('users', { filter: parseAndResolveFilter(resourceTypes.User, filter), offset: 0, limit: 100 });
      expect(steps.join('\n')).toMatch(plan.search);
      expect(steps).not.toContainEqual(expect.stringMatching(plan.scans('u')));
    });

    it('when the filter asks for changes since a recent moment (incremental sync), then it searches the lastModified index', async () => {
      const filter = parseAndResolveFilter(resourceTypes.User, `meta.lastModified gt "${startedAt}"`);
      const steps = await store.explain('users', { filter, offset: 0, limit: 100 });
      expect(steps.join('\n')).toMatch(plan.lastModified);
      const page = await store.listUsers({ filter, offset: 0, limit: 100 });
      expect(page.items.map((u) => u.userName)).toEqual(['latecomer@example.com']);
    });
  });

  describe('substring filters (co, ew) on users', () => {
    it.each([
      'userName co "er42@"',
      'emails.value ew "42@example.net"',
      'displayName co "user 42"',
      'externalId co "xt-42"',
      'emails[value co "user42@"]',
      'name.familyName co "ily7"',
    ])('when the filter is %s, then the plan finds the candidates in the trigram index and never scans all users', async (filter) => {
      const steps = await store.explain('users', { filter: parseAndResolveFilter(resourceTypes.User, filter), offset: 0, limit: 100 });
      expect(steps.join('\n')).toMatch(plan.trigram);
      expect(steps).not.toContainEqual(expect.stringMatching(plan.scans('u')));
    });

    it('when a substring filter runs from the trigram index, then it finds exactly the users that contain it', async () => {
      const page = await store.listUsers({ filter: parseAndResolveFilter(resourceTypes.User, 'emails.value co "ME42@EXAMPLE."'), offset: 0, limit: 100 });
      expect(page.items.map((u) => u.userName).sort()).toEqual(['user42@example.com']);
      const ends = await store.listUsers({ filter: parseAndResolveFilter(resourceTypes.User, 'userName ew "999@example.com"'), offset: 0, limit: 100 });
      expect(ends.items.map((u) => u.userName).sort()).toEqual(['user1999@example.com', 'user2999@example.com', 'user999@example.com']);
    });

    it('when no term narrows a filter (not, or a substring shorter than a trigram), then it is checked in slices, not in one statement', async () => {
      for (const filter of ['not (title eq "title1")', 'userName co "9"']) {
        const steps = await store.explain('users', { filter: parseAndResolveFilter(resourceTypes.User, filter), offset: 0, limit: 100 });
        expect(steps.join('\n')).toMatch(/^SLICED SCAN u/);
      }
      const page = await store.listUsers({ filter: parseAndResolveFilter(resourceTypes.User, 'userName co "99"'), offset: 0, limit: 1000 });
      const expected = Array.from({ length: USERS }, (_, i) => `user${i}@example.com`).filter((name) => name.includes('99'));
      expect(page.total).toBe(expected.length);
      expect(page.items.map((u) => u.userName).sort()).toEqual(expected.sort());
    });
  });

  describe('filters on groups', () => {
    it.each(['displayName eq "group 3"', 'externalId eq "x"'])('when the filter is %s, then the plan searches an index', async (text) => {
      const steps = await store.explain('groups', { filter: parseAndResolveFilter(resourceTypes.Group, text), offset: 0, limit: 100 });
      expect(steps).not.toContainEqual(expect.stringMatching(plan.scans('g')));
    });

    it('when groups are filtered with co on displayName, then the trigram index finds them', async () => {
      const filter = parseAndResolveFilter(resourceTypes.Group, 'displayName co "oup 427"');
      expect((await store.explain('groups', { filter, offset: 0, limit: 100 })).join('\n')).toMatch(plan.trigram);
      const page = await store.listGroups({ filter, offset: 0, limit: 100 }, false);
      const expected = Array.from({ length: GROUPS }, (_, n) => `Group ${n}`).filter((name) => name.includes('oup 427'));
      expect(page.items.map((g) => g.displayName).sort()).toEqual(expected.sort());
    });

    it('when the filter is members eq "<user id>", then the membership rows are found through their member index', async () => {
      const filter = parseAndResolveFilter(resourceTypes.Group, `members eq "${someUserId}"`);
      const steps = await store.explain('groups', { filter, offset: 0, limit: 100 });
      expect(steps.join('\n')).toMatch(plan.memberIndex);
    });

    it('when groups are filtered by a member, then exactly the groups holding it are found', async () => {
      const page = await store.listGroups({ filter: parseAndResolveFilter(resourceTypes.Group, `members eq "${someUserId}"`), offset: 0, limit: 10 }, false);
      expect(page.items.map((g) => g.displayName)).toEqual(['Group 3']);
    });
  });
});

describe('ids', () => {
  it('when ids are made, then they are UUIDs (version 7) that sort by creation time', () => {
    const { timeOrderedId } = jest.requireActual('../../bridge/src/store/sql-store') as typeof import('../../bridge/src/store/sql-store');
    const ids = [0, 1, 2, 1000, 10_000_000].map((offset) => timeOrderedId(1_790_000_000_000 + offset));
    for (const id of ids) expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect([...ids].sort()).toEqual(ids);
    expect(new Set(Array.from({ length: 1000 }, () => timeOrderedId(1_790_000_000_000))).size).toBe(1000);
  });
});
