/**
 * Property tests (fast-check) over HTTP against one running bridge: thousands of random filter strings,
 * PATCH bodies and JSON documents never produce a 500 and never hang; every error is a SCIM Error body.
 */
import fc from 'fast-check';
import type { Response, Test } from 'supertest';
import { ENTERPRISE, GROUP_SCHEMA, PATCH_OP, startBridge, TestBridge, TOKEN, USER_SCHEMA, userBody } from '../helpers/bridge';

jest.setTimeout(120_000);

const ERROR_URN = 'urn:ietf:params:scim:api:messages:2.0:Error';
const LIST_URN = 'urn:ietf:params:scim:api:messages:2.0:ListResponse';
/** Each request must be answered within this long: a request that hangs fails the property. */
const REQUEST_TIMEOUT = { response: 5_000, deadline: 10_000 };

/** What every answer to hostile input must be: < 500, and an error is a SCIM Error body. */
function checkAnswer(res: Response, what: string): void {
  const where = `${what} -> ${res.status} ${res.text?.slice(0, 300)}`;
  if (res.status >= 500) throw new Error(`server error: ${where}`);
  if (res.status === 204 || res.status === 304) return;
  if (!/^application\/scim\+json/.test(String(res.headers['content-type']))) throw new Error(`not application/scim+json: ${where}`);
  let body: any;
  try {
    body = JSON.parse(res.text);
  } catch {
    throw new Error(`body is not JSON: ${where}`);
  }
  if (res.status >= 400) {
    if (!Array.isArray(body.schemas) || body.schemas.length !== 1 || body.schemas[0] !== ERROR_URN) throw new Error(`not a SCIM error: ${where}`);
    if (body.status !== String(res.status)) throw new Error(`error status is not the HTTP status as a string: ${where}`);
    if (typeof body.detail !== 'string' || body.detail.trim() === '') throw new Error(`error without detail: ${where}`);
  } else if (res.status < 200 || res.status >= 300) {
    throw new Error(`unexpected status: ${where}`);
  }
}

function checkList(res: Response, what: string): void {
  checkAnswer(res, what);
  if (res.status !== 200) return;
  const body = res.body;
  if (!Array.isArray(body.schemas) || body.schemas[0] !== LIST_URN) throw new Error(`not a ListResponse: ${what}`);
  for (const k of ['totalResults', 'startIndex', 'itemsPerPage']) {
    if (!Number.isInteger(body[k])) throw new Error(`${k} is not an integer: ${what} -> ${res.text.slice(0, 200)}`);
  }
  if (!Array.isArray(body.Resources) || body.Resources.length !== body.itemsPerPage) throw new Error(`Resources do not match itemsPerPage: ${what}`);
}

// ---------------------------------------------------------------- arbitraries: filters

const randomCase = (s: string) =>
  fc.array(fc.boolean(), { minLength: s.length, maxLength: s.length }).map((flags) => [...s].map((c, i) => (flags[i] ? c.toUpperCase() : c.toLowerCase())).join(''));

const USER_ATTRS = [
  'userName', 'id', 'externalId', 'displayName', 'nickName', 'title', 'userType', 'active', 'locale', 'timezone', 'profileUrl',
  'name', 'name.givenName', 'name.familyName', 'name.formatted', 'emails', 'emails.value', 'emails.type', 'emails.primary',
  'phoneNumbers.value', 'addresses.locality', 'addresses.primary', 'groups', 'groups.value', 'groups.display', 'roles.value',
  'x509Certificates.value', 'photos.value', 'password', 'meta.created', 'meta.lastModified', 'meta.resourceType', 'meta.version', 'meta.location',
  `${USER_SCHEMA}:userName`, `${USER_SCHEMA}:name.givenName`, `${USER_SCHEMA}:emails.value`,
  `${ENTERPRISE}:employeeNumber`, `${ENTERPRISE}:department`, `${ENTERPRISE}:manager.value`, `${ENTERPRISE}:manager`, `${ENTERPRISE}:manager.displayName`,
  'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User.department', 'urn:unknown:schema:attr', 'schemas', 'members', 'nope', 'name.nope', 'emails.value.x',
];
const GROUP_ATTRS = [
  'displayName', 'id', 'externalId', 'members', 'members.value', 'members.display', 'members.type', 'members.$ref', 'meta.created',
  'meta.lastModified', 'meta.resourceType', `${GROUP_SCHEMA}:displayName`, `${GROUP_SCHEMA}:members.value`, 'userName', 'emails.value', 'nope',
];
const MULTI = ['emails', 'phoneNumbers', 'addresses', 'roles', 'groups', 'members', 'ims', 'photos', 'entitlements', 'x509Certificates', 'name', 'userName'];
const SUBS = ['value', 'type', 'primary', 'display', 'locality', '$ref', 'givenName', 'nope'];
const OPS = ['eq', 'ne', 'co', 'sw', 'ew', 'gt', 'ge', 'lt', 'le', 'pr', 'xx', 'eqq', 'in'];

const jsonString = (inner: fc.Arbitrary<string>) => inner.map((s) => JSON.stringify(s));
const compValue = fc.oneof(
  jsonString(fc.string({ maxLength: 12 })),
  jsonString(fc.constantFrom('work', 'home', 'ada', '@example.com', '2024-01-01T00:00:00Z', 'User', 'Group', 'true', '%', '_', '\\', "'", '')),
  jsonString(fc.string({ unit: 'grapheme', maxLength: 6 })),
  fc.constantFrom('true', 'false', 'null', 'TRUE', 'False', 'Null', '0', '-1', '1e309', '3.14', '"', '""', '"\\"', '"\\u00e9"', '"\\uZZZZ"', "'single'", 'unquoted', '[]', '{}'),
  fc.integer().map(String),
  fc.double({ noNaN: true, noDefaultInfinity: true }).map(String),
  fc.date({ noInvalidDate: true, min: new Date('1900-01-01'), max: new Date('2200-01-01') }).map((d) => JSON.stringify(d.toISOString())),
);

