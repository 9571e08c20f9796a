/**
 * JumpCloud's whole sequence against the real bridge (from JumpCloud's and 1Password's documentation in
 * shared/reference): Test Connection, Activate (test user and group, updated, then deleted), provisioning
 * with lookups before creates, group membership as value lists (adds repeated), group rename, deactivation,
 * take-over of an application group of the same name, and Import paging through users.
 */
import { patchBody, startBridge, TestBridge, GROUP_SCHEMA, USER_SCHEMA, STORES } from '../helpers/bridge';

type Json = Record<string, any>;
const filter = (attr: string, value: string) => `${attr} eq "${value}"`;

/** A user as JumpCloud sends it: no displayName (the bridge composes it). */
const jumpcloudUser = (email: string, given: string, family: string) => ({
  schemas: [USER_SCHEMA],
  userName: email,
  externalId: `jc-${email}`,
  name: { givenName: given, familyName: family },
  emails: [{ value: email, type: 'work', primary: true }],
  active: true,
});

function expectResource(body: Json, type: 'User' | 'Group'): void {
  expect(typeof body.id).toBe('string');
  expect(body.meta).toMatchObject({ resourceType: type, location: expect.stringContaining(`/${type}s/${body.id}`), version: expect.any(String) });
}

describe.each(STORES)('JumpCloud on %s', (store) => {
  let b: TestBridge;
  beforeAll(async () => {
    b = await startBridge({}, { store });
  });
  afterAll(() => b.stop());

  it('when an admin clicks Test Connection, then a list of users answers 200 with a list envelope', async () => {
    const res = await b.get('/Users').expect(200);
    expect(res.body).toMatchObject({ schemas: ['urn:ietf:params:scim:api:messages:2.0:ListResponse'], totalResults: expect.any(Number), startIndex: 1 });
    expect(Array.isArray(res.body.Resources)).toBe(true);
  });

  it('when Activate runs, then the test user and group are created, updated and deleted (or the user deactivated)', async () => {
    const email = 'jc.activation.test@example.com';
    expect((await b.get('/Users').query({ filter: filter('userName', email) }).expect(200)).body.totalResults).toBe(0);
    const user = (await b.post('/Users', jumpcloudUser(email, 'Activation', 'Test')).expect(201)).body;
    expectResource(user, 'User');
    expect(user.displayName).toBe('Activation Test');
    expect((await b.get('/Groups').query({ filter: filter('displayName', 'JumpCloud Test Group') }).expect(200)).body.totalResults).toBe(0);
    const group = (await b.post('/Groups', { schemas: [GROUP_SCHEMA], displayName: 'JumpCloud Test Group', members: [] }).expect(201)).body;
    expectResource(group, 'Group');
    const updated = (await b.put(`/Users/${user.id}`, { ...jumpcloudUser(email, 'Activation', 'Updated') }).expect(200)).body;
    expect(updated.name.familyName).toBe('Updated');
    await b.patch(`/Groups/${group.id}`, patchBody({ op: 'replace', value: { displayName: 'JumpCloud Test Group 2' } })).expect(204);
    await b.delete(`/Users/${user.id}`).expect(204);
    await b.delete(`/Groups/${group.id}`).expect(204);
    await b.get(`/Users/${user.id}`).expect(404);
  });

  it('when JumpCloud provisions users and groups, then lookups, creates, repeated member adds, removals, rename and deactivation all answer as it needs', async () => {
    const people = [
      ['ada.lovelace@example.com', 'Ada', 'Lovelace'],
      ['alan.turing@example.com', 'Alan', 'Turing'],
      ['grace.hopper@example.com', 'Grace', 'Hopper'],
    ] as const;
    const ids: string[] = [];
    for (const [email, given, family] of people) {
      const lookup = (await b.get('/Users').query({ filter: filter('userName', email) }).expect(200)).body;
      expect(lookup.totalResults).toBe(0);
      const created = (await b.post('/Users', jumpcloudUser(email, given, family)).expect(201)).body;
      expectResource(created, 'User');
      ids.push(created.id);
    }
    // The people accept their invitations in the application.
    await b.join(ids[0]);

    const lookup = (await b.get('/Groups').query({ filter: filter('displayName', 'Engineering') }).expect(200)).body;
    expect(lookup.totalResults).toBe(0);
    const g = (await b.post('/Groups', { schemas: [GROUP_SCHEMA], displayName: 'Engineering' }).expect(201)).body;
    const add = (values: string[]) => patchBody({ op: 'add', path: 'members', value: values.map((value) => ({ value })) });
    await b.patch(`/Groups/${g.id}`, add(ids)).expect(204);
    await b.patch(`/Groups/${g.id}`, add(ids.slice(0, 2))).expect(204); // JumpCloud repeats adds
    await b.patch(`/Groups/${g.id}`, patchBody({ op: 'remove', path: 'members', value: [{ value: ids[2] }] })).expect(204);
    await b.patch(`/Groups/${g.id}`, patchBody({ op: 'replace', path: 'displayName', value: 'Engineering Team' })).expect(204);
    const read = (await b.get(`/Groups/${g.id}`).expect(200)).body;
    expect(read.displayName).toBe('Engineering Team');
    expect(read.members.map((m: Json) => m.value).sort()).toEqual(ids.slice(0, 2).sort());

    // Deactivation: the active user is suspended, the invited one revoked; SCIM keeps both with active false.
    await b.patch(`/Users/${ids[0]}`, patchBody({ op: 'replace', path: 'active', value: false })).expect(200);
    expect((await b.get(`/Users/${ids[0]}`).expect(200)).body.active).toBe(false);
    expect((await b.app.get(`/api/v1/users/${ids[0]}`).expect(200)).body.status).toBe('suspended');
    const revoked = (await b.patch(`/Users/${ids[1]}`, patchBody({ op: 'replace', path: 'active', value: false })).expect(200)).body;
    expect(revoked.active).toBe(false);
    expect((await b.get(`/Users/${ids[1]}`).expect(200)).body.active).toBe(false);
    expect((await b.app.get(`/api/v1/users/${ids[1]}`).expect(200)).body.status).toBe('revoked');
    // Binding it again reactivates it by its id: invited again.
    expect((await b.patch(`/Users/${ids[1]}`, patchBody({ op: 'replace', path: 'active', value: true })).expect(200)).body.active).toBe(true);
    expect((await b.app.get(`/api/v1/users/${ids[1]}`).expect(200)).body.status).toBe('invited');
  });

  it('when JumpCloud finds an application group by name and writes to it, then it takes that group over', async () => {
    const appGroup = (await b.app.post('/api/v1/groups', { displayName: 'Finance' }).expect(201)).body;
    const found = (await b.get('/Groups').query({ filter: filter('displayName', 'Finance') }).expect(200)).body;
    expect(found.Resources.map((r: Json) => r.id)).toEqual([appGroup.id]);
    const user = (await b.post('/Users', jumpcloudUser('fin.ance@example.com', 'Fin', 'Ance')).expect(201)).body;
    await b.patch(`/Groups/${appGroup.id}`, patchBody({ op: 'add', path: 'members', value: [{ value: user.id }] })).expect(204);
    const events = (await b.app.get('/api/v1/events?limit=1000').expect(200)).body.events.filter((e: Json) => e.data.id === appGroup.id);
    expect(events.map((e: Json) => e.type)).toEqual(['group.created', 'group.updated', 'group.member_added']);
    await b.app.post('/api/v1/groups', { displayName: 'Finance' }).expect(409);
  });

  it('when JumpCloud imports, then it pages through every user exactly once', async () => {
    for (let i = 0; i < 7; i++) await b.post('/Users', jumpcloudUser(`import${i}.person@example.com`, 'Import', `Person${i}`)).expect(201);
    const total = (await b.get('/Users').query({ count: 0 }).expect(200)).body.totalResults;
    const seen: string[] = [];
    for (let start = 1; start <= total; start += 3) {
      const page = (await b.get('/Users').query({ startIndex: start, count: 3 }).expect(200)).body;
      expect(page.startIndex).toBe(start);
      seen.push(...page.Resources.map((r: Json) => r.id));
    }
    expect(seen).toHaveLength(total);
    expect(new Set(seen).size).toBe(total);
  });
});
