/**
 * List reads end to end over HTTP (RFC 7644 §3.4.2): paging with startIndex/count, the server's maximum
 * page size, stable order, sorting, `attributes`/`excludedAttributes` on lists and single reads,
 * POST .search, and the same handlers at / and /scim/v2 with meta.location following the prefix used.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ENTERPRISE, GROUP_SCHEMA, startBridge, TestBridge, USER_SCHEMA, userBody, STORES } from '../helpers/bridge';

const LIST_RESPONSE = 'urn:ietf:params:scim:api:messages:2.0:ListResponse';
const ERROR = 'urn:ietf:params:scim:api:messages:2.0:Error';
const SEARCH_REQUEST = 'urn:ietf:params:scim:api:messages:2.0:SearchRequest';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

type Resource = Record<string, any>;

/** Case-insensitive ascending order, as SCIM sorts caseExact=false strings. */
const byFolded = (a: string, b: string) => (a.toLowerCase() < b.toLowerCase() ? -1 : a.toLowerCase() > b.toLowerCase() ? 1 : 0);

function expectEnvelope(body: Resource, total: number, startIndex: number, items: number): void {
  expect(body.schemas).toEqual([LIST_RESPONSE]);
  expect(body.totalResults).toBe(total);
  expect(body.startIndex).toBe(startIndex);
  expect(body.itemsPerPage).toBe(items);
  for (const k of ['totalResults', 'startIndex', 'itemsPerPage']) {
    expect(typeof body[k]).toBe('number');
    expect(Number.isInteger(body[k])).toBe(true);
  }
  expect((body.Resources ?? []).length).toBe(items);
}

const NAMES = [
  'mike', 'Alpha', 'charlie', 'Bravo', 'echo', 'delta', 'Foxtrot', 'golf', 'hotel', 'India', 'juliet', 'kilo', 'Lima',
  'november', 'oscar', 'papa', 'Quebec', 'romeo', 'sierra', 'Tango', 'uniform', 'victor', 'Whiskey', 'xray', 'yankee',
];

/** displayName: the name reversed (so its order differs from userName's), none for every fifth user. */
const displayNameOf = (name: string, i: number): string | undefined => {
  if (i % 5 === 4) return undefined;
  const rev = name.toLowerCase().split('').reverse().join('');
  return i % 2 === 0 ? rev.toUpperCase() : rev[0].toUpperCase() + rev.slice(1);
};

