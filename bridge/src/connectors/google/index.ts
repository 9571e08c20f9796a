/**
 * The Google Workspace connector (DESIGN.md, "Connectors"): Google pushes SCIM only to the apps of its own
 * catalogue, so the bridge pulls instead. Every interval it reads the synced groups, their members and those users
 * through the Directory API, and applies the differences through the directory as SCIM would.
 *
 * One sync at a time; `syncNow()` queues one after the sync under way (the tests' trigger, and nothing outside the
 * process can call it). The last sync's time, counts and error show on /health.
 *
 * Several replicas on one PostgreSQL: only the one holding the sync lease syncs (a lease in the database, as webhook
 * delivery's). The holder renews it on a timer of its own, through long syncs too; the others try for it as often,
 * so when the holder dies another takes it within the lease's expiry and a renewal (about 25 s) and syncs at once.
 */
import type { GoogleConfig } from '../../config';
import type { Directory } from '../../directory';
import type { Logger } from '../../log';
import { ApiTimings, DirectoryApi } from './api';
import { applySnapshot, emptyCounts, MAX_WARNINGS, readDirectory, SyncReport } from './sync';

export type { ApiTimings } from './api';
export { SCOPES } from './api';
export type { SyncCounts, SyncReport } from './sync';

/** One holder at a time across replicas (the store's lease, under the connector's name). */
export interface SyncLease {
  /** Takes or renews the lease for `ttlMs` (by the database's clock); whether this replica holds it. */
  acquire(ttlMs: number): Promise<boolean>;
  /** Gives it up (a clean stop), so that another replica takes it without waiting for the expiry. */
  release(): Promise<void>;
}

/**
 * Defaults: a dead holder's lease expires within 20 s of its last renewal and another replica, trying every 4 s,
 * takes it within 24 s (DESIGN.md: within 30 s, as webhook delivery).
 */
export const SYNC_LEASE_TTL_MS = 20_000;
/** The lease's name in the store (webhook delivery's is another). */
export const GOOGLE_SYNC_LEASE = 'google-sync';
export const SYNC_LEASE_RENEW_MS = 4_000;

export interface GoogleConnectorOptions {
  readonly config: GoogleConfig;
  readonly directory: Directory;
  readonly logger: Logger;
  /** Retry timings other than the defaults (tests make them short). */
  readonly timings?: Partial<ApiTimings>;
  /** Several replicas: the lease that makes one of them the syncing one. Absent: this process always syncs. */
  readonly lease?: SyncLease;
  /** Told of each sync this replica ran (not of a standby's), for /metrics. */
  readonly onSync?: (report: SyncReport) => void;
  readonly leaseTtlMs?: number;
  readonly leaseRenewMs?: number;
}

/** The connector on /health (`google`), /status.json and /metrics. */
export interface GoogleHealth {
  /** starting, syncing, ok, failed, or standby (another replica holds the sync lease). */
  readonly state: 'starting' | 'syncing' | 'ok' | 'failed' | 'standby';
  /** Syncs this replica ran since it started. */
  readonly syncs: number;
  readonly admin: string;
  readonly groups: readonly string[];
  readonly intervalSeconds: number;
  readonly lastSync: SyncReport | null;
  readonly lastSuccessAt: string | null;
  readonly nextSyncAt: string | null;
}

export class GoogleConnector {
  private readonly api: DirectoryApi;
  private readonly abort = new AbortController();
  private queue: Promise<unknown> = Promise.resolve();
  private timer?: NodeJS.Timeout;
  private stopped = false;
  private syncing = false;
  private last?: SyncReport;
  private lastSuccessAt?: string;
  private nextAt?: number;
  /** Syncs this replica ran (finished, failed or not). */
  private syncs = 0;
  /** Whether this replica holds the sync lease (always, without one), and when its last renewal started. */
  private holding: boolean;
  private renewedAt = 0;
  private renewer?: NodeJS.Timeout;
  private scheduled = false;
  /** Ends the sync under way when the lease is lost. */
  private current?: AbortController;
  private readonly ttlMs: number;
  private readonly renewMs: number;

  constructor(private readonly options: GoogleConnectorOptions) {
    const { admin, apiUrl, tokenUrl } = options.config;
    const config = options.config;
    // Read at each token request: a key replaced while the bridge runs (secret-files) is used from then on.
    this.api = new DirectoryApi({
      get serviceAccount() {
        return config.serviceAccount;
      },
      admin,
      apiUrl,
      tokenUrl,
      timings: options.timings,
    });
    this.holding = options.lease === undefined;
    this.ttlMs = options.leaseTtlMs ?? SYNC_LEASE_TTL_MS;
    this.renewMs = options.leaseRenewMs ?? SYNC_LEASE_RENEW_MS;
    if (this.ttlMs < 2 * this.renewMs + 500) throw new Error('Google Workspace connector: leaseTtlMs must exceed 2 x leaseRenewMs + 500 ms');
  }

  /** The first sync at once, then one every interval after the previous one ends. */
  start(): void {
    this.scheduled = true;
    if (this.options.lease) {
      // The holder renews, the others try: on a timer of its own, so a long sync never lets the lease lapse.
      this.renewer = setInterval(() => void this.renewLease(), this.renewMs);
      this.renewer.unref();
    }
    this.schedule(0);
  }

