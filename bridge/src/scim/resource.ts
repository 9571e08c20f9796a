/**
 * Resources in and out: a client's JSON checked against the schema into a canonical document (attribute
 * names as the schema spells them, extensions under their URN, read-only and unknown attributes dropped,
 * passwords never kept), the index rows the store searches, and the JSON a client gets back.
 */
import { badRequest } from '../errors';
import type { GroupRecord, GroupWrite, IndexRow, MemberRef, UserRecord, UserWrite } from '../directory';
import { canonicalUrn, subAttribute } from './attributes';
import { AttributeDef, resourceTypes, ResourceTypeDef, topLevelAttributes } from './schemas';
import { checkIdentifier, coerceSimple, indexText, normalizeIdentifier } from './values';

export type Doc = Record<string, unknown>;
type Json = Record<string, unknown>;

/**
 * What one resource may hold, so that one request's cost stays proportional to what a resource really is:
 * every value of a multi-valued attribute costs index rows, and bytes in every read and every event. No IdP
 * sends more than a handful of emails, phone numbers or addresses; roles and entitlements run longer.
 */
export const MAX_VALUES = 100;
const MAX_VALUES_OF: Readonly<Record<string, number>> = { roles: 1000, entitlements: 1000 };
/**
 * The members one request may name (POST or PUT members, or a PATCH's member operations together), well
 * above the batches IdPs are known to send: SCIM servers they push to take 100 member changes per PATCH (AWS
 * IAM Identity Center) or 2,500 (IBM Verify), the recorded IdP flows (test/idp) send a handful, and the bench
 * fills a group in PATCHes of 1,000. A full-list PUT (Rippling) of a group up to this size fits, as it fits
 * in the 1 MiB body. A group itself may hold any number of members: more come in further PATCHes.
 */
export const MAX_MEMBERS_PER_REQUEST = 10_000;
/** Attributes in one object of a body (known ones are a few dozen; unknown ones are read only to be ignored). */
export const MAX_KEYS = 1000;

function maxValues(def: AttributeDef): number {
  return def.name === 'members' ? MAX_MEMBERS_PER_REQUEST : (MAX_VALUES_OF[def.name] ?? MAX_VALUES);
}

/** 400 invalidValue naming the attribute and the maximum when a multi-valued attribute holds too many values. */
export function checkValueCount(def: AttributeDef, count: number, name: string): void {
  const max = maxValues(def);
  if (count <= max) return;
  throw badRequest(
    'invalidValue',
    def.name === 'members'
      ? `This request names ${count} members; at most ${max} are accepted in one request. Send them in several PATCH requests (op "add", path "members"): a group may hold any number of members.`
      : `${name} holds ${count} values; at most ${max} are accepted.`,
  );
}

/** 400 invalidSyntax when an object of a body holds more attributes than any resource has. */
export function checkKeys(value: Json, where: string): void {
  let n = 0;
  for (const _ in value) if (++n > MAX_KEYS) throw badRequest('invalidSyntax', `${where} holds more than ${MAX_KEYS} attributes; a SCIM resource has a few dozen.`);
}

export function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Attributes a client may not set: ignored in bodies (RFC 7643 §7, readOnly), rejected as PATCH targets. */
export function isClientWritable(def: AttributeDef): boolean {
  return def.mutability !== 'readOnly';
}

function findKey(defs: readonly AttributeDef[], key: string): AttributeDef | undefined {
  const lower = key.toLowerCase();
  return defs.find((d) => d.name.toLowerCase() === lower);
}

