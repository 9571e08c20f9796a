/**
 * The Google Workspace connector (issue 17) against a stand-in Google on loopback: the bridge signs its JWT
 * assertion with the service account's key, impersonates the administrator with read-only scopes, reads the synced
 * groups, their members and those users page by page, and applies the differences through the directory, so the
 * application sees on its events feed what SCIM would have caused. Syncs are triggered with `google.syncNow()`
 * (an in-process hook, no endpoint), except where the interval itself is tested.
 */
import { mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readConfig } from '../../bridge/src/config';
import { startBridge, TestBridge, TOKEN, userBody, GROUP_SCHEMA, patchBody } from '../helpers/bridge';
import { DirectoryApi } from '../../bridge/src/connectors/google/api';
import { compactUser, expandUser, readDirectory } from '../../bridge/src/connectors/google/sync';
import { SCOPES, serviceAccountKey, StandInGoogle } from '../helpers/google';

type Json = Record<string, any>;
const ADMIN = 'admin@acme.example';
const STAFF = 'staff@acme.example';
const KEY = serviceAccountKey();

interface Setup {
  google: StandInGoogle;
  bridge: TestBridge;
  sync(): Promise<Json>;
  /** Events since the last call, as `type target` lines (userName, or group name with the member's userName). */
  events(): Promise<string[]>;
  health(): Promise<Json>;
  userId(userName: string): Promise<string>;
}

const running: Setup[] = [];

async function setup(fill: (g: StandInGoogle) => void, env: Record<string, string> = {}, schedule = false): Promise<Setup> {
  const google = await new StandInGoogle(KEY, ADMIN).start();
  fill(google);
  const bridge = await startBridge(
    {
      SCIM_BRIDGE_GOOGLE_CREDENTIALS: KEY.json,
      SCIM_BRIDGE_GOOGLE_ADMIN: ADMIN,
      SCIM_BRIDGE_GOOGLE_GROUPS: STAFF,
      SCIM_BRIDGE_GOOGLE_API_URL: google.url,
      SCIM_BRIDGE_GOOGLE_TOKEN_URL: google.tokenUrl,
      ...env,
    },
    { google: { timings: { retryBaseDelayMs: 20, retryMaxDelayMs: 100 }, schedule } },
  );
  let cursor = '0';
  const names = new Map<string, string>();
  const s: Setup = {
    google,
    bridge,
    sync: async () => (await bridge.bridge.google!.syncNow()) as unknown as Json,
    async events() {
      const out: string[] = [];
      for (;;) {
        const body = (await bridge.app.get(`/api/v1/events?after=${cursor}&limit=1000`).expect(200)).body;
        for (const e of body.events as Json[]) {
          const d = e.data;
          if (d.userName) names.set(d.id, d.userName);
          const target = d.userName ?? d.displayName;
          out.push(d.member ? `${e.type} ${target} ${names.get(d.member.value) ?? d.member.value}` : `${e.type} ${target}`);
        }
        cursor = body.next;
        if (body.events.length < 1000) return out;
      }
    },
    health: async () => (await bridge.get('/health').expect(200)).body,
    async userId(userName) {
      const res = await bridge.get(`/Users?filter=${encodeURIComponent(`userName eq "${userName}"`)}`).expect(200);
      return res.body.Resources[0].id;
    },
  };
  running.push(s);
  return s;
}

afterEach(async () => {
  for (const s of running.splice(0)) {
    await s.bridge.stop();
    await s.google.stop();
  }
});

/** A small domain: ada and bob in staff, carl in the domain but in no synced group. */
function smallDomain(g: StandInGoogle): void {
  g.addUser('101', 'ada.lovelace@acme.example');
  g.addUser('102', 'bob.babbage@acme.example');
  g.addUser('103', 'carl.gauss@acme.example');
  g.addGroup('g1', STAFF, 'Staff', ['101', '102']);
}

describe('the connector\'s place', () => {
  it('feeds the directory as SCIM does: nothing under bridge/src/connectors imports the store', () => {
    const dir = join(__dirname, '../../bridge/src/connectors/google');
    const files = readdirSync(dir).filter((f) => f.endsWith('.ts'));
    expect(files.length).toBeGreaterThan(0);
    for (const f of files) expect(readFileSync(join(dir, f), 'utf8')).not.toMatch(/from '[./]*store'/);
  });
});