function attrPath(attrs: string[]): fc.Arbitrary<string> {
  return fc.oneof(
    { weight: 6, arbitrary: fc.constantFrom(...attrs).chain(randomCase) },
    { weight: 1, arbitrary: fc.stringMatching(/^[A-Za-z$][A-Za-z0-9_$-]{0,10}(\.[A-Za-z$][A-Za-z0-9_$-]{0,8})?$/) },
  );
}

/** Text values that are awkward for SQL, LIKE and case folding. */
const awkwardText = fc.oneof(
  fc.string({ maxLength: 12 }),
  fc.string({ unit: 'grapheme', maxLength: 8 }),
  fc.constantFrom("O'Brien", '%', '_', '\\', '%_%', 'ada', 'ADA', '@example.com', 'example', 'Paris', 'R&D', 'ß', 'İ', 'ǅ', 'Zoë', 'ünï', "'; DROP TABLE users; --", '" or 1=1'),
);

/** Well-typed comparisons (strings with strings, booleans with true/false, dates with dates): they reach the store. */
function typedAtom(kind: 'User' | 'Group' | 'Sub', ids: string[]): fc.Arbitrary<string> {
  const str = (attrs: string[]) =>
    fc.tuple(fc.constantFrom(...attrs).chain(randomCase), fc.constantFrom('eq', 'ne', 'co', 'sw', 'ew', 'gt', 'ge', 'lt', 'le', 'EQ', 'Co', 'sW'), awkwardText).map(([a, op, v]) => `${a} ${op} ${JSON.stringify(v)}`);
  const date = fc
    .tuple(fc.constantFrom('meta.lastModified', 'meta.created', 'META.LASTMODIFIED'), fc.constantFrom('eq', 'ne', 'gt', 'ge', 'lt', 'le'), fc.date({ noInvalidDate: true, min: new Date('2000-01-01'), max: new Date('2100-01-01') }))
    .map(([a, op, d]) => `${a} ${op} "${d.toISOString()}"`);
  const present = (attrs: string[]) => fc.constantFrom(...attrs).map((a) => `${a} pr`);
  if (kind === 'Sub') {
    // Inside a value path or a PATCH path filter: sub-attributes only.
    return fc.oneof(
      str(['value', 'type', 'display']),
      fc.constantFrom('primary eq true', 'primary eq false', 'value pr', 'type eq "work"', 'type eq "home"', 'value co "@"', 'type eq "User"'),
      fc.constantFrom(...ids).map((id) => `value eq "${id}"`),
    );
  }
  if (kind === 'Group') {
    const strings = ['displayName', 'externalId', 'id', 'members.value', 'members.display', 'members.type', `${GROUP_SCHEMA}:displayName`];
    return fc.oneof(str(strings), date, present([...strings, 'members']), fc.tuple(fc.constantFrom('members', 'members.value', 'MEMBERS'), fc.constantFrom(...ids)).map(([a, id]) => `${a} eq "${id}"`));
  }
  const strings = ['userName', 'externalId', 'id', 'displayName', 'title', 'name.givenName', 'name.familyName', 'emails.value', 'emails.type', 'phoneNumbers.value', 'addresses.locality', 'groups.value', `${ENTERPRISE}:department`, `${ENTERPRISE}:employeeNumber`, `${ENTERPRISE}:manager.value`, `${USER_SCHEMA}:userName`];
  const bool = fc.tuple(fc.constantFrom('active', 'emails.primary', 'addresses.primary'), fc.constantFrom('eq', 'ne'), fc.constantFrom('true', 'false', 'TRUE', 'False')).map(([a, op, v]) => `${a} ${op} ${v}`);
  const valuePath = fc
    .tuple(fc.constantFrom('emails', 'phoneNumbers', 'addresses', 'groups'), fc.constantFrom('type eq "work"', 'value co "@"', 'primary eq true', 'type eq "home" and value ew ".org"', 'not (type eq "work")', 'value pr'), fc.option(fc.constantFrom('value', 'type'), { nil: undefined }))
    .map(([m, f, sub]) => `${m}[${f}]${sub ? `.${sub}` : ''}`);
  return fc.oneof(str(strings), bool, date, present(strings), valuePath);
}

function filterArb(attrs: string[], kind: 'User' | 'Group' | 'Sub', ids: string[]): fc.Arbitrary<string> {
  const { filter } = fc.letrec<{ filter: string; atom: string }>((tie) => ({
    atom: fc.oneof(
      { weight: 3, arbitrary: typedAtom(kind, ids) },
      { weight: 3, arbitrary: fc.tuple(attrPath(attrs), fc.constantFrom(...OPS).chain(randomCase), compValue).map(([a, op, v]) => (op.toLowerCase() === 'pr' ? `${a} ${op}` : `${a} ${op} ${v}`)) },
      { weight: 1, arbitrary: attrPath(attrs).map((a) => `${a} pr`) },
      {
        weight: 1,
        arbitrary: fc
          .tuple(fc.constantFrom(...MULTI).chain(randomCase), tie('filter'), fc.option(fc.constantFrom(...SUBS), { nil: undefined }))
          .map(([m, f, sub]) => `${m}[${f}]${sub ? `.${sub}` : ''}`),
      },
    ),
    filter: fc.oneof(
      { depthSize: 'small', withCrossShrink: true },
      { weight: 4, arbitrary: tie('atom') },
      { weight: 1, arbitrary: tie('filter').map((f) => `(${f})`) },
      { weight: 1, arbitrary: fc.tuple(fc.constantFrom('not', 'NOT', 'Not'), fc.constantFrom(' ', ''), tie('filter')).map(([n, s, f]) => `${n}${s}(${f})`) },
      { weight: 2, arbitrary: fc.tuple(tie('filter'), fc.constantFrom('and', 'or', 'AND', 'Or', 'oR'), tie('filter')).map(([a, op, c]) => `${a} ${op} ${c}`) },
    ),
  }));
  return filter;
}

