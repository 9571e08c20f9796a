/** A small keep-alive HTTP client for the seeding, the PATCH timings and the initial sync. */
import http from 'node:http';

export interface Reply {
  readonly status: number;
  readonly body: string;
  /** Milliseconds from sending to the last byte of the answer. */
  readonly ms: number;
}

export class HttpClient {
  private readonly agent: http.Agent;

  constructor(
    private readonly port: number,
    private readonly token: string | undefined,
    sockets: number,
    private readonly timeoutMs = 60_000,
  ) {
    this.agent = new http.Agent({ keepAlive: true, maxSockets: sockets, maxFreeSockets: sockets });
  }

  request(method: string, path: string, body?: unknown): Promise<Reply> {
    const payload = body === undefined ? undefined : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
    const headers: http.OutgoingHttpHeaders = { accept: 'application/scim+json' };
    if (this.token) headers.authorization = `Bearer ${this.token}`;
    if (payload) {
      headers['content-type'] = 'application/scim+json';
      headers['content-length'] = payload.length;
    }
    const started = process.hrtime.bigint();
    return new Promise((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port: this.port, method, path, headers, agent: this.agent }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8'), ms: Number(process.hrtime.bigint() - started) / 1e6 }),
        );
      });
      req.setTimeout(this.timeoutMs, () => req.destroy(new Error(`${method} ${path}: no answer within ${this.timeoutMs / 1000} s`)));
      req.on('error', (e) => reject(new Error(`${method} ${path} on port ${this.port}: ${e.message}`)));
      req.end(payload);
    });
  }

  /** The request, or an error naming what came back instead of the expected status. */
  async expect(method: string, path: string, body: unknown, status: number): Promise<Reply> {
    const reply = await this.request(method, path, body);
    if (reply.status !== status) {
      throw new Error(`${method} ${path.length > 120 ? path.slice(0, 120) + '...' : path} answered ${reply.status}, expected ${status}: ${reply.body.slice(0, 400)}`);
    }
    return reply;
  }

  close(): void {
    this.agent.destroy();
  }
}

/**
 * Runs task(0..count-1) with `concurrency` in flight; the first failure stops the others from
 * taking new work and is thrown.
 */
export async function pool(count: number, concurrency: number, task: (i: number, worker: number) => Promise<void>): Promise<void> {
  let next = 0;
  let failed = false;
  const worker = async (w: number) => {
    while (!failed) {
      const i = next++;
      if (i >= count) return;
      try {
        await task(i, w);
      } catch (e) {
        failed = true;
        throw e;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, count)) }, (_, w) => worker(w)));
}

/** The q-quantile (0..1) of `values` (sorted here, in place). */
export function quantile(values: number[], q: number): number {
  if (values.length === 0) return NaN;
  values.sort((a, b) => a - b);
  return values[Math.min(values.length - 1, Math.max(0, Math.ceil(q * values.length) - 1))];
}
