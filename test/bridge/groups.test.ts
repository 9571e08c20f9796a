/**
 * /Groups end to end: CRUD, displayName uniqueness, membership through POST, PUT and every PATCH form
 * Okta and Entra ID send, and the users' `groups` attribute that follows from it.
 */
import type { Response } from 'supertest';
import { GROUP_SCHEMA, patchBody, startBridge, TestBridge, userBody, STORES } from '../helpers/bridge';

type Json = Record<string, any>;

const ERROR_URN = 'urn:ietf:params:scim:api:messages:2.0:Error';

describe.each(STORES)('/Groups on %s', (store) => {
  let b: TestBridge;
  let n = 0;

  beforeAll(async () => {
    b = await startBridge({}, { store });
  });
  afterAll(() => b.stop());

  const unique = (prefix: string) => `${prefix} ${++n}`;

  async function newUser(extra: Record<string, unknown> = {}): Promise<Json> {
    n += 1;
    return (await b.post('/Users', userBody(`member${n}.person${n}@example.com`, extra)).expect(201)).body;
  }

  async function newUsers(count: number): Promise<Json[]> {
    const out: Json[] = [];
    for (let i = 0; i < count; i++) out.push(await newUser());
    return out;
  }

  function groupBody(displayName: string, memberIds?: string[], extra: Record<string, unknown> = {}): Json {
    const body: Json = { schemas: [GROUP_SCHEMA], displayName, ...extra };
    if (memberIds !== undefined) body.members = memberIds.map((value) => ({ value }));
    return body;
  }

  async function newGroup(memberIds: string[] = [], name = unique('Group')): Promise<Json> {
    return (await b.post('/Groups', groupBody(name, memberIds)).expect(201)).body;
  }

  async function getGroup(id: string): Promise<Json> {
    return (await b.get(`/Groups/${id}`).expect(200)).body;
  }

  async function memberIdsOf(id: string): Promise<string[]> {
    const g = await getGroup(id);
    return ((g.members ?? []) as Json[]).map((m) => m.value).sort();
  }

  async function groupIdsOfUser(userId: string): Promise<string[]> {
    const u = (await b.get(`/Users/${userId}`).expect(200)).body;
    return ((u.groups ?? []) as Json[]).map((g) => g.value).sort();
  }

  const versionOf = (etag: string) => Number(/^W\/"(\d+)"$/.exec(etag)![1]);
  const sorted = (ids: string[]) => [...ids].sort();

  /** A group PATCH that must succeed: 204, no body, an ETag that GET agrees with. */
  async function patchGroupOk(id: string, ...ops: Record<string, unknown>[]): Promise<Response> {
    const res = await b.patch(`/Groups/${id}`, patchBody(...ops));
    if (res.status !== 204) throw new Error(`PATCH expected 204, got ${res.status}: ${JSON.stringify(res.body)}`);
    expect(res.text).toBe('');
    expect(res.headers.etag).toMatch(/^W\/"\d+"$/);
    const read = await b.get(`/Groups/${id}`).expect(200);
    expect(read.headers.etag).toBe(res.headers.etag);
    expect(read.body.meta.version).toBe(res.headers.etag);
    return res;
  }

  function expectScimError(res: Response, status: number, scimType?: string): void {
    expect(res.status).toBe(status);
    expect(res.body.schemas).toEqual([ERROR_URN]);
    expect(res.body.status).toBe(String(status));
    if (scimType !== undefined) expect(res.body.scimType).toBe(scimType);
    expect(typeof res.body.detail).toBe('string');
    expect(res.body.detail.length).toBeGreaterThan(0);
  }

  // ---- CRUD ----

  describe('create, read, replace, delete', () => {
    it('when a group is created with members, then it answers 201 with the members as value, display, $ref and type', async () => {
      const ada = await newUser({ displayName: 'Ada Display' });
      const bob = await newUser();
      const name = unique('Founders');
      const res = await b.post('/Groups', groupBody(name, [ada.id, bob.id], { externalId: 'ext-founders' })).expect(201);
      expect(res.headers['content-type']).toMatch(/application\/scim\+json/);
      const g = res.body;
      expect(g.schemas).toEqual([GROUP_SCHEMA]);
      expect(g.id).toEqual(expect.any(String));
      expect(g.displayName).toBe(name);
      expect(g.externalId).toBe('ext-founders');
      expect(res.headers.location).toBe(`${b.url}/Groups/${g.id}`);
      expect(g.meta).toEqual({
        resourceType: 'Group',
        created: expect.any(String),
        lastModified: expect.any(String),
        location: `${b.url}/Groups/${g.id}`,
        version: res.headers.etag,
      });
      const expected = [
        { value: ada.id, display: 'Ada Display', $ref: `${b.url}/Users/${ada.id}`, type: 'User' },
        // Bob sent no displayName: his is composed from his name, and that is what a member shows.
        { value: bob.id, display: `${bob.name.givenName} ${bob.name.familyName}`, $ref: `${b.url}/Users/${bob.id}`, type: 'User' },
      ].sort((x, y) => x.value.localeCompare(y.value));
      const byValue = (list: Json[]) => [...list].sort((x, y) => x.value.localeCompare(y.value));
      expect(byValue(g.members)).toEqual(expected);

      const read = await b.get(`/Groups/${g.id}`).expect(200);
      expect(read.body.displayName).toBe(name);
      expect(byValue(read.body.members)).toEqual(expected);
      expect(read.headers.etag).toBe(read.body.meta.version);

      const v2 = await b.get(`/scim/v2/Groups/${g.id}`).expect(200);
      expect(v2.body.members).toHaveLength(2);
    });

    it('when a group is created without members, then it has an empty or absent member list', async () => {
      const g = (await b.post('/Groups', groupBody(unique('Empty'))).expect(201)).body;
      expect(g.members ?? []).toEqual([]);
      expect(await memberIdsOf(g.id)).toEqual([]);
    });

    it('when a group is created without displayName, then 400 invalidValue', async () => {
      const res = await b.post('/Groups', { schemas: [GROUP_SCHEMA], members: [] });
      expectScimError(res, 400, 'invalidValue');
    });

    it('when a group is created with an unknown member id, then 400 invalidValue and no group exists', async () => {
      const u = await newUser();
      const name = unique('Never Created');
      const res = await b.post('/Groups', groupBody(name, [u.id, 'no-such-member-id']));
      expectScimError(res, 400, 'invalidValue');
      expect(res.body.detail).toContain('no-such-member-id');
      const found = await b.get('/Groups').query({ filter: `displayName eq "${name}"` }).expect(200);
      expect(found.body.totalResults).toBe(0);
      expect(await groupIdsOfUser(u.id)).toEqual([]);
    });

    it('when a PUT renames a group without "members", then the name changes and the members stay', async () => {
      const users = await newUsers(2);
      const g = await newGroup(users.map((u) => u.id));
      const renamed = unique('Renamed');
      const res = await b.put(`/Groups/${g.id}`, { schemas: [GROUP_SCHEMA], displayName: renamed }).expect(200);
      expect(res.body.id).toBe(g.id);
      expect(res.body.displayName).toBe(renamed);
      expect(versionOf(res.headers.etag)).toBe(versionOf(g.meta.version) + 1);
      const read = await getGroup(g.id);
      expect(read.displayName).toBe(renamed);
      expect(await memberIdsOf(g.id)).toEqual(sorted(users.map((u) => u.id)));
      const found = await b.get('/Groups').query({ filter: `displayName eq "${renamed}"` }).expect(200);
      expect(found.body.Resources.map((r: Json) => r.id)).toEqual([g.id]);
      const old = await b.get('/Groups').query({ filter: `displayName eq "${g.displayName}"` }).expect(200);
      expect(old.body.totalResults).toBe(0);
    });

    it('when a PUT carries the full member list, then the membership becomes exactly that list', async () => {
      const [a, c, d] = await newUsers(3);
      const g = await newGroup([a.id, c.id]);
      const res = await b.put(`/Groups/${g.id}`, groupBody(g.displayName, [c.id, d.id])).expect(200);
      expect(res.body.members.map((m: Json) => m.value).sort()).toEqual(sorted([c.id, d.id]));
      expect(await memberIdsOf(g.id)).toEqual(sorted([c.id, d.id]));
      expect(await groupIdsOfUser(a.id)).toEqual([]);
      expect(await groupIdsOfUser(d.id)).toEqual([g.id]);
    });

    it('when a PUT carries "members": [], then the group is emptied', async () => {
      const users = await newUsers(2);
      const g = await newGroup(users.map((u) => u.id));
      await b.put(`/Groups/${g.id}`, groupBody(g.displayName, [])).expect(200);
      expect(await memberIdsOf(g.id)).toEqual([]);
    });

    it('when a PUT names an unknown member, then 400 invalidValue and the group is unchanged', async () => {
      const users = await newUsers(2);
      const g = await newGroup(users.map((u) => u.id));
      const before = await getGroup(g.id);
      const res = await b.put(`/Groups/${g.id}`, groupBody(unique('Put Renamed'), [users[0].id, 'missing-member']));
      expectScimError(res, 400, 'invalidValue');
      expect(await getGroup(g.id)).toEqual(before);
    });

    it('when a group is deleted, then it is 404 afterwards and its members still exist', async () => {
      const users = await newUsers(2);
      const g = await newGroup(users.map((u) => u.id));
      const del = await b.delete(`/Groups/${g.id}`);
      expect(del.status).toBe(204);
      expect(del.text).toBe('');
      expectScimError(await b.get(`/Groups/${g.id}`), 404);
      expectScimError(await b.delete(`/Groups/${g.id}`), 404);
      expectScimError(await b.patch(`/Groups/${g.id}`, patchBody({ op: 'replace', path: 'displayName', value: 'x' })), 404);
      expectScimError(await b.put(`/Groups/${g.id}`, groupBody('x')), 404);
      for (const u of users) {
        const read = await b.get(`/Users/${u.id}`).expect(200);
        expect(read.body.userName).toBe(u.userName);
        expect(read.body.groups ?? []).toEqual([]);
      }
      const found = await b.get('/Groups').query({ filter: `displayName eq "${g.displayName}"` }).expect(200);
      expect(found.body.totalResults).toBe(0);
    });

    it('when a group is deleted, then its name can be used again', async () => {
      const g = await newGroup();
      await b.delete(`/Groups/${g.id}`).expect(204);
      const again = await b.post('/Groups', groupBody(g.displayName)).expect(201);
      expect(again.body.id).not.toBe(g.id);
    });
  });

  // ---- uniqueness ----

  describe('displayName is unique case-insensitively', () => {
    it('when a second group is created with the same name in other case, then 409 uniqueness', async () => {
      const name = unique('Engineering');
      await b.post('/Groups', groupBody(name)).expect(201);
      const res = await b.post('/Groups', groupBody(name.toUpperCase()));
      expectScimError(res, 409, 'uniqueness');
      const found = await b.get('/Groups').query({ filter: `displayName eq "${name}"` }).expect(200);
      expect(found.body.totalResults).toBe(1);
    });

    it('when a group is renamed by PUT to another group\'s name in other case, then 409 and it keeps its name', async () => {
      const a = await newGroup();
      const c = await newGroup();
      const res = await b.put(`/Groups/${c.id}`, groupBody(a.displayName.toLowerCase()));
      expectScimError(res, 409, 'uniqueness');
      expect((await getGroup(c.id)).displayName).toBe(c.displayName);
    });

    it('when a group is renamed by PATCH to another group\'s name, then 409 and nothing changes', async () => {
      const u = await newUser();
      const a = await newGroup();
      const c = await newGroup([u.id]);
      const before = await getGroup(c.id);
      const res = await b.patch(
        `/Groups/${c.id}`,
        patchBody({ op: 'replace', path: 'displayName', value: a.displayName.toUpperCase() }, { op: 'remove', path: 'members' }),
      );
      expectScimError(res, 409, 'uniqueness');
      expect(await getGroup(c.id)).toEqual(before);
    });

    it('when a group is renamed to its own name in other case, then it is accepted', async () => {
      const g = await newGroup();
      await patchGroupOk(g.id, { op: 'replace', path: 'displayName', value: g.displayName.toUpperCase() });
      expect((await getGroup(g.id)).displayName).toBe(g.displayName.toUpperCase());
    });
  });

  // ---- PATCH members ----

  describe('PATCH members', () => {
    it('when members are added as a value list, then 204 with an ETag and they are members', async () => {
      const users = await newUsers(2);
      const g = await newGroup();
      const res = await patchGroupOk(g.id, { op: 'add', path: 'members', value: users.map((u) => ({ value: u.id })) });
      expect(versionOf(res.headers.etag)).toBe(versionOf(g.meta.version) + 1);
      expect(await memberIdsOf(g.id)).toEqual(sorted(users.map((u) => u.id)));
    });

    it('when an existing member is added again with a new one, then neither is duplicated', async () => {
      const [a, c] = await newUsers(2);
      const g = await newGroup([a.id]);
      await patchGroupOk(g.id, { op: 'Add', path: 'members', value: [{ value: a.id }, { value: c.id }, { value: c.id }] });
      expect(await memberIdsOf(g.id)).toEqual(sorted([a.id, c.id]));
      await patchGroupOk(g.id, { op: 'add', path: 'members', value: [{ value: a.id }] });
      const read = await getGroup(g.id);
      expect(read.members).toHaveLength(2);
      expect(await memberIdsOf(g.id)).toEqual(sorted([a.id, c.id]));
      expect(await groupIdsOfUser(a.id)).toEqual([g.id]);
    });

    it('when a member is removed by the filter members[value eq "id"], then only that member goes', async () => {
      const [a, c, d] = await newUsers(3);
      const g = await newGroup([a.id, c.id, d.id]);
      await patchGroupOk(g.id, { op: 'remove', path: `members[value eq "${c.id}"]` });
      expect(await memberIdsOf(g.id)).toEqual(sorted([a.id, d.id]));
      expect(await groupIdsOfUser(c.id)).toEqual([]);
    });

    it('when members are removed by a filter with "or", then both go', async () => {
      const [a, c, d] = await newUsers(3);
      const g = await newGroup([a.id, c.id, d.id]);
      await patchGroupOk(g.id, { op: 'Remove', path: `members[value eq "${a.id}" or value eq "${d.id}"]` });
      expect(await memberIdsOf(g.id)).toEqual([c.id]);
    });

    it('when the remove filter matches no member, then the members stay', async () => {
      const [a] = await newUsers(1);
      const g = await newGroup([a.id]);
      const res = await b.patch(`/Groups/${g.id}`, patchBody({ op: 'remove', path: 'members[value eq "not-a-member"]' }));
      expect([204, 400]).toContain(res.status);
      expect(await memberIdsOf(g.id)).toEqual([a.id]);
    });

    it('when members are removed by a value list, then only those go', async () => {
      const [a, c, d] = await newUsers(3);
      const g = await newGroup([a.id, c.id, d.id]);
      await patchGroupOk(g.id, { op: 'remove', path: 'members', value: [{ value: a.id }, { value: c.id }] });
      expect(await memberIdsOf(g.id)).toEqual([d.id]);
      expect(await groupIdsOfUser(a.id)).toEqual([]);
      expect(await groupIdsOfUser(d.id)).toEqual([g.id]);
    });

    it('when remove names "members" without a value, then every member goes', async () => {
      const users = await newUsers(3);
      const g = await newGroup(users.map((u) => u.id));
      await patchGroupOk(g.id, { op: 'remove', path: 'members' });
      expect(await memberIdsOf(g.id)).toEqual([]);
      for (const u of users) expect(await groupIdsOfUser(u.id)).toEqual([]);
    });

    it('when members are replaced with a list, then the membership is exactly that list', async () => {
      const [a, c, d] = await newUsers(3);
      const g = await newGroup([a.id, c.id]);
      await patchGroupOk(g.id, { op: 'replace', path: 'members', value: [{ value: c.id }, { value: d.id }] });
      expect(await memberIdsOf(g.id)).toEqual(sorted([c.id, d.id]));
    });

    it('when members are replaced with [], then the group is emptied and keeps its name', async () => {
      const users = await newUsers(2);
      const g = await newGroup(users.map((u) => u.id));
      await patchGroupOk(g.id, { op: 'Replace', path: 'members', value: [] });
      const read = await getGroup(g.id);
      expect(read.members ?? []).toEqual([]);
      expect(read.displayName).toBe(g.displayName);
    });

    it('when Okta sends a no-path replace {id, displayName} with member removes and adds, then all of it is applied', async () => {
      const [a, c, d, e] = await newUsers(4);
      const g = await newGroup([a.id, c.id, d.id]);
      const newName = unique('Okta Renamed');
      await patchGroupOk(
        g.id,
        { op: 'replace', value: { id: g.id, displayName: newName } },
        { op: 'remove', path: `members[value eq "${a.id}"]` },
        { op: 'remove', path: 'members', value: [{ value: c.id }] },
        { op: 'add', path: 'members', value: [{ value: e.id, display: 'ignored display' }] },
      );
      const read = await getGroup(g.id);
      expect(read.id).toBe(g.id);
      expect(read.displayName).toBe(newName);
      expect(await memberIdsOf(g.id)).toEqual(sorted([d.id, e.id]));
      expect(await groupIdsOfUser(a.id)).toEqual([]);
      expect(await groupIdsOfUser(e.id)).toEqual([g.id]);
    });

    it('when a member removed earlier in a PATCH is added back later in it, then it is a member', async () => {
      const [a, c] = await newUsers(2);
      const g = await newGroup([a.id, c.id]);
      await patchGroupOk(g.id, { op: 'remove', path: 'members' }, { op: 'add', path: 'members', value: [{ value: a.id }] });
      expect(await memberIdsOf(g.id)).toEqual([a.id]);
    });

    it('when a PATCH adds an unknown member id, then 400 invalidValue and the group is unchanged', async () => {
      const [a, c] = await newUsers(2);
      const g = await newGroup([a.id]);
      const before = await getGroup(g.id);
      const res = await b.patch(
        `/Groups/${g.id}`,
        patchBody(
          { op: 'replace', path: 'displayName', value: unique('Should Not Stick') },
          { op: 'remove', path: `members[value eq "${a.id}"]` },
          { op: 'add', path: 'members', value: [{ value: c.id }, { value: 'unknown-member-id' }] },
        ),
      );
      expectScimError(res, 400, 'invalidValue');
      expect(res.body.detail).toContain('unknown-member-id');
      expect(await getGroup(g.id)).toEqual(before);
      expect(await groupIdsOfUser(a.id)).toEqual([g.id]);
      expect(await groupIdsOfUser(c.id)).toEqual([]);
    });

    it('when a PATCH replaces members with a list holding an unknown id, then 400 and the members stay', async () => {
      const [a] = await newUsers(1);
      const g = await newGroup([a.id]);
      const before = await getGroup(g.id);
      const res = await b.patch(`/Groups/${g.id}`, patchBody({ op: 'replace', path: 'members', value: [{ value: 'ghost' }] }));
      expectScimError(res, 400, 'invalidValue');
      expect(await getGroup(g.id)).toEqual(before);
    });

    it('when a member has no value, then 400 invalidValue', async () => {
      const g = await newGroup();
      const res = await b.patch(`/Groups/${g.id}`, patchBody({ op: 'add', path: 'members', value: [{ display: 'no id' }] }));
      expectScimError(res, 400, 'invalidValue');
      expect(await memberIdsOf(g.id)).toEqual([]);
    });

    it('when a group is added as a member, then it is listed with type Group and a /Groups $ref', async () => {
      const inner = await newGroup();
      const outer = await newGroup();
      await patchGroupOk(outer.id, { op: 'add', path: 'members', value: [{ value: inner.id, type: 'Group' }] });
      const read = await getGroup(outer.id);
      expect(read.members).toEqual([{ value: inner.id, display: inner.displayName, $ref: `${b.url}/Groups/${inner.id}`, type: 'Group' }]);
    });

    it('when a group is added as a member of itself, then 400 invalidValue', async () => {
      const g = await newGroup();
      const res = await b.patch(`/Groups/${g.id}`, patchBody({ op: 'add', path: 'members', value: [{ value: g.id }] }));
      expectScimError(res, 400, 'invalidValue');
      expect(await memberIdsOf(g.id)).toEqual([]);
    });

    it('when a PATCH changes a member sub-attribute (members.display), then 400 and nothing changes', async () => {
      const [a] = await newUsers(1);
      const g = await newGroup([a.id]);
      const before = await getGroup(g.id);
      const res = await b.patch(`/Groups/${g.id}`, patchBody({ op: 'replace', path: `members[value eq "${a.id}"].display`, value: 'x' }));
      expect(res.status).toBe(400);
      expect(['invalidPath', 'mutability']).toContain(res.body.scimType);
      expect(await getGroup(g.id)).toEqual(before);
    });

    it('when a PATCH targets the group id, then 400 mutability', async () => {
      const g = await newGroup();
      const res = await b.patch(`/Groups/${g.id}`, patchBody({ op: 'replace', path: 'id', value: 'other' }));
      expectScimError(res, 400, 'mutability');
      await getGroup(g.id);
    });

    it('when PATCH has If-Match of the current version, then it is applied, and of an old one, then 412', async () => {
      const [a, c] = await newUsers(2);
      const g = await newGroup();
      const ok = await b.patch(`/Groups/${g.id}`, patchBody({ op: 'add', path: 'members', value: [{ value: a.id }] })).set('If-Match', g.meta.version);
      expect(ok.status).toBe(204);
      const stale = await b.patch(`/Groups/${g.id}`, patchBody({ op: 'add', path: 'members', value: [{ value: c.id }] })).set('If-Match', g.meta.version);
      expectScimError(stale, 412);
      expect(await memberIdsOf(g.id)).toEqual([a.id]);
    });
  });

  // ---- PATCH responses ----

  describe('PATCH responses', () => {
    it('when PATCH asks for attributes=members, then 200 with the group projected to id and members', async () => {
      const [a] = await newUsers(1);
      const g = await newGroup();
      const res = await b.patch(`/Groups/${g.id}?attributes=members`, patchBody({ op: 'add', path: 'members', value: [{ value: a.id }] }));
      expect(res.status).toBe(200);
      expect(res.headers.etag).toBe(`W/"${versionOf(g.meta.version) + 1}"`);
      expect(res.body.id).toBe(g.id);
      expect(res.body.members).toEqual([{ value: a.id, display: a.displayName, $ref: `${b.url}/Users/${a.id}`, type: 'User' }]);
      expect(res.body).not.toHaveProperty('displayName');
    });

    it('when PATCH asks for excludedAttributes=members, then 200 with the group and no members', async () => {
      const [a] = await newUsers(1);
      const g = await newGroup();
      const newName = unique('Excluded');
      const res = await b.patch(
        `/Groups/${g.id}?excludedAttributes=members`,
        patchBody({ op: 'add', path: 'members', value: [{ value: a.id }] }, { op: 'replace', path: 'displayName', value: newName }),
      );
      expect(res.status).toBe(200);
      expect(res.body.id).toBe(g.id);
      expect(res.body.displayName).toBe(newName);
      expect(res.body).not.toHaveProperty('members');
      expect(await memberIdsOf(g.id)).toEqual([a.id]);
    });
  });

  // ---- the users' side ----

  describe('the groups attribute of users', () => {
    it('when a user joins groups, then its groups attribute lists them with value, display, $ref and type', async () => {
      const u = await newUser();
      const g1 = await newGroup([u.id]);
      const g2 = await newGroup();
      await patchGroupOk(g2.id, { op: 'add', path: 'members', value: [{ value: u.id }] });
      const read = (await b.get(`/Users/${u.id}`).expect(200)).body;
      const byValue = (list: Json[]) => [...list].sort((x, y) => x.value.localeCompare(y.value));
      expect(byValue(read.groups)).toEqual(
        byValue([
          { value: g1.id, display: g1.displayName, $ref: `${b.url}/Groups/${g1.id}`, type: 'direct' },
          { value: g2.id, display: g2.displayName, $ref: `${b.url}/Groups/${g2.id}`, type: 'direct' },
        ]),
      );
      const listed = await b.get('/Users').query({ filter: `userName eq "${u.userName}"` }).expect(200);
      expect(listed.body.Resources[0].groups.map((x: Json) => x.value).sort()).toEqual(sorted([g1.id, g2.id]));
    });

    it('when a group is renamed, then the display in its members\' groups attribute follows', async () => {
      const u = await newUser();
      const g = await newGroup([u.id]);
      const renamed = unique('Display Follows');
      await patchGroupOk(g.id, { op: 'replace', path: 'displayName', value: renamed });
      const read = (await b.get(`/Users/${u.id}`).expect(200)).body;
      expect(read.groups).toEqual([{ value: g.id, display: renamed, $ref: `${b.url}/Groups/${g.id}`, type: 'direct' }]);
    });

    it('when a user leaves a group, then the group drops from its groups attribute', async () => {
      const u = await newUser();
      const keep = await newGroup([u.id]);
      const leave = await newGroup([u.id]);
      expect(await groupIdsOfUser(u.id)).toEqual(sorted([keep.id, leave.id]));
      await patchGroupOk(leave.id, { op: 'remove', path: `members[value eq "${u.id}"]` });
      expect(await groupIdsOfUser(u.id)).toEqual([keep.id]);
    });

    it('when a group is deleted, then it drops from its members\' groups attribute', async () => {
      const [a, c] = await newUsers(2);
      const keep = await newGroup([a.id]);
      const gone = await newGroup([a.id, c.id]);
      await b.delete(`/Groups/${gone.id}`).expect(204);
      expect(await groupIdsOfUser(a.id)).toEqual([keep.id]);
      expect(await groupIdsOfUser(c.id)).toEqual([]);
    });

    it('when a user is deleted, then it is removed from its groups and their version moves on', async () => {
      const [a, c] = await newUsers(2);
      const g1 = await newGroup([a.id, c.id]);
      const g2 = await newGroup([a.id]);
      await b.delete(`/Users/${a.id}`).expect(204);
      expectScimError(await b.get(`/Users/${a.id}`), 404);
      const r1 = await getGroup(g1.id);
      expect(r1.members.map((m: Json) => m.value)).toEqual([c.id]);
      expect(versionOf(r1.meta.version)).toBeGreaterThan(versionOf(g1.meta.version));
      const r2 = await getGroup(g2.id);
      expect(r2.members ?? []).toEqual([]);
      expect(versionOf(r2.meta.version)).toBeGreaterThan(versionOf(g2.meta.version));
      const byMember = await b.get('/Groups').query({ filter: `members eq "${a.id}"` }).expect(200);
      expect(byMember.body.totalResults).toBe(0);
    });

    it('when a user\'s groups attribute is excluded, then it is not returned', async () => {
      const u = await newUser();
      await newGroup([u.id]);
      const read = await b.get(`/Users/${u.id}`).query({ excludedAttributes: 'groups' }).expect(200);
      expect(read.body).not.toHaveProperty('groups');
      expect(read.body.userName).toBe(u.userName);
    });
  });

  // ---- projections ----

  describe('excludedAttributes=members', () => {
    it('when a group is read with excludedAttributes=members, then members are omitted and the rest is there', async () => {
      const users = await newUsers(2);
      const g = await newGroup(users.map((u) => u.id));
      const res = await b.get(`/Groups/${g.id}`).query({ excludedAttributes: 'members' }).expect(200);
      expect(res.body).not.toHaveProperty('members');
      expect(res.body.id).toBe(g.id);
      expect(res.body.displayName).toBe(g.displayName);
      expect(res.body.meta.version).toBe(res.headers.etag);
      const full = await getGroup(g.id);
      expect(full.members).toHaveLength(2);
    });

    it('when groups are listed with excludedAttributes=members, then no resource has members', async () => {
      const users = await newUsers(2);
      const g = await newGroup(users.map((u) => u.id));
      const res = await b.get('/Groups').query({ excludedAttributes: 'members', count: '200' }).expect(200);
      expect(res.body.totalResults).toBeGreaterThan(1);
      const resources = res.body.Resources as Json[];
      expect(resources.length).toBe(Math.min(res.body.totalResults, 200));
      expect(resources.map((r) => r.id)).toContain(g.id);
      for (const r of resources) {
        expect(r).not.toHaveProperty('members');
        expect(typeof r.displayName).toBe('string');
      }
      const withMembers = await b.get('/Groups').query({ filter: `displayName eq "${g.displayName}"` }).expect(200);
      expect(withMembers.body.Resources[0].members).toHaveLength(2);
    });

    it('when groups are filtered and listed with excludedAttributes=MEMBERS, then members are omitted', async () => {
      const users = await newUsers(1);
      const g = await newGroup(users.map((u) => u.id));
      const res = await b.get('/Groups').query({ filter: `displayName eq "${g.displayName}"`, excludedAttributes: 'MEMBERS' }).expect(200);
      expect(res.body.totalResults).toBe(1);
      expect(res.body.Resources[0].id).toBe(g.id);
      expect(res.body.Resources[0]).not.toHaveProperty('members');
    });

    it('when groups are listed with attributes=displayName, then members are omitted', async () => {
      const users = await newUsers(1);
      const g = await newGroup(users.map((u) => u.id));
      const res = await b.get('/Groups').query({ filter: `displayName eq "${g.displayName}"`, attributes: 'displayName' }).expect(200);
      expect(res.body.Resources[0]).not.toHaveProperty('members');
      expect(res.body.Resources[0].displayName).toBe(g.displayName);
      expect(res.body.Resources[0].id).toBe(g.id);
    });
  });
});
