import { startBridge, STORES, TestBridge, userBody } from '../helpers/bridge';

describe.each(STORES)('the bridge, started in-process on %s', (store) => {
  let b: TestBridge;
  beforeAll(async () => {
    b = await startBridge({}, { store });
  });
  afterAll(() => b.stop());

  it('when a user is created, then it can be read back by id and found by userName', async () => {
    const created = await b.post('/Users', userBody('ada.lovelace@example.com')).expect(201);
    expect(created.headers['content-type']).toMatch(/application\/scim\+json/);
    expect(created.headers.location).toBe(`${b.url}/Users/${created.body.id}`);
    const read = await b.get(`/Users/${created.body.id}`).expect(200);
    expect(read.body.userName).toBe('ada.lovelace@example.com');
    const found = await b.get('/Users').query({ filter: 'userName eq "ADA.lovelace@example.com"' }).expect(200);
    expect(found.body.totalResults).toBe(1);
    expect(found.body.Resources[0].id).toBe(created.body.id);
  });
});
