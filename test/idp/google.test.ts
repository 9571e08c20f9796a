/**
 * Google Workspace's habits against the real bridge: a `GET /Users?count=1` probe, `active` as the strings
 * "true"/"false", and its whole sequence.
 */
import { patchBody, startBridge, TestBridge, USER_SCHEMA, STORES } from '../helpers/bridge';
import { runSequence } from './sequence';

describe.each(STORES)('Google Workspace on %s', (store) => {
  let b: TestBridge;
  beforeAll(async () => {
    b = await startBridge({}, { store });
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

  it('when Google Workspace runs its whole sequence (active as strings), then every step answers as it needs', async () => {
    await runSequence(b, {
      probe: '/Users?count=1',
      lookup: (email) => `/Users?filter=${encodeURIComponent(`userName eq "${email}"`)}`,
      user: (email, given, family) => ({ schemas: [USER_SCHEMA], userName: email, name: { givenName: given, familyName: family }, emails: [{ value: email, primary: true }], active: 'true' }),
      setActive: async (bridge, id, _email, active) => void (await bridge.patch(`/Users/${id}`, patchBody({ op: 'replace', path: 'active', value: active ? 'true' : 'false' })).expect(200)),
      groupWrites: 'patch',
      importPage: 100,
    }, 'google');
  });
});
