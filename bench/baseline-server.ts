/**
 * The ceiling: a bare node `http` server holding the same users in a Map, answering GET /Users/{id} and
 * GET /Users?filter=userName eq "x" with the same JSON the bridge sends. No auth, no framework, no
 * store. Started by bench/run.ts as a child process:
 *   node baseline-server.js PORT USERS.ndjson   (one user resource per line, as the bridge returned it)
 */
import { readFileSync } from 'node:fs';
import http from 'node:http';

const LIST_RESPONSE = 'urn:ietf:params:scim:api:messages:2.0:ListResponse';
const ERROR = 'urn:ietf:params:scim:api:messages:2.0:Error';
const FILTER = /^\s*userName\s+eq\s+"((?:[^"\\]|\\.)*)"\s*$/i;

type User = Record<string, unknown> & { id: string; userName: string };

const [portArg, file] = process.argv.slice(2);
const byId = new Map<string, User>();
const byName = new Map<string, User>();
for (const line of readFileSync(file, 'utf8').split('\n')) {
  if (!line) continue;
  const user = JSON.parse(line) as User;
  byId.set(user.id, user);
  byName.set(user.userName.toLowerCase(), user);
}

function send(res: http.ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'Content-Type': 'application/scim+json; charset=utf-8' });
  res.end(JSON.stringify(body));
}

function notFound(res: http.ServerResponse, detail: string): void {
  send(res, 404, { schemas: [ERROR], status: '404', detail });
}

const server = http.createServer((req, res) => {
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  const path = q < 0 ? url : url.slice(0, q);
  if (req.method !== 'GET') return send(res, 405, { schemas: [ERROR], status: '405', detail: 'GET only' });
  if (path === '/healthz') {
    res.writeHead(200, { 'Content-Type': 'text/plain' });
    return res.end('ok');
  }
  if (path.startsWith('/Users/')) {
    const user = byId.get(decodeURIComponent(path.slice('/Users/'.length)));
    return user ? send(res, 200, user) : notFound(res, 'no such user');
  }
  if (path === '/Users') {
    const filter = new URLSearchParams(q < 0 ? '' : url.slice(q + 1)).get('filter');
    const m = filter === null ? null : FILTER.exec(filter);
    if (!m) return send(res, 400, { schemas: [ERROR], status: '400', scimType: 'invalidFilter', detail: 'only userName eq "x"' });
    const user = byName.get(JSON.parse(`"${m[1]}"`).toLowerCase());
    const resources = user ? [user] : [];
    return send(res, 200, { schemas: [LIST_RESPONSE], totalResults: resources.length, startIndex: 1, itemsPerPage: resources.length, Resources: resources });
  }
  return notFound(res, `no endpoint ${path}`);
});
server.keepAliveTimeout = 65_000;
server.listen(Number(portArg), '127.0.0.1', () => process.stdout.write(`baseline: ${byId.size} users on port ${portArg}\n`));
process.on('SIGTERM', () => {
  server.close(() => process.exit(0));
  server.closeAllConnections();
});
