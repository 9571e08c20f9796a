/**
 * The HTTP surface (DESIGN.md): SCIM 2.0 at the root and at /scim/v2, /healthz, /readyz and the status page's files
 * open, everything else behind the bearer token. Routes only translate HTTP to the SCIM service and back.
 */
import express, { NextFunction, Request, RequestHandler, Response, Router } from 'express';
import { ScimError } from '../errors';
import type { Logger } from '../log';
import type { ReadParams, ScimResponse, ScimService } from '../scim';
import type { ApplicationApi } from '../api';
import { bearerAuth, failedAuthLimiter } from './auth';
import { bodyTooLarge, errorHandler, SCIM_CONTENT_TYPE, sendError, sentError, setSecurityHeaders } from './errors';
import { checkJsonDepth } from './json-depth';
import type { Observer } from '../observe';
import { idpOf, labelOfIdp } from './idp';
import { fromIdp, metricsHandler, routeLabel, statusPage, statusReportHandler } from './observe';

export { IDP_LABELS, idpLabel, idpOf } from './idp';

export const BODY_LIMIT_BYTES = 1024 * 1024;

export interface AppOptions {
  readonly service: ScimService;
  readonly api: ApplicationApi;
  readonly appTokenHashes: readonly string[];
  readonly logger: Logger;
  readonly tokenHashes: readonly string[];
  /** Hashes of the tokens that open GET /metrics only. */
  readonly metricsTokenHashes: readonly string[];
  /** Metrics and the status page's report: told of every answered request. */
  readonly observer: Observer;
  /** Peers whose X-Forwarded-* headers are believed (Express's `trust proxy`: addresses, CIDRs, `loopback`…); empty: none. */
  readonly trustProxy: readonly string[];
  /** The Base URL as the IdP sees it (no trailing slash); absent: built from the request's (validated) Host. */
  readonly publicUrl?: string;
  readonly version: string;
  /** A cheap check of the store for /health. */
  readonly storeHealth: () => Promise<void>;
  /** Events waiting for the downstream, and dead letters. */
  readonly deliveryBacklog: () => Promise<Record<string, unknown>>;
  readonly replayDeadLetters: () => Promise<Record<string, unknown>>;
  /** The connectors' state and last sync (Google Workspace), by name; empty when none is configured. */
  readonly connectors?: () => Record<string, unknown>;
}

function send(res: Response, r: ScimResponse): void | Promise<void> {
  if (r.etag) res.setHeader('ETag', r.etag);
  if (r.location) res.setHeader('Location', r.location);
  res.status(r.status);
  if (r.chunks) {
    res.setHeader('Content-Type', SCIM_CONTENT_TYPE);
    return sendChunks(res, r.chunks);
  }
  if (r.body === undefined) {
    res.end();
    return;
  }
  res.setHeader('Content-Type', SCIM_CONTENT_TYPE);
  res.end(JSON.stringify(r.body));
}

/**
 * A body in pieces (a big group's members, page by page): each piece is written as it comes, waiting while the
 * client's socket is full, so that a slow client holds one page in memory, not the body. A failure midway cuts
 * the connection (the status went out already): the client sees the body incomplete, never a truncated JSON
 * that ends cleanly; the error goes on to the error handler, which logs what is unexpected.
 */
async function sendChunks(res: Response, chunks: AsyncIterable<string>): Promise<void> {
  try {
    for await (const chunk of chunks) {
      // The client went away: stop reading pages.
      if (res.destroyed) return;
      if (!res.write(chunk)) await drainedOrClosed(res);
    }
    res.end();
  } catch (error) {
    res.destroy();
    throw error;
  }
}

function drainedOrClosed(res: Response): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}

const JSON_TYPES = ['application/json', 'application/scim+json'];

