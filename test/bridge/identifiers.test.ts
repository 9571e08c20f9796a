/**
 * Issue 13: userName and emails are identifiers. They are kept and compared in Unicode normal form C, so
 * that one name typed two ways is one user (409 uniqueness, found by either form), and characters that
 * hide or reorder what is shown (control, bidirectional, zero-width) are refused with 400 invalidValue
 * naming the attribute. Users stored before keep working: they are re-keyed by a migration, and a value a
 * user holds already is not refused again when something else of that user changes.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { Kysely, Migrator, SqliteDialect } from 'kysely';
import { StaticMigrations } from '../../bridge/src/store/migrations';
import { openSqlite } from '../../bridge/src/store/sqlite';
import { patchBody, startBridge, TestBridge, userBody } from '../helpers/bridge';

const NFD = 'Jose\u0301.Nin\u0303o@example.com'; // "José.Niño" with combining accents
const NFC = 'Jos\u00e9.Ni\u00f1o@example.com'; // the same name, precomposed

/** [how the detail describes it, the character] */
const REFUSED: [string, string][] = [
  ['U+0000, a control character', '\u0000'],
  ['U+0007, a control character', '\u0007'],
  ['U+007F, a control character', '\u007f'],
  ['U+0085, a control character', '\u0085'],
  ['U+202E, a bidirectional control', '\u202e'],
  ['U+202A, a bidirectional control', '\u202a'],
  ['U+2066, a bidirectional control', '\u2066'],
  ['U+2069, a bidirectional control', '\u2069'],
  ['U+200F, a bidirectional control', '\u200f'],
  ['U+200B, a zero-width character', '\u200b'],
  ['U+200D, a zero-width character', '\u200d'],
  ['U+2060, a zero-width character', '\u2060'],
  ['U+FEFF, a zero-width character', '\ufeff'],
];

describe('userName and emails as identifiers', () => {
  let b: TestBridge;
  beforeAll(async () => {
    b = await startBridge();
  });
  afterAll(() => b.stop());

  it('when a userName comes decomposed, then it is kept composed (NFC), and the composed form is the same user (409, found by either form)', async () => {
    const created = await b.post('/Users', userBody(NFD, { emails: [{ value: NFD, type: 'work', primary: true }] })).expect(201);
    expect(created.body.userName).toBe(NFC);
    expect(created.body.emails[0].value).toBe(NFC);
    for (const other of [NFC, NFC.toUpperCase(), NFD.toLowerCase()]) {
      const res = await b.post('/Users', userBody(other)).expect(409);
      expect(res.body.scimType).toBe('uniqueness');
    }
    for (const filter of [`userName eq "${NFD}"`, `userName eq "${NFC.toUpperCase()}"`, `emails.value eq "${NFD}"`, `emails[value eq "${NFC}"]`, `userName co "${'Nin\u0303o@'}"`]) {
      const res = await b.get('/Users').query({ filter }).expect(200);
      expect([filter, res.body.totalResults]).toEqual([filter, 1]);
    }
  });

  it.each(REFUSED)('when userName or an email holds %s, then 400 invalidValue names the attribute and the character', async (described, c) => {
    const post = await b.post('/Users', userBody(`evil${c}admin@example.com`)).expect(400);
    expect(post.body.scimType).toBe('invalidValue');
    expect(post.body.detail).toContain(`userName holds ${described}`);
    const email = await b.post('/Users', userBody('plain@example.com', { emails: [{ value: `admin${c}@example.com` }] })).expect(400);
    expect(email.body.detail).toContain(`emails[0].value holds ${described}`);
  });

  it('when PUT or PATCH brings a refused character, then 400 names it and the user is unchanged', async () => {
    const u = (await b.post('/Users', userBody('steady@example.com')).expect(201)).body;
    const put = await b.put(`/Users/${u.id}`, userBody('stea\u200bdy@example.com')).expect(400);
    expect(put.body.detail).toContain('userName holds U+200B');
    const patch = await b.patch(`/Users/${u.id}`, patchBody({ op: 'add', path: 'emails', value: [{ value: 'x\u202e@example.com' }] })).expect(400);
    expect(patch.body.detail).toMatch(/emails\[\d\]\.value holds U\+202E/);
    const read = (await b.get(`/Users/${u.id}`).expect(200)).body;
    expect(read.userName).toBe('steady@example.com');
    expect(read.emails.map((e: { value: string }) => e.value)).toEqual(['steady@example.com']);
  });
});

