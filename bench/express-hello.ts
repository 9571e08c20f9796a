/**
 * A second ceiling: Express 5 with one route that answers "ok" and nothing else (no middleware, no log,
 * no auth). What the framework alone allows on this machine. Started by bench/run.ts:
 *   node express-hello.js PORT
 */
import express from 'express';

const app = express();
app.disable('x-powered-by');
app.get('/healthz', (_req, res) => {
  res.setHeader('Content-Type', 'text/plain; charset=utf-8');
  res.end('ok');
});
app.listen(Number(process.argv[2]), '127.0.0.1');
