/** The bridge as a child process (`npm start`'s entry point), for tests that kill it or stop it with a signal. */
import { spawn, ChildProcess } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { bridgeCommand } from './bridge-build';

export interface ChildExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  /** performance.now() when the parent saw the exit. */
  readonly at: number;
}

export interface ChildBridge {
  readonly url: string;
  readonly process: ChildProcess;
  /** SIGKILL. */
  kill(): void;
  /** Sends `sig` and returns performance.now() at the moment it was sent. */
  signal(sig: NodeJS.Signals): number;
  /** Everything the child wrote to stdout so far (the banner, then the JSON log lines when LOG_LEVEL allows). */
  stdout(): string;
  /** Everything the child wrote to stderr so far (also passed through to this process's stderr). */
  stderr(): string;
  /** Resolves with the stdout so far once it matches `pattern`; rejects after `timeoutMs` or if the child exits first. */
  waitForOutput(pattern: RegExp, timeoutMs?: number): Promise<string>;
  /** Settles once the child has exited. */
  readonly exited: Promise<ChildExit>;
}

/**
 * Starts the bridge (bridge/src/main.ts, from the tests' build: bridge-build.ts) with `env` and resolves once it prints where it listens. `wrapper` is a command that
 * runs the bridge's command line given as its last arguments (e.g. `unshare` with a mount of its own); it must
 * exec it, so that the child's pid is the bridge's.
 */
export function spawnBridge(env: Record<string, string | undefined>, wrapper: readonly string[] = []): Promise<ChildBridge> {
  return new Promise((resolve, reject) => {
    const bridge = bridgeCommand();
    const [command, ...args] = [...wrapper, ...bridge];
    const child = spawn(command, args, {
      env: { ...process.env, SCIM_BRIDGE_PORT: '0', LOG_LEVEL: 'silent', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    let exit: ChildExit | undefined;
    const watchers = new Set<() => void>();
    const exited = new Promise<ChildExit>((done) => {
      child.on('exit', (code, signal) => {
        exit = { code, signal, at: performance.now() };
        done(exit);
        for (const w of [...watchers]) w();
      });
    });
    const waitForOutput = (pattern: RegExp, timeoutMs = 10_000) =>
      new Promise<string>((ok, fail) => {
        const timer = setTimeout(() => {
          watchers.delete(check);
          fail(new Error(`the bridge did not print ${pattern} within ${timeoutMs} ms; stdout so far:\n${out}`));
        }, timeoutMs);
        function check() {
          if (pattern.test(out)) {
            clearTimeout(timer);
            watchers.delete(check);
            ok(out);
          } else if (exit) {
            clearTimeout(timer);
            watchers.delete(check);
            fail(new Error(`the bridge exited (${exit.code ?? exit.signal}) without printing ${pattern}; stdout:\n${out}`));
          }
        }
        watchers.add(check);
        check();
      });
    child.stderr!.on('data', (chunk) => {
      err += chunk;
      process.stderr.write(chunk);
    });
    let started = false;
    child.stdout!.on('data', (chunk) => {
      out += chunk;
      for (const w of [...watchers]) w();
      const m = /listening: (http:\/\/\S+)/.exec(out);
      if (m && !started) {
        started = true;
        resolve({
          url: m[1],
          process: child,
          kill: () => child.kill('SIGKILL'),
          signal: (sig) => {
            const at = performance.now();
            child.kill(sig);
            return at;
          },
          stdout: () => out,
          stderr: () => err,
          waitForOutput,
          exited,
        });
      }
    });
    child.on('exit', (code, signal) => reject(new Error(`bridge exited (${code ?? signal})`)));
  });
}
