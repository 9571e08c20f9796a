/**
 * `npm run bench:ab`: builds of the bridge side by side against issue 18's read ceiling (Express 5's empty route),
 * for a machine too busy for one long run per server to mean much. All servers run at once on copies of one seeded
 * database; each round measures Express's empty route, then every build on /healthz, GET /Users/{id} and the
 * userName filter, in a shuffled order, a few seconds each; a build's share is taken against the Express figure of
 * its own round, and the medians over the rounds are reported, with the CPU per request (server CPU over requests).
 *
 *   AB_BUILDS="before=.tmp/before/bridge/dist/main.js,after=bridge/dist/main.js" npm run bench:ab
 *
 * Knobs: AB_BUILDS (name=main.js,...; default: this tree's build), AB_USERS (5,000), AB_ROUNDS (5), AB_SECONDS (3),
 * AB_CONNECTIONS (16), AB_NODE_OPTIONS (the bridges' node flags; `npm start`'s by default).
 */
import { randomBytes } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join, resolve } from 'node:path';
import ts from 'typescript';
import { ChildServer, cpuSecondsOf, freePort, killChildrenOnExit } from './lib/children';
import { HttpClient, pool, quantile } from './lib/client';
import { chooseGenerator, LoadGenerator } from './lib/load';
import { userBody } from './lib/users';

const ROOT = resolve(__dirname, '..');
const num = (name: string, fallback: number) => (process.env[name] ? Number(process.env[name]!.replace(/_/g, '')) : fallback);
const USERS = num('AB_USERS', 5_000);
const ROUNDS = num('AB_ROUNDS', 5);
const SECONDS = num('AB_SECONDS', 3);
const CONNECTIONS = num('AB_CONNECTIONS', 16);
const NODE_OPTIONS = (process.env.AB_NODE_OPTIONS ?? '--max-semi-space-size=2').split(/\s+/).filter(Boolean);
const BUILDS = (process.env.AB_BUILDS ?? `this=${join(ROOT, 'bridge', 'dist', 'main.js')}`).split(',').map((b) => {
  const [name, main] = b.split('=');
  return { name, main: resolve(main) };
});
const TARGETS: Record<string, number> = { healthz: 0.85, id: 0.6, filter: 0.5 };
const log = (line = '') => process.stdout.write(line + '\n');


function shuffle<T>(items: T[]): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [items[i], items[j]] = [items[j], items[i]];
  }
  return items;
}