/** Bodies must be JSON (application/json or application/scim+json), at most 1 MiB. */
function jsonBody() {
  const parse = express.json({ limit: BODY_LIMIT_BYTES, type: () => true, strict: false, verify: checkJsonDepth });
  return (req: Request, res: Response, next: NextFunction) => {
    if (!req.headers['content-type'] && req.headers['content-length'] === '0') {
      next(new ScimError(400, 'This request needs a JSON body.', 'invalidSyntax'));
      return;
    }
    if (!req.is(JSON_TYPES)) {
      next(new ScimError(415, `Send the body as application/scim+json or application/json, not ${req.headers['content-type'] ?? 'without a Content-Type'}.`));
      return;
    }
    // Refused by its announced length, before a byte of it is read (the parser would read it all to refuse it).
    if (Number(req.headers['content-length']) > BODY_LIMIT_BYTES) {
      next(bodyTooLarge(BODY_LIMIT_BYTES));
      return;
    }
    parse(req, res, next);
  };
}

const readParams = (req: Request): ReadParams => req.query as ReadParams;
const ifMatch = (req: Request) => req.get('if-match');

/** `.search` bodies carry list parameters as JSON; attributes may be arrays. */
function searchParams(body: unknown): Record<string, unknown> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new ScimError(400, 'A .search body is a JSON object such as {"filter": "userName eq \\"x\\"", "count": 10}.', 'invalidSyntax');
  }
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(body)) {
    if (k === 'schemas') continue;
    if (Array.isArray(v)) {
      if (!v.every((x) => typeof x === 'string')) throw new ScimError(400, `.search: "${k}" takes a list of attribute names (strings).`, 'invalidValue');
      out[k] = v.join(',');
    } else {
      out[k] = typeof v === 'number' ? String(v) : v;
    }
  }
  return out;
}

function applicationRouter(api: ApplicationApi, tokenHashes: readonly string[], replay: () => Promise<Record<string, unknown>>, limiter: RequestHandler): Router {
  const r = Router();
  if (tokenHashes.length === 0) {
    r.use((_req, res) => sendError(res, new ScimError(404, 'The application API is off: set SCIM_BRIDGE_APP_TOKEN_SHA256 to turn it on.')));
    return r;
  }
  r.use(bearerAuth({ tokenHashes, limiter }));
  const body = jsonBody();
  const json = (res: Response, status: number, value: unknown) => res.status(status).json(value);
  r.get('/users/:id', async (req, res) => json(res, 200, await api.getUser(String(req.params.id))));
  r.post('/users/:id/join', async (req, res) => json(res, 200, await api.join(String(req.params.id))));
  r.post('/users', body, async (req, res) => json(res, 201, await api.createUser(req.body)));
  r.post('/groups', body, async (req, res) => json(res, 201, await api.createGroup(req.body)));
  r.put('/groups/:id/managed', body, async (req, res) => json(res, 200, await api.setManaged(String(req.params.id), req.body)));
  r.get('/events', async (req, res) => json(res, 200, await api.events(req.query.after, req.query.limit)));
  r.get('/dead-letters', async (_req, res) => json(res, 200, await api.deadLetters()));
  r.post('/dead-letters/replay', async (_req, res) => json(res, 200, await replay()));
  r.use((req, res) => sendError(res, new ScimError(404, `There is no endpoint ${req.method} /api/v1${req.path}.`)));
  return r;
}

/**
 * A Host header as a client may send it: a host name or an IPv4 address, or an IPv6 address in brackets, with an
 * optional port; nothing else. Anything else would be written into Location and meta.location as it came.
 */
const HOST_HEADER = /^(?:[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)*\.?|\[[0-9A-Fa-f:.]{2,45}\])(?::\d{1,5})?$/;

export function validHost(host: string | undefined): boolean {
  return host !== undefined && host.length <= 260 && HOST_HEADER.test(host);
}

const BAD_HOST = 'The Host header must be a host name or an address with an optional port; set SCIM_BRIDGE_PUBLIC_URL to the Base URL to build links from it instead.';

/**
 * The base of every Location and meta.location: SCIM_BRIDGE_PUBLIC_URL when set, else the request's scheme and
 * Host (validated: see HOST_HEADER). Either way followed by /scim/v2 when the client used that prefix.
 */
function baseUrlOf(publicUrl: string | undefined): (req: Request) => string {
  return (req) => {
    const prefix = req.baseUrl === '' ? '' : '/scim/v2';
    if (publicUrl !== undefined) return `${publicUrl}${prefix}`;
    const host = req.get('host');
    if (!validHost(host)) throw new ScimError(400, BAD_HOST);
    // X-Forwarded-Proto counts only from a trusted gateway (Express); even then, only http or https is written.
    return `${req.protocol === 'https' ? 'https' : 'http'}://${host}${prefix}`;
  };
}

