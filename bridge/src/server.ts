/**
 * The composition root: store -> directory -> SCIM service -> HTTP, started and stopped as one.
 * Tests start the real server in-process on port 0 through `start()`.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { createServer, IncomingMessage, Server, ServerResponse } from 'node:http';
import { ApplicationApi } from './api';
import { BridgeConfig, sha256Hex } from './config';
import { ApiTimings, GOOGLE_SYNC_LEASE, GoogleConnector } from './connectors/google';
import { WebhookDelivery, WebhookOptions } from './delivery';
import { Directory } from './directory';
import { createApp, LoadShedding, refusedRecord } from './http';
import { createLogger, Logger } from './log';
import { DeliveryBacklog, Observer, ObserverOptions } from './observe';
import { eventPresenter, ScimService } from './scim';
import { LiveSecrets, watchSecretFiles } from './secret-files';
import { openStore, Store } from './store';

export const VERSION: string = (() => {
  try {
    return (require('../package.json') as { version: string }).version;
  } catch {
    return '0.0.0';
  }
})();

export interface RunningBridge {
  /** http://host:port, without a trailing slash. */
  readonly url: string;
  readonly port: number;
  /** The HTTP server, with the limits it runs with. */
  readonly server: Server;
  /** Set when this start generated the bearer token: shown once, never stored in clear. */
  readonly generatedToken?: string;
  readonly store: Store;
  /** The Google Workspace connector, when configured; tests call its `syncNow()` instead of waiting an interval. */
  readonly google?: GoogleConnector;
  /**
   * Stops accepting connections, lets the requests in flight finish (for at most `graceMs`, then cuts their
   * connections: they were not acknowledged), stops delivery and closes the store. Once it resolves, every
   * write that was acknowledged is on disk and the delivery cursor is saved. Later calls share the first one.
   */
  stop(options?: { graceMs?: number }): Promise<void>;
}

/**
 * How long requests in flight get to finish once the bridge is stopping. What follows the grace period (closing
 * the store) takes milliseconds, so the stop ends well within main.ts's limit (9.5 s, for a bound of 10 s).
 */
export const SHUTDOWN_GRACE_MS = 8_000;

/**
 * What the HTTP server allows a client (issue 13). IdPs send small bodies (a user is about a kilobyte, the body
 * limit 1 MiB) from well-connected clouds, in requests that take milliseconds; a client slower than these is
 * broken or hostile, and each one holds a socket and memory.
 */
export interface HttpLimits {
  /** From the connection (or the request's first byte) to the end of its headers. Node's default: 60 s. */
  readonly headersTimeoutMs: number;
  /** From the same start to the end of the body. Node's default: 300 s (a trickled body held a socket 330 s). */
  readonly requestTimeoutMs: number;
  /** A socket with no traffic while a request is read or answered (a client that stops reading the answer). */
  readonly socketTimeoutMs: number;
  /**
   * An idle keep-alive connection between requests. It must outlast the idle timeout of the proxy in front:
   * Caddy (our VM hosts) keeps idle upstream connections 2 minutes, AWS ALB and ingress-nginx 60 s. If the bridge
   * closed first, a proxy could send a request on a connection the bridge is closing and answer the IdP 502
   * (Caddy does not retry a POST). 125 s outlasts Caddy's 120 s.
   */
  readonly keepAliveTimeoutMs: number;
  /** How often Node checks the header and request timeouts (its default, 30 s, let a 60 s limit run to 90 s). */
  readonly timeoutCheckIntervalMs: number;
  /**
   * Open connections at most: a further one is closed at once, unread (Node's maxConnections), so sockets never
   * exhaust the file descriptors. Also capped at half the open-files limit.
   */
  readonly maxConnections: number;
  /** Requests handled at once; the next get 503 at once (see LoadShedding). */
  readonly maxInFlight: number;
  /** Open connections beyond which requests get 503 at once (a flood of reads; see LoadShedding). */
  readonly maxOpenConnections: number;
  /** Retry-After on that 503, in seconds. */
  readonly overloadRetryAfterSeconds: number;
  /** At most one saturation line per this period. */
  readonly saturationLogIntervalMs: number;
}