/** A grammatical filter damaged a little: characters dropped, inserted or the string cut short. */
function mutated(base: fc.Arbitrary<string>): fc.Arbitrary<string> {
  const noise = fc.constantFrom('(', ')', '[', ']', '"', '\\', ' ', '.', ':', 'and', 'or', 'not', 'eq', 'pr', '\u0000', '\u{1F4A9}', '%', "'", ';', '--');
  const edit = fc.tuple(fc.nat(), fc.constantFrom('drop', 'insert', 'cut', 'swap'), noise);
  return fc.tuple(base, fc.array(edit, { minLength: 1, maxLength: 4 })).map(([s, edits]) => {
    let out = s;
    for (const [n, kind, ins] of edits) {
      const i = out.length === 0 ? 0 : n % out.length;
      if (kind === 'drop') out = out.slice(0, i) + out.slice(i + 1);
      else if (kind === 'insert') out = out.slice(0, i) + ins + out.slice(i);
      else if (kind === 'cut') out = out.slice(0, i);
      else if (out.length > 1) out = out.slice(0, i) + out.slice(i + 1, i + 2) + out.slice(i, i + 1) + out.slice(i + 2);
    }
    return out;
  });
}

const randomFilterText = fc.oneof(
  fc.string({ maxLength: 60 }),
  fc.string({ unit: 'binary', maxLength: 30 }),
  fc.string({ unit: 'grapheme', maxLength: 30 }),
  fc.string({ unit: fc.constantFrom('(', ')', '[', ']', '"', ' ', 'a', 'eq', 'pr', 'and', 'or', 'not', '.', ':', '\\', 'userName', 'emails', '1'), maxLength: 25 }),
  fc.constantFrom('', ' ', '()', '[]', '"', 'userName', 'userName eq', 'eq "x"', 'not', 'not ()', '((((((((((', ')'.repeat(50), '('.repeat(2000) + 'userName pr' + ')'.repeat(2000), 'userName pr and '.repeat(500) + 'userName pr', 'emails[emails[value pr]]'),
);

/** Bytes in the query string that are not even valid UTF-8 or are broken percent-escapes. */
const rawQueryArb = fc
  .array(
    fc.oneof(
      fc.integer({ min: 0, max: 255 }).map((n) => `%${n.toString(16).padStart(2, '0').toUpperCase()}`),
      fc.constantFrom('%', '%Z', '%E2%82', '&', '=', '+', 'filter=', 'filter[]=', 'filter[a]=', 'count=', 'startIndex=', '"', 'userName', '%20eq%20', 'a'),
    ),
    { maxLength: 20 },
  )
  .map((parts) => `filter=${parts.join('')}`);

// ---------------------------------------------------------------- arbitraries: JSON documents and PATCH bodies

const oddKeys = fc.constantFrom('__proto__', 'constructor', 'toString', 'hasOwnProperty', '', ' ', '$ref', 'meta', 'id', 'schemas', 'urn:', 'urn:ietf:params:scim:schemas:core:2.0:User:userName');
const anyJson: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 3, arbitrary: fc.jsonValue({ maxDepth: 3 }) },
  { weight: 1, arbitrary: fc.constantFrom(null, true, false, 0, -0, 1e308, -1, 1.5, '', 'True', 'False', 'maybe', '2024-02-30T00:00:00Z', 'x'.repeat(70000), [], {}, [null], [[]], [{}]) },
  { weight: 1, arbitrary: fc.dictionary(fc.oneof(oddKeys, fc.string({ maxLength: 8 })), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 4 }) },
);

const USER_KEYS = [
  'schemas', 'userName', 'name', 'displayName', 'nickName', 'title', 'active', 'password', 'emails', 'phoneNumbers', 'addresses', 'groups',
  'roles', 'entitlements', 'ims', 'photos', 'x509Certificates', 'externalId', 'id', 'meta', 'locale', 'timezone', 'profileUrl', 'userType',
  'preferredLanguage', ENTERPRISE, 'urn:scim:schemas:extension:enterprise:2.0', 'urn:ietf:params:scim:schemas:extension:unknown:2.0:User',
];
const GROUP_KEYS = ['schemas', 'displayName', 'members', 'externalId', 'id', 'meta', 'userName'];

/** Values that look like SCIM (mostly valid, sometimes not) for each kind of attribute. */
function scimValue(ids: string[]): fc.Arbitrary<unknown> {
  const id = fc.oneof(fc.constantFrom(...ids), fc.uuid(), fc.string({ maxLength: 10 }));
  const multiItem = fc.record(
    {
      value: fc.oneof(fc.emailAddress(), fc.string({ maxLength: 10 }), id, anyJson),
      type: fc.oneof(fc.constantFrom('work', 'home', 'other', 'User', 'Group', 'direct'), anyJson),
      primary: fc.oneof(fc.boolean(), fc.constantFrom('true', 'False', 'yes'), anyJson),
      display: fc.oneof(fc.string({ maxLength: 10 }), anyJson),
      $ref: fc.oneof(fc.webUrl(), anyJson),
    },
    { requiredKeys: [] },
  );
  return fc.oneof(
    { weight: 2, arbitrary: fc.emailAddress() },
    { weight: 2, arbitrary: fc.string({ maxLength: 20 }) },
    { weight: 1, arbitrary: fc.boolean() },
    { weight: 2, arbitrary: fc.array(multiItem, { maxLength: 4 }) },
    { weight: 1, arbitrary: multiItem },
    { weight: 1, arbitrary: fc.record({ givenName: anyJson, familyName: fc.string(), formatted: anyJson, employeeNumber: anyJson, manager: anyJson }, { requiredKeys: [] }) },
    { weight: 1, arbitrary: fc.constantFrom([USER_SCHEMA], [GROUP_SCHEMA], [USER_SCHEMA, ENTERPRISE], 'not-a-list', [], [42], ['urn:x']) },
    { weight: 2, arbitrary: anyJson },
  );
}

