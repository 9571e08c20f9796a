/**
 * The SCIM filter language (RFC 7644 §3.4.2.2) end to end over HTTP, on /Users and /Groups: every
 * operator, logic with precedence, value paths, sub-attributes, URN-qualified names, dates, case rules
 * per attribute, the forms real IdPs send, and the errors. Every test compares an exact set of ids.
 */
import { ENTERPRISE, GROUP_SCHEMA, PATCH_OP, startBridge, TestBridge, USER_SCHEMA, STORES } from '../helpers/bridge';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface Email {
  value: string;
  type: string;
  primary?: boolean;
}

interface Seed {
  key: string;
  userName: string;
  displayName?: string;
  name?: { givenName: string; familyName: string };
  emails: Email[];
  externalId?: string;
  active: boolean;
  title?: string;
  employeeNumber?: string;
  department?: string;
  manager?: string;
}

const work = (value: string): Email => ({ value, type: 'work', primary: true });

const CORE_USERS: Seed[] = [
  { key: 'ada', userName: 'ada.lovelace@example.com', displayName: 'Ada Lovelace', name: { givenName: 'Ada', familyName: 'Lovelace' }, emails: [work('ada.lovelace@example.com')], externalId: 'ext-ada', active: true, title: 'Engineer', employeeNumber: '1001', department: 'Engineering' },
  { key: 'alan', userName: 'alan.turing@example.com', displayName: 'Alan Turing', name: { givenName: 'Alan', familyName: 'Turing' }, emails: [work('alan.turing@example.com'), { value: 'alan@home.org', type: 'home' }], externalId: 'ext-alan', active: true, title: 'Engineer', employeeNumber: '1002', department: 'Research', manager: 'ada' },
  { key: 'grace', userName: 'Grace.Hopper@Example.com', displayName: 'Grace Hopper', name: { givenName: 'Grace', familyName: 'Hopper' }, emails: [work('Grace.Hopper@Example.com')], externalId: 'EXT-Grace', active: true, title: 'Admiral', employeeNumber: '1003', department: 'Navy', manager: 'ada' },
  { key: 'hedy', userName: 'hedy.lamarr@example.com', displayName: 'Hedy Lamarr', name: { givenName: 'Hedy', familyName: 'Lamarr' }, emails: [work('hedy.lamarr@example.com')], externalId: 'ext-hedy', active: false, title: 'Admiral', employeeNumber: '1004', department: 'Navy' },
  { key: 'ken', userName: 'ken.thompson@example.com', displayName: 'Ken Thompson', name: { givenName: 'Ken', familyName: 'Thompson' }, emails: [work('ken.thompson@example.com')], externalId: 'ext-ken', active: false, title: 'Engineer', employeeNumber: '1005', department: 'Engineering', manager: 'alan' },
  { key: 'linus', userName: 'linus.torvalds@kernel.org', displayName: 'Linus Torvalds', name: { givenName: 'Linus', familyName: 'Torvalds' }, emails: [work('linus.torvalds@kernel.org'), { value: 'linus@x.org', type: 'home' }], externalId: 'ext-linus', active: true, employeeNumber: '2001' },
  { key: 'xavier', userName: 'xavier.work@x.org', displayName: 'Xavier Roe', name: { givenName: 'Xavier', familyName: 'Roe' }, emails: [work('xavier.work@x.org')], active: true, title: 'Manager' },
  { key: 'jyoung', userName: 'jane.young@example.com', displayName: 'Jane Young', name: { givenName: 'Jane', familyName: 'Young' }, emails: [work('jane.young@example.com')], externalId: 'jyoung', active: true, title: 'Manager' },
  { key: 'bob', userName: 'bob_smith@example.com', displayName: 'Bob Smith', name: { givenName: 'Bob', familyName: 'Smith' }, emails: [work('bob_smith@example.com')], externalId: 'ext-bob', active: true },
  { key: 'jean', userName: 'jean.doe@example.com', displayName: 'Jean "JJ" Doe', name: { givenName: 'Jean', familyName: 'Doe' }, emails: [work('jean.doe@example.com')], active: true },
  { key: 'zed', userName: 'Zed.Zulu@Example.com', displayName: 'zed zulu', name: { givenName: 'Zed', familyName: 'Zulu' }, emails: [work('zed.zulu@example.com')], active: true },
  { key: 'barbara', userName: 'barbara.liskov@example.com', displayName: 'Barbara Liskov', name: { givenName: 'Barbara', familyName: 'Liskov' }, emails: [{ value: 'barbara@home.org', type: 'home', primary: true }], active: true, title: 'Professor' },
  { key: 'dennis', userName: 'dennis.ritchie@example.com', emails: [], active: true },
  { key: 'margaret', userName: 'margaret.hamilton@nasa.gov', displayName: 'Margaret Hamilton', name: { givenName: 'Margaret', familyName: 'Hamilton' }, emails: [{ value: 'margaret.hamilton@nasa.gov', type: 'work' }, { value: 'mh@x.org', type: 'other' }], active: true, title: 'Engineer' },
];