describe('users stored before the rules', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'scim-bridge-identifiers-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  /** A database at the migration before 0005, holding these users as the previous version wrote them. */
  async function oldDatabase(users: { id: string; userName: string; email?: string }[]): Promise<string> {
    const file = join(dir, 'bridge.db');
    const db = new Kysely({ dialect: new SqliteDialect({ database: new BetterSqlite3(file) }) });
    const { error } = await new Migrator({ db, provider: new StaticMigrations('sqlite') }).migrateTo('0004_substring_index');
    expect(error).toBeUndefined();
    await db.destroy();
    const raw = new BetterSqlite3(file);
    const now = '2026-01-01T00:00:00.000Z';
    for (const u of users) {
      const doc = { schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'], userName: u.userName, ...(u.email ? { emails: [{ value: u.email }] } : {}) };
      raw
        .prepare(`insert into users (id, user_name, user_name_ci, active, doc, created, last_modified, version, status) values (?, ?, ?, 1, ?, ?, ?, 1, 'active')`)
        .run(u.id, u.userName, u.userName.toLowerCase(), JSON.stringify(doc), now, now);
      if (u.email) {
        raw.prepare(`insert into attr_values (res_id, path, idx, v) values (?, 'emails', 0, ''), (?, 'emails.value', 0, ?)`).run(u.id, u.id, u.email.toLowerCase());
      }
    }
    raw.close();
    return file;
  }

  it('when the bridge starts on them, then a decomposed userName is re-keyed: the composed form finds it and cannot be created again', async () => {
    const file = await oldDatabase([{ id: 'u-old', userName: NFD, email: NFD }, { id: 'u-ascii', userName: 'ascii@example.com' }]);
    const b = await startBridge({ SCIM_BRIDGE_DATABASE_URL: `sqlite:${file}` });
    try {
      expect((await b.get('/Users').query({ filter: `userName eq "${NFC}"` }).expect(200)).body.totalResults).toBe(1);
      expect((await b.get('/Users').query({ filter: `emails.value eq "${NFC}"` }).expect(200)).body.totalResults).toBe(1);
      expect((await b.post('/Users', userBody(NFC)).expect(409)).body.scimType).toBe('uniqueness');
      expect((await b.get('/Users').query({ filter: 'userName eq "ascii@example.com"' }).expect(200)).body.totalResults).toBe(1);
    } finally {
      await b.stop();
    }
  });

  it('when two stored users differ only in the form of their userName, then the upgrade keeps both instead of failing', async () => {
    const file = await oldDatabase([{ id: 'u-nfc', userName: NFC }, { id: 'u-nfd', userName: NFD }]);
    const store = openSqlite(file);
    await store.migrate();
    expect((await store.getUser('u-nfc'))?.userName).toBe(NFC);
    expect((await store.getUser('u-nfd'))?.userName).toBe(NFD);
    await store.close();
  });

  it('when a stored user holds a refused character, then it can still be changed otherwise and deprovisioned', async () => {
    const file = await oldDatabase([{ id: 'u-bidi', userName: 'ad\u202emin@example.com', email: 'ad\u202emin@example.com' }]);
    const b = await startBridge({ SCIM_BRIDGE_DATABASE_URL: `sqlite:${file}` });
    try {
      await b.patch('/Users/u-bidi', patchBody({ op: 'replace', path: 'title', value: 'Renamed' })).expect(200);
      const off = await b.patch('/Users/u-bidi', patchBody({ op: 'replace', path: 'active', value: false })).expect(200);
      expect(off.body.active).toBe(false);
      // A new value with such a character is still refused.
      const res = await b.patch('/Users/u-bidi', patchBody({ op: 'replace', path: 'userName', value: 'ad\u202emin2@example.com' })).expect(400);
      expect(res.body.detail).toContain('userName holds U+202E');
    } finally {
      await b.stop();
    }
  });
});
