/**
 * `npm run bench:scale`: the bridge with 1,000,000 users beside the same bridge with 100,000 (issue 18, "scale"),
 * measured in the same run, one after the other, on SQLite.
 *
 * For each size: users are seeded straight through the store (SqlStore.bulkInsertUsers, batches of 10,000, the
 * same documents and index rows as POST /Users writes, no events), with a group of 50,000 of them; then a bridge
 * (child process, `npm start`'s node flags) opens that database and is read over HTTP: GET /Users/{id} and
 * GET /Users?filter=userName eq "…" at random (wrk where it can be had), then the 50,000-member group, which the
 * bridge writes out page by page. Its resident memory (VmRSS now, VmHWM the peak) is read from /proc after each.
 *
 * Targets: resident memory <= 128 MB at 1,000,000 users, and p99 of GET by id and of the filter within 2x of the
 * 100,000-user figures. bench/run.ts holds the throughput rows; this file only the scale rows.
 *
 * Knobs: BENCH_SCALE_SIZES (comma-separated, default 100000,1000000: the first is the baseline),
 * BENCH_SCALE_BIG_GROUP (50000), BENCH_SECONDS (10), BENCH_WARMUP (2), BENCH_CONNECTIONS (16),
 * BENCH_GENERATOR=node, BENCH_KEEP=1 (keep the databases), BENCH_BRIDGE_NODE_OPTIONS.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync, statfsSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join, resolve } from 'node:path';
import { openSqlite } from '../bridge/src/store/sqlite';
import { readDocument, toUserWrite } from '../bridge/src/scim/resource';
import { resourceTypes } from '../bridge/src/scim/schemas';
import { ChildServer, cpuSecondsOf, freePort, killChildrenOnExit, machineBusySeconds, Memory, selfAndEndedChildrenCpuSeconds } from './lib/children';
import { HttpClient } from './lib/client';
import { chooseGenerator, LoadGenerator, LoadResult } from './lib/load';
import { userBody } from './lib/users';

const ROOT = resolve(__dirname, '..');
const BRIDGE_MAIN = join(ROOT, 'bridge', 'dist', 'main.js');
const TMPFS_MAGIC = 0x01021994;
const BATCH = 10_000;
const TARGET = { rssMB: 128, p99Ratio: 2 };

function intEnv(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw.replace(/_/g, ''));
  if (!Number.isFinite(n) || n < 0) throw new Error(`${name}=${raw}: expected a non-negative number`);
  return n;
}

const CFG = {
  sizes: (process.env.BENCH_SCALE_SIZES ?? '100000,1000000').split(',').map((s) => Number(s.trim().replace(/_/g, ''))),
  bigGroup: intEnv('BENCH_SCALE_BIG_GROUP', 50_000),
  seconds: intEnv('BENCH_SECONDS', 10),
  warmup: intEnv('BENCH_WARMUP', 2),
  connections: intEnv('BENCH_CONNECTIONS', 16),
  keep: process.env.BENCH_KEEP === '1',
  bridgeNodeOptions: (process.env.BENCH_BRIDGE_NODE_OPTIONS ?? '--max-semi-space-size=2').split(/\s+/).filter(Boolean),
};
if (CFG.sizes.length < 1 || CFG.sizes.some((n) => !Number.isInteger(n) || n < 1)) throw new Error(`BENCH_SCALE_SIZES=${process.env.BENCH_SCALE_SIZES}: expected sizes like 100000,1000000`);

const log = (line = '') => process.stdout.write(line + '\n');
const int = (n: number) => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : 'n/a');
const ms = (n: number) => (Number.isFinite(n) ? (n < 10 ? n.toFixed(2) : n.toFixed(1)) + ' ms' : 'n/a');
const mb = (n: number) => `${n.toFixed(1)} MB`;

const seedName = (i: number) => `user${String(i).padStart(7, '0')}`;

interface SizeResult {
  users: number;
  seedS: number;
  dbMB: number;
  byId: LoadResult;
  filter: LoadResult;
  group: { ms: number; mb: number; members: number };
  afterStart: Memory;
  afterReads: Memory;
  afterGroup: Memory;
  cpu: { bridgeCoresById: number; otherCores: number };
}

/** Seeds `count` users (and a group of the first `bigGroup`) into a new SQLite file, through the store. */
async function seedDatabase(file: string, count: number): Promise<{ ids: string[]; userNames: string[]; seconds: number }> {
  const store = openSqlite(file);
  await store.migrate();
  // The store's document and index rows of one user, with a marker where the name goes: built once, then filled in.
  const [head, ...rest] = JSON.stringify(toUserWrite(readDocument(resourceTypes.User, userBody('\u00a7')))).split('\u00a7');
  const ids: string[] = [];
  const userNames: string[] = [];
  const started = performance.now();
  for (let i = 0; i < count; i += BATCH) {
    const batch = Array.from({ length: Math.min(BATCH, count - i) }, (_, k) => {
      const name = seedName(i + k);
      userNames.push(`${name}@example.com`);
      return { ...JSON.parse(head + rest.map((part) => name + part).join('')), status: 'invited' as const };
    });
    ids.push(...(await store.bulkInsertUsers(batch)));
    if ((i / BATCH + 1) % 20 === 0) log(`  ${int(i + batch.length)} / ${int(count)} users, ${int((i + batch.length) / ((performance.now() - started) / 1000))}/s`);
  }
  const members = ids.slice(0, Math.min(CFG.bigGroup, count));
  await store.createGroup({ managed: true, displayName: 'bench-big', externalId: null, doc: { displayName: 'bench-big' } }, members);
  await store.optimize();
  await store.close();
  return { ids, userNames, seconds: (performance.now() - started) / 1000 };
}

