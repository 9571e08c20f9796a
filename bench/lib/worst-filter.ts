/**
 * Issue 13's cost of one request: the worst filter we found for the bench's users, timed on the bridge while
 * /healthz is asked every 5 ms on a connection of its own. The longest /healthz wait is how long the bridge's
 * event loop was held, as an operator's probe sees it; on a machine busy with other work that wait also holds
 * the time the bridge was not given a CPU at all, so each wait is also counted in the bridge's own CPU time
 * (/proc/<pid>/stat, 10 ms ticks): the time the event loop was held by the bridge's own work.
 *
 * The worst filter: 20 `co` terms (the most a filter may hold), and-ed, on different attributes, each true
 * for every bench user and each made of trigrams every user has, so that no index narrows it: every user is
 * checked against every term (before issue 13, in one statement that held the event loop for seconds).
 */
import { cpuSecondsOf } from './children';
import { HttpClient } from './client';

const TERMS: [string, string][] = [
  ['userName', '@example.'],
  ['emails.value', 'example.c'],
  ['displayName', 'bench user'],
  ['name.familyName', 'user user'],
  ['name.formatted', 'nch user'],
  ['name.givenName', 'ench'],
  ['title', 'ngine'],
  ['emails.type', 'wor'],
  ['externalId', 'xt-user'],
  ['userName', 'user0'],
];

/** 20 terms: each attribute twice (the second time with the substring one character shorter). */
export const WORST_FILTER = [...TERMS, ...TERMS.map(([a, v]) => [a, v.slice(1)] as const)].map(([a, v]) => `${a} co ${JSON.stringify(v)}`).join(' and ');

export interface Probed {
  readonly status: number;
  readonly totalResults: number | undefined;
  /** From sending the request to the last byte of its answer. */
  readonly ms: number;
  /** The longest /healthz took to answer while the request ran: the event loop's longest stall, seen from outside. */
  readonly longestHealthzMs: number;
  /** The same waits counted in the bridge's CPU time during each: the longest the bridge's own work held the loop. */
  readonly longestHealthzCpuMs: number;
  /** /healthz answers received while the request ran. */
  readonly healthzAnswers: number;
}

/** Sends GET `path` to the bridge (process `pid`) while a second connection asks /healthz every 5 ms. */
export async function probed(port: number, pid: number, token: string, path: string): Promise<Probed> {
  const client = new HttpClient(port, token, 1);
  const probe = new HttpClient(port, undefined, 1);
  await probe.expect('GET', '/healthz', undefined, 200);
  let running = true;
  let longest = 0;
  let longestCpu = 0;
  let answers = 0;
  const polling = (async () => {
    while (running) {
      // The /healthz in flight when the request ends counts too: a held loop answers it only afterwards.
      const cpu = cpuSecondsOf(pid);
      const r = await probe.expect('GET', '/healthz', undefined, 200);
      longest = Math.max(longest, r.ms);
      longestCpu = Math.max(longestCpu, Math.min(r.ms, (cpuSecondsOf(pid) - cpu) * 1000));
      answers++;
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  })();
  try {
    const reply = await client.request('GET', path);
    running = false;
    await polling;
    let totalResults: number | undefined;
    try {
      totalResults = (JSON.parse(reply.body) as { totalResults?: number }).totalResults;
    } catch {
      totalResults = undefined;
    }
    return { status: reply.status, totalResults, ms: reply.ms, longestHealthzMs: longest, longestHealthzCpuMs: longestCpu, healthzAnswers: answers };
  } finally {
    running = false;
    await polling.catch(() => undefined);
    client.close();
    probe.close();
  }
}
