/**
 * Discovery end to end over HTTP (RFC 7644 §4, RFC 7643 §5-§7): /ServiceProviderConfig, /ResourceTypes and
 * /Schemas state exactly what the bridge supports, at the root and under /scim/v2.
 */
import { ENTERPRISE, GROUP_SCHEMA, startBridge, TestBridge, USER_SCHEMA } from '../helpers/bridge';

const SPC_SCHEMA = 'urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig';
const RESOURCE_TYPE_SCHEMA = 'urn:ietf:params:scim:schemas:core:2.0:ResourceType';
const SCHEMA_SCHEMA = 'urn:ietf:params:scim:schemas:core:2.0:Schema';
const LIST_RESPONSE = 'urn:ietf:params:scim:api:messages:2.0:ListResponse';
const ERROR = 'urn:ietf:params:scim:api:messages:2.0:Error';

type Json = Record<string, any>;

const PREFIXES = ['', '/scim/v2'] as const;
const where = (prefix: string) => (prefix === '' ? 'the root' : prefix);

const TYPES = new Set(['string', 'boolean', 'decimal', 'integer', 'dateTime', 'reference', 'complex', 'binary']);
const MUTABILITY = new Set(['readOnly', 'readWrite', 'immutable', 'writeOnly']);
const RETURNED = new Set(['always', 'never', 'default', 'request']);
const UNIQUENESS = new Set(['none', 'server', 'global']);

/** Every attribute and sub-attribute of a schema, with its dotted name. */
function flatten(attributes: Json[], prefix = ''): [string, Json][] {
  return attributes.flatMap((a) => [[prefix + a.name, a] as [string, Json], ...flatten(a.subAttributes ?? [], `${prefix}${a.name}.`)]);
}

function attribute(schema: Json, path: string): Json {
  const found = flatten(schema.attributes).find(([name]) => name === path);
  if (!found) throw new Error(`${schema.id} has no attribute ${path}`);
  return found[1];
}

