/**
 * Links the bridge writes (Location, meta.location) never reflect what a client put in the Host header
 * (issue 13): with SCIM_BRIDGE_PUBLIC_URL they are built from it; without it, only a Host that is a host name or
 * an address (with an optional port) is used, and any other Host gets a 400 SCIM error that does not repeat it.
 * The prefix the client used (/scim/v2 or none) is kept after the base either way.
 */
import { connect } from 'node:net';
import { startBridge, TestBridge, TOKEN, userBody } from '../helpers/bridge';

const ERROR_URN = 'urn:ietf:params:scim:api:messages:2.0:Error';

interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
  /** The whole response as received, headers included. */
  text: string;
}

/**
 * One request written byte for byte on its own connection (so the Host header, or its absence, is exactly what the
 * test says), read until the server closes.
 */
function raw(url: string, lines: string[], body?: string): Promise<RawResponse> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect({ host: hostname, port: Number(port) });
    const chunks: Buffer[] = [];
    socket.setTimeout(10_000, () => socket.destroy(new Error('timeout')));
    socket.on('data', (c) => chunks.push(c));
    socket.on('error', reject);
    socket.on('end', () => {
      const text = Buffer.concat(chunks).toString('latin1');
      const [head, ...rest] = text.split('\r\n\r\n');
      const [statusLine, ...headerLines] = head.split('\r\n');
      const headers: Record<string, string> = {};
      for (const l of headerLines) {
        const i = l.indexOf(':');
        headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
      }
      resolve({ status: Number(statusLine.split(' ')[1]), headers, body: rest.join('\r\n\r\n'), text });
    });
    const extra = body === undefined ? [] : ['Content-Type: application/scim+json', `Content-Length: ${Buffer.byteLength(body)}`];
    socket.write([...lines, `Authorization: Bearer ${TOKEN}`, 'Connection: close', ...extra, '', body ?? ''].join('\r\n'));
  });
}

const get = (url: string, path: string, host: string | undefined, version = '1.1') =>
  raw(url, [`GET ${path} HTTP/${version}`, ...(host === undefined ? [] : [`Host: ${host}`])]);
const post = (url: string, path: string, host: string | undefined, body: unknown, version = '1.1') =>
  raw(url, [`POST ${path} HTTP/${version}`, ...(host === undefined ? [] : [`Host: ${host}`])], JSON.stringify(body));

/** Host headers that are not a host name or an address with a port: each would land in a link as it is. */
const BAD_HOSTS = [
  'evil.example.com/<script>alert(1)</script>',
  'scim.example.com@evil.example.com',
  'evil.example.com" onmouseover="x',
  'evil.example.com/..',
  'evil.example.com?x=1',
  'evil.example.com#x',
  'evil.example.com\\x',
  'evil example.com',
  '[::1',
  'example.com:80:80',
  'example.com:port',
  '',
];

