/**
 * Issue 13: what one request may cost. At 100,000 users (seeded through the store in bulk, in seconds),
 * the worst filters and pages we could build each answer within a generous bound, and none of them holds
 * the event loop: /healthz is answered meanwhile and the loop's longest stall stays short. Before, one `co`
 * filter on emails took 26 s at 80,000 users and /healthz did not answer for 20 s.
 *
 * The bounds are generous on purpose (the machine runs other suites and VMs meanwhile): they tell "the
 * server kept serving" from "the server stopped", not a benchmark figure (npm run bench gives that).
 */
import http from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readDocument, toUserWrite } from '../../bridge/src/scim/resource';
import { resourceTypes } from '../../bridge/src/scim/schemas';
import { openSqlite } from '../../bridge/src/store/sqlite';
import { startBridge, TestBridge } from '../helpers/bridge';

const USERS = 100_000;
/** The longest the event loop may be held while a worst request runs. */
const STALL_BOUND_MS = 500;
/** The most CPU one worst request may take (the bridge refuses a filter that needs more than 10 s of it: 400 tooMany). */
const TIME_BOUND_MS = 20_000;

const userNameOf = (i: number) => `user${i}@example.com`;

/**
 * 100,000 users as toUserWrite makes them, built from one template (toUserWrite for each would take longer
 * than the insert): every `§` in the template's document and index rows is the user's number.
 */
function users(): ReturnType<typeof toUserWrite>[] {
  const template = JSON.stringify(
    toUserWrite(
      readDocument(resourceTypes.User, {
        userName: 'user§@example.com',
        externalId: 'ext-§',
        displayName: 'User §',
        name: { givenName: 'Given§', familyName: 'Family§' },
        emails: [
          { value: 'user§@example.com', type: 'work', primary: true },
          { value: 'home§@example.net', type: 'home' },
        ],
        title: 'Title§',
        active: true,
      }),
    ),
  );
  const [head, ...rest] = template.split('§');
  return Array.from({ length: USERS }, (_, i) => JSON.parse(head + rest.map((part) => `${i}${part}`).join('')));
}

/**
 * Runs `work` while watching the event loop. `stall`: the longest gap between two ticks of a 5 ms timer
 * (less its 5 ms), counting no more than the CPU time this process used in the gap: the time the loop was
 * held, not the time the machine (busy with other suites and VMs) left this process waiting. `healthzDuring`:
 * how many /healthz answers (asked every 25 ms on a keep-alive connection) arrived while the work was under way.
 */
async function watched<T>(url: string, work: () => Promise<T>): Promise<{ result: T; stall: number; healthzDuring: number; ms: number }> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const cpuMs = () => {
    const { user, system } = process.cpuUsage();
    return (user + system) / 1000;
  };
  let stall = 0;
  let [lastWall, lastCpu] = [performance.now(), cpuMs()];
  const tick = setInterval(() => {
    const [wall, cpu] = [performance.now(), cpuMs()];
    stall = Math.max(stall, Math.min(wall - lastWall, cpu - lastCpu) - 5);
    [lastWall, lastCpu] = [wall, cpu];
  }, 5);
  let working = false;
  let healthzDuring = 0;
  let running = true;
  const poll = (async () => {
    while (running) {
      await new Promise<void>((resolve, reject) => {
        http.get(`${url}/healthz`, { agent }, (res) => res.resume().on('end', resolve)).on('error', reject);
      });
      if (working) healthzDuring++;
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  })();
  try {
    // Both watchers running before the work starts, and reporting after it ends (a stall shows on the next tick).
    await new Promise((resolve) => setTimeout(resolve, 30));
    const [began, beganCpu] = [performance.now(), cpuMs()];
    working = true;
    const result = await work();
    working = false;
    // The request's cost as the bridge's budget counts it: CPU time (the bridge runs in this process), never more
    // than the clock. On a machine whose cores the VM boot test holds, the clock alone would measure the neighbours.
    const ms = Math.min(performance.now() - began, cpuMs() - beganCpu);
    await new Promise((resolve) => setTimeout(resolve, 30));
    return { result, stall, healthzDuring, ms };
  } finally {
    clearInterval(tick);
    running = false;
    await poll;
    agent.destroy();
  }
}

const co = (attr: string, n: number, value: (i: number) => string) => Array.from({ length: n }, (_, i) => `${attr} co "${value(i)}"`);

