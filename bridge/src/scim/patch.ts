/**
 * PATCH (RFC 7644 §3.5.2) applied to a resource's document. Member changes of a group are not applied
 * here: they become store operations on membership rows, so a group of 50,000 is never loaded. The
 * caller validates the result like a PUT; any error aborts the whole PATCH.
 */
import { badRequest, ScimError } from '../errors';
import type { MemberChange } from '../directory';
import { resolve, ResolvedPath, splitAttrPath, subAttribute } from './attributes';
import { FilterNode, parseFilter } from './filter';
import { resolveFilter } from './query';
import { checkKeys, checkValueCount, Doc, isObject, MAX_MEMBERS_PER_REQUEST, memberIds, readAttribute } from './resource';
import { AttributeDef, ResourceTypeDef, URN } from './schemas';
import { indexText, preview, toBoolean } from './values';

type Json = Record<string, unknown>;
type OpName = 'add' | 'replace' | 'remove';

export const MAX_OPERATIONS = 1000;

type Target =
  | { kind: 'extension'; urn: string }
  | { kind: 'attribute'; attr: ResolvedPath; filter?: FilterNode; filterText?: string; sub?: AttributeDef };

export interface PatchOutcome {
  readonly doc: Doc;
  readonly members: MemberChange[];
}

function invalidPath(path: string, why: string): ScimError {
  return badRequest('invalidPath', `The path '${path}' ${why}.`);
}

/** Finds the ']' that closes the value filter, skipping quoted strings. */
function closingBracket(text: string, open: number): number {
  let inString = false;
  for (let i = open + 1; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      if (c === '\\') i++;
      else if (c === '"') inString = false;
    } else if (c === '"') inString = true;
    else if (c === ']') return i;
  }
  return -1;
}

export function parsePath(type: ResourceTypeDef, path: string): Target {
  const open = path.indexOf('[');
  if (open < 0) {
    const text = splitAttrPath(path);
    if (!text) throw invalidPath(path, 'is not an attribute path (e.g. name.givenName, emails[type eq "work"].value, members)');
    const r = resolve(type, text, 'invalidPath');
    return r.kind === 'extension' ? r : { kind: 'attribute', attr: r.attr };
  }
  const close = closingBracket(path, open);
  if (close < 0) throw invalidPath(path, "opens a value filter with '[' that is not closed with ']'");
  const text = splitAttrPath(path.slice(0, open));
  if (!text || text.sub !== undefined) throw invalidPath(path, 'must name a multi-valued attribute before [');
  const attr = resolve(type, text, 'invalidPath');
  if (attr.kind === 'extension' || attr.attr.def.type !== 'complex' || !attr.attr.def.multiValued) {
    throw invalidPath(path, 'filters an attribute that is not multi-valued and complex');
  }
  const filterText = path.slice(open + 1, close);
  let filter: FilterNode;
  try {
    filter = parseFilter(filterText);
  } catch (e) {
    throw invalidPath(path, `has an invalid value filter: ${(e as Error).message}`);
  }
  const after = path.slice(close + 1);
  let sub: AttributeDef | undefined;
  if (after !== '') {
    const m = /^\.([A-Za-z$][\w$-]*)$/.exec(after);
    sub = m ? subAttribute(attr.attr.def, m[1]) : undefined;
    if (!sub) throw invalidPath(path, `ends in '${after}', which is not a sub-attribute of ${attr.attr.def.name}`);
  }
  return { kind: 'attribute', attr: attr.attr, filter, filterText, sub };
}

// ---- value filters on one resource's elements (emails[type eq "work"]) ----

function compareText(def: AttributeDef, actual: unknown, op: string, expected: unknown): boolean {
  if (actual === undefined || actual === null) return op === 'ne';
  if (def.type === 'boolean') {
    const a = toBoolean(actual);
    const b = toBoolean(expected);
    return op === 'eq' ? a === b : op === 'ne' ? a !== b : false;
  }
  if (expected === null) return op === 'ne';
  const a = indexText(def, actual as string);
  const b = indexText(def, expected as string);
  switch (op) {
    case 'eq': return a === b;
    case 'ne': return a !== b;
    case 'co': return a.includes(b);
    case 'sw': return a.startsWith(b);
    case 'ew': return a.endsWith(b);
    case 'gt': return a > b;
    case 'ge': return a >= b;
    case 'lt': return a < b;
    case 'le': return a <= b;
    default: return false;
  }
}