describe('settings', () => {
  const base = { SCIM_BRIDGE_GOOGLE_CREDENTIALS: KEY.json, SCIM_BRIDGE_GOOGLE_ADMIN: ADMIN, SCIM_BRIDGE_GOOGLE_GROUPS: `${STAFF}, Sales@acme.example` };

  it('when the key, the administrator and the groups are set, then the connector is on with the defaults (10m, Google\'s URLs)', () => {
    const c = readConfig(base).google!;
    expect(c.groups).toEqual([STAFF, 'sales@acme.example']);
    expect(c.intervalMs).toBe(600_000);
    expect(c.apiUrl).toBe('https://admin.googleapis.com');
    expect(c.tokenUrl).toBe('https://oauth2.googleapis.com/token');
    expect(c.serviceAccount.clientEmail).toBe(KEY.clientEmail);
    expect(readConfig({}).google).toBeUndefined();
  });

  it.each([
    ['90s', 90_000],
    ['10m', 600_000],
    ['1h', 3_600_000],
  ])('when SCIM_BRIDGE_GOOGLE_INTERVAL is %s, then it syncs every %d ms', (interval, ms) => {
    expect(readConfig({ ...base, SCIM_BRIDGE_GOOGLE_INTERVAL: interval }).google!.intervalMs).toBe(ms);
  });

  it.each([
    ['an interval without a unit', { SCIM_BRIDGE_GOOGLE_INTERVAL: '10' }, 'SCIM_BRIDGE_GOOGLE_INTERVAL', /duration/],
    ['an interval of 0s', { SCIM_BRIDGE_GOOGLE_INTERVAL: '0s' }, 'SCIM_BRIDGE_GOOGLE_INTERVAL', /duration/],
    ['an administrator that is no address', { SCIM_BRIDGE_GOOGLE_ADMIN: 'admin' }, 'SCIM_BRIDGE_GOOGLE_ADMIN', /administrator/],
    ['groups that are no addresses', { SCIM_BRIDGE_GOOGLE_GROUPS: 'not a group' }, 'SCIM_BRIDGE_GOOGLE_GROUPS', /groups to sync/],
    ["a user's credentials instead of a service account's", { SCIM_BRIDGE_GOOGLE_CREDENTIALS: '{"type":"authorized_user"}' }, 'SCIM_BRIDGE_GOOGLE_CREDENTIALS', /service_account/],
    ['a damaged private key', { SCIM_BRIDGE_GOOGLE_CREDENTIALS: KEY.json.replace(/MII[A-Za-z0-9+/]{20}/, 'MIIxxxxxxxxxxxxxxxxxxxx') }, 'SCIM_BRIDGE_GOOGLE_CREDENTIALS', /private_key/],
    ['no administrator', { SCIM_BRIDGE_GOOGLE_ADMIN: '' }, 'SCIM_BRIDGE_GOOGLE_ADMIN', /together/],
    ['a token URL that is not http(s)', { SCIM_BRIDGE_GOOGLE_TOKEN_URL: 'ftp://x' }, 'SCIM_BRIDGE_GOOGLE_TOKEN_URL', /http/],
  ])('when the settings hold %s, then the start stops naming the variable', (_label, change, variable, expected) => {
    let thrown: any;
    try {
      readConfig({ ...base, ...change });
    } catch (e) {
      thrown = e;
    }
    expect(thrown?.variable).toBe(variable);
    expect(thrown.message).toMatch(expected);
    // The key never appears in an error.
    expect(thrown.message).not.toContain('PRIVATE KEY');
  });

  it('when only the interval is set, then the start stops asking for the key, the administrator and the groups', () => {
    expect(() => readConfig({ SCIM_BRIDGE_GOOGLE_INTERVAL: '10m' })).toThrow(/SCIM_BRIDGE_GOOGLE_CREDENTIALS: the Google Workspace connector needs/);
  });
});

/** Events in a stable order: users are written several at a time, so their events interleave. */
const sorted = (lines: string[]) => [...lines].sort();

