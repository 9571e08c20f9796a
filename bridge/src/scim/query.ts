/**
 * Query parameters of reads: filters resolved against the schema for the store, paging, sorting and the
 * `attributes` / `excludedAttributes` projection.
 */
import { badRequest, ScimError } from '../errors';
import type { ListQuery, SortablePath, StoreFilter } from '../directory';
import { resolve, resolveAttribute, ResolvedPath, splitAttrPath } from './attributes';
import { FilterNode, parseFilter } from './filter';
import { AttributeDef, ResourceTypeDef, URN } from './schemas';
import { IDENTIFIER_PATHS, normalizeIdentifier, preview, toBoolean, toDateTime } from './values';
import { foldCase } from '../directory';

export const MAX_PAGE_SIZE = 1000;
export const DEFAULT_PAGE_SIZE = 100;

function filterValue(def: AttributeDef, op: string, value: unknown, shown: string, path: string): string {
  if (def.type === 'boolean') {
    const b = toBoolean(value);
    if (b === undefined || (op !== 'eq' && op !== 'ne')) {
      throw badRequest('invalidFilter', `${shown} is true or false: compare it with eq or ne and true or false.`);
    }
    return b ? 'true' : 'false';
  }
  if (def.type === 'complex') throw badRequest('invalidFilter', `${shown} is complex: compare one of its sub-attributes.`);
  if (typeof value !== 'string' && typeof value !== 'number') {
    throw badRequest('invalidFilter', `${shown} takes a "quoted string" to compare with, not ${preview(value)}.`);
  }
  if (def.type === 'dateTime') {
    const d = toDateTime(String(value));
    if (d === undefined) throw badRequest('invalidFilter', `${shown} is a date: compare it with a value like "2026-01-31T12:00:00Z".`);
    return d;
  }
  // userName and emails are kept in normal form C: the operand is compared in that form too.
  const text = IDENTIFIER_PATHS.has(path) ? normalizeIdentifier(String(value)) : String(value);
  return def.caseExact ? text : foldCase(text);
}

/** A filter comparison on a complex multi-valued attribute without sub-attribute means its `value`. */
function comparable(r: ResolvedPath, shown: string): ResolvedPath {
  if (r.def.type !== 'complex') return r;
  const value = r.def.subAttributes?.find((s) => s.name === 'value');
  if (!value) throw badRequest('invalidFilter', `${shown} is complex: compare one of its sub-attributes.`);
  return { ...r, def: value, parent: r.def, location: [...r.location, 'value'], path: `${r.path}.value` };
}

/** Paths a Group filter can use: groups keep only these in searchable form. */
const GROUP_FILTERABLE = new Set(['id', 'externalId', 'displayName', 'meta.created', 'meta.lastModified', 'meta.resourceType', 'members', 'members.value', 'members.type']);
const NEVER_FILTERABLE = new Set(['password', 'groups', 'groups.value', 'groups.display', 'groups.type', 'groups.$ref', 'meta', 'meta.location', 'meta.version']);

function checkFilterable(type: ResourceTypeDef, r: ResolvedPath): void {
  const ok = type.kind === 'Group' ? GROUP_FILTERABLE.has(r.path) : !NEVER_FILTERABLE.has(r.path) && !r.path.endsWith('.$ref');
  if (!ok) {
    const hint = type.kind === 'Group' ? ` Groups filter on ${[...GROUP_FILTERABLE].join(', ')}.` : r.path.startsWith('groups') ? ' Filter /Groups on members instead.' : '';
    throw badRequest('invalidFilter', `${r.path} cannot be used in a filter.${hint}`);
  }
}

/** Adds the position of the comparison to an error about it. */
function at(node: { attr: { at: number } }, work: () => StoreFilter): StoreFilter {
  try {
    return work();
  } catch (e) {
    if (e instanceof ScimError && !/position \d+/.test(e.detail)) {
      throw badRequest('invalidFilter', `Invalid filter at position ${node.attr.at + 1}: ${e.detail}`);
    }
    throw e;
  }
}

/** A parsed filter resolved against a resource type, ready for the store. */
export function resolveFilter(type: ResourceTypeDef, node: FilterNode, within?: ResolvedPath): StoreFilter {
  if (node.kind === 'compare' || node.kind === 'present' || node.kind === 'valuePath') return at(node, () => resolveNode(type, node, within));
  return resolveNode(type, node, within);
}