function scimRouter(service: ScimService, publicUrl: string | undefined): Router {
  const r = Router();
  const base = baseUrlOf(publicUrl);
  const body = jsonBody();

  r.get('/Users', async (req, res) => send(res, await service.listUsers(req.query, base(req))));
  r.post('/Users/.search', body, async (req, res) => send(res, await service.listUsers(searchParams(req.body), base(req))));
  r.post('/Users', body, async (req, res) => send(res, await service.createUser(req.body, readParams(req), base(req))));
  r.get('/Users/:id', async (req, res) => send(res, await service.getUser(String(req.params.id), readParams(req), req.get('if-none-match'), base(req))));
  r.put('/Users/:id', body, async (req, res) => send(res, await service.replaceUser(String(req.params.id), req.body, readParams(req), ifMatch(req), base(req))));
  r.patch('/Users/:id', body, async (req, res) => send(res, await service.patchUser(String(req.params.id), req.body, readParams(req), ifMatch(req), base(req))));
  r.delete('/Users/:id', async (req, res) => send(res, await service.deleteUser(String(req.params.id), ifMatch(req))));

  r.get('/Groups', async (req, res) => send(res, await service.listGroups(req.query, base(req))));
  r.post('/Groups/.search', body, async (req, res) => send(res, await service.listGroups(searchParams(req.body), base(req))));
  r.post('/Groups', body, async (req, res) => send(res, await service.createGroup(req.body, readParams(req), base(req))));
  r.get('/Groups/:id', async (req, res) => send(res, await service.getGroup(String(req.params.id), readParams(req), req.get('if-none-match'), base(req))));
  r.put('/Groups/:id', body, async (req, res) => send(res, await service.replaceGroup(String(req.params.id), req.body, readParams(req), ifMatch(req), base(req))));
  r.patch('/Groups/:id', body, async (req, res) => send(res, await service.patchGroup(String(req.params.id), req.body, readParams(req), ifMatch(req), base(req))));
  r.delete('/Groups/:id', async (req, res) => send(res, await service.deleteGroup(String(req.params.id), ifMatch(req))));

  // A search across resource types (RFC 7644 §3.4.3) is optional, and RFC 7644 §3.12 lets a server answer 501.
  r.post('/.search', () => {
    throw new ScimError(501, 'This bridge does not search across resource types (POST /.search); search one type with POST /Users/.search or POST /Groups/.search.');
  });

  r.get('/ServiceProviderConfig', (req, res) => send(res, service.serviceProviderConfig(base(req))));
  r.get('/ResourceTypes', (req, res) => send(res, service.resourceTypes(base(req))));
  r.get('/ResourceTypes/:name', (req, res) => send(res, service.resourceTypes(base(req), String(req.params.name))));
  r.get('/Schemas', (req, res) => send(res, service.schemas(base(req))));
  r.get('/Schemas/:id', (req, res) => send(res, service.schemas(base(req), String(req.params.id))));
  return r;
}

const STARTED = Symbol('started');
type Timed = Response & { [STARTED]?: number };

/**
 * The 'finish' listener of every response (`this`): the request's metrics and its log line. The IdP is read from
 * the headers once, for both.
 */
function requestRecorder(observer: Observer, logger: Logger): (this: Response) => void {
  return function recordAndLog(this: Response): void {
    const res = this as Timed;
    const req = res.req;
    const ms = performance.now() - (res[STARTED] ?? performance.now());
    const adscim = req.headers.adscimversion;
    const idp = idpOf(req.headers['user-agent'], typeof adscim === 'string' ? adscim : undefined);
    const status = res.statusCode;
    observer.recordRequest({
      method: req.method,
      route: routeLabel(req),
      status,
      idp: labelOfIdp(idp),
      seconds: ms / 1000,
      scimType: sentError(res)?.scimType,
      fromIdp: fromIdp(req),
      at: Date.now(),
    });
    logger.info({ method: req.method, path: req.path, status, ms, idp, tokenSlot: req.tokenIndex }, 'request');
  };
}