describe('a sync', () => {
  it('when the bridge first syncs, then the members of the synced groups are invited, the group is created with them, and nobody else is touched', async () => {
    const s = await setup(smallDomain);
    const report = await s.sync();
    expect(report).toMatchObject({ ok: true, counts: { groups: 1, users: 2, usersCreated: 2, groupsCreated: 1, membersAdded: 2, skipped: 0 } });
    expect(sorted(await s.events())).toEqual(
      sorted([
        'user.created ada.lovelace@acme.example',
        'user.created bob.babbage@acme.example',
        'group.created Staff',
        'group.member_added Staff ada.lovelace@acme.example',
        'group.member_added Staff bob.babbage@acme.example',
      ]),
    );
    // carl is in the domain but in no synced group: never read into the bridge.
    expect((await s.bridge.get('/Users').expect(200)).body.totalResults).toBe(2);
    const ada = (await s.bridge.get(`/Users/${await s.userId('ada.lovelace@acme.example')}`).expect(200)).body;
    expect(ada).toMatchObject({ userName: 'ada.lovelace@acme.example', externalId: 'google:101', name: { givenName: 'Ada', familyName: 'Lovelace' }, displayName: 'Ada Lovelace', active: true });
    expect((await s.bridge.app.get(`/api/v1/users/${ada.id}`).expect(200)).body.status).toBe('invited');

    // The token came from a signed assertion Google would accept: the key's signature, the administrator, the read-only scopes.
    expect(s.google.refusedAssertions).toEqual([]);
    expect(s.google.assertions).toHaveLength(1);
    expect(s.google.assertions[0]).toMatchObject({ iss: KEY.clientEmail, sub: ADMIN, aud: s.google.tokenUrl });
    expect(String(s.google.assertions[0].scope).split(' ').sort()).toEqual([...SCOPES].sort());
    // Read with Google's largest pages.
    expect(s.google.seen('/admin/directory/v1/users')[0].query.get('maxResults')).toBe('500');

    // A second sync with nothing changed in Google changes nothing, and reuses the token.
    expect(await s.sync()).toMatchObject({ ok: true, counts: { usersCreated: 0, usersUpdated: 0, usersDeprovisioned: 0, groupsUpdated: 0, membersAdded: 0, membersRemoved: 0 } });
    expect(await s.events()).toEqual([]);
    expect(s.google.assertions).toHaveLength(1);

    const health = (await s.health()).google;
    expect(health).toMatchObject({ state: 'ok', admin: ADMIN, groups: [STAFF], intervalSeconds: 600, lastSync: { ok: true, counts: { users: 2, groups: 1 } } });
    expect(Date.parse(health.lastSync.finishedAt)).toBeGreaterThan(Date.now() - 10_000);
    expect(health.lastSuccessAt).toBe(health.lastSync.finishedAt);
  });

  it('when users change in Google between syncs, then the application sees the same events as from SCIM', async () => {
    const s = await setup((g) => {
      smallDomain(g);
      g.addUser('104', 'dora.dirac@acme.example');
      g.addUser('105', 'eve.euler@acme.example');
      g.groups.get('g1')!.members.push('104', '105');
    });
    await s.sync();
    await s.events();
    // ada and dora accept their invitations in the application.
    await s.bridge.join(await s.userId('ada.lovelace@acme.example'));
    await s.bridge.join(await s.userId('dora.dirac@acme.example'));
    await s.events();

    const g = s.google;
    g.users.get('101')!.primaryEmail = 'ada.king@acme.example'; // an active user's address changes
    g.users.get('102')!.name.familyName = 'Babbage-Byron'; // an invited user's name changes
    g.users.get('104')!.suspended = true; // an active user is suspended
    g.users.get('105')!.suspended = true; // an invited user is suspended
    g.addUser('106', 'fay.fermat@acme.example');
    g.groups.get('g1')!.members.push('106'); // a new member
    g.groups.get('g1')!.name = 'All staff'; // the group is renamed
    const report = await s.sync();
    expect(report).toMatchObject({ ok: true, counts: { usersCreated: 1, usersUpdated: 2, usersDeprovisioned: 2, groupsUpdated: 1, membersAdded: 1 } });
    expect(sorted(await s.events())).toEqual(
      sorted([
        'user.updated ada.king@acme.example',
        'user.email_changed ada.king@acme.example',
        'user.updated bob.babbage@acme.example',
        'user.suspended dora.dirac@acme.example',
        'user.revoked eve.euler@acme.example',
        'user.created fay.fermat@acme.example',
        'group.updated All staff',
        'group.member_added All staff fay.fermat@acme.example',
      ]),
    );
    const ada = (await s.bridge.get(`/Users/${await s.userId('ada.king@acme.example')}`).expect(200)).body;
    expect(ada.emails).toEqual([{ value: 'ada.king@acme.example', type: 'work', primary: true }]);
    expect((await s.bridge.get(`/Users/${await s.userId('bob.babbage@acme.example')}`).expect(200)).body.displayName).toBe('Bob Babbage-Byron');

    // Unsuspended: the invited one is invited again, the active one active again.
    g.users.get('104')!.suspended = false;
    g.users.get('105')!.suspended = false;
    await s.sync();
    expect(sorted(await s.events())).toEqual(sorted(['user.reactivated dora.dirac@acme.example', 'user.reinvited eve.euler@acme.example']));

    // Removed from the group, and deleted in Google: both deprovisioned (kept, active false), and no longer members.
    g.groups.get('g1')!.members = ['101', '102', '104'];
    g.users.delete('106');
    await s.sync();
    expect(sorted(await s.events())).toEqual(
      sorted([
        'user.revoked eve.euler@acme.example',
        'user.revoked fay.fermat@acme.example',
        'group.member_removed All staff eve.euler@acme.example',
        'group.member_removed All staff fay.fermat@acme.example',
      ]),
    );
    const eve = (await s.bridge.get(`/Users/${await s.userId('eve.euler@acme.example')}`).expect(200)).body;
    expect(eve.active).toBe(false);
    // Back in the group: invited again, a member again.
    g.groups.get('g1')!.members.push('105');
    await s.sync();
    expect(sorted(await s.events())).toEqual(sorted(['user.reinvited eve.euler@acme.example', 'group.member_added All staff eve.euler@acme.example']));
  });

  it('when a user is deleted in Google and created again with the same address, then the same user in the bridge follows the new account', async () => {
    const s = await setup(smallDomain);
    await s.sync();
    await s.events();
    const before = await s.userId('bob.babbage@acme.example');
    s.google.users.delete('102');
    s.google.addUser('202', 'bob.babbage@acme.example');
    s.google.groups.get('g1')!.members = ['101', '202'];
    expect(await s.sync()).toMatchObject({ ok: true, counts: { skipped: 0 } });
    expect(await s.events()).toEqual(['user.updated bob.babbage@acme.example']);
    const bob = (await s.bridge.get(`/Users/${before}`).expect(200)).body;
    expect(bob.externalId).toBe('google:202');
  });
});

