/**
 * The composition root: store -> directory -> SCIM service -> HTTP, started and stopped as one.
 * Tests start the real server in-process on port 0 through `start()`.
 */
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { IncomingMessage, Server, ServerResponse } from 'node:http';
import { ApplicationApi } from './api';
import { BridgeConfig, sha256Hex } from './config';
import { WebhookDelivery, WebhookOptions } from './delivery';
import { Directory } from './directory';
import { createApp } from './http';
import { createLogger, Logger } from './log';
import { eventPresenter, ScimService } from './scim';
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
  /** Set when this start generated the bearer token: shown once, never stored in clear. */
  readonly generatedToken?: string;
  readonly store: Store;
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
  delivery?: Partial<Pick<WebhookOptions, 'baseDelayMs' | 'maxDelayMs' | 'pollMs' | 'timeoutMs'>>;
}

export async function start(config: BridgeConfig, options: StartOptions = {}): Promise<RunningBridge> {
  const logger = options.logger ?? createLogger();
  const store = await openStore(config.databaseUrl);
  const { hashes, generated } = await tokenHashes(config, store);
  const delivery = config.webhook
    ? new WebhookDelivery(store, { url: config.webhook.url, secret: config.webhook.secret, retryWindowMs: config.webhook.retryHours * 3_600_000, ...options.delivery }, logger)
    : undefined;
  const directory = new Directory(store, eventPresenter, { allowedDomains: config.allowedDomains, logger });
  if (config.allowedDomains.length > 0) {
    logger.info(
      { allowedDomains: config.allowedDomains },
      `SCIM_BRIDGE_ALLOWED_DOMAINS is set: only users whose userName and emails are in ${config.allowedDomains.join(', ')} are accepted; others get 400`,
    );
  }
  const app = createApp({
    service: new ScimService(directory),
    api: new ApplicationApi(directory),
    appTokenHashes: config.appTokenHashes,
    logger,
    tokenHashes: hashes,
    trustProxy: config.trustedProxies,
    publicUrl: config.publicUrl,
    version: VERSION,
    storeHealth: () => store.ping(),
    deliveryBacklog: async () => (delivery ? delivery.backlog() : { pending: 0, deadLetters: 0, webhook: 'off' }),
    replayDeadLetters: async () => (delivery ? delivery.replayDeadLetters() : { replayed: 0, remaining: 0 }),
  });
  const server: Server = app.listen(config.port, config.host);
  await once(server, 'listening');
  server.keepAliveTimeout = 65_000;
  // For the stop: the responses under way, and whether the bridge is stopping. A response that starts while
  // it is stopping says `Connection: close`, and Node closes its connection once it is sent: a keep-alive
  // client learns the connection is going without a request of its own being cut off.
  const inFlight = new Set<ServerResponse>();
  let closing = false;
  server.prependListener('request', (_req: IncomingMessage, res: ServerResponse) => {
    if (closing) res.setHeader('Connection', 'close');
    inFlight.add(res);
    res.once('close', () => inFlight.delete(res));
  });
  const { port } = server.address() as AddressInfo;
  await delivery?.start();
  // Retention of the events feed: events older than the window go, once delivered (dead letters stay).
  const purge = () =>
    store
      .purgeEvents(new Date(Date.now() - config.eventsRetentionDays * 86_400_000).toISOString(), delivery ? delivery.delivered : Number.MAX_SAFE_INTEGER)
      .catch((err) => logger.error({ err }, 'purging old events failed'));
  const retention = setInterval(purge, 3_600_000);
  retention.unref();
  void purge();
  const host = config.host.includes(':') ? `[${config.host}]` : config.host;
  let stopping: Promise<void> | undefined;
  return {
    url: `http://${host === '0.0.0.0' ? '127.0.0.1' : host}:${port}`,
    port,
    generatedToken: generated,
    store,
    stop({ graceMs = SHUTDOWN_GRACE_MS } = {}) {
      stopping ??= (async () => {
        closing = true;
        // Delivery stops alongside the drain (events written meanwhile stay in the outbox for the next start), so
        // a slow webhook receiver and a slow client do not add up.
        const deliveryStopped = delivery?.stop({ graceMs: Math.min(2_000, graceMs) });
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
        clearInterval(retention);
        await deliveryStopped;
        // Waits for the writes still queued and their sync.
        await store.close();
      })();
      return stopping;
    },
  };
}
