/**
 * The load generator: wrk (C, cheap on a 2-core machine) driven by a Lua script, or, where wrk cannot
 * be had, N keep-alive loops over node's http in this process. The same one serves the bridge and the
 * bare server, one after the other.
 */
import { spawn, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import { quantile } from './client';

export type Generator = { kind: 'wrk'; path: string; version: string } | { kind: 'node'; why: string };

/** A GET of a path drawn at random from a list, or a POST /Users whose userName is new on every request. */
export type LoadKind =
  | { readonly kind: 'get'; readonly paths: readonly string[]; readonly pathsFile: string }
  | { readonly kind: 'post-users'; readonly prefix: string; readonly template: string };

export interface LoadSpec {
  readonly port: number;
  readonly token: string;
  readonly connections: number;
  readonly seconds: number;
  readonly load: LoadKind;
}

export interface LoadResult {
  readonly generator: 'wrk' | 'node';
  readonly requests: number;
  readonly seconds: number;
  readonly rps: number;
  readonly p50ms: number;
  readonly p99ms: number;
  /** Answers outside 2xx/3xx and connection errors or timeouts: any makes the figure suspect. */
  readonly bad: number;
  readonly badDetail: string;
}

/** The placeholder in a POST body template that each request replaces with a fresh name. */
export const NAME_PLACEHOLDER = '__N__';

function which(cmd: string): string | null {
  const r = spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' });
  return r.status === 0 && r.stdout.trim() ? r.stdout.trim() : null;
}

function wrkVersion(path: string): string {
  const r = spawnSync(path, ['-v'], { encoding: 'utf8' });
  return /wrk\s+([\w.-]+)/.exec(`${r.stdout}${r.stderr}`)?.[1] ?? 'unknown version';
}

/** wrk if it is installed or can be installed (root, apt-get); else the node fallback, saying why. */
export function chooseGenerator(log: (line: string) => void, force?: string): Generator {
  if (force === 'node') return { kind: 'node', why: 'BENCH_GENERATOR=node' };
  let path = which('wrk');
  if (!path) {
    if (typeof process.getuid !== 'function' || process.getuid() !== 0) {
      return { kind: 'node', why: 'wrk is not installed and the benchmark is not running as root to install it (apt-get install wrk)' };
    }
    if (!which('apt-get')) return { kind: 'node', why: 'wrk is not installed and there is no apt-get here' };
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    const install = () => spawnSync('apt-get', ['install', '-y', '-q', '--no-install-recommends', 'wrk'], { env, encoding: 'utf8', timeout: 300_000 });
    log('wrk (the load generator) is not installed: installing it with apt-get install -y wrk');
    let r = install();
    if (r.status !== 0) {
      log('  apt-get install failed; running apt-get update, then trying again');
      spawnSync('apt-get', ['update', '-q'], { env, encoding: 'utf8', timeout: 300_000 });
      r = install();
    }
    path = which('wrk');
    if (!path) {
      const tail = `${r.stdout ?? ''}${r.stderr ?? ''}`.trim().split('\n').slice(-3).join(' | ');
      return { kind: 'node', why: `wrk could not be installed (${tail || `apt-get exited ${r.status}`})` };
    }
    log(`  installed ${path}`);
  }
  return { kind: 'wrk', path, version: wrkVersion(path) };
}

const LUA = `
-- Written by bench/run.ts. GET: a path drawn at random from the file BENCH_PATHS, one per line.
-- POST: /Users with the body BENCH_BODY, its ${NAME_PLACEHOLDER} replaced by BENCH_PREFIX and a counter.
local mode = os.getenv("BENCH_MODE")
wrk.headers["Authorization"] = "Bearer " .. os.getenv("BENCH_TOKEN")
wrk.headers["Accept"] = "application/scim+json"
if mode == "get" then
  local paths, n = {}, 0
  for line in io.lines(os.getenv("BENCH_PATHS")) do
    n = n + 1
    paths[n] = line
  end
  math.randomseed(os.time())
  request = function()
    return wrk.format("GET", paths[math.random(n)])
  end
else
  local template = os.getenv("BENCH_BODY")
  local prefix = os.getenv("BENCH_PREFIX")
  local counter = 0
  wrk.headers["Content-Type"] = "application/scim+json"
  request = function()
    counter = counter + 1
    local body = string.gsub(template, "${NAME_PLACEHOLDER}", prefix .. counter)
    return wrk.format("POST", "/Users", nil, body)
  end
end
`;

function toMs(value: string, unit: string): number {
  const v = Number(value);
  switch (unit) {
    case 'us':
      return v / 1000;
    case 'ms':
      return v;
    case 's':
      return v * 1000;
    case 'm':
      return v * 60_000;
    default:
      return NaN;
  }
}

export function parseWrk(out: string): LoadResult {
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(out);
  const total = /(\d+) requests in ([\d.]+)(us|ms|s|m)/.exec(out);
  if (!rps || !total) throw new Error(`could not read wrk's output:\n${out}`);
  const pct = (p: string) => {
    const m = new RegExp(`^\\s*${p}%\\s+([\\d.]+)(us|ms|s|m)\\s*$`, 'm').exec(out);
    return m ? toMs(m[1], m[2]) : NaN;
  };
  const non2xx = Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(out)?.[1] ?? 0);
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const socketErrors = sock ? sock.slice(1).reduce((a, b) => a + Number(b), 0) : 0;
  return {
    generator: 'wrk',
    requests: Number(total[1]),
    seconds: toMs(total[2], total[3]) / 1000,
    rps: Number(rps[1]),
    p50ms: pct('50'),
    p99ms: pct('99'),
    bad: non2xx + socketErrors,
    badDetail: [non2xx ? `${non2xx} non-2xx answers` : '', sock && socketErrors ? sock[0] : ''].filter(Boolean).join('; '),
  };
}

