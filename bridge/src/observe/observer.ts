/**
 * The bridge seen from outside: Prometheus metrics (DESIGN.md, "HTTP surface") and the status page's report,
 * from one place. Counters are kept as requests and deliveries happen; the figures that live in the store (users
 * by status, groups, the delivery backlog, dead letters) are read when asked, through one cached snapshot: every
 * scrape and every status page open within `statsMaxAgeMs` shares one set of indexed counts, and concurrent ones
 * share the read under way, so a busy scraper costs the store at most one read per period.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { DeliveryResult } from '../delivery';
import { Activity, LastRequest, RecentError, RequestRecord } from './activity';

export interface DirectoryCounts {
  readonly users: Record<string, number>;
  readonly groups: number;
}

export interface DeliveryBacklog {
  /** Whether a webhook is configured; without one, events wait in the feed and nothing is pending delivery. */
  readonly webhook: 'on' | 'off';
  readonly pending: number;
  /** How long the oldest pending event has waited, in seconds (0 when none is pending). */
  readonly lagSeconds: number;
  readonly deadLetters: number;
}

/** A connector's sync as the status page and /metrics show it (the Google Workspace connector's /health object). */
export interface ConnectorStatus {
  /** starting, syncing, ok, failed, or standby (another replica holds the sync lease). */
  readonly state: string;
  readonly lastSync: {
    readonly startedAt: string;
    readonly finishedAt: string;
    readonly durationMs: number;
    readonly ok: boolean;
    readonly counts: Readonly<Record<string, number>>;
    readonly error?: string;
    readonly warnings: readonly string[];
  } | null;
  readonly lastSuccessAt: string | null;
  readonly nextSyncAt: string | null;
}

/** Where the figures come from (the composition root wires the store and delivery in). */
export interface ObserverSources {
  readonly version: string;
  /** Rejects when the store does not answer. */
  storeHealth(): Promise<void>;
  directoryCounts(): Promise<DirectoryCounts>;
  deliveryBacklog(): Promise<DeliveryBacklog>;
  /** The connectors' syncs by name (`google`); none when no connector is configured. */
  connectors?(): Record<string, ConnectorStatus>;
}

export interface ObserverOptions {
  /** How long a snapshot of the store's figures serves scrapes and status reports. */
  readonly statsMaxAgeMs?: number;
}

/** A scrape every 15 s (Prometheus's habit) and a status page polling every 5 s share one read per second at most. */
export const STATS_MAX_AGE_MS = 1_000;

