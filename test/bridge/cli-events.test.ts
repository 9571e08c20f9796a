/**
 * `scim-bridge events replay`: beside a running bridge, events the webhook already had go to it again, signed
 * as the bridge signs them, in outbox order; events still pending are left to the bridge; dead letters the
 * receiver now accepts leave the dead-letter list. On SQLite and on PostgreSQL.
 */
import { join } from 'node:path';
import { DELIVERY_LEASE } from '../../bridge/src/delivery';
import { Json, until, WEBHOOK_SECRET, WebhookReceiver as Receiver } from '../helpers/webhook-receiver';
import { startBridge, TestBridge, userBody } from '../helpers/bridge';
import { runCli } from '../helpers/cli';
import { createTestDatabase } from '../helpers/postgres';

const SECRET = WEBHOOK_SECRET;

let receiver: Receiver;
let bridge: TestBridge;
let env: NodeJS.ProcessEnv;

beforeEach(async () => {
  receiver = new Receiver();
  await receiver.start();
  bridge = await startBridge({ SCIM_BRIDGE_WEBHOOK_URL: receiver.url, SCIM_BRIDGE_WEBHOOK_SECRET: SECRET }, { delivery: { baseDelayMs: 10, maxDelayMs: 20, pollMs: 20 } });
  // What `docker exec` gives the command: the bridge's own settings.
  env = { SCIM_BRIDGE_DATABASE_URL: `sqlite:${join(bridge.dir, 'bridge.db')}`, SCIM_BRIDGE_WEBHOOK_URL: receiver.url, SCIM_BRIDGE_WEBHOOK_SECRET: SECRET };
});
afterEach(async () => {
  await bridge.stop();
  receiver.stop();
});

/** Creates users and waits until the bridge has delivered every event and saved its cursor. */
async function deliveredUsers(...names: string[]): Promise<Json[]> {
  for (const name of names) expect((await bridge.post('/Users', userBody(name))).status).toBe(201);
  const events = (await bridge.app.get('/api/v1/events?limit=1000').expect(200)).body.events as Json[];
  // The cursor moves on once the receiver accepted an event or it became a dead letter.
  const lastSeq = (await bridge.bridge.store.listEvents(0, 1000)).at(-1)!.seq;
  await until(async () => (await bridge.bridge.store.leaseCursor(DELIVERY_LEASE)) === lastSeq);
  return events;
}

