/** A downstream application on loopback, as the webhook tests and the `events replay` tests meet it. */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Json = Record<string, any>;
export const WEBHOOK_SECRET = 'webhook-secret-0123456789abcdef';

/** How an application verifies a delivery (README): recompute the HMAC over "<t>.<raw body>". */
export function verifySignature(header: string | undefined, body: string, secret = WEBHOOK_SECRET): boolean {
  const m = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(header ?? '');
  if (!m) return false;
  const expected = createHmac('sha256', secret).update(`${m[1]}.${body}`).digest();
  return timingSafeEqual(expected, Buffer.from(m[2], 'hex')) && Math.abs(Date.now() / 1000 - Number(m[1])) < 300;
}

/** Records what it accepts; `answer` decides the status of each delivery (200 unless it says otherwise). */
export class WebhookReceiver {
  readonly received: Json[] = [];
  readonly badSignatures: string[] = [];
  answer: (event: Json) => number = () => 200;
  url = '';
  private server = http.createServer((req, res) => {
    let raw = '';
    req.on('data', (c) => (raw += c));
    req.on('end', () => {
      if (!verifySignature(req.headers['scim-bridge-signature'] as string, raw)) this.badSignatures.push(raw);
      const event = JSON.parse(raw);
      const status = this.answer(event);
      if (status === 200) this.received.push(event);
      res.writeHead(status).end();
    });
  });
  async start(): Promise<void> {
    this.server.listen(0, '127.0.0.1');
    await once(this.server, 'listening');
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/events`;
  }
  stop(): void {
    this.server.close();
  }
}

/** Waits until `check` holds, looking every 20 ms; fails after `ms`. */
export async function until(check: () => boolean | Promise<boolean>, ms = 15_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 20));
  }
}