export const HTTP_LIMITS: HttpLimits = {
  // Headers come in one packet or two; 10 s is generous even for a client on the far side of the world.
  headersTimeoutMs: 10_000,
  // 1 MiB at 50 KiB/s takes 20 s; a proxy in front (Caddy) forwards a body as it arrives.
  requestTimeoutMs: 30_000,
  // Entra ID gives up on an answer after 60 s; a connection silent that long serves no one.
  socketTimeoutMs: 60_000,
  keepAliveTimeoutMs: 125_000,
  timeoutCheckIntervalMs: 1_000,
  // Far below the open-files limit (Node raises its soft limit to the hard one: 1,048,576 under Docker, 1,024 in
  // some containers). A connection with a request waiting costs about 20 KiB (3,000 took 55 MB): 4,096 of them
  // stay within the container's 512 MiB, where 10,000 reached 402 MB.
  maxConnections: 4_096,
  // 4x the bench's heaviest load (16 in flight), half a group commit (128 writes): enough to keep the disk busy.
  // Each request can hold up to 1 MiB of body and its parsed JSON: 64 of them stay within the container's memory.
  maxInFlight: 64,
  // IdPs open a few connections each, and a proxy's pool follows its load: 256 open connections is a flood. A
  // connection opened past them gets a 503 instead of a place in a queue that grows with the flood (p99 of 30 s
  // measured with 10,000).
  maxOpenConnections: 256,
  // A burst clears in well under a second; 5 s spreads the retries without delaying an IdP's sync much.
  overloadRetryAfterSeconds: 5,
  saturationLogIntervalMs: 60_000,
};

/** The open-files limit the process runs with (Linux; Node raised the soft limit to the hard one at start). */
function openFilesLimit(): number | undefined {
  try {
    const line = readFileSync('/proc/self/limits', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('Max open files'));
    const soft = line?.split(/\s{2,}/)[1];
    return soft === undefined || soft === 'unlimited' ? undefined : Number(soft);
  } catch {
    return undefined;
  }
}

/** The connection cap: at most `max`, and at most half the open files (the rest for the database, logs, webhooks). */
export function connectionCap(max: number, filesLimit = openFilesLimit()): number {
  return filesLimit === undefined || !Number.isFinite(filesLimit) ? max : Math.max(1, Math.min(max, Math.floor(filesLimit / 2)));
}

const GENERATED_TOKEN_SETTING = 'idp_token_sha256';

/**
 * The accepted token hashes: from the configuration, or else the hash kept from the first start, or else
 * a new token whose hash is kept now (the token itself is returned once, to be printed).
 */
async function tokenHashes(config: BridgeConfig, store: Store): Promise<{ hashes: readonly string[]; generated?: string }> {
  if (config.tokenHashes.length > 0) return { hashes: config.tokenHashes };
  const kept = await store.getSetting(GENERATED_TOKEN_SETTING);
  if (kept) return { hashes: [kept] };
  const token = randomBytes(32).toString('base64url');
  const held = await store.setSettingIfAbsent(GENERATED_TOKEN_SETTING, sha256Hex(token));
  return held === sha256Hex(token) ? { hashes: [held], generated: token } : { hashes: [held] };
}

export interface StartOptions {
  logger?: Logger;
  /** Delivery timings (tests make retries fast). */
  delivery?: Partial<Pick<WebhookOptions, 'baseDelayMs' | 'maxDelayMs' | 'pollMs' | 'timeoutMs' | 'leaseTtlMs' | 'leaseRenewMs'>>;
  /** HTTP limits other than HTTP_LIMITS (tests make them small). */
  http?: Partial<HttpLimits>;
  /**
   * The environment whose `_FILE` secrets are watched and read again when they change (secret-files.ts): main.ts
   * gives process.env. Absent: the values of `config` stay for the bridge's life.
   */
  secretFilesEnv?: NodeJS.ProcessEnv;
  /**
   * The Google connector's retry timings (tests make backoff short), and whether it syncs on its own (false: only when
   * a test calls `google.syncNow()`).
   */
  google?: { timings?: Partial<ApiTimings>; schedule?: boolean; leaseTtlMs?: number; leaseRenewMs?: number };
  /** Metrics and status page settings (tests read the store's figures afresh at every scrape). */
  observe?: ObserverOptions;
}