describe('Google users and SCIM users side by side', () => {
  it('when an IdP manages users and groups over SCIM, then the connector never touches them, and SCIM cannot touch the connector\'s', async () => {
    const s = await setup(smallDomain);
    // bob already came from an IdP over SCIM; grace is a SCIM user in no Google group; Ops a SCIM group.
    const bobScim = (await s.bridge.post('/Users', userBody('bob.babbage@acme.example')).expect(201)).body;
    const grace = (await s.bridge.post('/Users', userBody('grace.hopper@acme.example')).expect(201)).body;
    const ops = (await s.bridge.post('/Groups', { schemas: [GROUP_SCHEMA], displayName: 'Ops', members: [{ value: grace.id }] }).expect(201)).body;
    await s.events();

    const report = await s.sync();
    expect(report).toMatchObject({ ok: true, counts: { usersCreated: 1, skipped: 1 } });
    expect(report.warnings.join('\n')).toMatch(/bob\.babbage@acme\.example/);
    expect(sorted(await s.events())).toEqual(
      sorted(['user.created ada.lovelace@acme.example', 'group.created Staff', 'group.member_added Staff ada.lovelace@acme.example']),
    );
    // Suspending bob in Google changes nothing for the SCIM user of that name.
    s.google.users.get('102')!.suspended = true;
    s.google.groups.get('g1')!.members = ['102'];
    await s.sync();
    expect(sorted(await s.events())).toEqual(sorted(['user.revoked ada.lovelace@acme.example', 'group.member_removed Staff ada.lovelace@acme.example']));
    const bob = (await s.bridge.get(`/Users/${bobScim.id}`).expect(200)).body;
    expect(bob.active).toBe(true);
    expect(bob.externalId).toBeUndefined();
    expect((await s.bridge.get(`/Users/${grace.id}`).expect(200)).body.active).toBe(true);
    expect((await s.bridge.get(`/Groups/${ops.id}`).expect(200)).body.members).toHaveLength(1);

    // The other way round: SCIM cannot change, delete or claim what the connector manages.
    const ada = await s.userId('ada.lovelace@acme.example');
    const patched = await s.bridge.patch(`/Users/${ada}`, patchBody({ op: 'replace', path: 'active', value: true })).expect(409);
    expect(patched.body.detail).toMatch(/Google Workspace/);
    await s.bridge.delete(`/Users/${ada}`).expect(409);
    const staff = (await s.bridge.get(`/Groups?filter=${encodeURIComponent('displayName eq "Staff"')}`).expect(200)).body.Resources[0];
    await s.bridge.delete(`/Groups/${staff.id}`).expect(409);
    await s.bridge.patch(`/Groups/${staff.id}`, patchBody({ op: 'add', path: 'members', value: [{ value: grace.id }] })).expect(409);
    await s.bridge.post('/Users', userBody('mallory@acme.example', { externalId: 'google:101' })).expect(400);
    await s.bridge.patch(`/Users/${grace.id}`, patchBody({ op: 'replace', path: 'externalId', value: 'google:103' })).expect(400);
    expect(await s.events()).toEqual([]);
    // The application still makes a Google user join.
  });
});

