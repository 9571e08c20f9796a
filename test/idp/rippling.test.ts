/**
 * Rippling's habits against the real bridge: lookups by `emails[primary eq true].value`, groups edited by PUT,
 * and its whole sequence.
 */
import { PATCH_OP, patchBody, startBridge, TestBridge, GROUP_SCHEMA, USER_SCHEMA, STORES } from '../helpers/bridge';
import { runSequence } from './sequence';

type Json = Record<string, any>;

describe.each(STORES)('Rippling on %s', (store) => {
  let b: TestBridge;
  beforeAll(async () => {
    b = await startBridge({}, { store });
  });
  afterAll(() => b.stop());

  it('when Rippling looks users up by the primary email and edits groups by PUT, then both work', async () => {
    const u = (await b.post('/Users', { schemas: [USER_SCHEMA], userName: 'rip.user@example.com', emails: [{ value: 'rip.user@example.com', primary: true, type: 'work' }] }).expect(201)).body;
    const lookup = await b.get('/Users').query({ filter: 'emails[primary eq true].value eq "rip.user@example.com"' }).expect(200);
    expect(lookup.body.Resources.map((r: Json) => r.id)).toEqual([u.id]);
    const g = (await b.post('/Groups', { schemas: [GROUP_SCHEMA], displayName: 'Rippling Team', members: [] }).expect(201)).body;
    const put = (await b.put(`/Groups/${g.id}`, { schemas: [GROUP_SCHEMA], displayName: 'Rippling Team', members: [{ value: u.id }] }).expect(200)).body;
    expect(put.members.map((m: Json) => m.value)).toEqual([u.id]);
    await b.patch(`/Groups/${g.id}`, { schemas: [PATCH_OP], Operations: [{ op: 'remove', path: 'members', value: [{ value: u.id }] }] }).expect(204);
    // An emptied group has no members attribute at all (unassigned, RFC 7643 §2.5).
    expect((await b.get(`/Groups/${g.id}`).expect(200)).body).not.toHaveProperty('members');
  });

  it('when Rippling runs its whole sequence (primary-email lookups, groups by PUT), then every step answers as it needs', async () => {
    await runSequence(b, {
      probe: '/Users?startIndex=1&count=1',
      lookup: (email) => `/Users?filter=${encodeURIComponent(`emails[primary eq true].value eq "${email}"`)}`,
      user: (email, given, family) => ({ schemas: [USER_SCHEMA], userName: email, name: { givenName: given, familyName: family }, emails: [{ value: email, type: 'work', primary: true }], active: true }),
      setActive: async (bridge, id, _email, active) => void (await bridge.patch(`/Users/${id}`, patchBody({ op: 'replace', path: 'active', value: active })).expect(200)),
      groupWrites: 'put',
      importPage: 100,
    }, 'rippling');
  });
});