function elementMatches(parent: AttributeDef, node: FilterNode, element: Json): boolean {
  switch (node.kind) {
    case 'and': return elementMatches(parent, node.left, element) && elementMatches(parent, node.right, element);
    case 'or': return elementMatches(parent, node.left, element) || elementMatches(parent, node.right, element);
    case 'not': return !elementMatches(parent, node.operand, element);
    case 'valuePath': throw badRequest('invalidPath', 'Value filters cannot be nested.');
    case 'present':
    case 'compare': {
      const sub = subAttribute(parent, node.attr.name);
      if (!sub || node.attr.sub !== undefined) {
        throw badRequest('invalidPath', `'${node.attr.name}' is not a sub-attribute of ${parent.name}; it has ${parent.subAttributes!.map((s) => s.name).join(', ')}.`);
      }
      const v = element[sub.name];
      if (node.kind === 'present') return v !== undefined && v !== null && v !== '';
      return compareText(sub, v, node.op, node.value);
    }
  }
}

/** `type eq "work" and primary eq true` as {type: "work", primary: true}, to create a missing element. */
function equalities(parent: AttributeDef, node: FilterNode): Json | undefined {
  if (node.kind === 'and') {
    const l = equalities(parent, node.left);
    const r = equalities(parent, node.right);
    return l && r ? { ...l, ...r } : undefined;
  }
  if (node.kind === 'compare' && node.op === 'eq' && node.attr.sub === undefined) {
    const sub = subAttribute(parent, node.attr.name);
    return sub ? { [sub.name]: node.value } : undefined;
  }
  return undefined;
}

// ---- the document ----

/** The object that holds the attribute at `location`, created on the way when `create`. */
function container(doc: Doc, location: readonly string[], create: boolean): Json | undefined {
  let node: Json = doc;
  for (const key of location.slice(0, -1)) {
    let next = node[key];
    if (!isObject(next)) {
      if (!create) return undefined;
      next = {};
      node[key] = next;
    }
    node = next as Json;
  }
  return node;
}

/** Drops containers left empty ({"name": {}}) after a removal. */
function prune(doc: Doc, location: readonly string[]): void {
  for (let depth = location.length - 1; depth > 0; depth--) {
    const holder = container(doc, location.slice(0, depth), false);
    const key = location[depth - 1];
    const value = holder?.[key];
    if (holder && isObject(value) && Object.keys(value).length === 0) delete holder[key];
  }
}

function sameElement(a: Json, b: Json): boolean {
  if (a.value !== undefined && b.value !== undefined) return String(a.value).toLowerCase() === String(b.value).toLowerCase() && (a.type ?? null) === (b.type ?? null);
  return JSON.stringify(a) === JSON.stringify(b);
}

/** A value marked primary takes the flag from every other value (RFC 7644 §3.5.2). */
function keepOnePrimary(list: Json[], chosen: readonly Json[]): void {
  if (!chosen.some((e) => toBoolean(e.primary) === true)) return;
  const winner = [...chosen].reverse().find((e) => toBoolean(e.primary) === true);
  for (const e of list) if (e !== winner && toBoolean(e.primary) === true) e.primary = false;
}

function readOnlyError(attr: ResolvedPath): ScimError {
  return badRequest('mutability', `${attr.path} is read-only and cannot be changed by PATCH.`);
}

class Patcher {
  readonly members: MemberChange[] = [];
  /** Member ids named by the operations so far: at most MAX_MEMBERS_PER_REQUEST in one PATCH. */
  private memberCount = 0;

  constructor(
    private readonly type: ResourceTypeDef,
    readonly doc: Doc,
    private readonly resourceId: string,
  ) {}

  apply(op: OpName, path: string | undefined, value: unknown): void {
    if (path === undefined) {
      if (op === 'remove') throw badRequest('noTarget', 'A remove operation needs a "path" naming what to remove.');
      if (!isObject(value)) throw badRequest('invalidValue', `An ${op} without "path" takes an object of attributes as "value".`);
      this.applyObject(op, value);
      return;
    }
    this.applyTarget(op, parsePath(this.type, path), path, value, false);
  }

  /** No path: every key is a path of its own ("name.givenName", "urn:…:User:employeeNumber", an extension). */
  private applyObject(op: OpName, value: Json): void {
    checkKeys(value, `The value of an ${op} without path`);
    for (const [key, v] of Object.entries(value)) {
      if (key.toLowerCase() === 'schemas') continue;
      let target: Target;
      try {
        target = parsePath(this.type, key);
      } catch {
        continue; // Unknown attributes in a value object are ignored, as in a POST body.
      }
      if (target.kind === 'attribute' && target.attr.path === 'id') {
        if (v !== this.resourceId) throw badRequest('mutability', `id is assigned by the bridge and cannot be changed (this resource's id is ${this.resourceId}).`);
        continue;
      }
      this.applyTarget(op, target, key, v, true);
    }
  }

