/**
 * The one logger: JSON lines (pino), human-readable when stdout is a terminal. Request logs carry only
 * fields we choose; redaction is the second line of defence for anything that looks like a secret.
 */
import pino, { Logger } from 'pino';

export type { Logger };

const REDACT = ['authorization', 'token', 'password', '*.authorization', '*.token', '*.password', 'req.headers.authorization', 'headers.authorization'];

export function createLogger(options: { level?: string; pretty?: boolean; destination?: NodeJS.WritableStream } = {}): Logger {
  const base = { level: options.level ?? process.env.LOG_LEVEL ?? 'info', redact: { paths: REDACT, censor: '[redacted]' }, base: undefined };
  const usePretty = options.pretty ?? (options.destination === undefined && process.stdout.isTTY === true);
  if (usePretty) {
    // Loaded only for a terminal: the server in production never pays for it.
    const pretty = require('pino-pretty') as typeof import('pino-pretty');
    return pino(base, pretty({ sync: true, colorize: true, translateTime: 'SYS:HH:MM:ss', ignore: 'pid,hostname' }));
  }
  return pino(base, (options.destination as pino.DestinationStream | undefined) ?? pino.destination({ sync: false }));
}
