/**
 * `npm run profile`: where one request's CPU goes on each hot path (issue 18), re-runnable after every change.
 *
 * One bridge (built, bridge/dist; SQLite on a real disk; the same flags as `npm start`) is seeded through POST
 * /Users, then each path is loaded with wrk (2 s warm-up, then PROFILE_SECONDS measured). V8's sampling profiler
 * (the one `node --cpu-prof` runs) is started and stopped around the measured window only (bench/lib/profile-hook.ts,
 * by SIGUSR2), so start-up and warm-up are not in it. Each path's profile is split into the parts of the request
 * path (request log, router, auth, query parsing, SQL, JSON...) in µs of CPU per request, with the top functions.
 *
 * Knobs: PROFILE_USERS (20,000), PROFILE_SECONDS (8), PROFILE_PATHS (healthz,id,filter,post16,post1),
 * PROFILE_INTERVAL_US (200), PROFILE_BRIDGE_MAIN (another build's main.js), PROFILE_NODE_OPTIONS (the bridge's node flags,
 * `npm start`'s by default), PROFILE_KEEP=1 (keep the work dir and its .cpuprofile files, to open in DevTools).
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join, resolve } from 'node:path';
import ts from 'typescript';
import { ChildServer, cpuSecondsOf, freePort, killChildrenOnExit } from './lib/children';
import { HttpClient, pool } from './lib/client';
import { chooseGenerator, LoadGenerator, LoadKind, NAME_PLACEHOLDER } from './lib/load';
import { attributeProfile, formatRequestProfile, RequestProfile } from './lib/profile';
import { userBody } from './lib/users';

const ROOT = resolve(__dirname, '..');
const BRIDGE_MAIN = process.env.PROFILE_BRIDGE_MAIN ? resolve(process.env.PROFILE_BRIDGE_MAIN) : join(ROOT, 'bridge', 'dist', 'main.js');
const NODE_OPTIONS = (process.env.PROFILE_NODE_OPTIONS ?? '--max-semi-space-size=2').split(/\s+/).filter(Boolean);
const num = (name: string, fallback: number) => (process.env[name] ? Number(process.env[name]!.replace(/_/g, '')) : fallback);
const USERS = num('PROFILE_USERS', 20_000);
const SECONDS = num('PROFILE_SECONDS', 8);
const PATHS = (process.env.PROFILE_PATHS ?? 'healthz,id,filter,post16,post1').split(',').map((s) => s.trim()).filter(Boolean);
const log = (line = '') => process.stdout.write(line + '\n');


function workDir(): string {
  let base = os.tmpdir();
  // tmpfs makes fsync free: the POST profile would say nothing about durable writes.
  if (statfsSync(base).type === 0x01021994) mkdirSync((base = join(ROOT, '.tmp')), { recursive: true });
  return mkdtempSync(join(base, 'scim-profile-'));
}

async function waitFor(file: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!existsSync(file)) {
    if (Date.now() > deadline) throw new Error(`no ${file} within ${timeoutMs / 1000} s`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function main(): Promise<void> {
  killChildrenOnExit();
  if (!existsSync(BRIDGE_MAIN)) throw new Error(`${BRIDGE_MAIN} is missing: npm run build first (npm run profile does).`);
  const work = workDir();
  process.on('exit', () => {
    if (process.env.PROFILE_KEEP !== '1') rmSync(work, { recursive: true, force: true });
  });
  const generator = chooseGenerator(log, process.env.BENCH_GENERATOR);
  if (generator.kind !== 'wrk') throw new Error(`the profile needs wrk (${generator.why})`);
  const load = new LoadGenerator(generator, work);
  const hook = join(work, 'profile-hook.js');
  writeFileSync(hook, ts.transpileModule(readFileSync(join(__dirname, 'lib', 'profile-hook.ts'), 'utf8'), { compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022 } }).outputText);
  const profiles = join(work, 'profiles');
  mkdirSync(profiles);
  const token = randomBytes(24).toString('hex');
  const port = await freePort();
  const bridge = await ChildServer.start({
    name: 'bridge',
    args: [...NODE_OPTIONS, '-r', hook, BRIDGE_MAIN],
    cwd: work,
    port,
    logPath: join(work, 'bridge.log'),
    env: {
      ...process.env,
      PROFILE_DIR: profiles,
      SCIM_BRIDGE_PORT: String(port),
      SCIM_BRIDGE_HOST: '127.0.0.1',
      SCIM_BRIDGE_DATABASE_URL: `sqlite:${join(work, 'bridge.db')}`,
      SCIM_BRIDGE_TOKEN: token,
      SCIM_BRIDGE_TOKEN_SHA256: '',
    },
  });
  log(`profile: bridge pid ${bridge.pid} (node ${NODE_OPTIONS.join(' ')} ${BRIDGE_MAIN}), work dir ${work}; load before: ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);

  const client = new HttpClient(port, token, 16);
  const seeded: { id: string; userName: string }[] = new Array(USERS);
  const t0 = performance.now();
  await pool(USERS, 16, async (i) => {
    const u = JSON.parse((await client.expect('POST', '/Users', userBody(`user${String(i).padStart(7, '0')}`), 201)).body) as { id: string; userName: string };
    seeded[i] = { id: u.id, userName: u.userName };
  });
  client.close();
  log(`seeded ${USERS.toLocaleString('en-US')} users in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

  const pathsFile = (name: string, paths: string[]) => {
    const file = join(work, `paths-${name}.txt`);
    writeFileSync(file, paths.join('\n') + '\n');
    return { kind: 'get' as const, paths, pathsFile: file };
  };
  const template = JSON.stringify(userBody(NAME_PLACEHOLDER));
  const loads: Record<string, { label: string; connections: number; load: LoadKind }> = {
    healthz: { label: 'GET /healthz', connections: 16, load: pathsFile('healthz', ['/healthz']) },
    id: { label: 'GET /Users/{id}', connections: 16, load: pathsFile('id', seeded.map((u) => `/Users/${u.id}`)) },
    filter: {
      label: 'GET /Users?filter=userName eq',
      connections: 16,
      load: pathsFile('filter', seeded.map((u) => `/Users?filter=${encodeURIComponent(`userName eq ${JSON.stringify(u.userName)}`)}`)),
    },
    post16: { label: 'POST /Users durable, 16 in flight', connections: 16, load: { kind: 'post-users', prefix: 'p16-', template } },
    post1: { label: 'POST /Users durable, 1 in flight', connections: 1, load: { kind: 'post-users', prefix: 'p1-', template } },
  };
  const results: Record<string, RequestProfile & { rps: number; serverCores: number }> = {};
  let n = 0;
  for (const name of PATHS) {
    const spec = loads[name];
    if (!spec) throw new Error(`PROFILE_PATHS: unknown path ${name}; expected some of ${Object.keys(loads).join(',')}`);
    const run = { port, token, connections: spec.connections, seconds: SECONDS, load: spec.load };
    await load.warmUp(run, 2);
    process.kill(bridge.pid, 'SIGUSR2');
    await new Promise((r) => setTimeout(r, 100));
    const cpu0 = cpuSecondsOf(bridge.pid);
    const r = await load.run(spec.load.kind === 'post-users' ? { ...run, load: { ...spec.load, prefix: `m${spec.load.prefix}` } } : run, SECONDS);
    const serverCores = (cpuSecondsOf(bridge.pid) - cpu0) / r.seconds;
    process.kill(bridge.pid, 'SIGUSR2');
    n++;
    await waitFor(join(profiles, `${n}.done`));
    const p = attributeProfile(join(profiles, `${n}.cpuprofile`), r.requests);
    results[name] = { ...p, rps: r.rps, serverCores };
    log('');
    log(`${spec.label}: ${Math.round(r.rps).toLocaleString('en-US')} req/s under the profiler (server ${serverCores.toFixed(2)} cores; load ${os.loadavg()[0].toFixed(2)})${r.bad ? `; ${r.badDetail}` : ''}`);
    log(formatRequestProfile(spec.label, p));
  }
  await bridge.stop();
  const out = join(os.tmpdir(), `scim-bridge-profile-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(out, JSON.stringify(results, null, 2));
  log(`\nresults as JSON: ${out}${process.env.PROFILE_KEEP === '1' ? `\nprofiles kept: ${profiles}` : ''}`);
}

main().catch((err: unknown) => {
  process.stderr.write(`profile failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
