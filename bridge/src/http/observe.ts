/**
 * The operator's doors (DESIGN.md, "HTTP surface"): GET /metrics (the IdP's token or the metrics token), the status
 * page GET / with its files (open: they hold no figures), and GET /status.json (the IdP's token) that the page reads.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Express, Request, RequestHandler, Response } from 'express';
import type { Observer, RequestRecord } from '../observe';
import { idpLabel } from './idp';
import { STATUS_CSS, STATUS_HTML, STATUS_ICON, STATUS_JS, STATUS_PAGE_CSP } from '../observe';

/** The route label of a request that reached no route (an unknown path, or refused before routing: 401, 429). */
export const UNMATCHED_ROUTE = 'unmatched';

/** The paths that are an operator's, not an identity provider's: they do not count as an IdP's last request. */
const OPERATOR_PATHS = new Set(['/', '/status.json', '/status.js', '/status.css', '/status.svg', '/metrics', '/health', '/healthz', '/readyz']);

/**
 * The request's route as a pattern (`/scim/v2/Users/:id`): where the router mounted it and the route's own path,
 * never the path as sent (ids, a query). Requests that reached no route share one value.
 */
export function routeLabel(req: Request): string {
  const path = (req.route as { path?: unknown } | undefined)?.path;
  return typeof path === 'string' ? `${req.baseUrl}${path}` : UNMATCHED_ROUTE;
}

/** Whether a request to this URL came from an identity provider (SCIM), not an operator or the application. */
function isIdpUrl(url: string): boolean {
  const path = url.split('?')[0];
  return !OPERATOR_PATHS.has(path) && !path.startsWith('/api/');
}

export function fromIdp(req: Request): boolean {
  return isIdpUrl(req.originalUrl);
}

/** A request load shedding refused (503) before the app saw it: counted like any other, under no route. */
export function refusedRecord(req: IncomingMessage, res: ServerResponse): RequestRecord {
  const userAgent = req.headers['user-agent'];
  const adscim = req.headers.adscimversion;
  return {
    method: req.method ?? 'OTHER',
    route: UNMATCHED_ROUTE,
    status: res.statusCode,
    idp: idpLabel(userAgent, typeof adscim === 'string' ? adscim : undefined),
    // An IdP's request that was refused is its last request all the same: the status page shows the 503.
    fromIdp: isIdpUrl(req.url ?? '/'),
    at: Date.now(),
  };
}

/**
 * The status page and its files: open, cacheable by no one (the security headers say no-store already). Routes of
 * the app itself, not a router mounted at `/`: every request would enter and leave that router on its way to SCIM.
 */
export function statusPage(app: Express): void {
  const file = (type: string, body: string, csp?: string): RequestHandler => (_req, res) => {
    if (csp) res.setHeader('Content-Security-Policy', csp);
    res.setHeader('Content-Type', type);
    res.end(body);
  };
  app.get('/', file('text/html; charset=utf-8', STATUS_HTML, STATUS_PAGE_CSP));
  app.get('/status.js', file('text/javascript; charset=utf-8', STATUS_JS));
  app.get('/status.css', file('text/css; charset=utf-8', STATUS_CSS));
  app.get('/status.svg', file('image/svg+xml', STATUS_ICON));
}

export function metricsHandler(observer: Observer): RequestHandler {
  return async (_req: Request, res: Response) => {
    const { contentType, body } = await observer.metrics();
    res.setHeader('Content-Type', contentType);
    res.end(body);
  };
}

export function statusReportHandler(observer: Observer): RequestHandler {
  return async (_req: Request, res: Response) => {
    // 200 even when degraded: the page shows what is wrong (probes read /health and /readyz).
    res.json(await observer.status());
  };
}
