/**
 * Bearer-token authentication: the presented token is hashed and compared in constant time with every
 * accepted hash (two during a rotation). Failed attempts are rate-limited per client address; a client
 * with a good token never meets the limiter.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { rateLimit } from 'express-rate-limit';
import { ScimError } from '../errors';
import { sendError } from './errors';

export interface AuthOptions {
  /** Hex SHA-256 hashes of accepted tokens. */
  readonly tokenHashes: readonly string[];
  /** Failed attempts allowed per address per minute before 429. */
  readonly failuresPerMinute?: number;
}

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
  hashes.forEach((h, i) => {
    if (timingSafeEqual(digest, h) && found < 0) found = i;
  });
  return found;
}

export function bearerAuth(options: AuthOptions): RequestHandler {
  const hashes = options.tokenHashes.map((h) => Buffer.from(h, 'hex'));
  const limiter = rateLimit({
    windowMs: 60_000,
    limit: options.failuresPerMinute ?? 30,
    standardHeaders: 'draft-7',
    legacyHeaders: false,
    handler: (_req, res) =>
      sendError(res, new ScimError(429, 'Too many requests with a wrong bearer token from this address; wait a minute and check the token.')),
  });
  return (req: Request, res: Response, next: NextFunction) => {
    const header = req.headers.authorization;
    const m = header ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
    const index = m ? matchToken(m[1], hashes) : -1;
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