function documentArb(keys: string[], ids: string[]): fc.Arbitrary<unknown> {
  const doc = fc.dictionary(fc.oneof({ weight: 5, arbitrary: fc.constantFrom(...keys).chain(randomCase) }, { weight: 1, arbitrary: oddKeys }, { weight: 1, arbitrary: fc.string({ maxLength: 10 }) }), scimValue(ids), {
    maxKeys: 8,
  });
  return fc.oneof({ weight: 8, arbitrary: doc }, { weight: 1, arbitrary: anyJson });
}

function patchPathArb(attrs: string[], ids: string[]): fc.Arbitrary<unknown> {
  const id = fc.constantFrom(...ids);
  return fc.oneof(
    { weight: 4, arbitrary: attrPath(attrs) },
    { weight: 2, arbitrary: fc.tuple(fc.constantFrom(...MULTI).chain(randomCase), filterArb(['value', 'type', 'primary', 'display', 'nope', 'display.x'], 'Sub', ids), fc.option(fc.constantFrom(...SUBS), { nil: undefined })).map(([m, f, s]) => `${m}[${f}]${s ? `.${s}` : ''}`) },
    { weight: 1, arbitrary: id.map((v) => `members[value eq "${v}"]`) },
    { weight: 1, arbitrary: fc.constantFrom('members[value eq "x"', 'emails[', ']', 'emails[type eq "work"].value.x', `${ENTERPRISE}:manager`, ENTERPRISE, `${ENTERPRISE}:manager.value`, 'urn:x:y', 'name.', '.name', '', ' ', 'meta.version', 'id', 'groups', 'schemas') },
    { weight: 1, arbitrary: fc.string({ maxLength: 20 }) },
    { weight: 1, arbitrary: anyJson },
  );
}

function patchBodyArb(attrs: string[], ids: string[]): fc.Arbitrary<unknown> {
  const op = fc.record(
    {
      op: fc.oneof({ weight: 6, arbitrary: fc.constantFrom('add', 'replace', 'remove').chain(randomCase) }, { weight: 1, arbitrary: anyJson }),
      path: patchPathArb(attrs, ids),
      value: fc.oneof(
        { weight: 3, arbitrary: scimValue(ids) },
        { weight: 1, arbitrary: fc.subarray(ids, { minLength: 1 }).map((list) => list.map((value) => ({ value }))) },
        {
          weight: 1,
          arbitrary: fc.dictionary(fc.oneof(attrPath(attrs), fc.constantFrom('name.givenName', 'active', `${ENTERPRISE}:department`, 'emails[type eq "work"].value')), scimValue(ids), { maxKeys: 4 }),
        },
      ),
    },
    { requiredKeys: ['op'] },
  );
  const body = fc.record(
    {
      schemas: fc.oneof({ weight: 5, arbitrary: fc.constant([PATCH_OP]) }, { weight: 1, arbitrary: anyJson }),
      Operations: fc.oneof({ weight: 6, arbitrary: fc.array(op, { minLength: 1, maxLength: 5 }) }, { weight: 1, arbitrary: anyJson }),
    },
    { requiredKeys: [] },
  );
  return fc.oneof({ weight: 8, arbitrary: body }, { weight: 1, arbitrary: anyJson });
}

// ---------------------------------------------------------------- arbitraries: plausible input (reaches the store)

const setOp = fc.constantFrom('add', 'replace', 'Replace', 'ADD');
const removeOp = fc.constantFrom('remove', 'Remove');
const boolish = fc.constantFrom(true, false, 'True', 'False', 'true');
const email = fc.emailAddress();
const multiItems = fc.array(
  fc.record({ value: email, type: fc.constantFrom('work', 'home', 'other'), primary: fc.boolean(), display: awkwardText }, { requiredKeys: ['value'] }),
  { minLength: 1, maxLength: 3 },
);
const enterprise = fc.record({ department: awkwardText, employeeNumber: fc.oneof(awkwardText, fc.nat()), costCenter: awkwardText }, { requiredKeys: [] });
const USER_STRING_PATHS = ['displayName', 'title', 'nickName', 'name.givenName', 'name.familyName', 'name.formatted', 'externalId', 'userType', 'locale', 'preferredLanguage', `${ENTERPRISE}:department`, `${ENTERPRISE}:employeeNumber`, 'emails[type eq "work"].value', 'emails[primary eq true].display', 'addresses[type eq "work"].locality'];

function plausibleUserOp(ids: string[]): fc.Arbitrary<Record<string, unknown>> {
  return fc.oneof(
    fc.record({ op: setOp, path: fc.constantFrom(...USER_STRING_PATHS).chain(randomCase), value: awkwardText }),
    fc.record({ op: setOp, path: fc.constant('active'), value: boolish }),
    fc.record({ op: setOp, path: fc.constantFrom('emails', 'phoneNumbers', 'roles', 'entitlements', 'ims'), value: multiItems }),
    fc.record({ op: setOp, path: fc.constant('userName'), value: email }),
    fc.record({ op: setOp, path: fc.constant(`${ENTERPRISE}:manager`), value: fc.oneof(fc.constantFrom(...ids).map((value) => ({ value })), fc.constantFrom(...ids)) }),
    fc.record({ op: setOp, path: fc.constant('name'), value: fc.record({ givenName: awkwardText, familyName: awkwardText }, { requiredKeys: [] }) }),
    fc.record({ op: setOp, path: fc.constant(ENTERPRISE), value: enterprise }),
    fc.record({
      op: removeOp,
      path: fc.constantFrom('title', 'nickName', 'emails[type eq "home"]', 'emails[type eq "work"].display', 'phoneNumbers', 'name.middleName', `${ENTERPRISE}:manager`, 'addresses[primary eq true]', 'roles', 'externalId', ENTERPRISE),
    }),
    fc.record({
      op: setOp,
      value: fc.record(
        { displayName: awkwardText, title: awkwardText, active: boolish, 'name.givenName': awkwardText, emails: multiItems, [ENTERPRISE]: enterprise, [`${ENTERPRISE}:department`]: awkwardText, password: awkwardText },
        { requiredKeys: [] },
      ),
    }),
  );
}

