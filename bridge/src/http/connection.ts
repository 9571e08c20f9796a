/**
 * Closing a connection whose request is answered before its body was read (a refusal: 401, 413, 415, 429, 503).
 * Left open, Node would read and discard the rest of the body to keep the connection, so a client trickling a
 * body would hold it (and a file descriptor) until the request timeout. Closed at once, the kernel answers the
 * body still arriving with a reset, which can discard the answer before the client reads it (RFC 9112 §9.6,
 * "TCP reset problem"): so the bridge says `Connection: close`, ends its side once the answer is out, drains what
 * the client still sends for at most LINGER_MS, then closes.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

/** How long a refused connection is drained after its answer: enough for a client sending a body to read it. */
export const LINGER_MS = 2_000;

/** Whether the request has a body that has not been received in full (nothing read it yet, or not to the end). */
export function bodyUnread(req: IncomingMessage): boolean {
  const length = req.headers['content-length'];
  const hasBody = req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
  return hasBody && !req.complete;
}

/** Answers `res` with `Connection: close`, and closes the connection after it without reading the request's body. */
export function closeAfterResponse(res: ServerResponse, lingerMs = LINGER_MS): void {
  if (res.headersSent) return;
  res.setHeader('Connection', 'close');
  const socket = res.socket;
  if (!socket) return;
  // Node ends a `Connection: close` response's socket with destroySoon() once the response is written; this
  // socket's own destroySoon half-closes it instead and lets it drain (the request's remaining body is discarded).
  socket.destroySoon = function lingeringClose(this: typeof socket) {
    this.end();
    this.resume();
    const timer = setTimeout(() => this.destroy(), lingerMs);
    timer.unref();
    this.once('close', () => clearTimeout(timer));
  };
}
