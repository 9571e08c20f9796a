/**
 * What the bridge remembers of its recent traffic, for the status page: each IdP's last request and the last
 * errors. Bounded: one entry per IdP label (a fixed set) and a ring of RECENT_ERRORS errors. Nothing personal is
 * kept: a method, a route pattern (never a path with ids), a status, a scimType and a time; never a body, a
 * filter, a detail text or an address.
 */

/** One answered request, as the HTTP layer reports it. */
export interface RequestRecord {
  /** GET, POST… (`OTHER` for anything else). */
  readonly method: string;
  /** The route's pattern (`/Users/:id`), or `unmatched`. */
  readonly route: string;
  readonly status: number;
  /** A label from a fixed set (see idpLabel in the HTTP layer). */
  readonly idp: string;
  /** From its arrival to its answer; absent for a request refused before it was handled (load shedding). */
  readonly seconds?: number;
  /** The SCIM error's scimType, when the answer was one that carried it. */
  readonly scimType?: string;
  /** Whether it was an identity provider's request (SCIM), rather than an operator's (status page, metrics, probes). */
  readonly fromIdp: boolean;
  /** When it was answered (ms since the epoch). */
  readonly at: number;
}

export interface LastRequest {
  readonly idp: string;
  readonly at: string;
  readonly method: string;
  readonly route: string;
  readonly status: number;
}

export interface RecentError {
  readonly at: string;
  readonly idp: string;
  readonly method: string;
  readonly route: string;
  readonly status: number;
  readonly scimType?: string;
}

/** How many errors the status page shows, at most. */
export const RECENT_ERRORS = 50;

/** A last request as kept: its time as a number, written as text only when the status page asks. */
interface Kept {
  method: string;
  route: string;
  status: number;
  at: number;
}

export class Activity {
  /** Updated in place on every request: one entry per IdP label. */
  private readonly lastByIdp = new Map<string, Kept>();
  /** A ring: `next` is where the next error goes; once full, it overwrites the oldest. */
  private readonly errors: RecentError[] = [];
  private next = 0;

  constructor(private readonly capacity = RECENT_ERRORS) {}

  /** `method`: as the metrics label it (GET, POST… or OTHER), which the caller has worked out already. */
  record(r: RequestRecord, method = r.method): void {
    if (r.fromIdp) {
      const kept = this.lastByIdp.get(r.idp);
      if (kept) {
        kept.method = method;
        kept.route = r.route;
        kept.status = r.status;
        kept.at = r.at;
      } else {
        this.lastByIdp.set(r.idp, { method, route: r.route, status: r.status, at: r.at });
      }
    }
    if (r.status < 400) return;
    const error: RecentError = { at: new Date(r.at).toISOString(), idp: r.idp, method, route: r.route, status: r.status, ...(r.scimType ? { scimType: r.scimType } : {}) };
    if (this.errors.length < this.capacity) this.errors.push(error);
    else this.errors[this.next] = error;
    this.next = (this.next + 1) % this.capacity;
  }

  /** Each IdP's last request, most recent first. */
  lastRequests(): LastRequest[] {
    return [...this.lastByIdp]
      .sort(([, a], [, b]) => b.at - a.at)
      .map(([idp, k]) => ({ idp, at: new Date(k.at).toISOString(), method: k.method, route: k.route, status: k.status }));
  }

  /** The last errors, most recent first. */
  recentErrors(): RecentError[] {
    const inOrder = this.errors.length < this.capacity ? this.errors : [...this.errors.slice(this.next), ...this.errors.slice(0, this.next)];
    return inOrder.slice().reverse();
  }
}
