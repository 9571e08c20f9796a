/**
 * `npm run bench:google-memory [-- --users 10000] [--trace-gc]`: the Google Workspace connector's first sync of N users (pages of
 * 500, one group holding them all) from the stand-in Google, measured as the budget counts it: the peak resident
 * memory (VmHWM) of the whole bridge process, started as `npm start` starts it (`node --max-semi-space-size=2
 * bridge/dist/main.js`, SQLite in a temporary directory). Prints the bridge's resident memory once it listens, the
 * peak over the sync, and the sync's duration; exits 1 when the peak is over the budget (128 MB).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { serviceAccountKey, StandInGoogle } from '../test/helpers/google';
import { ChildServer, freePort } from './lib/children';

const ROOT = resolve(__dirname, '..');
const BUDGET_MB = 128;
const TOKEN = 'bench-google-memory-token-0123456789';
const ADMIN = 'admin@acme.example';
const GROUP = 'everyone@acme.example';

function option(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
}

async function main(): Promise<void> {
  const users = option('users', 10_000);
  const key = serviceAccountKey();
  const google = await new StandInGoogle(key, ADMIN).start();
  const members: string[] = [];
  for (let i = 0; i < users; i++) {
    // Names as long as real ones: the connector keeps what it needs of each.
    members.push(google.addUser(`1${String(i).padStart(20, '0')}`, `person.number${i}@acme.example`).id);
  }
  google.addGroup('0everyone', GROUP, 'Everyone', members);
  const dir = mkdtempSync(join(tmpdir(), 'scim-bridge-google-memory-'));
  const port = await freePort();
  const bridge = await ChildServer.start({
    name: 'bridge',
    args: [...(process.argv.includes('--trace-gc') ? ['--trace-gc'] : []), '--max-semi-space-size=2', join(ROOT, 'bridge', 'dist', 'main.js')],
    cwd: dir,
    port,
    logPath: join(dir, 'bridge.log'),
    env: {
      PATH: process.env.PATH,
      SCIM_BRIDGE_PORT: String(port),
      SCIM_BRIDGE_DATABASE_URL: `sqlite:${join(dir, 'scim-bridge.db')}`,
      SCIM_BRIDGE_TOKEN: TOKEN,
      SCIM_BRIDGE_GOOGLE_CREDENTIALS: key.json,
      SCIM_BRIDGE_GOOGLE_ADMIN: ADMIN,
      SCIM_BRIDGE_GOOGLE_GROUPS: GROUP,
      SCIM_BRIDGE_GOOGLE_INTERVAL: '24h',
      SCIM_BRIDGE_GOOGLE_API_URL: google.url,
      SCIM_BRIDGE_GOOGLE_TOKEN_URL: google.tokenUrl,
      LOG_LEVEL: 'warn',
    },
  });
  try {
    const atStart = bridge.memory();
    const started = Date.now();
    let report: Record<string, any> | undefined;
    for (;;) {
      const res = await fetch(`http://127.0.0.1:${port}/health`, { headers: { Authorization: `Bearer ${TOKEN}` } });
      const google = ((await res.json()) as Record<string, any>).google;
      if (google.lastSync) {
        report = google.lastSync;
        break;
      }
      if (Date.now() - started > 600_000) throw new Error('no sync within 10 minutes');
      await new Promise((r) => setTimeout(r, 250));
    }
    const after = bridge.memory();
    const line = (label: string, value: string) => console.log(`${label.padEnd(34)} ${value}`);
    line('users', String(users));
    line('sync', `${report!.ok ? 'ok' : `failed: ${report!.error}`}, ${report!.counts.usersCreated} created, ${report!.durationMs} ms`);
    line('resident once listening (MB)', atStart.rssMB.toFixed(1));
    line('peak resident over the sync (MB)', `${after.peakMB.toFixed(1)} (budget ${BUDGET_MB})`);
    line('resident after the sync (MB)', after.rssMB.toFixed(1));
    if (!report!.ok || after.peakMB > BUDGET_MB) process.exitCode = 1;
    // With --trace-gc, the bridge's collections (its log) show where the heap grew.
    if (process.argv.includes('--trace-gc')) console.log(bridge.logTail(5000));
  } finally {
    await bridge.stop();
    await google.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
