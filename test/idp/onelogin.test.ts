/**
 * OneLogin's habits against the real bridge: `+` for spaces and a trailing `&` in filters, `PUT /Users/{id}?`,
 * legacy schema URNs (also as the key of enterprise attributes), and its whole sequence.
 */
import { ENTERPRISE, startBridge, TestBridge, STORES } from '../helpers/bridge';
import { runSequence } from './sequence';

type Json = Record<string, any>;

describe.each(STORES)('OneLogin on %s', (store) => {
  let b: TestBridge;
  beforeAll(async () => {
    b = await startBridge({}, { store });
  });
  afterAll(() => b.stop());

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

  it('when OneLogin runs its whole sequence (legacy URNs, + and & in filters, PUT with ?), then every step answers as it needs', async () => {
    await runSequence(b, {
      probe: '/Users?startIndex=1&count=1&',
      lookup: (email) => `/Users?filter=userName+eq+%22${encodeURIComponent(email)}%22&`,
      user: (email, given, family) => ({ schemas: ['urn:scim:schemas:core:2.0'], userName: email, name: { givenName: given, familyName: family }, emails: [{ value: email, type: 'work', primary: true }] }),
      setActive: async (bridge, id, email, active) => void (await bridge.put(`/Users/${id}?`, { schemas: ['urn:scim:schemas:core:2.0'], userName: email, active }).expect(200)),
      groupWrites: 'patch',
      importPage: 50,
    }, 'onelogin');
  });
});
