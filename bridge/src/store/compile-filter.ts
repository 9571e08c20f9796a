/**
 * Resolved SCIM filters -> parameterised SQL. Attributes with a column of their own compare on that
 * column; every other attribute is a lookup in attr_values' (path, v) index; group membership is a
 * lookup in group_members. No filter is evaluated in memory.
 */
import { RawBuilder, sql } from 'kysely';
import { ScimError } from '../errors';
import type { CompareOp, StoreFilter } from './types';

export interface Column {
  readonly sql: string;
  readonly kind: 'text' | 'bool';
}

/** How one table's filters compile: which paths are columns, and how the other paths are found. */
export interface FilterTarget {
  /** The alias of the resource's table in the query, e.g. "u". */
  readonly alias: string;
  readonly columns: Readonly<Record<string, Column>>;
  /** A path that is not a column: an IN-subquery on the resource's id, or undefined when not filterable. */
  readonly lookup?: (path: string) => 'values' | 'members' | undefined;
  /**
   * The resource's table. Given, an `or` compiles to `id in (… union …)`: PostgreSQL cannot combine an IN-subquery
   * with another condition by index under OR (it scans every row and probes the subquery), while each branch of a
   * union is an index lookup. SQLite's OR optimisation does that itself; its target leaves this out.
   */
  readonly orAsUnion?: { readonly table: string };
}

const TRUE = sql<boolean>`1 = 1`;
const FALSE = sql<boolean>`1 = 0`;

function likeEscape(value: string): string {
  return value.replace(/[\\%_]/g, (c) => `\\${c}`);
}

/** The highest code point: `prefix` <= v < `prefix + MAX` is "v starts with prefix" under binary collation. */
const MAX_CHAR = String.fromCodePoint(0x10ffff);

function comparison(column: RawBuilder<unknown>, op: CompareOp, value: string): RawBuilder<boolean> {
  switch (op) {
    case 'eq':
      return sql<boolean>`${column} = ${value}`;
    case 'ne':
      return sql<boolean>`${column} <> ${value}`;
    case 'gt':
      return sql<boolean>`${column} > ${value}`;
    case 'ge':
      return sql<boolean>`${column} >= ${value}`;
    case 'lt':
      return sql<boolean>`${column} < ${value}`;
    case 'le':
      return sql<boolean>`${column} <= ${value}`;
    case 'sw':
      // A range, not LIKE: it walks the index under binary collation.
      return sql<boolean>`(${column} >= ${value} and ${column} < ${value + MAX_CHAR})`;
    case 'ew':
      return sql<boolean>`${column} like ${'%' + likeEscape(value)} escape '\\'`;
    case 'co':
      return sql<boolean>`${column} like ${'%' + likeEscape(value) + '%'} escape '\\'`;
  }
}

function notFilterable(path: string): never {
  throw new ScimError(400, `The attribute '${path}' cannot be used in a filter here.`, 'invalidFilter');
}

function columnPredicate(col: Column, alias: string, filter: StoreFilter & { kind: 'compare' | 'present' }): RawBuilder<boolean> {
  const ref = sql.ref(`${alias}.${col.sql}`);
  if (filter.kind === 'present') {
    return col.kind === 'bool' ? sql<boolean>`${ref} is not null` : sql<boolean>`(${ref} is not null and ${ref} <> '')`;
  }
  if (col.kind === 'bool') {
    const bit = filter.value === 'true' ? 1 : 0;
    return filter.op === 'ne' ? sql<boolean>`${ref} <> ${bit}` : sql<boolean>`${ref} = ${bit}`;
  }
  // A missing value is "not equal" to anything.
  if (filter.op === 'ne') return sql<boolean>`(${ref} is null or ${ref} <> ${filter.value})`;
  return comparison(ref, filter.op, filter.value);
}

