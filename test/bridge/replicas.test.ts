/**
 * Several replicas on one PostgreSQL: three bridge processes (`npm start`'s entry point) share a database created for
 * this file on the run's server. Any replica answers any request; concurrent writes from different replicas are
 * neither lost nor doubled; webhook delivery runs on one replica at a time and moves to another within 30 s when
 * that one is killed with SIGKILL mid-flood, with every acknowledged change delivered, in order per resource, a
 * feed read across the crash without a gap, and users and their user.created events one to one (crash.test.ts's
 * check, which runs on SQLite: this is its PostgreSQL form).
 */
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { ChildBridge, spawnBridge } from '../helpers/child';
import { createTestDatabase } from '../helpers/postgres';

const TOKEN = 'replicas-token-0123456789abcdef';
const APP_TOKEN = 'replicas-app-token-0123456789abcdef';
const SECRET = 'replicas-webhook-secret-0123456789';
type Json = Record<string, any>;

interface Delivery {
  readonly id: string;
  readonly type: string;
  readonly resource: string;
}

let replicas: ChildBridge[] = [];
const deliveries: Delivery[] = [];
let receiver: http.Server;

async function call(r: ChildBridge, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<{ status: number; body: Json; headers: Headers }> {
  const res = await fetch(`${r.url}${path}`, {
    method,
    headers: { Authorization: `Bearer ${path.startsWith('/api/') ? APP_TOKEN : TOKEN}`, 'Content-Type': 'application/scim+json', ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : {}, headers: res.headers };
}

const patch = (...ops: Json[]) => ({ schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'], Operations: ops });
const statuses = (xs: { status: number }[]) => xs.map((x) => x.status).sort();

/** Which replicas say they deliver (GET /health: delivery.delivering). */
async function delivering(among: ChildBridge[]): Promise<ChildBridge[]> {
  const answers = await Promise.all(among.map(async (r) => ((await call(r, 'GET', '/health')).body.delivery?.delivering === true ? r : undefined)));
  return answers.filter((r): r is ChildBridge => r !== undefined);
}

async function until<T>(what: string, ms: number, check: () => Promise<T | undefined | false>): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

beforeAll(async () => {
  receiver = http.createServer((req, res) => {
    let raw = '';
    req.on('data', (c) => (raw += c));
    req.on('end', () => {
      const e = JSON.parse(raw);
      deliveries.push({ id: e.id, type: e.type, resource: e.data.id });
      res.writeHead(200).end();
    });
  });
  receiver.listen(0, '127.0.0.1');
  await once(receiver, 'listening');
  const env = {
    SCIM_BRIDGE_DATABASE_URL: await createTestDatabase('replicas'),
    SCIM_BRIDGE_DATABASE_POOL: '8',
    SCIM_BRIDGE_TOKEN: TOKEN,
    SCIM_BRIDGE_APP_TOKEN: APP_TOKEN,
    SCIM_BRIDGE_WEBHOOK_URL: `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/`,
    SCIM_BRIDGE_WEBHOOK_SECRET: SECRET,
  };
  // Started together: they migrate the empty database together too.
  replicas = await Promise.all([0, 1, 2].map(() => spawnBridge(env)));
}, 120_000);

afterAll(() => {
  for (const r of replicas) r.kill();
  receiver?.close();
  receiver?.closeAllConnections();
});

describe('three replicas on one PostgreSQL', () => {
  it('when a user is written through one replica, then every replica answers for it', async () => {
    const [a, b, c] = replicas;
    const created = await call(a, 'POST', '/Users', { userName: 'everywhere@example.com' });
    expect(created.status).toBe(201);
    expect((await call(b, 'GET', `/Users/${created.body.id}`)).body.userName).toBe('everywhere@example.com');
    expect((await call(c, 'PATCH', `/Users/${created.body.id}`, patch({ op: 'replace', path: 'displayName', value: 'Every Where' }))).status).toBe(200);
    expect((await call(a, 'GET', `/Users?filter=${encodeURIComponent('displayName eq "every where"')}`)).body.totalResults).toBe(1);
    expect((await call(b, 'GET', `/api/v1/users/${created.body.id}`)).body.status).toBe('invited');
  });

  it('when one userName is created through every replica at once, then exactly one gets 201 and the others 409', async () => {
    const answers = await Promise.all(Array.from({ length: 12 }, (_, i) => call(replicas[i % 3], 'POST', '/Users', { userName: i % 2 ? 'Racer@Example.com' : 'racer@example.com' })));
    expect(statuses(answers)).toEqual([201, ...Array(11).fill(409)]);
    expect(answers.filter((a) => a.status === 409).every((a) => a.body.scimType === 'uniqueness')).toBe(true);
  });

  it('when one group is patched from every replica at once, then every change applies', async () => {
    const g = (await call(replicas[0], 'POST', '/Groups', { displayName: 'Patched From Everywhere' })).body;
    const users = await Promise.all(Array.from({ length: 30 }, (_, i) => call(replicas[i % 3], 'POST', '/Users', { userName: `member${i}@example.com` })));
    const answers = await Promise.all(
      users.map((u, i) => call(replicas[i % 3], 'PATCH', `/Groups/${g.id}`, patch({ op: 'add', path: 'members', value: [{ value: u.body.id }] }))),
    );
    expect(answers.every((a) => a.status === 200 || a.status === 204)).toBe(true);
    const after = (await call(replicas[1], 'GET', `/Groups/${g.id}`)).body;
    expect(after.members).toHaveLength(30);
    expect(after.meta.version).toBe('W/"31"');
  });

  it('when one group is renamed from every replica with the same If-Match, then exactly one gets 200 and the others 412', async () => {
    const g = await call(replicas[0], 'POST', '/Groups', { displayName: 'If-Match Target' });
    const etag = g.headers.get('etag')!;
    const answers = await Promise.all(
      Array.from({ length: 9 }, (_, i) =>
        call(replicas[i % 3], 'PATCH', `/Groups/${g.body.id}`, patch({ op: 'replace', path: 'displayName', value: `If-Match Winner ${i}` }), { 'If-Match': etag }),
      ),
    );
    // The winner's answer is a 2xx (a group PATCH answers 204 without a body), the losers' 412.
    expect(answers.map((a) => (a.status >= 200 && a.status < 300 ? 'ok' : a.status)).sort()).toEqual([...Array(8).fill(412), 'ok']);
    // And a user, whose PATCH answers 200 with the user.
    const u = await call(replicas[1], 'POST', '/Users', { userName: 'if-match@example.com' });
    const userAnswers = await Promise.all(
      Array.from({ length: 9 }, (_, i) =>
        call(replicas[i % 3], 'PATCH', `/Users/${u.body.id}`, patch({ op: 'replace', path: 'displayName', value: `v${i}` }), { 'If-Match': u.headers.get('etag')! }),
      ),
    );
    expect(statuses(userAnswers)).toEqual([200, ...Array(8).fill(412)]);
  });

  it('when two replicas take over one application group at once, then one gets 201 and the other 409', async () => {
    const app = await call(replicas[0], 'POST', '/api/v1/groups', { displayName: 'Adopted Once' });
    expect(app.status).toBe(201);
    const answers = await Promise.all(replicas.map((r) => call(r, 'POST', '/Groups', { displayName: 'Adopted Once' })));
    expect(statuses(answers)).toEqual([201, 409, 409]);
    expect(answers.find((a) => a.status === 201)!.body.id).toBe(app.body.id);
  });

  it('when the replicas run, then exactly one of them delivers webhooks', async () => {
    expect(await until('one delivering replica', 10_000, async () => ((await delivering(replicas)).length === 1 ? true : undefined))).toBe(true);
  });

  it('when the delivering replica is killed mid-flood, then another delivers within 30 s, every 201 exists and reaches the receiver in order per resource, and the feed shows no gap', async () => {
    const [holder] = await delivering(replicas);
    const survivors = replicas.filter((r) => r !== holder);
    const acknowledged = new Map<string, string>(); // userName -> id
    let n = 0;
    let killedAt = 0;
    let stop = false;

    // A feed reader on the survivors, across the crash: cursor by cursor, as an application reads it.
    const seen: string[] = [];
    const reading = (async () => {
      let after = '';
      let quietSince = 0;
      for (let i = 0; ; i++) {
        const page = await call(survivors[i % 2], 'GET', `/api/v1/events?limit=100${after ? `&after=${after}` : ''}`);
        for (const e of page.body.events as Json[]) seen.push(e.id);
        after = page.body.next ?? after;
        if (page.body.events.length === 0) {
          if (stop && quietSince === 0) quietSince = Date.now();
          if (stop && Date.now() - quietSince > 1000) return;
          await new Promise((r) => setTimeout(r, 20));
        } else quietSince = 0;
      }
    })();

    const flood = Array.from({ length: 12 }, async (_, w) => {
      while (!stop) {
        const userName = `flood${n++}@example.com`;
        const targets = killedAt ? survivors : replicas;
        const via = targets[(w + n) % targets.length];
        try {
          const res = await call(via, 'POST', '/Users', { userName });
          if (res.status !== 201) continue;
          acknowledged.set(userName, res.body.id);
          // A second event per resource: its order behind user.created must hold across the hand-over.
          await call(targets[(w + n + 1) % targets.length], 'PATCH', `/Users/${res.body.id}`, patch({ op: 'replace', path: 'displayName', value: `${userName} updated` }));
        } catch {
          // the replica died under this request: not acknowledged
        }
        if (acknowledged.size >= 120 && !killedAt) {
          killedAt = Date.now();
          holder.kill();
        }
        if (killedAt && acknowledged.size >= 240) stop = true;
      }
    });
    await Promise.all(flood);
    await reading;

    // Another replica delivers within 30 s of the kill.
    const next = await until('a survivor to take over delivery', 30_000 - (Date.now() - killedAt), async () => (await delivering(survivors))[0]);
    expect(next).toBeDefined();
    const takenOverAfter = Date.now() - killedAt;
    expect(takenOverAfter).toBeLessThan(30_000);

    // Every 201 exists.
    for (const [name, id] of acknowledged) expect((await call(survivors[0], 'GET', `/Users/${id}`)).body.userName).toBe(name);

    // Every acknowledged user's events reach the receiver, user.created before user.updated.
    const ids = new Set(acknowledged.values());
    await until('every acknowledged user.created at the receiver', 20_000, async () => [...ids].every((id) => deliveries.some((d) => d.resource === id && d.type === 'user.created')));
    const feed: Json[] = [];
    for (let after = ''; ; ) {
      const page = await call(survivors[0], 'GET', `/api/v1/events?limit=1000${after ? `&after=${after}` : ''}`);
      feed.push(...page.body.events);
      if (page.body.events.length < 1000) break;
      after = page.body.next;
    }
    const position = new Map(feed.map((e, i) => [e.id as string, i]));
    const byResource = new Map<string, number[]>();
    for (const d of deliveries) {
      const list = byResource.get(d.resource) ?? [];
      if (!list.includes(position.get(d.id)!)) list.push(position.get(d.id)!);
      byResource.set(d.resource, list);
    }
    for (const id of ids) {
      const order = byResource.get(id) ?? [];
      expect(order).toEqual([...order].sort((a, b) => a - b));
    }

    // The feed read across the crash: exactly the events, in order, without a gap.
    expect(seen).toEqual(feed.map((e) => e.id));

    // No event lacks its change and no change its event: a create cut short by the kill left both or neither.
    const stored = await call(survivors[0], 'GET', `/Users?count=1000&attributes=userName&filter=${encodeURIComponent('userName sw "flood"')}`);
    const floodUsers = new Set((stored.body.Resources as Json[]).map((u) => u.userName as string));
    expect(stored.body.totalResults).toBe(floodUsers.size);
    const floodCreated = new Set(feed.filter((e) => e.type === 'user.created' && String(e.data?.userName).startsWith('flood')).map((e) => e.data.userName as string));
    expect(floodCreated).toEqual(floodUsers);
  }, 120_000);
});
