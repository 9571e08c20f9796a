/**
 * `events replay`: sends events of the outbox to the webhook once more, signed as the bridge signs them, for a
 * receiver that lost what it had accepted (a restored application database, a bug in its handler).
 *
 * The semantics, chosen to be safe beside a running bridge:
 * - Only events the bridge has already handed over: those up to its delivery cursor (accepted by the receiver,
 *   or given up as dead letters). Later ones are still pending; the bridge delivers them itself, in order, and
 *   sending them from here too would reorder them.
 * - In outbox order (so in order per resource), each once; the first one that fails ends the replay, with the
 *   `--after` to resume from. At least once, as always: receivers drop repeats by event id.
 * - A dead letter that the receiver accepts now leaves the dead-letter list (as the application API's replay
 *   does). `--dead-letters` replays only the dead letters in the range.
 * - The range is explicit: `--after <seq>` (the feed's cursor; 0 for every event still kept) or `--since <time>`,
 *   optionally bounded by `--until <time>`. Events older than the retention (SCIM_BRIDGE_EVENTS_RETENTION_DAYS)
 *   are gone, except dead letters.
 */
import { DELIVERY_LEASE, WebhookDelivery } from '../delivery';
import { createLogger } from '../log';
import { EventRecord, openStore, Store } from '../store';
import BetterSqlite3 from 'better-sqlite3';
import { existsSync } from 'node:fs';
import { configFor, locate } from './database';
import { Args, CliError, CliIo, flag, option, progressReporter, usageError } from './io';
import { postgresSchema } from './postgres-backup';
import { knownMigrations } from './sqlite-file';

const PAGE = 500;
/** A failing send is tried this many times (1 s, 2 s apart) before the replay stops at it. */
const ATTEMPTS = 3;

function parseTime(name: string, raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  const t = Date.parse(raw);
  if (!Number.isFinite(t) || !/^\d{4}-\d{2}-\d{2}/.test(raw)) throw usageError(`--${name} takes an ISO 8601 time, such as 2026-12-01T09:00:00Z`);
  return t;
}

/**
 * The store (SQLite or PostgreSQL), for a command that reads and writes through it beside a running bridge. Only
 * at this version's own schema, so that opening it (which brings a schema up to date) never migrates a database a
 * bridge is using.
 */
async function openStoreBeside(databaseUrl: string, caPem: string | undefined): Promise<Store> {
  const db = locate(databaseUrl);
  let last: string | undefined;
  if (db.kind === 'postgres') {
    last = await postgresSchema(db.url, caPem);
  } else {
    if (!existsSync(db.path)) throw new CliError(`events replay: there is no database at ${db.path}; check SCIM_BRIDGE_DATABASE_URL (or pass --database sqlite:<path>)`);
    const raw = new BetterSqlite3(db.path, { fileMustExist: true });
    try {
      raw.pragma('busy_timeout = 5000');
      last = (raw.prepare('select max(name) as name from kysely_migration').get() as { name: string | null } | undefined)?.name ?? undefined;
    } catch {
      last = undefined;
    } finally {
      raw.close();
    }
  }
  // The schema must be this version's: the command never migrates a database a bridge is using.
  const latest = (await knownMigrations()).at(-1);
  if (last !== latest) {
    throw new CliError(`events replay: the database's schema is ${last ?? 'none'}, this scim-bridge's ${latest}; run the command of the bridge's own version (inside its container)`);
  }
  // PostgreSQL: a small pool of its own beside the replicas'.
  return openStore(databaseUrl, db.kind === 'postgres' ? { poolSize: 2, ...(caPem ? { caPem } : {}) } : {});
}