const FILLERS: Seed[] = Array.from({ length: 16 }, (_, i) => {
  const n = i + 15;
  return {
    key: `filler${n}`,
    userName: `filler.${n}@corp.test`,
    displayName: `Filler ${n}`,
    name: { givenName: 'Filler', familyName: `Number${n}` },
    emails: [work(`filler.${n}@corp.test`)],
    active: true,
  };
});

const USERS = [...CORE_USERS, ...FILLERS];
const ALL_KEYS = USERS.map((u) => u.key);
const FILLER_KEYS = FILLERS.map((u) => u.key);

/** Keys patched after the lastModified mark (nickName only, which no other test looks at). */
const TOUCHED = ['alan', 'grace', 'zed'];

describe.each(STORES)('filters over HTTP on %s', (store) => {
  let b: TestBridge;
  const userId: Record<string, string> = {};
  const groupId: Record<string, string> = {};
  const keyOfUser = new Map<string, string>();
  const keyOfGroup = new Map<string, string>();
  /** The latest lastModified the server reported before the marked changes. */
  let mark = '';

  function userDoc(u: Seed): Record<string, unknown> {
    const doc: Record<string, unknown> = { schemas: [USER_SCHEMA], userName: u.userName, active: u.active };
    if (u.displayName !== undefined) doc.displayName = u.displayName;
    if (u.name) doc.name = u.name;
    if (u.emails.length > 0) doc.emails = u.emails;
    if (u.externalId !== undefined) doc.externalId = u.externalId;
    if (u.title !== undefined) doc.title = u.title;
    const ext: Record<string, unknown> = {};
    if (u.employeeNumber !== undefined) ext.employeeNumber = u.employeeNumber;
    if (u.department !== undefined) ext.department = u.department;
    if (u.manager !== undefined) ext.manager = { value: userId[u.manager] };
    if (Object.keys(ext).length > 0) {
      doc[ENTERPRISE] = ext;
      (doc.schemas as string[]).push(ENTERPRISE);
    }
    return doc;
  }

  beforeAll(async () => {
    b = await startBridge({}, { store });
    const stamps: string[] = [];
    // Sequentially: managers must exist before the users that name them.
    for (const u of USERS) {
      const res = await b.post('/Users', userDoc(u));
      if (res.status !== 201) throw new Error(`seeding ${u.key}: ${res.status} ${JSON.stringify(res.body)}`);
      userId[u.key] = res.body.id;
      keyOfUser.set(res.body.id, u.key);
      stamps.push(res.body.meta.lastModified);
    }
    const groups: { key: string; displayName: string; externalId?: string; members: string[] }[] = [
      { key: 'engineering', displayName: 'Engineering', externalId: 'grp-eng', members: ['ada', 'alan', 'ken', 'margaret'] },
      { key: 'research', displayName: 'Research', externalId: 'GRP-Research', members: ['alan'] },
      { key: 'navy', displayName: 'Navy', members: ['grace', 'hedy'] },
      { key: 'admins', displayName: 'Admins', members: ['grace', '#engineering'] },
      { key: 'empty', displayName: 'Empty', members: [] },
      { key: 'leads', displayName: 'Eng Leads', members: ['ada'] },
    ];
    for (const g of groups) {
      const members = g.members.map((m) => (m.startsWith('#') ? { value: groupId[m.slice(1)], type: 'Group' } : { value: userId[m] }));
      const body: Record<string, unknown> = { schemas: [GROUP_SCHEMA], displayName: g.displayName, members };
      if (g.externalId) body.externalId = g.externalId;
      const res = await b.post('/Groups', body);
      if (res.status !== 201) throw new Error(`seeding group ${g.key}: ${res.status} ${JSON.stringify(res.body)}`);
      groupId[g.key] = res.body.id;
      keyOfGroup.set(res.body.id, g.key);
      stamps.push(res.body.meta.lastModified);
    }
    mark = stamps.reduce((a, c) => (c > a ? c : a));
    await sleep(25);
    for (const k of TOUCHED) {
      const res = await b.patch(`/Users/${userId[k]}`, { schemas: [PATCH_OP], Operations: [{ op: 'replace', path: 'nickName', value: `nick-${k}` }] });
      if (res.status !== 200) throw new Error(`touching ${k}: ${res.status} ${JSON.stringify(res.body)}`);
    }
    // Research gains ken after the mark: its lastModified moves on.
    const res = await b.patch(`/Groups/${groupId.research}`, {
      schemas: [PATCH_OP],
      Operations: [{ op: 'add', path: 'members', value: [{ value: userId.ken }] }],
    });
    if (res.status !== 204 && res.status !== 200) throw new Error(`touching research: ${res.status} ${JSON.stringify(res.body)}`);
  });
  afterAll(() => b.stop());

  async function list(endpoint: '/Users' | '/Groups', filter: string, keyOf: Map<string, string>) {
    const res = await b.get(endpoint).query({ filter, count: 1000 });
    if (res.status !== 200) throw new Error(`${endpoint}?filter=${filter}: ${res.status} ${JSON.stringify(res.body)}`);
    const resources = (res.body.Resources ?? []) as { id: string }[];
    expect(res.body.totalResults).toBe(resources.length);
    return resources.map((r) => keyOf.get(r.id) ?? `unknown:${r.id}`).sort();
  }
  const users = (filter: string) => list('/Users', filter, keyOfUser);
  const groups = (filter: string) => list('/Groups', filter, keyOfGroup);
  const sorted = (keys: string[]) => [...keys].sort();
  const allUsersBut = (...keys: string[]) => sorted(ALL_KEYS.filter((k) => !keys.includes(k)));

  async function expectInvalidFilter(endpoint: string, filter: string) {
    const res = await b.get(endpoint).query({ filter });
    expect(res.status).toBe(400);
    expect(res.headers['content-type']).toMatch(/application\/scim\+json/);
    expect(res.body.schemas).toEqual(['urn:ietf:params:scim:api:messages:2.0:Error']);
    expect(res.body.status).toBe('400');
    expect(res.body.scimType).toBe('invalidFilter');
    expect(typeof res.body.detail).toBe('string');
    return res.body.detail as string;
  }

  describe('comparison operators on /Users', () => {
    it('when filtering userName eq with different case, then the one user matches (userName is caseExact=false)', async () => {
      expect(await users('userName eq "GRACE.HOPPER@example.COM"')).toEqual(['grace']);
      expect(await users('userName eq "ada.lovelace@example.com"')).toEqual(['ada']);
    });

    it('when filtering userName ne, then every other user matches', async () => {
      expect(await users('userName ne "ADA.LOVELACE@EXAMPLE.COM"')).toEqual(allUsersBut('ada'));
    });

    it('when filtering userName co, then exactly the users containing the text match, case-insensitively', async () => {
      expect(await users('userName co "HOPPER@example"')).toEqual(['grace']);
      expect(await users('userName co ".t"')).toEqual(sorted(['alan', 'ken', 'linus', 'filler15', 'filler16', 'filler17', 'filler18', 'filler19', 'filler20', 'filler21', 'filler22', 'filler23', 'filler24', 'filler25', 'filler26', 'filler27', 'filler28', 'filler29', 'filler30']));
    });

    it('when filtering co with LIKE wildcards (_ and %), then they are matched literally', async () => {
      expect(await users('userName co "_"')).toEqual(['bob']);
      expect(await users('userName co "%"')).toEqual([]);
      expect(await users('userName co "b_s"')).toEqual(['bob']);
      expect(await users('userName co "n_t"')).toEqual([]);
    });

    it('when filtering userName sw, then exactly the users starting with it match, case-insensitively', async () => {
      expect(await users('userName sw "AL"')).toEqual(['alan']);
      expect(await users('userName sw "grace."')).toEqual(['grace']);
      expect(await users('userName sw "filler.2"')).toEqual(['filler20', 'filler21', 'filler22', 'filler23', 'filler24', 'filler25', 'filler26', 'filler27', 'filler28', 'filler29']);
    });

    it('when filtering userName ew, then exactly the users ending with it match, case-insensitively', async () => {
      expect(await users('userName ew "@KERNEL.ORG"')).toEqual(['linus']);
      expect(await users('userName ew ".gov"')).toEqual(['margaret']);
      expect(await users('userName ew "@x.org"')).toEqual(['xavier']);
    });

    it('when filtering pr, then exactly the users with a value match', async () => {
      expect(await users('title pr')).toEqual(sorted(['ada', 'alan', 'grace', 'hedy', 'ken', 'xavier', 'jyoung', 'barbara', 'margaret']));
      expect(await users('externalId pr')).toEqual(sorted(['ada', 'alan', 'grace', 'hedy', 'ken', 'linus', 'jyoung', 'bob']));
      expect(await users('displayName pr')).toEqual(allUsersBut('dennis'));
      expect(await users('emails pr')).toEqual(allUsersBut('dennis'));
      expect(await users('nickName pr')).toEqual(sorted(TOUCHED));
    });

    it('when filtering pr on a single-valued complex attribute (name, manager), then users with any sub-attribute match', async () => {
      expect(await users('name pr')).toEqual(allUsersBut('dennis'));
      expect(await users(`${ENTERPRISE}:manager pr`)).toEqual(sorted(['alan', 'grace', 'ken']));
    });

    it('when filtering userName gt/ge/lt/le, then strings compare case-insensitively', async () => {
      // Folded, "Zed.Zulu@…" is the only userName at or after "z"; a binary compare would put every lower-case name after "Z".
      expect(await users('userName ge "Z"')).toEqual(['zed']);
      expect(await users('userName gt "ZED"')).toEqual(['zed']);
      expect(await users('userName gt "zed.zulu@example.com"')).toEqual([]);
      expect(await users('userName ge "zed.zulu@example.com"')).toEqual(['zed']);
      expect(await users('userName lt "b"')).toEqual(['ada', 'alan']);
      expect(await users('userName le "ADA.LOVELACE@EXAMPLE.COM"')).toEqual(['ada']);
      expect(await users('userName lt "ada.lovelace@example.com"')).toEqual([]);
    });

    it('when filtering an enterprise string with gt/ge/lt/le, then exactly the users in range match', async () => {
      const emp = `${ENTERPRISE}:employeeNumber`;
      expect(await users(`${emp} ge "1003"`)).toEqual(sorted(['grace', 'hedy', 'ken', 'linus']));
      expect(await users(`${emp} gt "1003"`)).toEqual(sorted(['hedy', 'ken', 'linus']));
      expect(await users(`${emp} lt "1002"`)).toEqual(['ada']);
      expect(await users(`${emp} le "1002"`)).toEqual(['ada', 'alan']);
    });

    it('when filtering active eq true/false and ne, then the boolean column is compared', async () => {
      expect(await users('active eq false')).toEqual(['hedy', 'ken']);
      expect(await users('active ne true')).toEqual(['hedy', 'ken']);
      expect(await users('active eq true')).toEqual(allUsersBut('hedy', 'ken'));
    });

    it('when filtering displayName eq with different case, then it matches (displayName is caseExact=false)', async () => {
      expect(await users('displayName eq "ZED ZULU"')).toEqual(['zed']);
      expect(await users('displayName eq "ada lovelace"')).toEqual(['ada']);
      expect(await users('displayName co "jj"')).toEqual(['jean']);
    });

    it('when a quoted value holds escaped quotes, then it is compared with the quotes', async () => {
      expect(await users('displayName eq "Jean \\"JJ\\" Doe"')).toEqual(['jean']);
      expect(await users('displayName co "\\"jj\\""')).toEqual(['jean']);
    });
  });

  describe('case rules per attribute', () => {
    it('when filtering externalId, then the value is compared case-sensitively (caseExact=true)', async () => {
      expect(await users('externalId eq "EXT-Grace"')).toEqual(['grace']);
      expect(await users('externalId eq "ext-grace"')).toEqual([]);
      expect(await users('externalId eq "EXT-ADA"')).toEqual([]);
    });

    it('when filtering externalId with sw, then only exact-case prefixes match', async () => {
      expect(await users('externalId sw "ext-"')).toEqual(sorted(['ada', 'alan', 'hedy', 'ken', 'linus', 'bob']));
      expect(await users('externalId sw "EXT-"')).toEqual(['grace']);
    });

    it('when filtering externalId with co and ew, then only exact-case text matches', async () => {
      expect(await users('externalId co "Grace"')).toEqual(['grace']);
      expect(await users('externalId co "grace"')).toEqual([]);
      expect(await users('externalId ew "Grace"')).toEqual(['grace']);
      expect(await users('externalId ew "GRACE"')).toEqual([]);
    });

    it('when filtering id with the right id, then the user matches; in upper case, nothing matches (caseExact=true)', async () => {
      expect(await users(`id eq "${userId.ada}"`)).toEqual(['ada']);
      expect(userId.ada).not.toBe(userId.ada.toUpperCase());
      expect(await users(`id eq "${userId.ada.toUpperCase()}"`)).toEqual([]);
    });

    it('when filtering emails.value with different case, then it matches (emails.value is caseExact=false)', async () => {
      expect(await users('emails.value eq "ALAN@HOME.ORG"')).toEqual(['alan']);
      expect(await users('emails.value eq "grace.hopper@example.com"')).toEqual(['grace']);
      expect(await users('emails.value co "@X.ORG"')).toEqual(sorted(['xavier', 'linus', 'margaret']));
      expect(await users('emails.value sw "ALAN@"')).toEqual(['alan']);
      expect(await users('emails.value ew "NASA.gov"')).toEqual(['margaret']);
    });

    it('when filtering a multi-valued complex attribute without sub-attribute, then its value is compared', async () => {
      expect(await users('emails eq "LINUS@x.org"')).toEqual(['linus']);
    });

    it('when the manager reference is compared, then it is case-sensitive (manager.value is caseExact=true)', async () => {
      expect(await users(`${ENTERPRISE}:manager.value eq "${userId.ada}"`)).toEqual(['alan', 'grace']);
      expect(await users(`${ENTERPRISE}:manager.value eq "${userId.ada.toUpperCase()}"`)).toEqual([]);
    });
  });

  describe('attribute names and operators', () => {
    it('when attribute names and operators are written in any case, then they are understood', async () => {
      expect(await users('USERNAME EQ "ada.lovelace@example.com"')).toEqual(['ada']);
      expect(await users('UserName Sw "ALAN"')).toEqual(['alan']);
      expect(await users('TITLE PR and ACTIVE EQ FALSE')).toEqual(['hedy', 'ken']);
      expect(await users('Emails.Value CO "@home.org"')).toEqual(['alan', 'barbara']);
      expect(await users('NAME.GIVENNAME eq "linus"')).toEqual(['linus']);
    });

    it('when filtering sub-attributes of name, then they match case-insensitively', async () => {
      expect(await users('name.givenName eq "GRACE"')).toEqual(['grace']);
      expect(await users('name.familyName sw "t"')).toEqual(sorted(['alan', 'ken', 'linus']));
      expect(await users('name.familyName ew "ER13"')).toEqual([]);
      expect(await users('name.familyName ew "ER29"')).toEqual(['filler29']);
    });

    it('when names are qualified with the core User URN, then they mean the core attributes', async () => {
      expect(await users(`${USER_SCHEMA}:userName eq "ALAN.TURING@example.com"`)).toEqual(['alan']);
      expect(await users(`${USER_SCHEMA}:name.familyName eq "hopper"`)).toEqual(['grace']);
      expect(await users(`${USER_SCHEMA.toUpperCase()}:USERNAME eq "ken.thompson@example.com"`)).toEqual(['ken']);
    });

    it('when names are qualified with the enterprise URN, then the extension attributes are compared', async () => {
      expect(await users(`${ENTERPRISE}:employeeNumber eq "1003"`)).toEqual(['grace']);
      expect(await users(`${ENTERPRISE}:department eq "NAVY"`)).toEqual(['grace', 'hedy']);
      expect(await users(`${ENTERPRISE}:department pr`)).toEqual(sorted(['ada', 'alan', 'grace', 'hedy', 'ken']));
      expect(await users(`${ENTERPRISE}:manager.value eq "${userId.alan}"`)).toEqual(['ken']);
    });
  });

  describe('logical operators', () => {
    // A = Engineers {ada, alan, ken, margaret}, B = Admirals {grace, hedy}, C = inactive {hedy, ken}.
    const A = 'title eq "Engineer"';
    const B = 'title eq "Admiral"';
    const C = 'active eq false';

    it('when and and or are mixed without parentheses, then and binds tighter', async () => {
      expect(await users(`${A} or ${B} and ${C}`)).toEqual(sorted(['ada', 'alan', 'ken', 'margaret', 'hedy']));
      expect(await users(`${C} and ${A} or ${B}`)).toEqual(sorted(['ken', 'grace', 'hedy']));
    });

    it('when parentheses group an or, then they override the precedence', async () => {
      expect(await users(`(${A} or ${B}) and ${C}`)).toEqual(['hedy', 'ken']);
      expect(await users(`${C} and (${A} or ${B})`)).toEqual(['hedy', 'ken']);
    });

    it('when not negates a parenthesised filter, then its complement matches', async () => {
      expect(await users(`not (${A} or ${B})`)).toEqual(allUsersBut('ada', 'alan', 'ken', 'margaret', 'grace', 'hedy'));
      expect(await users(`${A} and not (${C})`)).toEqual(sorted(['ada', 'alan', 'margaret']));
      expect(await users('not (title pr)')).toEqual(sorted(['linus', 'bob', 'jean', 'zed', 'dennis', ...FILLER_KEYS]));
    });

    it('when filters nest parentheses and not, then each level is evaluated in order', async () => {
      expect(await users(`((${A}) or (${B} and ${C})) and not (userName sw "ADA")`)).toEqual(sorted(['alan', 'ken', 'margaret', 'hedy']));
      expect(await users(`not (not (${C}))`)).toEqual(['hedy', 'ken']);
    });

    it('when and, or and not are written in upper or mixed case, then they are understood', async () => {
      expect(await users(`${B} AND active EQ true OR userName Eq "bob_smith@example.com"`)).toEqual(['bob', 'grace']);
      expect(await users('NOT (active eq true)')).toEqual(['hedy', 'ken']);
      expect(await users(`${A} And Not (${C})`)).toEqual(sorted(['ada', 'alan', 'margaret']));
    });

    it('when or joins the same attribute, then the union matches', async () => {
      expect(await users(`id eq "${userId.ada}" or id eq "${userId.zed}" or id eq "00000000-0000-0000-0000-000000000000"`)).toEqual(['ada', 'zed']);
    });
  });

  describe('value paths', () => {
    it('when a value path has two conditions, then both must hold for the same element', async () => {
      // linus has a work address at kernel.org and a home address at x.org: no single element is both.
      expect(await users('emails[type eq "work" and value co "@x.org"]')).toEqual(['xavier']);
      // Flattened, the conditions may hold for different elements.
      expect(await users('emails.type eq "work" and emails.value co "@x.org"')).toEqual(sorted(['xavier', 'linus', 'margaret']));
    });

    it('when a value path filters on type, then the users with such an element match', async () => {
      expect(await users('emails[type eq "home"]')).toEqual(sorted(['alan', 'linus', 'barbara']));
      expect(await users('emails[type eq "HOME" and primary eq true]')).toEqual(['barbara']);
      expect(await users('emails[value ew "@home.org"] or name.givenName eq "ken"')).toEqual(sorted(['alan', 'barbara', 'ken']));
    });

    it('when a value path holds or and not, then they apply within one element', async () => {
      expect(await users('emails[not (type eq "work")]')).toEqual(sorted(['alan', 'linus', 'barbara', 'margaret']));
      expect(await users('emails[type eq "other" or value sw "alan@"]')).toEqual(sorted(['margaret', 'alan']));
    });

    it('when a value path is negated, then users without such an element match, including those without emails', async () => {
      expect(await users('not (emails[type eq "work"])')).toEqual(['barbara', 'dennis']);
    });

    it('when a value path is combined with other filters, then all must hold', async () => {
      expect(await users('emails[type eq "home"] and active eq true and title pr')).toEqual(sorted(['alan', 'barbara']));
    });
  });

  describe('meta dates', () => {
    it('when filtering meta.lastModified gt a moment, then exactly the users changed after it match', async () => {
      expect(await users(`meta.lastModified gt "${mark}"`)).toEqual(sorted(TOUCHED));
      expect(await users(`meta.lastModified le "${mark}"`)).toEqual(allUsersBut(...TOUCHED));
    });

    it('when the moment is written with another UTC offset, then it is compared as the same instant', async () => {
      const ms = Date.parse(mark);
      const shifted = new Date(ms + 2 * 3600_000).toISOString().replace('Z', '+02:00');
      expect(Date.parse(shifted)).toBe(ms);
      expect(await users(`meta.lastModified gt "${shifted}"`)).toEqual(sorted(TOUCHED));
    });

    it('when filtering meta.created against dates before and after the seed, then all or none match', async () => {
      expect(await users(`meta.created gt "${mark}"`)).toEqual([]);
      expect(await users('meta.created gt "2000-01-01T00:00:00Z"')).toEqual(sorted(ALL_KEYS));
      expect(await users('meta.created lt "2000-01-01T00:00:00Z"')).toEqual([]);
      const justAfter = new Date(Date.parse(mark) + 1).toISOString();
      expect(await users(`meta.lastModified ge "${justAfter}" and meta.created le "${mark}"`)).toEqual(sorted(TOUCHED));
    });

    it('when filtering meta.lastModified eq the exact value a user reports, then that user matches', async () => {
      const res = await b.get(`/Users/${userId.zed}`).expect(200);
      expect(await users(`meta.lastModified eq "${res.body.meta.lastModified}" and userName sw "zed"`)).toEqual(['zed']);
      expect(await users(`meta.lastModified eq "${res.body.meta.lastModified}"`)).toContain('zed');
    });

    it('when filtering groups by meta.lastModified gt a moment, then exactly the groups changed after it match', async () => {
      expect(await groups(`meta.lastModified gt "${mark}"`)).toEqual(['research']);
    });
  });

  describe('Groups and members', () => {
    it('when filtering displayName eq with different case, then the group matches', async () => {
      expect(await groups('displayName eq "ENGINEERING"')).toEqual(['engineering']);
      expect(await groups(`${GROUP_SCHEMA}:displayName eq "navy"`)).toEqual(['navy']);
    });

    it('when filtering displayName sw/co/ew, then exactly the matching groups are returned', async () => {
      expect(await groups('displayName sw "eng"')).toEqual(['engineering', 'leads']);
      expect(await groups('displayName co "MIN"')).toEqual(['admins']);
      expect(await groups('displayName ew "S"')).toEqual(['admins', 'leads']);
    });

    it('when filtering members eq a user id, then the groups holding that user match', async () => {
      expect(await groups(`members eq "${userId.alan}"`)).toEqual(['engineering', 'research']);
      expect(await groups(`members eq "${userId.ken}"`)).toEqual(['engineering', 'research']);
      expect(await groups(`MEMBERS EQ "${userId.grace}"`)).toEqual(['admins', 'navy']);
    });

    it('when filtering members.value eq or members[value eq], then the same groups match', async () => {
      expect(await groups(`members.value eq "${userId.ada}"`)).toEqual(['engineering', 'leads']);
      expect(await groups(`members[value eq "${userId.ada}"]`)).toEqual(['engineering', 'leads']);
    });

    it('when filtering members by a group id, then the group nesting it matches', async () => {
      expect(await groups(`members eq "${groupId.engineering}"`)).toEqual(['admins']);
      expect(await groups('members.type eq "Group"')).toEqual(['admins']);
    });

    it('when filtering members with an upper-cased id, then nothing matches (members.value is caseExact=true)', async () => {
      expect(await groups(`members eq "${userId.alan.toUpperCase()}"`)).toEqual([]);
    });

    it('when filtering members pr and not (members pr), then the non-empty and the empty groups match', async () => {
      expect(await groups('members pr')).toEqual(['admins', 'engineering', 'leads', 'navy', 'research']);
      expect(await groups('not (members pr)')).toEqual(['empty']);
    });

    it('when filtering members ne a user id, then the groups without that user match', async () => {
      expect(await groups(`members ne "${userId.alan}"`)).toEqual(['admins', 'empty', 'leads', 'navy']);
    });

    it('when Entra ID asks id eq "g" and members eq "u", then the group is returned only if the user is a member', async () => {
      const hit = await b
        .get('/Groups')
        .query({ filter: `id eq "${groupId.engineering}" and members eq "${userId.alan}"`, excludedAttributes: 'members' })
        .expect(200);
      expect(hit.body.totalResults).toBe(1);
      expect(hit.body.Resources).toHaveLength(1);
      expect(hit.body.Resources[0].id).toBe(groupId.engineering);
      expect(hit.body.Resources[0].members).toBeUndefined();
      const miss = await b
        .get('/Groups')
        .query({ filter: `id eq "${groupId.engineering}" and members eq "${userId.grace}"`, excludedAttributes: 'members' })
        .expect(200);
      expect(miss.body.totalResults).toBe(0);
      expect(miss.body.Resources ?? []).toEqual([]);
    });

    it('when filtering members together with displayName, then both must hold', async () => {
      expect(await groups(`members eq "${userId.alan}" and displayName sw "R"`)).toEqual(['research']);
      expect(await groups(`members eq "${userId.alan}" or displayName eq "empty"`)).toEqual(['empty', 'engineering', 'research']);
    });

    it('when filtering groups by externalId, then it is compared case-sensitively', async () => {
      expect(await groups('externalId eq "GRP-Research"')).toEqual(['research']);
      expect(await groups('externalId eq "grp-research"')).toEqual([]);
      expect(await groups('externalId pr')).toEqual(['engineering', 'research']);
    });
  });

  describe('the forms IdPs send', () => {
    it('when the value is not quoted (externalId eq jyoung), then it is taken as a string, case-sensitively', async () => {
      expect(await users('externalId eq jyoung')).toEqual(['jyoung']);
      expect(await users('externalId eq JYOUNG')).toEqual([]);
    });

    it('when the query string encodes spaces as + (OneLogin), then the filter is read with spaces', async () => {
      const res = await b.get('/Users?filter=userName+eq+%22ada.lovelace%40example.com%22&').expect(200);
      expect(res.body.totalResults).toBe(1);
      expect(res.body.Resources.map((r: { id: string }) => r.id)).toEqual([userId.ada]);
      const grp = await b.get('/Groups?filter=displayName+eq+%22Eng+Leads%22&').expect(200);
      expect(grp.body.totalResults).toBe(1);
      expect(grp.body.Resources[0].id).toBe(groupId.leads);
    });

    it('when a GUID filter matches nothing, then the answer is 200 with totalResults 0 and Resources []', async () => {
      for (const [endpoint, filter] of [
        ['/Users', 'id eq "6f1c0a7e-0000-4000-8000-000000000000"'],
        ['/Users', 'externalId eq "6f1c0a7e-0000-4000-8000-000000000000"'],
        ['/Groups', 'id eq "6f1c0a7e-0000-4000-8000-000000000000"'],
        ['/Groups', 'members eq "6f1c0a7e-0000-4000-8000-000000000000"'],
      ]) {
        const res = await b.get(endpoint).query({ filter });
        expect([endpoint, filter, res.status]).toEqual([endpoint, filter, 200]);
        expect(res.body.schemas).toEqual(['urn:ietf:params:scim:api:messages:2.0:ListResponse']);
        expect(res.body.totalResults).toBe(0);
        expect(res.body.Resources).toEqual([]);
      }
    });

    it('when the same filter is sent to /scim/v2, then the same users match', async () => {
      const res = await b.get('/scim/v2/Users').query({ filter: 'title eq "Admiral"' }).expect(200);
      expect(res.body.Resources.map((r: { id: string }) => keyOfUser.get(r.id)).sort()).toEqual(['grace', 'hedy']);
    });
  });

  describe('errors', () => {
    it.each([
      ['an unknown operator', 'userName xx "a"', 10],
      ['an unterminated string', 'userName eq "abc', 13],
      ['an unmatched closing parenthesis', 'userName eq "a")', 16],
      ['two comparisons without and/or', 'userName eq "a" userName eq "b"', 17],
      ['an unexpected character', 'userName & "a"', 10],
      ['not without parentheses', 'not userName eq "a"', 5],
      ['a nested value path', 'emails[type[value eq "x"]]', 12],
      ['an extra closing bracket', 'emails[type eq "work"]]', 23],
      ['an invalid escape in a string', 'userName eq "bad \\q escape"', 13],
    ])('when the filter has %s, then 400 invalidFilter names the position', async (_what, filter, position) => {
      const detail = await expectInvalidFilter('/Users', filter);
      expect(detail).toMatch(new RegExp(`position ${position}\\b`));
    });

    it.each([
      ['an unclosed parenthesis', '(userName eq "a"'],
      ['an unclosed value path', 'emails[type eq "work"'],
      ['a missing value', 'userName eq'],
      ['a dangling and', 'userName eq "a" and'],
    ])('when the filter ends early with %s, then 400 invalidFilter says where', async (_what, filter) => {
      const detail = await expectInvalidFilter('/Users', filter);
      expect(detail).toMatch(/position \d+|end of the filter/);
    });

    it('when parentheses nest too deeply, then 400 invalidFilter names the position', async () => {
      const filter = `${'('.repeat(40)}userName eq "a"${')'.repeat(40)}`;
      expect(await expectInvalidFilter('/Users', filter)).toMatch(/position \d+/);
    });

    it('when the filter is longer than the bridge accepts, then 400 invalidFilter says the limit', async () => {
      const filter = Array.from({ length: 200 }, (_, i) => `userName eq "user${i}@example.com"`).join(' or ');
      expect(filter.length).toBeGreaterThan(4096);
      expect(await expectInvalidFilter('/Users', filter)).toMatch(/4096/);
    });

    it.each([
      ['/Users', 'a boolean compared with gt', 'active gt true'],
      ['/Users', 'a date compared with something that is not a date', 'meta.lastModified gt "yesterday"'],
      ['/Users', 'a complex attribute without a value compared directly', 'name eq "x"'],
      ['/Users', 'an ordering comparison with null', 'userName gt null'],
      ['/Groups', 'a member sub-attribute the bridge cannot filter', 'members.display eq "x"'],
    ])('when %s gets %s (%s), then 400 invalidFilter names the position', async (endpoint, _what, filter) => {
      expect(await expectInvalidFilter(endpoint, filter)).toMatch(/position \d+/);
    });

    it.each([
      ['/Users', 'nosuch eq "x"', 'nosuch'],
      ['/Users', 'userName eq "a" and nosuch eq "b"', 'nosuch'],
      ['/Users', 'name.nosuch eq "x"', 'nosuch'],
      ['/Users', 'emails[nosuch eq "x"]', 'nosuch'],
      ['/Users', 'members eq "x"', 'members'],
      ['/Users', 'urn:example:params:scim:schemas:Other:thing eq "x"', 'urn:example'],
      ['/Users', `${ENTERPRISE}:nosuch eq "x"`, 'nosuch'],
      ['/Groups', 'userName eq "x"', 'userName'],
      ['/Groups', 'members.nosuch eq "x"', 'nosuch'],
    ])('when %s is filtered on an unknown attribute (%s), then 400 invalidFilter names it', async (endpoint, filter, name) => {
      expect(await expectInvalidFilter(endpoint, filter)).toContain(name);
    });

    it('when the unknown attribute is not at the start, then the detail names its position', async () => {
      expect(await expectInvalidFilter('/Users', 'userName eq "a" and nosuch eq "b"')).toMatch(/position 21\b/);
    });

    it('when an invalid filter is sent to /Groups and /scim/v2, then it is the same 400 invalidFilter', async () => {
      expect(await expectInvalidFilter('/Groups', 'displayName xx "a"')).toMatch(/position 13\b/);
      expect(await expectInvalidFilter('/scim/v2/Users', 'userName xx "a"')).toMatch(/position 10\b/);
    });
  });
});
