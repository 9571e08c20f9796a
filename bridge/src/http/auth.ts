/**
 * Bearer-token authentication: the presented token is hashed and compared in constant time with every
 * accepted hash (two during a rotation). Failed attempts are rate-limited per client address, and under a
 * ceiling across all addresses (a guesser spread over many addresses); a client with a good token never meets
 * either limiter.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { rateLimit } from 'express-rate-limit';
import { ScimError } from '../errors';
import { sendError } from './errors';

export interface LimiterOptions {
  /** Failed attempts allowed per address per minute before 429. */
  readonly failuresPerMinute?: number;
  /** Failed attempts allowed per minute from all addresses together before 429. */
  readonly globalFailuresPerMinute?: number;
}

export interface AuthOptions extends LimiterOptions {
  /**
   * Hex SHA-256 hashes of accepted tokens. Read at each request: the bridge may replace the list's content while
   * it runs (secret-files.ts, a rotation), and the next request sees the new list.
   */
  readonly tokenHashes: readonly string[];
  /** The failed-attempt limiter (failedAuthLimiter), when several doors share one budget; else a new one. */
  readonly limiter?: RequestHandler;
}

export const FAILURES_PER_MINUTE = 30;
export const GLOBAL_FAILURES_PER_MINUTE = 120;

declare module 'express-serve-static-core' {
  interface Request {
    /** Which accepted token the caller presented (0: first), for the request log. */
    tokenIndex?: number;
  }
}

/** The index of the matching hash, or -1. Every hash is compared, so timing says nothing about which. */
export function matchToken(presented: string, hashes: readonly Buffer[]): number {
  const digest = createHash('sha256').update(presented, 'utf8').digest();
  let found = -1;
  for (let i = 0; i < hashes.length; i++) {
    if (timingSafeEqual(digest, hashes[i]) && found < 0) found = i;
  }
  return found;
}

/**
 * Counts a failed attempt, then calls `next` (the 401) or answers 429 with Retry-After: first per client address
 * (req.ip: X-Forwarded-For only from a trusted gateway), then across all addresses.
 */
export function failedAuthLimiter(options: LimiterOptions = {}): RequestHandler {
  const perAddress = rateLimit({
    windowMs: 60_000,
    limit: options.failuresPerMinute ?? FAILURES_PER_MINUTE,
    standardHeaders: 'draft-7',
    legacyHeaders: false,
    handler: (_req, res) =>
      sendError(res, new ScimError(429, 'Too many requests with a wrong bearer token from this address; wait a minute and check the token.')),
  });
  const global = rateLimit({
    windowMs: 60_000,
    limit: options.globalFailuresPerMinute ?? GLOBAL_FAILURES_PER_MINUTE,
    keyGenerator: () => 'all-addresses',
    requestPropertyName: 'globalRateLimit',
    // No RateLimit headers: they would replace the per-address ones and tell a guesser the shared budget.
    standardHeaders: false,
    legacyHeaders: false,
    handler: (req, res) => {
      const reset = (req as Request & { globalRateLimit?: { resetTime?: Date } }).globalRateLimit?.resetTime;
      res.setHeader('Retry-After', String(Math.max(1, Math.ceil(((reset?.getTime() ?? Date.now() + 60_000) - Date.now()) / 1000))));
      sendError(res, new ScimError(429, 'Too many requests with a wrong bearer token to this bridge; wait a minute and check the token.'));
    },
  });
  return (req, res, next) => perAddress(req, res, () => global(req, res, next));
}

export function bearerAuth(options: AuthOptions): RequestHandler {
  // The digests as buffers, made again only when the list's content changed (a rotation replaces it in place, and
  // the metrics door's getter builds a new list each time): its hex strings compared with the last ones seen.
  let seen: readonly string[] = [];
  let hashes: Buffer[] = [];
  const current = (): Buffer[] => {
    const now = options.tokenHashes;
    let same = now.length === seen.length;
    for (let i = 0; same && i < now.length; i++) same = now[i] === seen[i];
    if (!same) [seen, hashes] = [[...now], now.map((h) => Buffer.from(h, 'hex'))];
    return hashes;
  };
  const limiter = options.limiter ?? failedAuthLimiter(options);
  return (req: Request, res: Response, next: NextFunction) => {
    const header = req.headers.authorization;
    const m = header ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
    const index = m ? matchToken(m[1], current()) : -1;
    if (index >= 0) {
      req.tokenIndex = index;
      next();
      return;
    }
    limiter(req, res, () => {
      res.setHeader('WWW-Authenticate', `Bearer realm="scim-bridge"${header ? ', error="invalid_token"' : ''}`);
      sendError(
        res,
        new ScimError(401, header ? 'The bearer token is not valid for this bridge.' : 'Authentication required: send Authorization: Bearer <token>.'),
      );
    });
  };
}
