/**
 * Child servers for the benchmark: each runs in a process of its own (so its memory is its own), logs
 * to a file, is ready when its /healthz answers, and is killed whatever way the benchmark ends.
 */
import { ChildProcess, spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readdirSync, readFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';

const running = new Set<ChildProcess>();
/** Servers that ended without being asked to: the likely cause of whatever failed next. */
const died: string[] = [];

/** What ended unasked, with the end of its log; empty when every server is fine. */
export function unexpectedExits(): string[] {
  return [...died];
}

function killAll(): void {
  for (const child of running) {
    if (child.exitCode === null && child.signalCode === null) {
      try {
        child.kill('SIGKILL');
      } catch {
        // already gone
      }
    }
  }
  running.clear();
}

let hooked = false;
/** Children die with the benchmark: on a normal exit, an error, Ctrl-C or a TERM. */
export function killChildrenOnExit(): void {
  if (hooked) return;
  hooked = true;
  process.on('exit', killAll);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(signal, () => {
      process.stderr.write(`\nbench: ${signal}, stopping the servers it started\n`);
      killAll();
      process.exit(130);
    });
  }
}

/** A free TCP port on 127.0.0.1 (asked of the kernel, then released for the child to take). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

export interface Memory {
  /** Resident set size now, MiB (VmRSS). */
  readonly rssMB: number;
  /** Peak resident set size since start, MiB (VmHWM). */
  readonly peakMB: number;
}

export function memoryOf(pid: number): Memory {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string) => {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status);
    if (!m) throw new Error(`/proc/${pid}/status has no ${field}`);
    return Number(m[1]) / 1024;
  };
  return { rssMB: kb('VmRSS'), peakMB: kb('VmHWM') };
}

function get(port: number, path: string): Promise<number> {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path, agent: false, timeout: 1000 }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(0));
  });
}

export interface ChildServerOptions {
  readonly name: string;
  readonly args: readonly string[];
  readonly env?: NodeJS.ProcessEnv;
  readonly cwd?: string;
  readonly port: number;
  readonly logPath: string;
  /** Seconds to wait for GET /healthz to answer 200. */
  readonly startTimeoutS?: number;
}

export class ChildServer {
  private exitNote: string | undefined;
  private stopping = false;
  private readonly exited: Promise<void>;

  private constructor(
    readonly name: string,
    readonly port: number,
    readonly logPath: string,
    private readonly child: ChildProcess,
  ) {
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.exitNote = signal ? `killed by ${signal}` : `exited with code ${code}`;
        running.delete(child);
        if (!this.stopping) died.push(`${this.name} (pid ${child.pid}) ${this.exitNote}.\n${this.logTail()}`);
        resolve();
      });
    });
  }

  get pid(): number {
    return this.child.pid!;
  }

  static async start(options: ChildServerOptions): Promise<ChildServer> {
    killChildrenOnExit();
    const log = openSync(options.logPath, 'a');
    const child = spawn(process.execPath, [...options.args], {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: ['ignore', log, log],
    });
    closeSync(log);
    running.add(child);
    const server = new ChildServer(options.name, options.port, options.logPath, child);
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', reject);
    });
    const deadline = Date.now() + (options.startTimeoutS ?? 30) * 1000;
    for (;;) {
      if (server.exitNote) throw new Error(`${options.name} ${server.exitNote} before it was ready.\n${server.logTail()}`);
      if ((await get(options.port, '/healthz')) === 200) return server;
      if (Date.now() > deadline) {
        server.kill();
        throw new Error(`${options.name} did not answer GET /healthz on port ${options.port} within ${options.startTimeoutS ?? 30} s.\n${server.logTail()}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** Throws when the child is gone: a figure measured against a dead server means nothing. */
  assertAlive(): void {
    if (this.exitNote) throw new Error(`${this.name} ${this.exitNote} during the benchmark.\n${this.logTail()}`);
  }

  memory(): Memory {
    this.assertAlive();
    return memoryOf(this.pid);
  }

  /** The last lines of the child's log, for error messages. */
  logTail(lines = 15): string {
    if (!existsSync(this.logPath)) return `(no log at ${this.logPath})`;
    const text = readFileSync(this.logPath, 'utf8').trimEnd().split('\n').slice(-lines);
    return `--- last lines of ${this.logPath} ---\n${text.join('\n')}\n---`;
  }

  kill(): void {
    this.stopping = true;
    if (!this.exitNote) this.child.kill('SIGKILL');
  }

  /** TERM (the bridge closes its store and, under --cpu-prof, writes its profile), KILL after `graceS`. */
  async stop(graceS = 15): Promise<void> {
    if (this.exitNote) return;
    this.stopping = true;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.kill(), graceS * 1000);
    await this.exited;
    clearTimeout(timer);
  }
}

const CLK_TCK = 100; // Linux's USER_HZ on every architecture node runs on

/** CPU seconds (user + system) a process has used so far, from /proc/<pid>/stat. */
export function cpuSecondsOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // After "pid (comm) ": state is field 3 of stat(5), utime 14 and stime 15.
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
}

/**
 * CPU seconds of a server and its children (PostgreSQL: the postmaster and its backends): the root's own and its
 * ended children's (reaped into cutime/cstime), and those of the children alive now.
 */
export function treeCpuSeconds(rootPid: number): number {
  const fieldsOf = (pid: number | string) => {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  };
  const root = fieldsOf(rootPid);
  let ticks = Number(root[11]) + Number(root[12]) + Number(root[13]) + Number(root[14]);
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === rootPid) continue;
    try {
      const f = fieldsOf(entry);
      // ppid is field 4 of stat(5): index 1 after "pid (comm) state".
      if (Number(f[1]) === rootPid) ticks += Number(f[11]) + Number(f[12]);
    } catch {
      // ended meanwhile
    }
  }
  return ticks / CLK_TCK;
}

/** CPU seconds the whole machine has spent busy (not idle, not waiting for I/O), over all cores. */
export function machineBusySeconds(): number {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0];
  const [, user, nice, system, , , irq, softirq, steal] = line.trim().split(/\s+/).map(Number);
  return (user + nice + system + irq + softirq + steal) / CLK_TCK;
}

/** CPU seconds of this process and of its children that have ended (wrk runs), from /proc/self/stat. */
export function selfAndEndedChildrenCpuSeconds(): number {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // utime 14, stime 15, cutime 16, cstime 17 in stat(5)'s numbering.
  return (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) / CLK_TCK;
}