function plausibleGroupOp(ids: string[]): fc.Arbitrary<Record<string, unknown>> {
  const members = fc.subarray(ids).map((list) => list.map((value) => ({ value })));
  return fc.oneof(
    fc.record({ op: fc.constantFrom('add', 'Add'), path: fc.constant('members'), value: members }),
    fc.record({ op: fc.constantFrom('replace', 'Replace'), path: fc.constant('members'), value: members }),
    fc.record({ op: removeOp, path: fc.constantFrom(...ids).map((id) => `members[value eq "${id}"]`) }),
    fc.record({ op: removeOp, path: fc.constant('members'), value: members }),
    fc.record({ op: removeOp, path: fc.constantFrom('members', 'externalId', 'members[type eq "Group"]', 'members[display co "a"]') }),
    fc.record({ op: setOp, path: fc.constantFrom('displayName', 'externalId'), value: fc.tuple(awkwardText, fc.nat()).map(([t, n]) => `${t} ${n}`) }),
    fc.record({ op: setOp, value: fc.record({ displayName: fc.tuple(awkwardText, fc.nat()).map(([t, n]) => `G ${t} ${n}`), externalId: awkwardText, members }, { requiredKeys: [] }) }),
  );
}

const plausiblePatch = (op: fc.Arbitrary<Record<string, unknown>>) => fc.array(op, { minLength: 1, maxLength: 4 }).map((Operations) => ({ schemas: [PATCH_OP], Operations }));

function plausibleUser(ids: string[]): fc.Arbitrary<Record<string, unknown>> {
  return fc.record(
    {
      schemas: fc.constantFrom([USER_SCHEMA], [USER_SCHEMA, ENTERPRISE]),
      userName: email,
      externalId: awkwardText,
      name: fc.record({ givenName: awkwardText, familyName: awkwardText, formatted: awkwardText }, { requiredKeys: [] }),
      displayName: awkwardText,
      title: awkwardText,
      active: boolish,
      password: awkwardText,
      emails: multiItems,
      phoneNumbers: multiItems,
      addresses: fc.array(fc.record({ locality: awkwardText, country: fc.constantFrom('FR', 'US', 'DE'), type: fc.constantFrom('work', 'home'), primary: fc.boolean() }, { requiredKeys: [] }), { maxLength: 2 }),
      [ENTERPRISE]: fc.tuple(enterprise, fc.option(fc.constantFrom(...ids), { nil: undefined })).map(([e, m]) => (m ? { ...e, manager: { value: m } } : e)),
    },
    { requiredKeys: ['schemas', 'userName'] },
  );
}

function plausibleGroup(ids: string[]): fc.Arbitrary<Record<string, unknown>> {
  return fc.record(
    {
      schemas: fc.constant([GROUP_SCHEMA]),
      displayName: fc.tuple(awkwardText, fc.nat()).map(([t, n]) => `Group ${t} ${n}`),
      externalId: awkwardText,
      members: fc.subarray(ids).map((list) => list.map((value) => ({ value }))),
    },
    { requiredKeys: ['schemas', 'displayName'] },
  );
}

/** A plausible document with one attribute replaced by anything at all. */
function corrupted(doc: fc.Arbitrary<Record<string, unknown>>, keys: string[]): fc.Arbitrary<Record<string, unknown>> {
  return fc.tuple(doc, fc.oneof(fc.constantFrom(...keys), oddKeys), anyJson).map(([d, k, v]) => ({ ...d, [k]: v }));
}

/** Counts answers by class, to check that a property reached the store and not only the validation. */
class Tally {
  readonly counts = new Map<string, number>();
  add(status: number): void {
    const k = status < 300 ? '2xx' : String(status);
    this.counts.set(k, (this.counts.get(k) ?? 0) + 1);
  }
  share(k: string): number {
    const total = [...this.counts.values()].reduce((a, c) => a + c, 0);
    return total === 0 ? 0 : (this.counts.get(k) ?? 0) / total;
  }
  toString(): string {
    return JSON.stringify(Object.fromEntries(this.counts));
  }
}

// ---------------------------------------------------------------- the properties

