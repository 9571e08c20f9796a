/**
 * The reference product's lifecycle, through the real HTTP API: provisioned users are invited until they
 * join; deprovisioning revokes an invited user and suspends an active one, and SCIM keeps both (IdPs
 * reactivate by PATCHing the same id); every change is one event in the feed, in order.
 */
import { patchBody, startBridge, TestBridge, userBody, GROUP_SCHEMA, USER_SCHEMA, STORES } from '../helpers/bridge';

type Json = Record<string, any>;

describe.each(STORES)('the user lifecycle on %s', (store) => {
  let b: TestBridge;
  let n = 0;
  beforeAll(async () => {
    b = await startBridge({ SCIM_BRIDGE_ALLOWED_DOMAINS: 'example.com,example.org' }, { store });
  });
  afterAll(() => b.stop());

  async function provision(extra: Record<string, unknown> = {}): Promise<Json> {
    n += 1;
    return (await b.post('/Users', userBody(`life${n}.cycle${n}@example.com`, extra)).expect(201)).body;
  }
  const statusOf = async (id: string) => (await b.app.get(`/api/v1/users/${id}`).expect(200)).body.status;

  /** All events of the feed, from the start. */
  async function allEvents(): Promise<Json[]> {
    const out: Json[] = [];
    let after = '0';
    for (;;) {
      const page = (await b.app.get(`/api/v1/events?after=${after}&limit=50`).expect(200)).body;
      out.push(...page.events);
      if (page.events.length === 0) return out;
      after = page.next;
    }
  }
  const eventsFor = async (id: string) => (await allEvents()).filter((e) => e.data.id === id).map((e) => e.type);

  /** Sets active as each IdP dialect does; resolves to the 200's body (the user after the change). */
  const setActive = (value: boolean): [string, (id: string) => Promise<Json>][] => [
    ['PATCH with path, boolean', async (id) => (await b.patch(`/Users/${id}`, patchBody({ op: 'replace', path: 'active', value })).expect(200)).body],
    [
      `PATCH with path, "${value ? 'True' : 'False'}"`,
      async (id) => (await b.patch(`/Users/${id}`, patchBody({ op: 'Replace', path: 'active', value: value ? 'True' : 'False' })).expect(200)).body,
    ],
    [
      `PATCH without path, "${value}"`,
      async (id) => (await b.patch(`/Users/${id}`, patchBody({ op: 'replace', value: { active: String(value) } })).expect(200)).body,
    ],
    [
      `PUT with active ${value}`,
      async (id) => {
        const u = (await b.get(`/Users/${id}`).expect(200)).body;
        return (await b.put(`/Users/${id}`, { ...u, active: value }).expect(200)).body;
      },
    ],
  ];
  const deprovisions = setActive(false);
  const reactivations = setActive(true);
  const deprovision = (id: string) => b.patch(`/Users/${id}`, patchBody({ op: 'replace', path: 'active', value: false })).expect(200);
  /** The users an `active` filter finds, among these ids. */
  const activeFilter = async (value: boolean, ids: string[]) =>
    ((await b.get('/Users').query({ filter: `active eq ${value}`, count: 1000 }).expect(200)).body.Resources as Json[]).map((r) => r.id).filter((id) => ids.includes(id));

  it('when the IdP creates a user, then it is invited and one user.created event says so', async () => {
    const u = await provision();
    expect(await statusOf(u.id)).toBe('invited');
    expect(await eventsFor(u.id)).toEqual(['user.created']);
  });

  it('when the application says the person joined, then the user is active, with a user.joined event; joining twice is a 409', async () => {
    const u = await provision();
    const joined = await b.app.post(`/api/v1/users/${u.id}/join`).expect(200);
    expect(joined.body.status).toBe('active');
    expect(await eventsFor(u.id)).toEqual(['user.created', 'user.joined']);
    await b.app.post(`/api/v1/users/${u.id}/join`).expect(409);
  });

  it.each(deprovisions)(
    'when an invited user is deprovisioned (%s), then its invitation is withdrawn: status revoked, one user.revoked event, and SCIM keeps it with active false',
    async (_how, deprovision) => {
      const u = await provision();
      const answer = await deprovision(u.id);
      // The 200 carries the user as it is after the change (RFC 7644 §3.5.1, §3.5.2).
      expect(answer).toMatchObject({ id: u.id, userName: u.userName, active: false });
      expect((await b.get(`/Users/${u.id}`).expect(200)).body).toEqual(answer);
      expect(await statusOf(u.id)).toBe('revoked');
      const events = (await allEvents()).filter((e) => e.data.id === u.id);
      expect(events.map((e) => e.type)).toEqual(['user.created', 'user.revoked']);
      expect(events[1].data).toMatchObject({ id: u.id, userName: u.userName, active: false });
    },
  );

  it.each(deprovisions)('when an active user is deprovisioned (%s), then it is suspended: the 200 and SCIM say active false, and one user.suspended event', async (_how, deprovision) => {
    const u = await provision();
    await b.join(u.id);
    const answer = await deprovision(u.id);
    expect(answer).toMatchObject({ id: u.id, active: false });
    expect((await b.get(`/Users/${u.id}`).expect(200)).body).toEqual(answer);
    expect(await statusOf(u.id)).toBe('suspended');
    const events = (await allEvents()).filter((e) => e.data.id === u.id);
    expect(events.map((e) => e.type)).toEqual(['user.created', 'user.joined', 'user.suspended']);
    expect(events[2].data).toMatchObject({ id: u.id, active: false });
  });

  it.each(reactivations)('when a revoked user gets active true by the same id (%s), then it is invited again, with a user.reinvited event, and can join', async (_how, reactivate) => {
    const u = await provision();
    await deprovision(u.id);
    const answer = await reactivate(u.id);
    expect(answer).toMatchObject({ id: u.id, active: true });
    expect(await statusOf(u.id)).toBe('invited');
    await b.join(u.id);
    expect(await statusOf(u.id)).toBe('active');
    const events = (await allEvents()).filter((e) => e.data.id === u.id);
    expect(events.map((e) => e.type)).toEqual(['user.created', 'user.revoked', 'user.reinvited', 'user.joined']);
    expect(events[2].data).toMatchObject({ id: u.id, active: true });
  });

  it.each(reactivations)('when a suspended user gets active true (%s), then it is active again, with a user.reactivated event', async (_how, reactivate) => {
    const u = await provision();
    await b.join(u.id);
    await deprovision(u.id);
    const answer = await reactivate(u.id);
    expect(answer.active).toBe(true);
    expect(await statusOf(u.id)).toBe('active');
    expect(await eventsFor(u.id)).toEqual(['user.created', 'user.joined', 'user.suspended', 'user.reactivated']);
  });

  it('when a revoked user is changed but stays inactive, then it stays revoked, with user.updated events only', async () => {
    const u = await provision();
    await deprovision(u.id);
    const renamed = (await b.patch(`/Users/${u.id}`, patchBody({ op: 'replace', path: 'title', value: 'Gone' })).expect(200)).body;
    expect(renamed).toMatchObject({ title: 'Gone', active: false });
    await deprovision(u.id);
    expect(await statusOf(u.id)).toBe('revoked');
    expect(await eventsFor(u.id)).toEqual(['user.created', 'user.revoked', 'user.updated', 'user.updated']);
  });

  it('when the application calls join on a revoked user, then 409 saying the invitation was withdrawn and how it comes back; the user stays revoked', async () => {
    const u = await provision();
    await deprovision(u.id);
    const res = await b.app.post(`/api/v1/users/${u.id}/join`).expect(409);
    expect(res.body.schemas).toEqual(['urn:ietf:params:scim:api:messages:2.0:Error']);
    expect(res.body.detail).toContain('revoked');
    expect(res.body.detail).toContain('active: true');
    expect(await statusOf(u.id)).toBe('revoked');
    expect(await eventsFor(u.id)).toEqual(['user.created', 'user.revoked']);
  });

  it('when the application calls join on a suspended user, then 409 saying only the identity provider reactivates it', async () => {
    const u = await provision();
    await b.join(u.id);
    await deprovision(u.id);
    const res = await b.app.post(`/api/v1/users/${u.id}/join`).expect(409);
    expect(res.body.detail).toContain('suspended');
    expect(res.body.detail).toContain('active: true');
  });

  it('when users are revoked or suspended, then a filter on active finds them as active eq false, and the others as active eq true', async () => {
    const [invited, active, revoked, suspended] = [await provision(), await provision(), await provision(), await provision()];
    await b.join(active.id);
    await b.join(suspended.id);
    await deprovision(revoked.id);
    await deprovision(suspended.id);
    const ids = [invited.id, active.id, revoked.id, suspended.id];
    expect((await activeFilter(false, ids)).sort()).toEqual([revoked.id, suspended.id].sort());
    expect((await activeFilter(true, ids)).sort()).toEqual([invited.id, active.id].sort());
    const found = await b.get('/Users').query({ filter: `userName eq "${revoked.userName}" and active eq false` }).expect(200);
    expect(found.body.Resources.map((r: Json) => r.id)).toEqual([revoked.id]);
  });

  it.each(['revoked', 'suspended'])('when the IdP POSTs the userName of a %s user again, then 409 uniqueness: it reactivates the user by its id instead', async (state) => {
    const u = await provision();
    if (state === 'suspended') await b.join(u.id);
    await deprovision(u.id);
    const again = await b.post('/Users', userBody(u.userName.toUpperCase())).expect(409);
    expect(again.body.scimType).toBe('uniqueness');
    const lookup = await b.get('/Users').query({ filter: `userName eq "${u.userName}"` }).expect(200);
    expect(lookup.body.Resources).toEqual([expect.objectContaining({ id: u.id, active: false })]);
  });

  it('when a revoked user belongs to groups, then it stays a member, as a suspended one does', async () => {
    const u = await provision();
    const g = (await b.post('/Groups', { schemas: [GROUP_SCHEMA], displayName: `Revoked members ${n}`, members: [{ value: u.id }] }).expect(201)).body;
    await deprovision(u.id);
    expect((await b.get(`/Groups/${g.id}`).expect(200)).body.members.map((m: Json) => m.value)).toEqual([u.id]);
    expect((await b.get(`/Users/${u.id}`).expect(200)).body.groups.map((x: Json) => x.value)).toEqual([g.id]);
  });

  it('when a revoked user is deleted, then it is gone, with one user.deleted event', async () => {
    const u = await provision();
    await deprovision(u.id);
    await b.delete(`/Users/${u.id}`).expect(204);
    await b.get(`/Users/${u.id}`).expect(404);
    await b.app.get(`/api/v1/users/${u.id}`).expect(404);
    expect(await eventsFor(u.id)).toEqual(['user.created', 'user.revoked', 'user.deleted']);
  });

  it('when the IdP creates a user with active false, then it is created revoked (no invitation to send): user.created then user.revoked', async () => {
    const u = await provision({ active: false });
    expect(u.active).toBe(false);
    expect(await statusOf(u.id)).toBe('revoked');
    expect(await eventsFor(u.id)).toEqual(['user.created', 'user.revoked']);
    await b.app.post(`/api/v1/users/${u.id}/join`).expect(409);
    await b.patch(`/Users/${u.id}`, patchBody({ op: 'replace', path: 'active', value: true })).expect(200);
    expect(await statusOf(u.id)).toBe('invited');
  });

  it('when a user is deleted, then it is gone, with one user.deleted event', async () => {
    const u = await provision();
    await b.join(u.id);
    await b.delete(`/Users/${u.id}`).expect(204);
    await b.get(`/Users/${u.id}`).expect(404);
    expect(await eventsFor(u.id)).toEqual(['user.created', 'user.joined', 'user.deleted']);
  });

  it('when an active user changes its primary email, then user.updated and user.email_changed with the old and the new address', async () => {
    const u = await provision();
    await b.join(u.id);
    const address = `changed${n}@example.org`;
    await b.patch(`/Users/${u.id}`, patchBody({ op: 'replace', path: 'emails[type eq "work"].value', value: address })).expect(200);
    const events = (await allEvents()).filter((e) => e.data.id === u.id);
    expect(events.map((e) => e.type)).toEqual(['user.created', 'user.joined', 'user.updated', 'user.email_changed']);
    expect(events[3].data).toMatchObject({ previousEmail: u.emails[0].value, email: address });
  });

  it('when the IdP sends no displayName, then displayName and name.formatted are "givenName familyName" and follow name changes', async () => {
    const u = await provision({ name: { givenName: 'Grace', familyName: 'Hopper' } });
    expect(u.displayName).toBe('Grace Hopper');
    expect(u.name.formatted).toBe('Grace Hopper');
    const renamed = (await b.patch(`/Users/${u.id}`, patchBody({ op: 'replace', path: 'name.familyName', value: 'Murray' })).expect(200)).body;
    expect(renamed.displayName).toBe('Grace Murray');
    expect(renamed.name.formatted).toBe('Grace Murray');
    const found = await b.get('/Users').query({ filter: 'displayName eq "grace murray"' }).expect(200);
    expect(found.body.Resources.map((r: Json) => r.id)).toEqual([u.id]);
  });

  it('when the IdP sets displayName itself, then it stays when the name changes', async () => {
    const u = await provision({ displayName: 'Amazing Grace', name: { givenName: 'Grace', familyName: 'Hopper' } });
    const renamed = (await b.patch(`/Users/${u.id}`, patchBody({ op: 'replace', path: 'name.familyName', value: 'Murray' })).expect(200)).body;
    expect(renamed.displayName).toBe('Amazing Grace');
    expect(renamed.name.formatted).toBe('Grace Murray');
  });

  it.each([
    ['a userName', { userName: 'someone@elsewhere.net' }],
    ['an email', { emails: [{ value: 'someone@elsewhere.net', type: 'work' }] }],
  ])('when %s is outside SCIM_BRIDGE_ALLOWED_DOMAINS, then 400 invalidValue naming the domain and the setting', async (_what, extra) => {
    const res = await b.post('/Users', { ...userBody(`ok${++n}@example.com`), ...extra }).expect(400);
    expect(res.body.scimType).toBe('invalidValue');
    expect(res.body.detail).toContain('elsewhere.net');
    expect(res.body.detail).toContain('SCIM_BRIDGE_ALLOWED_DOMAINS');
  });

  it('when the application brings a user it has already, then it is active and an IdP lookup by userName finds it', async () => {
    const created = await b.app.post('/api/v1/users', { schemas: [USER_SCHEMA], userName: 'existing.person@example.com' }).expect(201);
    expect(created.body.status).toBe('active');
    const found = await b.get('/Users').query({ filter: 'userName eq "Existing.Person@example.com"' }).expect(200);
    expect(found.body.Resources.map((r: Json) => r.id)).toEqual([created.body.id]);
  });
});

