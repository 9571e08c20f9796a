/**
 * Load shedding. A request is answered 503 with Retry-After at once, before its body is read, and its connection
 * closed, when `maxInFlight` requests are already being handled (writes waiting for their sync), or when it came on
 * a connection opened while `maxOpenConnections` others were open (a flood of reads: each is handled in one go, so
 * they queue unseen in their sockets, and the open connections are what counts them; the first ones are served,
 * the excess is refused). Nothing queues in the bridge, so a flood costs a few microseconds per refused request
 * instead of memory and latency for everyone. GET /healthz is never refused: an orchestrator must not restart a
 * bridge that is busy but healthy. Refusals (and connections dropped at the server's hard cap, maxConnections) are
 * logged as one line per window, with their counts, never one per request.
 */
import type { IncomingMessage, RequestListener, Server, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { ScimError } from '../errors';
import type { Logger } from '../log';
import { closeAfterResponse } from './connection';
import { sendError, setSecurityHeaders } from './errors';

export interface LoadSheddingOptions {
  readonly maxInFlight: number;
  readonly maxOpenConnections: number;
  /** Retry-After on the 503, in seconds. */
  readonly retryAfterSeconds: number;
  /** How often at most a saturation line is logged. */
  readonly logIntervalMs: number;
  readonly logger: Logger;
  /** Told of each request refused with 503 (for the request metrics), after its answer went out. */
  readonly onRefused?: (req: IncomingMessage, res: ServerResponse) => void;
}

const isHealthz = (req: IncomingMessage) => (req.method === 'GET' || req.method === 'HEAD') && (req.url === '/healthz' || req.url?.startsWith('/healthz?') === true);

export class LoadShedding {
  private inFlight = 0;
  private connections = 0;
  /** Connections opened past maxOpenConnections: their requests are refused. */
  private readonly overflow = new WeakSet<Socket>();
  private refused = 0;
  private dropped = 0;
  private window?: NodeJS.Timeout;

  private readonly release = (): void => {
    this.inFlight--;
  };

  constructor(private readonly options: LoadSheddingOptions) {}

  /** `app` behind the cap. */
  wrap(app: RequestListener): RequestListener {
    return (req: IncomingMessage, res: ServerResponse) => {
      if (isHealthz(req)) {
        app(req, res);
        return;
      }
      if (this.inFlight >= this.options.maxInFlight || this.overflow.has(req.socket)) {
        this.refuse(res);
        this.options.onRefused?.(req, res);
        return;
      }
      this.inFlight++;
      // One listener for all responses ('close' comes once per response), not a closure each.
      res.on('close', this.release);
      app(req, res);
    };
  }

  /** Counts the server's open connections, and those it drops at its hard cap (maxConnections). */
  watch(server: Server): void {
    server.on('connection', (socket: Socket) => {
      if (this.connections >= this.options.maxOpenConnections) this.overflow.add(socket);
      this.connections++;
      socket.once('close', () => this.connections--);
    });
    server.on('drop', () => {
      this.dropped++;
      this.openWindow();
    });
  }

  /** Logs what the current window counted so far (at a stop). */
  flush(): void {
    clearTimeout(this.window);
    this.window = undefined;
    if (this.refused === 0 && this.dropped === 0) return;
    this.options.logger.warn(
      { refused: this.refused, dropped: this.dropped, maxInFlight: this.options.maxInFlight, maxOpenConnections: this.options.maxOpenConnections },
      `saturated: refused ${this.refused} requests with 503 (${this.options.maxInFlight} in flight or more than ${this.options.maxOpenConnections} connections open) and dropped ${this.dropped} connections at the connection cap`,
    );
    this.refused = 0;
    this.dropped = 0;
  }

  private refuse(res: ServerResponse): void {
    this.refused++;
    this.openWindow();
    closeAfterResponse(res);
    // Answered before the app's middleware runs: the security headers are set here.
    setSecurityHeaders(res);
    sendError(
      res,
      new ScimError(503, 'The bridge is handling as many requests as it can; retry after the delay in Retry-After.', undefined, {
        retryAfterSeconds: this.options.retryAfterSeconds,
      }),
    );
  }

  /** The first refusal opens a window; its line is written when it closes, with everything counted meanwhile. */
  private openWindow(): void {
    if (this.window) return;
    this.window = setTimeout(() => this.flush(), this.options.logIntervalMs);
    this.window.unref();
  }
}