describe('groups by name', () => {
  it('when the application has a group of the same name, then the connector takes it over as SCIM would; an IdP\'s group of that name is left alone', async () => {
    const s = await setup(
      (g) => {
        smallDomain(g);
        g.addGroup('g2', 'ops@acme.example', 'Ops', ['101']);
      },
      { SCIM_BRIDGE_GOOGLE_GROUPS: `${STAFF},ops@acme.example` },
    );
    const appStaff = (await s.bridge.app.post('/api/v1/groups', { displayName: 'Staff' }).expect(201)).body;
    const idpOps = (await s.bridge.post('/Groups', { schemas: [GROUP_SCHEMA], displayName: 'Ops' }).expect(201)).body;
    await s.events();
    const report = await s.sync();
    expect(report).toMatchObject({ ok: true, counts: { groupsCreated: 1, skipped: 1 } });
    expect(report.warnings.join('\n')).toMatch(/group ops@acme\.example: A group named 'Ops' exists already/);
    expect(sorted(await s.events())).toEqual(
      sorted([
        'user.created ada.lovelace@acme.example',
        'user.created bob.babbage@acme.example',
        'group.updated Staff',
        'group.member_added Staff ada.lovelace@acme.example',
        'group.member_added Staff bob.babbage@acme.example',
      ]),
    );
    const staff = (await s.bridge.get(`/Groups/${appStaff.id}`).expect(200)).body;
    expect(staff.externalId).toBe('google:g1');
    expect(staff.members).toHaveLength(2);
    expect((await s.bridge.get(`/Groups/${idpOps.id}`).expect(200)).body.members).toBeUndefined();
  });
});

