/**
 * Reads a V8 .cpuprofile (node --cpu-prof) and says where the time went: self time per function and
 * per package. Also runnable alone: node -r ts-node/register/transpile-only bench/lib/profile.ts FILE
 */
import { readFileSync } from 'node:fs';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  samples?: number[];
  timeDeltas?: number[];
}

export interface ProfileLine {
  readonly name: string;
  readonly ms: number;
  /** Share of the busy time (idle excluded). */
  readonly share: number;
}

export interface ProfileSummary {
  readonly totalMs: number;
  readonly idleMs: number;
  readonly functions: ProfileLine[];
  readonly packages: ProfileLine[];
  /** Time in a bridge function and everything it called (each sample counted once per function). */
  readonly bridgeInclusive: ProfileLine[];
}

function where(url: string): string {
  if (!url) return '';
  const nm = url.lastIndexOf('/node_modules/');
  if (nm >= 0) return url.slice(nm + '/node_modules/'.length);
  const dist = url.indexOf('/bridge/dist/');
  if (dist >= 0) return `bridge/dist/${url.slice(dist + '/bridge/dist/'.length)}`;
  return url.replace(/^file:\/\//, '');
}

function packageOf(url: string, functionName: string): string {
  if (!url) return functionName.startsWith('(') ? functionName : '(native)';
  if (url.startsWith('node:')) return 'node internals';
  const nm = url.lastIndexOf('/node_modules/');
  if (nm >= 0) {
    const rest = url.slice(nm + '/node_modules/'.length).split('/');
    return rest[0].startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0];
  }
  const dist = url.indexOf('/bridge/dist/');
  if (dist >= 0) return `bridge/${url.slice(dist + '/bridge/dist/'.length).split('/').slice(0, -1).join('/') || '.'}`;
  return url;
}

