/**
 * Attribute names resolved against a resource type: case-insensitive, URN-qualified or not, legacy URNs
 * accepted. Filters, PATCH paths, `attributes`/`excludedAttributes` and `sortBy` all resolve here.
 */
import { badRequest, ScimType } from '../errors';
import type { AttrPathText } from './filter';
import { AttributeDef, ResourceTypeDef, schemaAliases, topLevelAttributes } from './schemas';

export interface ResolvedPath {
  /** The attribute's definition (the sub-attribute's when there is one). */
  readonly def: AttributeDef;
  /** The top-level attribute, when `def` is a sub-attribute. */
  readonly parent?: AttributeDef;
  /** Where it lives in a resource's JSON: ["name","givenName"], ["urn:…:enterprise:2.0:User","manager","value"]. */
  readonly location: readonly string[];
  /** The store's canonical path: "name.givenName", "urn:…:enterprise:2.0:User:manager.value". */
  readonly path: string;
  /** The URN of the extension the attribute belongs to, when it is not core. */
  readonly extension?: string;
}

/** Either one attribute, or a whole extension ("urn:…:enterprise:2.0:User" as a PATCH path). */
export type Resolution = { readonly kind: 'attribute'; readonly attr: ResolvedPath } | { readonly kind: 'extension'; readonly urn: string };

interface TypeIndex {
  readonly core: Map<string, AttributeDef>;
  readonly extensions: Map<string, { urn: string; attrs: Map<string, AttributeDef> }>;
  readonly coreUrn: string;
}

const indexes = new WeakMap<ResourceTypeDef, TypeIndex>();

function indexOf(type: ResourceTypeDef): TypeIndex {
  let index = indexes.get(type);
  if (!index) {
    const core = new Map<string, AttributeDef>();
    for (const { schema, def } of topLevelAttributes(type)) if (schema === type.schema.id) core.set(def.name.toLowerCase(), def);
    const extensions = new Map<string, { urn: string; attrs: Map<string, AttributeDef> }>();
    for (const ext of type.extensions) {
      extensions.set(ext.id.toLowerCase(), { urn: ext.id, attrs: new Map(ext.attributes.map((a) => [a.name.toLowerCase(), a])) });
    }
    index = { core, extensions, coreUrn: type.schema.id };
    indexes.set(type, index);
  }
  return index;
}

/** The canonical URN for a schema name as a client wrote it, or undefined when this type has no such schema. */
export function canonicalUrn(type: ResourceTypeDef, urn: string): string | undefined {
  const lower = urn.toLowerCase();
  const aliased = (schemaAliases[lower] ?? urn).toLowerCase();
  if (aliased === type.schema.id.toLowerCase()) return type.schema.id;
  return indexOf(type).extensions.get(aliased)?.urn;
}

export function subAttribute(def: AttributeDef, name: string): AttributeDef | undefined {
  const lower = name.toLowerCase();
  return def.subAttributes?.find((s) => s.name.toLowerCase() === lower);
}

function located(def: AttributeDef, sub: AttributeDef | undefined, extension: string | undefined): ResolvedPath {
  const location = [...(extension ? [extension] : []), def.name, ...(sub ? [sub.name] : [])];
  const local = sub ? `${def.name}.${sub.name}` : def.name;
  return {
    def: sub ?? def,
    parent: sub ? def : undefined,
    location,
    path: extension ? `${extension}:${local}` : local,
    extension,
  };
}

/**
 * Resolves `[urn:]name[.sub]`. Unknown names throw 400 with `scimType` (invalidFilter for filters,
 * invalidPath for PATCH paths, invalidValue for query parameters).
 */
export function resolve(type: ResourceTypeDef, text: AttrPathText, scimType: ScimType): Resolution {
  const index = indexOf(type);
  const shown = `${text.uri ? text.uri + ':' : ''}${text.name}${text.sub ? '.' + text.sub : ''}`;
  const unknown = (): never => {
    throw badRequest(scimType, `'${shown}' is not an attribute of ${type.schema.name}; see /Schemas for the attributes this bridge knows.`);
  };
  let extension: string | undefined;
  let attrs = index.core;
  if (text.uri !== undefined) {
    const urn = canonicalUrn(type, text.uri);
    if (urn === undefined) {
      // "urn:…:enterprise:2.0:User" splits into uri "urn:…:enterprise:2.0" and name "User": the whole extension.
      const whole = canonicalUrn(type, `${text.uri}:${text.name}`);
      if (whole && whole !== index.coreUrn && text.sub === undefined) return { kind: 'extension', urn: whole };
      if (whole === index.coreUrn) return unknown();
      throw badRequest(scimType, `'${text.uri}' is not a schema of ${type.schema.name}; use ${[index.coreUrn, ...[...index.extensions.values()].map((e) => e.urn)].join(' or ')}.`);
    }
    if (urn !== index.coreUrn) {
      extension = urn;
      attrs = index.extensions.get(urn.toLowerCase())!.attrs;
    }
  }
  let def = attrs.get(text.name.toLowerCase());
  if (!def && text.uri === undefined) {
    // An unqualified name that only an extension has (some clients send "employeeNumber" bare).
    for (const ext of index.extensions.values()) {
      const found = ext.attrs.get(text.name.toLowerCase());
      if (found) {
        def = found;
        extension = ext.urn;
        break;
      }
    }
  }
  if (!def) return unknown();
  let sub: AttributeDef | undefined;
  if (text.sub !== undefined) {
    sub = subAttribute(def, text.sub);
    if (!sub) {
      throw badRequest(scimType, `'${shown}': ${def.name} has no sub-attribute '${text.sub}'${def.subAttributes ? ` (it has ${def.subAttributes.map((s) => s.name).join(', ')})` : ''}.`);
    }
  }
  return { kind: 'attribute', attr: located(def, sub, extension) };
}

export function resolveAttribute(type: ResourceTypeDef, text: AttrPathText, scimType: ScimType): ResolvedPath {
  const r = resolve(type, text, scimType);
  if (r.kind === 'extension') throw badRequest(scimType, `'${r.urn}' names a whole schema; name one of its attributes.`);
  return r.attr;
}

/** Splits "urn:…:User:manager.value" / "name.givenName" into its parts (no filters). */
export function splitAttrPath(text: string, at = 0): AttrPathText | undefined {
  const m = /^(?:(urn:[A-Za-z0-9:._-]+):)?((?:\$ref)|[A-Za-z][\w-]*)(?:\.((?:\$ref)|[A-Za-z][\w-]*))?$/i.exec(text.trim());
  if (!m) return undefined;
  return { uri: m[1], name: m[2], sub: m[3], at };
}