function resolveNode(type: ResourceTypeDef, node: FilterNode, within?: ResolvedPath): StoreFilter {
  const attrOf = (text: FilterNode & { attr: unknown }): ResolvedPath => {
    const t = (text as { attr: { uri?: string; name: string; sub?: string; at: number } }).attr;
    if (within) {
      // Inside `emails[…]` names are sub-attributes of emails.
      const sub = within.def.subAttributes?.find((s) => s.name.toLowerCase() === t.name.toLowerCase());
      if (!sub || t.sub !== undefined || t.uri !== undefined) {
        throw badRequest('invalidFilter', `'${t.name}' is not a sub-attribute of ${within.def.name} (position ${t.at + 1}).`);
      }
      return { def: sub, parent: within.def, location: [...within.location, sub.name], path: `${within.path}.${sub.name}`, extension: within.extension };
    }
    const r = resolveAttribute(type, t, 'invalidFilter');
    checkFilterable(type, r);
    return r;
  };
  switch (node.kind) {
    case 'and':
    case 'or':
      return { kind: node.kind, left: resolveFilter(type, node.left, within), right: resolveFilter(type, node.right, within) };
    case 'not':
      return { kind: 'not', operand: resolveFilter(type, node.operand, within) };
    case 'present': {
      const r = attrOf(node);
      if (r.path === 'meta.resourceType') return { kind: 'constant', value: true };
      return { kind: 'present', path: r.path };
    }
    case 'compare': {
      const r0 = attrOf(node);
      const shown = r0.path;
      if (r0.path === 'meta.resourceType') {
        const same = typeof node.value === 'string' && node.value.toLowerCase() === type.kind.toLowerCase();
        return { kind: 'constant', value: node.op === 'eq' ? same : node.op === 'ne' ? !same : false };
      }
      const r = comparable(r0, shown);
      if (node.value === null) {
        // "eq null" asks for an unassigned attribute; "ne null" for an assigned one.
        if (node.op === 'eq') return { kind: 'not', operand: { kind: 'present', path: r.path } };
        if (node.op === 'ne') return { kind: 'present', path: r.path };
        throw badRequest('invalidFilter', `${shown} ${node.op} null: only eq and ne compare with null.`);
      }
      return { kind: 'compare', path: r.path, op: node.op, value: filterValue(r.def, node.op, node.value, shown, r.path) };
    }
    case 'valuePath': {
      if (within) throw badRequest('invalidFilter', 'Value filters cannot be nested.');
      const r = resolveAttribute(type, node.attr, 'invalidFilter');
      checkFilterable(type, r);
      if (r.def.type !== 'complex' || !r.def.multiValued) {
        throw badRequest('invalidFilter', `${r.path}[…] needs a multi-valued complex attribute such as emails or members.`);
      }
      return { kind: 'element', path: r.path, filter: resolveFilter(type, node.filter, r) };
    }
  }
}

export function parseAndResolveFilter(type: ResourceTypeDef, text: string): StoreFilter {
  return resolveFilter(type, parseFilter(text));
}

// ---- projection ----

/** Attribute selection as a tree of JSON keys: `true` means the whole value. */
type KeyTree = Map<string, KeyTree | true>;

export interface Projection {
  readonly mode: 'all' | 'include' | 'exclude';
  readonly tree: KeyTree;
}

export const ALL: Projection = { mode: 'all', tree: new Map() };

function addLocation(tree: KeyTree, location: readonly string[]): void {
  const [head, ...rest] = location;
  if (rest.length === 0) {
    tree.set(head, true);
    return;
  }
  const existing = tree.get(head);
  if (existing === true) return;
  const sub = existing ?? new Map();
  tree.set(head, sub);
  addLocation(sub, rest);
}

function parseList(type: ResourceTypeDef, raw: string, param: string): KeyTree {
  const tree: KeyTree = new Map();
  for (const part of raw.split(',').map((p) => p.trim()).filter((p) => p !== '')) {
    if (part.toLowerCase() === 'schemas') continue; // always returned (RFC 7643 §3)
    const text = splitAttrPath(part);
    if (!text) throw badRequest('invalidValue', `${param}: '${part}' is not an attribute name (e.g. userName, name.givenName, emails.value).`);
    const r = resolve(type, text, 'invalidValue');
    addLocation(tree, r.kind === 'extension' ? [r.urn] : r.attr.location);
  }
  return tree;
}

export function parseProjection(type: ResourceTypeDef, attributes?: string, excluded?: string): Projection {
  if (attributes !== undefined && attributes.trim() !== '') return { mode: 'include', tree: parseList(type, attributes, 'attributes') };
  if (excluded !== undefined && excluded.trim() !== '') return { mode: 'exclude', tree: parseList(type, excluded, 'excludedAttributes') };
  return ALL;
}

/** Whether a top-level attribute (e.g. "members", "groups") will be in the response: if not, it is not loaded. */
export function wants(p: Projection, key: string): boolean {
  if (p.mode === 'all') return true;
  const node = p.tree.get(key);
  if (p.mode === 'include') return node !== undefined;
  return node !== true;
}

const ALWAYS = new Set(['schemas', 'id']);