export function summarizeProfile(path: string, top = 20): ProfileSummary {
  const profile = JSON.parse(readFileSync(path, 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const incMs = new Map<string, number>();
  const samples = profile.samples ?? [];
  const deltas = profile.timeDeltas ?? [];
  const fnMs = new Map<string, number>();
  const pkgMs = new Map<string, number>();
  let total = 0;
  let idle = 0;
  for (let i = 0; i < samples.length; i++) {
    // timeDeltas[i+1] is the time the i-th sample stood for (the gap until the next one).
    const ms = (deltas[i + 1] ?? 0) / 1000;
    const node = byId.get(samples[i]);
    if (!node) continue;
    total += ms;
    const { functionName, url, lineNumber } = node.callFrame;
    if (functionName === '(idle)') {
      idle += ms;
      continue;
    }
    const loc = where(url);
    const key = `${functionName || '(anonymous)'}${loc ? `  ${loc}:${lineNumber + 1}` : ''}`;
    fnMs.set(key, (fnMs.get(key) ?? 0) + ms);
    const pkg = packageOf(url, functionName);
    pkgMs.set(pkg, (pkgMs.get(pkg) ?? 0) + ms);
    const seen = new Set<string>();
    for (let id: number | undefined = node.id; id !== undefined; id = parent.get(id)) {
      const f = byId.get(id)!.callFrame;
      if (!f.url.includes('/bridge/dist/')) continue;
      const k = `${f.functionName || '(anonymous)'}  ${where(f.url)}:${f.lineNumber + 1}`;
      if (seen.has(k)) continue;
      seen.add(k);
      incMs.set(k, (incMs.get(k) ?? 0) + ms);
    }
  }
  const busy = total - idle || 1;
  const lines = (m: Map<string, number>) =>
    [...m.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([name, ms]) => ({ name, ms, share: ms / busy }));
  return { totalMs: total, idleMs: idle, functions: lines(fnMs), packages: lines(pkgMs), bridgeInclusive: lines(incMs) };
}

export function formatProfile(title: string, s: ProfileSummary): string {
  const out = [`${title}: ${(s.totalMs / 1000).toFixed(1)} s sampled, ${((s.totalMs - s.idleMs) / 1000).toFixed(1)} s busy`];
  out.push('  self time by function (share of busy time):');
  for (const l of s.functions) out.push(`    ${(l.share * 100).toFixed(1).padStart(5)}%  ${l.ms.toFixed(0).padStart(7)} ms  ${l.name}`);
  out.push('  self time by package:');
  for (const l of s.packages.slice(0, 12)) out.push(`    ${(l.share * 100).toFixed(1).padStart(5)}%  ${l.ms.toFixed(0).padStart(7)} ms  ${l.name}`);
  out.push('  total time (self + callees) by bridge function:');
  for (const l of s.bridgeInclusive.slice(0, 15)) out.push(`    ${(l.share * 100).toFixed(1).padStart(5)}%  ${l.ms.toFixed(0).padStart(7)} ms  ${l.name}`);
  return out.join('\n');
}

if (require.main === module) {
  const files = process.argv.slice(2);
  if (files.length === 0) {
    process.stderr.write('usage: node -r ts-node/register/transpile-only bench/lib/profile.ts FILE.cpuprofile...\n');
    process.exit(2);
  }
  for (const f of files) process.stdout.write(formatProfile(f, summarizeProfile(f, 30)) + '\n\n');
}

// ---------------------------------------------------------------------------------------------------
// Where one request's time goes, by the part of the request path that spent it (bench/profile.ts).

/** The parts of a request, in the words of issue 18; a sample goes to the innermost frame of its stack that names one. */
export const PARTS = [
  'request log (pino)',
  'metrics / status page (observer)',
  'auth (token hash compare)',
  'rate limiting',
  'overload guard',
  'security headers',
  'host check / base URL',
  'query parsing (qs, SCIM query, filter)',
  'body parsing (JSON)',
  'SQL (kysely, better-sqlite3, store)',
  'durable commit (group commit, WAL sync)',
  'SCIM / directory (resource building)',
  'response (JSON.stringify, res.end)',
  'router (express, router)',
  'node http / net / streams',
  'GC',
  'other',
] as const;
export type Part = (typeof PARTS)[number];

const SOCKET_WRITES = new Set(['writev', 'writeString', 'writeBuffer', 'writeUtf8String', 'writeLatin1String', 'writeAsciiString']);
const has = (url: string, ...parts: string[]) => parts.some((p) => url.includes(p));

/** The part a frame belongs to, or undefined when the frame says nothing (node internals, anonymous glue). */
function partOfFrame(f: CallFrame): Part | undefined {
  const { url, functionName: fn } = f;
  if (has(url, '/node_modules/pino/', '/node_modules/sonic-boom/', '/node_modules/fast-redact/', '/node_modules/quick-format-unescaped/', '/node_modules/@pinojs/', '/node_modules/fast-safe-stringify/')) return 'request log (pino)';
  if (fn === 'idpOf' || fn === 'logRequest') return 'request log (pino)';
  if (has(url, '/node_modules/prom-client/', '/bridge/dist/observe/') || fn === 'routeLabel' || fn === 'fromIdp' || fn === 'idpLabel' || fn === 'isIdpUrl') return 'metrics / status page (observer)';
  if (has(url, '/node_modules/express-rate-limit/')) return 'rate limiting';
  if (has(url, '/bridge/dist/http/auth.js') || fn === 'timingSafeEqual' || fn === 'createHash') return 'auth (token hash compare)';
  if (has(url, '/bridge/dist/http/overload.js')) return 'overload guard';
  if (fn === 'setSecurityHeaders') return 'security headers';
  if (fn === 'validHost' || fn === 'baseUrlOf' || fn === 'checkHost') return 'host check / base URL';
  if (has(url, '/node_modules/qs/', '/bridge/dist/scim/query.js', '/bridge/dist/scim/filter.js', '/bridge/dist/scim/attributes.js', '/node_modules/parseurl/') || fn === 'querystring' || fn === 'parseQuery') {
    return 'query parsing (qs, SCIM query, filter)';
  }
  if (has(url, '/node_modules/body-parser/', '/node_modules/raw-body/', '/node_modules/iconv-lite/', '/node_modules/type-is/', '/node_modules/content-type/', '/node_modules/media-typer/', '/bridge/dist/http/json-depth.js') || fn === 'jsonBody') {
    return 'body parsing (JSON)';
  }
  if (fn === 'flush' && has(url, '/bridge/dist/store/sql-store.js')) return 'durable commit (group commit, WAL sync)';
  if (fn === 'sync' || fn === 'datasync' || fn === 'fdatasync') return 'durable commit (group commit, WAL sync)';
  if (has(url, '/node_modules/kysely/', '/node_modules/better-sqlite3/', '/bridge/dist/store/')) return 'SQL (kysely, better-sqlite3, store)';
  if (has(url, '/bridge/dist/scim/', '/bridge/dist/directory/')) return 'SCIM / directory (resource building)';
  if (fn === 'send' || fn === 'sendError' || fn === 'sendJson') return 'response (JSON.stringify, res.end)';
  if (has(url, '/node_modules/express/', '/node_modules/router/', '/node_modules/path-to-regexp/', '/node_modules/finalhandler/', '/node_modules/depd/', '/node_modules/on-finished/')) return 'router (express, router)';
  return undefined;
}

export interface PartLine {
  readonly part: Part;
  readonly ms: number;
  /** Microseconds of CPU per request. */
  readonly usPerRequest: number;
  readonly share: number;
}

export interface RequestProfile {
  readonly requests: number;
  readonly busyMs: number;
  readonly usPerRequest: number;
  readonly parts: PartLine[];
  readonly functions: ProfileLine[];
}

/** Busy time per request, split into the parts of the request path (PARTS), and the top functions by self time. */
export function attributeProfile(path: string, requests: number, top = 12): RequestProfile {
  const profile = JSON.parse(readFileSync(path, 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const partOfNode = new Map<number, Part>();
  const partOf = (id: number): Part => {
    const known = partOfNode.get(id);
    if (known) return known;
    let part: Part | undefined;
    // Socket writes (the syscalls, called from node's stream code) are the same for every server: node's, whoever
    // asked for them. (A file write, as the log's, has the same native names but is called from node:fs.)
    const leaf = byId.get(id)!.callFrame;
    const caller = parent.get(id) === undefined ? undefined : byId.get(parent.get(id)!)!.callFrame;
    if (!leaf.url && SOCKET_WRITES.has(leaf.functionName) && caller && /^node:(net|internal\/stream_base_commons)/.test(caller.url)) part = 'node http / net / streams';
    for (let at: number | undefined = id; at !== undefined && !part; at = parent.get(at)) part = partOfFrame(byId.get(at)!.callFrame);
    if (!part) {
      const { functionName, url } = byId.get(id)!.callFrame;
      part = functionName === '(garbage collector)' ? 'GC' : url.startsWith('node:') ? 'node http / net / streams' : 'other';
    }
    partOfNode.set(id, part);
    return part;
  };
  const samples = profile.samples ?? [];
  const deltas = profile.timeDeltas ?? [];
  const partMs = new Map<Part, number>();
  let busy = 0;
  for (let i = 0; i < samples.length; i++) {
    const ms = (deltas[i + 1] ?? 0) / 1000;
    const node = byId.get(samples[i]);
    if (!node || node.callFrame.functionName === '(idle)') continue;
    busy += ms;
    const part = partOf(node.id);
    partMs.set(part, (partMs.get(part) ?? 0) + ms);
  }
  const n = Math.max(1, requests);
  const parts = PARTS.filter((p) => partMs.has(p))
    .map((part) => ({ part, ms: partMs.get(part)!, usPerRequest: (partMs.get(part)! * 1000) / n, share: partMs.get(part)! / (busy || 1) }))
    .sort((a, b) => b.ms - a.ms);
  return { requests, busyMs: busy, usPerRequest: (busy * 1000) / n, parts, functions: summarizeProfile(path, top).functions };
}

export function formatRequestProfile(title: string, p: RequestProfile): string {
  const out = [`${title}: ${p.requests.toLocaleString('en-US')} requests, ${(p.busyMs / 1000).toFixed(2)} s busy, ${p.usPerRequest.toFixed(0)} µs of CPU per request`];
  out.push('  per request, by part of the request path:');
  for (const l of p.parts) out.push(`    ${l.usPerRequest.toFixed(1).padStart(7)} µs  ${(l.share * 100).toFixed(1).padStart(5)}%  ${l.part}`);
  out.push('  top functions by self time:');
  for (const l of p.functions) out.push(`    ${((l.ms * 1000) / Math.max(1, p.requests)).toFixed(1).padStart(7)} µs  ${(l.share * 100).toFixed(1).padStart(5)}%  ${l.name}`);
  return out.join('\n');
}