  /**
   * The attribute a key of an extension's value object names; undefined for "schemas" and for keys that are
   * not attributes of the extension, which are ignored as in a POST body and a no-path value (RFC 7643 §3.1).
   */
  private extensionAttribute(urn: string, key: string): ResolvedPath | undefined {
    const text = splitAttrPath(key);
    if (!text) return undefined;
    try {
      const r = resolve(this.type, { ...text, uri: urn }, 'invalidPath');
      return r.kind === 'attribute' ? r.attr : undefined;
    } catch {
      return undefined;
    }
  }

  private applyTarget(op: OpName, target: Target, path: string, value: unknown, lenient: boolean): void {
    if (target.kind === 'extension') {
      if (op === 'remove') {
        delete this.doc[target.urn];
        return;
      }
      if (!isObject(value)) throw badRequest('invalidValue', `${target.urn} takes an object of its attributes.`);
      checkKeys(value, target.urn);
      for (const [k, v] of Object.entries(value)) {
        const attr = this.extensionAttribute(target.urn, k);
        if (attr) this.applyTarget(op, { kind: 'attribute', attr }, `${target.urn}:${k}`, v, true);
      }
      return;
    }
    const { attr } = target;
    const top = attr.parent ?? attr.def;
    if (top.mutability === 'readOnly' || attr.def.mutability === 'readOnly') {
      if (lenient) return; // A full object sent back (GET then PATCH) carries meta, groups: not an error.
      throw readOnlyError(attr);
    }
    if (attr.def.mutability === 'writeOnly') return; // password: accepted, never stored.
    if (this.type.kind === 'Group' && top.name === 'members') {
      this.applyMembers(op, target, path, value);
      return;
    }
    if (target.filter) {
      this.applyFiltered(op, attr, target.filter, target.filterText!, target.sub, path, value);
      return;
    }
    if (attr.parent?.multiValued) {
      this.applySubOfEach(op, attr, value);
      return;
    }
    const holder = container(this.doc, attr.location, op !== 'remove');
    const key = attr.location[attr.location.length - 1];
    if (op === 'remove') {
      if (!holder) return;
      if (attr.def.multiValued && value !== undefined && value !== null) {
        const gone = (readAttribute(attr.def, value, attr.path) as Json[] | undefined) ?? [];
        const left = ((holder[key] as Json[]) ?? []).filter((e) => !gone.some((g) => sameElement(e, g)));
        if (left.length > 0) holder[key] = left;
        else delete holder[key];
      } else {
        delete holder[key];
      }
      prune(this.doc, attr.location);
      return;
    }
    const incoming = readAttribute(attr.def, value, attr.path);
    if (incoming === undefined) {
      delete holder![key];
      prune(this.doc, attr.location);
      return;
    }
    if (attr.def.multiValued) {
      const list = op === 'add' && Array.isArray(holder![key]) ? [...(holder![key] as Json[])] : [];
      const added = (incoming as Json[]).filter((e) => !list.some((x) => sameElement(x, e)));
      list.push(...added);
      // Checked as the list grows, not only on the result: each operation compares with every element so far.
      checkValueCount(attr.def, list.length, attr.path);
      keepOnePrimary(list, added);
      holder![key] = list;
    } else if (attr.def.type === 'complex' && isObject(holder![key])) {
      // Replacing or adding a complex value changes the sub-attributes given and keeps the others.
      holder![key] = { ...(holder![key] as Json), ...(incoming as Json) };
    } else {
      holder![key] = attr.def.type === 'complex' ? incoming : value;
    }
  }

  /** "emails.value" without a filter: the primary element (or the first); created when there is none. */
  private applySubOfEach(op: OpName, attr: ResolvedPath, value: unknown): void {
    const holder = container(this.doc, attr.location.slice(0, -1), op !== 'remove');
    const listKey = attr.location[attr.location.length - 2];
    const list = (holder?.[listKey] as Json[] | undefined) ?? [];
    const sub = attr.def.name;
    if (op === 'remove') {
      for (const e of list) delete e[sub];
      return;
    }
    const target = list.find((e) => toBoolean(e.primary) === true) ?? list[0];
    if (target) target[sub] = value;
    else holder![listKey] = [{ [sub]: value }];
  }