describe.each(STORES)('managed groups on %s', (store) => {
  let b: TestBridge;
  beforeAll(async () => {
    b = await startBridge({}, { store });
  });
  afterAll(() => b.stop());

  it('when the IdP pushes a group named like an application group that is not managed, then it takes that group over (same id, now managed)', async () => {
    const appGroup = (await b.app.post('/api/v1/groups', { displayName: 'Designers' }).expect(201)).body;
    expect(appGroup.managed).toBe(false);
    const lookup = await b.get('/Groups').query({ filter: 'displayName eq "designers"' }).expect(200);
    expect(lookup.body.Resources.map((g: Json) => g.id)).toEqual([appGroup.id]);
    const user = (await b.post('/Users', userBody('dee.signer@example.com')).expect(201)).body;
    const pushed = await b.post('/Groups', { schemas: [GROUP_SCHEMA], displayName: 'Designers', members: [{ value: user.id }] }).expect(201);
    expect(pushed.body.id).toBe(appGroup.id);
    expect(pushed.body.members.map((m: Json) => m.value)).toEqual([user.id]);
  });

  it('when the IdP pushes a group named like a managed group, then 409 uniqueness', async () => {
    await b.post('/Groups', { schemas: [GROUP_SCHEMA], displayName: 'Pushed Twice' }).expect(201);
    const again = await b.post('/Groups', { schemas: [GROUP_SCHEMA], displayName: 'pushed twice' }).expect(409);
    expect(again.body.scimType).toBe('uniqueness');
  });

  it('when the application marks a group managed, then the IdP can no longer take it over', async () => {
    const g = (await b.app.post('/api/v1/groups', { displayName: 'Marked' }).expect(201)).body;
    expect((await b.app.put(`/api/v1/groups/${g.id}/managed`, { managed: true }).expect(200)).body.managed).toBe(true);
    await b.post('/Groups', { schemas: [GROUP_SCHEMA], displayName: 'Marked' }).expect(409);
  });

  it('when a group changes, then the feed has group.created, member_added/removed with the member, group.updated, group.deleted; the members stay', async () => {
    const u1 = (await b.post('/Users', userBody('one.member@example.com')).expect(201)).body;
    const u2 = (await b.post('/Users', userBody('two.member@example.com')).expect(201)).body;
    const g = (await b.post('/Groups', { schemas: [GROUP_SCHEMA], displayName: 'Evented', members: [{ value: u1.id }] }).expect(201)).body;
    await b.patch(`/Groups/${g.id}`, patchBody({ op: 'add', path: 'members', value: [{ value: u2.id }, { value: u1.id }] })).expect(204);
    await b.patch(`/Groups/${g.id}`, patchBody({ op: 'remove', path: `members[value eq "${u1.id}"]` }, { op: 'replace', value: { displayName: 'Evented 2' } })).expect(204);
    await b.delete(`/Groups/${g.id}`).expect(204);
    const feed = (await b.app.get('/api/v1/events?limit=1000').expect(200)).body.events.filter((e: Json) => e.data.id === g.id);
    expect(feed.map((e: Json) => [e.type, e.data.member?.value])).toEqual([
      ['group.created', undefined],
      ['group.member_added', u1.id],
      ['group.member_added', u2.id],
      ['group.updated', undefined],
      ['group.member_removed', u1.id],
      ['group.deleted', undefined],
    ]);
    for (const e of feed) expect(e).toEqual({ id: expect.any(String), type: expect.any(String), occurredAt: expect.any(String), data: expect.objectContaining({ id: g.id }) });
    await b.get(`/Users/${u1.id}`).expect(200);
    await b.get(`/Users/${u2.id}`).expect(200);
  });
});