const PREFIX = 'scim_bridge_';
const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);
/** Request durations: a read takes milliseconds, a write waits for its sync, a large list takes up to seconds. */
const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** A method as a label: the ones HTTP clients use, else OTHER (Node's parser accepts some 30 others). */
export function methodLabel(method: string): string {
  return METHODS.has(method) ? method : 'OTHER';
}

interface Snapshot {
  readonly store: { ok: true } | { ok: false; error: string };
  readonly directory?: DirectoryCounts;
  readonly delivery?: DeliveryBacklog;
}

/**
 * Node's default process metrics, collected once per process (not per bridge: tests start many in one process,
 * and each collection keeps an event-loop monitor running).
 */
let processRegistry: Registry | undefined;
function defaultMetrics(): Registry {
  if (!processRegistry) {
    processRegistry = new Registry();
    collectDefaultMetrics({ register: processRegistry });
  }
  return processRegistry;
}

export interface StatusReport {
  readonly status: 'ok' | 'degraded';
  readonly version: string;
  readonly startedAt: string;
  readonly store: 'ok' | 'unavailable';
  readonly storeError?: string;
  readonly users?: Record<string, number>;
  readonly groups?: number;
  readonly delivery?: DeliveryBacklog & { readonly sinceStart: Record<DeliveryResult, number> };
  readonly idps: LastRequest[];
  readonly recentErrors: RecentError[];
  /** The connectors' syncs (the Google Workspace connector as `google`), when configured. */
  readonly connectors?: Record<string, ConnectorStatus>;
}

const SYNC_RESULTS = ['ok', 'failed'] as const;

export class Observer {
  private readonly registry = new Registry();
  private readonly activity = new Activity();
  private readonly requests: Counter<'method' | 'route' | 'status' | 'idp'>;
  private readonly durations: Histogram<'method' | 'route'>;
  private readonly deliveries: Counter<'result'>;
  private readonly lastRequest: Gauge<'idp'>;
  private syncs?: Counter<'connector' | 'result'>;
  private readonly deliveryCounts: Record<DeliveryResult, number> = { delivered: 0, failed: 0, dead_letter: 0 };
  private readonly startedAt = new Date().toISOString();
  private readonly maxAgeMs: number;
  private fresh?: { at: number; snapshot: Snapshot };
  private reading?: Promise<Snapshot>;

  constructor(
    private readonly sources: ObserverSources,
    options: ObserverOptions = {},
  ) {
    this.maxAgeMs = options.statsMaxAgeMs ?? STATS_MAX_AGE_MS;
    const registers = [this.registry];
    this.requests = new Counter({
      name: `${PREFIX}requests_total`,
      help: 'Requests answered, by method, route pattern, status and identity provider (from the User-Agent).',
      labelNames: ['method', 'route', 'status', 'idp'],
      registers,
    });
    this.durations = new Histogram({
      name: `${PREFIX}request_duration_seconds`,
      help: 'Time from a request reaching the bridge to its answer being sent, by method and route pattern.',
      labelNames: ['method', 'route'],
      buckets: DURATION_BUCKETS,
      registers,
    });
    this.deliveries = new Counter({
      name: `${PREFIX}webhook_deliveries_total`,
      help: 'Webhook sends by result: delivered (2xx), failed (to be retried), dead_letter (given up).',
      labelNames: ['result'],
      registers,
    });
    for (const result of Object.keys(this.deliveryCounts)) this.deliveries.inc({ result }, 0);
    this.lastRequest = new Gauge({
      name: `${PREFIX}last_request_timestamp_seconds`,
      help: "When each identity provider's last SCIM request was answered (Unix time); absent until its first.",
      labelNames: ['idp'],
      registers,
    });
    // The connectors' families only where a connector is configured.
    if (sources.connectors) {
      this.syncs = new Counter({
        name: `${PREFIX}connector_syncs_total`,
        help: 'Syncs of a connector (google) this replica ran, by result: ok, failed (its error is on /health and the status page).',
        labelNames: ['connector', 'result'],
        registers,
      });
      const connectors = () => sources.connectors?.() ?? {};
      // Both results from the start (0), so that a rate or an alert on failures has a series before the first one.
      for (const connector of Object.keys(connectors())) for (const result of SYNC_RESULTS) this.syncs.inc({ connector, result }, 0);
      new Gauge({
        name: `${PREFIX}connector_last_sync_timestamp_seconds`,
        help: "When a connector's last sync on this replica ended (Unix time), whatever its result; absent until the first.",
        labelNames: ['connector'],
        registers,
        collect() {
          this.reset();
          for (const [connector, c] of Object.entries(connectors())) if (c.lastSync) this.set({ connector }, Date.parse(c.lastSync.finishedAt) / 1000);
        },
      });
      new Gauge({
        name: `${PREFIX}connector_last_success_timestamp_seconds`,
        help: "When a connector's last successful sync on this replica ended (Unix time): alert when it is older than a few intervals.",
        labelNames: ['connector'],
        registers,
        collect() {
          this.reset();
          for (const [connector, c] of Object.entries(connectors())) if (c.lastSuccessAt) this.set({ connector }, Date.parse(c.lastSuccessAt) / 1000);
        },
      });
      new Gauge({
        name: `${PREFIX}connector_last_sync_ok`,
        help: "1 when a connector's last sync succeeded, 0 when it failed; absent until the first.",
        labelNames: ['connector'],
        registers,
        collect() {
          this.reset();
          for (const [connector, c] of Object.entries(connectors())) if (c.lastSync) this.set({ connector }, c.lastSync.ok ? 1 : 0);
        },
      });
      new Gauge({
        name: `${PREFIX}connector_last_sync_changes`,
        help: "What a connector's last sync counted and changed (users, groups, usersCreated, membersAdded, skipped, ...), by count.",
        labelNames: ['connector', 'count'],
        registers,
        collect() {
          this.reset();
          for (const [connector, c] of Object.entries(connectors())) {
            for (const [count, n] of Object.entries(c.lastSync?.counts ?? {})) this.set({ connector, count }, n);
          }
        },
      });
      new Gauge({
        name: `${PREFIX}connector_standby`,
        help: 'Several replicas: 1 when another replica holds the sync lease and syncs, 0 when this one does.',
        labelNames: ['connector'],
        registers,
        collect() {
          this.reset();
          for (const [connector, c] of Object.entries(connectors())) this.set({ connector }, c.state === 'standby' ? 1 : 0);
        },
      });
    }
    const snapshot = () => this.snapshot();
    new Gauge({
      name: `${PREFIX}users`,
      help: 'Users by status (invited, active, suspended, revoked).',
      labelNames: ['status'],
      registers,
      async collect() {
        this.reset();
        const { directory } = await snapshot();
        if (directory) for (const [status, n] of Object.entries(directory.users)) this.set({ status }, n);
      },
    });
    new Gauge({
      name: `${PREFIX}groups`,
      help: 'Groups.',
      registers,
      async collect() {
        this.reset();
        const { directory } = await snapshot();
        if (directory) this.set(directory.groups);
      },
    });
    new Gauge({
      name: `${PREFIX}events_pending`,
      help: 'Events the webhook has not delivered yet (0 without a webhook).',
      registers,
      async collect() {
        this.reset();
        const { delivery } = await snapshot();
        if (delivery) this.set(delivery.pending);
      },
    });
    new Gauge({
      name: `${PREFIX}dead_letters`,
      help: 'Events the webhook gave up on, kept for a replay.',
      registers,
      async collect() {
        this.reset();
        const { delivery } = await snapshot();
        if (delivery) this.set(delivery.deadLetters);
      },
    });
  }

  /** Counts an answered request (the HTTP layer calls it once per response). */
  recordRequest(r: RequestRecord): void {
    const method = methodLabel(r.method);
    this.requests.inc({ method, route: r.route, status: String(r.status), idp: r.idp });
    if (r.seconds !== undefined) this.durations.observe({ method, route: r.route }, r.seconds);
    if (r.fromIdp) this.lastRequest.set({ idp: r.idp }, r.at / 1000);
    this.activity.record(r, method);
  }

  /** Counts a webhook send (delivery calls it). */
  recordDelivery(result: DeliveryResult): void {
    this.deliveryCounts[result]++;
    this.deliveries.inc({ result });
  }

  /** Counts a connector's sync (the connector calls it after each one it ran). */
  recordSync(connector: string, ok: boolean): void {
    this.syncs?.inc({ connector, result: ok ? 'ok' : 'failed' });
  }

  /** The Prometheus text exposition: the bridge's families, then Node's process metrics. */
  async metrics(): Promise<{ contentType: string; body: string }> {
    const [own, process] = await Promise.all([this.registry.metrics(), defaultMetrics().metrics()]);
    return { contentType: this.registry.contentType, body: `${own}\n${process}` };
  }

  /** What the status page shows. */
  async status(): Promise<StatusReport> {
    const s = await this.snapshot();
    return {
      status: s.store.ok ? 'ok' : 'degraded',
      version: this.sources.version,
      startedAt: this.startedAt,
      store: s.store.ok ? 'ok' : 'unavailable',
      ...(s.store.ok ? {} : { storeError: s.store.error }),
      users: s.directory?.users,
      groups: s.directory?.groups,
      delivery: s.delivery ? { ...s.delivery, sinceStart: { ...this.deliveryCounts } } : undefined,
      idps: this.activity.lastRequests(),
      recentErrors: this.activity.recentErrors(),
      ...(this.sources.connectors ? { connectors: this.sources.connectors() } : {}),
    };
  }

  /** The store's figures: the last snapshot while it is fresh, else the read under way, else a new read. */
  private snapshot(): Promise<Snapshot> {
    if (this.fresh && Date.now() - this.fresh.at < this.maxAgeMs) return Promise.resolve(this.fresh.snapshot);
    this.reading ??= this.read().then((snapshot) => {
      this.fresh = { at: Date.now(), snapshot };
      this.reading = undefined;
      return snapshot;
    });
    return this.reading;
  }

  private async read(): Promise<Snapshot> {
    try {
      await this.sources.storeHealth();
    } catch (err) {
      return { store: { ok: false, error: (err as Error).message } };
    }
    const [directory, delivery] = await Promise.all([
      this.sources.directoryCounts().catch(() => undefined),
      this.sources.deliveryBacklog().catch(() => undefined),
    ]);
    return { store: { ok: true }, directory, delivery };
  }
}
