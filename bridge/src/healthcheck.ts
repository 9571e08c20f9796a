/**
 * The image's HEALTHCHECK (`node dist/healthcheck.js`): GET /healthz on the port the bridge listens on,
 * exit 0 on 200 and 1 otherwise. The image has no shell or curl, so the check is node itself; it reads the
 * same environment as the bridge, and connects to loopback when the bridge listens on every address.
 */
import { request } from 'node:http';
import { readConfig } from './config';

const TIMEOUT_MS = 3000;

/** Where to reach a server listening on `host`: a wildcard means every address, loopback among them. */
export function probeAddress(host: string): string {
  const bare = host.replace(/^\[(.*)\]$/, '$1');
  if (bare === '0.0.0.0' || bare === '') return '127.0.0.1';
  if (bare === '::') return '::1';
  return bare;
}

/** Resolves with the status of GET http://host:port/healthz, or rejects (refused, timed out). */
export function probe(host: string, port: number, timeoutMs = TIMEOUT_MS): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host, port, path: '/healthz', method: 'GET', timeout: timeoutMs }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
}

async function main(): Promise<void> {
  const config = readConfig();
  const host = probeAddress(config.host);
  const where = `http://${host.includes(':') ? `[${host}]` : host}:${config.port}/healthz`;
  try {
    const status = await probe(host, config.port);
    if (status === 200) process.exit(0);
    process.stderr.write(`healthcheck: ${where} answered ${status}\n`);
  } catch (err) {
    process.stderr.write(`healthcheck: ${where}: ${(err as Error).message}\n`);
  }
  process.exit(1);
}

if (require.main === module) {
  main().catch((err) => {
    process.stderr.write(`healthcheck: ${(err as Error).message}\n`);
    process.exit(1);
  });
}
