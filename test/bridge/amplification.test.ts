/**
 * Issue 13, amplification: what one body may make the bridge do. Before, a 1 MB body with `emails` of
 * 500,000 elements was accepted (7.5 s, +384 MB resident, 1,000,000 index rows, a 7 MB event), and a PATCH
 * of 1,000 operations adding 100 emails each compared every new email with every one before it (minutes).
 * Now multi-valued attributes, the members one request names, the attributes of one object and the nesting
 * of a body are bounded, and a body over a bound is refused at once with a 400 that names the bound.
 */
import request from 'supertest';
import { openSqlite } from '../../bridge/src/store/sqlite';
import { readDocument, toUserWrite } from '../../bridge/src/scim/resource';
import { resourceTypes } from '../../bridge/src/scim/schemas';
import { GROUP_SCHEMA, PATCH_OP, patchBody, startBridge, TestBridge, TOKEN, USER_SCHEMA, userBody } from '../helpers/bridge';

/** Generous: "refused at once", not a benchmark figure. */
const QUICK_MS = 2_000;

async function timed<T>(work: () => Promise<T>): Promise<{ res: T; ms: number }> {
  const began = performance.now();
  const res = await work();
  return { res, ms: performance.now() - began };
}

describe('amplification: what one body may cost', () => {
  let b: TestBridge;
  beforeAll(async () => {
    b = await startBridge();
  });
  afterAll(() => b.stop());

  const expectError = (res: request.Response, status: number, scimType: string, detail: RegExp) => {
    expect([res.status, res.body.scimType]).toEqual([status, scimType]);
    expect(res.body.detail).toMatch(detail);
  };

  it("when a 1 MB body holds emails of 500,000 elements (the issue's body), then it is refused at once, naming emails and the maximum, and nothing is written", async () => {
    const body = JSON.stringify({ schemas: [USER_SCHEMA], userName: 'flood@example.com', emails: Array(500_000).fill(0) });
    expect(body.length).toBeLessThan(1024 * 1024);
    const { res, ms } = await timed(() => b.post('/Users').set('Content-Type', 'application/scim+json').send(body));
    expectError(res, 400, 'invalidValue', /^emails holds 500000 values; at most 100 are accepted\.$/);
    expect(ms).toBeLessThan(QUICK_MS);
    expect((await b.get('/Users').query({ filter: 'userName eq "flood@example.com"' }).expect(200)).body.totalResults).toBe(0);
    expect((await b.app.get('/api/v1/events?limit=1000').expect(200)).body.events).toEqual([]);
  });

  it('when a user has 100 emails, then it is accepted; with 101, by POST, PUT or PATCH, then 400 names emails and 100', async () => {
    const emails = (n: number, tag: string) => Array.from({ length: n }, (_, i) => ({ value: `${tag}${i}@example.com`, type: 'other' }));
    const u = (await b.post('/Users', userBody('many.mails@example.com', { emails: emails(100, 'a') })).expect(201)).body;
    expect(u.emails).toHaveLength(100);
    expectError(await b.post('/Users', userBody('too.many@example.com', { emails: emails(101, 'b') })), 400, 'invalidValue', /emails holds 101 values; at most 100/);
    expectError(await b.put(`/Users/${u.id}`, userBody('many.mails@example.com', { emails: emails(101, 'c') })), 400, 'invalidValue', /emails holds 101 values; at most 100/);
    expectError(await b.patch(`/Users/${u.id}`, patchBody({ op: 'add', path: 'emails', value: [{ value: 'one.more@example.com' }] })), 400, 'invalidValue', /emails holds 101 values; at most 100/);
    expectError(
      await b.patch(`/Users/${u.id}`, patchBody({ op: 'add', path: 'phoneNumbers', value: Array.from({ length: 101 }, (_, i) => ({ value: `+1555000${i}` })) })),
      400,
      'invalidValue',
      /phoneNumbers holds 101 values; at most 100/,
    );
    expect((await b.get(`/Users/${u.id}`).expect(200)).body.emails).toHaveLength(100);
  });

  it('when a PATCH of 1,000 operations adds 100 new emails each, then it is refused at once (the list is bounded as it grows)', async () => {
    const u = (await b.post('/Users', userBody('patched.flood@example.com')).expect(201)).body;
    const ops = Array.from({ length: 1000 }, (_, k) => ({ op: 'add', path: 'emails', value: Array.from({ length: 100 }, (_, j) => `${k}.${j}`) }));
    const { res, ms } = await timed(() => b.patch(`/Users/${u.id}`, { schemas: [PATCH_OP], Operations: ops }));
    expectError(res, 400, 'invalidValue', /emails holds \d+ values; at most 100/);
    expect(ms).toBeLessThan(QUICK_MS);
  });

  it('when a body or one of its objects holds more than 1,000 attributes, then it is refused', async () => {
    const flood = Object.fromEntries(Array.from({ length: 1001 }, (_, i) => [`x${i}`, 0]));
    expectError(await b.post('/Users', { ...userBody('keys@example.com'), ...flood }), 400, 'invalidSyntax', /more than 1000 attributes/);
    const u = (await b.post('/Users', userBody('keys.patch@example.com')).expect(201)).body;
    expectError(await b.patch(`/Users/${u.id}`, patchBody({ op: 'replace', value: flood })), 400, 'invalidSyntax', /more than 1000 attributes/);
    expectError(await b.patch(`/Users/${u.id}`, patchBody({ op: 'replace', path: 'name', value: flood })), 400, 'invalidSyntax', /name holds more than 1000 attributes/);
    // A few unknown attributes are still ignored, as before.
    await b.post('/Users', { ...userBody('few.keys@example.com'), x1: 1, x2: 2 }).expect(201);
  });

  it('when a body nests deeper than 16 levels (or is a mebibyte of "["), then it is refused before it is parsed', async () => {
    const deep = (n: number) => `{"schemas":["${USER_SCHEMA}"],"userName":"deep@example.com","nickName":${'['.repeat(n)}1${']'.repeat(n)}}`;
    const send = (body: string) => request(b.url).post('/Users').set('Authorization', `Bearer ${TOKEN}`).set('Content-Type', 'application/scim+json').send(body);
    expectError(await send(deep(16)), 400, 'invalidSyntax', /more than 16 levels deep/);
    // 16 levels pass the bound (and nickName, a string, is then refused for what it is).
    expectError(await send(deep(15)), 400, 'invalidValue', /nickName takes a string/);
    const { res, ms } = await timed(() => send(deep(500_000)));
    expectError(res, 400, 'invalidSyntax', /more than 16 levels deep/);
    expect(ms).toBeLessThan(QUICK_MS);
    // Brackets inside strings are text, not nesting.
    await send(`{"schemas":["${USER_SCHEMA}"],"userName":"brackets@example.com","nickName":"${'[{'.repeat(100)}"}`).expect(201);
    // A PATCH of an extension's manager, as Entra ID sends it, is well within the bound.
    const u = (await b.post('/Users', userBody('managed@example.com')).expect(201)).body;
    await b
      .patch(`/Users/${u.id}`, patchBody({ op: 'add', value: { 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User': { manager: { value: u.id } } } }))
      .expect(200);
  });
});

describe('amplification: what one page may carry', () => {
  let b: TestBridge;
  beforeAll(async () => {
    b = await startBridge();
  });
  afterAll(() => b.stop());

  it('when users are large, then a page stops at 4 MiB of them (itemsPerPage says so) and the next pages carry the rest', async () => {
    // 40 users of about 200 KB each: 8 MB, where a page of 1,000 such users would have been 200 MB.
    const big = 'x'.repeat(50_000);
    const ids: string[] = [];
    for (let i = 0; i < 40; i++) {
      const res = await b.post('/Users', userBody(`big${i}@example.com`, { title: big, nickName: big, displayName: big, profileUrl: `https://example.com/${big}` })).expect(201);
      ids.push(res.body.id);
    }
    const seen: string[] = [];
    let startIndex = 1;
    let pages = 0;
    while (seen.length < 40 && pages < 40) {
      const res = await b.get('/Users').query({ filter: 'userName sw "big"', count: 1000, startIndex }).expect(200);
      expect(res.body.totalResults).toBe(40);
      expect(res.body.itemsPerPage).toBe(res.body.Resources.length);
      expect(JSON.stringify(res.body).length).toBeLessThan(4.5 * 1024 * 1024);
      seen.push(...res.body.Resources.map((r: { id: string }) => r.id));
      startIndex += res.body.itemsPerPage;
      pages++;
    }
    expect(pages).toBeGreaterThan(1);
    expect(seen).toEqual(ids);
  });
});

describe('amplification: members per request', () => {
  const USERS = 10_001;
  let b: TestBridge;
  let ids: string[];
  let dir: string;
  beforeAll(async () => {
    const { mkdtempSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    dir = mkdtempSync(join(tmpdir(), 'scim-bridge-members-'));
    const store = openSqlite(join(dir, 'bridge.db'));
    await store.migrate();
    const template = JSON.stringify(toUserWrite(readDocument(resourceTypes.User, { userName: 'member§@example.com' })));
    const [head, ...rest] = template.split('§');
    ids = await store.bulkInsertUsers(Array.from({ length: USERS }, (_, i) => ({ ...JSON.parse(head + rest.map((p) => `${i}${p}`).join('')), status: 'active' as const })));
    await store.close();
    b = await startBridge({ SCIM_BRIDGE_DATABASE_URL: `sqlite:${join(dir, 'bridge.db')}` });
  }, 60_000);
  afterAll(async () => {
    await b?.stop();
    const { rmSync } = await import('node:fs');
    rmSync(dir, { recursive: true, force: true });
  });

  const members = (list: string[]) => list.map((value) => ({ value }));

  it('when a POST, PUT or PATCH names more than 10,000 members, then 400 invalidValue says the maximum and how to send more', async () => {
    const tooMany = members(ids.slice(0, 10_001));
    const detail = /names 10001 members; at most 10000 are accepted in one request\. Send them in several PATCH requests/;
    expectError(await b.post('/Groups', { schemas: [GROUP_SCHEMA], displayName: 'Too big at once', members: tooMany }), detail);
    const g = (await b.post('/Groups', { schemas: [GROUP_SCHEMA], displayName: 'Grows by PATCH', members: [] }).expect(201)).body;
    expectError(await b.put(`/Groups/${g.id}`, { schemas: [GROUP_SCHEMA], displayName: 'Grows by PATCH', members: tooMany }), detail);
    // Several operations of one PATCH count together.
    expectError(
      await b.patch(`/Groups/${g.id}`, patchBody({ op: 'add', path: 'members', value: tooMany.slice(0, 6000) }, { op: 'add', path: 'members', value: tooMany.slice(6000) })),
      detail,
    );
    const read = (await b.get(`/Groups/${g.id}`).expect(200)).body;
    expect(read.members ?? []).toEqual([]);

    function expectError(res: request.Response, pattern: RegExp) {
      expect([res.status, res.body.scimType]).toEqual([400, 'invalidValue']);
      expect(res.body.detail).toMatch(pattern);
    }
  });

  it("when members come in PATCHes within the bound, then a group holds more than 10,000 (a group's size is not capped)", async () => {
    const g = (await b.post('/Groups', { schemas: [GROUP_SCHEMA], displayName: 'Large', members: members(ids.slice(0, 10_000)) }).expect(201)).body;
    await b.patch(`/Groups/${g.id}`, patchBody({ op: 'add', path: 'members', value: members(ids.slice(10_000)) })).expect(204);
    const filtered = await b.get('/Groups').query({ filter: `id eq "${g.id}" and members eq "${ids[USERS - 1]}"`, excludedAttributes: 'members' }).expect(200);
    expect(filtered.body.totalResults).toBe(1);
    expect((await b.get(`/Groups/${g.id}`).expect(200)).body.members).toHaveLength(USERS);
  });
});