  private applyFiltered(op: OpName, attr: ResolvedPath, filter: FilterNode, filterText: string, sub: AttributeDef | undefined, path: string, value: unknown): void {
    const holder = container(this.doc, attr.location, op !== 'remove');
    const key = attr.location[attr.location.length - 1];
    const list = [...((holder?.[key] as Json[] | undefined) ?? [])];
    const matched = list.filter((e) => elementMatches(attr.def, filter, e));
    if (op === 'remove') {
      if (sub) for (const e of matched) delete e[sub.name];
      const left = sub ? list : list.filter((e) => !matched.includes(e));
      if (holder) {
        if (left.length > 0) holder[key] = left;
        else delete holder[key];
        prune(this.doc, attr.location);
      }
      return;
    }
    let incoming: Json;
    if (sub) {
      incoming = { [sub.name]: value };
    } else {
      const read = readAttribute({ ...attr.def, multiValued: false }, value, attr.path);
      if (!isObject(read)) throw badRequest('invalidValue', `${path} takes an object of ${attr.def.name}'s sub-attributes.`);
      incoming = read;
    }
    if (matched.length === 0) {
      // Entra ID adds `emails[type eq "work"].value` to a user with no work email: create that element.
      const seed = equalities(attr.def, filter);
      if (!seed) throw badRequest('noTarget', `No value of ${attr.def.name} matches [${filterText}], so there is nothing to ${op}.`);
      const created = { ...seed, ...incoming };
      list.push(created);
      checkValueCount(attr.def, list.length, attr.path);
      keepOnePrimary(list, [created]);
    } else {
      for (const e of matched) {
        if (op === 'replace' && !sub) {
          for (const k of Object.keys(e)) delete e[k];
        }
        Object.assign(e, incoming);
      }
      keepOnePrimary(list, matched);
    }
    holder![key] = list;
  }

  private applyMembers(op: OpName, target: Target & { kind: 'attribute' }, path: string, value: unknown): void {
    if (target.attr.parent) throw invalidPath(path, 'changes a sub-attribute of members; add or remove whole members instead');
    if (target.filter) {
      if (op !== 'remove' || target.sub) throw invalidPath(path, 'filters members; only "remove" takes a filter on members (add and replace take a list of {"value": id})');
      this.members.push({ op: 'removeWhere', filter: resolveFilter(this.type, { kind: 'valuePath', attr: { name: 'members', at: 0 }, filter: target.filter }) });
      return;
    }
    const list = readAttribute(target.attr.def, value, 'members') as Json[] | undefined;
    const ids = list ? memberIds(list) : [];
    this.memberCount += ids.length;
    if (this.memberCount > MAX_MEMBERS_PER_REQUEST) checkValueCount(target.attr.def, this.memberCount, 'members');
    if (op === 'remove') {
      // Without a value, remove takes every member away.
      this.members.push(value === undefined || value === null ? { op: 'replace', ids: [] } : { op: 'remove', ids });
    } else {
      this.members.push({ op, ids });
    }
  }
}

function operationsOf(body: unknown): Json[] {
  if (!isObject(body)) throw badRequest('invalidSyntax', `A PATCH body is a JSON object: {"schemas": ["${URN.patchOp}"], "Operations": [...]}.`);
  const schemas = body.schemas;
  if (schemas !== undefined && (!Array.isArray(schemas) || !schemas.some((s) => typeof s === 'string' && s.toLowerCase() === URN.patchOp.toLowerCase()))) {
    throw badRequest('invalidSyntax', `A PATCH body's "schemas" must be ["${URN.patchOp}"].`);
  }
  const key = Object.keys(body).find((k) => k.toLowerCase() === 'operations');
  const ops = key ? body[key] : undefined;
  if (!Array.isArray(ops) || ops.length === 0) throw badRequest('invalidSyntax', 'A PATCH body needs "Operations": a non-empty list of {"op", "path", "value"}.');
  if (ops.length > MAX_OPERATIONS) throw badRequest('invalidSyntax', `A PATCH holds at most ${MAX_OPERATIONS} operations; this one has ${ops.length}. Split it.`);
  return ops.map((op, i) => {
    if (!isObject(op)) throw badRequest('invalidSyntax', `Operations[${i}] must be an object {"op", "path", "value"}.`);
    return op;
  });
}

/** Applies a PATCH body to a copy of `current`; returns the new document and the member changes. */
export function applyPatch(type: ResourceTypeDef, current: Doc, body: unknown, resourceId: string): PatchOutcome {
  const patcher = new Patcher(type, structuredClone(current), resourceId);
  operationsOf(body).forEach((operation, i) => {
    const field = (name: string) => operation[Object.keys(operation).find((k) => k.toLowerCase() === name) ?? name];
    const opText = field('op');
    const op = typeof opText === 'string' ? opText.toLowerCase() : '';
    if (op !== 'add' && op !== 'replace' && op !== 'remove') {
      throw badRequest('invalidSyntax', `Operations[${i}].op is ${preview(opText)}; it must be add, replace or remove.`);
    }
    const path = field('path');
    if (path !== undefined && path !== null && typeof path !== 'string') throw badRequest('invalidPath', `Operations[${i}].path must be a string.`);
    const value = field('value');
    if (op !== 'remove' && value === undefined) throw badRequest('invalidValue', `Operations[${i}] (${op}) needs a "value".`);
    patcher.apply(op, path === null || path === undefined || path.trim() === '' ? undefined : path.trim(), value);
  });
  return { doc: patcher.doc, members: patcher.members };
}