describe('when Google misbehaves', () => {
  /** 600 users in the domain (two pages of users), 250 of them in staff (two pages of members). */
  function biggerDomain(g: StandInGoogle): void {
    const members: string[] = [];
    for (let i = 0; i < 600; i++) {
      g.addUser(String(1000 + i), `user.n${i}@acme.example`);
      if (i % 2 === 0 && members.length < 250) members.push(String(1000 + i));
    }
    g.addGroup('g1', STAFF, 'Staff', members);
  }

  it('when Google answers 429 with Retry-After and 503s, then the sync waits as asked, backs off, and completes', async () => {
    const s = await setup(smallDomain);
    let usersCalls = 0;
    let membersCalls = 0;
    s.google.fault = (req) => {
      if (req.path === '/admin/directory/v1/users' && ++usersCalls === 1) return { status: 429, retryAfter: '1', body: { error: { code: 429, message: 'Quota exceeded', errors: [{ reason: 'rateLimitExceeded' }] } } };
      if (req.path.endsWith('/members') && ++membersCalls <= 2) return { status: 503 };
      return undefined;
    };
    const report = await s.sync();
    expect(report).toMatchObject({ ok: true, counts: { usersCreated: 2 } });
    const users = s.google.seen('/admin/directory/v1/users');
    expect(users.map((r) => r.status)).toEqual([429, 200]);
    // Retry-After: 1 was honoured (not the test's 20 ms backoff).
    expect(users[1].at - users[0].at).toBeGreaterThanOrEqual(950);
    expect(s.google.seen('/admin/directory/v1/groups/g1/members').map((r) => r.status)).toEqual([503, 503, 200]);
    expect(sorted(await s.events())).toHaveLength(5);
  });

  it('when a 403 says the rate limit is exceeded, then it is retried like a 429; a 403 that refuses is an error', async () => {
    const s = await setup(smallDomain);
    let n = 0;
    s.google.fault = (req) =>
      req.path === '/admin/directory/v1/users' && ++n === 1 ? { status: 403, body: { error: { code: 403, message: 'User Rate Limit Exceeded', errors: [{ reason: 'userRateLimitExceeded' }] } } } : undefined;
    expect(await s.sync()).toMatchObject({ ok: true });
    s.google.fault = (req) => (req.path.startsWith('/admin/') ? { status: 403, body: { error: { code: 403, message: 'Not Authorized to access this resource/api', errors: [{ reason: 'forbidden' }] } } } : undefined);
    const failed = await s.sync();
    expect(failed.ok).toBe(false);
    expect(failed.error).toMatch(/403 forbidden: Not Authorized.*domain-wide delegation/);
  });

  it('when Google stays unavailable, then the sync gives up after its attempts, applies nothing, and /health shows the error', async () => {
    const s = await setup(smallDomain);
    await s.sync();
    await s.events();
    s.google.groups.get('g1')!.members = []; // would remove everyone, if it were read
    s.google.fault = (req) => (req.path.endsWith('/members') ? { status: 503 } : undefined);
    const report = await s.sync();
    expect(report.ok).toBe(false);
    expect(report.error).toMatch(/members answered 503 \(gave up after 6 attempts\)/);
    expect(await s.events()).toEqual([]);
    const health = (await s.health()).google;
    expect(health.state).toBe('failed');
    expect(health.lastSync.error).toBe(report.error);
    expect(Date.parse(health.lastSuccessAt)).toBeLessThan(Date.parse(health.lastSync.startedAt));
  });

  it('when the token expires in the middle of a sync, then a new one is fetched once and the sync completes', async () => {
    const s = await setup(biggerDomain);
    let usersCalls = 0;
    s.google.fault = (req) => (req.path === '/admin/directory/v1/users' && ++usersCalls === 2 ? { expireTokens: true } : undefined);
    const report = await s.sync();
    expect(report).toMatchObject({ ok: true, counts: { users: 250, usersCreated: 250 } });
    expect(s.google.seen('/token')).toHaveLength(2);
    expect(s.google.refusedAssertions).toEqual([]);
    expect(s.google.seen('/admin/directory/v1/users').map((r) => r.status)).toEqual([200, 401, 200]);

    // A token refused again right after renewal is an error, not a loop.
    s.google.fault = (req) => (req.path.startsWith('/admin/') ? { expireTokens: true } : undefined);
    const failed = await s.sync();
    expect(failed.ok).toBe(false);
    expect(failed.error).toMatch(/401/);
    expect(s.google.seen('/token')).toHaveLength(3);
  });

  it('when the service account is not granted the scopes (domain-wide delegation), then the error says what to grant', async () => {
    const s = await setup(smallDomain, { SCIM_BRIDGE_GOOGLE_ADMIN: 'someone.else@acme.example' });
    const report = await s.sync();
    expect(report.ok).toBe(false);
    expect(report.error).toMatch(/refused the service account .* impersonating someone\.else@acme\.example: 400 invalid_grant/);
    expect(s.google.refusedAssertions).toEqual(['sub someone.else@acme.example']);
    expect(await s.events()).toEqual([]);

    // Google's answer when the client id has no domain-wide delegation for the scopes: what to grant, and where.
    s.google.fault = (req) =>
      req.path === '/token' ? { status: 401, body: { error: 'unauthorized_client', error_description: 'Client is unauthorized to retrieve access tokens using this method.' } } : undefined;
    const unauthorized = await s.sync();
    expect(unauthorized.error).toMatch(/unauthorized_client .*domain-wide delegation with the scopes https:\/\/www\.googleapis\.com\/auth\/admin\.directory\.user\.readonly/);
    expect((await s.health()).google).toMatchObject({ state: 'failed', lastSuccessAt: null });
  });

  it('when a page fails half-way through the members, then nothing is applied; the next sync applies everything at once', async () => {
    const s = await setup(biggerDomain);
    await s.sync();
    expect(await s.events()).toHaveLength(250 + 1 + 250);
    // 20 members leave (230 stay: two pages of members); the second page of members then fails for good.
    const g1 = s.google.groups.get('g1')!;
    g1.members = g1.members.slice(20);
    s.google.fault = (req) => (req.path.endsWith('/members') && req.query.has('pageToken') ? { status: 500 } : undefined);
    const failed = await s.sync();
    expect(failed.ok).toBe(false);
    expect(failed.counts).toMatchObject({ usersDeprovisioned: 0, membersRemoved: 0 });
    expect(await s.events()).toEqual([]);
    // And a page of users failing half-way: the same.
    s.google.fault = (req) => (req.path === '/admin/directory/v1/users' && req.query.has('pageToken') ? { status: 500 } : undefined);
    expect((await s.sync()).ok).toBe(false);
    expect(await s.events()).toEqual([]);

    s.google.fault = undefined;
    expect(await s.sync()).toMatchObject({ ok: true, counts: { usersDeprovisioned: 20, membersRemoved: 20 } });
    const events = await s.events();
    expect(events.filter((e) => e.startsWith('user.revoked'))).toHaveLength(20);
    expect(events.filter((e) => e.startsWith('group.member_removed'))).toHaveLength(20);
    expect(events).toHaveLength(40);
  });

  it('when a synced group disappears (404), then its group is deleted and its users who are in no other synced group are deprovisioned', async () => {
    const s = await setup(
      (g) => {
        smallDomain(g);
        g.addUser('104', 'dora.dirac@acme.example');
        g.addGroup('g2', 'eng@acme.example', 'Engineering', ['102', '104']);
      },
      { SCIM_BRIDGE_GOOGLE_GROUPS: `${STAFF},eng@acme.example` },
    );
    await s.sync();
    await s.events();
    s.google.groups.delete('g2');
    const report = await s.sync();
    expect(report).toMatchObject({ ok: true, counts: { groups: 1, groupsDeleted: 1, usersDeprovisioned: 1 } });
    expect(report.warnings.join('\n')).toMatch(/eng@acme\.example: Google Workspace does not know it \(404\)/);
    // bob is still in Staff: untouched.
    expect(sorted(await s.events())).toEqual(sorted(['group.deleted Engineering', 'user.revoked dora.dirac@acme.example']));
    expect((await s.health()).google.lastSync.warnings[0]).toMatch(/404/);
  });
});

