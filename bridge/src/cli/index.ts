/**
 * `scim-bridge <command>`: the operator's commands (DESIGN.md, "Command line"). Each command is a function of
 * its arguments and an injected CliIo that returns the exit code; tests run them in-process.
 */
import { backup, restore } from './backup';
import { doctor } from './doctor';
import { eventsReplay } from './events';
import { Args, CliError, CliIo, parseArgs, usageError } from './io';
import { tokenHash, tokenNew } from './token';

export { CliError } from './io';
export type { CliIo } from './io';

interface Command {
  readonly usage: string;
  readonly valued?: readonly string[];
  readonly flags?: readonly string[];
  readonly run: (io: CliIo, args: Args) => Promise<number>;
}

const COMMANDS: Record<string, Command> = {
  doctor: {
    usage: 'doctor <baseUrl> [--token-file F] [--ca root.pem] [--resolve host:port:addr] [--timeout ms]   check a deployed bridge as an IdP meets it',
    valued: ['token-file', 'ca', 'resolve', 'timeout'],
    run: doctor,
  },
  backup: {
    usage: 'backup <file|-> [--database URL]                a consistent copy of the database, taken while the bridge runs (-: to stdout)',
    valued: ['database'],
    run: backup,
  },
  restore: {
    usage: 'restore <file|-> [--force] [--database URL]     put a backup in place of an empty database, the bridge stopped (-: from stdin)',
    valued: ['database'],
    flags: ['force'],
    run: restore,
  },
  'token hash': { usage: 'token hash < token-file                         the SHA-256 of a token, for SCIM_BRIDGE_TOKEN_SHA256', run: tokenHash },
  'token new': { usage: 'token new                                       a new token and its SHA-256', run: tokenNew },
  'events replay': {
    usage: 'events replay (--after SEQ | --since TIME) [--until TIME] [--dead-letters] [--dry-run] [--database URL]   send delivered events to the webhook again',
    valued: ['after', 'since', 'until', 'database'],
    flags: ['dead-letters', 'dry-run'],
    run: eventsReplay,
  },
};

export const USAGE = ['usage: npx scim-bridge <command>', '', ...Object.values(COMMANDS).map((c) => `  ${c.usage}`), ''].join('\n');

/** Runs one command line; returns the exit code (0 ok, 1 failed, 2 wrong usage). Never throws. */
export async function run(argv: readonly string[], io: CliIo): Promise<number> {
  try {
    if (argv.length === 0 || argv[0] === '--help' || argv[0] === '-h' || argv[0] === 'help') {
      (argv.length === 0 ? io.stderr : io.stdout).write(USAGE);
      return argv.length === 0 ? 2 : 0;
    }
    const two = `${argv[0]} ${argv[1] ?? ''}`;
    const name = COMMANDS[two] ? two : argv[0];
    const command = COMMANDS[name];
    if (!command) {
      const group = Object.keys(COMMANDS).filter((k) => k.startsWith(`${argv[0]} `));
      throw usageError(group.length > 0 ? `${argv[0]} needs a subcommand: ${group.join(', ')}` : `unknown command ${argv[0]}\n${USAGE}`);
    }
    const rest = argv.slice(name.split(' ').length);
    return await command.run(io, parseArgs(rest, { valued: command.valued, flags: command.flags }));
  } catch (err) {
    if (err instanceof CliError) {
      io.stderr.write(`scim-bridge: ${err.message}\n`);
      return err.code;
    }
    io.stderr.write(`scim-bridge: ${(err as Error).stack ?? String(err)}\n`);
    return 1;
  }
}
