/**
 * A group of many members is served page by page (issue 18): its members are read from the store a page at a time
 * and written to the response as they come, so that a 50,000-member group is never whole in the bridge's memory.
 * The client cannot tell: the body is, byte for byte, the JSON document of the whole group, projections included.
 */
import type { SqlStore } from '../../bridge/src/store/sql-store';
import type { Store } from '../../bridge/src/store';
import { parseProjection, project } from '../../bridge/src/scim/query';
import { readDocument, renderGroup, toUserWrite } from '../../bridge/src/scim/resource';
import { resourceTypes } from '../../bridge/src/scim/schemas';
import { MEMBER_PAGE } from '../../bridge/src/scim/service';
import { GROUP_SCHEMA, patchBody, startBridge, STORES, TestBridge, TOKEN } from '../helpers/bridge';

type Json = Record<string, any>;

/** Two and a half pages of users, and a group among the members. */
const USERS = Math.round(MEMBER_PAGE * 2.5);

describe.each(STORES)(`a group of ${USERS + 1} members on %s`, (store) => {
  let b: TestBridge;
  let groupId: string;
  let nestedId: string;
  /** The store's page reads during a request: [after, how many came back]. */
  let pages: [string | null, number][] = [];
  /** Runs (once) before the store reads the second page of members. */
  let beforeSecondPage: (() => Promise<void>) | undefined;

  beforeAll(async () => {
    b = await startBridge({}, { store });
    const s = b.bridge.store as SqlStore;
    // Users straight into the store (thousands of POSTs would take minutes); every other one with a displayName,
    // so that `display` comes from displayName for some members and from userName for the others.
    const users = Array.from({ length: USERS }, (_, i) => ({
      ...toUserWrite(readDocument(resourceTypes.User, { userName: `member${i}@example.com`, ...(i % 2 === 0 ? { displayName: `Member ${i}` } : {}) })),
      status: 'invited' as const,
    }));
    const ids = await s.bulkInsertUsers(users);
    nestedId = (await b.post('/Groups', { schemas: [GROUP_SCHEMA], displayName: 'Nested' }).expect(201)).body.id;
    groupId = (await b.post('/Groups', { schemas: [GROUP_SCHEMA], displayName: 'Everyone', externalId: 'everyone-1', members: [...ids, nestedId].map((value) => ({ value })) }).expect(201)).body.id;
    const read = s.groupMembers.bind(s);
    (s as Store).groupMembers = async (id, after, limit) => {
      if (after !== null && beforeSecondPage) {
        const run = beforeSecondPage;
        beforeSecondPage = undefined;
        await run();
      }
      const page = await read(id, after, limit);
      pages.push([after, page.length]);
      return page;
    };
  }, 120_000);
  afterAll(() => b?.stop());
  beforeEach(() => {
    pages = [];
  });

  /** What the bridge answered before it streamed: the whole group rendered and projected as one document. */
  async function wholeDocument(query: Record<string, string> = {}): Promise<string> {
    const rec = (await b.bridge.store.getGroup(groupId, true))!;
    return JSON.stringify(project(renderGroup(rec, b.url), parseProjection(resourceTypes.Group, query.attributes, query.excludedAttributes)));
  }

  it('when the group has more members than a page, then GET /Groups/{id} sends it in pieces, page by page, and the body is the whole group as one JSON document', async () => {
    const res = await b.get(`/Groups/${groupId}`).expect(200);
    expect(res.headers['transfer-encoding']).toBe('chunked');
    expect(res.headers['content-length']).toBeUndefined();
    expect(res.headers['content-type']).toMatch(/^application\/scim\+json/);
    expect(res.headers.etag).toMatch(/^W\/"\d+"$/);
    expect(res.text).toBe(await wholeDocument());
    const body = res.body as Json;
    expect(body.members).toHaveLength(USERS + 1);
    expect(body.members.find((m: Json) => m.value === nestedId)).toEqual({ value: nestedId, $ref: `${b.url}/Groups/${nestedId}`, type: 'Group', display: 'Nested' });
    // Read in pages of MEMBER_PAGE, each after the last member of the one before: never the whole group at once.
    expect(pages.map(([, n]) => n)).toEqual([MEMBER_PAGE, MEMBER_PAGE, USERS + 1 - 2 * MEMBER_PAGE]);
    expect(pages[0][0]).toBeNull();
    expect(pages.every(([, n]) => n <= MEMBER_PAGE)).toBe(true);
  });

  it.each<Record<string, string>>([
    { attributes: 'members' },
    { attributes: 'members.value,displayName' },
    { attributes: 'members.display,members.type' },
    { excludedAttributes: 'members.display' },
    { excludedAttributes: 'members.$ref,meta,externalId' },
    { excludedAttributes: 'displayName' },
  ])('when the big group is read with %j, then the body is the projected whole group', async (query) => {
    const res = await b.get(`/Groups/${groupId}?${new URLSearchParams(query)}`).expect(200);
    expect(res.headers['transfer-encoding']).toBe('chunked');
    expect(res.text).toBe(await wholeDocument(query));
  });

  it('when the members are left out (excludedAttributes=members), then no page of members is read', async () => {
    const res = await b.get(`/Groups/${groupId}?excludedAttributes=members`).expect(200);
    expect(res.text).toBe(await wholeDocument({ excludedAttributes: 'members' }));
    expect(res.body.members).toBeUndefined();
    expect(pages).toEqual([]);
  });

  it('when a PATCH asks for the members back (attributes=members), then the group after the change is streamed the same way', async () => {
    const res = await b.patch(`/Groups/${groupId}?attributes=members,displayName`, patchBody({ op: 'replace', path: 'displayName', value: 'Everyone, renamed' })).expect(200);
    expect(res.headers['transfer-encoding']).toBe('chunked');
    expect(res.text).toBe(await wholeDocument({ attributes: 'members,displayName' }));
    expect(res.body.displayName).toBe('Everyone, renamed');
  });

  it('when the group changes while its members are being sent, then the response is cut off rather than showing a membership that never was', async () => {
    beforeSecondPage = async () => {
      await b.bridge.store.updateGroup(groupId, (current) => ({ group: current, members: [{ op: 'remove', ids: [nestedId] }] }));
    };
    const res = await fetch(`${b.url}/Groups/${groupId}`, { headers: { Authorization: `Bearer ${TOKEN}` } });
    expect(res.status).toBe(200);
    await expect(res.text()).rejects.toThrow();
    // Asked again, the group is whole and current.
    const again = await b.get(`/Groups/${groupId}`).expect(200);
    expect(again.text).toBe(await wholeDocument());
    expect(again.body.members).toHaveLength(USERS);
  });

  it('when a group fits in one page, then it is one body with its length, as before', async () => {
    const res = await b.get(`/Groups/${nestedId}`).expect(200);
    expect(res.headers['content-length']).toBe(String(Buffer.byteLength(res.text)));
    const small = (await b.post('/Groups', { schemas: [GROUP_SCHEMA], displayName: 'Small', members: [{ value: nestedId }] }).expect(201)).body;
    const got = await b.get(`/Groups/${small.id}`).expect(200);
    expect(got.headers['content-length']).toBeDefined();
    expect(got.body.members).toEqual([{ value: nestedId, $ref: `${b.url}/Groups/${nestedId}`, type: 'Group', display: 'Nested' }]);
  });
});
