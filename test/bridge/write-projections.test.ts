/**
 * Every write (POST, PUT, PATCH of Users and Groups) with every projection parameter: the write answers
 * with its status, the resource's Location and ETag taken from the record, and the body projected as asked.
 * A projection that drops meta (or keeps only id) must not break the answer after the write is committed:
 * the IdP would retry a create that succeeded and meet a 409.
 */
import { GROUP_SCHEMA, patchBody, startBridge, TestBridge, userBody } from '../helpers/bridge';

type Json = Record<string, any>;
type Kind = 'Users' | 'Groups';
type Write = 'POST' | 'PUT' | 'PATCH';

describe('writes with attributes / excludedAttributes', () => {
  let b: TestBridge;
  let n = 0;
  beforeAll(async () => {
    b = await startBridge();
  });
  afterAll(() => b.stop());

  const newUser = async (): Promise<Json> => (await b.post('/Users', userBody(`projected.writer${++n}@example.com`)).expect(201)).body;
  const newGroup = async (members: string[] = []): Promise<Json> =>
    (await b.post('/Groups', { schemas: [GROUP_SCHEMA], displayName: `Projected Writers ${++n}`, members: members.map((value) => ({ value })) }).expect(201)).body;

  /** The name attribute of each kind: userName for Users, displayName for Groups. */
  const nameOf: Record<Kind, string> = { Users: 'userName', Groups: 'displayName' };
  /** The attribute that lists the other side of a membership: groups of a User, members of a Group. */
  const linksOf: Record<Kind, string> = { Users: 'groups', Groups: 'members' };

  /**
   * Runs one write of `kind` under `prefix` with the query `query`; the resource written belongs to a group
   * (a user) or has a member (a group), so that groups/members are there to be projected, except a new user.
   * Returns the response, the id written and its expected name.
   */
  async function write(kind: Kind, how: Write, query: string, prefix = ''): Promise<{ res: Json; id: string; name: string }> {
    const url = (path: string) => `${prefix}${path}${query ? `?${query}` : ''}`;
    if (kind === 'Users') {
      if (how === 'POST') {
        const name = `projected.writer${++n}@example.com`;
        const res = await b.post(url('/Users'), userBody(name));
        return { res, id: res.body?.id, name };
      }
      const u = await newUser();
      await newGroup([u.id]);
      const res =
        how === 'PUT'
          ? await b.put(url(`/Users/${u.id}`), userBody(u.userName, { title: 'Put' }))
          : await b.patch(url(`/Users/${u.id}`), patchBody({ op: 'replace', path: 'title', value: 'Patched' }));
      return { res, id: u.id, name: u.userName };
    }
    const member = await newUser();
    if (how === 'POST') {
      const name = `Projected Writers ${++n}`;
      const res = await b.post(url('/Groups'), { schemas: [GROUP_SCHEMA], displayName: name, members: [{ value: member.id }] });
      return { res, id: res.body?.id, name };
    }
    const g = await newGroup([member.id]);
    const name = `${g.displayName} renamed`;
    const res =
      how === 'PUT'
        ? await b.put(url(`/Groups/${g.id}`), { schemas: [GROUP_SCHEMA], displayName: name, members: [{ value: member.id }] })
        : await b.patch(url(`/Groups/${g.id}`), patchBody({ op: 'replace', path: 'displayName', value: name }));
    return { res, id: g.id, name };
  }

  const projections: [string, (kind: Kind) => string, (body: Json, kind: Kind, name: string, how: Write) => void][] = [
    ['attributes=id', () => 'attributes=id', (body) => expect(Object.keys(body).sort()).toEqual(['id', 'schemas'])],
    [
      'attributes=<name>',
      (kind) => `attributes=${nameOf[kind]}`,
      (body, kind, name) => {
        expect(Object.keys(body).sort()).toEqual(['id', nameOf[kind], 'schemas'].sort());
        expect(body[nameOf[kind]]).toBe(name);
      },
    ],
    [
      'excludedAttributes=meta',
      () => 'excludedAttributes=meta',
      (body, kind, name, how) => {
        expect(body).not.toHaveProperty('meta');
        expect(body[nameOf[kind]]).toBe(name);
        // A new user belongs to no group yet; every other resource written here has a link to show.
        if (!(kind === 'Users' && how === 'POST')) expect(body[linksOf[kind]]).toHaveLength(1);
      },
    ],
    [
      'excludedAttributes=<groups|members>',
      (kind) => `excludedAttributes=${linksOf[kind]}`,
      (body, kind, name) => {
        expect(body).not.toHaveProperty(linksOf[kind]);
        expect(body[nameOf[kind]]).toBe(name);
        expect(body.meta.location).toMatch(new RegExp(`/${kind}/${body.id}$`));
      },
    ],
    [
      'excludedAttributes=meta,<groups|members>',
      (kind) => `excludedAttributes=meta,${linksOf[kind]}`,
      (body, kind, name) => {
        expect(body).not.toHaveProperty('meta');
        expect(body).not.toHaveProperty(linksOf[kind]);
        expect(body[nameOf[kind]]).toBe(name);
      },
    ],
    [
      'attributes=meta.version',
      () => 'attributes=meta.version',
      (body) => {
        expect(Object.keys(body).sort()).toEqual(['id', 'meta', 'schemas']);
        expect(Object.keys(body.meta)).toEqual(['version']);
      },
    ],
  ];

  const cases: [Kind, Write, string, (kind: Kind) => string, (body: Json, kind: Kind, name: string, how: Write) => void][] = [];
  for (const kind of ['Users', 'Groups'] as const) {
    for (const how of ['POST', 'PUT', 'PATCH'] as const) for (const [label, query, check] of projections) cases.push([kind, how, label, query, check]);
  }

  it.each(cases)(
    'when %s are written by %s with %s, then the status, Location, ETag and projected body are right, and the write is there once',
    async (kind, how, _label, query, check) => {
      const { res, id, name } = await write(kind, how, query(kind));
      expect(res.status).toBe(how === 'POST' ? 201 : 200);
      expect(res.headers['content-type']).toMatch(/^application\/scim\+json/);
      expect(res.headers.location).toBe(`${b.url}/${kind}/${id}`);
      const stored = (await b.get(`/${kind}/${id}`).expect(200)).body;
      expect(stored[nameOf[kind]]).toBe(name);
      expect(res.headers.etag).toBe(stored.meta.version);
      expect(res.body.id).toBe(id);
      expect(res.body.schemas).toEqual(stored.schemas);
      check(res.body, kind, name, how);
      if (how === 'POST') {
        const found = await b.get(`/${kind}`).query({ filter: `${nameOf[kind]} eq "${name}"` }).expect(200);
        expect(found.body.totalResults).toBe(1);
      }
    },
  );

  it.each(['Users', 'Groups'] as const)('when %s are written under /scim/v2 with excludedAttributes=meta, then Location keeps the prefix', async (kind) => {
    for (const how of ['POST', 'PUT', 'PATCH'] as const) {
      const { res, id } = await write(kind, how, 'excludedAttributes=meta', '/scim/v2');
      expect(res.status).toBe(how === 'POST' ? 201 : 200);
      expect(res.headers.location).toBe(`${b.url}/scim/v2/${kind}/${id}`);
    }
  });

  it('when a group is written with no members, or a user that belongs to no group, then members/groups are left out (unassigned), also with attributes=members/groups', async () => {
    const empty = { schemas: [GROUP_SCHEMA], displayName: `Projected Empty ${++n}`, members: [] };
    const posted = await b.post('/Groups', empty).expect(201);
    expect(posted.body).not.toHaveProperty('members');
    const asked = await b.post('/Groups?attributes=members', { ...empty, displayName: `Projected Empty ${++n}` }).expect(201);
    expect(Object.keys(asked.body).sort()).toEqual(['id', 'schemas']);
    expect(asked.headers.location).toBe(`${b.url}/Groups/${asked.body.id}`);
    const put = await b.put(`/Groups/${posted.body.id}?attributes=displayName,members`, { ...empty, displayName: `${empty.displayName} 2` }).expect(200);
    expect(Object.keys(put.body).sort()).toEqual(['displayName', 'id', 'schemas']);
    const user = await b.post('/Users?attributes=groups', userBody(`projected.loner${++n}@example.com`)).expect(201);
    expect(Object.keys(user.body).sort()).toEqual(['id', 'schemas']);
    const full = await b.patch(`/Users/${user.body.id}`, patchBody({ op: 'replace', path: 'title', value: 'Alone' })).expect(200);
    expect(full.body).not.toHaveProperty('groups');
    expect(full.body.title).toBe('Alone');
  });

  it('when a group is patched without attributes or excludedAttributes, then 204 still, with the new ETag', async () => {
    const g = await newGroup();
    const res = await b.patch(`/Groups/${g.id}`, patchBody({ op: 'replace', path: 'displayName', value: `${g.displayName} 2` })).expect(204);
    expect(res.headers.etag).toBe((await b.get(`/Groups/${g.id}`).expect(200)).body.meta.version);
  });
});