describe('properties: hostile input never gives a 500 and never hangs', () => {
  let b: TestBridge;
  const userIds: string[] = [];
  const groupIds: string[] = [];
  let seq = 0;
  const allIds = () => [...userIds, ...groupIds];

  const send = (t: Test) => t.timeout(REQUEST_TIMEOUT).ok(() => true);

  beforeAll(async () => {
    b = await startBridge();
    const people = ['ada.lovelace', 'alan.turing', 'grace.hopper', 'edsger.dijkstra', 'barbara.liskov', 'Zoë.Ünïcode'];
    for (const [i, p] of people.entries()) {
      const res = await b
        .post(
          '/Users',
          userBody(`${p}@example.com`, {
            externalId: `ext-${i}`,
            title: i % 2 ? 'Engineer' : 'Manager',
            emails: [
              { value: `${p}@example.com`, type: 'work', primary: true },
              { value: `${p}@home.example.org`, type: 'home' },
            ],
            phoneNumbers: [{ value: `+1 555 000 ${i}`, type: 'work' }],
            addresses: [{ locality: 'Paris', country: 'FR', primary: true }],
            [ENTERPRISE]: { employeeNumber: String(1000 + i), department: 'R&D', manager: { value: userIds[0] ?? 'none' } },
          }),
        )
        .expect(201);
      userIds.push(res.body.id);
      // Joined, so that a random deprovisioning suspends them (an invited user would be revoked; both stay members).
      await b.join(res.body.id);
    }
    for (const [i, name] of ['Engineering', 'Sales', 'Empty', 'Ünïcode Group'].entries()) {
      const res = await b.post('/Groups', { schemas: [GROUP_SCHEMA], displayName: name, externalId: `g-${i}`, members: userIds.slice(0, i * 2).map((value) => ({ value })) }).expect(201);
      groupIds.push(res.body.id);
    }
    // A nested group.
    const nested = await b.patch(`/Groups/${groupIds[0]}`, { schemas: [PATCH_OP], Operations: [{ op: 'add', path: 'members', value: [{ value: groupIds[1] }] }] });
    expect(nested.status).toBeLessThan(300);
  });
  afterAll(() => b.stop());

  it('when the seeded bridge is asked a grammatical filter, then it answers (a sanity check of the seed and the checks)', async () => {
    const res = await send(b.get('/Users').query({ filter: 'emails[type eq "work" and value co "@example.com"]' }));
    checkList(res, 'seed');
    expect(res.status).toBe(200);
    expect(res.body.totalResults).toBe(6);
    const groups = await send(b.get('/Groups').query({ filter: `members eq "${userIds[0]}"` }));
    checkList(groups, 'seed');
    expect(groups.body.totalResults).toBe(3);
  });

  // ---- filters

  it('when grammatical filters are sent to /Users, then none gives a 500, every one is answered, and many reach the store', async () => {
    const tally = new Tally();
    await fc.assert(
      fc.asyncProperty(filterArb(USER_ATTRS, 'User', allIds()), async (filter) => {
        const res = await send(b.get('/Users').query({ filter }));
        tally.add(res.status);
        checkList(res, `GET /Users?filter=${filter}`);
      }),
      { numRuns: 500 },
    );
    // Not only parse errors: a good share of the filters ran as SQL.
    expect(tally.share('2xx')).toBeGreaterThan(0.25);
  });

  it('when damaged grammatical filters are sent to /Users, then none gives a 500', async () => {
    await fc.assert(
      fc.asyncProperty(mutated(filterArb(USER_ATTRS, 'User', allIds())), async (filter) => {
        checkList(await send(b.get('/Users').query({ filter })), `GET /Users?filter=${filter}`);
      }),
      { numRuns: 200 },
    );
  });

  it('when fully random filter strings are sent to /Users and /Groups, then none gives a 500', async () => {
    await fc.assert(
      fc.asyncProperty(randomFilterText, fc.constantFrom('/Users', '/Groups', '/scim/v2/Users'), async (filter, path) => {
        checkList(await send(b.get(path).query({ filter })), `GET ${path}?filter=${JSON.stringify(filter).slice(0, 200)}`);
      }),
      { numRuns: 250 },
    );
  });

  it('when grammatical and damaged filters are sent to /Groups, then none gives a 500 and many reach the store', async () => {
    const tally = new Tally();
    await fc.assert(
      fc.asyncProperty(fc.oneof({ weight: 2, arbitrary: filterArb(GROUP_ATTRS, 'Group', allIds()) }, { weight: 1, arbitrary: mutated(filterArb(GROUP_ATTRS, 'Group', allIds())) }), async (filter) => {
        const res = await send(b.get('/Groups').query({ filter }));
        tally.add(res.status);
        checkList(res, `GET /Groups?filter=${filter}`);
      }),
      { numRuns: 250 },
    );
    expect(tally.share('2xx')).toBeGreaterThan(0.15);
  });

  it('when filters are sent through POST /.search, then none gives a 500', async () => {
    await fc.assert(
      fc.asyncProperty(fc.oneof(filterArb(USER_ATTRS, 'User', allIds()), randomFilterText), fc.constantFrom('/Users/.search', '/Groups/.search'), async (filter, path) => {
        checkList(await send(b.post(path, { schemas: ['urn:ietf:params:scim:api:messages:2.0:SearchRequest'], filter })), `POST ${path} ${filter}`);
      }),
      { numRuns: 100 },
    );
  });

  it('when the query string is raw bytes and broken escapes, then nothing gives a 500', async () => {
    await fc.assert(
      fc.asyncProperty(rawQueryArb, fc.constantFrom('/Users', '/Groups'), async (query, path) => {
        checkAnswer(await send(b.get(`${path}?${query}`)), `GET ${path}?${query}`);
      }),
      { numRuns: 100 },
    );
  });

  it('when list parameters (startIndex, count, sortBy, sortOrder, attributes) are random, then nothing gives a 500', async () => {
    const param = fc.oneof(fc.integer({ min: -5, max: 2000 }).map(String), fc.constantFrom('', 'abc', '1e3', '0x10', '-0', '9'.repeat(30), '1.5', 'NaN'), attrPath(USER_ATTRS), fc.string({ maxLength: 10 }));
    await fc.assert(
      fc.asyncProperty(
        fc.record(
          {
            startIndex: param,
            count: param,
            sortBy: fc.oneof(attrPath(USER_ATTRS), param),
            sortOrder: fc.oneof(fc.constantFrom('ascending', 'descending', 'DESCENDING', 'up'), param),
            attributes: fc.oneof(fc.array(attrPath(USER_ATTRS), { maxLength: 3 }).map((a) => a.join(',')), param),
            excludedAttributes: fc.oneof(fc.array(attrPath(GROUP_ATTRS), { maxLength: 3 }).map((a) => a.join(',')), param),
            filter: filterArb(USER_ATTRS, 'User', allIds()),
          },
          { requiredKeys: [] },
        ),
        fc.constantFrom('/Users', '/Groups'),
        async (query, path) => {
          checkList(await send(b.get(path).query(query)), `GET ${path}?${new URLSearchParams(query as Record<string, string>)}`);
        },
      ),
      { numRuns: 150 },
    );
  });

  // ---- PATCH

  it('when random PATCH bodies are sent to /Users/{id}, then none gives a 500, and a failed PATCH changes nothing', async () => {
    const tally = new Tally();
    const ids = allIds();
    const body = fc.oneof({ weight: 3, arbitrary: plausiblePatch(plausibleUserOp(ids)) }, { weight: 2, arbitrary: patchBodyArb(USER_ATTRS, ids) });
    await fc.assert(
      fc.asyncProperty(body, async (patch) => {
        const created = await send(b.post('/Users', userBody(`patch.target${++seq}@example.com`, { title: 'Before' })));
        expect(created.status).toBe(201);
        const res = await send(b.patch(`/Users/${created.body.id}`, patch));
        tally.add(res.status);
        const shown = `PATCH /Users/{id} ${JSON.stringify(patch).slice(0, 500)}`;
        checkAnswer(res, shown);
        if (res.status >= 400) {
          const after = await send(b.get(`/Users/${created.body.id}`));
          if (after.status !== 200) throw new Error(`a failed PATCH (${res.status}) removed the user: ${shown}`);
          if (after.body.meta.version !== created.body.meta.version) throw new Error(`a failed PATCH (${res.status}) changed the user: ${shown}`);
        }
      }),
      { numRuns: 300 },
    );
    expect(tally.share('2xx')).toBeGreaterThan(0.2);
  });

  it('when random PATCH bodies are sent again and again to the same users, then none gives a 500', async () => {
    const targets = userIds.slice(1, 4);
    const ids = allIds();
    await fc.assert(
      fc.asyncProperty(fc.oneof(plausiblePatch(plausibleUserOp(ids)), patchBodyArb(USER_ATTRS, ids)), fc.nat(2), async (patch, slot) => {
        const res = await send(b.patch(`/Users/${targets[slot]}`, patch));
        checkAnswer(res, `PATCH /Users/{id} ${JSON.stringify(patch).slice(0, 500)}`);
        if (res.status === 404) {
          // A PATCH never removes a user (deprovisioning keeps it, revoked or suspended); should one be gone, carry on with a new one.
          const created = await send(b.post('/Users', userBody(`long.lived${++seq}@example.com`)));
          expect(created.status).toBe(201);
          targets[slot] = created.body.id;
        }
      }),
      { numRuns: 150 },
    );
  });

  it('when random PATCH bodies are sent to /Groups/{id}, then none gives a 500, and a failed PATCH changes nothing', async () => {
    const tally = new Tally();
    const ids = allIds();
    const body = fc.oneof({ weight: 3, arbitrary: plausiblePatch(plausibleGroupOp(ids)) }, { weight: 2, arbitrary: patchBodyArb(GROUP_ATTRS, ids) });
    await fc.assert(
      fc.asyncProperty(body, async (patch) => {
        const created = await send(b.post('/Groups', { schemas: [GROUP_SCHEMA], displayName: `Patch Target ${++seq}`, members: userIds.slice(0, 2).map((value) => ({ value })) }));
        expect(created.status).toBe(201);
        const res = await send(b.patch(`/Groups/${created.body.id}`, patch));
        tally.add(res.status);
        const shown = `PATCH /Groups/{id} ${JSON.stringify(patch).slice(0, 500)}`;
        checkAnswer(res, shown);
        if (res.status >= 400) {
          const after = await send(b.get(`/Groups/${created.body.id}`));
          if (after.status !== 200) throw new Error(`a failed PATCH (${res.status}) removed the group: ${shown}`);
          if (after.body.meta.version !== created.body.meta.version) throw new Error(`a failed PATCH (${res.status}) changed the group: ${shown}`);
          if (after.body.members?.length !== 2) throw new Error(`a failed PATCH (${res.status}) changed the members: ${shown}`);
        }
      }),
      { numRuns: 300 },
    );
    expect(tally.share('2xx')).toBeGreaterThan(0.2);
  });

  // ---- whole documents

  it('when random JSON documents are POSTed to /Users, then none gives a 500', async () => {
    const tally = new Tally();
    const ids = allIds();
    const doc = fc.oneof(
      { weight: 2, arbitrary: plausibleUser(ids) },
      { weight: 2, arbitrary: corrupted(plausibleUser(ids), USER_KEYS) },
      { weight: 2, arbitrary: documentArb(USER_KEYS, ids) },
    );
    await fc.assert(
      fc.asyncProperty(doc, async (d) => {
        const res = await send(b.post('/Users', d));
        tally.add(res.status);
        checkAnswer(res, `POST /Users ${JSON.stringify(d).slice(0, 500)}`);
      }),
      { numRuns: 200 },
    );
    expect(tally.share('2xx')).toBeGreaterThan(0.15);
  });

  it('when random JSON documents are PUT to /Users/{id}, then none gives a 500', async () => {
    const tally = new Tally();
    const ids = allIds();
    const targets: string[] = [];
    for (let i = 0; i < 4; i++) targets.push((await send(b.post('/Users', userBody(`put.target${++seq}@example.com`)))).body.id);
    const doc = fc.oneof(
      { weight: 2, arbitrary: plausibleUser(ids) },
      { weight: 2, arbitrary: corrupted(plausibleUser(ids), USER_KEYS) },
      { weight: 2, arbitrary: documentArb(USER_KEYS, ids) },
    );
    await fc.assert(
      fc.asyncProperty(doc, fc.nat(3), async (d, slot) => {
        const res = await send(b.put(`/Users/${targets[slot]}`, d));
        tally.add(res.status);
        checkAnswer(res, `PUT /Users/{id} ${JSON.stringify(d).slice(0, 500)}`);
        // A PUT with active false revokes an invited user (kept, active false): put a fresh invited one in its place.
        if (res.status === 404 || (res.status === 200 && res.body.active === false)) {
          const created = await send(b.post('/Users', userBody(`put.target${++seq}@example.com`)));
          expect(created.status).toBe(201);
          targets[slot] = created.body.id;
        }
      }),
      { numRuns: 150 },
    );
    expect(tally.share('2xx')).toBeGreaterThan(0.15);
  });

  it('when random JSON documents are POSTed to /Groups, then none gives a 500', async () => {
    const tally = new Tally();
    const ids = allIds();
    const doc = fc.oneof(
      { weight: 2, arbitrary: plausibleGroup(ids) },
      { weight: 1, arbitrary: corrupted(plausibleGroup(ids), GROUP_KEYS) },
      { weight: 2, arbitrary: documentArb(GROUP_KEYS, ids) },
    );
    await fc.assert(
      fc.asyncProperty(doc, async (d) => {
        const res = await send(b.post('/Groups', d));
        tally.add(res.status);
        checkAnswer(res, `POST /Groups ${JSON.stringify(d).slice(0, 500)}`);
      }),
      { numRuns: 150 },
    );
    expect(tally.share('2xx')).toBeGreaterThan(0.15);
  });

  it('when random JSON documents are PUT to /Groups/{id}, then none gives a 500', async () => {
    const tally = new Tally();
    const ids = allIds();
    const doc = fc.oneof(
      { weight: 2, arbitrary: plausibleGroup(ids) },
      { weight: 1, arbitrary: corrupted(plausibleGroup(ids), GROUP_KEYS) },
      { weight: 2, arbitrary: documentArb(GROUP_KEYS, ids) },
    );
    await fc.assert(
      fc.asyncProperty(doc, fc.constantFrom(...groupIds), async (d, id) => {
        const res = await send(b.put(`/Groups/${id}`, d));
        tally.add(res.status);
        checkAnswer(res, `PUT /Groups/{id} ${JSON.stringify(d).slice(0, 500)}`);
      }),
      { numRuns: 100 },
    );
    expect(tally.share('2xx')).toBeGreaterThan(0.15);
  });

  it('when random bytes are sent as a JSON body, then none gives a 500', async () => {
    const bytes = fc.oneof(fc.string({ maxLength: 40 }), fc.uint8Array({ maxLength: 40 }).map((a) => Buffer.from(a).toString('latin1')), fc.constantFrom('{', '{"a":', '[', '"\\ud800"', '{"userName":"\\u0000"}', '\ufeff{}', '{} {}', '1e99999'));
    await fc.assert(
      fc.asyncProperty(bytes, fc.constantFrom('POST /Users', 'POST /Groups', 'PATCH /Users/x', 'PUT /Groups/x'), async (text, route) => {
        const [method, path] = route.split(' ');
        const real = path.replace('/Users/x', `/Users/${userIds[4]}`).replace('/Groups/x', `/Groups/${groupIds[2]}`);
        const t = method === 'POST' ? b.anonymous().post(real) : method === 'PUT' ? b.anonymous().put(real) : b.anonymous().patch(real);
        const res = await send(t.set('Authorization', `Bearer ${TOKEN}`).set('Content-Type', 'application/json').send(text));
        checkAnswer(res, `${method} ${path} ${JSON.stringify(text)}`);
      }),
      { numRuns: 100 },
    );
  });

  it('when values are nested to any depth (up to what fits in 1 MiB), then none gives a 500', async () => {
    const PATCH = (op: string) => `{"schemas":["${PATCH_OP}"],"Operations":[${op}]}`;
    const places: [string, string, (deep: string) => string][] = [
      ['POST', '/Users', (d) => `{"userName":"nested@example.com","title":${d}}`],
      ['POST', '/Users', (d) => `{"userName":"nested@example.com","active":${d}}`],
      ['POST', '/Users', (d) => `{"userName":"nested@example.com","emails":[{"value":${d}}]}`],
      ['POST', '/Users', (d) => `{"userName":"nested@example.com","name":${d}}`],
      ['POST', '/Users', (d) => `{"userName":${d}}`],
      ['POST', '/Users', (d) => `{"userName":"nested@example.com","${ENTERPRISE}":{"manager":${d}}}`],
      ['POST', '/Users', (d) => `{"userName":"nested@example.com","unknownAttribute":${d}}`],
      ['POST', '/Groups', (d) => `{"displayName":"Nested","members":[{"value":${d}}]}`],
      ['PUT', '/Groups/{group}', (d) => `{"displayName":${d}}`],
      ['PATCH', '/Users/{user}', (d) => PATCH(`{"op":${d},"path":"title","value":"x"}`)],
      ['PATCH', '/Users/{user}', (d) => PATCH(`{"op":"replace","path":${d},"value":"x"}`)],
      ['PATCH', '/Users/{user}', (d) => PATCH(`{"op":"replace","path":"title","value":${d}}`)],
      ['PATCH', '/Users/{user}', (d) => PATCH(`{"op":"replace","value":{"title":${d}}}`)],
      ['PATCH', '/Groups/{group}', (d) => PATCH(`{"op":"remove","path":"members","value":${d}}`)],
      ['PATCH', '/Groups/{group}', (d) => `{"schemas":["${PATCH_OP}"],"Operations":${d}}`],
      ['POST', '/Users/.search', (d) => `{"filter":${d}}`],
    ];
    await fc.assert(
      fc.asyncProperty(
        fc.nat(places.length - 1),
        fc.oneof(fc.integer({ min: 1, max: 200 }), fc.integer({ min: 1000, max: 250_000 })),
        fc.constantFrom('[', '{"a":'),
        async (at, depth, open) => {
          const [method, path, template] = places[at];
          const deep = open.repeat(depth) + (open === '[' ? '' : '1') + (open === '[' ? ']' : '}').repeat(depth);
          const target = path.replace('{user}', userIds[5]).replace('{group}', groupIds[3]);
          const t = method === 'POST' ? b.anonymous().post(target) : method === 'PUT' ? b.anonymous().put(target) : b.anonymous().patch(target);
          const res = await send(t.set('Authorization', `Bearer ${TOKEN}`).set('Content-Type', 'application/scim+json').send(template(deep)));
          checkAnswer(res, `${method} ${path} with ${template(`<${open} nested ${depth} deep>`)}`);
        },
      ),
      { numRuns: 80 },
    );
  });

  it('when all of that is over, then the bridge still answers correctly', async () => {
    const res = await send(b.get('/Users').query({ filter: 'userName eq "ADA.LOVELACE@example.com"' }));
    checkList(res, 'after');
    expect(res.status).toBe(200);
    expect(res.body.totalResults).toBe(1);
    expect((await send(b.get('/health'))).body.store).toBe('ok');
  });
});
