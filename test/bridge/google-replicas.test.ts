/**
 * The Google Workspace connector on several replicas (issue 17): two bridge processes (`npm start`'s entry point) on
 * one PostgreSQL database, both configured to sync every 2 s from the stand-in Google. Only the holder of the sync
 * lease syncs, the other stays on standby; when the holder is killed (SIGKILL, no release), the other takes the
 * lease over within 30 s and syncs, and the directory ends as Google says.
 */
import { ChildBridge, spawnBridge } from '../helpers/child';
import { serviceAccountKey, StandInGoogle } from '../helpers/google';
import { createTestDatabase } from '../helpers/postgres';

type Json = Record<string, any>;
const TOKEN = 'google-replicas-token-0123456789abcdef';
const ADMIN = 'admin@acme.example';
const STAFF = 'staff@acme.example';
const KEY = serviceAccountKey();

let google: StandInGoogle;
let replicas: ChildBridge[] = [];

async function health(r: ChildBridge): Promise<Json> {
  const res = await fetch(`${r.url}/health`, { headers: { Authorization: `Bearer ${TOKEN}` } });
  return ((await res.json()) as Json).google;
}

async function userNames(r: ChildBridge): Promise<string[]> {
  const res = await fetch(`${r.url}/Users?count=100`, { headers: { Authorization: `Bearer ${TOKEN}` } });
  return ((await res.json()) as Json).Resources.map((u: Json) => u.userName).sort();
}

async function until<T>(what: string, ms: number, check: () => Promise<T | undefined | false>): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Syncs seen by the stand-in: each reads the synced group once. */
const syncsSeen = () => google.seen(`/admin/directory/v1/groups/${encodeURIComponent(STAFF)}`).filter((s) => !s.path.endsWith('/members')).length;

beforeAll(async () => {
  google = await new StandInGoogle(KEY, ADMIN).start();
  const members = ['ada.lovelace', 'alan.turing', 'grace.hopper'].map((n, i) => google.addUser(`u${i}`, `${n}@acme.example`).id);
  google.addGroup('g1', STAFF, 'Staff', members);
  const env = {
    SCIM_BRIDGE_DATABASE_URL: await createTestDatabase('google_replicas'),
    SCIM_BRIDGE_TOKEN: TOKEN,
    SCIM_BRIDGE_GOOGLE_CREDENTIALS: KEY.json,
    SCIM_BRIDGE_GOOGLE_ADMIN: ADMIN,
    SCIM_BRIDGE_GOOGLE_GROUPS: STAFF,
    SCIM_BRIDGE_GOOGLE_INTERVAL: '2s',
    SCIM_BRIDGE_GOOGLE_API_URL: google.url,
    SCIM_BRIDGE_GOOGLE_TOKEN_URL: google.tokenUrl,
  };
  // Started together: both try for the lease at once.
  replicas = await Promise.all([0, 1].map(() => spawnBridge(env)));
}, 120_000);

afterAll(async () => {
  for (const r of replicas) r.kill();
  await google?.stop();
});

test('when two replicas sync every 2 s, then exactly one syncs; killed, the other takes over within 30 s', async () => {
  // A few intervals: the holder syncs each time, the other never.
  const [holder, standby] = await until('a first sync', 30_000, async () => {
    const states = await Promise.all(replicas.map(health));
    const i = states.findIndex((s) => s.syncs >= 1 && s.lastSync?.ok === true);
    return i >= 0 ? [replicas[i], replicas[1 - i]] : undefined;
  });
  await until('three syncs', 30_000, async () => (await health(holder)).syncs >= 3);
  const [h, s] = await Promise.all([health(holder), health(standby)]);
  expect(s).toMatchObject({ state: 'standby', syncs: 0, lastSync: null });
  expect(h.lastSync).toMatchObject({ ok: true, counts: { users: 3 } });
  // What Google saw: the holder's syncs only (one read of the group each), none of them at the same time.
  expect(syncsSeen()).toBeGreaterThanOrEqual(3);
  expect(syncsSeen()).toBeLessThanOrEqual((await health(holder)).syncs + 1);
  expect(await userNames(standby)).toEqual(['ada.lovelace@acme.example', 'alan.turing@acme.example', 'grace.hopper@acme.example']);

  // Google changes; the holder dies without releasing the lease.
  google.addUser('u3', 'barbara.liskov@acme.example');
  google.groups.get('g1')!.members.push('u3');
  holder.kill();
  const killedAt = Date.now();
  await holder.exited;
  const seenAtKill = syncsSeen();
  const taken = await until('the standby replica to sync', 30_000, async () => {
    const state = await health(standby);
    return state.syncs >= 1 && state.lastSync?.ok === true ? state : undefined;
  });
  expect(Date.now() - killedAt).toBeLessThan(30_000);
  expect(taken.lastSync.counts).toMatchObject({ users: 4, usersCreated: 1, membersAdded: 1 });
  expect(syncsSeen()).toBeGreaterThan(seenAtKill);
  expect(await userNames(standby)).toContain('barbara.liskov@acme.example');
  // It goes on syncing every interval.
  await until('a second sync on the new holder', 15_000, async () => (await health(standby)).syncs >= 2);
}, 120_000);