function runWrk(wrkPath: string, luaPath: string, spec: LoadSpec, seconds: number): Promise<LoadResult> {
  const env: NodeJS.ProcessEnv = { ...process.env, BENCH_TOKEN: spec.token, BENCH_MODE: spec.load.kind === 'get' ? 'get' : 'post' };
  if (spec.load.kind === 'get') env.BENCH_PATHS = spec.load.pathsFile;
  else {
    env.BENCH_BODY = spec.load.template;
    env.BENCH_PREFIX = spec.load.prefix;
  }
  const args = ['-t1', `-c${spec.connections}`, `-d${seconds}s`, '--timeout', '10s', '--latency', '-s', luaPath, `http://127.0.0.1:${spec.port}`];
  return new Promise((resolve, reject) => {
    const child = spawn(wrkPath, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', reject);
    child.on('exit', (code) => {
      if (code !== 0) reject(new Error(`wrk ${args.join(' ')} exited ${code}:\n${out}`));
      else {
        try {
          resolve(parseWrk(out));
        } catch (e) {
          reject(e);
        }
      }
    });
  });
}

async function runNode(spec: LoadSpec, seconds: number): Promise<LoadResult> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: spec.connections, maxFreeSockets: spec.connections });
  const latencies: number[] = [];
  let bad = 0;
  let errors = 0;
  let counter = 0;
  const load = spec.load;
  const one = (): Promise<void> =>
    new Promise((resolve) => {
      const headers: http.OutgoingHttpHeaders = { authorization: `Bearer ${spec.token}`, accept: 'application/scim+json' };
      let path: string;
      let body: Buffer | undefined;
      if (load.kind === 'get') path = load.paths[Math.floor(Math.random() * load.paths.length)];
      else {
        path = '/Users';
        body = Buffer.from(load.template.split(NAME_PLACEHOLDER).join(`${load.prefix}${++counter}`));
        headers['content-type'] = 'application/scim+json';
        headers['content-length'] = body.length;
      }
      const started = process.hrtime.bigint();
      const req = http.request({ host: '127.0.0.1', port: spec.port, method: load.kind === 'get' ? 'GET' : 'POST', path, headers, agent }, (res) => {
        res.resume();
        res.on('end', () => {
          latencies.push(Number(process.hrtime.bigint() - started) / 1e6);
          if ((res.statusCode ?? 0) >= 400) bad++;
          resolve();
        });
      });
      req.setTimeout(10_000, () => req.destroy(new Error('timeout')));
      req.on('error', () => {
        errors++;
        resolve();
      });
      req.end(body);
    });
  const started = Date.now();
  const deadline = started + seconds * 1000;
  await Promise.all(
    Array.from({ length: spec.connections }, async () => {
      while (Date.now() < deadline) await one();
    }),
  );
  const elapsed = (Date.now() - started) / 1000;
  agent.destroy();
  const count = latencies.length;
  return {
    generator: 'node',
    requests: count,
    seconds: elapsed,
    rps: count / elapsed,
    p50ms: quantile(latencies, 0.5),
    p99ms: quantile(latencies, 0.99),
    bad: bad + errors,
    badDetail: [bad ? `${bad} non-2xx answers` : '', errors ? `${errors} connection errors or timeouts` : ''].filter(Boolean).join('; '),
  };
}

export class LoadGenerator {
  private readonly luaPath: string;

  constructor(
    readonly generator: Generator,
    workDir: string,
  ) {
    this.luaPath = join(workDir, 'bench.lua');
    if (generator.kind === 'wrk') writeFileSync(this.luaPath, LUA);
  }

  describe(): string {
    return this.generator.kind === 'wrk'
      ? `wrk ${this.generator.version} (${this.generator.path}), 1 thread`
      : `node http keep-alive loops in the benchmark process (fallback: ${this.generator.why})`;
  }

  /** A warm-up run whose figures are dropped (POSTs under other names than the measured run's). */
  async warmUp(spec: LoadSpec, warmupS: number): Promise<void> {
    if (warmupS > 0) await this.run({ ...spec, load: withPrefix(spec.load, 'w') }, warmupS);
  }

  run(spec: LoadSpec, seconds: number): Promise<LoadResult> {
    return this.generator.kind === 'wrk' ? runWrk(this.generator.path, this.luaPath, spec, seconds) : runNode(spec, seconds);
  }
}

function withPrefix(load: LoadKind, extra: string): LoadKind {
  return load.kind === 'post-users' ? { ...load, prefix: `${extra}${load.prefix}` } : load;
}