export async function start(config: BridgeConfig, options: StartOptions = {}): Promise<RunningBridge> {
  const logger = options.logger ?? createLogger();
  const store = await openStore(config.databaseUrl, {
    poolSize: config.databasePool,
    caPem: config.databaseCaPem,
    onError: (err) => logger.warn({ err }, 'an idle database connection failed; the pool replaces it'),
  });
  const { hashes, generated } = await tokenHashes(config, store);
  // What a change of a secret file replaces while the bridge runs: read at each request and each delivery.
  const live: LiveSecrets = {
    tokenHashes: [...hashes],
    metricsTokenHashes: [...config.metricsTokenHashes],
    ...(config.webhook ? { webhookSecret: config.webhook.secret } : {}),
    ...(config.google ? { googleServiceAccount: config.google.serviceAccount } : {}),
  };
  const delivery = config.webhook
    ? new WebhookDelivery(
        store,
        {
          url: config.webhook.url,
          get secret() {
            return live.webhookSecret!;
          },
          retryWindowMs: config.webhook.retryHours * 3_600_000,
          ...options.delivery,
          onResult: (result) => observer.recordDelivery(result),
        },
        logger,
      )
    : undefined;
  const deliveryBacklog = async (): Promise<DeliveryBacklog> =>
    delivery ? { webhook: 'on', ...(await delivery.backlog()) } : { webhook: 'off', pending: 0, lagSeconds: 0, deadLetters: 0 };
  const directory = new Directory(store, eventPresenter, { allowedDomains: config.allowedDomains, logger });
  if (config.allowedDomains.length > 0) {
    logger.info(
      { allowedDomains: config.allowedDomains },
      `SCIM_BRIDGE_ALLOWED_DOMAINS is set: only users whose userName and emails are in ${config.allowedDomains.join(', ')} are accepted; others get 400`,
    );
  }
  // The connector feeds the directory as SCIM does (never the store); it starts once the server listens.
  // One replica syncs at a time: the holder of the store's lease (on SQLite, one replica, always this one).
  const googleHolder = `${process.pid}-${randomUUID()}`;
  const google = config.google
    ? new GoogleConnector({
        // A new key in its file (a rotation) signs the next token request.
        config: {
          ...config.google,
          get serviceAccount() {
            return live.googleServiceAccount!;
          },
        },
        directory,
        logger,
        timings: options.google?.timings,
        lease: {
          acquire: async (ttlMs) => (await store.acquireLease(GOOGLE_SYNC_LEASE, googleHolder, ttlMs)).held,
          release: () => store.releaseLease(GOOGLE_SYNC_LEASE, googleHolder),
        },
        ...(options.google?.leaseTtlMs !== undefined ? { leaseTtlMs: options.google.leaseTtlMs } : {}),
        ...(options.google?.leaseRenewMs !== undefined ? { leaseRenewMs: options.google.leaseRenewMs } : {}),
        onSync: (report) => observer.recordSync('google', report.ok),
      })
    : undefined;
  const observer = new Observer(
    {
      version: VERSION,
      storeHealth: () => store.ping(),
      directoryCounts: async () => ({ users: await store.countUsersByStatus(), groups: await store.countGroups() }),
      deliveryBacklog,
      ...(google ? { connectors: () => ({ google: google.health() }) } : {}),
    },
    options.observe,
  );
  const app = createApp({
    service: new ScimService(directory),
    api: new ApplicationApi(directory),
    appTokenHashes: config.appTokenHashes,
    logger,
    tokenHashes: live.tokenHashes,
    metricsTokenHashes: live.metricsTokenHashes,
    observer,
    trustProxy: config.trustedProxies,
    publicUrl: config.publicUrl,
    version: VERSION,
    storeHealth: () => store.ping(),
    deliveryBacklog: async () => {
      if (!delivery) return { pending: 0, deadLetters: 0, webhook: 'off' };
      // /health's delivery object as before; the lag is /status.json's and /metrics'.
      const { pending, deadLetters, delivering } = await delivery.backlog();
      return { pending, deadLetters, delivering };
    },
    replayDeadLetters: async () => (delivery ? delivery.replayDeadLetters() : { replayed: 0, remaining: 0 }),
    connectors: () => (google ? { google: google.health() } : {}),
  });
  const limits = { ...HTTP_LIMITS, ...options.http };
  const shedding = new LoadShedding({
    maxInFlight: limits.maxInFlight,
    maxOpenConnections: limits.maxOpenConnections,
    retryAfterSeconds: limits.overloadRetryAfterSeconds,
    logIntervalMs: limits.saturationLogIntervalMs,
    logger,
    onRefused: (req, res) => observer.recordRequest(refusedRecord(req, res)),
  });
  const server: Server = createServer(
    {
      headersTimeout: limits.headersTimeoutMs,
      requestTimeout: limits.requestTimeoutMs,
      keepAliveTimeout: limits.keepAliveTimeoutMs,
      connectionsCheckingInterval: limits.timeoutCheckIntervalMs,
    },
    shedding.wrap(app),
  );
  server.setTimeout(limits.socketTimeoutMs);
  server.maxConnections = connectionCap(limits.maxConnections);
  if (server.maxConnections < limits.maxConnections) {
    logger.warn({ maxConnections: server.maxConnections }, `the open-files limit caps connections at ${server.maxConnections}; raise it (ulimit -n) for more`);
  }
  shedding.watch(server);
  server.listen(config.port, config.host);
  await once(server, 'listening');
  // For the stop: the responses under way, and whether the bridge is stopping. A response that starts while
  // it is stopping says `Connection: close`, and Node closes its connection once it is sent: a keep-alive
  // client learns the connection is going without a request of its own being cut off.
  const inFlight = new Set<ServerResponse>();
  let closing = false;
  function answered(this: ServerResponse): void {
    inFlight.delete(this);
  }
  server.prependListener('request', (_req: IncomingMessage, res: ServerResponse) => {
    if (closing) res.setHeader('Connection', 'close');
    inFlight.add(res);
    res.on('close', answered);
  });
  const { port } = server.address() as AddressInfo;
  await delivery?.start();
  const secretFiles = options.secretFilesEnv ? watchSecretFiles(options.secretFilesEnv, live, logger) : undefined;
  if (options.google?.schedule !== false) google?.start();
  // Retention of the events feed: events older than the window go, once delivered (dead letters stay).
  const purge = async () => {
    try {
      const delivered = delivery ? await delivery.delivered() : Number.MAX_SAFE_INTEGER;
      await store.purgeEvents(new Date(Date.now() - config.eventsRetentionDays * 86_400_000).toISOString(), delivered);
    } catch (err) {
      logger.error({ err }, 'purging old events failed');
    }
  };
  const retention = setInterval(purge, 3_600_000);
  retention.unref();
  void purge();
  const host = config.host.includes(':') ? `[${config.host}]` : config.host;
  let stopping: Promise<void> | undefined;
  return {
    url: `http://${host === '0.0.0.0' ? '127.0.0.1' : host}:${port}`,
    port,
    server,
    generatedToken: generated,
    store,
    google,
    stop({ graceMs = SHUTDOWN_GRACE_MS } = {}) {
      stopping ??= (async () => {
        closing = true;
        secretFiles?.stop();
        // Delivery stops alongside the drain (events written meanwhile stay in the outbox for the next start), so
        // a slow webhook receiver and a slow client do not add up.
        const deliveryStopped = delivery?.stop({ graceMs: Math.min(2_000, graceMs) });
        // A sync under way ends at its next request or write: what it wrote stands, the next start reads again.
        const googleStopped = google?.stop();
        for (const res of inFlight) {
          if (!res.headersSent) {
            res.setHeader('Connection', 'close');
          } else {
            // Already answered as keep-alive (and still being sent): its connection is closed once it is idle.
            res.once('close', () => setImmediate(() => server.closeIdleConnections()));
          }
        }
        // Stop accepting: the listening socket closes now, before stop() returns (main.ts logs "stopping" after
        // it). close() also closes the idle keep-alive connections, and calls back once the connections with a
        // request under way have ended too.
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        const cut = setTimeout(() => {
          // A request still unfinished (a client that stalled mid-body, say) has not been acknowledged: cutting it
          // loses nothing acknowledged, and a write it has already queued still completes before the store closes.
          logger.warn({ requests: inFlight.size, graceMs }, 'closing connections still open after the grace period');
          server.closeAllConnections();
        }, graceMs);
        await closed;
        clearTimeout(cut);
        shedding.flush();
        clearInterval(retention);
        await deliveryStopped;
        await googleStopped;
        // Waits for the writes still queued and their sync.
        await store.close();
      })();
      return stopping;
    },
  };
}
