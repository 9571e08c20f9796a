/** The bridge as a child process (`npm start`'s entry point), for tests that kill it. */
import { spawn, ChildProcess } from 'node:child_process';

export interface ChildBridge {
  readonly url: string;
  readonly process: ChildProcess;
  kill(): void;
}

/** Starts bridge/src/main.ts with `env` and resolves once it prints where it listens. */
export function spawnBridge(env: Record<string, string | undefined>): Promise<ChildBridge> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-r', 'ts-node/register/transpile-only', 'bridge/src/main.ts'], {
      env: { ...process.env, SCIM_BRIDGE_PORT: '0', LOG_LEVEL: 'silent', ...env },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout!.on('data', (chunk) => {
      out += chunk;
      const m = /listening: (http:\/\/\S+)/.exec(out);
      if (m) resolve({ url: m[1], process: child, kill: () => child.kill('SIGKILL') });
    });
    child.on('exit', (code, signal) => reject(new Error(`bridge exited (${code ?? signal})`)));
  });
}