/** A complex value checked sub-attribute by sub-attribute; undefined when nothing is left. */
function readComplex(def: AttributeDef, value: unknown, name: string): Json | undefined {
  let v = value;
  // A one-element array for a single complex value (Entra ID's manager) and a bare value for {value}.
  if (Array.isArray(v) && !def.multiValued) {
    if (v.length === 0) return undefined;
    if (v.length > 1) throw badRequest('invalidValue', `${name} takes one value, not a list of ${v.length}.`);
    v = v[0];
  }
  if (!isObject(v)) {
    if ((typeof v === 'string' || typeof v === 'number') && subAttribute(def, 'value')) v = { value: v };
    else throw badRequest('invalidValue', `${name} takes an object with ${def.subAttributes!.map((s) => s.name).join(', ')}.`);
  }
  checkKeys(v as Json, name);
  const out: Json = {};
  for (const [key, sv] of Object.entries(v as Json)) {
    const sub = findKey(def.subAttributes!, key);
    if (!sub || sv === null || sv === undefined || !isClientWritable(sub)) continue;
    out[sub.name] = coerceSimple(sub, sv, `${name}.${sub.name}`);
  }
  for (const sub of def.subAttributes!) {
    if (sub.required && out[sub.name] === undefined) {
      throw badRequest('invalidValue', `${name}.${sub.name} is required${def.name === 'members' ? ': the id of a user or group' : ''}.`);
    }
  }
  return Object.keys(out).length > 0 ? out : undefined;
}

/** One attribute's value from a client, canonical; undefined means "unassigned". */
export function readAttribute(def: AttributeDef, value: unknown, name = def.name): unknown {
  if (value === null || value === undefined) return undefined;
  if (def.multiValued) {
    const list = Array.isArray(value) ? value : [value];
    checkValueCount(def, list.length, name);
    const out: unknown[] = [];
    for (const [i, item] of list.entries()) {
      const v = def.type === 'complex' ? readComplex(def, item, `${name}[${i}]`) : item === null ? undefined : coerceSimple(def, item, `${name}[${i}]`);
      if (v !== undefined) out.push(v);
    }
    if (def.type === 'complex' && out.filter((e) => (e as Json).primary === true).length > 1) {
      throw badRequest('invalidValue', `${name}: at most one value may have "primary": true.`);
    }
    // An empty list is kept: for members it means "no members", which is not the same as "not sent".
    return out;
  }
  if (def.type === 'complex') return readComplex(def, value, name);
  return coerceSimple(def, value, name);
}

/**
 * A client's resource body as a canonical document: known attributes only, read-only ones and
 * passwords dropped. Keys are matched case-insensitively; legacy schema URNs are accepted.
 */
export function readDocument(type: ResourceTypeDef, body: unknown): Doc {
  if (!isObject(body)) throw badRequest('invalidSyntax', `The body must be a JSON object: a ${type.schema.name} resource.`);
  if (body.schemas !== undefined && !Array.isArray(body.schemas)) {
    throw badRequest('invalidSyntax', `"schemas" must be a list of schema URNs, e.g. ["${type.schema.id}"].`);
  }
  checkKeys(body, 'The body');
  const defs = topLevelAttributes(type).filter(({ schema }) => schema === type.schema.id).map(({ def }) => def);
  const doc: Doc = {};
  for (const [key, value] of Object.entries(body)) {
    const def = findKey(defs, key);
    if (def) {
      if (!isClientWritable(def) || def.mutability === 'writeOnly') continue;
      const v = readAttribute(def, value);
      if (v !== undefined && !(Array.isArray(v) && v.length === 0 && def.name !== 'members')) doc[def.name] = v;
      continue;
    }
    const urn = key.toLowerCase().startsWith('urn:') ? canonicalUrn(type, key) : undefined;
    if (urn && urn !== type.schema.id && isObject(value)) {
      const ext = type.extensions.find((e) => e.id === urn)!;
      checkKeys(value, urn);
      const out: Doc = {};
      for (const [k, v] of Object.entries(value)) {
        const d = findKey(ext.attributes, k);
        if (!d || !isClientWritable(d)) continue;
        const read = readAttribute(d, v, `${urn}:${d.name}`);
        if (read !== undefined && !(Array.isArray(read) && read.length === 0)) out[d.name] = read;
      }
      if (Object.keys(out).length > 0) doc[urn] = out;
    }
    // Anything else is not ours to keep: unknown attributes are ignored (RFC 7643 §3.1 leaves it to us).
  }
  return doc;
}