export async function eventsReplay(io: CliIo, args: Args): Promise<number> {
  if (args.positionals.length > 0) throw usageError(`events replay takes no file or name (got ${args.positionals.join(' ')}); see --after, --since`);
  const afterRaw = option(args, 'after');
  const since = parseTime('since', option(args, 'since'));
  const until = parseTime('until', option(args, 'until'));
  const deadLettersOnly = flag(args, 'dead-letters');
  const dryRun = flag(args, 'dry-run');
  if (afterRaw !== undefined && !/^\d+$/.test(afterRaw)) throw usageError('--after takes an event sequence number (the feed\'s cursor), such as 0 or 1234');
  if (afterRaw === undefined && since === undefined) {
    throw usageError('events replay needs a range: --after <seq> (0: every event still kept) or --since <time>, and optionally --until <time>');
  }
  const config = configFor(io, args);
  if (!config.webhook && !dryRun) throw new CliError('events replay: no webhook is set (SCIM_BRIDGE_WEBHOOK_URL and SCIM_BRIDGE_WEBHOOK_SECRET); run it where the bridge runs (inside its container)');
  const store = await openStoreBeside(config.databaseUrl, config.databaseCaPem);
  const delivery = config.webhook
    ? new WebhookDelivery(store, { url: config.webhook.url, secret: config.webhook.secret, retryWindowMs: 0 }, createLogger({ level: 'silent', pretty: false }))
    : undefined;
  const progress = progressReporter(io);
  try {
    const deliveredUpTo = await store.leaseCursor(DELIVERY_LEASE);
    const deadLetters = new Set((await store.listDeadLetters(1_000_000)).map((d) => d.seq));
    const inRange = (e: EventRecord) => {
      const t = Date.parse(e.occurredAt);
      return (since === undefined || t >= since) && (until === undefined || t < until) && (!deadLettersOnly || deadLetters.has(e.seq));
    };
    let cursor = afterRaw === undefined ? 0 : Number(afterRaw);
    let sent = 0;
    let revived = 0;
    let pendingLeft = 0;
    for (;;) {
      const page = await store.listEvents(cursor, PAGE);
      if (page.length === 0) break;
      for (const e of page) {
        if (e.seq > deliveredUpTo) {
          pendingLeft = await store.countEventsAfter(Math.max(deliveredUpTo, cursor));
          break;
        }
        if (until !== undefined && Date.parse(e.occurredAt) >= until) break;
        if (inRange(e)) {
          if (dryRun) {
            io.stdout.write(`${e.seq} ${e.occurredAt} ${e.type} ${e.id}${deadLetters.has(e.seq) ? ' (dead letter)' : ''}\n`);
          } else {
            const result = await sendWithRetries(delivery!, e);
            if (!result.ok) {
              io.stderr.write(
                `events replay: event ${e.seq} (${e.type}, ${e.id}) was refused: ${result.error ?? 'failed'}${result.permanent ? ' (a 4xx: fix the receiver first)' : ''}. ` +
                  `${sent} sent before it; resume with --after ${e.seq - 1}\n`,
              );
              return 1;
            }
            if (deadLetters.has(e.seq)) {
              await store.removeDeadLetter(e.seq);
              revived++;
            }
          }
          sent++;
          progress(`events replay: ${sent} ${dryRun ? 'listed' : 'sent'}, up to event ${e.seq} of ${deliveredUpTo}`);
        }
        cursor = e.seq;
      }
      if (pendingLeft > 0 || page.length < PAGE || (until !== undefined && page.some((e) => Date.parse(e.occurredAt) >= until))) break;
    }
    io.stdout.write(
      `events replay: ${sent} events ${dryRun ? 'would be sent' : 'sent'}` +
        (revived > 0 ? `, ${revived} of them dead letters (accepted now, off the list)` : '') +
        (pendingLeft > 0 ? `; ${pendingLeft} later events are still pending and the bridge delivers them itself` : '') +
        '\n',
    );
    return 0;
  } finally {
    await delivery?.stop();
    await store.close();
  }
}

async function sendWithRetries(delivery: WebhookDelivery, e: EventRecord) {
  let result = await delivery.sendOnce(e);
  for (let attempt = 1; attempt < ATTEMPTS && !result.ok && !result.permanent; attempt++) {
    await new Promise((resolve) => setTimeout(resolve, 1000 * attempt));
    result = await delivery.sendOnce(e);
  }
  return result;
}