describe.each(STORES)('the application API and its token on %s', (store) => {
  let b: TestBridge;
  beforeAll(async () => {
    b = await startBridge({}, { store });
  });
  afterAll(() => b.stop());

  it('when the IdP token is used on /api/v1, then 401; when the application token is used on SCIM, then 401', async () => {
    await b.get('/api/v1/events').expect(401);
    await b.anonymous().get('/Users').set('Authorization', 'Bearer app-token-0123456789abcdef').expect(401);
    await b.app.get('/api/v1/events').expect(200);
  });

  it('when the feed is read with a cursor, then each event comes once, in order, and the cursor is stable', async () => {
    for (let i = 0; i < 5; i++) await b.post('/Users', userBody(`feed${i}.reader@example.com`)).expect(201);
    const first = (await b.app.get('/api/v1/events?limit=3').expect(200)).body;
    const rest = (await b.app.get(`/api/v1/events?after=${first.next}&limit=100`).expect(200)).body;
    const again = (await b.app.get(`/api/v1/events?after=${first.next}&limit=100`).expect(200)).body;
    expect(first.events).toHaveLength(3);
    expect(rest.events.map((e: Json) => e.id)).toEqual(again.events.map((e: Json) => e.id));
    const ids = [...first.events, ...rest.events].map((e: Json) => e.id);
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids.length).toBeGreaterThanOrEqual(5);
  });

  it('when the feed gets a bad cursor or limit, then 400 saying what it takes', async () => {
    expect((await b.app.get('/api/v1/events?after=abc').expect(400)).body.detail).toContain('after');
    expect((await b.app.get('/api/v1/events?limit=0').expect(400)).body.detail).toContain('limit');
  });

  it('when the application token equals the IdP token, then the configuration is refused', async () => {
    await expect(startBridge({ SCIM_BRIDGE_APP_TOKEN: 'test-token-0123456789abcdef' }, { store })).rejects.toThrow('SCIM_BRIDGE_APP_TOKEN');
  });
});
