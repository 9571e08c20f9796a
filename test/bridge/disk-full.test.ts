/**
 * A full disk (issue 13): the bridge as a child process, its database on a real 8 MiB tmpfs (a mount namespace of
 * its own, `unshare`), filled by a ballast file until SQLite meets ENOSPC. Writes are refused with 503 and
 * Retry-After (what Entra ID and Okta retry), the log names SQLITE_FULL, /health reports the failed write, reads go
 * on, and once the ballast is deleted writes succeed again without a restart.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { rm, statfs, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { STORAGE_FULL_RETRY_AFTER_SECONDS } from '../../bridge/src/store/sql-store';
import { ChildBridge, spawnBridge } from '../helpers/child';

const TOKEN = 'disk-full-token-0123456789abcdef';
const HEADERS = { Authorization: `Bearer ${TOKEN}`, 'Content-Type': 'application/scim+json' };

it('when the disk fills, then writes get 503 with Retry-After, the log says SQLITE_FULL, /health says so, and freeing space cures it', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'scim-bridge-disk-full-'));
  const disk = join(dir, 'disk');
  mkdirSync(disk);
  let child: ChildBridge | undefined;
  try {
    child = await spawnBridge(
      { SCIM_BRIDGE_DATABASE_URL: `sqlite:${join(disk, 'x.db')}`, SCIM_BRIDGE_TOKEN: TOKEN, LOG_LEVEL: 'error' },
      ['unshare', '--user', '--map-root-user', '--mount', 'sh', '-c', 'mount -t tmpfs -o size=8m tmpfs "$0" && exec "$@"', disk],
    );
    const url = child.url;
    // The child's view of the disk, from outside its mount namespace.
    const seen = `/proc/${child.process.pid}/root${disk}`;
    const free = await statfs(seen);
    const ballast = join(seen, 'ballast');
    await writeFile(ballast, Buffer.alloc(Math.max(0, free.bavail * free.bsize - 256 * 1024)));

    const create = (userName: string) => fetch(`${url}/Users`, { method: 'POST', headers: HEADERS, body: JSON.stringify({ userName }) });
    let refused: Response | undefined;
    for (let i = 0; i < 200 && !refused; i++) {
      const res = await create(`fill${i}@example.com`);
      if (res.status !== 201) refused = res;
    }
    expect(refused?.status).toBe(503);
    expect(refused!.headers.get('retry-after')).toBe(String(STORAGE_FULL_RETRY_AFTER_SECONDS));
    expect(await refused!.json()).toMatchObject({ schemas: ['urn:ietf:params:scim:api:messages:2.0:Error'], status: '503', detail: expect.stringMatching(/disk is full/) });

    // The log is written asynchronously: wait for the line.
    await child.waitForOutput(/"code":"SQLITE_FULL"/);
    const errors = child.stdout().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { err?: { code?: string; message?: string } });
    expect(errors.some((l) => l.err?.code === 'SQLITE_FULL' && l.err.message === 'database or disk is full')).toBe(true);
    expect(child.stdout()).not.toMatch(/cannot rollback/);

    const health = await fetch(`${url}/health`, { headers: HEADERS });
    expect(health.status).toBe(503);
    expect(await health.json()).toMatchObject({ status: 'degraded', store: 'unavailable', storeError: expect.stringMatching(/SQLITE_FULL/) });
    expect((await fetch(`${url}/Users?count=1`, { headers: HEADERS })).status).toBe(200);

    // An operator frees space; no restart.
    await rm(ballast);
    expect((await create('after@example.com')).status).toBe(201);
    expect(await (await fetch(`${url}/health`, { headers: HEADERS })).json()).toMatchObject({ status: 'ok', store: 'ok' });
  } finally {
    child?.kill();
    await child?.exited;
    rmSync(dir, { recursive: true, force: true });
  }
}, 60_000);
