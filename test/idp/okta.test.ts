/**
 * Okta's sequence against the real bridge (from Okta's SCIM 2.0 documentation and recorded traffic): its test
 * connection, lookups with paging parameters, a placeholder password on create, updates as GET then PUT of the
 * full object, (de)activation by PATCH value or PUT, no DELETE of users, group rename in the same PATCH as
 * member removes and adds, members replaced with a full list or [], PUT of groups, imports by pages of 100.
 */
import { PATCH_OP, startBridge, TestBridge, GROUP_SCHEMA, USER_SCHEMA, STORES } from '../helpers/bridge';

type Json = Record<string, any>;
const UA = 'Okta SCIM Client 1.0.0';

describe.each(STORES)('Okta on %s', (store) => {
  let b: TestBridge;
  beforeAll(async () => {
    b = await startBridge({}, { store });
  });
  afterAll(() => b.stop());

  const okta = {
    get: (path: string) => b.get(path).set('User-Agent', UA),
    post: (path: string, body: unknown) => b.post(path, body).set('User-Agent', UA),
    put: (path: string, body: unknown) => b.put(path, body).set('User-Agent', UA),
    patch: (path: string, ...ops: Json[]) => b.patch(path, { schemas: [PATCH_OP], Operations: ops }).set('User-Agent', UA),
  };
  const oktaUser = (login: string) => ({
    schemas: [USER_SCHEMA],
    userName: login,
    name: { givenName: login.split('.')[0], familyName: 'Okta' },
    emails: [{ primary: true, value: login, type: 'work' }],
    displayName: `${login.split('.')[0]} Okta`,
    locale: 'en-US',
    externalId: `00u${login.length}okta`,
    groups: [],
    password: 'placeholder-P@ssw0rd',
    active: true,
  });
  async function provision(login: string): Promise<Json> {
    const lookup = (await okta.get(`/Users?filter=${encodeURIComponent(`userName eq "${login}"`)}&startIndex=1&count=100`).expect(200)).body;
    expect(lookup.totalResults).toBe(0);
    const created = await okta.post('/Users', oktaUser(login)).expect(201);
    expect(created.body).not.toHaveProperty('password');
    return created.body;
  }

  it('when Okta deactivates a user who has not joined yet and then reactivates it, then the same id is revoked, then invited again', async () => {
    const u = await provision('ivy.invited@example.com');
    const off = (await okta.patch(`/Users/${u.id}`, { op: 'replace', value: { active: false } }).expect(200)).body;
    expect(off).toMatchObject({ id: u.id, active: false });
    expect((await b.app.get(`/api/v1/users/${u.id}`).expect(200)).body.status).toBe('revoked');
    const on = (await okta.patch(`/Users/${u.id}`, { op: 'replace', value: { active: true } }).expect(200)).body;
    expect(on).toMatchObject({ id: u.id, active: true });
    expect((await b.app.get(`/api/v1/users/${u.id}`).expect(200)).body.status).toBe('invited');
  });

  it('when Okta tests the connection, then GET /Users?startIndex=1&count=2 answers a list envelope', async () => {
    const res = (await okta.get('/Users?startIndex=1&count=2').expect(200)).body;
    expect(res).toMatchObject({ startIndex: 1, totalResults: expect.any(Number), itemsPerPage: expect.any(Number) });
  });

  it('when Okta creates, updates by GET then PUT, deactivates and reactivates a user, then each answers as Okta expects', async () => {
    const u = await provision('ann.example@example.com');
    expect(u).toMatchObject({ id: expect.any(String), meta: expect.objectContaining({ resourceType: 'User' }) });
    await b.join(u.id);
    const full = (await okta.get(`/Users/${u.id}`).expect(200)).body;
    const put = (await okta.put(`/Users/${u.id}`, { ...full, name: { ...full.name, familyName: 'Renamed' }, password: 'placeholder' }).expect(200)).body;
    expect(put.name.familyName).toBe('Renamed');
    expect(put).not.toHaveProperty('password');
    const off = (await okta.patch(`/Users/${u.id}`, { op: 'replace', value: { active: false } }).expect(200)).body;
    expect(off.active).toBe(false);
    const on = (await okta.patch(`/Users/${u.id}`, { op: 'replace', value: { active: true } }).expect(200)).body;
    expect(on.active).toBe(true);
    const offByPut = (await okta.put(`/Users/${u.id}`, { ...on, active: false }).expect(200)).body;
    expect(offByPut.active).toBe(false);
    expect((await okta.get(`/Users/${u.id}`).expect(200)).body.active).toBe(false);
  });

  it('when Okta pushes a group, renames it in the same PATCH as member changes, replaces members and PUTs it, then membership is exact', async () => {
    const [a, c, d] = [await provision('a.member@example.com'), await provision('c.member@example.com'), await provision('d.member@example.com')];
    const g = (await okta.post('/Groups', { schemas: [GROUP_SCHEMA], displayName: 'Okta Group', members: [{ value: a.id, display: 'a' }] }).expect(201)).body;
    await okta
      .patch(
        `/Groups/${g.id}`,
        { op: 'replace', value: { id: g.id, displayName: 'Okta Group Renamed' } },
        { op: 'remove', path: `members[value eq "${a.id}"]` },
        { op: 'add', path: 'members', value: [{ value: c.id, display: 'c' }, { value: d.id, display: 'd' }] },
      )
      .expect(204);
    const after = (await okta.get(`/Groups/${g.id}`).expect(200)).body;
    expect(after.displayName).toBe('Okta Group Renamed');
    expect(after.members.map((m: Json) => m.value).sort()).toEqual([c.id, d.id].sort());
    await okta.patch(`/Groups/${g.id}`, { op: 'replace', path: 'members', value: [{ value: a.id }] }).expect(204);
    expect((await okta.get(`/Groups/${g.id}`).expect(200)).body.members.map((m: Json) => m.value)).toEqual([a.id]);
    await okta.patch(`/Groups/${g.id}`, { op: 'replace', path: 'members', value: [] }).expect(204);
    // An emptied group has no members attribute at all (unassigned, RFC 7643 §2.5).
    expect((await okta.get(`/Groups/${g.id}`).expect(200)).body).not.toHaveProperty('members');
    const put = (await okta.put(`/Groups/${g.id}`, { schemas: [GROUP_SCHEMA], id: g.id, displayName: 'Okta Group Renamed', members: [{ value: c.id }, { value: d.id }] }).expect(200)).body;
    expect(put.members.map((m: Json) => m.value).sort()).toEqual([c.id, d.id].sort());
  });

  it('when Okta imports, then pages of 100 cover every user once', async () => {
    const total = (await okta.get('/Users?count=0').expect(200)).body.totalResults;
    const seen = new Set<string>();
    for (let start = 1; start <= total; start += 100) {
      for (const r of (await okta.get(`/Users?startIndex=${start}&count=100`).expect(200)).body.Resources) seen.add(r.id);
    }
    expect(seen.size).toBe(total);
  });
});
