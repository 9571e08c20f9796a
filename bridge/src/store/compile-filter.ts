/**
 * Resolved SCIM filters -> parameterised SQL, in two parts (see SqlStore's list):
 *
 * - `rowPredicate`: whether one row matches, evaluated on that row alone. Attributes with a column of their
 *   own compare on that column; every other attribute is a lookup of this resource's rows in attr_values
 *   (its primary key starts with res_id); group membership a lookup of this group's rows in group_members.
 *   It never builds a set over the whole table, so its cost per row is bounded by the filter's terms, and a
 *   scan can be cut into slices of rows.
 * - `candidates`: for one term, the ids of the resources it can match, found through an index (a b-tree on
 *   the value, or a trigram index for `co`/`ew`: SQLite's FTS5 index of texts, PostgreSQL's pg_trgm GIN index
 *   on the column). The store runs the filter from the candidates of a selective term, after a bounded count
 *   proves there are few.
 *
 * No filter is evaluated in memory.
 */
import { RawBuilder, sql } from 'kysely';
import { ScimError } from '../errors';
import type { CompareOp, StoreFilter } from './types';

export interface Column {
  readonly sql: string;
  readonly kind: 'text' | 'bool';
  /** Has a b-tree index: eq, ranges and sw find their candidates through it. */
  readonly indexed?: boolean;
  /** At most one row has a given value: `eq` needs no count. */
  readonly unique?: boolean;
  /** Its values are in `texts` (and so in the trigram index): co and ew find their candidates through it. */
  readonly texts?: boolean;
}

