/**
 * The Google Workspace connector (DESIGN.md, "Connectors"): Google pushes SCIM only to the apps of its own
 * catalogue, so the bridge pulls instead. Every interval it reads the synced groups, their members and those users
 * through the Directory API, and applies the differences through the directory as SCIM would.
 *
 * One sync at a time; `syncNow()` queues one after the sync under way (the tests' trigger, and nothing outside the
 * process can call it). The last sync's time, counts and error show on /health.
 */
import type { GoogleConfig } from '../../config';
import type { Directory } from '../../directory';
import type { Logger } from '../../log';
import { ApiTimings, DirectoryApi } from './api';
import { applySnapshot, emptyCounts, MAX_WARNINGS, readDirectory, SyncReport } from './sync';

export type { ApiTimings } from './api';
export { SCOPES } from './api';
export type { SyncCounts, SyncReport } from './sync';

export interface GoogleConnectorOptions {
  readonly config: GoogleConfig;
  readonly directory: Directory;
  readonly logger: Logger;
  /** Retry timings other than the defaults (tests make them short). */
  readonly timings?: Partial<ApiTimings>;
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

  constructor(private readonly options: GoogleConnectorOptions) {
    const { serviceAccount, admin, apiUrl, tokenUrl } = options.config;
    this.api = new DirectoryApi({ serviceAccount, admin, apiUrl, tokenUrl, timings: options.timings });
  }

  /** The first sync at once, then one every interval after the previous one ends. */
  start(): void {
    this.schedule(0);
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
    try {
      if (this.stopped) throw new Error('the bridge is stopping');
      const signal = this.abort.signal;
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
      error = this.stopped ? 'stopped with the bridge before it finished' : (err as Error).message;
    } finally {
      this.syncing = false;
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
    if (error === undefined) this.options.logger.info({ connector: 'google', counts, ms: report.durationMs, requests: report.requests }, 'Google Workspace sync done');
    else this.options.logger.error({ connector: 'google', counts, ms: report.durationMs, error }, `Google Workspace sync failed: ${error}`);
    return report;
  }

  /** For /health: the connector's state and its last sync. */
  health(): Record<string, unknown> {
    const { admin, groups, intervalMs } = this.options.config;
    const state = this.syncing ? 'syncing' : this.last === undefined ? 'starting' : this.last.ok ? 'ok' : 'failed';
    return {
      state,
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
    await this.queue;
  }
}