export function createApp(options: AppOptions): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  // Behind a gateway, X-Forwarded-For and X-Forwarded-Proto are believed only from the gateway's addresses: a client
  // that reaches the port directly is its own client whatever it writes there (so it cannot dodge the auth limiter).
  app.set('trust proxy', options.trustProxy.length > 0 ? [...options.trustProxy] : false);

  // One middleware for what every request needs: the security headers, the request log line (and the metrics) once
  // it is answered, and, without a public URL, the Host check. One layer of the router rather than two, and no
  // closure per request: the log line is written by one listener shared by all responses, which finds its request
  // and its start time on the response.
  const recordAndLog = requestRecorder(options.observer, options.logger);
  const checkHost = options.publicUrl === undefined;
  app.use((req, res, next) => {
    (res as Timed)[STARTED] = performance.now();
    setSecurityHeaders(res);
    if (req.secure) res.setHeader('Strict-Transport-Security', 'max-age=31536000');
    res.on('finish', recordAndLog);
    // Without a public URL, links are built from the Host header: one that is not a host name or address is refused
    // here, for every path, and never written anywhere (not even into the error).
    if (checkHost) {
      const host = req.headers.host;
      if (host !== undefined && !validHost(host)) {
        sendError(res, new ScimError(400, BAD_HOST));
        return;
      }
    }
    next();
  });

  app.get('/healthz', (_req, res) => {
    res.setHeader('Content-Type', 'text/plain; charset=utf-8');
    res.end('ok');
  });

  // Kubernetes readiness: open like /healthz, and as terse (no error text), but it asks the store: a replica
  // whose database does not answer is taken out of the Service's endpoints instead of failing the IdP's requests.
  app.get('/readyz', async (_req, res) => {
    let ready = true;
    try {
      await options.storeHealth();
    } catch {
      ready = false;
    }
    res.setHeader('Content-Type', 'text/plain; charset=utf-8');
    res.status(ready ? 200 : 503).end(ready ? 'ready' : 'not ready');
  });

  // The application API has its own token: the IdP's never opens it, and its own never opens SCIM.
  // One failed-auth budget for both doors: per address, and a ceiling across all addresses.
  const limiter = failedAuthLimiter();
  app.use('/api/v1', applicationRouter(options.api, options.appTokenHashes, options.replayDeadLetters, limiter));

  // The status page's files hold no figures: open. Metrics: the IdP's token, or the metrics token (that one opens
  // nothing else); the page's figures (/status.json): the IdP's token. Each checked on its route, so that a refusal
  // is counted under the route's label.
  statusPage(app);
  // A getter: the IdP's accepted hashes change in place during a token rotation (secret-files.ts).
  app.get('/metrics', bearerAuth({ get tokenHashes() { return [...options.tokenHashes, ...options.metricsTokenHashes]; }, limiter }), metricsHandler(options.observer));
  app.get('/status.json', bearerAuth({ tokenHashes: options.tokenHashes, limiter }), statusReportHandler(options.observer));

  app.use(bearerAuth({ tokenHashes: options.tokenHashes, limiter }));

  app.get('/health', async (_req, res) => {
    let store = 'ok';
    let storeError: string | undefined;
    try {
      await options.storeHealth();
    } catch (err) {
      store = 'unavailable';
      storeError = (err as Error).message;
    }
    const delivery = await options.deliveryBacklog().catch(() => ({ error: 'unavailable' }));
    const connectors = options.connectors?.() ?? {};
    res.status(store === 'ok' ? 200 : 503).json({ status: store === 'ok' ? 'ok' : 'degraded', store, storeError, delivery, ...connectors, version: options.version });
  });

  const scim = scimRouter(options.service, options.publicUrl);
  app.use('/scim/v2', scim);
  app.use('/', scim);

  app.use((req, res) =>
    sendError(res, new ScimError(404, `There is no endpoint ${req.method} ${req.path}; SCIM lives at /Users, /Groups, /ServiceProviderConfig, /ResourceTypes and /Schemas.`)),
  );
  app.use(errorHandler(options.logger));
  return app;
}
