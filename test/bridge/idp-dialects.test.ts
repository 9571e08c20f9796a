/** IdP habits that go beyond RFC 7644 and that the bridge accepts (issue 5 adds the full recorded flows). */
import { idpOf } from '../../bridge/src/http/app';
import { startBridge, TestBridge, userBody } from '../helpers/bridge';

describe('IdP dialects', () => {
  let b: TestBridge;
  beforeAll(async () => {
    b = await startBridge();
  });
  afterAll(() => b.stop());

  it('when Rippling looks a user up by emails[primary eq true].value eq "…", then exactly that user is found', async () => {
    const u = (await b.post('/Users', userBody('rip.pling@example.com', { emails: [{ value: 'home@example.net', type: 'home' }, { value: 'rip.pling@example.com', type: 'work', primary: true }] })).expect(201)).body;
    await b.post('/Users', userBody('other.person@example.com', { emails: [{ value: 'rip.pling@example.com', type: 'home' }] })).expect(201);
    const found = await b.get('/Users').query({ filter: 'emails[primary eq true].value eq "Rip.Pling@example.com"' }).expect(200);
    expect(found.body.Resources.map((r: { id: string }) => r.id)).toEqual([u.id]);
  });

  it('when a value filter is followed by something that is not a sub-attribute comparison, then 400 invalidFilter with the position', async () => {
    const res = await b.get('/Users').query({ filter: 'emails[primary eq true].value' }).expect(400);
    expect(res.body.scimType).toBe('invalidFilter');
    expect(res.body.detail).toMatch(/position|end of the filter/);
  });

  it.each([
    ['Okta SCIM Client 1.0.0', undefined, 'okta'],
    ['Mozilla/5.0', '6.0', 'entra'],
    ['JumpCloud SCIM', undefined, 'jumpcloud'],
    ['Google-SCIM', undefined, 'google'],
    [undefined, undefined, 'unknown'],
  ])('when the User-Agent is %s and ADSCIMVersion %s, then the request log names %s', (ua, adscim, idp) => {
    expect(idpOf(ua, adscim)).toBe(idp);
  });
});