/** Compiles a resource filter to a WHERE predicate on `target.alias`. */
export function compileFilter(filter: StoreFilter, target: FilterTarget): RawBuilder<boolean> {
  const id = sql.ref(`${target.alias}.id`);
  const recurse = (f: StoreFilter): RawBuilder<boolean> => {
    switch (f.kind) {
      case 'constant':
        return f.value ? TRUE : FALSE;
      case 'and':
        return sql<boolean>`(${recurse(f.left)} and ${recurse(f.right)})`;
      case 'or': {
        if (!target.orAsUnion) return sql<boolean>`(${recurse(f.left)} or ${recurse(f.right)})`;
        // Inside, the alias names the inner table: each branch's predicate applies to its own select.
        const from = sql`${sql.table(target.orAsUnion.table)} as ${sql.table(target.alias)}`;
        return sql<boolean>`${id} in (select ${id} from ${from} where ${recurse(f.left)} union select ${id} from ${from} where ${recurse(f.right)})`;
      }
      case 'not':
        return sql<boolean>`not (${recurse(f.operand)})`;
      case 'compare':
      case 'present': {
        const col = target.columns[f.path];
        if (col) return columnPredicate(col, target.alias, f);
        const where = target.lookup?.(f.path);
        if (where === 'values') {
          if (f.kind === 'present') return sql<boolean>`${id} in (select res_id from attr_values where path = ${f.path})`;
          if (f.op === 'ne') {
            return sql<boolean>`${id} not in (select res_id from attr_values where path = ${f.path} and v = ${f.value})`;
          }
          return sql<boolean>`${id} in (select a.res_id from attr_values a where a.path = ${f.path} and ${comparison(sql.ref('a.v'), f.op, f.value)})`;
        }
        if (where === 'members') {
          const m = memberPredicate(f, 'm');
          if (f.kind === 'compare' && f.op === 'ne') {
            return sql<boolean>`${id} not in (select m.group_id from group_members m where ${memberPredicate({ ...f, op: 'eq' }, 'm')})`;
          }
          return sql<boolean>`${id} in (select m.group_id from group_members m where ${m})`;
        }
        return notFilterable(f.path);
      }
      case 'element': {
        const where = target.lookup?.(f.path);
        if (where === 'members') {
          return sql<boolean>`${id} in (select m.group_id from group_members m where ${memberPredicate(f.filter, 'm')})`;
        }
        if (where !== 'values') return notFilterable(f.path);
        // One marker row per element ("emails", idx, ''): conditions on sub-attributes hold for the same idx.
        return sql<boolean>`${id} in (select e.res_id from attr_values e where e.path = ${f.path} and e.v = '' and ${elementPredicate(f.filter)})`;
      }
    }
  };
  return recurse(filter);
}

function elementPredicate(filter: StoreFilter): RawBuilder<boolean> {
  switch (filter.kind) {
    case 'constant':
      return filter.value ? TRUE : FALSE;
    case 'and':
      return sql<boolean>`(${elementPredicate(filter.left)} and ${elementPredicate(filter.right)})`;
    case 'or':
      return sql<boolean>`(${elementPredicate(filter.left)} or ${elementPredicate(filter.right)})`;
    case 'not':
      return sql<boolean>`not (${elementPredicate(filter.operand)})`;
    case 'present':
      return sql<boolean>`exists (select 1 from attr_values b where b.res_id = e.res_id and b.idx = e.idx and b.path = ${filter.path})`;
    case 'compare':
      if (filter.op === 'ne') return sql<boolean>`not (${elementPredicate({ ...filter, op: 'eq' })})`;
      return sql<boolean>`exists (select 1 from attr_values b where b.res_id = e.res_id and b.idx = e.idx and b.path = ${filter.path} and ${comparison(sql.ref('b.v'), filter.op, filter.value)})`;
    case 'element':
      return notFilterable(filter.path);
  }
}

const MEMBER_COLUMNS: Record<string, string> = {
  members: 'member_id',
  'members.value': 'member_id',
  'members.type': 'member_type',
};

/** A predicate on group_members rows (alias `alias`): filters on members, and PATCH removes by filter. */
export function memberPredicate(filter: StoreFilter, alias: string): RawBuilder<boolean> {
  switch (filter.kind) {
    case 'constant':
      return filter.value ? TRUE : FALSE;
    case 'and':
      return sql<boolean>`(${memberPredicate(filter.left, alias)} and ${memberPredicate(filter.right, alias)})`;
    case 'or':
      return sql<boolean>`(${memberPredicate(filter.left, alias)} or ${memberPredicate(filter.right, alias)})`;
    case 'not':
      return sql<boolean>`not (${memberPredicate(filter.operand, alias)})`;
    case 'element':
      return memberPredicate(filter.filter, alias);
    case 'present':
    case 'compare': {
      const column = MEMBER_COLUMNS[filter.path];
      if (!column) return notFilterable(filter.path);
      const ref = sql.ref(`${alias}.${column}`);
      if (filter.kind === 'present') return sql<boolean>`${ref} is not null`;
      return comparison(ref, filter.op, filter.value);
    }
  }
}