describe('links without SCIM_BRIDGE_PUBLIC_URL: from a validated Host', () => {
  let b: TestBridge;
  let n = 0;
  beforeAll(async () => {
    b = await startBridge();
  });
  afterAll(() => b.stop());

  it.each(BAD_HOSTS)('when the Host header is %p, then 400 with a SCIM error that does not repeat it, and nothing is created', async (host) => {
    for (const path of ['/Users', '/scim/v2/Users', '/ServiceProviderConfig', '/healthz', '/no-such-endpoint']) {
      const res = await get(b.url, path, host);
      expect(res.status).toBe(400);
      expect(res.headers['content-type']).toMatch(/^application\/scim\+json/);
      const body = JSON.parse(res.body);
      expect(body.schemas).toEqual([ERROR_URN]);
      expect(body.status).toBe('400');
      expect(body.detail).toMatch(/Host/);
      if (host !== '') expect(res.text).not.toContain(host);
      expect(res.text).not.toContain('evil');
    }
    const userName = `bad.host${++n}@example.com`;
    const created = await post(b.url, '/Users', host, userBody(userName));
    expect(created.status).toBe(400);
    expect(created.text).not.toContain('evil');
    expect((await b.get('/Users').query({ filter: `userName eq "${userName}"` }).expect(200)).body.totalResults).toBe(0);
  });

  it.each([
    ['a host name', 'scim.example.com'],
    ['a host name and a port', 'scim.example.com:8443'],
    ['a single-label name (a container on its network)', 'scim-bridge:8080'],
    ['an IPv4 address and a port', '127.0.0.1:8080'],
    ['an IPv6 address and a port', '[::1]:8080'],
    ['a fully qualified name with its root dot', 'scim.example.com.'],
  ])('when the Host header is %s, then Location and meta.location use it, with the prefix the client used', async (_what, host) => {
    for (const prefix of ['', '/scim/v2']) {
      const res = await post(b.url, `${prefix}/Users`, host, userBody(`good.host${++n}@example.com`));
      expect(res.status).toBe(201);
      const body = JSON.parse(res.body);
      expect(res.headers.location).toBe(`http://${host}${prefix}/Users/${body.id}`);
      expect(body.meta.location).toBe(res.headers.location);
      const spc = JSON.parse((await get(b.url, `${prefix}/ServiceProviderConfig`, host)).body);
      expect(spc.meta.location).toBe(`http://${host}${prefix}/ServiceProviderConfig`);
    }
  });

  it('when an HTTP/1.0 request has no Host at all, then a request that needs a link gets 400 and creates nothing', async () => {
    const userName = `no.host${++n}@example.com`;
    const res = await post(b.url, '/Users', undefined, userBody(userName), '1.0');
    expect(res.status).toBe(400);
    expect(JSON.parse(res.body).schemas).toEqual([ERROR_URN]);
    expect((await b.get('/Users').query({ filter: `userName eq "${userName}"` }).expect(200)).body.totalResults).toBe(0);
    // One that needs no link still works.
    expect((await get(b.url, '/healthz', undefined, '1.0')).status).toBe(200);
  });

  it('when a client that is no trusted gateway sends X-Forwarded-Proto, then the scheme stays http', async () => {
    const res = await raw(b.url, ['GET /ServiceProviderConfig HTTP/1.1', 'Host: scim.example.com', 'X-Forwarded-Proto: javascript']);
    expect(JSON.parse(res.body).meta.location).toBe('http://scim.example.com/ServiceProviderConfig');
  });
});

describe('links with SCIM_BRIDGE_PUBLIC_URL', () => {
  let n = 0;

  describe.each([
    ['https://scim.example.com', 'https://scim.example.com'],
    ['https://scim.example.com/', 'https://scim.example.com'],
    ['https://SCIM.example.com:443/scim/v2/', 'https://scim.example.com'],
    ['http://127.0.0.1:8080', 'http://127.0.0.1:8080'],
  ])('%s', (publicUrl, base) => {
    let b: TestBridge;
    beforeAll(async () => {
      b = await startBridge({ SCIM_BRIDGE_PUBLIC_URL: publicUrl });
    });
    afterAll(() => b.stop());

    it.each(['', '/scim/v2'])('when a user is created at "%s" with any Host, then every link starts with the public URL and that prefix', async (prefix) => {
      for (const host of ['scim.example.com', 'evil.example.com', 'evil.example.com/<script>']) {
        const res = await post(b.url, `${prefix}/Users`, host, userBody(`public.url${++n}@example.com`));
        expect(res.status).toBe(201);
        const body = JSON.parse(res.body);
        expect(res.headers.location).toBe(`${base}${prefix}/Users/${body.id}`);
        expect(body.meta.location).toBe(res.headers.location);
        const list = await get(b.url, `${prefix}/Users?filter=${encodeURIComponent(`userName eq "${body.userName}"`)}`, host);
        expect(JSON.parse(list.body).Resources[0].meta.location).toBe(`${base}${prefix}/Users/${body.id}`);
        const spc = await get(b.url, `${prefix}/ServiceProviderConfig`, host);
        expect(JSON.parse(spc.body).meta.location).toBe(`${base}${prefix}/ServiceProviderConfig`);
        for (const r of [res, list, spc]) expect(r.text).not.toContain('evil');
      }
    });

    it('when a trusted-looking X-Forwarded-Host or -Proto is sent, then the links do not change', async () => {
      const res = await raw(b.url, ['GET /ServiceProviderConfig HTTP/1.1', 'Host: evil.example.com', 'X-Forwarded-Host: evil.example.com', 'X-Forwarded-Proto: http']);
      expect(JSON.parse(res.body).meta.location).toBe(`${base}/ServiceProviderConfig`);
    });
  });
});
