/**
 * Microsoft Entra ID's sequence against the real bridge (from Microsoft's SCIM documentation and its
 * validator's requests): a test connection filtering on a random GUID, lookups by userName and by an unquoted
 * externalId, capitalised ops, "False" strings, emails[type eq "work"].value, dotted no-path keys, manager as
 * a list, groups with Microsoft's extra schema and an externalId, member removal by value list, adds re-sent,
 * excludedAttributes=members, and `id eq "g" and members eq "u"` membership checks.
 */
import { randomUUID } from 'node:crypto';
import { ENTERPRISE, PATCH_OP, startBridge, TestBridge, GROUP_SCHEMA, USER_SCHEMA, STORES } from '../helpers/bridge';

type Json = Record<string, any>;
const ADSCIM_GROUP = 'http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group';

describe.each(STORES)('Entra ID on %s', (store) => {
  let b: TestBridge;
  beforeAll(async () => {
    b = await startBridge({}, { store });
  });
  afterAll(() => b.stop());

  const entra = {
    get: (path: string) => b.get(path).set('ADSCIMVersion', '6.0'),
    post: (path: string, body: unknown) => b.post(path, body).set('ADSCIMVersion', '6.0'),
    patch: (path: string, ...ops: Json[]) => b.patch(path, { schemas: [PATCH_OP], Operations: ops }).set('ADSCIMVersion', '6.0'),
    delete: (path: string) => b.delete(path).set('ADSCIMVersion', '6.0'),
  };
  const q = (f: string) => `filter=${encodeURIComponent(f)}`;

  it('when Entra tests the connection with a random GUID, then 200 with an empty list', async () => {
    const res = (await entra.get(`/Users?${q(`userName eq "${randomUUID()}"`)}`).expect(200)).body;
    expect(res).toMatchObject({ totalResults: 0, Resources: [] });
  });

  it('when Entra provisions and updates a user the way it does, then every change lands', async () => {
    expect((await entra.get(`/Users?${q('externalId eq jyoung')}`).expect(200)).body.totalResults).toBe(0);
    const manager = (await entra.post('/Users', { schemas: [USER_SCHEMA], userName: 'boss@example.com', externalId: 'boss', active: true }).expect(201)).body;
    const u = (
      await entra
        .post('/Users', {
          schemas: [USER_SCHEMA, ENTERPRISE],
          externalId: 'jyoung',
          userName: 'Test_User_ab6490ee@example.com',
          active: true,
          displayName: 'Young, Jane',
          emails: [{ primary: true, type: 'work', value: 'Test_User_ab6490ee@example.com' }],
          name: { formatted: 'Jane Young', familyName: 'Young', givenName: 'Jane' },
          [ENTERPRISE]: { department: 'Sales' },
        })
        .expect(201)
    ).body;
    expect((await entra.get(`/Users?${q('externalId eq jyoung')}`).expect(200)).body.Resources.map((r: Json) => r.id)).toEqual([u.id]);
    expect((await entra.get(`/Users?${q('userName eq "test_user_ab6490ee@example.com"')}`).expect(200)).body.totalResults).toBe(1);
    await b.join(u.id);
    const out = (
      await entra
        .patch(
          `/Users/${u.id}`,
          { op: 'Replace', path: 'emails[type eq "work"].value', value: 'jane.young@example.com' },
          { op: 'Replace', value: { 'name.givenName': 'Janet', [`${ENTERPRISE}:employeeNumber`]: '42' } },
          { op: 'Add', path: `${ENTERPRISE}:manager`, value: [{ $ref: null, value: manager.id }] },
        )
        .expect(200)
    ).body;
    expect(out.emails[0].value).toBe('jane.young@example.com');
    expect(out.name.givenName).toBe('Janet');
    expect(out[ENTERPRISE]).toMatchObject({ department: 'Sales', employeeNumber: '42', manager: { value: manager.id } });
    const off = (await entra.patch(`/Users/${u.id}`, { op: 'Replace', path: 'active', value: 'False' }).expect(200)).body;
    expect(off.active).toBe(false);
    await entra.delete(`/Users/${u.id}`).expect(204);
    await entra.get(`/Users/${u.id}`).expect(404);
  });

  it('when Entra disables a user who has not joined yet and enables it again, then the same id is revoked, then invited again', async () => {
    const u = (await entra.post('/Users', { schemas: [USER_SCHEMA], userName: 'not.joined@example.com', externalId: 'notjoined', active: true }).expect(201)).body;
    const off = (await entra.patch(`/Users/${u.id}`, { op: 'Replace', path: 'active', value: 'False' }).expect(200)).body;
    expect(off).toMatchObject({ id: u.id, active: false });
    expect((await entra.get(`/Users?${q('externalId eq notjoined')}`).expect(200)).body.Resources.map((r: Json) => r.id)).toEqual([u.id]);
    expect((await b.app.get(`/api/v1/users/${u.id}`).expect(200)).body.status).toBe('revoked');
    const on = (await entra.patch(`/Users/${u.id}`, { op: 'Replace', path: 'active', value: 'True' }).expect(200)).body;
    expect(on).toMatchObject({ id: u.id, active: true });
    expect((await b.app.get(`/api/v1/users/${u.id}`).expect(200)).body.status).toBe('invited');
  });

  it('when Entra manages a group, then its schema, member value lists, re-sent adds, membership checks and excludedAttributes work', async () => {
    const users: Json[] = [];
    for (const n of ['g1', 'g2']) users.push((await entra.post('/Users', { schemas: [USER_SCHEMA], userName: `${n}@example.com`, active: true }).expect(201)).body);
    expect((await entra.get(`/Groups?${q('displayName eq "Entra Group"')}&excludedAttributes=members`).expect(200)).body.totalResults).toBe(0);
    const g = (
      await entra.post('/Groups', { schemas: [GROUP_SCHEMA, ADSCIM_GROUP], externalId: 'e2d8d5b0', displayName: 'Entra Group', members: [] }).expect(201)
    ).body;
    const add = { op: 'Add', path: 'members', value: users.map((u) => ({ value: u.id })) };
    await entra.patch(`/Groups/${g.id}`, add).expect(204);
    await entra.patch(`/Groups/${g.id}`, add).expect(204);
    const check = (uid: string) => entra.get(`/Groups?${q(`id eq "${g.id}" and members eq "${uid}"`)}&excludedAttributes=members`).expect(200);
    const hit = (await check(users[0].id)).body;
    expect(hit.totalResults).toBe(1);
    expect(hit.Resources[0]).not.toHaveProperty('members');
    await entra.patch(`/Groups/${g.id}`, { op: 'Remove', path: 'members', value: [{ value: users[0].id }] }).expect(204);
    expect((await check(users[0].id)).body.totalResults).toBe(0);
    expect((await check(users[1].id)).body.totalResults).toBe(1);
    const read = (await entra.get(`/Groups/${g.id}?excludedAttributes=members`).expect(200)).body;
    expect(read).toMatchObject({ id: g.id, displayName: 'Entra Group', externalId: 'e2d8d5b0' });
    expect(read).not.toHaveProperty('members');
    await entra.patch(`/Groups/${g.id}`, { op: 'Replace', path: 'displayName', value: 'Entra Group 2' }).expect(204);
    await entra.delete(`/Groups/${g.id}`).expect(204);
  });
});