  /**
   * Takes or renews the sync lease. A replica that takes it over syncs at once (its holder may have died in the
   * middle of a sync); one that loses it ends the sync under way.
   */
  private async renewLease(): Promise<boolean> {
    const lease = this.options.lease;
    if (lease === undefined) return true;
    if (this.stopped) return false;
    const startedAt = Date.now();
    let held: boolean;
    try {
      held = await lease.acquire(this.ttlMs);
    } catch (err) {
      // The database did not answer: the lease is ours until it would expire, and not a moment longer.
      this.options.logger.error({ err, connector: 'google' }, 'Google Workspace sync: renewing the lease failed');
      held = this.holding && Date.now() < this.renewedAt + this.ttlMs - this.renewMs;
    }
    if (this.stopped) return false;
    if (held && !this.holding) {
      this.options.logger.info({ connector: 'google' }, 'Google Workspace sync: this replica syncs now (it holds the lease)');
      this.holding = true;
      // Taken over between syncs: the next one now, not an interval later.
      if (this.scheduled && this.timer !== undefined) {
        clearTimeout(this.timer);
        this.schedule(0);
      }
    } else if (!held && this.holding) {
      this.options.logger.warn({ connector: 'google' }, 'Google Workspace sync: the lease went to another replica; this one stops syncing');
      this.holding = false;
      this.current?.abort(new Error('the sync lease went to another replica'));
    }
    if (held) this.renewedAt = startedAt;
    return held;
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    this.nextAt = Date.now() + delayMs;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.syncNow().finally(() => this.schedule(this.options.config.intervalMs));
    }, delayMs);
    this.timer.unref();
  }

  /** Runs a sync after the one under way (if any); resolves to its report, failed or not (it never rejects). */
  syncNow(): Promise<SyncReport> {
    const run = this.queue.then(() => this.sync());
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async sync(): Promise<SyncReport> {
    // Another replica holds the lease: it syncs; this one reports so and leaves its last sync as it was.
    if (!this.stopped && !(await this.renewLease())) return standbyReport();
    const started = Date.now();
    const counts = emptyCounts();
    const warnings: string[] = [];
    const warn = (text: string) => {
      this.options.logger.warn({ connector: 'google' }, text);
      if (warnings.length < MAX_WARNINGS) warnings.push(text);
    };
    const requestsBefore = this.api.requests;
    let error: string | undefined;
    this.syncing = true;
    const current = (this.current = new AbortController());
    try {
      if (this.stopped) throw new Error('the bridge is stopping');
      const signal = AbortSignal.any([this.abort.signal, current.signal]);
      // Everything is read before anything is written: a failure here leaves the directory as it was.
      const snapshot = await readDirectory(this.api, this.options.config.groups, signal);
      counts.groups = snapshot.groups.length;
      counts.users = snapshot.users.size;
      for (const key of snapshot.missingGroups) {
        warn(`group ${key}: Google Workspace does not know it (404): deleted, or not the group's address; its users leave unless another synced group holds them`);
      }
      if (snapshot.externalMembers > 0) warn(`${snapshot.externalMembers} members are not users of the domain (external accounts): not synced`);
      await applySnapshot(this.options.directory, snapshot, counts, warn, signal);
    } catch (err) {
      error = this.stopped
        ? 'stopped with the bridge before it finished'
        : current.signal.aborted
          ? 'the sync lease went to another replica before it finished'
          : (err as Error).message;
    } finally {
      this.syncing = false;
      this.current = undefined;
      this.syncs++;
    }
    const finished = Date.now();
    const report: SyncReport = {
      startedAt: new Date(started).toISOString(),
      finishedAt: new Date(finished).toISOString(),
      durationMs: finished - started,
      ok: error === undefined,
      counts,
      requests: this.api.requests - requestsBefore,
      error,
      warnings,
    };
    this.last = report;
    if (report.ok) this.lastSuccessAt = report.finishedAt;
    this.options.onSync?.(report);
    if (error === undefined) this.options.logger.info({ connector: 'google', counts, ms: report.durationMs, requests: report.requests }, 'Google Workspace sync done');
    else this.options.logger.error({ connector: 'google', counts, ms: report.durationMs, error }, `Google Workspace sync failed: ${error}`);
    return report;
  }

  /** For /health, the status page and /metrics: the connector's state and its last sync. */
  health(): GoogleHealth {
    const { admin, groups, intervalMs } = this.options.config;
    // standby: another replica holds the sync lease and syncs.
    const state = this.syncing ? 'syncing' : !this.holding && this.options.lease !== undefined && this.scheduled ? 'standby' : this.last === undefined ? 'starting' : this.last.ok ? 'ok' : 'failed';
    return {
      state,
      syncs: this.syncs,
      admin,
      groups,
      intervalSeconds: intervalMs / 1000,
      lastSync: this.last ?? null,
      lastSuccessAt: this.lastSuccessAt ?? null,
      nextSyncAt: this.nextAt !== undefined && this.timer !== undefined ? new Date(this.nextAt).toISOString() : null,
    };
  }

  /** Stops the timer and ends a sync under way (its writes so far stand; the next start reads again). */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.abort.abort(new Error('the bridge is stopping'));
    if (this.renewer) clearInterval(this.renewer);
    await this.queue;
    this.api.close();
    if (this.holding && this.options.lease) {
      this.holding = false;
      // Another replica takes over at once instead of after the expiry.
      await this.options.lease.release().catch((err) => this.options.logger.error({ err, connector: 'google' }, 'Google Workspace sync: releasing the lease failed'));
    }
  }
}

/** What syncNow() answers on a replica that does not hold the sync lease: nothing ran here. */
function standbyReport(): SyncReport {
  const now = new Date().toISOString();
  return { startedAt: now, finishedAt: now, durationMs: 0, ok: true, standby: true, counts: emptyCounts(), requests: 0, warnings: [] };
}