describe('stopping', () => {
  it('when the bridge stops while a sync waits out a Retry-After, then the sync ends at once and the stop is prompt', async () => {
    const s = await setup(smallDomain);
    s.google.fault = (req) => (req.path === '/admin/directory/v1/users' ? { status: 503, retryAfter: '120' } : undefined);
    const sync = s.sync();
    while (s.google.seen('/admin/directory/v1/users').length === 0) await new Promise((r) => setTimeout(r, 20));
    const started = Date.now();
    running.splice(running.indexOf(s), 1);
    await s.bridge.stop();
    expect(Date.now() - started).toBeLessThan(3_000);
    expect(await sync).toMatchObject({ ok: false, error: 'stopped with the bridge before it finished' });
    await s.google.stop();
  });
});

describe('a large directory', () => {
  it('when 10,000 users are in the synced group, then they are read in pages of 500 (members 200) and applied in seconds', async () => {
    const s = await setup((g) => {
      const members: string[] = [];
      for (let i = 0; i < 10_000; i++) {
        g.addUser(String(100_000 + i), `person.p${i}@acme.example`);
        members.push(String(100_000 + i));
      }
      g.addGroup('g1', STAFF, 'Staff', members);
    });
    const report = await s.sync();
    expect(report).toMatchObject({ ok: true, counts: { users: 10_000, usersCreated: 10_000, groupsCreated: 1, membersAdded: 10_000 } });
    expect(s.google.seen('/admin/directory/v1/users')).toHaveLength(20);
    expect(s.google.seen('/admin/directory/v1/groups/g1/members')).toHaveLength(50);
    const events = await s.events();
    expect(events.filter((e) => e.startsWith('user.created'))).toHaveLength(10_000);
    expect(events.filter((e) => e.startsWith('group.member_added'))).toHaveLength(10_000);
    // Nothing changed: the second sync reads everything again and writes nothing.
    s.google.users.get('100042')!.name.givenName = 'Renamed';
    const again = await s.sync();
    expect(again).toMatchObject({ ok: true, counts: { usersCreated: 0, usersUpdated: 1, membersAdded: 0 } });
    expect(await s.events()).toEqual(['user.updated person.p42@acme.example']);
  }, 120_000);
});

