/**
 * Errors and the resource contract over HTTP: every error is a SCIM Error body (RFC 7644 §3.12) sent as
 * application/scim+json; unknown attributes and passwords are never kept; meta and ETags are complete.
 */
import { existsSync, readFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { join } from 'node:path';
import type { Response } from 'supertest';
import { GROUP_SCHEMA, patchBody, startBridge, TestBridge, TOKEN, USER_SCHEMA, userBody } from '../helpers/bridge';

const ERROR_URN = 'urn:ietf:params:scim:api:messages:2.0:Error';

interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  body: any;
}

/** A request exactly as given: no Content-Type unless one is set (supertest would add one). */
function raw(url: string, method: string, path: string, headers: Record<string, string>, body?: string | Buffer): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const u = new URL(path, url);
    // Content-Length spelled out (Node leaves it off a DELETE), one connection per request.
    const length: Record<string, string> = body !== undefined && !('Transfer-Encoding' in headers) ? { 'Content-Length': String(Buffer.byteLength(body)) } : {};
    const req = httpRequest(
      { host: u.hostname, port: u.port, method, path: u.pathname + u.search, agent: false, headers: { Authorization: `Bearer ${TOKEN}`, ...length, ...headers } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed: unknown;
          try {
            parsed = JSON.parse(text);
          } catch {
            parsed = undefined;
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, body: parsed });
        });
        res.on('error', reject);
      },
    );
    req.setTimeout(10_000, () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    if (body !== undefined) req.end(body);
    else req.end();
  });
}

/** The response is a SCIM Error body with this status (and scimType, when given), as application/scim+json. */
function expectScimError(res: Response | RawResponse, status: number, scimType?: string): void {
  expect(res.status).toBe(status);
  expect(res.headers['content-type']).toMatch(/^application\/scim\+json/);
  const body = (res as RawResponse).body ?? JSON.parse((res as Response).text);
  expect(body.schemas).toEqual([ERROR_URN]);
  expect(body.status).toBe(String(status));
  expect(typeof body.status).toBe('string');
  expect(typeof body.detail).toBe('string');
  expect(body.detail.trim().length).toBeGreaterThan(0);
  if (scimType !== undefined) expect(body.scimType).toBe(scimType);
}

/** The SQLite file and its WAL as one buffer: what is on disk after a request. */
function dbBytes(b: TestBridge): Buffer {
  const file = join(b.dir, 'bridge.db');
  const parts = [readFileSync(file)];
  if (existsSync(`${file}-wal`)) parts.push(readFileSync(`${file}-wal`));
  return Buffer.concat(parts);
}

function expectMetaComplete(body: any, resourceType: 'User' | 'Group', url: string): void {
  expect(body.meta).toBeDefined();
  expect(body.meta.resourceType).toBe(resourceType);
  expect(typeof body.meta.created).toBe('string');
  expect(Number.isNaN(Date.parse(body.meta.created))).toBe(false);
  expect(typeof body.meta.lastModified).toBe('string');
  expect(Number.isNaN(Date.parse(body.meta.lastModified))).toBe(false);
  expect(Date.parse(body.meta.lastModified)).toBeGreaterThanOrEqual(Date.parse(body.meta.created));
  expect(body.meta.location).toBe(`${url}/${resourceType}s/${body.id}`);
  expect(typeof body.meta.version).toBe('string');
  expect(body.meta.version).toMatch(/^(W\/)?"[^"]+"$/);
}

const UNKNOWN_ID = '00000000-0000-4000-8000-000000000000';