describe.each(STORES)('lists over HTTP on %s', (store) => {
  let b: TestBridge;
  /** In creation order. */
  const created: { id: string; userName: string; displayName?: string; created: string }[] = [];
  const idOf: Record<string, string> = {};
  const groupIds: Record<string, string> = {};

  beforeAll(async () => {
    b = await startBridge({}, { store });
    for (const [i, name] of NAMES.entries()) {
      const displayName = displayNameOf(name, i);
      // Users without a displayName also come without a name: otherwise the bridge composes one from it.
      const extra: Record<string, unknown> = { title: `Title ${i}`, name: undefined };
      if (displayName !== undefined) Object.assign(extra, { displayName, name: { givenName: name, familyName: `Family${i}` } });
      if (i < 3) {
        extra.schemas = [USER_SCHEMA, ENTERPRISE];
        extra[ENTERPRISE] = { employeeNumber: `E${i}`, department: 'Ops' };
      }
      const res = await b.post('/Users', userBody(`${name}@example.com`, extra));
      if (res.status !== 201) throw new Error(`seeding ${name}: ${res.status} ${JSON.stringify(res.body)}`);
      created.push({ id: res.body.id, userName: res.body.userName, displayName, created: res.body.meta.created });
      idOf[name] = res.body.id;
      // Distinct creation times, so that meta.created orders the users strictly.
      await sleep(3);
    }
    for (const [name, members] of [
      ['Readers', ['mike', 'Alpha', 'charlie']],
      ['Writers', ['mike', 'Bravo']],
      ['Nobody', []],
    ] as const) {
      const res = await b.post('/Groups', { schemas: [GROUP_SCHEMA], displayName: name, members: members.map((m) => ({ value: idOf[m] })) });
      if (res.status !== 201) throw new Error(`seeding ${name}: ${res.status} ${JSON.stringify(res.body)}`);
      groupIds[name] = res.body.id;
    }
  });
  afterAll(() => b.stop());

  const allIds = () => created.map((u) => u.id);
  const ids = (body: Resource) => ((body.Resources ?? []) as Resource[]).map((r) => r.id as string);

  async function badParam(path: string, query: Record<string, string>) {
    const res = await b.get(path).query(query);
    expect(res.status).toBe(400);
    expect(res.body.schemas).toEqual([ERROR]);
    expect(res.body.status).toBe('400');
    return res.body as { scimType?: string; detail: string };
  }

  describe('paging', () => {
    it('when listing without parameters, then every user comes in one ListResponse with integer counts', async () => {
      const res = await b.get('/Users').expect(200);
      expect(res.headers['content-type']).toMatch(/application\/scim\+json/);
      expectEnvelope(res.body, 25, 1, 25);
      expect(ids(res.body)).toEqual(allIds());
    });

    it('when paging with count=10, then the pages hold 10, 10 and 5 users in creation order', async () => {
      const expected = allIds();
      for (const [startIndex, items] of [[1, 10], [11, 10], [21, 5]]) {
        const res = await b.get('/Users').query({ startIndex, count: 10 }).expect(200);
        expectEnvelope(res.body, 25, startIndex, items);
        expect(ids(res.body)).toEqual(expected.slice(startIndex - 1, startIndex - 1 + items));
      }
    });

    it('when walking every page with count=7, then every user comes exactly once, in a stable order', async () => {
      const seen: string[] = [];
      for (let startIndex = 1; ; startIndex += 7) {
        const res = await b.get('/Users').query({ startIndex: String(startIndex), count: '7' }).expect(200);
        expect(res.body.totalResults).toBe(25);
        expect(res.body.startIndex).toBe(startIndex);
        if (ids(res.body).length === 0) break;
        seen.push(...ids(res.body));
        if (startIndex > 100) throw new Error('paging does not end');
      }
      expect(seen).toHaveLength(25);
      expect(new Set(seen).size).toBe(25);
      expect(seen).toEqual(allIds());
      const again = await b.get('/Users').query({ startIndex: 8, count: 7 }).expect(200);
      expect(ids(again.body)).toEqual(seen.slice(7, 14));
    });

    it('when count=0, then totalResults comes without any resources', async () => {
      const res = await b.get('/Users').query({ count: 0 }).expect(200);
      expectEnvelope(res.body, 25, 1, 0);
      const filtered = await b.get('/Users').query({ count: 0, filter: 'displayName pr' }).expect(200);
      expectEnvelope(filtered.body, 20, 1, 0);
      const groups = await b.get('/Groups').query({ count: 0 }).expect(200);
      expectEnvelope(groups.body, 3, 1, 0);
    });

    it('when a filter is eq on a unique attribute, then paging treats its one match as any list does', async () => {
      // userName, id and a group's displayName are looked up by their unique index alone: the page and the total
      // must still follow startIndex and count.
      const name = created[3].userName.toUpperCase();
      for (const filter of [`userName eq "${name}"`, `id eq "${created[3].id}"`]) {
        const one = await b.get('/Users').query({ filter }).expect(200);
        expectEnvelope(one.body, 1, 1, 1);
        expect(one.body.Resources[0].id).toBe(created[3].id);
        expectEnvelope((await b.get('/Users').query({ filter, count: 0 }).expect(200)).body, 1, 1, 0);
        expectEnvelope((await b.get('/Users').query({ filter, startIndex: 2 }).expect(200)).body, 1, 2, 0);
      }
      expectEnvelope((await b.get('/Users').query({ filter: 'userName eq "nobody@example.com"' }).expect(200)).body, 0, 1, 0);
      const group = Object.keys(groupIds)[0];
      const g = await b.get('/Groups').query({ filter: `displayName eq "${group.toLowerCase()}"` }).expect(200);
      expectEnvelope(g.body, 1, 1, 1);
      expect(g.body.Resources[0].id).toBe(groupIds[group]);
      expectEnvelope((await b.get('/Groups').query({ filter: `displayName eq "${group}"`, startIndex: 2, count: 5 }).expect(200)).body, 1, 2, 0);
    });

    it('when count is negative, then it is taken as 0', async () => {
      const res = await b.get('/Users').query({ count: -5 }).expect(200);
      expectEnvelope(res.body, 25, 1, 0);
    });

    it('when startIndex is below 1, then it is taken as 1', async () => {
      for (const startIndex of ['0', '-5']) {
        const res = await b.get('/Users').query({ startIndex, count: 3 }).expect(200);
        expectEnvelope(res.body, 25, 1, 3);
        expect(ids(res.body)).toEqual(allIds().slice(0, 3));
      }
    });

    it('when startIndex is past the last user, then the page is empty but totalResults is right', async () => {
      const res = await b.get('/Users').query({ startIndex: 26, count: 10 }).expect(200);
      expectEnvelope(res.body, 25, 26, 0);
      const far = await b.get('/Users').query({ startIndex: 1000 }).expect(200);
      expectEnvelope(far.body, 25, 1000, 0);
    });

    it.each([
      ['startIndex', 'abc'],
      ['startIndex', '2.5'],
      ['startIndex', '1e3'],
      ['count', 'ten'],
      ['count', '2.5'],
      ['count', '0x10'],
    ])('when %s=%s is not an integer, then 400 invalidValue names the parameter', async (param, value) => {
      const error = await badParam('/Users', { [param]: value });
      expect(error.scimType).toBe('invalidValue');
      expect(error.detail).toContain(param);
    });

    it('when a non-integer count is sent to /Groups, then it is 400 invalidValue too', async () => {
      expect((await badParam('/Groups', { count: 'many' })).scimType).toBe('invalidValue');
    });

    it('when paging a filtered list, then totalResults counts the matches and the page holds the right ones', async () => {
      const withName = created.filter((u) => u.displayName !== undefined).map((u) => u.id);
      expect(withName).toHaveLength(20);
      const res = await b.get('/Users').query({ filter: 'displayName pr', startIndex: 6, count: 5 }).expect(200);
      expectEnvelope(res.body, 20, 6, 5);
      expect(ids(res.body)).toEqual(withName.slice(5, 10));
      const last = await b.get('/Users').query({ filter: 'displayName pr', startIndex: 19, count: 5 }).expect(200);
      expectEnvelope(last.body, 20, 19, 2);
      expect(ids(last.body)).toEqual(withName.slice(18));
    });

    it('when paging groups, then totalResults and the pages are right', async () => {
      const first = await b.get('/Groups').query({ count: 2 }).expect(200);
      expectEnvelope(first.body, 3, 1, 2);
      const second = await b.get('/Groups').query({ startIndex: 3, count: 2 }).expect(200);
      expectEnvelope(second.body, 3, 3, 1);
      expect([...ids(first.body), ...ids(second.body)]).toEqual([groupIds.Readers, groupIds.Writers, groupIds.Nobody]);
    });
  });

  describe('sorting', () => {
    const byUserName = () => [...created].sort((x, y) => byFolded(x.userName, y.userName)).map((u) => u.id);

    it('when sorting by userName ascending, then the order is case-insensitive', async () => {
      const res = await b.get('/Users').query({ sortBy: 'userName', sortOrder: 'ascending' }).expect(200);
      expectEnvelope(res.body, 25, 1, 25);
      expect(ids(res.body)).toEqual(byUserName());
      const names = (res.body.Resources as Resource[]).map((r) => r.userName);
      expect(names[0]).toBe('Alpha@example.com');
      expect(names[1]).toBe('Bravo@example.com');
      expect(names[24]).toBe('yankee@example.com');
    });

    it('when sorting by userName descending, then the order is reversed', async () => {
      const res = await b.get('/Users').query({ sortBy: 'userName', sortOrder: 'descending' }).expect(200);
      expect(ids(res.body)).toEqual(byUserName().reverse());
      expect(res.body.Resources[0].userName).toBe('yankee@example.com');
    });

    it('when sortBy is given without sortOrder, then the order is ascending', async () => {
      const res = await b.get('/Users').query({ sortBy: 'userName' }).expect(200);
      expect(ids(res.body)).toEqual(byUserName());
    });

    it('when sortBy names userName in another case or with its schema URN, then it sorts the same', async () => {
      for (const sortBy of ['USERNAME', `${USER_SCHEMA}:userName`]) {
        const res = await b.get('/Users').query({ sortBy, sortOrder: 'descending' }).expect(200);
        expect(ids(res.body)).toEqual(byUserName().reverse());
      }
    });

    it('when paging through a sorted list, then the pages join into the sorted list', async () => {
      const seen: string[] = [];
      for (let startIndex = 1; startIndex <= 25; startIndex += 6) {
        const res = await b.get('/Users').query({ sortBy: 'userName', sortOrder: 'descending', startIndex, count: 6 }).expect(200);
        seen.push(...ids(res.body));
      }
      expect(seen).toEqual(byUserName().reverse());
    });

    it('when sorting by displayName, then users are ordered by it case-insensitively, both ways', async () => {
      const expected = created
        .filter((u) => u.displayName !== undefined)
        .sort((x, y) => byFolded(x.displayName!, y.displayName!))
        .map((u) => u.id);
      const asc = await b.get('/Users').query({ filter: 'displayName pr', sortBy: 'displayName', sortOrder: 'ascending' }).expect(200);
      expect(ids(asc.body)).toEqual(expected);
      expect(asc.body.Resources[0].displayName).toBe('Ahpla');
      const desc = await b.get('/Users').query({ filter: 'displayName pr', sortBy: 'displayName', sortOrder: 'descending' }).expect(200);
      expect(ids(desc.body)).toEqual([...expected].reverse());
    });

    it('when sorting by meta.created, then ascending is creation order and descending its reverse', async () => {
      const createdTimes = created.map((u) => u.created);
      expect(new Set(createdTimes).size).toBe(25);
      const asc = await b.get('/Users').query({ sortBy: 'meta.created', sortOrder: 'ascending' }).expect(200);
      expect(ids(asc.body)).toEqual(allIds());
      const desc = await b.get('/Users').query({ sortBy: 'meta.created', sortOrder: 'descending' }).expect(200);
      expect(ids(desc.body)).toEqual([...allIds()].reverse());
      const stamps = (desc.body.Resources as Resource[]).map((r) => r.meta.created as string);
      expect(stamps).toEqual([...stamps].sort().reverse());
    });

    it('when sorting groups by displayName descending, then they come in reverse name order', async () => {
      const res = await b.get('/Groups').query({ sortBy: 'displayName', sortOrder: 'descending' }).expect(200);
      expect(ids(res.body)).toEqual([groupIds.Writers, groupIds.Readers, groupIds.Nobody]);
      const asc = await b.get('/Groups').query({ sortBy: 'displayName' }).expect(200);
      expect(ids(asc.body)).toEqual([groupIds.Nobody, groupIds.Readers, groupIds.Writers]);
    });

    it.each(['name.familyName', 'title', 'emails.value', 'nosuch'])(
      'when sortBy=%s is not an indexed attribute, then 400 invalidValue names the attributes that can be sorted on',
      async (sortBy) => {
        const error = await badParam('/Users', { sortBy });
        expect(error.scimType).toBe('invalidValue');
        expect(error.detail).toContain(sortBy);
        for (const allowed of ['userName', 'displayName', 'meta.created']) expect(error.detail).toContain(allowed);
      },
    );

    it('when /Groups is sorted on members, then 400 invalidValue names displayName as sortable', async () => {
      const error = await badParam('/Groups', { sortBy: 'members' });
      expect(error.scimType).toBe('invalidValue');
      expect(error.detail).toContain('displayName');
    });
  });

  describe('attributes and excludedAttributes', () => {
    const keys = (r: Resource) => Object.keys(r).sort();

    it('when a list asks attributes=userName,emails.value, then only schemas, id, userName and emails[].value come back', async () => {
      const res = await b.get('/Users').query({ attributes: 'userName,emails.value' }).expect(200);
      expectEnvelope(res.body, 25, 1, 25);
      for (const [i, r] of (res.body.Resources as Resource[]).entries()) {
        expect(keys(r)).toEqual(['emails', 'id', 'schemas', 'userName']);
        expect(r.id).toBe(created[i].id);
        expect(r.userName).toBe(created[i].userName);
        expect(r.emails).toEqual([{ value: created[i].userName }]);
        expect(r.schemas).toContain(USER_SCHEMA);
      }
    });

    it('when a single read asks attributes=userName,emails.value, then only those come back', async () => {
      const res = await b.get(`/Users/${idOf.mike}`).query({ attributes: 'userName,emails.value' }).expect(200);
      expect(keys(res.body)).toEqual(['emails', 'id', 'schemas', 'userName']);
      expect(res.body.emails).toEqual([{ value: 'mike@example.com' }]);
    });

    it('when attributes names a sub-attribute, then only that part of the complex attribute comes back', async () => {
      const res = await b.get(`/Users/${idOf.Alpha}`).query({ attributes: 'name.givenName' }).expect(200);
      expect(keys(res.body)).toEqual(['id', 'name', 'schemas']);
      expect(res.body.name).toEqual({ givenName: 'Alpha' });
    });

    it('when attributes are written in another case, then they are still found', async () => {
      const res = await b.get(`/Users/${idOf.Alpha}`).query({ attributes: 'USERNAME,Emails.Value' }).expect(200);
      expect(keys(res.body)).toEqual(['emails', 'id', 'schemas', 'userName']);
      expect(res.body.userName).toBe('Alpha@example.com');
    });

    it('when attributes names an enterprise attribute by URN, then only it comes back inside the extension', async () => {
      const res = await b.get(`/Users/${idOf.charlie}`).query({ attributes: `${ENTERPRISE}:employeeNumber` }).expect(200);
      expect(keys(res.body)).toEqual([ENTERPRISE, 'id', 'schemas'].sort());
      expect(res.body[ENTERPRISE]).toEqual({ employeeNumber: 'E2' });
    });

    it('when excludedAttributes=emails,name, then those are left out and the rest stays', async () => {
      const one = await b.get(`/Users/${idOf.mike}`).query({ excludedAttributes: 'emails,name' }).expect(200);
      expect(one.body.emails).toBeUndefined();
      expect(one.body.name).toBeUndefined();
      expect(one.body.userName).toBe('mike@example.com');
      expect(one.body.title).toBe('Title 0');
      expect(one.body.meta.location).toBe(`${b.url}/Users/${idOf.mike}`);
      const list = await b.get('/Users').query({ excludedAttributes: 'emails,name' }).expect(200);
      for (const r of list.body.Resources as Resource[]) {
        expect(r.emails).toBeUndefined();
        expect(r.name).toBeUndefined();
        expect(typeof r.userName).toBe('string');
      }
    });

    it('when excludedAttributes=groups, then a user in groups comes without groups', async () => {
      const full = await b.get(`/Users/${idOf.mike}`).expect(200);
      expect((full.body.groups as Resource[]).map((g) => g.value).sort()).toEqual([groupIds.Readers, groupIds.Writers].sort());
      const without = await b.get(`/Users/${idOf.mike}`).query({ excludedAttributes: 'groups' }).expect(200);
      expect(without.body.groups).toBeUndefined();
      expect(without.body.userName).toBe('mike@example.com');
      const list = await b.get('/Users').query({ excludedAttributes: 'groups', filter: 'userName eq "mike@example.com"' }).expect(200);
      expect(list.body.Resources).toHaveLength(1);
      expect(list.body.Resources[0].groups).toBeUndefined();
      expect(list.body.Resources[0].emails).toEqual(full.body.emails);
    });

    it('when attributes=userName, then groups and meta are not returned', async () => {
      const res = await b.get(`/Users/${idOf.mike}`).query({ attributes: 'userName' }).expect(200);
      expect(keys(res.body)).toEqual(['id', 'schemas', 'userName']);
    });

    it('when excludedAttributes names id, then id is returned anyway (returned=always)', async () => {
      const res = await b.get(`/Users/${idOf.mike}`).query({ excludedAttributes: 'id,userName' }).expect(200);
      expect(res.body.id).toBe(idOf.mike);
      expect(res.body.schemas).toContain(USER_SCHEMA);
      expect(res.body.userName).toBeUndefined();
    });

    it('when excludedAttributes names schemas, then schemas is returned anyway (RFC 7643 §3: every resource has it)', async () => {
      const res = await b.get(`/Users/${idOf.mike}`).query({ excludedAttributes: 'schemas,userName' }).expect(200);
      expect(res.body.schemas).toContain(USER_SCHEMA);
      expect(res.body.id).toBe(idOf.mike);
      expect(res.body.userName).toBeUndefined();
    });

    it('when a group list asks excludedAttributes=members, then no group carries members', async () => {
      const full = await b.get('/Groups').expect(200);
      const readers = (full.body.Resources as Resource[]).find((g) => g.id === groupIds.Readers)!;
      expect((readers.members as Resource[]).map((m) => m.value).sort()).toEqual([idOf.mike, idOf.Alpha, idOf.charlie].sort());
      const res = await b.get('/Groups').query({ excludedAttributes: 'members' }).expect(200);
      expectEnvelope(res.body, 3, 1, 3);
      for (const g of res.body.Resources as Resource[]) {
        expect(g.members).toBeUndefined();
        expect(typeof g.displayName).toBe('string');
        expect(g.meta.resourceType).toBe('Group');
      }
    });

    it('when a group is read with excludedAttributes=members, then it comes without members', async () => {
      const res = await b.get(`/Groups/${groupIds.Writers}`).query({ excludedAttributes: 'members' }).expect(200);
      expect(res.body.members).toBeUndefined();
      expect(res.body.displayName).toBe('Writers');
      const full = await b.get(`/Groups/${groupIds.Writers}`).expect(200);
      expect((full.body.members as Resource[]).map((m) => m.value).sort()).toEqual([idOf.mike, idOf.Bravo].sort());
    });

    it('when a group has no members, then members is left out (unassigned, RFC 7643 §2.5), also when asked for by attributes=members', async () => {
      const one = await b.get(`/Groups/${groupIds.Nobody}`).expect(200);
      expect(one.body).not.toHaveProperty('members');
      expect(one.body.displayName).toBe('Nobody');
      const listed = (await b.get('/Groups').expect(200)).body.Resources as Resource[];
      expect(listed.find((g) => g.id === groupIds.Nobody)).not.toHaveProperty('members');
      expect(listed.find((g) => g.id === groupIds.Writers)!.members).toHaveLength(2);
      const asked = await b.get(`/Groups/${groupIds.Nobody}`).query({ attributes: 'members' }).expect(200);
      expect(keys(asked.body)).toEqual(['id', 'schemas']);
      const searched = await b.get('/Groups').query({ filter: 'not (members pr)', attributes: 'members' }).expect(200);
      expect(searched.body.Resources).toEqual([{ schemas: [GROUP_SCHEMA], id: groupIds.Nobody }]);
    });

    it('when a user belongs to no group, then groups is left out, also when asked for by attributes=groups', async () => {
      const one = await b.get(`/Users/${idOf.delta}`).expect(200);
      expect(one.body).not.toHaveProperty('groups');
      expect(one.body.userName).toBe('delta@example.com');
      const asked = await b.get(`/Users/${idOf.delta}`).query({ attributes: 'groups' }).expect(200);
      expect(keys(asked.body)).toEqual(['id', 'schemas']);
      const mike = await b.get(`/Users/${idOf.mike}`).query({ attributes: 'groups' }).expect(200);
      expect(keys(mike.body)).toEqual(['groups', 'id', 'schemas']);
      const listed = (await b.get('/Users').query({ attributes: 'userName,groups' }).expect(200)).body.Resources as Resource[];
      expect(listed.filter((u) => u.groups !== undefined).map((u) => u.userName).sort()).toEqual(['Alpha@example.com', 'Bravo@example.com', 'charlie@example.com', 'mike@example.com']);
    });

    it('when groups are read with attributes=displayName or members.value, then only those come back', async () => {
      const names = await b.get('/Groups').query({ attributes: 'displayName' }).expect(200);
      for (const g of names.body.Resources as Resource[]) expect(keys(g)).toEqual(['displayName', 'id', 'schemas']);
      const values = await b.get(`/Groups/${groupIds.Readers}`).query({ attributes: 'members.value' }).expect(200);
      expect(keys(values.body)).toEqual(['id', 'members', 'schemas']);
      for (const m of values.body.members as Resource[]) expect(Object.keys(m)).toEqual(['value']);
      expect(values.body.members).toHaveLength(3);
    });
  });

  describe('POST .search', () => {
    it('when /Users/.search gets a JSON body, then it filters, sorts, pages and projects like GET', async () => {
      const expected = created
        .filter((u) => u.displayName !== undefined)
        .sort((x, y) => byFolded(y.userName, x.userName))
        .slice(1, 4);
      const res = await b
        .post('/Users/.search', {
          schemas: [SEARCH_REQUEST],
          filter: 'displayName pr',
          sortBy: 'userName',
          sortOrder: 'descending',
          startIndex: 2,
          count: 3,
          attributes: ['userName'],
        })
        .expect(200);
      expect(res.headers['content-type']).toMatch(/application\/scim\+json/);
      expectEnvelope(res.body, 20, 2, 3);
      expect(ids(res.body)).toEqual(expected.map((u) => u.id));
      for (const r of res.body.Resources as Resource[]) expect(Object.keys(r).sort()).toEqual(['id', 'schemas', 'userName']);
    });

    it('when /Groups/.search asks excludedAttributes=["members"], then the groups come without members', async () => {
      const res = await b
        .post('/Groups/.search', { schemas: [SEARCH_REQUEST], filter: `members eq "${idOf.mike}"`, excludedAttributes: ['members'] })
        .expect(200);
      expectEnvelope(res.body, 2, 1, 2);
      expect(ids(res.body).sort()).toEqual([groupIds.Readers, groupIds.Writers].sort());
      for (const g of res.body.Resources as Resource[]) expect(g.members).toBeUndefined();
    });

    it('when .search is posted under /scim/v2 with count 0, then totalResults comes without resources', async () => {
      const res = await b.post('/scim/v2/Users/.search', { schemas: [SEARCH_REQUEST], count: 0 }).expect(200);
      expectEnvelope(res.body, 25, 1, 0);
    });

    it.each(['/.search', '/scim/v2/.search'])('when %s is posted (a search across resource types), then 501 with a SCIM error naming the searches there are', async (path) => {
      const res = await b.post(path, { schemas: [SEARCH_REQUEST], filter: 'userName eq "mike@example.com"' }).expect(501);
      expect(res.headers['content-type']).toMatch(/application\/scim\+json/);
      expect(res.body.schemas).toEqual([ERROR]);
      expect(res.body.status).toBe('501');
      expect(res.body.detail).toContain('/Users/.search');
      expect(res.body.detail).toContain('/Groups/.search');
      await b.anonymous().post(path).send({}).expect(401);
    });

    it('when .search carries a malformed filter, then 400 invalidFilter', async () => {
      const res = await b.post('/Users/.search', { schemas: [SEARCH_REQUEST], filter: 'userName xx "a"' }).expect(400);
      expect(res.body.schemas).toEqual([ERROR]);
      expect(res.body.scimType).toBe('invalidFilter');
    });
  });

  describe('the /scim/v2 prefix', () => {
    it('when users are listed at /Users and at /scim/v2/Users, then the same users come in the same order', async () => {
      const root = await b.get('/Users').query({ count: 25 }).expect(200);
      const prefixed = await b.get('/scim/v2/Users').query({ count: 25 }).expect(200);
      expect(ids(prefixed.body)).toEqual(ids(root.body));
      expect(ids(prefixed.body)).toEqual(allIds());
    });

    it('when resources are read through /scim/v2, then meta.location uses that prefix, and without it not', async () => {
      const prefixed = await b.get('/scim/v2/Users').query({ filter: 'userName eq "mike@example.com"' }).expect(200);
      expect(prefixed.body.Resources[0].meta.location).toBe(`${b.url}/scim/v2/Users/${idOf.mike}`);
      const root = await b.get('/Users').query({ filter: 'userName eq "mike@example.com"' }).expect(200);
      expect(root.body.Resources[0].meta.location).toBe(`${b.url}/Users/${idOf.mike}`);
      const one = await b.get(`/scim/v2/Users/${idOf.mike}`).expect(200);
      expect(one.body.meta.location).toBe(`${b.url}/scim/v2/Users/${idOf.mike}`);
      for (const g of one.body.groups as Resource[]) expect(g.$ref).toBe(`${b.url}/scim/v2/Groups/${g.value}`);
      const group = await b.get(`/scim/v2/Groups/${groupIds.Writers}`).expect(200);
      expect(group.body.meta.location).toBe(`${b.url}/scim/v2/Groups/${groupIds.Writers}`);
      for (const m of group.body.members as Resource[]) expect(m.$ref).toBe(`${b.url}/scim/v2/Users/${m.value}`);
      const rootGroup = await b.get(`/Groups/${groupIds.Writers}`).expect(200);
      expect(rootGroup.body.meta.location).toBe(`${b.url}/Groups/${groupIds.Writers}`);
    });

    it('when a user is created under /scim/v2, then Location uses the prefix and the user is found at the root too', async () => {
      const res = await b.post('/scim/v2/Users', userBody('prefix.user@example.com')).expect(201);
      try {
        expect(res.headers.location).toBe(`${b.url}/scim/v2/Users/${res.body.id}`);
        expect(res.body.meta.location).toBe(`${b.url}/scim/v2/Users/${res.body.id}`);
        const root = await b.get(`/Users/${res.body.id}`).expect(200);
        expect(root.body.userName).toBe('prefix.user@example.com');
        expect(root.body.meta.location).toBe(`${b.url}/Users/${res.body.id}`);
      } finally {
        await b.delete(`/Users/${res.body.id}`).expect(204);
      }
    });
  });
});

