/**
 * Runs `scim-bridge <command>` in-process (the same function the bin calls) with a given environment and
 * stdin, and returns what it printed and its exit code.
 */
import { Readable } from 'node:stream';
import { run } from '../../bridge/src/cli';

export interface CliRun {
  readonly code: number;
  readonly stdout: string;
  /** stdout as bytes (`backup -` writes a database there). */
  readonly stdoutBytes: Buffer;
  readonly stderr: string;
}

export async function runCli(argv: string[], options: { env?: NodeJS.ProcessEnv; stdin?: string | Buffer } = {}): Promise<CliRun> {
  const stdout: Buffer[] = [];
  let stderr = '';
  const code = await run(argv, {
    stdin: Readable.from(options.stdin === undefined ? [] : [Buffer.from(options.stdin)]),
    stdout: { write: (chunk: string | Buffer) => stdout.push(Buffer.from(chunk)) },
    stderr: { write: (text: string) => (stderr += text) },
    // Only what the test gives: the bridge's settings as a container would have them, nothing from the runner.
    env: options.env ?? {},
  });
  const bytes = Buffer.concat(stdout);
  return { code, stdout: bytes.toString('utf8'), stdoutBytes: bytes, stderr };
}
