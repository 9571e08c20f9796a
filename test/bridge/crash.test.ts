/**
 * Nothing acknowledged is lost: the bridge, as a child process under a flood of concurrent creates with a
 * webhook attached, is killed with SIGKILL mid-flood and started again on the same database. Every user
 * answered 201 exists and its user.created reaches the receiver; events and users match one to one.
 */
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freshDatabaseUrl } from '../helpers/bridge';
import { ChildBridge, spawnBridge } from '../helpers/child';

const TOKEN = 'crash-flood-token-0123456789';
const APP_TOKEN = 'crash-flood-app-token-0123456789';

// SQLite here; on PostgreSQL the same kill -9 mid-flood, with the same checks and a survivor taking over delivery,
// is replicas.test.ts's (one child bridge fewer to start in the run).
it.each(['sqlite'] as const)('on %s: when the bridge is killed mid-flood and restarted, then every 201 survives and reaches the webhook, and no event lacks its change', async (store) => {
  const dir = mkdtempSync(join(tmpdir(), 'scim-bridge-flood-'));
  const delivered = new Map<string, string>(); // userName -> event type user.created
  const receiver = http.createServer((req, res) => {
    let raw = '';
    req.on('data', (c) => (raw += c));
    req.on('end', () => {
      const e = JSON.parse(raw);
      if (e.type === 'user.created') delivered.set(e.data.userName, e.id);
      res.writeHead(200).end();
    });
  });
  receiver.listen(0, '127.0.0.1');
  await once(receiver, 'listening');
  const env = {
    SCIM_BRIDGE_DATABASE_URL: await freshDatabaseUrl(store, dir),
    SCIM_BRIDGE_TOKEN: TOKEN,
    SCIM_BRIDGE_APP_TOKEN: APP_TOKEN,
    SCIM_BRIDGE_WEBHOOK_URL: `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/`,
    SCIM_BRIDGE_WEBHOOK_SECRET: 'crash-flood-webhook-secret-0123',
  };
  const children: ChildBridge[] = [];
  const startBridge = async () => {
    const child = await spawnBridge(env);
    children.push(child);
    return child.url;
  };
  const headers = { Authorization: `Bearer ${TOKEN}`, 'Content-Type': 'application/scim+json' };
  try {
    const url = await startBridge();
    const acknowledged = new Set<string>();
    let n = 0;
    let killed = false;
    const flood = Array.from({ length: 16 }, async () => {
      while (!killed) {
        const userName = `flood${n++}@example.com`;
        try {
          const res = await fetch(`${url}/Users`, { method: 'POST', headers, body: JSON.stringify({ userName }) });
          if (res.status === 201) acknowledged.add(userName);
        } catch {
          // the bridge died under this request: it may or may not have been committed, and was not acknowledged
        }
        if (acknowledged.size >= 150 && !killed) {
          killed = true;
          children[0].kill();
        }
      }
    });
    await Promise.all(flood);
    expect(acknowledged.size).toBeGreaterThanOrEqual(150);

    const again = await startBridge();
    const users = new Set<string>();
    for (let start = 1; ; start += 1000) {
      const page = (await (await fetch(`${again}/Users?startIndex=${start}&count=1000&attributes=userName`, { headers })).json()) as { Resources: { userName: string }[] };
      for (const u of page.Resources) users.add(u.userName);
      if (page.Resources.length < 1000) break;
    }
    for (const name of acknowledged) expect(users.has(name)).toBe(true);

    const events = ((await (await fetch(`${again}/api/v1/events?limit=1000`, { headers: { Authorization: `Bearer ${APP_TOKEN}` } })).json()) as { events: { type: string; data: { userName: string } }[] }).events;
    const created = new Set(events.filter((e) => e.type === 'user.created').map((e) => e.data.userName));
    expect(created).toEqual(users);

    const deadline = Date.now() + 20000;
    while ([...acknowledged].some((name) => !delivered.has(name)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    for (const name of acknowledged) expect(delivered.has(name)).toBe(true);
  } finally {
    for (const c of children) c.kill();
    receiver.close();
    receiver.closeAllConnections();
    rmSync(dir, { recursive: true, force: true });
  }
}, 60000);