describe('discovery over HTTP', () => {
  let b: TestBridge;
  beforeAll(async () => {
    b = await startBridge();
  });
  afterAll(() => b.stop());

  describe.each(PREFIXES)('/ServiceProviderConfig at %s', (prefix) => {
    it(`when /ServiceProviderConfig is read at ${where(prefix)}, then it states patch, no bulk, filter with maxResults, sort and etag`, async () => {
      const res = await b.get(`${prefix}/ServiceProviderConfig`).expect(200);
      expect(res.headers['content-type']).toMatch(/application\/scim\+json/);
      const spc = res.body;
      expect(spc.schemas).toEqual([SPC_SCHEMA]);
      expect(spc.patch).toEqual({ supported: true });
      expect(spc.bulk.supported).toBe(false);
      expect(Number.isInteger(spc.bulk.maxOperations)).toBe(true);
      expect(Number.isInteger(spc.bulk.maxPayloadSize)).toBe(true);
      expect(spc.filter.supported).toBe(true);
      expect(spc.filter.maxResults).toBe(1000);
      expect(spc.sort).toEqual({ supported: true });
      expect(spc.etag).toEqual({ supported: true });
      expect(typeof spc.changePassword.supported).toBe('boolean');
    });

    it(`when /ServiceProviderConfig is read at ${where(prefix)}, then it names bearer-token authentication`, async () => {
      const res = await b.get(`${prefix}/ServiceProviderConfig`).expect(200);
      const schemes = res.body.authenticationSchemes as Json[];
      expect(Array.isArray(schemes)).toBe(true);
      expect(schemes.length).toBeGreaterThan(0);
      const bearer = schemes.find((s) => s.type === 'oauthbearertoken');
      expect(bearer).toBeDefined();
      expect(typeof bearer!.name).toBe('string');
      expect(bearer!.name.length).toBeGreaterThan(0);
      expect(typeof bearer!.description).toBe('string');
      expect(bearer!.description.length).toBeGreaterThan(0);
    });

    it(`when /ServiceProviderConfig is read at ${where(prefix)}, then meta.location uses that prefix`, async () => {
      const res = await b.get(`${prefix}/ServiceProviderConfig`).expect(200);
      expect(res.body.meta.resourceType).toBe('ServiceProviderConfig');
      expect(res.body.meta.location).toBe(`${b.url}${prefix}/ServiceProviderConfig`);
    });
  });

  describe.each(PREFIXES)('/ResourceTypes at %s', (prefix) => {
    it(`when /ResourceTypes is listed at ${where(prefix)}, then it holds User with the enterprise extension and Group`, async () => {
      const res = await b.get(`${prefix}/ResourceTypes`).expect(200);
      expect(res.headers['content-type']).toMatch(/application\/scim\+json/);
      expect(res.body.schemas).toEqual([LIST_RESPONSE]);
      expect(res.body.totalResults).toBe(2);
      expect(res.body.itemsPerPage).toBe(2);
      expect(res.body.startIndex).toBe(1);
      const types = res.body.Resources as Json[];
      expect(types.map((t) => t.id).sort()).toEqual(['Group', 'User']);

      const user = types.find((t) => t.id === 'User')!;
      expect(user.schemas).toEqual([RESOURCE_TYPE_SCHEMA]);
      expect(user.name).toBe('User');
      expect(user.endpoint).toBe('/Users');
      expect(user.schema).toBe(USER_SCHEMA);
      expect(user.schemaExtensions).toEqual([{ schema: ENTERPRISE, required: false }]);
      expect(user.meta).toEqual({ resourceType: 'ResourceType', location: `${b.url}${prefix}/ResourceTypes/User` });

      const group = types.find((t) => t.id === 'Group')!;
      expect(group.schemas).toEqual([RESOURCE_TYPE_SCHEMA]);
      expect(group.name).toBe('Group');
      expect(group.endpoint).toBe('/Groups');
      expect(group.schema).toBe(GROUP_SCHEMA);
      expect(group.schemaExtensions ?? []).toEqual([]);
      expect(group.meta).toEqual({ resourceType: 'ResourceType', location: `${b.url}${prefix}/ResourceTypes/Group` });
    });

    it(`when one resource type is read by name at ${where(prefix)}, then it is that type alone`, async () => {
      const res = await b.get(`${prefix}/ResourceTypes/User`).expect(200);
      expect(res.body.schemas).toEqual([RESOURCE_TYPE_SCHEMA]);
      expect(res.body.id).toBe('User');
      expect(res.body.endpoint).toBe('/Users');
      expect(res.body.schemaExtensions).toEqual([{ schema: ENTERPRISE, required: false }]);
      const group = await b.get(`${prefix}/ResourceTypes/Group`).expect(200);
      expect(group.body.id).toBe('Group');
      expect(group.body.schema).toBe(GROUP_SCHEMA);
    });

    it(`when an unknown resource type is read at ${where(prefix)}, then 404 with a SCIM error`, async () => {
      const res = await b.get(`${prefix}/ResourceTypes/Device`).expect(404);
      expect(res.body.schemas).toEqual([ERROR]);
      expect(res.body.status).toBe('404');
      expect(res.body.detail).toContain('Device');
    });
  });

  describe.each(PREFIXES)('/Schemas at %s', (prefix) => {
    let schemas: Json[];
    beforeAll(async () => {
      const res = await b.get(`${prefix}/Schemas`);
      schemas = res.body.Resources ?? [];
    });
    const byId = (id: string) => {
      const s = schemas.find((x) => x.id === id);
      if (!s) throw new Error(`no schema ${id}`);
      return s;
    };

    it(`when /Schemas is listed at ${where(prefix)}, then it holds the core User, Group and enterprise extension schemas`, async () => {
      const res = await b.get(`${prefix}/Schemas`).expect(200);
      expect(res.headers['content-type']).toMatch(/application\/scim\+json/);
      expect(res.body.schemas).toEqual([LIST_RESPONSE]);
      expect(res.body.totalResults).toBe(3);
      expect(res.body.itemsPerPage).toBe(3);
      expect((res.body.Resources as Json[]).map((s) => s.id).sort()).toEqual([ENTERPRISE, GROUP_SCHEMA, USER_SCHEMA].sort());
      for (const s of res.body.Resources as Json[]) {
        expect(s.schemas).toEqual([SCHEMA_SCHEMA]);
        expect(typeof s.name).toBe('string');
        expect(s.meta).toEqual({ resourceType: 'Schema', location: `${b.url}${prefix}/Schemas/${s.id}` });
      }
      expect(byId(USER_SCHEMA).name).toBe('User');
      expect(byId(GROUP_SCHEMA).name).toBe('Group');
      expect(byId(ENTERPRISE).name).toBe('EnterpriseUser');
    });

    it(`when the schemas are read at ${where(prefix)}, then every attribute carries all its characteristics with valid values`, () => {
      for (const s of schemas) {
        const all = flatten(s.attributes);
        expect(all.length).toBeGreaterThan(0);
        for (const [name, a] of all) {
          const context = `${s.id} ${name}`;
          expect([context, TYPES.has(a.type)]).toEqual([context, true]);
          expect([context, typeof a.multiValued]).toEqual([context, 'boolean']);
          expect([context, typeof a.caseExact]).toEqual([context, 'boolean']);
          expect([context, typeof a.required]).toEqual([context, 'boolean']);
          expect([context, typeof a.description]).toEqual([context, 'string']);
          expect([context, MUTABILITY.has(a.mutability)]).toEqual([context, true]);
          expect([context, RETURNED.has(a.returned)]).toEqual([context, true]);
          expect([context, UNIQUENESS.has(a.uniqueness)]).toEqual([context, true]);
          if (a.type === 'complex') expect([context, (a.subAttributes ?? []).length > 0]).toEqual([context, true]);
          else expect([context, a.subAttributes]).toEqual([context, undefined]);
          if (a.type === 'reference') expect([context, Array.isArray(a.referenceTypes) && a.referenceTypes.length > 0]).toEqual([context, true]);
        }
      }
    });

    it(`when the User schema is read at ${where(prefix)}, then userName, emails, password and groups say what the bridge does`, () => {
      const user = byId(USER_SCHEMA);
      expect(attribute(user, 'userName')).toMatchObject({ type: 'string', multiValued: false, required: true, caseExact: false, uniqueness: 'server', mutability: 'readWrite' });
      expect(attribute(user, 'displayName')).toMatchObject({ type: 'string', caseExact: false });
      expect(attribute(user, 'active')).toMatchObject({ type: 'boolean', multiValued: false });
      expect(attribute(user, 'emails')).toMatchObject({ type: 'complex', multiValued: true });
      expect(attribute(user, 'emails').subAttributes.map((x: Json) => x.name).sort()).toEqual(['display', 'primary', 'type', 'value']);
      expect(attribute(user, 'emails.value')).toMatchObject({ type: 'string', caseExact: false });
      expect(attribute(user, 'emails.primary')).toMatchObject({ type: 'boolean' });
      expect(attribute(user, 'name')).toMatchObject({ type: 'complex', multiValued: false });
      expect(attribute(user, 'name.givenName')).toMatchObject({ type: 'string' });
      expect(attribute(user, 'password')).toMatchObject({ mutability: 'writeOnly', returned: 'never' });
      expect(attribute(user, 'groups')).toMatchObject({ type: 'complex', multiValued: true, mutability: 'readOnly' });
      expect(attribute(user, 'groups.value')).toMatchObject({ mutability: 'readOnly' });
    });

    it(`when the Group schema is read at ${where(prefix)}, then displayName is unique and members are multi-valued references`, () => {
      const group = byId(GROUP_SCHEMA);
      expect(attribute(group, 'displayName')).toMatchObject({ type: 'string', required: true, caseExact: false, uniqueness: 'server' });
      expect(attribute(group, 'members')).toMatchObject({ type: 'complex', multiValued: true });
      expect(attribute(group, 'members.value')).toMatchObject({ type: 'string', caseExact: true });
      expect(attribute(group, 'members.type').canonicalValues).toEqual(['User', 'Group']);
      expect(attribute(group, 'members.$ref')).toMatchObject({ type: 'reference' });
      expect(attribute(group, 'members.$ref').referenceTypes).toEqual(expect.arrayContaining(['User', 'Group']));
    });

    it(`when the enterprise extension is read at ${where(prefix)}, then it has employeeNumber, department and manager`, () => {
      const ent = byId(ENTERPRISE);
      const names = (ent.attributes as Json[]).map((a) => a.name).sort();
      expect(names).toEqual(['costCenter', 'department', 'division', 'employeeNumber', 'manager', 'organization']);
      expect(attribute(ent, 'employeeNumber')).toMatchObject({ type: 'string', multiValued: false });
      expect(attribute(ent, 'manager')).toMatchObject({ type: 'complex', multiValued: false });
      expect(attribute(ent, 'manager.value')).toMatchObject({ type: 'string', caseExact: true });
      expect(attribute(ent, 'manager.displayName')).toMatchObject({ mutability: 'readOnly' });
      expect(attribute(ent, 'manager.$ref').referenceTypes).toEqual(['User']);
    });

    it(`when one schema is read by its URN at ${where(prefix)}, then it is that schema alone`, async () => {
      for (const id of [USER_SCHEMA, GROUP_SCHEMA, ENTERPRISE]) {
        const res = await b.get(`${prefix}/Schemas/${id}`).expect(200);
        expect(res.headers['content-type']).toMatch(/application\/scim\+json/);
        expect(res.body.schemas).toEqual([SCHEMA_SCHEMA]);
        expect(res.body.id).toBe(id);
        expect(res.body.attributes).toEqual(byId(id).attributes);
        expect(res.body.meta.location).toBe(`${b.url}${prefix}/Schemas/${id}`);
      }
    });

    it(`when an unknown schema URN is read at ${where(prefix)}, then 404 with a SCIM error`, async () => {
      const res = await b.get(`${prefix}/Schemas/urn:example:schemas:Nothing`).expect(404);
      expect(res.body.schemas).toEqual([ERROR]);
      expect(res.body.status).toBe('404');
    });
  });

  it('when the schemas claim caseExact, then filters behave as claimed', async () => {
    const user = (await b.get(`/Schemas/${USER_SCHEMA}`).expect(200)).body;
    expect(attribute(user, 'userName').caseExact).toBe(false);
    const created = await b.post('/Users', { schemas: [USER_SCHEMA], userName: 'Case.Claim@Example.com' }).expect(201);
    const found = await b.get('/Users').query({ filter: 'userName eq "case.claim@example.com"' }).expect(200);
    expect(found.body.Resources.map((r: Json) => r.id)).toEqual([created.body.id]);
  });

  it('when the ServiceProviderConfig says sort and filter are supported, then sortBy and filter are accepted', async () => {
    const res = await b.get('/Users').query({ filter: 'userName pr', sortBy: 'userName', sortOrder: 'descending' });
    expect(res.status).toBe(200);
    expect(res.body.schemas).toEqual([LIST_RESPONSE]);
  });

  it('when discovery endpoints are called without a token, then 401 with WWW-Authenticate: Bearer', async () => {
    for (const path of ['/ServiceProviderConfig', '/ResourceTypes', '/Schemas', '/scim/v2/Schemas']) {
      const res = await b.anonymous().get(path);
      expect([path, res.status]).toEqual([path, 401]);
      expect(res.headers['www-authenticate']).toMatch(/^Bearer/);
      expect(res.body.schemas).toEqual([ERROR]);
      expect(res.body.status).toBe('401');
    }
  });
});
