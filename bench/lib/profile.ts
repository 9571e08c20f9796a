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