describe('a new key', () => {
  it('when the key\'s file is replaced while the bridge runs (a rotation), then the next token request is signed with the new key, no restart', async () => {
    const oldKey = serviceAccountKey();
    const newKey = serviceAccountKey();
    // Google knows the new key only (the old one was deleted in the Cloud console).
    const google = await new StandInGoogle(newKey, ADMIN).start();
    smallDomain(google);
    const dir = mkdtempSync(join(tmpdir(), 'scim-bridge-google-key-'));
    const file = join(dir, 'google-credentials');
    writeFileSync(file, `${oldKey.json}\n`);
    const env = {
      SCIM_BRIDGE_GOOGLE_CREDENTIALS_FILE: file,
      SCIM_BRIDGE_GOOGLE_ADMIN: ADMIN,
      SCIM_BRIDGE_GOOGLE_GROUPS: STAFF,
      SCIM_BRIDGE_GOOGLE_API_URL: google.url,
      SCIM_BRIDGE_GOOGLE_TOKEN_URL: google.tokenUrl,
    };
    const bridge = await startBridge(env, { google: { timings: { retryBaseDelayMs: 10, retryMaxDelayMs: 20, maxAttempts: 2 }, schedule: false }, secretFilesEnv: { ...env, SCIM_BRIDGE_TOKEN: TOKEN } });
    try {
      expect(await bridge.bridge.google!.syncNow()).toMatchObject({ ok: false, error: expect.stringContaining('Invalid JWT Signature') });
      // fetch-secrets (or the kubelet) replaces the file by a rename.
      writeFileSync(`${file}.tmp`, `${newKey.json}\n`);
      renameSync(`${file}.tmp`, file);
      const deadline = Date.now() + 10_000;
      let report = await bridge.bridge.google!.syncNow();
      while (!report.ok && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 300));
        report = await bridge.bridge.google!.syncNow();
      }
      expect(report).toMatchObject({ ok: true, counts: { usersCreated: 2 } });
      expect(google.assertions.length).toBeGreaterThan(0);
    } finally {
      await bridge.stop();
      await google.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('memory: what a sync keeps (the measured figure: npm run bench:google-memory)', () => {
  it('when the directory is read, then each user is kept as one compact string until it is written', async () => {
    const g = await new StandInGoogle(KEY, ADMIN).start();
    try {
      g.addUser('201', 'ada.lovelace@acme.example');
      g.addUser('202', 'alan.turing@acme.example', { suspended: true });
      g.addUser('203', 'no.one@acme.example'); // in no synced group: not kept
      g.addGroup('g1', STAFF, 'Staff', ['201', '202']);
      const api = new DirectoryApi({ serviceAccount: { clientEmail: KEY.clientEmail, privateKey: JSON.parse(KEY.json).private_key }, admin: ADMIN, apiUrl: g.url, tokenUrl: g.tokenUrl });
      const snapshot = await readDirectory(api, [STAFF]);
      api.close();
      expect([...snapshot.users.keys()].sort()).toEqual(['201', '202']);
      expect([...snapshot.users.values()].every((u) => typeof u === 'string')).toBe(true);
      expect(expandUser('202', snapshot.users.get('202')!)).toEqual({ id: '202', email: 'alan.turing@acme.example', givenName: 'Alan', familyName: 'Turing', inactive: true });
      expect(expandUser('9', compactUser({ email: 'x@acme.example', inactive: false }))).toEqual({ id: '9', email: 'x@acme.example', givenName: undefined, familyName: undefined, inactive: false });
    } finally {
      await g.stop();
    }
  });

  it('when the connector talks to Google, then it never calls fetch (whose first use loads undici: ~10 MB resident)', async () => {
    const original = globalThis.fetch;
    const calls: string[] = [];
    globalThis.fetch = ((input: unknown) => {
      calls.push(String(input));
      return Promise.reject(new Error('fetch is not for the connector'));
    }) as typeof fetch;
    try {
      const s = await setup(smallDomain);
      const report = await s.sync();
      expect(report).toMatchObject({ ok: true, counts: { usersCreated: 2 } });
      expect(calls).toEqual([]);
    } finally {
      globalThis.fetch = original;
    }
  });
});

describe('the interval', () => {
  it('when SCIM_BRIDGE_GOOGLE_INTERVAL is 1s, then the bridge syncs on its own, once at start and then every second', async () => {
    const s = await setup(smallDomain, { SCIM_BRIDGE_GOOGLE_INTERVAL: '1s' }, true);
    const until = async (check: () => Promise<boolean>) => {
      const end = Date.now() + 10_000;
      while (!(await check())) {
        if (Date.now() > end) throw new Error('timed out');
        await new Promise((r) => setTimeout(r, 50));
      }
    };
    await until(async () => (await s.health()).google.lastSync?.ok === true);
    expect(sorted(await s.events())).toHaveLength(5);
    s.google.addUser('104', 'dora.dirac@acme.example');
    s.google.groups.get('g1')!.members.push('104');
    await until(async () => (await s.events()).length > 0);
    const health = (await s.health()).google;
    expect(health.intervalSeconds).toBe(1);
    expect(health.nextSyncAt === null || Date.parse(health.nextSyncAt) <= Date.now() + 1_500).toBe(true);
  });
});
