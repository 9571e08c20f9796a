/**
 * PATCH /Users end to end (RFC 7644 §3.5.2): every form real IdPs send, and the errors that must leave
 * the user exactly as it was.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Response } from 'supertest';
import { ENTERPRISE, patchBody, startBridge, TestBridge, TOKEN, USER_SCHEMA, userBody, STORES } from '../helpers/bridge';

type Json = Record<string, any>;

const ERROR_URN = 'urn:ietf:params:scim:api:messages:2.0:Error';

describe.each(STORES)('PATCH /Users on %s', (store) => {
  let b: TestBridge;
  let n = 0;

  beforeAll(async () => {
    b = await startBridge({}, { store });
  });
  afterAll(() => b.stop());

  /** A fresh user with a unique userName (first.last@example.com) who has joined the application (active), so that deprovisioning suspends it. */
  async function newUser(extra: Record<string, unknown> = {}): Promise<Json> {
    n += 1;
    const res = await b.post('/Users', userBody(`first${n}.last${n}@example.com`, extra)).expect(201);
    await b.join(res.body.id);
    return (await b.get(`/Users/${res.body.id}`).expect(200)).body;
  }

  async function getUser(id: string): Promise<Json> {
    return (await b.get(`/Users/${id}`).expect(200)).body;
  }

  /** PATCH that must succeed: 200, the user in the body, ETag = meta.version, and GET agrees. */
  async function patchOk(id: string, ...ops: Record<string, unknown>[]): Promise<Json> {
    const res = await b.patch(`/Users/${id}`, patchBody(...ops));
    if (res.status !== 200) throw new Error(`PATCH expected 200, got ${res.status}: ${JSON.stringify(res.body)}`);
    expect(res.headers['content-type']).toMatch(/application\/scim\+json/);
    expect(res.body.id).toBe(id);
    expect(res.headers.etag).toBe(res.body.meta.version);
    const read = await getUser(id);
    expect(read).toEqual(res.body);
    return res.body;
  }

  function expectScimError(res: Response, status: number, scimType?: string): void {
    expect(res.status).toBe(status);
    expect(res.body.schemas).toEqual([ERROR_URN]);
    expect(res.body.status).toBe(String(status));
    if (scimType !== undefined) expect(res.body.scimType).toBe(scimType);
    expect(typeof res.body.detail).toBe('string');
    expect(res.body.detail.length).toBeGreaterThan(0);
  }

  /** A PATCH that must fail with `status`/`scimType` and leave the user exactly as it was. */
  async function patchFails(id: string, body: unknown, status: number, scimType?: string): Promise<Response> {
    const before = await getUser(id);
    const res = await b.patch(`/Users/${id}`, body);
    expectScimError(res, status, scimType);
    const after = await getUser(id);
    expect(after).toEqual(before);
    return res;
  }

  const versionOf = (u: Json) => Number(/^W\/"(\d+)"$/.exec(u.meta.version)![1]);
  const emailsOf = (u: Json) => (u.emails ?? []) as Json[];
  const primaryEmails = (u: Json) => emailsOf(u).filter((e) => e.primary === true);

  async function findIds(filter: string): Promise<string[]> {
    const res = await b.get('/Users').query({ filter }).expect(200);
    return (res.body.Resources as Json[]).map((r) => r.id);
  }

  // ---- add / replace / remove, with and without path ----

  describe('simple attributes', () => {
    it('when replace has a path to a simple attribute, then it is set and the version moves on', async () => {
      const u = await newUser();
      const out = await patchOk(u.id, { op: 'replace', path: 'displayName', value: 'Ada L.' });
      expect(out.displayName).toBe('Ada L.');
      expect(versionOf(out)).toBe(versionOf(u) + 1);
      expect(out.userName).toBe(u.userName);
      expect(out.meta.created).toBe(u.meta.created);
    });

    it('when add has a path to an unset simple attribute, then it is set', async () => {
      const u = await newUser();
      expect(u.title).toBeUndefined();
      const out = await patchOk(u.id, { op: 'add', path: 'title', value: 'Engineer' });
      expect(out.title).toBe('Engineer');
    });

    it('when add has a path to a set simple attribute, then the value is replaced', async () => {
      const u = await newUser({ title: 'Intern' });
      const out = await patchOk(u.id, { op: 'add', path: 'title', value: 'Engineer' });
      expect(out.title).toBe('Engineer');
    });

    it('when remove has a path to a simple attribute, then it is gone', async () => {
      const u = await newUser({ title: 'Intern', nickName: 'Nick' });
      const out = await patchOk(u.id, { op: 'remove', path: 'title' });
      expect(out).not.toHaveProperty('title');
      expect(out.nickName).toBe('Nick');
    });

    it('when replace has no path, then every attribute in the value is set and the others kept', async () => {
      const u = await newUser({ title: 'Intern' });
      const out = await patchOk(u.id, { op: 'replace', value: { displayName: 'No Path', nickName: 'NP' } });
      expect(out.displayName).toBe('No Path');
      expect(out.nickName).toBe('NP');
      expect(out.title).toBe('Intern');
      expect(out.name).toEqual(u.name);
    });

    it('when add has no path, then simple attributes are set and multi-valued ones are appended', async () => {
      const u = await newUser();
      const out = await patchOk(u.id, {
        op: 'add',
        value: { nickName: 'Added', emails: [{ value: 'home@example.org', type: 'home' }] },
      });
      expect(out.nickName).toBe('Added');
      expect(emailsOf(out)).toHaveLength(2);
      expect(emailsOf(out).map((e) => e.value)).toEqual([u.userName, 'home@example.org']);
    });

    it('when externalId is replaced, then the user is found by the new externalId and not by the old', async () => {
      const u = await newUser({ externalId: 'ext-old-1' });
      await patchOk(u.id, { op: 'replace', path: 'externalId', value: 'ext-new-1' });
      expect(await findIds('externalId eq "ext-new-1"')).toEqual([u.id]);
      expect(await findIds('externalId eq "ext-old-1"')).toEqual([]);
    });

    it('when userName is replaced, then the user is found by the new userName only', async () => {
      const u = await newUser();
      const out = await patchOk(u.id, { op: 'replace', path: 'userName', value: 'renamed.user@example.com' });
      expect(out.userName).toBe('renamed.user@example.com');
      expect(await findIds('userName eq "RENAMED.user@example.com"')).toEqual([u.id]);
      expect(await findIds(`userName eq "${u.userName}"`)).toEqual([]);
    });

    it('when userName is replaced by one another user has (in other case), then 409 uniqueness and nothing changes', async () => {
      const a = await newUser();
      const c = await newUser();
      await patchFails(c.id, patchBody({ op: 'replace', path: 'userName', value: a.userName.toUpperCase() }), 409, 'uniqueness');
    });

    it('when the user does not exist, then 404', async () => {
      const res = await b.patch('/Users/00000000-0000-0000-0000-000000000000', patchBody({ op: 'replace', path: 'title', value: 'x' }));
      expectScimError(res, 404);
    });

    it('when PATCH is sent to /scim/v2/Users/{id}, then it is applied the same way', async () => {
      const u = await newUser();
      const res = await b.patch(`/scim/v2/Users/${u.id}`, patchBody({ op: 'replace', path: 'nickName', value: 'v2' })).expect(200);
      expect(res.body.nickName).toBe('v2');
      expect((await getUser(u.id)).nickName).toBe('v2');
    });
  });

  // ---- sub-attributes ----

  describe('sub-attributes', () => {
    it('when name.givenName is replaced, then only givenName changes', async () => {
      const u = await newUser();
      const out = await patchOk(u.id, { op: 'replace', path: 'name.givenName', value: 'Augusta' });
      // name.formatted was composed from the parts (the IdP sent none), so it follows the change.
      expect(out.name).toEqual({ ...u.name, givenName: 'Augusta', formatted: `Augusta ${u.name.familyName}` });
    });

    it('when name.middleName is added, then it joins the other name parts', async () => {
      const u = await newUser();
      const out = await patchOk(u.id, { op: 'add', path: 'name.middleName', value: 'Ada' });
      expect(out.name).toEqual({ ...u.name, middleName: 'Ada' });
    });

    it('when name.familyName is removed, then givenName stays', async () => {
      const u = await newUser();
      const out = await patchOk(u.id, { op: 'remove', path: 'name.familyName' });
      expect(out.name).toEqual({ givenName: u.name.givenName, formatted: u.name.givenName });
    });

    it('when replace targets the complex name with some sub-attributes, then those change and the rest stay', async () => {
      const u = await newUser();
      const out = await patchOk(u.id, { op: 'replace', path: 'name', value: { givenName: 'G2', formatted: 'G2 F' } });
      expect(out.name).toEqual({ givenName: 'G2', familyName: u.name.familyName, formatted: 'G2 F' });
    });

    it('when the whole name is removed, then the user has no name', async () => {
      const u = await newUser();
      const out = await patchOk(u.id, { op: 'remove', path: 'name' });
      expect(out).not.toHaveProperty('name');
    });

    it('when attribute names in a path differ in case, then they still resolve', async () => {
      const u = await newUser();
      const out = await patchOk(u.id, { op: 'replace', path: 'NAME.GIVENNAME', value: 'Upper' });
      expect(out.name.givenName).toBe('Upper');
    });

    it('when the path is qualified with the core schema URN, then it resolves to the core attribute', async () => {
      const u = await newUser();
      const out = await patchOk(u.id, { op: 'replace', path: `${USER_SCHEMA}:name.familyName`, value: 'Byron' });
      expect(out.name.familyName).toBe('Byron');
    });
  });

  // ---- value-path filters ----

  describe('value-path filters', () => {
    it('when emails[type eq "work"].value is replaced, then the work email changes and the index follows', async () => {
      const u = await newUser({
        emails: [
          { value: 'w.old@example.com', type: 'work', primary: true },
          { value: 'h@example.org', type: 'home' },
        ],
      });
      const out = await patchOk(u.id, { op: 'replace', path: 'emails[type eq "work"].value', value: 'w.new@example.com' });
      expect(emailsOf(out)).toEqual([
        { value: 'w.new@example.com', type: 'work', primary: true },
        { value: 'h@example.org', type: 'home' },
      ]);
      expect(await findIds('emails.value eq "w.new@example.com"')).toEqual([u.id]);
      expect(await findIds('emails.value eq "w.old@example.com"')).toEqual([]);
      expect(await findIds('emails[type eq "work" and value eq "w.new@example.com"]')).toEqual([u.id]);
    });

    it('when the value filter compares case-insensitively (type eq "WORK"), then it still matches', async () => {
      const u = await newUser();
      const out = await patchOk(u.id, { op: 'replace', path: 'emails[type eq "WORK"].display', value: 'Work mail' });
      expect(emailsOf(out)).toHaveLength(1);
      expect(emailsOf(out)[0]).toEqual({ value: u.userName, type: 'work', primary: true, display: 'Work mail' });
    });

    it('when addresses[type eq "work"].locality is replaced, then only that address changes', async () => {
      const u = await newUser({
        addresses: [
          { type: 'work', streetAddress: '1 Main St', locality: 'Springfield', country: 'US' },
          { type: 'home', locality: 'Shelbyville' },
        ],
      });
      const out = await patchOk(u.id, { op: 'replace', path: 'addresses[type eq "work"].locality', value: 'Capital City' });
      expect(out.addresses).toEqual([
        { type: 'work', streetAddress: '1 Main St', locality: 'Capital City', country: 'US' },
        { type: 'home', locality: 'Shelbyville' },
      ]);
    });

    it('when addresses[type eq "work"].locality is added to a user with no addresses, then a work address is created', async () => {
      const u = await newUser();
      expect(u.addresses).toBeUndefined();
      const out = await patchOk(u.id, { op: 'add', path: 'addresses[type eq "work"].locality', value: 'Redmond' });
      expect(out.addresses).toEqual([{ type: 'work', locality: 'Redmond' }]);
    });

    it('when emails[type eq "home"] is removed, then the home email is gone and the work email stays', async () => {
      const u = await newUser({
        emails: [
          { value: 'removal.w@example.com', type: 'work', primary: true },
          { value: 'removal.h@example.org', type: 'home' },
        ],
      });
      expect(await findIds('emails.value eq "removal.h@example.org"')).toEqual([u.id]);
      const out = await patchOk(u.id, { op: 'remove', path: 'emails[type eq "home"]' });
      expect(emailsOf(out)).toEqual([{ value: 'removal.w@example.com', type: 'work', primary: true }]);
      expect(await findIds('emails.value eq "removal.h@example.org"')).toEqual([]);
      expect(await findIds('emails.value eq "removal.w@example.com"')).toEqual([u.id]);
    });

    it('when the only email is removed by filter, then the user has no emails', async () => {
      const u = await newUser();
      const out = await patchOk(u.id, { op: 'remove', path: 'emails[type eq "work"]' });
      expect(out).not.toHaveProperty('emails');
    });

    it('when a value filter with "and" replaces a whole element, then the element becomes the value', async () => {
      const u = await newUser({
        emails: [
          { value: 'a@example.com', type: 'work', primary: true },
          { value: 'b@example.com', type: 'other' },
        ],
      });
      const out = await patchOk(u.id, {
        op: 'replace',
        path: 'emails[type eq "other" and value eq "b@example.com"]',
        value: { value: 'c@example.com', type: 'home' },
      });
      expect(emailsOf(out)).toEqual([
        { value: 'a@example.com', type: 'work', primary: true },
        { value: 'c@example.com', type: 'home' },
      ]);
    });

    it('when Entra adds emails[type eq "work"].value to a user with no work email, then the work email is created', async () => {
      const u = await newUser({ emails: [{ value: 'home.only@example.org', type: 'home' }] });
      const out = await patchOk(u.id, { op: 'add', path: 'emails[type eq "work"].value', value: 'created.work@example.com' });
      expect(emailsOf(out)).toHaveLength(2);
      expect(emailsOf(out)).toContainEqual({ value: 'home.only@example.org', type: 'home' });
      expect(emailsOf(out)).toContainEqual({ value: 'created.work@example.com', type: 'work' });
      expect(await findIds('emails[type eq "work" and value eq "created.work@example.com"]')).toEqual([u.id]);
    });

    it('when Entra adds emails[type eq "work"].value to a user with no emails at all, then the work email is created', async () => {
      const u = await newUser({ emails: undefined });
      expect(u.emails).toBeUndefined();
      const out = await patchOk(u.id, { op: 'Add', path: 'emails[type eq "work"].value', value: 'first.work@example.com' });
      expect(emailsOf(out)).toEqual([{ type: 'work', value: 'first.work@example.com' }]);
    });

    it('when a replace value filter with a non-equality matches nothing, then 400 noTarget and nothing changes', async () => {
      const u = await newUser();
      await patchFails(u.id, patchBody({ op: 'replace', path: 'emails[value co "nowhere.invalid"].value', value: 'x@example.com' }), 400, 'noTarget');
      await patchFails(u.id, patchBody({ op: 'replace', path: 'emails[type ne "work"].display', value: 'x' }), 400, 'noTarget');
    });

    it('when a remove value filter matches nothing, then the user is unchanged apart from its version', async () => {
      const u = await newUser();
      const res = await b.patch(`/Users/${u.id}`, patchBody({ op: 'remove', path: 'emails[type eq "home"]' }));
      // RFC 7644 allows either 200 (nothing to remove) or 400 noTarget; the emails must survive in both cases.
      expect([200, 400]).toContain(res.status);
      if (res.status === 400) expect(res.body.scimType).toBe('noTarget');
      expect(emailsOf(await getUser(u.id))).toEqual(emailsOf(u));
    });

    it('when the value filter is malformed, then 400 invalidPath and nothing changes', async () => {
      const u = await newUser();
      await patchFails(u.id, patchBody({ op: 'replace', path: 'emails[type eq].value', value: 'x' }), 400, 'invalidPath');
      await patchFails(u.id, patchBody({ op: 'replace', path: 'emails[type eq "work"', value: 'x' }), 400, 'invalidPath');
    });

    it('when the value filter names an unknown sub-attribute, then 400 invalidPath', async () => {
      const u = await newUser();
      await patchFails(u.id, patchBody({ op: 'replace', path: 'emails[colour eq "blue"].value', value: 'x' }), 400, 'invalidPath');
      await patchFails(u.id, patchBody({ op: 'replace', path: 'emails[type eq "work"].colour', value: 'x' }), 400, 'invalidPath');
    });
  });

  // ---- multi-valued attributes and primary ----

  describe('multi-valued attributes and primary', () => {
    it('when a new primary email is added, then the old one is no longer primary', async () => {
      const u = await newUser();
      expect(primaryEmails(u)).toEqual([{ value: u.userName, type: 'work', primary: true }]);
      const out = await patchOk(u.id, { op: 'add', path: 'emails', value: [{ value: 'new.primary@example.org', type: 'home', primary: true }] });
      expect(emailsOf(out)).toHaveLength(2);
      expect(primaryEmails(out)).toEqual([{ value: 'new.primary@example.org', type: 'home', primary: true }]);
      const old = emailsOf(out).find((e) => e.value === u.userName)!;
      expect(old.primary).not.toBe(true);
      expect(await findIds('emails[primary eq true and value eq "new.primary@example.org"]')).toEqual([u.id]);
      expect(await findIds(`emails[primary eq true and value eq "${u.userName}"]`)).toEqual([]);
    });

    it('when a new primary email is added without a path, then the old one is no longer primary', async () => {
      const u = await newUser();
      const out = await patchOk(u.id, { op: 'add', value: { emails: [{ value: 'np.nopath@example.org', type: 'other', primary: true }] } });
      expect(primaryEmails(out).map((e) => e.value)).toEqual(['np.nopath@example.org']);
      expect(emailsOf(out)).toHaveLength(2);
    });

    it('when primary is set through a value filter, then it moves from the old primary', async () => {
      const u = await newUser({
        emails: [
          { value: 'p1@example.com', type: 'work', primary: true },
          { value: 'p2@example.org', type: 'home' },
        ],
      });
      const out = await patchOk(u.id, { op: 'replace', path: 'emails[type eq "home"].primary', value: true });
      expect(primaryEmails(out).map((e) => e.value)).toEqual(['p2@example.org']);
    });

    it('when the same email is added again, then it is not duplicated', async () => {
      const u = await newUser();
      const out = await patchOk(u.id, { op: 'add', path: 'emails', value: [{ value: u.userName, type: 'work' }] });
      expect(emailsOf(out)).toHaveLength(1);
      expect(emailsOf(out)[0].value).toBe(u.userName);
    });

    it('when replace has a path to a multi-valued attribute, then the whole list is replaced', async () => {
      const u = await newUser({ phoneNumbers: [{ value: '+1 555 0100', type: 'work' }, { value: '+1 555 0101', type: 'mobile' }] });
      const out = await patchOk(u.id, { op: 'replace', path: 'phoneNumbers', value: [{ value: '+44 20 7946 0000', type: 'home' }] });
      expect(out.phoneNumbers).toEqual([{ value: '+44 20 7946 0000', type: 'home' }]);
    });

    it('when replace sends two primary emails, then 400 invalidValue and nothing changes', async () => {
      const u = await newUser();
      await patchFails(
        u.id,
        patchBody({
          op: 'replace',
          path: 'emails',
          value: [
            { value: 'x1@example.com', primary: true },
            { value: 'x2@example.com', primary: true },
          ],
        }),
        400,
        'invalidValue',
      );
    });

    it('when remove of a multi-valued attribute carries a value list, then only those values go', async () => {
      const u = await newUser({
        emails: [
          { value: 'keep@example.com', type: 'work', primary: true },
          { value: 'drop@example.org', type: 'home' },
        ],
      });
      const out = await patchOk(u.id, { op: 'remove', path: 'emails', value: [{ value: 'drop@example.org', type: 'home' }] });
      expect(emailsOf(out)).toEqual([{ value: 'keep@example.com', type: 'work', primary: true }]);
    });

    it('when remove targets a whole multi-valued attribute, then all its values go', async () => {
      const u = await newUser({ phoneNumbers: [{ value: '1', type: 'work' }, { value: '2', type: 'home' }] });
      const out = await patchOk(u.id, { op: 'remove', path: 'phoneNumbers' });
      expect(out).not.toHaveProperty('phoneNumbers');
    });
  });

  // ---- the enterprise extension ----

  describe('the enterprise extension', () => {
    it('when employeeNumber is added by its URN path, then the user carries the extension and its schema', async () => {
      const u = await newUser();
      expect(u.schemas).toEqual([USER_SCHEMA]);
      const out = await patchOk(u.id, { op: 'add', path: `${ENTERPRISE}:employeeNumber`, value: '701984' });
      expect(out[ENTERPRISE]).toEqual({ employeeNumber: '701984' });
      expect(out.schemas).toEqual([USER_SCHEMA, ENTERPRISE]);
      expect(await findIds(`${ENTERPRISE}:employeeNumber eq "701984"`)).toEqual([u.id]);
    });

    it('when department is replaced by its URN path, then the other extension attributes stay', async () => {
      const u = await newUser({ [ENTERPRISE]: { employeeNumber: '1', department: 'Sales' } });
      const out = await patchOk(u.id, { op: 'replace', path: `${ENTERPRISE}:department`, value: 'R&D' });
      expect(out[ENTERPRISE]).toEqual({ employeeNumber: '1', department: 'R&D' });
    });

    it('when Entra sets the manager as [{"$ref":null,"value":id}], then manager.value is that id', async () => {
      const boss = await newUser();
      const u = await newUser();
      const out = await patchOk(u.id, { op: 'Add', path: `${ENTERPRISE}:manager`, value: [{ $ref: null, value: boss.id }] });
      expect(out[ENTERPRISE].manager.value).toBe(boss.id);
      expect(await findIds(`${ENTERPRISE}:manager.value eq "${boss.id}"`)).toEqual([u.id]);
    });

    it('when the manager is replaced by a bare id string, then manager.value is that id', async () => {
      const boss = await newUser();
      const u = await newUser({ [ENTERPRISE]: { manager: { value: 'someone-else' } } });
      const out = await patchOk(u.id, { op: 'replace', path: `${ENTERPRISE}:manager`, value: boss.id });
      expect(out[ENTERPRISE].manager).toEqual({ value: boss.id });
    });

    it('when the manager is removed by its URN path, then the user has no manager and keeps the rest', async () => {
      const u = await newUser({ [ENTERPRISE]: { employeeNumber: '5', manager: { value: 'mgr-1' } } });
      const out = await patchOk(u.id, { op: 'remove', path: `${ENTERPRISE}:manager` });
      expect(out[ENTERPRISE]).toEqual({ employeeNumber: '5' });
    });

    it('when the whole extension object is added by its URN path, then its attributes are set', async () => {
      const u = await newUser();
      const out = await patchOk(u.id, { op: 'add', path: ENTERPRISE, value: { employeeNumber: '42', costCenter: 'CC-9', department: 'Ops' } });
      expect(out[ENTERPRISE]).toEqual({ employeeNumber: '42', costCenter: 'CC-9', department: 'Ops' });
      expect(out.schemas).toContain(ENTERPRISE);
    });

    it('when the whole extension object is sent in a no-path replace, then its attributes are set', async () => {
      const u = await newUser({ [ENTERPRISE]: { employeeNumber: '1', division: 'Old' } });
      const out = await patchOk(u.id, { op: 'replace', value: { [ENTERPRISE]: { division: 'New', organization: 'Org' } } });
      expect(out[ENTERPRISE].division).toBe('New');
      expect(out[ENTERPRISE].organization).toBe('Org');
    });

    describe('an extension object that carries its own "schemas" or an unknown key', () => {
      /** What some IdPs send as the enterprise extension's value: its schemas and attributes we do not know, beside one we do. */
      const extension = { schemas: [ENTERPRISE], department: 'Ops', favouriteColour: 'blue', 'not an attribute!': 1 };
      const forms: [string, (id: string) => Promise<Json>][] = [
        ['PATCH add with the URN as path', (id) => patchOk(id, { op: 'add', path: ENTERPRISE, value: extension })],
        ['PATCH replace with the URN as path', (id) => patchOk(id, { op: 'replace', path: ENTERPRISE, value: extension })],
        ['PATCH replace without path', (id) => patchOk(id, { op: 'replace', value: { [ENTERPRISE]: extension } })],
      ];

      it('when a user is POSTed with it, then the known attributes are kept and the rest ignored', async () => {
        const created = (await b.post('/Users', userBody(`ext.post${++n}@example.com`, { [ENTERPRISE]: extension })).expect(201)).body;
        expect(created[ENTERPRISE]).toEqual({ department: 'Ops' });
      });

      it.each(forms)('when it is sent by %s, then it is ignored the same way as in a POST', async (_how, patch) => {
        const u = await newUser({ [ENTERPRISE]: { employeeNumber: '9' } });
        const out = await patch(u.id);
        expect(out[ENTERPRISE]).toEqual({ employeeNumber: '9', department: 'Ops' });
        expect(out.schemas).toEqual([USER_SCHEMA, ENTERPRISE]);
      });

      it('when a known attribute in it has a wrong value, then still 400 invalidValue, as in a POST', async () => {
        const u = await newUser();
        await patchFails(u.id, patchBody({ op: 'add', path: ENTERPRISE, value: { schemas: [ENTERPRISE], department: { not: 'a string' } } }), 400, 'invalidValue');
        expectScimError(await b.post('/Users', userBody(`ext.bad${++n}@example.com`, { [ENTERPRISE]: { department: { not: 'a string' } } })), 400, 'invalidValue');
      });
    });

    it('when the whole extension is removed by its URN, then the user no longer lists it', async () => {
      const u = await newUser({ [ENTERPRISE]: { employeeNumber: '77' } });
      expect(u.schemas).toContain(ENTERPRISE);
      const out = await patchOk(u.id, { op: 'remove', path: ENTERPRISE });
      expect(out).not.toHaveProperty(ENTERPRISE);
      expect(out.schemas).toEqual([USER_SCHEMA]);
      expect(await findIds(`${ENTERPRISE}:employeeNumber eq "77"`)).toEqual([]);
    });

    it('when employeeNumber is sent as a number, then it is stored as a string', async () => {
      const u = await newUser();
      const out = await patchOk(u.id, { op: 'replace', path: `${ENTERPRISE}:employeeNumber`, value: 1234 });
      expect(out[ENTERPRISE].employeeNumber).toBe('1234');
    });
  });

  // ---- what IdPs actually send ----

  describe('IdP dialects', () => {
    it.each(['Replace', 'REPLACE', 'rePlace'])('when the op is "%s", then it is a replace', async (op) => {
      const u = await newUser();
      const out = await patchOk(u.id, { op, path: 'nickName', value: `nick-${op}` });
      expect(out.nickName).toBe(`nick-${op}`);
    });

    it('when the ops are "Add" and "Remove", then they add and remove', async () => {
      const u = await newUser({ title: 'Old title' });
      const out = await patchOk(u.id, { op: 'Add', path: 'nickName', value: 'Nick' }, { op: 'Remove', path: 'title' });
      expect(out.nickName).toBe('Nick');
      expect(out).not.toHaveProperty('title');
    });

    it.each(['False', 'false', 'FALSE'])('when active is replaced with the string "%s" by path, then the user is inactive', async (text) => {
      const u = await newUser();
      expect(u.active).toBe(true);
      const out = await patchOk(u.id, { op: 'Replace', path: 'active', value: text });
      expect(out.active).toBe(false);
      expect(await findIds(`active eq false and userName eq "${u.userName}"`)).toEqual([u.id]);
    });

    it('when active is "False" in a no-path replace value, then the user is inactive, and "True" brings it back', async () => {
      const u = await newUser();
      const off = await patchOk(u.id, { op: 'Replace', value: { active: 'False' } });
      expect(off.active).toBe(false);
      expect(await findIds(`active eq false and userName eq "${u.userName}"`)).toEqual([u.id]);
      const on = await patchOk(u.id, { op: 'Replace', value: { active: 'True' } });
      expect(on.active).toBe(true);
      expect(await findIds(`active eq true and userName eq "${u.userName}"`)).toEqual([u.id]);
    });

    it('when active is a boolean false, then the user is inactive', async () => {
      const u = await newUser();
      const out = await patchOk(u.id, { op: 'replace', path: 'active', value: false });
      expect(out.active).toBe(false);
    });

    it('when active is not a boolean ("maybe"), then 400 invalidValue and nothing changes', async () => {
      const u = await newUser();
      await patchFails(u.id, patchBody({ op: 'replace', path: 'active', value: 'maybe' }), 400, 'invalidValue');
    });

    it('when a no-path replace has dotted keys (name.givenName, the enterprise employeeNumber), then each is applied', async () => {
      const u = await newUser({ [ENTERPRISE]: { department: 'Kept' } });
      const out = await patchOk(u.id, {
        op: 'replace',
        value: { 'name.givenName': 'X', [`${ENTERPRISE}:employeeNumber`]: '7' },
      });
      expect(out.name).toEqual({ ...u.name, givenName: 'X', formatted: `X ${u.name.familyName}` });
      expect(out[ENTERPRISE]).toEqual({ department: 'Kept', employeeNumber: '7' });
      // The dotted keys are paths, not attribute names to keep as they are.
      expect(Object.keys(out)).not.toContain('name.givenName');
      expect(Object.keys(out)).not.toContain(`${ENTERPRISE}:employeeNumber`);
    });

    it('when a no-path replace has a value-path key (emails[type eq "work"].value), then it is applied', async () => {
      const u = await newUser();
      const out = await patchOk(u.id, { op: 'replace', value: { 'emails[type eq "work"].value': 'dotted.work@example.com' } });
      expect(emailsOf(out)).toEqual([{ value: 'dotted.work@example.com', type: 'work', primary: true }]);
    });

    it('when Entra sends its typical multi-op PATCH, then every op is applied', async () => {
      const u = await newUser();
      const out = await patchOk(
        u.id,
        { op: 'Replace', path: 'displayName', value: 'Entra Name' },
        { op: 'Add', path: 'emails[type eq "work"].value', value: 'entra.work@example.com' },
        { op: 'Replace', path: 'name.familyName', value: 'Entra' },
        { op: 'Add', path: `${ENTERPRISE}:department`, value: 'Finance' },
        { op: 'Replace', path: 'active', value: 'False' },
      );
      expect(out.displayName).toBe('Entra Name');
      expect(emailsOf(out)).toEqual([{ value: 'entra.work@example.com', type: 'work', primary: true }]);
      expect(out.name.familyName).toBe('Entra');
      expect(out[ENTERPRISE]).toEqual({ department: 'Finance' });
      expect(out.active).toBe(false);
      expect(versionOf(out)).toBe(versionOf(u) + 1);
    });

    it('when Okta sends a no-path replace of the full user it read (with id, meta, schemas, groups), then it is applied', async () => {
      const u = await newUser();
      const full = await getUser(u.id);
      const out = await patchOk(u.id, { op: 'replace', value: { ...full, displayName: 'Okta Full', active: false } });
      expect(out.displayName).toBe('Okta Full');
      expect(out.active).toBe(false);
      expect(out.id).toBe(u.id);
      expect(out.meta.created).toBe(u.meta.created);
    });

    it('when "operations", "path" and "value" keys are spelled in other cases, then the PATCH is still read', async () => {
      const u = await newUser();
      const res = await b.patch(`/Users/${u.id}`, { schemas: patchBody().schemas, operations: [{ OP: 'replace', Path: 'nickName', Value: 'cased' }] });
      expect(res.status).toBe(200);
      expect((await getUser(u.id)).nickName).toBe('cased');
    });

    it('when unknown attributes are in a no-path value, then they are ignored and the rest is applied', async () => {
      const u = await newUser();
      const out = await patchOk(u.id, { op: 'replace', value: { favouriteColour: 'blue', nickName: 'Known' } });
      expect(out.nickName).toBe('Known');
      expect(out).not.toHaveProperty('favouriteColour');
    });
  });

  // ---- atomicity ----

  describe('a failing PATCH changes nothing', () => {
    it('when the second op has an unknown path, then the first op is not applied either', async () => {
      const u = await newUser();
      const before = await getUser(u.id);
      const res = await b.patch(
        `/Users/${u.id}`,
        patchBody({ op: 'replace', path: 'displayName', value: 'Should Not Stick' }, { op: 'replace', path: 'noSuchAttribute', value: 'x' }),
      );
      expectScimError(res, 400, 'invalidPath');
      const after = await getUser(u.id);
      expect(after).toEqual(before);
      expect(after.displayName).toBe(`${u.name.givenName} ${u.name.familyName}`); // composed, not 'Should Not Stick'
      expect(versionOf(after)).toBe(versionOf(before));
      expect(after.meta.lastModified).toBe(before.meta.lastModified);
    });

    it('when the second op has an invalid value, then the first op (an email change) is not applied or indexed', async () => {
      const u = await newUser();
      const before = await getUser(u.id);
      const res = await b.patch(
        `/Users/${u.id}`,
        patchBody(
          { op: 'replace', path: 'emails[type eq "work"].value', value: 'should.not.stick@example.com' },
          { op: 'replace', path: 'active', value: 'not-a-boolean' },
        ),
      );
      expectScimError(res, 400, 'invalidValue');
      const after = await getUser(u.id);
      expect(after).toEqual(before);
      expect(versionOf(after)).toBe(versionOf(before));
      expect(await findIds('emails.value eq "should.not.stick@example.com"')).toEqual([]);
      expect(await findIds(`emails.value eq "${u.userName}"`)).toEqual([u.id]);
    });

    it('when the second op is a bad op name, then the first op is not applied', async () => {
      const u = await newUser();
      await patchFails(u.id, patchBody({ op: 'replace', path: 'title', value: 'T' }, { op: 'move', path: 'title', value: 'U' }), 400, 'invalidSyntax');
    });

    it('when the last op removes userName, then the earlier ops are not applied', async () => {
      const u = await newUser();
      await patchFails(u.id, patchBody({ op: 'replace', path: 'nickName', value: 'N' }, { op: 'remove', path: 'userName' }), 400);
    });
  });

  // ---- errors ----

  describe('errors', () => {
    it.each([
      ['an unknown attribute', 'noSuchAttribute'],
      ['an unknown sub-attribute', 'name.nickname'],
      ['an unknown schema URN', 'urn:example:unknown:2.0:User:thing'],
      ['a syntax error', 'name..givenName'],
      ['a sub-attribute of a simple attribute', 'userName.value'],
      ['a filter on a simple attribute', 'userName[value eq "x"]'],
    ])('when the path is %s, then 400 invalidPath', async (_what, path) => {
      const u = await newUser();
      await patchFails(u.id, patchBody({ op: 'replace', path, value: 'x' }), 400, 'invalidPath');
    });

    it('when remove has no path, then 400 noTarget', async () => {
      const u = await newUser();
      await patchFails(u.id, patchBody({ op: 'remove' }), 400, 'noTarget');
      await patchFails(u.id, patchBody({ op: 'remove', value: { title: 'x' } }), 400, 'noTarget');
    });

    it.each(['delete', 'update', 'move', '', 42])('when the op is %p, then 400 invalidSyntax', async (op) => {
      const u = await newUser();
      await patchFails(u.id, patchBody({ op, path: 'title', value: 'x' }), 400, 'invalidSyntax');
    });

    it('when the op is missing, then 400 invalidSyntax', async () => {
      const u = await newUser();
      await patchFails(u.id, patchBody({ path: 'title', value: 'x' }), 400, 'invalidSyntax');
    });

    it('when Operations is missing, empty or not a list, then 400 invalidSyntax', async () => {
      const u = await newUser();
      await patchFails(u.id, { schemas: patchBody().schemas }, 400, 'invalidSyntax');
      await patchFails(u.id, patchBody(), 400, 'invalidSyntax');
      await patchFails(u.id, { schemas: patchBody().schemas, Operations: { op: 'replace', path: 'title', value: 'x' } }, 400, 'invalidSyntax');
    });

    it('when the body is not a PATCH body (a JSON list, wrong schemas), then 400 invalidSyntax', async () => {
      const u = await newUser();
      await patchFails(u.id, [{ op: 'replace', path: 'title', value: 'x' }], 400, 'invalidSyntax');
      await patchFails(u.id, { schemas: [USER_SCHEMA], Operations: [{ op: 'replace', path: 'title', value: 'x' }] }, 400, 'invalidSyntax');
    });

    it('when add or replace has no value, then 400 and nothing changes', async () => {
      const u = await newUser();
      await patchFails(u.id, patchBody({ op: 'add', path: 'title' }), 400);
      await patchFails(u.id, patchBody({ op: 'replace', path: 'title' }), 400);
    });

    it('when userName is removed, then 400 and the user keeps its userName', async () => {
      const u = await newUser();
      const res = await patchFails(u.id, patchBody({ op: 'remove', path: 'userName' }), 400);
      expect(['invalidValue', 'mutability', 'noTarget']).toContain(res.body.scimType);
      expect((await getUser(u.id)).userName).toBe(u.userName);
    });

    it('when userName is replaced by an empty string, then 400 and nothing changes', async () => {
      const u = await newUser();
      await patchFails(u.id, patchBody({ op: 'replace', path: 'userName', value: '' }), 400);
      await patchFails(u.id, patchBody({ op: 'replace', value: { userName: '   ' } }), 400);
    });

    it.each([
      ['id', 'id', 'another-id'],
      ['meta', 'meta', { resourceType: 'Group' }],
      ['meta.lastModified', 'meta.lastModified', '2001-01-01T00:00:00Z'],
      ['meta.version', 'meta.version', 'W/"999"'],
      ['groups', 'groups', [{ value: 'some-group' }]],
      ['groups with a filter', 'groups[value eq "x"]', { value: 'y' }],
    ])('when a PATCH targets the read-only %s, then 400 mutability', async (_what, path, value) => {
      const u = await newUser();
      await patchFails(u.id, patchBody({ op: 'replace', path, value }), 400, 'mutability');
      await patchFails(u.id, patchBody({ op: 'add', path, value }), 400, 'mutability');
      await patchFails(u.id, patchBody({ op: 'remove', path }), 400, 'mutability');
    });

    it('when a no-path replace carries a different id, then 400 mutability and nothing changes', async () => {
      const u = await newUser();
      await patchFails(u.id, patchBody({ op: 'replace', value: { id: 'not-this-user', nickName: 'x' } }), 400, 'mutability');
    });

    it('when a string attribute gets an object, then 400 invalidValue and nothing changes', async () => {
      const u = await newUser();
      await patchFails(u.id, patchBody({ op: 'replace', path: 'displayName', value: { nested: true } }), 400, 'invalidValue');
    });

    it('when the body is not JSON, then 400 invalidSyntax', async () => {
      const u = await newUser();
      const res = await b
        .anonymous()
        .patch(`/Users/${u.id}`)
        .set('Authorization', `Bearer ${TOKEN}`)
        .set('Content-Type', 'application/scim+json')
        .send('{"Operations": [');
      expectScimError(res, 400, 'invalidSyntax');
    });
  });

  // ---- ETag / If-Match ----

  describe('If-Match', () => {
    it('when If-Match carries the current version, then the PATCH is applied', async () => {
      const u = await newUser();
      const res = await b
        .patch(`/Users/${u.id}`, patchBody({ op: 'replace', path: 'nickName', value: 'matched' }))
        .set('If-Match', u.meta.version);
      expect(res.status).toBe(200);
      expect(res.body.nickName).toBe('matched');
      expect(versionOf(res.body)).toBe(versionOf(u) + 1);
      expect(res.headers.etag).toBe(`W/"${versionOf(u) + 1}"`);
    });

    it('when If-Match carries an old version, then 412 and nothing changes', async () => {
      const u = await newUser();
      const old = u.meta.version;
      await patchOk(u.id, { op: 'replace', path: 'nickName', value: 'first' });
      const before = await getUser(u.id);
      const res = await b.patch(`/Users/${u.id}`, patchBody({ op: 'replace', path: 'nickName', value: 'second' })).set('If-Match', old);
      expectScimError(res, 412);
      const after = await getUser(u.id);
      expect(after).toEqual(before);
      expect(after.nickName).toBe('first');
    });

    it('when If-Match is "*", then the PATCH is applied', async () => {
      const u = await newUser();
      const res = await b.patch(`/Users/${u.id}`, patchBody({ op: 'replace', path: 'nickName', value: 'star' })).set('If-Match', '*');
      expect(res.status).toBe(200);
      expect(res.body.nickName).toBe('star');
    });

    it('when the ETag of a PATCH response is used as the next If-Match, then the next PATCH is applied', async () => {
      const u = await newUser();
      const first = await b.patch(`/Users/${u.id}`, patchBody({ op: 'replace', path: 'nickName', value: 'one' })).expect(200);
      const second = await b
        .patch(`/Users/${u.id}`, patchBody({ op: 'replace', path: 'nickName', value: 'two' }))
        .set('If-Match', first.headers.etag);
      expect(second.status).toBe(200);
      expect(second.body.nickName).toBe('two');
    });
  });

  // ---- passwords ----

  describe('passwords', () => {
    const secrets = ['Pa55word-by-path-Zq9', 'Pa55word-no-path-Xk7'];

    it('when a password is replaced by path or without a path, then the PATCH succeeds and the password is never returned or stored', async () => {
      const u = await newUser();
      const byPath = await b.patch(`/Users/${u.id}`, patchBody({ op: 'replace', path: 'password', value: secrets[0] }));
      expect(byPath.status).toBe(200);
      expect(byPath.body).not.toHaveProperty('password');
      expect(byPath.text).not.toContain(secrets[0]);

      const noPath = await b.patch(`/Users/${u.id}`, patchBody({ op: 'Replace', value: { password: secrets[1], nickName: 'pw' } }));
      expect(noPath.status).toBe(200);
      expect(noPath.body).not.toHaveProperty('password');
      expect(noPath.body.nickName).toBe('pw');
      expect(noPath.text).not.toContain(secrets[1]);

      const read = await b.get(`/Users/${u.id}`).expect(200);
      expect(read.body).not.toHaveProperty('password');
      const listed = await b.get('/Users').query({ filter: `userName eq "${u.userName}"`, attributes: 'password,userName' }).expect(200);
      expect(listed.body.Resources[0]).not.toHaveProperty('password');
      for (const s of secrets) {
        expect(read.text).not.toContain(s);
        expect(listed.text).not.toContain(s);
      }

      // Nothing the store wrote (database, WAL, shared memory) holds either password.
      for (const file of readdirSync(b.dir)) {
        const bytes = readFileSync(join(b.dir, file));
        for (const s of secrets) expect({ file, found: bytes.includes(Buffer.from(s)) }).toEqual({ file, found: false });
      }
    });

    it('when a password is removed, then the PATCH succeeds and nothing else changes', async () => {
      const u = await newUser();
      const res = await b.patch(`/Users/${u.id}`, patchBody({ op: 'remove', path: 'password' }));
      expect(res.status).toBe(200);
      expect(res.body.userName).toBe(u.userName);
      expect(res.body.emails).toEqual(u.emails);
    });
  });
});
