/**
 * Delivery: the outbox -> signed webhooks. One POST per event, in outbox order (so in order per resource),
 * at least once: the cursor moves on only after the downstream answered 2xx, and it is kept in the store,
 * so delivery resumes where it was after a restart. Never inside an IdP's request: a slow or dead
 * downstream never slows provisioning. Failures are retried with exponential backoff and jitter until the
 * event is older than the retry window; then (or at once, when the downstream refuses it for good) it
 * becomes a dead letter, visible in /health and replayable.
 */
import { createHmac, randomUUID } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
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
  /**
   * The delivery lease (several replicas: one delivers). It expires this long after its last renewal, by the
   * database's clock; a replica that does not hold it tries to take it every `leaseRenewMs`.
   */
  readonly leaseTtlMs?: number;
  readonly leaseRenewMs?: number;
  /** Told the outcome of every send (for /metrics): accepted, failed (to be retried), or made a dead letter. */
  readonly onResult?: (result: DeliveryResult) => void;
}

export type DeliveryResult = 'delivered' | 'failed' | 'dead_letter';

/** The lease under which one replica delivers; its cursor is the last event the downstream accepted. */
export const DELIVERY_LEASE = 'webhook';
/**
 * Defaults: a dead holder's lease expires within 20 s of its last renewal and another replica, trying every 4 s,
 * takes it within 24 s: inside the 30 s DESIGN.md promises.
 */
export const LEASE_TTL_MS = 20_000;
export const LEASE_RENEW_MS = 4_000;