describe('events replay', () => {
  test('when replayed from cursor 0, then every delivered event reaches the webhook again, signed, in the same order', async () => {
    const events = await deliveredUsers('ada@example.com', 'grace@example.com', 'edsger@example.com');
    const firstTime = receiver.received.splice(0);
    expect(firstTime.map((e) => e.id)).toEqual(events.map((e) => e.id));

    const replay = await runCli(['events', 'replay', '--after', '0'], { env });
    expect(replay).toMatchObject({ code: 0 });
    expect(replay.stdout).toBe(`events replay: ${events.length} events sent\n`);
    expect(receiver.received).toEqual(firstTime);
    expect(receiver.badSignatures).toEqual([]);
  });

  test('when replayed --after a cursor or --since a time, then only the later events go', async () => {
    await deliveredUsers('first@example.com');
    const [first] = await bridge.bridge.store.listEvents(0, 10);
    await new Promise((r) => setTimeout(r, 20));
    const since = new Date().toISOString();
    const later = await deliveredUsers('second@example.com', 'third@example.com');
    const laterIds = later.filter((e) => e.occurredAt >= since).map((e) => e.id);
    expect(laterIds.length).toBeGreaterThan(0);
    receiver.received.splice(0);

    expect((await runCli(['events', 'replay', '--after', String(first.seq)], { env })).code).toBe(0);
    expect(receiver.received.map((e) => e.id)).toEqual(later.slice(1).map((e) => e.id));
    receiver.received.splice(0);

    expect((await runCli(['events', 'replay', '--since', since], { env })).code).toBe(0);
    expect(receiver.received.map((e) => e.id)).toEqual(laterIds);
  });

  test('when the receiver now accepts a dead letter, then it leaves the list; --dead-letters sends only those', async () => {
    receiver.answer = (e) => (e.data.userName === 'refused@example.com' ? 400 : 200);
    await deliveredUsers('fine@example.com', 'refused@example.com');
    expect(await bridge.bridge.store.countDeadLetters()).toBe(1);
    receiver.received.splice(0);
    receiver.answer = () => 200;

    const replay = await runCli(['events', 'replay', '--after', '0', '--dead-letters'], { env });
    expect(replay).toMatchObject({ code: 0 });
    expect(replay.stdout).toMatch(/1 events sent, 1 of them dead letters \(accepted now, off the list\)/);
    expect(receiver.received.map((e) => e.data.userName)).toEqual(['refused@example.com']);
    expect(await bridge.bridge.store.countDeadLetters()).toBe(0);
  });

  test('when the receiver fails, then the replay stops at that event and says where to resume', async () => {
    const events = await deliveredUsers('one@example.com', 'two@example.com');
    receiver.received.splice(0);
    receiver.answer = (e) => (e.id === events[1].id ? 422 : 200);
    const replay = await runCli(['events', 'replay', '--after', '0'], { env });
    expect(replay.code).toBe(1);
    const seq = (await bridge.bridge.store.listEvents(0, 10))[1].seq;
    expect(replay.stderr).toMatch(new RegExp(`event ${seq} .* was refused: HTTP 422 \\(a 4xx: fix the receiver first\\)\\. 1 sent before it; resume with --after ${seq - 1}`));
    expect(receiver.received.map((e) => e.id)).toEqual([events[0].id]);
  });

  test('when events are still pending, then they are left to the bridge, which delivers them itself', async () => {
    await deliveredUsers('delivered@example.com');
    receiver.received.splice(0);
    // The receiver fails the next event for a while: the bridge keeps it pending (retrying), past its cursor.
    receiver.answer = (e) => (e.data.userName === 'pending@example.com' ? 503 : 200);
    expect((await bridge.post('/Users', userBody('pending@example.com'))).status).toBe(201);
    await until(async () => (await bridge.bridge.store.countEventsAfter(0)) === 2);
    const replay = await runCli(['events', 'replay', '--after', '0'], { env });
    expect(replay.code).toBe(0);
    expect(replay.stdout).toMatch(/events replay: 1 events sent; 1 later events are still pending and the bridge delivers them itself/);
    expect(receiver.received.map((e) => e.data.userName)).toEqual(['delivered@example.com']);
    receiver.answer = () => 200;
    await until(() => receiver.received.some((e) => e.data.userName === 'pending@example.com'));
  });

  test('without a range or a webhook, then it says what it needs', async () => {
    expect(await runCli(['events', 'replay'], { env })).toMatchObject({ code: 2, stderr: expect.stringMatching(/needs a range: --after <seq>/) });
    const noWebhook = await runCli(['events', 'replay', '--after', '0'], { env: { SCIM_BRIDGE_DATABASE_URL: env.SCIM_BRIDGE_DATABASE_URL } });
    expect(noWebhook).toMatchObject({ code: 1, stderr: expect.stringMatching(/no webhook is set/) });
  });
});

describe('events replay on PostgreSQL (the replicas\' database)', () => {
  let pgBridge: TestBridge;
  let pgEnv: NodeJS.ProcessEnv;
  beforeEach(async () => {
    const url = await createTestDatabase('events_replay', { migrated: true });
    pgBridge = await startBridge(
      { SCIM_BRIDGE_DATABASE_URL: url, SCIM_BRIDGE_WEBHOOK_URL: receiver.url, SCIM_BRIDGE_WEBHOOK_SECRET: SECRET },
      { delivery: { baseDelayMs: 10, maxDelayMs: 20, pollMs: 20 } },
    );
    pgEnv = { SCIM_BRIDGE_DATABASE_URL: url, SCIM_BRIDGE_WEBHOOK_URL: receiver.url, SCIM_BRIDGE_WEBHOOK_SECRET: SECRET };
  });
  afterEach(async () => {
    await pgBridge.stop();
  });

  test('when replayed from cursor 0 beside the running replica, then the delivered events go again in order, and an accepted dead letter leaves the list', async () => {
    receiver.answer = (e) => (e.data.userName === 'refused@example.com' ? 400 : 200);
    for (const name of ['ada@example.com', 'refused@example.com', 'grace@example.com']) expect((await pgBridge.post('/Users', userBody(name))).status).toBe(201);
    const all = await pgBridge.bridge.store.listEvents(0, 1000);
    await until(async () => (await pgBridge.bridge.store.leaseCursor(DELIVERY_LEASE)) === all.at(-1)!.seq);
    expect(await pgBridge.bridge.store.countDeadLetters()).toBe(1);
    receiver.received.splice(0);
    receiver.answer = () => 200;

    const replay = await runCli(['events', 'replay', '--after', '0'], { env: pgEnv });
    expect(replay).toMatchObject({ code: 0 });
    expect(replay.stdout).toBe(`events replay: ${all.length} events sent, 1 of them dead letters (accepted now, off the list)\n`);
    expect(receiver.received.map((e) => e.id)).toEqual(all.map((e) => e.id));
    expect(receiver.badSignatures).toEqual([]);
    expect(await pgBridge.bridge.store.countDeadLetters()).toBe(0);
  });
});