async function main(): Promise<void> {
  killChildrenOnExit();
  let base = os.tmpdir();
  if (statfsSync(base).type === 0x01021994) mkdirSync((base = join(ROOT, '.tmp')), { recursive: true });
  const work = mkdtempSync(join(base, 'scim-ab-'));
  process.on('exit', () => rmSync(work, { recursive: true, force: true }));
  const generator = chooseGenerator(log, process.env.BENCH_GENERATOR);
  if (generator.kind !== 'wrk') throw new Error(`bench:ab needs wrk (${generator.why})`);
  const load = new LoadGenerator(generator, work);
  const token = randomBytes(24).toString('hex');
  const env = (port: number, db: string) => ({
    ...process.env,
    SCIM_BRIDGE_PORT: String(port),
    SCIM_BRIDGE_HOST: '127.0.0.1',
    SCIM_BRIDGE_DATABASE_URL: `sqlite:${db}`,
    SCIM_BRIDGE_TOKEN: token,
    SCIM_BRIDGE_TOKEN_SHA256: '',
  });
  log(`bench:ab: ${BUILDS.map((b) => `${b.name}=${b.main}`).join(', ')}; ${USERS} users, ${ROUNDS} rounds of ${SECONDS} s, ${CONNECTIONS} connections; load ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);

  // One database, seeded by the first build, copied for each (closed first: one file, no WAL).
  const seedDb = join(work, 'seed.db');
  let port = await freePort();
  const seeder = await ChildServer.start({ name: 'seeder', args: [...NODE_OPTIONS, BUILDS[0].main], cwd: work, port, logPath: join(work, 'seed.log'), env: env(port, seedDb) });
  const client = new HttpClient(port, token, 16);
  const users: { id: string; userName: string }[] = new Array(USERS);
  await pool(USERS, 16, async (i) => {
    users[i] = JSON.parse((await client.expect('POST', '/Users', userBody(`ab${String(i).padStart(7, '0')}`), 201)).body);
  });
  client.close();
  await seeder.stop();
  const files = (name: string, paths: string[]) => {
    const file = join(work, `paths-${name}.txt`);
    writeFileSync(file, paths.join('\n') + '\n');
    return { kind: 'get' as const, paths, pathsFile: file };
  };
  const loads = {
    healthz: files('healthz', ['/healthz']),
    id: files('id', users.map((u) => `/Users/${u.id}`)),
    filter: files('filter', users.map((u) => `/Users?filter=${encodeURIComponent(`userName eq ${JSON.stringify(u.userName)}`)}`)),
  };

  const servers: { name: string; server: ChildServer; port: number }[] = [];
  for (const b of BUILDS) {
    const dir = join(work, b.name);
    mkdirSync(dir);
    copyFileSync(seedDb, join(dir, 'bridge.db'));
    port = await freePort();
    servers.push({ name: b.name, port, server: await ChildServer.start({ name: b.name, args: [...NODE_OPTIONS, b.main], cwd: dir, port, logPath: join(dir, 'bridge.log'), env: env(port, join(dir, 'bridge.db')) }) });
  }
  const hello = join(work, 'express-hello.js');
  writeFileSync(
    hello,
    ts
      .transpileModule(readFileSync(join(__dirname, 'express-hello.ts'), 'utf8'), { compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true } })
      .outputText.replace('require("express")', `require(${JSON.stringify(require.resolve('express'))})`),
  );
  const expressPort = await freePort();
  const express = await ChildServer.start({ name: 'express hello', args: [hello, String(expressPort)], port: expressPort, logPath: join(work, 'express.log') });

  const measure = async (server: ChildServer, port: number, path: keyof typeof loads) => {
    const spec = { port, token, connections: CONNECTIONS, seconds: SECONDS, load: loads[path] };
    await load.warmUp(spec, 1);
    const cpu0 = cpuSecondsOf(server.pid);
    const r = await load.run(spec, SECONDS);
    const cpu = cpuSecondsOf(server.pid) - cpu0;
    if (r.bad) throw new Error(`${server.name} ${path}: ${r.badDetail}`);
    return { rps: r.rps, usPerRequest: (cpu * 1e6) / r.requests };
  };
  type Sample = { share: number; cpuShare: number; rps: number; us: number };
  const samples = new Map<string, Sample[]>();
  const expressSamples: { rps: number; us: number }[] = [];
  for (let round = 1; round <= ROUNDS; round++) {
    const e = await measure(express, expressPort, 'healthz');
    expressSamples.push({ rps: e.rps, us: e.usPerRequest });
    const jobs = shuffle(servers.flatMap((s) => (Object.keys(loads) as (keyof typeof loads)[]).map((path) => ({ s, path }))));
    const line: string[] = [`round ${round}: express ${Math.round(e.rps)}/s (${e.usPerRequest.toFixed(0)} µs)`];
    for (const { s, path } of jobs) {
      const m = await measure(s.server, s.port, path);
      const key = `${s.name} ${path}`;
      if (!samples.has(key)) samples.set(key, []);
      samples.get(key)!.push({ share: m.rps / e.rps, cpuShare: e.usPerRequest / m.usPerRequest, rps: m.rps, us: m.usPerRequest });
      line.push(`${key} ${Math.round(m.rps)}/s`);
    }
    log(`${line.join('; ')} (load ${os.loadavg()[0].toFixed(2)})`);
  }
  for (const s of servers) await s.server.stop();
  await express.stop();

  const med = (xs: number[]) => quantile(xs, 0.5);
  log('');
  log(`Express 5 empty route: median ${Math.round(med(expressSamples.map((x) => x.rps)))}/s, ${med(expressSamples.map((x) => x.us)).toFixed(0)} µs of CPU per request`);
  log('| build | path | req/s (median) | share of Express, median [min-max] | by CPU per request, median | µs/request | target |');
  log('|---|---|---:|---|---|---:|---|');
  for (const path of Object.keys(loads)) {
    for (const s of servers) {
      const xs = samples.get(`${s.name} ${path}`)!;
      const shares = xs.map((x) => x.share);
      log(
        `| ${s.name} | ${path} | ${Math.round(med(xs.map((x) => x.rps)))} | ${med(shares).toFixed(2)} [${Math.min(...shares).toFixed(2)}-${Math.max(...shares).toFixed(2)}] | ` +
          `${med(xs.map((x) => x.cpuShare)).toFixed(2)} | ${med(xs.map((x) => x.us)).toFixed(0)} | >= ${TARGETS[path]} |`,
      );
    }
  }
  log(`load at the end: ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:ab failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