/** The JSON of an event: the webhook body and the feed item are the same. */
export function eventBody(e: EventRecord): string {
  return `{"id":${JSON.stringify(e.id)},"type":${JSON.stringify(e.type)},"occurredAt":${JSON.stringify(e.occurredAt)},"data":${e.dataJson}}`;
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
  /** Ends any wait: for stop(). */
  private stopWait?: () => void;
  private failures = 0;
  /** The cursor as last written to the store: written once per batch, not once per event. */
  private savedCursor = 0;
  private readonly agent: http.Agent;
  private readonly url: URL;
  /** Requests on the wire: stop() cuts them (their events stay in the outbox and go again after a restart). */
  private readonly inflight = new Set<http.ClientRequest>();
  /** Who this process is, as a lease holder. */
  readonly holder = `${process.pid}-${randomUUID()}`;
  /** Whether this replica holds the delivery lease, and when (Date.now()) its last successful renewal started. */
  private holding = false;
  private renewedAt = 0;
  private renewer?: NodeJS.Timeout;
  private readonly ttlMs: number;
  private readonly renewMs: number;

  constructor(
    private readonly store: Store,
    private readonly options: WebhookOptions,
    private readonly logger: Logger,
  ) {
    this.url = new URL(options.url);
    const secure = this.url.protocol === 'https:';
    // Keep-alive: one connection carries the deliveries, no handshake per event.
    this.agent = secure ? new https.Agent({ keepAlive: true, maxSockets: 1 }) : new http.Agent({ keepAlive: true, maxSockets: 1 });
    this.ttlMs = options.leaseTtlMs ?? LEASE_TTL_MS;
    this.renewMs = options.leaseRenewMs ?? LEASE_RENEW_MS;
    // A send must fit between a renewal and the expiry (see mayStartSend), with a renewal or two to spare.
    if (this.ttlMs < (options.timeoutMs ?? 10_000) + 2 * this.renewMs + 500) {
      throw new Error('webhook delivery: leaseTtlMs must exceed timeoutMs + 2 x leaseRenewMs + 500 ms');
    }
  }

  async start(): Promise<void> {
    await this.tryLease();
    // New events wake the loop at once; polling remains for what this process did not write.
    this.store.onDurable(() => this.wake?.());
    // While held, the lease is renewed on a timer of its own: a long backoff or a slow receiver must not let it lapse.
    this.renewer = setInterval(() => void (this.holding ? this.tryLease() : undefined), this.renewMs);
    this.renewer.unref();
    this.running = this.loop();
  }

  /** Whether this replica delivers now. */
  get isDelivering(): boolean {
    return this.holding;
  }

  /**
   * Takes or renews the lease. Taking it loads the cursor its last holder saved, so delivery resumes after the last
   * event the downstream accepted (at least once across a hand-over: the holder saves its cursor once per batch).
   */
  private async tryLease(): Promise<boolean> {
    const startedAt = Date.now();
    try {
      const lease = await this.store.acquireLease(DELIVERY_LEASE, this.holder, this.ttlMs);
      if (lease.held && !this.holding) {
        this.cursor = this.savedCursor = lease.cursor;
        this.failures = 0;
        this.logger.info({ cursor: lease.cursor }, 'webhook delivery: this replica delivers now (it holds the lease)');
      } else if (!lease.held && this.holding) {
        this.logger.warn('webhook delivery: the lease went to another replica; this one stops delivering');
      }
      this.holding = lease.held;
      if (lease.held) this.renewedAt = startedAt;
      return lease.held;
    } catch (err) {
      // The database did not answer: the lease is still ours until it would expire (see mayStartSend).
      this.logger.error({ err }, 'webhook delivery: renewing the lease failed');
      return this.holding;
    }
  }

  /**
   * A send may start only while it will end (answered or cut by its timeout) before the lease could expire: no
   * other replica can then have taken over while this one still sends. The lease's expiry counts from the start of
   * the renewal, by the database's clock; this counts from the same start by ours, so it errs early.
   */
  private mayStartSend(): boolean {
    return this.holding && Date.now() < this.renewedAt + this.ttlMs - (this.options.timeoutMs ?? 10_000) - 500;
  }

  /**
   * Stops delivering. A send on the wire gets `graceMs` to be answered (so a healthy receiver is not sent the
   * same event again after a restart); then it is cut: a slow or silent receiver must not hold the bridge's
   * shutdown. A cut event was not acknowledged by the receiver, so it stays pending and goes again after the
   * restart (at least once; ids let the receiver drop repeats).
   */
  async stop({ graceMs = 2_000 }: { graceMs?: number } = {}): Promise<void> {
    this.stopped = true;
    this.stopWait?.();
    let timer: NodeJS.Timeout | undefined;
    const finished = await Promise.race([
      (this.running ?? Promise.resolve()).then(() => true),
      new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), graceMs))),
    ]);
    clearTimeout(timer);
    if (!finished) for (const req of this.inflight) req.destroy(new Error('the bridge is stopping'));
    await this.running;
    clearInterval(this.renewer);
    if (this.holding) {
      await this.saveCursor();
      // Another replica takes over at once instead of after the expiry.
      await this.store.releaseLease(DELIVERY_LEASE, this.holder).catch((err) => this.logger.error({ err }, 'webhook delivery: releasing the lease failed'));
      this.holding = false;
    }
    this.agent.destroy();
  }

  /** The last event the downstream accepted (or that became a dead letter), whichever replica delivers. */
  async delivered(): Promise<number> {
    return this.holding ? this.cursor : this.store.leaseCursor(DELIVERY_LEASE);
  }

  /**
   * Events not yet accepted by the downstream, how long the oldest of them has waited (0 when none), dead letters,
   * and whether this replica is the one delivering: for /health, /metrics and the status page.
   */
  async backlog(): Promise<{ pending: number; lagSeconds: number; deadLetters: number; delivering: boolean }> {
    const cursor = await this.delivered();
    const [oldest] = await this.store.listEvents(cursor, 1);
    const lagSeconds = oldest ? Math.max(0, Math.round((Date.now() - Date.parse(oldest.occurredAt)) / 1000)) : 0;
    return { pending: await this.store.countEventsAfter(cursor), lagSeconds, deadLetters: await this.store.countDeadLetters(), delivering: this.holding };
  }

  /** Sends every dead letter once more; those the downstream accepts leave the list. */
  async replayDeadLetters(): Promise<{ replayed: number; remaining: number }> {
    let replayed = 0;
    const letters = await this.store.listDeadLetters(10_000);
    for (const letter of letters) {
      const sent = await this.send(letter);
      this.options.onResult?.(sent.ok ? 'delivered' : 'failed');
      if (sent.ok) {
        await this.store.removeDeadLetter(letter.seq);
        replayed++;
      }
    }
    return { replayed, remaining: letters.length - replayed };
  }

  /** Waits `ms`; `wakeable`: new events end the wait early (idle polling, not a retry's backoff). */
  private sleep(ms: number, wakeable = false): Promise<void> {
    if (this.stopped) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      const self = this;
      function done() {
        clearTimeout(timer);
        self.wake = self.stopWait = undefined;
        resolve();
      }
      this.stopWait = done;
      if (wakeable) this.wake = done;
    });
  }

  private async send(e: EventRecord): Promise<{ ok: boolean; status?: number; error?: string }> {
    const body = eventBody(e);
    const request = this.url.protocol === 'https:' ? https.request : http.request;
    return new Promise((resolve) => {
      const req = request(
        this.url,
        {
          method: 'POST',
          agent: this.agent,
          timeout: this.options.timeoutMs ?? 10_000,
          headers: {
            'Content-Type': 'application/json',
            'Content-Length': Buffer.byteLength(body),
            'Scim-Bridge-Event-Id': e.id,
            'Scim-Bridge-Signature': signature(this.options.secret, body, Math.floor(Date.now() / 1000)),
          },
        },
        (res) => {
          res.resume();
          res.on('end', () => {
            const status = res.statusCode ?? 0;
            resolve(status >= 200 && status < 300 ? { ok: true, status } : { ok: false, status, error: `HTTP ${status}` });
          });
          res.on('error', (err) => resolve({ ok: false, error: err.message }));
        },
      );
      this.inflight.add(req);
      req.on('close', () => this.inflight.delete(req));
      req.on('timeout', () => req.destroy(new Error(`no answer within ${this.options.timeoutMs ?? 10_000} ms`)));
      req.on('error', (err) => resolve({ ok: false, error: err.message }));
      req.end(body);
    });
  }

  private delay(): number {
    const base = this.options.baseDelayMs ?? 1000;
    const capped = Math.min(this.options.maxDelayMs ?? 5 * 60_000, base * 2 ** Math.min(this.failures, 20));
    // Full jitter: a fleet of bridges does not retry in step.
    return capped / 2 + Math.random() * (capped / 2);
  }

  private advance(seq: number): void {
    this.cursor = seq;
    this.failures = 0;
  }

  /**
   * Keeps the cursor in the store. Done once per batch: after a crash, at most that batch is delivered
   * again (at least once, ids let the receiver drop repeats), and a delivery costs no write of its own.
   */
  private async saveCursor(): Promise<void> {
    if (this.cursor === this.savedCursor || !this.holding) return;
    const cursor = this.cursor;
    if (!(await this.store.saveLeaseCursor(DELIVERY_LEASE, this.holder, cursor))) {
      // Another replica holds the lease (this one was too slow to renew): it delivers from the cursor it found.
      this.holding = false;
      this.logger.warn('webhook delivery: the lease went to another replica; this one stops delivering');
      return;
    }
    this.savedCursor = cursor;
  }

  private async loop(): Promise<void> {
    while (!this.stopped) {
      if (!this.holding) {
        // Not the delivering replica: try for the lease now and then (the holder's renewals keep it).
        if (!(await this.tryLease())) {
          await this.sleep(this.renewMs);
          continue;
        }
      }
      if (!this.mayStartSend()) {
        await this.tryLease();
        if (!this.mayStartSend()) await this.sleep(Math.min(this.renewMs, 1000));
        continue;
      }
      let events: EventRecord[];
      try {
        events = await this.store.listEvents(this.cursor, 100);
      } catch (err) {
        this.logger.error({ err }, 'webhook delivery: reading the outbox failed');
        await this.sleep(this.delay());
        continue;
      }
      if (events.length === 0) {
        await this.saveCursor().catch((err) => this.logger.error({ err }, 'webhook delivery: saving the cursor failed'));
        await this.sleep(this.options.pollMs ?? 200, true);
        continue;
      }
      for (const e of events) {
        if (this.stopped) return;
        if (!this.mayStartSend()) break;
        const result = await this.send(e);
        // Cut by stop(): not a failure of the receiver, and the event stays pending.
        if (this.stopped && !result.ok) return;
        if (result.ok) {
          this.options.onResult?.('delivered');
          this.advance(e.seq);
          continue;
        }
        const age = Date.now() - Date.parse(e.occurredAt);
        if ((result.status !== undefined && permanent(result.status)) || age > this.options.retryWindowMs) {
          this.logger.warn({ event: e.id, type: e.type, error: result.error }, 'webhook delivery: dead letter');
          await this.store.addDeadLetter(e.seq, result.error ?? 'failed');
          this.options.onResult?.('dead_letter');
          this.advance(e.seq);
          continue;
        }
        this.failures++;
        this.options.onResult?.('failed');
        this.logger.warn({ event: e.id, type: e.type, error: result.error, attempt: this.failures }, 'webhook delivery: will retry');
        await this.saveCursor().catch(() => undefined);
        await this.sleep(this.delay());
        break; // start again from the cursor: nothing after this event goes first
      }
      await this.saveCursor().catch((err) => this.logger.error({ err }, 'webhook delivery: saving the cursor failed'));
    }
  }
}
