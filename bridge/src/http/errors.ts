/** Every error leaves as a SCIM Error body (RFC 7644 §3.12), whoever raised it. */
import type { ServerResponse } from 'node:http';
import type { NextFunction, Request, Response } from 'express';
import { ScimError } from '../errors';
import type { Logger } from '../log';
import { bodyUnread, closeAfterResponse } from './connection';

export const SCIM_CONTENT_TYPE = 'application/scim+json; charset=utf-8';
const ERROR_URN = 'urn:ietf:params:scim:api:messages:2.0:Error';

/**
 * The headers every response carries, errors and refusals included: nothing the bridge answers is a page that loads
 * anything or may be framed, and nothing may be cached or sniffed.
 */
export function setSecurityHeaders(res: ServerResponse): void {
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('Cache-Control', 'no-store');
  res.setHeader('X-Frame-Options', 'DENY');
  res.setHeader('Content-Security-Policy', "default-src 'none'; frame-ancestors 'none'");
}

/** The SCIM error each response was answered with, for the request's metrics (its status and scimType, never its detail). */
const sentErrors = new WeakMap<ServerResponse, ScimError>();

export function sentError(res: ServerResponse): ScimError | undefined {
  return sentErrors.get(res);
}

export function sendError(res: ServerResponse, error: ScimError): void {
  sentErrors.set(res, error);
  const body: Record<string, unknown> = { schemas: [ERROR_URN], status: String(error.status) };
  if (error.scimType) body.scimType = error.scimType;
  body.detail = error.detail;
  res.statusCode = error.status;
  res.setHeader('Content-Type', SCIM_CONTENT_TYPE);
  if (error.retryAfterSeconds !== undefined) res.setHeader('Retry-After', String(error.retryAfterSeconds));
  // Refused before its body was read: the connection goes, rather than waiting for a body no one will read.
  if (res.req && bodyUnread(res.req)) closeAfterResponse(res);
  res.end(JSON.stringify(body));
}

export function bodyTooLarge(limitBytes: number): ScimError {
  return new ScimError(413, `The body is larger than ${Math.round(limitBytes / 1024)} KiB; send smaller requests (e.g. PATCH members in batches).`);
}

/** Errors from body parsing (express.json) as SCIM errors. */
function fromBodyParser(err: { type?: string; status?: number; limit?: number }): ScimError | undefined {
  switch (err.type) {
    case 'entity.too.large':
      return bodyTooLarge(err.limit ?? 0);
    case 'entity.parse.failed':
      return new ScimError(400, 'The body is not valid JSON.', 'invalidSyntax');
    case 'encoding.unsupported':
    case 'charset.unsupported':
      return new ScimError(415, 'The body must be UTF-8 JSON.');
    case 'request.aborted':
    case 'request.size.invalid':
      return new ScimError(400, 'The body was cut short.', 'invalidSyntax');
    default:
      return err.status && err.status >= 400 && err.status < 500 ? new ScimError(err.status, 'The request could not be read.', 'invalidSyntax') : undefined;
  }
}

export function errorHandler(logger: Logger) {
  return (err: unknown, req: Request, res: Response, _next: NextFunction): void => {
    let error = err instanceof ScimError ? err : fromBodyParser(err as { type?: string });
    if (!error) {
      logger.error({ err, method: req.method, path: req.path }, 'unexpected error');
      error = new ScimError(500, 'The bridge failed to handle this request; it has been logged.');
    } else if (error.status >= 500) {
      // The bridge's own failure (a full disk, say): the log names what failed underneath, the client gets the detail.
      logger.error({ err: error.cause ?? error, method: req.method, path: req.path, status: error.status }, error.detail);
    }
    if (res.headersSent) {
      res.end();
      return;
    }
    sendError(res, error);
  };
}