describe.each(STORES)('lists beyond the server maximum page size on %s', (store) => {
  const TOTAL = 1005;
  let b: TestBridge;
  const all = new Set<string>();

  // The page-size cap is about paging, not durability: a database in memory-backed /dev/shm (when there is
  // one) keeps the 1,005 commits of the seed from dominating the run time.
  const dir = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'scim-lists-'));

  beforeAll(async () => {
    b = await startBridge(store === 'sqlite' ? { SCIM_BRIDGE_DATABASE_URL: `sqlite:${join(dir, 'bridge.db')}` } : {}, { store });
    const names = Array.from({ length: TOTAL }, (_, i) => `bulk.${String(i).padStart(4, '0')}@example.com`);
    const workers = Array.from({ length: 4 }, async () => {
      for (let name = names.pop(); name !== undefined; name = names.pop()) {
        const res = await b.post('/Users', userBody(name));
        if (res.status !== 201) throw new Error(`seeding ${name}: ${res.status} ${JSON.stringify(res.body)}`);
        all.add(res.body.id);
      }
    });
    await Promise.all(workers);
  }, store === 'postgres' ? 180_000 : 60_000); // PostgreSQL commits each of the 1,005 seeding POSTs on its own
  afterAll(async () => {
    await b.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('when count is above the server maximum, then the page is capped at the maxResults /ServiceProviderConfig states', async () => {
    const spc = await b.get('/ServiceProviderConfig').expect(200);
    const max = spc.body.filter.maxResults;
    expect(max).toBe(1000);
    const res = await b.get('/Users').query({ count: 5000 }).expect(200);
    expectEnvelope(res.body, TOTAL, 1, max);
    const rest = await b.get('/Users').query({ startIndex: 1001, count: 5000 }).expect(200);
    expectEnvelope(rest.body, TOTAL, 1001, TOTAL - max);
  });

  it('when no count is given, then the page is at most the maximum and totalResults counts all users', async () => {
    const res = await b.get('/Users').expect(200);
    expect(res.body.totalResults).toBe(TOTAL);
    expect(res.body.itemsPerPage).toBe(res.body.Resources.length);
    expect(res.body.itemsPerPage).toBeGreaterThan(0);
    expect(res.body.itemsPerPage).toBeLessThanOrEqual(1000);
  });

  it('when walking all pages with count=250, then every user comes exactly once', async () => {
    const seen: string[] = [];
    for (let startIndex = 1; startIndex <= TOTAL; startIndex += 250) {
      const res = await b.get('/Users').query({ startIndex, count: 250, attributes: 'userName' }).expect(200);
      expect(res.body.totalResults).toBe(TOTAL);
      seen.push(...(res.body.Resources as Resource[]).map((r) => r.id as string));
    }
    expect(seen).toHaveLength(TOTAL);
    expect(new Set(seen)).toEqual(all);
  });

  it('when walking all pages sorted by userName descending, then every user comes exactly once, in order', async () => {
    const names: string[] = [];
    for (let startIndex = 1; startIndex <= TOTAL; startIndex += 400) {
      const res = await b.get('/Users').query({ startIndex, count: 400, sortBy: 'userName', sortOrder: 'descending', attributes: 'userName' }).expect(200);
      names.push(...(res.body.Resources as Resource[]).map((r) => r.userName as string));
    }
    expect(names).toHaveLength(TOTAL);
    expect(names).toEqual([...names].sort().reverse());
    expect(new Set(names).size).toBe(TOTAL);
  });
});
