/**
 * Google Workspace, OneLogin and Rippling: their habits replayed against the real bridge.
 * Google: a `GET /Users?count=1` probe, `active` as "true"/"false" strings. OneLogin: `+` for spaces and a
 * trailing `&` in filters, `PUT /Users/{id}?`, legacy schema URNs (also as the key of enterprise attributes).
 * Rippling: lookups by `emails[primary eq true].value`, groups edited by PUT.
 */
import { ENTERPRISE, PATCH_OP, startBridge, TestBridge, GROUP_SCHEMA, USER_SCHEMA } from '../helpers/bridge';

type Json = Record<string, any>;

describe('Google Workspace, OneLogin and Rippling', () => {
  let b: TestBridge;
  beforeAll(async () => {
    b = await startBridge();
  });
  afterAll(() => b.stop());

  it('when Google probes with count=1 and sends active as strings, then it gets a list and the user follows the strings', async () => {
    expect((await b.get('/Users?count=1').expect(200)).body.startIndex).toBe(1);
    const u = (await b.post('/Users', { schemas: [USER_SCHEMA], userName: 'g.suite@example.com', name: { givenName: 'G', familyName: 'Suite' }, active: 'true' }).expect(201)).body;
    expect(u.active).toBe(true);
    await b.join(u.id);
    const off = (await b.put(`/Users/${u.id}`, { schemas: [USER_SCHEMA], userName: 'g.suite@example.com', active: 'false' }).expect(200)).body;
    expect(off.active).toBe(false);
  });

  it('when OneLogin sends + for spaces, a trailing & and ?, and legacy URNs, then they are understood', async () => {
    const created = (
      await b
        .post('/Users', {
          schemas: ['urn:scim:schemas:core:2.0', 'urn:scim:schemas:extension:enterprise:2.0'],
          userName: 'one.login@example.com',
          name: { givenName: 'One', familyName: 'Login' },
          'urn:scim:schemas:extension:enterprise:2.0': { department: 'IT' },
        })
        .expect(201)
    ).body;
    expect(created[ENTERPRISE]).toEqual({ department: 'IT' });
    const found = await b.get('/Users?filter=userName+eq+%22one.login%40example.com%22&').expect(200);
    expect(found.body.Resources.map((r: Json) => r.id)).toEqual([created.id]);
    const put = (await b.put(`/Users/${created.id}?`, { schemas: ['urn:scim:schemas:core:2.0'], userName: 'one.login@example.com', title: 'Admin' }).expect(200)).body;
    expect(put.title).toBe('Admin');
  });

  it('when Rippling looks users up by the primary email and edits groups by PUT, then both work', async () => {
    const u = (await b.post('/Users', { schemas: [USER_SCHEMA], userName: 'rip.user@example.com', emails: [{ value: 'rip.user@example.com', primary: true, type: 'work' }] }).expect(201)).body;
    const lookup = await b.get('/Users').query({ filter: 'emails[primary eq true].value eq "rip.user@example.com"' }).expect(200);
    expect(lookup.body.Resources.map((r: Json) => r.id)).toEqual([u.id]);
    const g = (await b.post('/Groups', { schemas: [GROUP_SCHEMA], displayName: 'Rippling Team', members: [] }).expect(201)).body;
    const put = (await b.put(`/Groups/${g.id}`, { schemas: [GROUP_SCHEMA], displayName: 'Rippling Team', members: [{ value: u.id }] }).expect(200)).body;
    expect(put.members.map((m: Json) => m.value)).toEqual([u.id]);
    await b.patch(`/Groups/${g.id}`, { schemas: [PATCH_OP], Operations: [{ op: 'remove', path: 'members', value: [{ value: u.id }] }] }).expect(204);
    expect((await b.get(`/Groups/${g.id}`).expect(200)).body.members).toEqual([]);
  });
});