describe('SCIM errors and the resource contract', () => {
  let b: TestBridge;
  let seq = 0;
  const uniqueName = (prefix = 'user') => `${prefix}.n${++seq}@example.com`;

  beforeAll(async () => {
    b = await startBridge();
  });
  afterAll(() => b.stop());

  describe('400 invalidSyntax', () => {
    it('when the body is malformed JSON, then 400 invalidSyntax as a SCIM error', async () => {
      const res = await raw(b.url, 'POST', '/Users', { 'Content-Type': 'application/scim+json' }, '{"userName": "a@example.com",');
      expectScimError(res, 400, 'invalidSyntax');
    });

    it('when the body of a PATCH is malformed JSON, then 400 invalidSyntax', async () => {
      const created = await b.post('/Users', userBody(uniqueName())).expect(201);
      const res = await raw(b.url, 'PATCH', `/Users/${created.body.id}`, { 'Content-Type': 'application/json' }, '{"Operations": [');
      expectScimError(res, 400, 'invalidSyntax');
    });

    it.each([
      ['an array', '[{"userName": "x@example.com"}]'],
      ['a string', '"x@example.com"'],
      ['a number', '42'],
      ['null', 'null'],
      ['true', 'true'],
    ])('when the body of POST /Users is %s instead of an object, then 400 invalidSyntax', async (_what, text) => {
      const res = await raw(b.url, 'POST', '/Users', { 'Content-Type': 'application/scim+json' }, text);
      expectScimError(res, 400, 'invalidSyntax');
    });

    it('when POST /Users has no body at all, then 400 invalidSyntax', async () => {
      const res = await raw(b.url, 'POST', '/Users', { 'Content-Length': '0' });
      expectScimError(res, 400, 'invalidSyntax');
    });

    it('when the body of POST /Groups is an array, then 400 invalidSyntax', async () => {
      const res = await raw(b.url, 'POST', '/Groups', { 'Content-Type': 'application/scim+json' }, '[]');
      expectScimError(res, 400, 'invalidSyntax');
    });
  });

  describe('400 invalidValue', () => {
    it('when a user has no userName, then 400 invalidValue', async () => {
      const { userName: _drop, ...body } = userBody('nobody@example.com');
      const res = await b.post('/Users', body);
      expectScimError(res, 400, 'invalidValue');
    });

    it('when a user has an empty userName, then 400 invalidValue', async () => {
      const res = await b.post('/Users', userBody('x@example.com', { userName: '   ' }));
      expectScimError(res, 400, 'invalidValue');
    });

    it('when a user has active "maybe", then 400 invalidValue and nothing is created', async () => {
      const name = uniqueName('maybe');
      const res = await b.post('/Users', userBody(name, { active: 'maybe' }));
      expectScimError(res, 400, 'invalidValue');
      const found = await b.get('/Users').query({ filter: `userName eq "${name}"` }).expect(200);
      expect(found.body.totalResults).toBe(0);
    });

    it('when a PUT sets active to "maybe", then 400 invalidValue', async () => {
      const name = uniqueName();
      const created = await b.post('/Users', userBody(name)).expect(201);
      const res = await b.put(`/Users/${created.body.id}`, userBody(name, { active: 'maybe' }));
      expectScimError(res, 400, 'invalidValue');
    });

    it('when a group has no displayName, then 400 invalidValue', async () => {
      const res = await b.post('/Groups', { schemas: [GROUP_SCHEMA], members: [] });
      expectScimError(res, 400, 'invalidValue');
    });
  });

  describe('404', () => {
    it.each(['Users', 'Groups'])('when GET /%s/{unknown id}, then 404 as a SCIM error', async (kind) => {
      expectScimError(await b.get(`/${kind}/${UNKNOWN_ID}`), 404);
      expectScimError(await b.get(`/scim/v2/${kind}/${UNKNOWN_ID}`), 404);
    });

    it('when PUT /Users/{unknown id}, then 404', async () => {
      expectScimError(await b.put(`/Users/${UNKNOWN_ID}`, userBody(uniqueName())), 404);
    });

    it('when PUT /Groups/{unknown id}, then 404', async () => {
      expectScimError(await b.put(`/Groups/${UNKNOWN_ID}`, { schemas: [GROUP_SCHEMA], displayName: 'Nowhere' }), 404);
    });

    it.each(['Users', 'Groups'])('when PATCH /%s/{unknown id}, then 404', async (kind) => {
      const res = await b.patch(`/${kind}/${UNKNOWN_ID}`, patchBody({ op: 'replace', path: 'displayName', value: 'X' }));
      expectScimError(res, 404);
    });

    it.each(['Users', 'Groups'])('when DELETE /%s/{unknown id}, then 404', async (kind) => {
      expectScimError(await b.delete(`/${kind}/${UNKNOWN_ID}`), 404);
    });

    it('when an id is not even uuid-shaped, then still 404 (not 400 or 500)', async () => {
      expectScimError(await b.get(`/Users/${encodeURIComponent("x' OR 1=1 --")}`), 404);
      expectScimError(await b.get('/Groups/%F0%9F%92%A9'), 404);
    });

    it('when a user was deleted, then GET and DELETE give 404', async () => {
      const created = await b.post('/Users', userBody(uniqueName())).expect(201);
      await b.delete(`/Users/${created.body.id}`).expect(204);
      expectScimError(await b.get(`/Users/${created.body.id}`), 404);
      expectScimError(await b.delete(`/Users/${created.body.id}`), 404);
    });

    it.each(['/Nope', '/scim/v2/Nope', '/Users/a/b', '/scim/v3/Users', '/Bulk'])('when GET %s (no such endpoint), then 404 as a SCIM error', async (path) => {
      expectScimError(await b.get(path), 404);
    });

    it.each([['DELETE', '/Users'], ['PUT', '/Groups'], ['PATCH', '/Users'], ['POST', '/Users/00000000-0000-4000-8000-000000000000']])(
      'when %s %s (a method the endpoint does not have), then a 404 or 405 SCIM error',
      async (method, path) => {
        const res = await raw(b.url, method, path, { 'Content-Type': 'application/scim+json' }, '{}');
        expect([404, 405]).toContain(res.status);
        expectScimError(res, res.status);
      },
    );

    it('when POST to an unknown endpoint, then 404 as a SCIM error', async () => {
      expectScimError(await b.post('/Nope', { a: 1 }), 404);
    });
  });

  describe('409 uniqueness', () => {
    it('when a userName differs from an existing one only in case, then 409 uniqueness', async () => {
      const name = uniqueName('case');
      await b.post('/Users', userBody(name)).expect(201);
      const res = await b.post('/Users', userBody(name.toUpperCase()));
      expectScimError(res, 409, 'uniqueness');
      const found = await b.get('/Users').query({ filter: `userName eq "${name}"` }).expect(200);
      expect(found.body.totalResults).toBe(1);
    });

    it('when a PUT renames a user to another user\'s userName in another case, then 409 uniqueness', async () => {
      const a = uniqueName('a');
      await b.post('/Users', userBody(a)).expect(201);
      const other = await b.post('/Users', userBody(uniqueName('b'))).expect(201);
      const res = await b.put(`/Users/${other.body.id}`, userBody(a.toUpperCase()));
      expectScimError(res, 409, 'uniqueness');
    });

    it('when ten clients create the same userName at once (in different cases), then exactly one 201 and nine 409 uniqueness', async () => {
      const name = uniqueName('race');
      const results = await Promise.all(Array.from({ length: 10 }, (_, i) => b.post('/Users', userBody(i % 2 ? name.toUpperCase() : name))));
      expect(results.filter((r) => r.status === 201)).toHaveLength(1);
      for (const r of results.filter((x) => x.status !== 201)) expectScimError(r, 409, 'uniqueness');
    });

    it('when a group displayName differs from an existing one only in case, then 409 uniqueness', async () => {
      await b.post('/Groups', { schemas: [GROUP_SCHEMA], displayName: 'Engineering Unique' }).expect(201);
      const res = await b.post('/Groups', { schemas: [GROUP_SCHEMA], displayName: 'ENGINEERING unique' });
      expectScimError(res, 409, 'uniqueness');
    });
  });

  describe('413 and 415', () => {
    it('when a body is over 1 MiB, then 413 as a SCIM error', async () => {
      const big = JSON.stringify(userBody(uniqueName('big'), { title: 'x'.repeat(1024 * 1024 + 10) }));
      const res = await raw(b.url, 'POST', '/Users', { 'Content-Type': 'application/scim+json', 'Content-Length': String(Buffer.byteLength(big)) }, big);
      expectScimError(res, 413);
    });

    it('when a body over 1 MiB is sent chunked (no Content-Length), then 413 as a SCIM error', async () => {
      const big = JSON.stringify(userBody(uniqueName('chunked'), { title: 'y'.repeat(1024 * 1024 + 10) }));
      const res = await raw(b.url, 'POST', '/Users', { 'Content-Type': 'application/scim+json', 'Transfer-Encoding': 'chunked' }, big);
      expectScimError(res, 413);
    });

    it('when a PATCH body is over 1 MiB, then 413 as a SCIM error', async () => {
      const group = await b.post('/Groups', { schemas: [GROUP_SCHEMA], displayName: 'Big Patch' }).expect(201);
      const members = Array.from({ length: 30000 }, (_, i) => ({ value: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}` }));
      const text = JSON.stringify(patchBody({ op: 'add', path: 'members', value: members }));
      expect(Buffer.byteLength(text)).toBeGreaterThan(1024 * 1024);
      const res = await raw(b.url, 'PATCH', `/Groups/${group.body.id}`, { 'Content-Type': 'application/json' }, text);
      expectScimError(res, 413);
    });

    it('when a body of just under 1 MiB is sent, then it is accepted (the limit is 1 MiB, not less)', async () => {
      const body = userBody(uniqueName('nearly'));
      const base = Buffer.byteLength(JSON.stringify({ ...body, nickName: '' }));
      const text = JSON.stringify({ ...body, nickName: 'n'.repeat(60000), title: 't'.repeat(60000), ignoredPadding: 'p'.repeat(1024 * 1024 - base - 120100) });
      expect(Buffer.byteLength(text)).toBeLessThanOrEqual(1024 * 1024);
      expect(Buffer.byteLength(text)).toBeGreaterThan(1024 * 1024 - 200);
      const res = await raw(b.url, 'POST', '/Users', { 'Content-Type': 'application/scim+json' }, text);
      expect(res.status).toBe(201);
    });

    it('when the body is text/plain, then 415 as a SCIM error', async () => {
      const res = await raw(b.url, 'POST', '/Users', { 'Content-Type': 'text/plain' }, JSON.stringify(userBody(uniqueName())));
      expectScimError(res, 415);
    });

    it('when the body declares a charset other than UTF-8, then 415 as a SCIM error', async () => {
      const res = await raw(b.url, 'POST', '/Users', { 'Content-Type': 'application/json; charset=iso-8859-1' }, JSON.stringify(userBody(uniqueName())));
      expectScimError(res, 415);
    });

    it('when a gzip body inflates to more than 1 MiB, then 413 as a SCIM error', async () => {
      const { gzipSync } = require('node:zlib') as typeof import('node:zlib');
      const bomb = gzipSync(Buffer.from(JSON.stringify(userBody(uniqueName('gzip'), { title: ' '.repeat(5 * 1024 * 1024) }))));
      expect(bomb.length).toBeLessThan(1024 * 1024);
      const res = await raw(b.url, 'POST', '/Users', { 'Content-Type': 'application/json', 'Content-Encoding': 'gzip' }, bomb);
      expectScimError(res, 413);
    });

    it('when a PATCH body is form-encoded, then 415 as a SCIM error', async () => {
      const created = await b.post('/Users', userBody(uniqueName())).expect(201);
      const res = await raw(b.url, 'PATCH', `/Users/${created.body.id}`, { 'Content-Type': 'application/x-www-form-urlencoded' }, 'op=replace');
      expectScimError(res, 415);
    });

    it('when a body is sent without a Content-Type, then 415 as a SCIM error', async () => {
      const text = JSON.stringify(userBody(uniqueName('notype')));
      const res = await raw(b.url, 'POST', '/Users', { 'Content-Length': String(Buffer.byteLength(text)) }, text);
      expectScimError(res, 415);
    });

    it('when a PUT body is sent without a Content-Type, then 415 and the user is unchanged', async () => {
      const name = uniqueName();
      const created = await b.post('/Users', userBody(name)).expect(201);
      const res = await raw(b.url, 'PUT', `/Users/${created.body.id}`, {}, JSON.stringify(userBody(name, { title: 'Changed' })));
      expectScimError(res, 415);
      const read = await b.get(`/Users/${created.body.id}`).expect(200);
      expect(read.body.title).toBeUndefined();
    });

    it.each(['application/json', 'application/scim+json', 'application/scim+json; charset=utf-8', 'application/json; charset=UTF-8'])(
      'when the body is sent as %s, then it is accepted and the answer is application/scim+json',
      async (type) => {
        const name = uniqueName('type');
        const res = await raw(b.url, 'POST', '/Users', { 'Content-Type': type }, JSON.stringify(userBody(name)));
        expect(res.status).toBe(201);
        expect(res.headers['content-type']).toMatch(/^application\/scim\+json/);
        expect(res.body.userName).toBe(name);
      },
    );
  });

  describe('responses are application/scim+json', () => {
    it.each(['/Users', '/Groups', '/ServiceProviderConfig', '/ResourceTypes', '/Schemas', '/scim/v2/Users'])('when GET %s, then the answer is application/scim+json', async (path) => {
      const res = await b.get(path).expect(200);
      expect(res.headers['content-type']).toMatch(/^application\/scim\+json/);
    });

    it('when a user is created, read, replaced and patched, then every answer is application/scim+json', async () => {
      const name = uniqueName();
      const created = await b.post('/Users', userBody(name)).expect(201);
      const id = created.body.id;
      for (const res of [
        created,
        await b.get(`/Users/${id}`).expect(200),
        await b.put(`/Users/${id}`, userBody(name, { title: 'T' })).expect(200),
        await b.patch(`/Users/${id}`, patchBody({ op: 'replace', path: 'title', value: 'U' })).expect(200),
      ]) {
        expect(res.headers['content-type']).toMatch(/^application\/scim\+json/);
      }
    });
  });

  describe('unknown attributes', () => {
    it('when a user is created with unknown attributes, then they are neither returned nor stored', async () => {
      const marker = 'unknown-attribute-marker-7c1f0a';
      const res = await b
        .post('/Users', userBody(uniqueName('unknown'), { favouriteColour: marker, 'urn:example:custom:2.0:User': { shoeSize: marker }, name: { givenName: 'G', familyName: 'F', nickname2: marker } }))
        .expect(201);
      expect(res.text).not.toContain(marker);
      expect(res.body).not.toHaveProperty('favouriteColour');
      expect(res.body).not.toHaveProperty(['urn:example:custom:2.0:User']);
      expect(res.body.schemas).not.toContain('urn:example:custom:2.0:User');
      const read = await b.get(`/Users/${res.body.id}`).expect(200);
      expect(read.text).not.toContain(marker);
      expect(read.body.name.givenName).toBe('G');
      expect(dbBytes(b).includes(Buffer.from(marker))).toBe(false);
    });

    it('when a group is created or replaced with unknown attributes, then they are neither returned nor stored', async () => {
      const marker = 'group-unknown-marker-99ab12';
      const res = await b.post('/Groups', { schemas: [GROUP_SCHEMA], displayName: 'Unknowns', colour: marker }).expect(201);
      expect(res.text).not.toContain(marker);
      const put = await b.put(`/Groups/${res.body.id}`, { schemas: [GROUP_SCHEMA], displayName: 'Unknowns', colour: marker, extra: { x: marker } }).expect(200);
      expect(put.text).not.toContain(marker);
      const read = await b.get(`/Groups/${res.body.id}`).expect(200);
      expect(read.text).not.toContain(marker);
      expect(dbBytes(b).includes(Buffer.from(marker))).toBe(false);
    });
  });

  describe('password', () => {
    it('when a user is created with a password, then it is not returned, not readable and not in the database file', async () => {
      const password = 'Pa55-w0rd-never-stored-3f9d2c';
      const stored = 'stored-title-control-4e8a10';
      const res = await b.post('/Users', userBody(uniqueName('pw'), { password, title: stored })).expect(201);
      expect(res.text).not.toContain(password);
      expect(res.body).not.toHaveProperty('password');
      const read = await b.get(`/Users/${res.body.id}`).query({ attributes: 'password,userName' }).expect(200);
      expect(read.text).not.toContain(password);
      expect(read.body).not.toHaveProperty('password');
      const list = await b.get('/Users').query({ filter: `id eq "${res.body.id}"` }).expect(200);
      expect(list.text).not.toContain(password);
      // The control: what is stored can be found this way, so the password's absence means something.
      expect(dbBytes(b).includes(Buffer.from(stored))).toBe(true);
      expect(dbBytes(b).includes(Buffer.from(password))).toBe(false);
    });

    it('when a PUT carries a password, then it is not returned and not in the database file', async () => {
      const password = 'Put-Pa55word-never-stored-81be44';
      const name = uniqueName('pwput');
      const created = await b.post('/Users', userBody(name)).expect(201);
      const res = await b.put(`/Users/${created.body.id}`, userBody(name, { password })).expect(200);
      expect(res.text).not.toContain(password);
      expect(dbBytes(b).includes(Buffer.from(password))).toBe(false);
    });

    it('when a PATCH sets a password, then it is not returned and not in the database file', async () => {
      const p1 = 'Patch-Pa55word-with-path-0a71c3';
      const p2 = 'Patch-Pa55word-no-path-5d2e96';
      const created = await b.post('/Users', userBody(uniqueName('pwpatch'))).expect(201);
      const id = created.body.id;
      const r1 = await b.patch(`/Users/${id}`, patchBody({ op: 'replace', path: 'password', value: p1 }));
      expect(r1.status).toBeLessThan(500);
      expect(r1.text).not.toContain(p1);
      const r2 = await b.patch(`/Users/${id}`, patchBody({ op: 'replace', value: { password: p2, title: 'After' } }));
      expect(r2.status).toBeLessThan(500);
      expect(r2.text).not.toContain(p2);
      const read = await b.get(`/Users/${id}`).expect(200);
      expect(read.text).not.toContain(p1);
      expect(read.text).not.toContain(p2);
      const bytes = dbBytes(b);
      expect(bytes.includes(Buffer.from(p1))).toBe(false);
      expect(bytes.includes(Buffer.from(p2))).toBe(false);
    });
  });

  describe('meta and ETags', () => {
    it('when a user is created, read, replaced and patched, then meta is complete and the ETag header equals meta.version', async () => {
      const name = uniqueName('meta');
      const created = await b.post('/Users', userBody(name)).expect(201);
      const id = created.body.id;
      const responses = [
        created,
        await b.get(`/Users/${id}`).expect(200),
        await b.get(`/scim/v2/Users/${id}`).expect(200),
        await b.put(`/Users/${id}`, userBody(name, { title: 'T' })).expect(200),
        await b.patch(`/Users/${id}`, patchBody({ op: 'replace', path: 'title', value: 'U' })).expect(200),
      ];
      const bases = [b.url, b.url, `${b.url}/scim/v2`, b.url, b.url];
      for (const [i, res] of responses.entries()) {
        expectMetaComplete(res.body, 'User', bases[i]);
        expect(res.headers.etag).toBe(res.body.meta.version);
      }
      expect(created.headers.location).toBe(created.body.meta.location);
      // Each change gives a new version; reading does not.
      const versions = responses.map((r) => r.body.meta.version);
      expect(versions[1]).toBe(versions[0]);
      expect(versions[3]).not.toBe(versions[1]);
      expect(versions[4]).not.toBe(versions[3]);
      expect(Date.parse(responses[4].body.meta.lastModified)).toBeGreaterThanOrEqual(Date.parse(created.body.meta.lastModified));
      expect(responses[4].body.meta.created).toBe(created.body.meta.created);
    });

    it('when users are listed, then each resource has complete meta', async () => {
      const name = uniqueName('listmeta');
      await b.post('/Users', userBody(name)).expect(201);
      const list = await b.get('/Users').query({ filter: `userName eq "${name}"` }).expect(200);
      expect(list.body.Resources).toHaveLength(1);
      expectMetaComplete(list.body.Resources[0], 'User', b.url);
    });

    it('when a group is created, read and replaced, then meta is complete and the ETag header equals meta.version', async () => {
      const created = await b.post('/Groups', { schemas: [GROUP_SCHEMA], displayName: 'Meta Group' }).expect(201);
      const id = created.body.id;
      const responses = [
        created,
        await b.get(`/Groups/${id}`).expect(200),
        await b.put(`/Groups/${id}`, { schemas: [GROUP_SCHEMA], displayName: 'Meta Group 2' }).expect(200),
      ];
      for (const res of responses) {
        expectMetaComplete(res.body, 'Group', b.url);
        expect(res.headers.etag).toBe(res.body.meta.version);
      }
      expect(created.headers.location).toBe(created.body.meta.location);
      expect(responses[2].body.meta.version).not.toBe(responses[0].body.meta.version);
    });

    it('when a group is patched, then the ETag header is the new version that a GET reports', async () => {
      const created = await b.post('/Groups', { schemas: [GROUP_SCHEMA], displayName: 'Patched Meta' }).expect(201);
      const patched = await b.patch(`/Groups/${created.body.id}`, patchBody({ op: 'replace', path: 'displayName', value: 'Patched Meta 2' }));
      expect([200, 204]).toContain(patched.status);
      const read = await b.get(`/Groups/${created.body.id}`).expect(200);
      expect(patched.headers.etag).toBe(read.body.meta.version);
      expect(read.body.meta.version).not.toBe(created.body.meta.version);
    });

    it('when PUT /Users carries an If-Match that is not the current version, then 412 and nothing changes', async () => {
      const name = uniqueName('ifmatch');
      const created = await b.post('/Users', userBody(name)).expect(201);
      const id = created.body.id;
      const stale = created.headers.etag;
      await b.put(`/Users/${id}`, userBody(name, { title: 'First' })).expect(200);
      const res = await b.put(`/Users/${id}`, userBody(name, { title: 'Second' })).set('If-Match', stale);
      expectScimError(res, 412);
      expect((await b.get(`/Users/${id}`).expect(200)).body.title).toBe('First');
    });

    it('when PUT /Users carries the current version in If-Match, then it succeeds', async () => {
      const name = uniqueName('ifmatchok');
      const created = await b.post('/Users', userBody(name)).expect(201);
      const res = await b.put(`/Users/${created.body.id}`, userBody(name, { title: 'OK' })).set('If-Match', created.headers.etag);
      expect(res.status).toBe(200);
      expect(res.body.title).toBe('OK');
    });

    it('when DELETE /Users carries an If-Match that is not the current version, then 412 and the user remains', async () => {
      const name = uniqueName('ifmatchdel');
      const created = await b.post('/Users', userBody(name)).expect(201);
      const id = created.body.id;
      await b.put(`/Users/${id}`, userBody(name, { title: 'Changed' })).expect(200);
      const res = await b.delete(`/Users/${id}`).set('If-Match', created.headers.etag);
      expectScimError(res, 412);
      await b.get(`/Users/${id}`).expect(200);
      const current = (await b.get(`/Users/${id}`)).headers.etag;
      await b.delete(`/Users/${id}`).set('If-Match', current).expect(204);
    });

    it('when PUT or DELETE /Groups carries an If-Match that is not the current version, then 412', async () => {
      const created = await b.post('/Groups', { schemas: [GROUP_SCHEMA], displayName: 'If-Match Group' }).expect(201);
      const id = created.body.id;
      await b.put(`/Groups/${id}`, { schemas: [GROUP_SCHEMA], displayName: 'If-Match Group 2' }).expect(200);
      expectScimError(await b.put(`/Groups/${id}`, { schemas: [GROUP_SCHEMA], displayName: 'If-Match Group 3' }).set('If-Match', created.headers.etag), 412);
      expectScimError(await b.delete(`/Groups/${id}`).set('If-Match', created.headers.etag), 412);
      expect((await b.get(`/Groups/${id}`).expect(200)).body.displayName).toBe('If-Match Group 2');
    });

    it('when PATCH /Groups carries an If-Match that is not the current version, then 412 and nothing changes', async () => {
      const created = await b.post('/Groups', { schemas: [GROUP_SCHEMA], displayName: 'If-Match Patch Group' }).expect(201);
      const id = created.body.id;
      await b.put(`/Groups/${id}`, { schemas: [GROUP_SCHEMA], displayName: 'If-Match Patch Group 2' }).expect(200);
      expectScimError(await b.patch(`/Groups/${id}`, patchBody({ op: 'replace', path: 'displayName', value: 'Lost' })).set('If-Match', created.headers.etag), 412);
      expect((await b.get(`/Groups/${id}`).expect(200)).body.displayName).toBe('If-Match Patch Group 2');
    });

    it('when PATCH /Users carries an If-Match that is not the current version, then 412 and nothing changes', async () => {
      const name = uniqueName('ifmatchpatch');
      const created = await b.post('/Users', userBody(name)).expect(201);
      const id = created.body.id;
      await b.put(`/Users/${id}`, userBody(name, { title: 'Kept' })).expect(200);
      const res = await b.patch(`/Users/${id}`, patchBody({ op: 'replace', path: 'title', value: 'Lost' })).set('If-Match', created.headers.etag);
      expectScimError(res, 412);
      expect((await b.get(`/Users/${id}`).expect(200)).body.title).toBe('Kept');
    });

    it('when GET carries the current ETag in If-None-Match, then 304 without a body', async () => {
      const created = await b.post('/Users', userBody(uniqueName('inm'))).expect(201);
      const res = await b.get(`/Users/${created.body.id}`).set('If-None-Match', created.headers.etag);
      expect(res.status).toBe(304);
      expect(res.text ?? '').toBe('');
      const group = await b.post('/Groups', { schemas: [GROUP_SCHEMA], displayName: 'INM Group' }).expect(201);
      expect((await b.get(`/Groups/${group.body.id}`).set('If-None-Match', group.headers.etag)).status).toBe(304);
    });

    it('when If-Match lists several ETags, one of them current (RFC 7232 §3.1), then the PUT succeeds', async () => {
      const name = uniqueName('ifmatchlist');
      const created = await b.post('/Users', userBody(name)).expect(201);
      const res = await b.put(`/Users/${created.body.id}`, userBody(name, { title: 'Listed' })).set('If-Match', `W/"999999", ${created.headers.etag}`);
      expect(res.status).toBe(200);
      expect(res.body.title).toBe('Listed');
    });

    it('when If-Match lists several ETags, none of them current, then 412', async () => {
      const name = uniqueName('ifmatchlistbad');
      const created = await b.post('/Users', userBody(name)).expect(201);
      expectScimError(await b.put(`/Users/${created.body.id}`, userBody(name, { title: 'No' })).set('If-Match', 'W/"999998", W/"999999"'), 412);
    });

    it('when If-Match is *, then the PUT succeeds', async () => {
      const name = uniqueName('ifmatchstar');
      const created = await b.post('/Users', userBody(name)).expect(201);
      await b.put(`/Users/${created.body.id}`, userBody(name, { title: 'Star' })).set('If-Match', '*').expect(200);
    });

    it('when If-None-Match lists several ETags, one of them current, then GET gives 304', async () => {
      const created = await b.post('/Users', userBody(uniqueName('inmlist'))).expect(201);
      const res = await b.get(`/Users/${created.body.id}`).set('If-None-Match', `W/"999999", ${created.headers.etag}`);
      expect(res.status).toBe(304);
    });

    it('when GET carries a stale ETag in If-None-Match, then 200 with the resource', async () => {
      const name = uniqueName('inmstale');
      const created = await b.post('/Users', userBody(name)).expect(201);
      await b.put(`/Users/${created.body.id}`, userBody(name, { title: 'New' })).expect(200);
      const res = await b.get(`/Users/${created.body.id}`).set('If-None-Match', created.headers.etag);
      expect(res.status).toBe(200);
      expect(res.body.title).toBe('New');
    });
  });

  describe('every error is a SCIM error', () => {
    it('when a filter is malformed, then 400 invalidFilter as a SCIM error', async () => {
      expectScimError(await b.get('/Users').query({ filter: 'userName eq' }), 400, 'invalidFilter');
      expectScimError(await b.get('/Groups').query({ filter: '(displayName eq "x"' }), 400, 'invalidFilter');
    });

    it('when a PATCH has an unknown op, then 400 as a SCIM error', async () => {
      const created = await b.post('/Users', userBody(uniqueName('badop'))).expect(201);
      const res = await b.patch(`/Users/${created.body.id}`, patchBody({ op: 'explode', path: 'title', value: 'x' }));
      expectScimError(res, 400);
    });

    it('when a PATCH path is not an attribute, then 400 invalidPath as a SCIM error', async () => {
      const created = await b.post('/Users', userBody(uniqueName('badpath'))).expect(201);
      const res = await b.patch(`/Users/${created.body.id}`, patchBody({ op: 'replace', path: 'emails[type eq "work"', value: 'x' }));
      expectScimError(res, 400, 'invalidPath');
    });

    it('when a PATCH sets a read-only attribute, then 400 mutability as a SCIM error', async () => {
      const created = await b.post('/Users', userBody(uniqueName('ro'))).expect(201);
      const res = await b.patch(`/Users/${created.body.id}`, patchBody({ op: 'replace', path: 'id', value: 'mine' }));
      expectScimError(res, 400, 'mutability');
    });

    it('when a list has a bad startIndex or count, then no 500 and any error is a SCIM error', async () => {
      for (const query of [{ startIndex: 'abc' }, { count: '-5' }, { count: 'lots' }, { sortBy: 'nope' }, { sortOrder: 'sideways' }]) {
        const res = await b.get('/Users').query(query);
        expect(res.status).toBeLessThan(500);
        if (res.status >= 400) expectScimError(res, res.status);
      }
    });

    it.each([
      ['title as an array nested 100,000 deep', 'POST', '/Users', (deep: string) => `{"userName":"deep.title@example.com","title":${deep}}`, '['],
      ['active as an object nested 100,000 deep', 'POST', '/Users', (deep: string) => `{"userName":"deep.active@example.com","active":${deep}}`, '{"a":'],
      ['emails[0].value nested 100,000 deep', 'POST', '/Users', (deep: string) => `{"userName":"deep.emails@example.com","emails":[{"value":${deep}}]}`, '['],
      ['a group displayName nested 100,000 deep', 'POST', '/Groups', (deep: string) => `{"displayName":${deep}}`, '['],
      ['a PATCH op nested 100,000 deep', 'PATCH', '/Users/{id}', (deep: string) => `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":${deep},"path":"title","value":"x"}]}`, '['],
      ['a PATCH value nested 100,000 deep', 'PATCH', '/Users/{id}', (deep: string) => `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"title","value":${deep}}]}`, '['],
      ['a group member value nested 100,000 deep', 'POST', '/Groups', (deep: string) => `{"displayName":"Deep members","members":[{"value":${deep}}]}`, '{"a":'],
      ['a .search filter as an array nested 100,000 deep', 'POST', '/Users/.search', (deep: string) => `{"filter":${deep}}`, '['],
    ])('when %s is sent, then 400 as a SCIM error (not 500)', async (_what, method, path, body, open) => {
      const depth = 100_000;
      const close = open === '[' ? ']' : '}';
      const deep = open.repeat(depth) + (open === '[' ? '' : '1') + close.repeat(depth);
      let target = path;
      if (path.includes('{id}')) target = path.replace('{id}', (await b.post('/Users', userBody(uniqueName('deep'))).expect(201)).body.id);
      const res = await raw(b.url, method, target, { 'Content-Type': 'application/scim+json' }, body(deep));
      expectScimError(res, 400);
    });

    it('when a user schemas attribute is not a list, then 400 invalidSyntax', async () => {
      const res = await b.post('/Users', { schemas: USER_SCHEMA, userName: uniqueName('schemas') });
      expectScimError(res, 400, 'invalidSyntax');
    });
  });
});