describe('the cost of one request at 100,000 users', () => {
  let dir: string;
  let b: TestBridge;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'scim-bridge-cost-'));
    const file = join(dir, 'bridge.db');
    const store = openSqlite(file);
    await store.migrate();
    await store.bulkInsertUsers(users().map((u) => ({ ...u, status: 'active' as const })));
    await store.close();
    b = await startBridge({ SCIM_BRIDGE_DATABASE_URL: `sqlite:${file}` });
  }, 240_000);
  afterAll(async () => {
    await b?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('when the directory is seeded, then it holds the 100,000 users', async () => {
    const res = await b.get('/Users').query({ count: 1, filter: `userName eq "${userNameOf(USERS - 1)}"` }).expect(200);
    expect(res.body.totalResults).toBe(1);
    expect((await b.get('/Users').query({ count: 0 }).expect(200)).body.totalResults).toBe(USERS);
  });

  const all = Array.from({ length: USERS }, (_, i) => i);
  const folded = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
  // [what, query, expected totalResults, the first user of the page (its number), when it is checked]
  const worst: [string, Record<string, string | number>, () => number, (() => number) | undefined][] = [
    ["the issue's filter at the term limit: co terms in emails[...] (19 and the value path itself)", { filter: `emails[${co('value', 19, (i) => `${String.fromCharCode(97 + i)}${i}x`).join(' or ')}]` }, () => 0, undefined],
    ['20 co terms that every user matches, and-ed: no index can narrow them, each is checked on every user', { filter: [...co('userName', 5, () => 'example'), ...co('emails.value', 5, () => 'xample.'), ...co('displayName', 5, () => 'user'), ...co('name.familyName', 5, () => 'amily')].join(' and ') }, () => USERS, undefined],
    ['20 negations, and-ed, each true for every user', { filter: Array.from({ length: 20 }, (_, i) => `not (emails.value eq "nobody${i}@example.com")`).join(' and ') }, () => USERS, undefined],
    ['20 pr terms on multi-valued and complex attributes', { filter: Array.from({ length: 20 }, (_, i) => ['title pr', 'emails pr', 'name pr', 'emails.type pr', 'name.givenName pr'][i % 5]).join(' and ') }, () => USERS, undefined],
    ['an element filter of short substrings whose sub-attributes alternate, so that no index narrows it and no lookup is shared', { filter: `emails[${Array.from({ length: 6 }, (_, i) => `(value co "z${i}" and type co "or" and primary pr)`).join(' or ')}]` }, () => 0, undefined],
    ['20 one-character co terms (shorter than a trigram), or-ed, none matching', { filter: Array.from({ length: 20 }, (_, i) => `${['userName', 'title', 'emails.value', 'displayName'][i % 4]} co "${'qjvz'[i % 4]}"`).join(' or ') }, () => 0, undefined],
    [
      'sw on the sorted attribute with a large startIndex and the largest page',
      { filter: 'userName sw "user"', sortBy: 'userName', startIndex: 90_001, count: 1000 },
      () => USERS,
      () => all.map((i) => [userNameOf(i), i] as const).sort((x, y) => folded(x[0], y[0]))[90_000][1],
    ],
    ['an unfiltered list at its very end, with the largest page', { startIndex: USERS - 999, count: 1000 }, () => USERS, () => USERS - 1000],
    [
      'a negation sorted by displayName descending, deep into the list',
      { filter: 'not (title eq "title3")', sortBy: 'displayName', sortOrder: 'descending', startIndex: 50_000, count: 1000 },
      () => USERS - 1,
      () => all.filter((i) => i !== 3).map((i) => [`user ${i}`, i] as const).sort((x, y) => folded(y[0], x[0]))[49_999][1],
    ],
    [
      'nested not around an or-chain of short substrings',
      { filter: `${'not ('.repeat(10)}userName co "5" or emails.value co "7"${')'.repeat(10)}` },
      () => all.filter((i) => /[57]/.test(String(i))).length,
      undefined,
    ],
  ];

  it.each(worst)('when the worst request is %s, then it is answered in time and the server keeps serving meanwhile', async (_what, query, total, first) => {
    const { result: res, stall, healthzDuring, ms } = await watched(b.url, () => b.get('/Users').query({ attributes: 'userName', ...query }));
    expect(ms).toBeLessThan(TIME_BOUND_MS);
    expect(stall).toBeLessThan(STALL_BOUND_MS);
    // A request that takes a while lets /healthz through meanwhile (a held loop answers it only afterwards).
    if (ms > 300) expect(healthzDuring).toBeGreaterThan(0);
    if (res.status === 400) {
      // A filter that needs more than the bridge's budget is refused, saying how to narrow it.
      expect(res.body.scimType).toBe('tooMany');
      expect(res.body.detail).toMatch(/narrow/i);
      return;
    }
    expect(res.status).toBe(200);
    expect(res.body.totalResults).toBe(total());
    if (first) expect(res.body.Resources[0].userName).toBe(userNameOf(first()));
  }, 120_000); // jest's limit by the clock, not the bound (asserted above in CPU time)

  it('when a filter holds more terms than the limit, then 400 invalidFilter says the limit', async () => {
    const filter = Array.from({ length: 21 }, (_, i) => `userName eq "user${i}@example.com"`).join(' or ');
    const res = await b.get('/Users').query({ filter }).expect(400);
    expect(res.body.scimType).toBe('invalidFilter');
    expect(res.body.detail).toMatch(/at most 20 comparisons/);
  });
});