async function measure(load: LoadGenerator, server: ChildServer, port: number, token: string, paths: string[], file: string): Promise<{ result: LoadResult; bridgeCores: number; otherCores: number }> {
  const spec = { port, token, connections: CFG.connections, seconds: CFG.seconds, load: { kind: 'get' as const, paths, pathsFile: file } };
  await load.warmUp(spec, CFG.warmup);
  const [cpu0, busy0, gen0, t0] = [cpuSecondsOf(server.pid), machineBusySeconds(), selfAndEndedChildrenCpuSeconds(), performance.now()];
  const result = await load.run(spec, CFG.seconds);
  const elapsed = (performance.now() - t0) / 1000;
  const bridgeCores = (cpuSecondsOf(server.pid) - cpu0) / elapsed;
  const otherCores = Math.max(0, (machineBusySeconds() - busy0) / elapsed - bridgeCores - (selfAndEndedChildrenCpuSeconds() - gen0) / elapsed);
  return { result, bridgeCores, otherCores };
}

async function runSize(work: string, load: LoadGenerator, token: string, users: number): Promise<SizeResult> {
  const dir = join(work, `users-${users}`);
  mkdirSync(dir);
  const file = join(dir, 'bridge.db');
  log(`\n${int(users)} users: seeding through the store in batches of ${int(BATCH)}, with a group of ${int(Math.min(CFG.bigGroup, users))} members`);
  const seeded = await seedDatabase(file, users);
  const dbMB = ['', '-wal'].reduce((sum, s) => sum + (existsSync(file + s) ? statSync(file + s).size : 0), 0) / 1024 / 1024;
  log(`  seeded in ${seeded.seconds.toFixed(1)} s (${int(users / seeded.seconds)} users/s); database ${mb(dbMB)}`);

  const port = await freePort();
  const server = await ChildServer.start({
    name: `bridge with ${int(users)} users`,
    args: [...CFG.bridgeNodeOptions, BRIDGE_MAIN],
    cwd: dir,
    port,
    logPath: join(dir, 'bridge.log'),
    startTimeoutS: 120,
    env: { ...process.env, SCIM_BRIDGE_PORT: String(port), SCIM_BRIDGE_HOST: '127.0.0.1', SCIM_BRIDGE_DATABASE_URL: `sqlite:${file}`, SCIM_BRIDGE_TOKEN: token, SCIM_BRIDGE_TOKEN_SHA256: '' },
  });
  try {
    const afterStart = server.memory();
    log(`  bridge started: ${mb(afterStart.rssMB)} resident`);
    // 20,000 users drawn at random from all of them: a GET reads anywhere in the database, not a hot corner.
    const sample = Array.from({ length: 20_000 }, () => Math.floor(Math.random() * users));
    const idPaths = sample.map((i) => `/Users/${seeded.ids[i]}`);
    const namePaths = sample.map((i) => `/Users?filter=${encodeURIComponent(`userName eq ${JSON.stringify(seeded.userNames[i])}`)}`);
    const idFile = join(dir, 'paths-id.txt');
    const nameFile = join(dir, 'paths-filter.txt');
    writeFileSync(idFile, idPaths.join('\n') + '\n');
    writeFileSync(nameFile, namePaths.join('\n') + '\n');
    const byId = await measure(load, server, port, token, idPaths, idFile);
    log(`  GET /Users/{id}: ${int(byId.result.rps)}/s, p50 ${ms(byId.result.p50ms)}, p99 ${ms(byId.result.p99ms)}${byId.result.bad ? `, ${byId.result.badDetail}` : ''} (bridge ${byId.bridgeCores.toFixed(2)} cores, other processes ${byId.otherCores.toFixed(2)})`);
    const filter = await measure(load, server, port, token, namePaths, nameFile);
    log(`  GET /Users?filter=userName eq: ${int(filter.result.rps)}/s, p50 ${ms(filter.result.p50ms)}, p99 ${ms(filter.result.p99ms)}${filter.result.bad ? `, ${filter.result.badDetail}` : ''} (bridge ${filter.bridgeCores.toFixed(2)} cores, other processes ${filter.otherCores.toFixed(2)})`);
    const afterReads = server.memory();

    const client = new HttpClient(port, token, 1);
    const list = JSON.parse((await client.expect('GET', `/Groups?filter=${encodeURIComponent('displayName eq "bench-big"')}&excludedAttributes=members`, undefined, 200)).body) as { Resources: { id: string }[] };
    const groupId = list.Resources[0].id;
    let group = { ms: Infinity, mb: 0, members: 0 };
    for (let k = 0; k < 3; k++) {
      const reply = await client.expect('GET', `/Groups/${groupId}`, undefined, 200);
      if (reply.ms < group.ms) group = { ms: reply.ms, mb: Buffer.byteLength(reply.body) / 1e6, members: (JSON.parse(reply.body).members ?? []).length };
    }
    client.close();
    const afterGroup = server.memory();
    log(`  GET /Groups/{id} of ${int(group.members)} members: ${mb(group.mb)} in ${ms(group.ms)} (best of 3)`);
    log(`  bridge memory: ${mb(afterReads.rssMB)} resident after the reads (peak so far ${mb(afterReads.peakMB)}), ${mb(afterGroup.rssMB)} after the group; peak (VmHWM) ${mb(afterGroup.peakMB)}`);
    if (group.members !== Math.min(CFG.bigGroup, users)) throw new Error(`the group lists ${group.members} members, not ${Math.min(CFG.bigGroup, users)}`);
    return { users, seedS: seeded.seconds, dbMB, byId: byId.result, filter: filter.result, group, afterStart, afterReads, afterGroup, cpu: { bridgeCoresById: byId.bridgeCores, otherCores: Math.max(byId.otherCores, filter.otherCores) } };
  } finally {
    await server.stop();
    if (!CFG.keep) rmSync(file, { force: true });
  }
}