/** The rows the store indexes so that every filter is an index lookup. */
export function indexRows(type: ResourceTypeDef, doc: Doc): IndexRow[] {
  const rows: IndexRow[] = [];
  const add = (def: AttributeDef, prefix: string, value: unknown) => {
    if (def.mutability === 'writeOnly' || value === undefined) return;
    if (def.type !== 'complex') {
      for (const [i, v] of (def.multiValued ? (value as unknown[]) : [value]).entries()) {
        rows.push({ path: prefix + def.name, idx: def.multiValued ? i : 0, v: indexText(def, v as string) });
      }
      return;
    }
    const items = def.multiValued ? (value as Json[]) : [value as Json];
    items.forEach((item, i) => {
      // A marker row per element: `emails[type eq "work" and value co "@x"]` matches within one element,
      // and `name pr` finds any user with a name.
      rows.push({ path: prefix + def.name, idx: i, v: '' });
      for (const sub of def.subAttributes!) {
        const sv = item[sub.name];
        if (sv !== undefined && sv !== null) rows.push({ path: `${prefix}${def.name}.${sub.name}`, idx: i, v: indexText(sub, sv as string) });
      }
    });
  };
  for (const def of type.schema.attributes) add(def, '', doc[def.name]);
  if (doc.externalId !== undefined) rows.push({ path: 'externalId', idx: 0, v: String(doc.externalId) });
  for (const ext of type.extensions) {
    const e = doc[ext.id];
    if (isObject(e)) for (const def of ext.attributes) add(def, `${ext.id}:`, e[def.name]);
  }
  return rows;
}

const userType = resourceTypes.User;
const groupType = resourceTypes.Group;

/** A user's content as SCIM gives it; the directory decides its status. */
export type UserContent = Omit<UserWrite, 'status'>;
/** A group's content as SCIM gives it; the directory decides whether it is managed. */
export type GroupContent = Omit<GroupWrite, 'managed'>;

/**
 * The reference product's rule: displayName and name.formatted are "givenName familyName" when the IdP
 * sends none. Composed when read, never stored, so they follow name changes unless the IdP set them itself.
 */
export function withComposedNames(doc: Doc): Doc {
  const name = isObject(doc.name) ? doc.name : undefined;
  const composed = [name?.givenName, name?.familyName].filter((p) => typeof p === 'string' && p.trim() !== '').join(' ');
  if (composed === '' || (doc.displayName !== undefined && name?.formatted !== undefined)) return doc;
  return {
    ...doc,
    displayName: doc.displayName ?? composed,
    name: { ...name, formatted: name?.formatted ?? composed },
  };
}

/**
 * userName and the emails' values in normal form C, and free of invisible characters (400 invalidValue
 * naming the attribute). A value the user holds already (`current`) is not checked again: a user stored
 * before the check can still be changed otherwise, and deprovisioned.
 */
function normalizeIdentifiers(doc: Doc, current?: Doc): Doc {
  const held = new Set<string>();
  if (typeof current?.userName === 'string') held.add(normalizeIdentifier(current.userName));
  if (Array.isArray(current?.emails)) for (const e of current.emails as Json[]) if (typeof e?.value === 'string') held.add(normalizeIdentifier(e.value));
  const check = (value: string, name: string) => {
    const normal = normalizeIdentifier(value);
    if (!held.has(normal)) checkIdentifier(normal, name);
    return normal;
  };
  const out: Doc = { ...doc };
  if (typeof doc.userName === 'string') out.userName = check(doc.userName, 'userName');
  if (Array.isArray(doc.emails)) {
    out.emails = (doc.emails as Json[]).map((e, i) => (typeof e.value === 'string' ? { ...e, value: check(e.value, `emails[${i}].value`) } : e));
  }
  return out;
}

/**
 * The checked document as a user write; the same for POST, PUT and the result of a PATCH (`current`: the
 * user's document before a PUT or PATCH).
 */
