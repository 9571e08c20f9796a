/**
 * Delivery: the outbox -> signed webhooks. One POST per event, in outbox order (so in order per resource),
 * at least once: the cursor moves on only after the downstream answered 2xx, and it is kept in the store,
 * so delivery resumes where it was after a restart. Never inside an IdP's request: a slow or dead
 * downstream never slows provisioning. Failures are retried with exponential backoff and jitter until the
 * event is older than the retry window; then (or at once, when the downstream refuses it for good) it
 * becomes a dead letter, visible in /health and replayable.
 */
import { createHmac } from 'node:crypto';
import type { Logger } from '../log';
import type { EventRecord, Store } from '../store';

export interface WebhookOptions {
  readonly url: string;
  readonly secret: string;
  /** How long an event is retried before it becomes a dead letter. */
  readonly retryWindowMs: number;
  /** First retry delay; doubles on every failure up to maxDelayMs. */
  readonly baseDelayMs?: number;
  readonly maxDelayMs?: number;
  /** How often the outbox is looked at when idle. */
  readonly pollMs?: number;
  readonly timeoutMs?: number;
}

const CURSOR = 'webhook_cursor';

/** The JSON of an event: the webhook body and the feed item are the same. */
export function eventBody(e: EventRecord): string {
  return JSON.stringify({ id: e.id, type: e.type, occurredAt: e.occurredAt, data: e.data });
}

/** `Scim-Bridge-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">`. */
export function signature(secret: string, body: string, unixSeconds: number): string {
  const mac = createHmac('sha256', secret).update(`${unixSeconds}.${body}`).digest('hex');
  return `t=${unixSeconds},v1=${mac}`;
}

/** A refusal that retrying cannot change (4xx other than 408 and 429). */
function permanent(status: number): boolean {
  return status >= 400 && status < 500 && status !== 408 && status !== 429;
}

export class WebhookDelivery {
  private cursor = 0;
  private stopped = false;
  private running?: Promise<void>;
  private wake?: () => void;
  private failures = 0;

  constructor(
    private readonly store: Store,
    private readonly options: WebhookOptions,
    private readonly logger: Logger,
  ) {}

  async start(): Promise<void> {
    this.cursor = Number((await this.store.getSetting(CURSOR)) ?? 0);
    this.running = this.loop();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    await this.running;
  }

  /** The last event the downstream accepted (or that became a dead letter). */
  get delivered(): number {
    return this.cursor;
  }

  /** Events not yet accepted by the downstream, and dead letters: for /health. */
  async backlog(): Promise<{ pending: number; deadLetters: number }> {
    return { pending: await this.store.countEventsAfter(this.cursor), deadLetters: (await this.store.listDeadLetters(10_000)).length };
  }

  /** Sends every dead letter once more; those the downstream accepts leave the list. */
  async replayDeadLetters(): Promise<{ replayed: number; remaining: number }> {
    let replayed = 0;
    const letters = await this.store.listDeadLetters(10_000);
    for (const letter of letters) {
      if ((await this.send(letter)).ok) {
        await this.store.removeDeadLetter(letter.seq);
        replayed++;
      }
    }
    return { replayed, remaining: letters.length - replayed };
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  private async send(e: EventRecord): Promise<{ ok: boolean; status?: number; error?: string }> {
    const body = eventBody(e);
    try {
      const res = await fetch(this.options.url, {
        method: 'POST',
        headers: {
          'Content-Type': 'application/json',
          'Scim-Bridge-Event-Id': e.id,
          'Scim-Bridge-Signature': signature(this.options.secret, body, Math.floor(Date.now() / 1000)),
        },
        body,
        signal: AbortSignal.timeout(this.options.timeoutMs ?? 10_000),
      });
      await res.arrayBuffer().catch(() => undefined);
      return res.ok ? { ok: true, status: res.status } : { ok: false, status: res.status, error: `HTTP ${res.status}` };
    } catch (err) {
      return { ok: false, error: (err as Error).message };
    }
  }

  private delay(): number {
    const base = this.options.baseDelayMs ?? 1000;
    const capped = Math.min(this.options.maxDelayMs ?? 5 * 60_000, base * 2 ** Math.min(this.failures, 20));
    // Full jitter: a fleet of bridges does not retry in step.
    return capped / 2 + Math.random() * (capped / 2);
  }

  private async advance(seq: number): Promise<void> {
    this.cursor = seq;
    this.failures = 0;
    await this.store.setSetting(CURSOR, String(seq));
  }

  private async loop(): Promise<void> {
    while (!this.stopped) {
      let events: EventRecord[];
      try {
        events = await this.store.listEvents(this.cursor, 100);
      } catch (err) {
        this.logger.error({ err }, 'webhook delivery: reading the outbox failed');
        await this.sleep(this.delay());
        continue;
      }
      if (events.length === 0) {
        await this.sleep(this.options.pollMs ?? 200);
        continue;
      }
      for (const e of events) {
        if (this.stopped) return;
        const result = await this.send(e);
        if (result.ok) {
          await this.advance(e.seq);
          continue;
        }
        const age = Date.now() - Date.parse(e.occurredAt);
        if ((result.status !== undefined && permanent(result.status)) || age > this.options.retryWindowMs) {
          this.logger.warn({ event: e.id, type: e.type, error: result.error }, 'webhook delivery: dead letter');
          await this.store.addDeadLetter(e.seq, result.error ?? 'failed');
          await this.advance(e.seq);
          continue;
        }
        this.failures++;
        this.logger.warn({ event: e.id, type: e.type, error: result.error, attempt: this.failures }, 'webhook delivery: will retry');
        await this.sleep(this.delay());
        break; // start again from the cursor: nothing after this event goes first
      }
    }
  }
}
