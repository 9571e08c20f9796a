/**
 * Overload (issue 13): a slow body held its socket 330 s, even after its 401. A request refused before its body
 * was read (401, 413, 415) has its connection closed without the bridge waiting for the body, yet the client still
 * reads the answer.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readConfig } from '../../bridge/src/config';
import { LINGER_MS } from '../../bridge/src/http/connection';
import { createLogger } from '../../bridge/src/log';
import { RunningBridge, start } from '../../bridge/src/server';
import { LineSink } from '../helpers/line-sink';

const TOKEN = 'overload-token-0123456789abcdef';

async function startBridge() {
  const dir = mkdtempSync(join(tmpdir(), 'scim-bridge-overload-'));
  const sink = new LineSink();
  const bridge = await start(readConfig({ SCIM_BRIDGE_PORT: '0', SCIM_BRIDGE_DATABASE_URL: `sqlite:${join(dir, 'x.db')}`, SCIM_BRIDGE_TOKEN: TOKEN }), {
    logger: createLogger({ destination: sink, pretty: false }),
  });
  return {
    bridge,
    sink,
    async stop() {
      await bridge.stop({ graceMs: 500 });
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A raw connection: what the bridge sent back, and when (ms after connecting) it closed the connection. */
function connect(bridge: RunningBridge) {
  const socket = net.connect(bridge.port, '127.0.0.1');
  const started = Date.now();
  let received = '';
  socket.on('data', (chunk) => (received += chunk));
  socket.on('error', () => undefined); // a write after the bridge closed: expected here
  const closed = new Promise<number>((resolve) => socket.on('close', () => resolve(Date.now() - started)));
  /** Writes `piece` every `everyMs` until the connection closes. */
  const trickle = (piece: string, everyMs: number) => {
    const timer = setInterval(() => (socket.destroyed ? clearInterval(timer) : socket.write(piece)), everyMs);
    socket.on('close', () => clearInterval(timer));
  };
  return { socket, closed, trickle, received: () => received };
}

const statusOf = (raw: string) => Number(/^HTTP\/1\.1 (\d{3})/.exec(raw)?.[1]);

const AUTH = `Authorization: Bearer ${TOKEN}\r\n`;

describe('a request refused before its body is read', () => {
  let b: Awaited<ReturnType<typeof startBridge>>;
  // The default limits: the request timeout (30 s) is not what closes these connections.
  beforeAll(async () => (b = await startBridge()));
  afterAll(async () => b.stop());

  it.each([
    ['401, no token', '', 'application/scim+json', 100_000, 401],
    ['413, a body announced larger than 1 MiB', AUTH, 'application/scim+json', 2 * 1024 * 1024, 413],
    ['415, not JSON', AUTH, 'text/plain', 100_000, 415],
  ])('when it is refused (%s), then the answer says Connection: close and the connection closes while the body still trickles', async (_what, auth, type, length, status) => {
    const c = connect(b.bridge);
    c.socket.write(`POST /Users HTTP/1.1\r\nHost: x\r\n${auth}Content-Type: ${type}\r\nContent-Length: ${length}\r\n\r\n{"userName":`);
    c.trickle('x', 100);
    const closedAfter = await c.closed;
    expect(statusOf(c.received())).toBe(status);
    expect(c.received()).toMatch(/\r\nConnection: close\r\n/i);
    expect(closedAfter).toBeLessThan(LINGER_MS + 2_000);
  });

  it('when a client uploads a body over the limit at full speed, then its upload is not cut off and it reads the 413', async () => {
    // As curl does: the whole body is written before the answer is read, and a failed write fails the request. A
    // bridge that closed at once would reset the upload (EPIPE/ECONNRESET) and the client would never see its 413.
    for (let i = 0; i < 5; i++) {
      const c = connect(b.bridge);
      const body = Buffer.alloc(4 * 1024 * 1024, 0x20);
      const written = new Promise<Error | null | undefined>((resolve) =>
        c.socket.write(Buffer.concat([Buffer.from(`POST /Users HTTP/1.1\r\nHost: x\r\n${AUTH}Content-Type: application/scim+json\r\nContent-Length: ${body.length}\r\n\r\n`), body]), resolve),
      );
      expect(await written).toBeFalsy();
      await c.closed;
      expect(statusOf(c.received())).toBe(413);
    }
  });
});