function include(value: unknown, tree: KeyTree): unknown {
  if (Array.isArray(value)) return value.map((v) => include(v, tree));
  if (typeof value !== 'object' || value === null) return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    const node = tree.get(k);
    if (node === true) out[k] = v;
    else if (node) out[k] = include(v, node);
  }
  return out;
}

function exclude(value: unknown, tree: KeyTree, top: boolean): unknown {
  if (Array.isArray(value)) return value.map((v) => exclude(v, tree, false));
  if (typeof value !== 'object' || value === null) return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    const node = tree.get(k);
    if (node === true && !(top && ALWAYS.has(k))) continue;
    out[k] = node && node !== true ? exclude(v, node, false) : v;
  }
  return out;
}

/**
 * What `project` does to each element of the top-level multi-valued attribute `key` (e.g. "members"), for a
 * resource whose elements are written out one page at a time instead of projected as one array.
 */
export function projectElement(p: Projection, key: string): (element: unknown) => unknown {
  const node = p.mode === 'all' ? undefined : p.tree.get(key);
  if (node === undefined || node === true) return (element) => element;
  return p.mode === 'include' ? (element) => include(element, node) : (element) => exclude(element, node, false);
}

export function project(resource: Record<string, unknown>, p: Projection): Record<string, unknown> {
  if (p.mode === 'all') return resource;
  if (p.mode === 'exclude') return exclude(resource, p.tree, true) as Record<string, unknown>;
  const out = include(resource, p.tree) as Record<string, unknown>;
  const result: Record<string, unknown> = { schemas: resource.schemas, id: resource.id };
  for (const [k, v] of Object.entries(out)) if (!ALWAYS.has(k)) result[k] = v;
  return result;
}

// ---- list parameters ----

export interface ListParams {
  readonly filter?: string;
  readonly startIndex?: unknown;
  readonly count?: unknown;
  readonly sortBy?: unknown;
  readonly sortOrder?: unknown;
  readonly attributes?: unknown;
  readonly excludedAttributes?: unknown;
}

function integerParam(raw: unknown, name: string): number | undefined {
  if (raw === undefined || raw === '') return undefined;
  const text = String(raw).trim();
  if (!/^-?\d{1,15}$/.test(text)) throw badRequest('invalidValue', `${name} must be an integer, not '${String(raw).slice(0, 40)}'.`);
  return Number(text);
}

function stringParam(raw: unknown, name: string): string | undefined {
  if (raw === undefined) return undefined;
  if (typeof raw !== 'string') throw badRequest('invalidValue', `${name} must be given once, as a string.`);
  return raw;
}

const SORTABLE: Record<string, SortablePath> = {
  id: 'id',
  username: 'userName',
  displayname: 'displayName',
  externalid: 'externalId',
  'meta.created': 'meta.created',
  'meta.lastmodified': 'meta.lastModified',
};

export interface ParsedList {
  readonly query: ListQuery;
  readonly startIndex: number;
  readonly projection: Projection;
}

export function parseListParams(type: ResourceTypeDef, params: ListParams): ParsedList {
  const filterText = stringParam(params.filter, 'filter');
  const startIndex = Math.max(1, integerParam(params.startIndex, 'startIndex') ?? 1);
  const count = Math.min(MAX_PAGE_SIZE, Math.max(0, integerParam(params.count, 'count') ?? DEFAULT_PAGE_SIZE));
  const sortByText = stringParam(params.sortBy, 'sortBy');
  let sortBy: SortablePath | undefined;
  if (sortByText !== undefined && sortByText.trim() !== '') {
    const key = sortByText.trim().toLowerCase().replace(`${URN.user.toLowerCase()}:`, '').replace(`${URN.group.toLowerCase()}:`, '');
    sortBy = SORTABLE[key];
    const allowed = type.kind === 'User' ? 'id, userName, displayName, externalId, meta.created, meta.lastModified' : 'id, displayName, externalId, meta.created, meta.lastModified';
    if (!sortBy || (type.kind === 'Group' && sortBy === 'userName')) {
      throw badRequest('invalidValue', `sortBy=${sortByText}: this bridge sorts on indexed attributes only: ${allowed}.`);
    }
  }
  const sortOrderText = stringParam(params.sortOrder, 'sortOrder');
  if (sortOrderText !== undefined && !['ascending', 'descending', ''].includes(sortOrderText.toLowerCase())) {
    throw badRequest('invalidValue', `sortOrder must be ascending or descending, not '${sortOrderText.slice(0, 40)}'.`);
  }
  const filter = filterText !== undefined && filterText.trim() !== '' ? parseAndResolveFilter(type, filterText) : undefined;
  return {
    query: { filter, sortBy, descending: sortOrderText?.toLowerCase() === 'descending', offset: startIndex - 1, limit: count },
    startIndex,
    projection: parseProjection(type, stringParam(params.attributes, 'attributes'), stringParam(params.excludedAttributes, 'excludedAttributes')),
  };
}
