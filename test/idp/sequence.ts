/**
 * The sequence every IdP runs, with each IdP's own habits plugged in: connect, provision (look up, then
 * create), update, deactivate, reactivate, delete, every group operation, import. Used by the IdP tests whose
 * habits are small variations of it.
 */
import { PATCH_OP, TestBridge, GROUP_SCHEMA } from '../helpers/bridge';

type Json = Record<string, any>;

export interface IdpHabits {
  /** The probe the IdP sends when an admin tests the connection. */
  readonly probe: string;
  /** How the IdP looks a user up before creating it (a query string, with its own encoding). */
  lookup(email: string): string;
  /** The user body the IdP sends. */
  user(email: string, given: string, family: string): Json;
  /** How it switches a user off and on again. */
  setActive(b: TestBridge, id: string, email: string, active: boolean): Promise<void>;
  /** How it writes a group's name and members. */
  readonly groupWrites: 'patch' | 'put';
  /** The page size of its imports. */
  readonly importPage: number;
}

export async function runSequence(b: TestBridge, habits: IdpHabits, tag: string): Promise<void> {
  // connect
  const probe = (await b.get(habits.probe).expect(200)).body;
  expect(probe.schemas).toEqual(['urn:ietf:params:scim:api:messages:2.0:ListResponse']);

  // provision: look up, then create
  const ids: string[] = [];
  const emails = [0, 1, 2].map((i) => `${tag}.user${i}@example.com`);
  for (const [i, email] of emails.entries()) {
    expect((await b.get(habits.lookup(email)).expect(200)).body.totalResults).toBe(0);
    const created = (await b.post('/Users', habits.user(email, `${tag}${i}`, 'Person')).expect(201)).body;
    expect(created).toMatchObject({ id: expect.any(String), userName: email, meta: expect.objectContaining({ resourceType: 'User', location: expect.any(String) }) });
    expect((await b.get(habits.lookup(email)).expect(200)).body.Resources.map((r: Json) => r.id)).toEqual([created.id]);
    ids.push(created.id);
  }
  await b.join(ids[0]);

  // update
  const updated = (await b.put(`/Users/${ids[0]}`, { ...habits.user(emails[0], `${tag}0`, 'Renamed') }).expect(200)).body;
  expect(updated.name.familyName).toBe('Renamed');

  // deactivate, reactivate by the same id: an active user is suspended then active again; an invited user is
  // revoked (its invitation withdrawn, SCIM keeps it with active false) then invited again
  const statusOf = async (id: string) => (await b.app.get(`/api/v1/users/${id}`).expect(200)).body.status;
  await habits.setActive(b, ids[0], emails[0], false);
  expect((await b.get(`/Users/${ids[0]}`).expect(200)).body.active).toBe(false);
  expect(await statusOf(ids[0])).toBe('suspended');
  await habits.setActive(b, ids[0], emails[0], true);
  expect((await b.get(`/Users/${ids[0]}`).expect(200)).body.active).toBe(true);
  expect(await statusOf(ids[0])).toBe('active');
  await habits.setActive(b, ids[2], emails[2], false);
  expect((await b.get(`/Users/${ids[2]}`).expect(200)).body.active).toBe(false);
  expect(await statusOf(ids[2])).toBe('revoked');
  // The IdP's lookup still finds it, so it reactivates by id rather than creating it again.
  expect((await b.get(habits.lookup(emails[2])).expect(200)).body.Resources.map((r: Json) => r.id)).toEqual([ids[2]]);
  await habits.setActive(b, ids[2], emails[2], true);
  expect((await b.get(`/Users/${ids[2]}`).expect(200)).body.active).toBe(true);
  expect(await statusOf(ids[2])).toBe('invited');

  // groups: create, add, rename, remove, delete
  const name = `${tag} sequence team`;
  expect((await b.get(`/Groups?filter=${encodeURIComponent(`displayName eq "${name}"`)}`).expect(200)).body.totalResults).toBe(0);
  const g = (await b.post('/Groups', { schemas: [GROUP_SCHEMA], displayName: name, members: [{ value: ids[0] }] }).expect(201)).body;
  const write = async (displayName: string, members: string[]) => {
    if (habits.groupWrites === 'put') {
      await b.put(`/Groups/${g.id}`, { schemas: [GROUP_SCHEMA], displayName, members: members.map((value) => ({ value })) }).expect(200);
    } else {
      await b
        .patch(`/Groups/${g.id}`, {
          schemas: [PATCH_OP],
          Operations: [
            { op: 'replace', path: 'displayName', value: displayName },
            { op: 'replace', path: 'members', value: members.map((value) => ({ value })) },
          ],
        })
        .expect(204);
    }
  };
  await write(`${name} 2`, [ids[0], ids[1]]);
  let read = (await b.get(`/Groups/${g.id}`).expect(200)).body;
  expect(read.displayName).toBe(`${name} 2`);
  expect(read.members.map((m: Json) => m.value).sort()).toEqual([ids[0], ids[1]].sort());
  await write(`${name} 2`, [ids[1]]);
  read = (await b.get(`/Groups/${g.id}`).expect(200)).body;
  expect(read.members.map((m: Json) => m.value)).toEqual([ids[1]]);
  await b.delete(`/Groups/${g.id}`).expect(204);
  await b.get(`/Users/${ids[1]}`).expect(200);

  // delete a user
  await b.delete(`/Users/${ids[1]}`).expect(204);

  // import: pages cover every user once
  const total = (await b.get('/Users?count=0').expect(200)).body.totalResults;
  const seen = new Set<string>();
  for (let start = 1; start <= total; start += habits.importPage) {
    for (const r of (await b.get(`/Users?startIndex=${start}&count=${habits.importPage}`).expect(200)).body.Resources) seen.add(r.id);
  }
  expect(seen.size).toBe(total);
  expect(seen.has(ids[0])).toBe(true);
}