export function toUserWrite(checked: Doc, current?: Doc): UserContent {
  const doc = normalizeIdentifiers(checked, current);
  const userName = doc.userName;
  if (typeof userName !== 'string' || userName.trim() === '') {
    throw badRequest('invalidValue', 'userName is required: a non-empty string, unique case-insensitively (usually the email address).');
  }
  const { groups: _groups, ...rest } = doc;
  const view = withComposedNames(rest);
  return {
    userName,
    externalId: typeof doc.externalId === 'string' ? doc.externalId : null,
    displayName: typeof view.displayName === 'string' ? view.displayName : null,
    active: doc.active === undefined ? true : doc.active === true,
    doc: rest,
    index: indexRows(userType, view),
  };
}

/** The checked document as a group write, and the member ids it names (undefined when it names none). */
export function toGroupWrite(doc: Doc): { group: GroupContent; members: string[] | undefined } {
  const displayName = doc.displayName;
  if (typeof displayName !== 'string' || displayName.trim() === '') {
    throw badRequest('invalidValue', 'displayName is required for a group: a non-empty string, unique case-insensitively.');
  }
  const { members, ...rest } = doc;
  return {
    group: { displayName, externalId: typeof doc.externalId === 'string' ? doc.externalId : null, doc: rest },
    members: members === undefined ? undefined : memberIds(members as Json[]),
  };
}

export function memberIds(members: readonly Json[]): string[] {
  return members.map((m, i) => {
    if (typeof m.value !== 'string' || m.value === '') {
      throw badRequest('invalidValue', `members[${i}].value is required: the id of a user or group.`);
    }
    return m.value;
  });
}

/** The URL of a resource: its meta.location and the Location header of its responses. */
export function locationOf(resourceType: 'User' | 'Group', id: string, baseUrl: string): string {
  return `${baseUrl}/${resourceType}s/${id}`;
}

function meta(resourceType: 'User' | 'Group', rec: { id: string; created: string; lastModified: string; version: number }, baseUrl: string) {
  return {
    resourceType,
    created: rec.created,
    lastModified: rec.lastModified,
    location: locationOf(resourceType, rec.id, baseUrl),
    version: etag(rec.version),
  };
}

export function etag(version: number): string {
  return `W/"${version}"`;
}

function schemasOf(type: ResourceTypeDef, doc: Doc): string[] {
  return [type.schema.id, ...type.extensions.filter((e) => doc[e.id] !== undefined).map((e) => e.id)];
}

export function renderUser(rec: UserRecord, groups: { id: string; displayName: string }[] | undefined, baseUrl: string): Json {
  const { externalId, userName, ...rest } = withComposedNames(rec.doc);
  const out: Json = { schemas: schemasOf(userType, rec.doc), id: rec.id };
  if (externalId !== undefined) out.externalId = externalId;
  out.userName = userName;
  Object.assign(out, rest);
  out.active = rec.active;
  // An empty list is unassigned, and unassigned attributes are left out (RFC 7643 §2.5).
  if (groups !== undefined && groups.length > 0) {
    out.groups = groups.map((g) => ({ value: g.id, $ref: `${baseUrl}/Groups/${g.id}`, display: g.displayName, type: 'direct' }));
  }
  out.meta = meta('User', rec, baseUrl);
  return out;
}

/** `membersSlot`: put this where the members go (a group whose members are written out page by page). */
export function renderGroup(rec: GroupRecord, baseUrl: string, membersSlot?: unknown): Json {
  const { externalId, displayName, ...rest } = rec.doc;
  const out: Json = { schemas: schemasOf(groupType, rec.doc), id: rec.id };
  if (externalId !== undefined) out.externalId = externalId;
  out.displayName = displayName;
  Object.assign(out, rest);
  if (membersSlot !== undefined) out.members = membersSlot;
  else if (rec.members !== undefined && rec.members.length > 0) out.members = rec.members.map((m) => renderMember(m, baseUrl));
  out.meta = meta('Group', rec, baseUrl);
  return out;
}

export function renderMember(m: MemberRef, baseUrl: string): Json {
  const out: Json = { value: m.value, $ref: `${baseUrl}/${m.type}s/${m.value}`, type: m.type };
  if (m.display !== null) out.display = m.display;
  return out;
}

