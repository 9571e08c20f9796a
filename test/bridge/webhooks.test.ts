/**
 * Webhooks: every event reaches the downstream, signed, in order per resource, at least once, however the
 * downstream behaves for a while; what it refuses for good becomes a dead letter that can be replayed.
 */
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Json, until, WEBHOOK_SECRET, WebhookReceiver as Receiver } from '../helpers/webhook-receiver';
import { patchBody, startBridge, TestBridge, userBody, GROUP_SCHEMA, STORES } from '../helpers/bridge';

const SECRET = WEBHOOK_SECRET;

async function feed(b: TestBridge): Promise<Json[]> {
  return (await b.app.get('/api/v1/events?limit=1000').expect(200)).body.events;
}

describe.each(STORES)('webhook delivery on %s', (store) => {
  const receiver = new Receiver();
  let b: TestBridge;
  beforeAll(async () => {
    await receiver.start();
    b = await startBridge({ SCIM_BRIDGE_WEBHOOK_URL: receiver.url, SCIM_BRIDGE_WEBHOOK_SECRET: SECRET }, { delivery: { baseDelayMs: 20, maxDelayMs: 100, pollMs: 20 }, store });
  });
  afterAll(async () => {
    await b.stop();
    receiver.stop();
  });

  async function provisionSome(tag: string) {
    const users = [];
    for (let i = 0; i < 4; i++) users.push((await b.post('/Users', userBody(`${tag}${i}.hook@example.com`)).expect(201)).body);
    await b.join(users[0].id);
    await b.patch(`/Users/${users[0].id}`, patchBody({ op: 'replace', path: 'title', value: 'Boss' })).expect(200);
    const g = (await b.post('/Groups', { schemas: [GROUP_SCHEMA], displayName: `Hooked ${tag}`, members: users.slice(0, 2).map((u) => ({ value: u.id })) }).expect(201)).body;
    await b.patch(`/Users/${users[1].id}`, patchBody({ op: 'replace', path: 'active', value: false })).expect(200);
    await b.delete(`/Groups/${g.id}`).expect(204);
  }

  it('when the downstream accepts, then every event of the feed arrives once, signed, in feed order', async () => {
    await provisionSome('a');
    const events = await feed(b);
    await until(() => receiver.received.length >= events.length);
    expect(receiver.badSignatures).toEqual([]);
    expect(receiver.received.map((e) => e.id)).toEqual(events.map((e) => e.id));
    expect(receiver.received[0]).toEqual(events[0]);
    const health = (await b.get('/health').expect(200)).body;
    expect(health.delivery).toEqual({ pending: 0, deadLetters: 0, delivering: true });
  });

  it('when the downstream refuses for a while and then recovers, then every event arrives, in order per resource, none lost', async () => {
    let refusals = 0;
    receiver.answer = () => (refusals++ < 12 ? 503 : 200);
    const before = receiver.received.length;
    await provisionSome('b');
    const events = (await feed(b)).slice(before);
    await until(() => receiver.received.length >= before + events.length);
    expect(refusals).toBeGreaterThan(12);
    const arrived = receiver.received.slice(before);
    expect(new Set(arrived.map((e) => e.id))).toEqual(new Set(events.map((e) => e.id)));
    const byResource = (list: Json[]) => {
      const m = new Map<string, string[]>();
      for (const e of list) m.set(e.data.id, [...(m.get(e.data.id) ?? []), e.id]);
      return m;
    };
    expect(byResource(arrived)).toEqual(byResource(events));
    receiver.answer = () => 200;
  });

  it('when the downstream refuses one event for good (400), then it becomes a dead letter, the rest go on, and a replay delivers it', async () => {
    receiver.answer = (e) => (e.type === 'user.created' && e.data.userName === 'poison.pill@example.com' ? 400 : 200);
    const poison = (await b.post('/Users', userBody('poison.pill@example.com')).expect(201)).body;
    const after = (await b.post('/Users', userBody('after.poison@example.com')).expect(201)).body;
    await until(() => receiver.received.some((e) => e.data.id === after.id));
    const health = (await b.get('/health').expect(200)).body;
    expect(health.delivery.deadLetters).toBe(1);
    expect((await b.app.get('/api/v1/events?limit=1').expect(200)).body.deadLetters).toBe(1);
    const letters = (await b.app.get('/api/v1/dead-letters').expect(200)).body.deadLetters;
    expect(letters.map((l: Json) => [l.type, l.data.id, l.error])).toEqual([['user.created', poison.id, 'HTTP 400']]);
    receiver.answer = () => 200;
    expect((await b.app.post('/api/v1/dead-letters/replay').expect(200)).body).toEqual({ replayed: 1, remaining: 0 });
    expect(receiver.received.some((e) => e.data.id === poison.id && e.type === 'user.created')).toBe(true);
    expect((await b.get('/health').expect(200)).body.delivery.deadLetters).toBe(0);
  });

  it('when the downstream is slow, then provisioning is not: the 201 does not wait for the webhook', async () => {
    receiver.answer = () => 200;
    const slow = http.createServer((_req, res) => setTimeout(() => res.writeHead(200).end(), 3000));
    slow.listen(0, '127.0.0.1');
    await once(slow, 'listening');
    const slowBridge = await startBridge(
      { SCIM_BRIDGE_WEBHOOK_URL: `http://127.0.0.1:${(slow.address() as AddressInfo).port}/`, SCIM_BRIDGE_WEBHOOK_SECRET: SECRET },
      { delivery: { pollMs: 20, timeoutMs: 5000 }, store },
    );
    try {
      const started = Date.now();
      for (let i = 0; i < 5; i++) await slowBridge.post('/Users', userBody(`quick${i}.despite@example.com`)).expect(201);
      expect(Date.now() - started).toBeLessThan(2000);
    } finally {
      await slowBridge.stop();
      slow.close();
      slow.closeAllConnections();
    }
  });
});

describe.each(STORES)('webhook configuration on %s', (store) => {
  it('when a webhook URL comes without its secret, then the start is refused naming the missing variable', async () => {
    await expect(startBridge({ SCIM_BRIDGE_WEBHOOK_URL: 'https://app.example.com/hook' }, { store })).rejects.toThrow('SCIM_BRIDGE_WEBHOOK_SECRET');
    await expect(startBridge({ SCIM_BRIDGE_WEBHOOK_URL: 'ftp://x', SCIM_BRIDGE_WEBHOOK_SECRET: SECRET }, { store })).rejects.toThrow('SCIM_BRIDGE_WEBHOOK_URL');
  });
});