async function main(): Promise<void> {
  killChildrenOnExit();
  if (!existsSync(BRIDGE_MAIN)) throw new Error(`${BRIDGE_MAIN} is missing: run npm run build first (npm run bench:scale does).`);
  let base = os.tmpdir();
  // tmpfs would hide the disk: the database of 1,000,000 users is read from a real file system, as in production.
  if (statfsSync(base).type === TMPFS_MAGIC) base = join(ROOT, '.tmp');
  mkdirSync(base, { recursive: true });
  const work = mkdtempSync(join(base, 'scim-bench-scale-'));
  process.on('exit', () => {
    if (!CFG.keep) rmSync(work, { recursive: true, force: true });
  });
  const generator = chooseGenerator(log, process.env.BENCH_GENERATOR);
  const load = new LoadGenerator(generator, work);
  const [load1] = os.loadavg();
  log(`SCIM bridge scale benchmark: ${CFG.sizes.map(int).join(' vs ')} users on SQLite; ${os.cpus().length} cores, load average ${load1.toFixed(2)} at the start; load generator: ${load.describe()}`);
  const token = randomBytes(24).toString('hex');
  const results: SizeResult[] = [];
  for (const users of CFG.sizes) results.push(await runSize(work, load, token, users));

  const [baseline, ...others] = results;
  const rows: [string, string, string, string, string][] = [['metric', 'bridge', `baseline (${int(baseline.users)} users)`, 'target', 'verdict']];
  for (const r of others) {
    const who = `${int(r.users)} users`;
    for (const [label, m, b] of [
      ['GET /Users/{id}', r.byId, baseline.byId],
      ['GET /Users?filter=userName eq', r.filter, baseline.filter],
    ] as const) {
      const ratio = m.p99ms / b.p99ms;
      rows.push([`${label} p99, ${who}`, ms(m.p99ms), ms(b.p99ms), `${ratio.toFixed(2)}x / <= ${TARGET.p99Ratio}x`, m.bad || b.bad ? 'ERR' : ratio <= TARGET.p99Ratio ? 'pass' : 'miss']);
      rows.push([`${label} req/s, ${who}`, int(m.rps), int(b.rps), '', 'info']);
    }
    rows.push([`GET of the ${int(r.group.members)}-member group, ${who}`, ms(r.group.ms), ms(baseline.group.ms), '', 'info']);
  }
  for (const r of results) {
    const peak = r.afterGroup.peakMB;
    rows.push([`peak resident memory (VmHWM), ${int(r.users)} users`, mb(peak), r === baseline ? '-' : mb(baseline.afterGroup.peakMB), `<= ${TARGET.rssMB} MB`, peak <= TARGET.rssMB ? 'pass' : 'miss']);
  }
  const widths = rows[0].map((_, c) => Math.max(...rows.map((row) => row[c].length)));
  log(`\nResults (${os.cpus().length} cores; load average now ${os.loadavg()[0].toFixed(2)})\n`);
  for (const row of rows) log(row.map((cell, c) => cell.padEnd(widths[c])).join('  '));
  const busiest = Math.max(...results.map((r) => r.cpu.otherCores));
  if (busiest > 0.2) log(`NOTE: other processes used up to ${busiest.toFixed(2)} cores during a measured run: latencies are noisier than on an idle machine.`);
  const out = join(os.tmpdir(), `scim-bridge-bench-scale-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(out, JSON.stringify({ config: CFG, results }, null, 2));
  log(`\nresults as JSON: ${out}${CFG.keep ? `\nwork dir kept: ${work}` : ''}`);
}

main().catch((err: unknown) => {
  process.stderr.write(`\nscale bench failed: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
  process.exit(1);
});