/** How one table's filters compile: which paths are columns, and how the other paths are found. */
export interface FilterTarget {
  /** The resource's table, and its alias in the query ("u"). */
  readonly table: 'users' | 'groups';
  readonly alias: string;
  readonly columns: Readonly<Record<string, Column>>;
  /** Where a path that is not a column lives, or undefined when it is not filterable. */
  readonly lookup?: (path: string) => 'values' | 'members' | undefined;
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

type Leaf = StoreFilter & { kind: 'compare' | 'present' };

/** The terms of an or-chain, flattened: `a or (b or c)` -> [a, b, c]. */
function orTerms(filter: StoreFilter): StoreFilter[] {
  return filter.kind === 'or' ? [...orTerms(filter.left), ...orTerms(filter.right)] : [filter];
}

/**
 * An or-chain where several terms compare the same multi-row path: "some row of path P satisfies A, or some
 * row of P satisfies B" is "some row of P satisfies A or B", one lookup instead of one per term.
 * `lookup(path, condition)` builds the exists-subquery for one path; `other` compiles the remaining terms.
 */
function mergedOr(
  filter: StoreFilter,
  mergeable: (f: StoreFilter) => f is Leaf,
  lookup: (path: string, condition: RawBuilder<boolean>) => RawBuilder<boolean>,
  condition: (f: Leaf) => RawBuilder<boolean>,
  other: (f: StoreFilter) => RawBuilder<boolean>,
): RawBuilder<boolean> {
  const byPath = new Map<string, Leaf[]>();
  const parts: (StoreFilter | string)[] = [];
  for (const term of orTerms(filter)) {
    if (!mergeable(term)) {
      parts.push(term);
      continue;
    }
    const same = byPath.get(term.path);
    if (same) same.push(term);
    else {
      byPath.set(term.path, [term]);
      parts.push(term.path);
    }
  }
  const compiled = parts.map((p) => {
    if (typeof p !== 'string') return other(p);
    const terms = byPath.get(p)!;
    // `pr` on the path: any row at all.
    if (terms.some((t) => t.kind === 'present')) return lookup(p, TRUE);
    return lookup(p, terms.length === 1 ? condition(terms[0]) : sql<boolean>`(${sql.join(terms.map(condition), sql` or `)})`);
  });
  return sql<boolean>`(${sql.join(compiled, sql` or `)})`;
}

/** A comparison that holds when some row of the path satisfies it (everything but `ne`, which is "no row equals"). */
const positive = (f: StoreFilter): f is Leaf => f.kind === 'present' || (f.kind === 'compare' && f.op !== 'ne');
const leafCondition = (column: RawBuilder<unknown>) => (f: Leaf) => (f.kind === 'present' ? TRUE : comparison(column, f.op, f.value));

/**
 * Whether the row `target.alias` matches the filter, computed from that row alone (lookups by its id): the
 * same predicate serves the indexed plan (on candidates) and the sliced scan (on every row of a slice).
 */
export function rowPredicate(filter: StoreFilter, target: FilterTarget): RawBuilder<boolean> {
  const id = sql.ref(`${target.alias}.id`);
  const values = (path: string, condition: RawBuilder<boolean>) =>
    sql<boolean>`exists (select 1 from attr_values a where a.res_id = ${id} and a.path = ${path} and ${condition})`;
  const members = (condition: RawBuilder<boolean>) => sql<boolean>`exists (select 1 from group_members m where m.group_id = ${id} and ${condition})`;
  const isValuesLeaf = (f: StoreFilter): f is Leaf => positive(f) && !target.columns[(f as Leaf).path] && target.lookup?.((f as Leaf).path) === 'values';

  const recurse = (f: StoreFilter): RawBuilder<boolean> => {
    switch (f.kind) {
      case 'constant':
        return f.value ? TRUE : FALSE;
      case 'and':
        return sql<boolean>`(${recurse(f.left)} and ${recurse(f.right)})`;
      case 'or':
        return mergedOr(f, isValuesLeaf, values, leafCondition(sql.ref('a.v')), recurse);
      case 'not':
        return sql<boolean>`not (${recurse(f.operand)})`;
      case 'compare':
      case 'present': {
        const col = target.columns[f.path];
        if (col) return columnPredicate(col, target.alias, f);
        const where = target.lookup?.(f.path);
        if (where === 'values') {
          if (f.kind === 'compare' && f.op === 'ne') return sql<boolean>`not ${values(f.path, sql<boolean>`a.v = ${f.value}`)}`;
          return values(f.path, leafCondition(sql.ref('a.v'))(f));
        }
        if (where === 'members') {
          if (f.kind === 'compare' && f.op === 'ne') return sql<boolean>`not ${members(memberPredicate({ ...f, op: 'eq' }, 'm'))}`;
          return members(memberPredicate(f, 'm'));
        }
        return notFilterable(f.path);
      }
      case 'element': {
        const where = target.lookup?.(f.path);
        if (where === 'members') return members(memberPredicate(f.filter, 'm'));
        if (where !== 'values') return notFilterable(f.path);
        // One marker row per element ("emails", idx, ''): conditions on sub-attributes hold for the same idx.
        return sql<boolean>`exists (select 1 from attr_values e where e.res_id = ${id} and e.path = ${f.path} and e.v = '' and ${elementPredicate(f.filter)})`;
      }
    }
  };
  return recurse(filter);
}

function elementPredicate(filter: StoreFilter): RawBuilder<boolean> {
  const sub = (path: string, condition: RawBuilder<boolean>) =>
    sql<boolean>`exists (select 1 from attr_values b where b.res_id = e.res_id and b.idx = e.idx and b.path = ${path} and ${condition})`;
  switch (filter.kind) {
    case 'constant':
      return filter.value ? TRUE : FALSE;
    case 'and':
      return sql<boolean>`(${elementPredicate(filter.left)} and ${elementPredicate(filter.right)})`;
    case 'or':
      return mergedOr(filter, positive, sub, leafCondition(sql.ref('b.v')), elementPredicate);
    case 'not':
      return sql<boolean>`not (${elementPredicate(filter.operand)})`;
    case 'present':
      return sub(filter.path, TRUE);
    case 'compare':
      if (filter.op === 'ne') return sql<boolean>`not (${elementPredicate({ ...filter, op: 'eq' })})`;
      return sub(filter.path, comparison(sql.ref('b.v'), filter.op, filter.value));
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

// ---- candidates: the ids one term can match, through an index ----

/** How many terms (comparisons and presence tests) a filter holds. */
export function countTerms(filter: StoreFilter): number {
  switch (filter.kind) {
    case 'and':
    case 'or':
      return countTerms(filter.left) + countTerms(filter.right);
    case 'not':
      return countTerms(filter.operand);
    case 'element':
      return countTerms(filter.filter);
    case 'constant':
      return 0;
    default:
      return 1;
  }
}

/** The trigrams of a text as SQLite's trigram tokenizer cuts them (by code point), without repeats. */
export function trigrams(text: string): string[] {
  const chars = [...text];
  const out = new Set<string>();
  for (let i = 0; i + 3 <= chars.length; i++) out.add(chars.slice(i, i + 3).join(''));
  return [...out];
}

/** The FTS5 query for one trigram: a quoted string, quotes doubled. */
export function trigramQuery(trigram: string): string {
  return `"${trigram.replace(/"/g, '""')}"`;
}

/**
 * The ways to find one term's candidates (a query selecting `id`), or undefined when no index narrows it
 * (`ne`, `not`, booleans, `pr` on a column, substrings shorter than a trigram).
 * `substring` (for `co`/`ew` on SQLite) gets the trigram chosen by the caller, which checked how many texts hold it.
 * On PostgreSQL a substring is an `index` source: the LIKE itself, which pg_trgm's GIN index serves.
 */
export type Source =
  | { readonly kind: 'index'; readonly ids: RawBuilder<unknown> }
  | { readonly kind: 'substring'; readonly operand: string; readonly ids: (trigram: string) => RawBuilder<unknown> };

const ORDERED: readonly CompareOp[] = ['eq', 'gt', 'ge', 'lt', 'le', 'sw'];

/** Which trigram index serves `co` and `ew`: SQLite's FTS5 table of texts, or pg_trgm's GIN index on each column. */
export type SubstringIndex = 'fts5' | 'pg_trgm';

export function termSource(term: Leaf, target: FilterTarget, substrings: SubstringIndex): Source | undefined {
  // CROSS JOIN keeps the texts holding the trigram as the outer loop (else the planner may walk the whole path).
  const fts = (trigram: string) => sql`(select rowid as tid from texts_fts where texts_fts match ${trigramQuery(trigram)}) f cross join texts t on t.id = f.tid`;
  const usable = (v: string) => [...v].length >= 3 && !v.includes('\u0000');
  const col = target.columns[term.path];
  if (col) {
    if (term.kind !== 'compare' || col.kind !== 'text') return undefined;
    const ref = sql.ref(`x.${col.sql}`);
    if (col.indexed && ORDERED.includes(term.op)) {
      return { kind: 'index', ids: sql`select x.id as id from ${sql.table(target.table)} x where ${comparison(ref, term.op, term.value)}` };
    }
    if (col.texts && (term.op === 'co' || term.op === 'ew') && usable(term.value) && substrings === 'pg_trgm') {
      return { kind: 'index', ids: sql`select x.id as id from ${sql.table(target.table)} x where ${comparison(ref, term.op, term.value)}` };
    }
    if (col.texts && (term.op === 'co' || term.op === 'ew') && usable(term.value)) {
      return {
        kind: 'substring',
        operand: term.value,
        ids: (trigram) =>
          sql`select x.id as id from ${fts(trigram)} cross join ${sql.table(target.table)} x on ${ref} = t.v where ${comparison(sql.ref('t.v'), term.op, term.value)}`,
      };
    }
    return undefined;
  }
  const where = target.lookup?.(term.path);
  if (where === 'values') {
    if (term.kind === 'present') return { kind: 'index', ids: sql`select a.res_id as id from attr_values a where a.path = ${term.path}` };
    if (ORDERED.includes(term.op)) {
      return { kind: 'index', ids: sql`select a.res_id as id from attr_values a where a.path = ${term.path} and ${comparison(sql.ref('a.v'), term.op, term.value)}` };
    }
    if ((term.op === 'co' || term.op === 'ew') && usable(term.value) && substrings === 'pg_trgm') {
      return { kind: 'index', ids: sql`select a.res_id as id from attr_values a where a.path = ${term.path} and ${comparison(sql.ref('a.v'), term.op, term.value)}` };
    }
    if ((term.op === 'co' || term.op === 'ew') && usable(term.value)) {
      return {
        kind: 'substring',
        operand: term.value,
        ids: (trigram) =>
          sql`select a.res_id as id from ${fts(trigram)} cross join attr_values a on a.path = ${term.path} and a.v = t.v where ${comparison(sql.ref('t.v'), term.op, term.value)}`,
      };
    }
    return undefined;
  }
  if (where === 'members' && term.kind === 'compare' && term.op === 'eq' && MEMBER_COLUMNS[term.path] === 'member_id') {
    return { kind: 'index', ids: sql`select m.group_id as id from group_members m where m.member_id = ${term.value}` };
  }
  return undefined;
}
