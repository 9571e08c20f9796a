/**
 * The one error type of the bridge. Every layer throws it; the HTTP layer turns it into a SCIM Error
 * body (RFC 7644 §3.12). `detail` always says what the client should change.
 */
export type ScimType =
  | 'invalidFilter'
  | 'tooMany'
  | 'uniqueness'
  | 'mutability'
  | 'invalidSyntax'
  | 'invalidPath'
  | 'noTarget'
  | 'invalidValue'
  | 'invalidVers'
  | 'sensitive';

export interface ScimErrorOptions {
  /** When the client should try again (a Retry-After header, in seconds): for a 503 the bridge expects to clear. */
  readonly retryAfterSeconds?: number;
  /** The failure underneath (a store error): logged with the request, never sent to the client. */
  readonly cause?: unknown;
}

export class ScimError extends Error {
  readonly retryAfterSeconds?: number;

  constructor(
    readonly status: number,
    readonly detail: string,
    readonly scimType?: ScimType,
    options: ScimErrorOptions = {},
  ) {
    super(detail, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'ScimError';
    this.retryAfterSeconds = options.retryAfterSeconds;
  }
}

export const badRequest = (scimType: ScimType, detail: string) => new ScimError(400, detail, scimType);
export const notFound = (detail: string) => new ScimError(404, detail);
export const conflict = (detail: string) => new ScimError(409, detail, 'uniqueness');
export const preconditionFailed = (detail: string) => new ScimError(412, detail);
