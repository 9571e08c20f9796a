/**
 * What a command reads and writes: injected, so that tests run commands in-process and read what they print.
 * Results go to stdout, progress and explanations to stderr (a script can pipe stdout and still see progress).
 */
import type { Readable } from 'node:stream';

export interface CliIo {
  readonly stdin: Readable & { isTTY?: boolean };
  readonly stdout: { write(text: string): unknown };
  readonly stderr: { write(text: string): unknown; isTTY?: boolean };
  readonly env: NodeJS.ProcessEnv;
}

/** A failure the person at the terminal can act on: its message says what to do; the command exits `code`. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly code = 1,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

/** A wrong command line: exit 2, as for a configuration error. */
export const usageError = (message: string) => new CliError(message, 2);

/** Parsed arguments: positionals in order, `--name value` and `--flag` options. */
export interface Args {
  readonly positionals: string[];
  readonly options: Map<string, string[]>;
}

/**
 * Splits argv. `valued` options take the next argument (or `--name=value`); `flags` take none; anything else
 * that starts with `--` is refused, so that a misspelt option is never taken for a file name.
 */
export function parseArgs(argv: readonly string[], spec: { valued?: readonly string[]; flags?: readonly string[] }): Args {
  const positionals: string[] = [];
  const options = new Map<string, string[]>();
  const add = (name: string, value: string) => options.set(name, [...(options.get(name) ?? []), value]);
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--') {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (!arg.startsWith('--') || arg === '-') {
      positionals.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    const name = eq < 0 ? arg.slice(2) : arg.slice(2, eq);
    if (spec.flags?.includes(name) && eq < 0) {
      add(name, 'true');
    } else if (spec.valued?.includes(name)) {
      const value = eq < 0 ? argv[++i] : arg.slice(eq + 1);
      if (value === undefined) throw usageError(`--${name} needs a value`);
      add(name, value);
    } else {
      const known = [...(spec.valued ?? []), ...(spec.flags ?? [])].map((o) => `--${o}`);
      throw usageError(`unknown option --${name}${known.length ? ` (this command takes ${known.join(', ')})` : ''}`);
    }
  }
  return { positionals, options };
}

export const option = (args: Args, name: string): string | undefined => args.options.get(name)?.at(-1);
export const flag = (args: Args, name: string): boolean => args.options.has(name);

/** Progress on stderr: at most a line every `intervalMs`, and always the last one. */
export function progressReporter(io: CliIo, intervalMs = 1_000): (line: string, final?: boolean) => void {
  let last = 0;
  return (line, final = false) => {
    const now = Date.now();
    if (!final && now - last < intervalMs) return;
    last = now;
    io.stderr.write(`${line}\n`);
  };
}
