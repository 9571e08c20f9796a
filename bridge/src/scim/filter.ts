/**
 * The SCIM filter language (RFC 7644 §3.4.2.2) parsed into a syntax tree, with errors that name the
 * position of the problem. Attribute names here are raw text; `resolve.ts` checks them against a schema.
 */
import { badRequest } from '../errors';

export type CompareOp = 'eq' | 'ne' | 'co' | 'sw' | 'ew' | 'gt' | 'lt' | 'ge' | 'le';
export type FilterValue = string | number | boolean | null;

export interface AttrPathText {
  /** Schema URN prefix, when the name was qualified ("urn:…:enterprise:2.0:User"). */
  readonly uri?: string;
  readonly name: string;
  readonly sub?: string;
  /** Offset in the filter text, for error messages. */
  readonly at: number;
}

export type FilterNode =
  | { readonly kind: 'and' | 'or'; readonly left: FilterNode; readonly right: FilterNode }
  | { readonly kind: 'not'; readonly operand: FilterNode }
  | { readonly kind: 'compare'; readonly attr: AttrPathText; readonly op: CompareOp; readonly value: FilterValue }
  | { readonly kind: 'present'; readonly attr: AttrPathText }
  | { readonly kind: 'valuePath'; readonly attr: AttrPathText; readonly filter: FilterNode };

export const MAX_FILTER_LENGTH = 4096;
const MAX_DEPTH = 32;
const MAX_TERMS = 20;
const COMPARE_OPS = new Set<string>(['eq', 'ne', 'co', 'sw', 'ew', 'gt', 'lt', 'ge', 'le']);

type Token =
  | { type: 'word'; text: string; at: number }
  | { type: 'string'; value: string; at: number }
  | { type: '(' | ')' | '[' | ']'; at: number }
  | { type: 'end'; at: number };

function fail(text: string, at: number, what: string): never {
  const near = at >= text.length ? 'at the end of the filter' : `at position ${at + 1} (near '${text.slice(at, at + 12)}')`;
  throw badRequest('invalidFilter', `Invalid filter ${near}: ${what}. Filters look like: userName eq "bjensen@example.com".`);
}

const WORD_CHAR = /[A-Za-z0-9_$:.\-+@#/]/;

function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < text.length) {
    const c = text[i];
    if (c === ' ' || c === '\t' || c === '\n' || c === '\r') {
      i++;
    } else if (c === '(' || c === ')' || c === '[' || c === ']') {
      tokens.push({ type: c, at: i });
      i++;
    } else if (c === '"') {
      const start = i;
      i++;
      let raw = '"';
      while (i < text.length && text[i] !== '"') {
        if (text[i] === '\\') {
          raw += text[i++];
          if (i >= text.length) break;
        }
        raw += text[i++];
      }
      if (i >= text.length) fail(text, start, 'the string that starts here is not closed with "');
      raw += '"';
      i++;
      let value: unknown;
      try {
        value = JSON.parse(raw);
      } catch {
        fail(text, start, 'the string holds an invalid escape sequence');
      }
      tokens.push({ type: 'string', value: value as string, at: start });
    } else if (WORD_CHAR.test(c)) {
      const start = i;
      while (i < text.length && WORD_CHAR.test(text[i])) i++;
      tokens.push({ type: 'word', text: text.slice(start, i), at: start });
    } else {
      fail(text, i, `unexpected character '${c}'`);
    }
  }
  tokens.push({ type: 'end', at: text.length });
  return tokens;
}

const ATTR_NAME = /^(\$ref|[A-Za-z][A-Za-z0-9_-]*)$/;

function parseAttrPath(text: string, word: string, at: number): AttrPathText {
  let uri: string | undefined;
  let rest = word;
  const colon = word.lastIndexOf(':');
  if (colon >= 0) {
    uri = word.slice(0, colon);
    rest = word.slice(colon + 1);
    if (!uri.toLowerCase().startsWith('urn:')) fail(text, at, `'${word}' is not an attribute name`);
  }
  const dot = rest.indexOf('.');
  const name = dot >= 0 ? rest.slice(0, dot) : rest;
  const sub = dot >= 0 ? rest.slice(dot + 1) : undefined;
  if (!ATTR_NAME.test(name) || (sub !== undefined && !ATTR_NAME.test(sub))) {
    fail(text, at, `'${word}' is not an attribute name (expected name, name.subAttribute or a schema URN followed by ':name')`);
  }
  return { uri, name, sub, at };
}

function parseValueWord(word: string): FilterValue {
  const lower = word.toLowerCase();
  if (lower === 'true') return true;
  if (lower === 'false') return false;
  if (lower === 'null') return null;
  if (/^-?\d+(\.\d+)?([eE][+-]?\d+)?$/.test(word)) return Number(word);
  // RFC 7644 wants strings quoted; Entra ID's documentation sends `externalId eq jyoung`. Accept it as a string.
  return word;
}

/** Parses a SCIM filter. Throws 400 invalidFilter naming the position of the first problem. */
export function parseFilter(text: string): FilterNode {
  if (text.length > MAX_FILTER_LENGTH) {
    throw badRequest('invalidFilter', `The filter is ${text.length} characters long; at most ${MAX_FILTER_LENGTH} are accepted.`);
  }
  const tokens = tokenize(text);
  let pos = 0;
  let terms = 0;
  const peek = () => tokens[pos];
  const isWord = (t: Token, w: string) => t.type === 'word' && t.text.toLowerCase() === w;

  function expect(type: ')' | ']', what: string): void {
    const t = peek();
    if (t.type !== type) fail(text, t.at, `expected '${type}' ${what}`);
    pos++;
  }

  function parseOr(depth: number, inValuePath: boolean): FilterNode {
    let left = parseAnd(depth, inValuePath);
    while (isWord(peek(), 'or')) {
      pos++;
      left = { kind: 'or', left, right: parseAnd(depth, inValuePath) };
    }
    return left;
  }

  function parseAnd(depth: number, inValuePath: boolean): FilterNode {
    let left = parseUnary(depth, inValuePath);
    while (isWord(peek(), 'and')) {
      pos++;
      left = { kind: 'and', left, right: parseUnary(depth, inValuePath) };
    }
    return left;
  }

  function parseUnary(depth: number, inValuePath: boolean): FilterNode {
    if (depth > MAX_DEPTH) fail(text, peek().at, `filters nest at most ${MAX_DEPTH} levels deep`);
    const t = peek();
    if (isWord(t, 'not')) {
      pos++;
      const open = peek();
      if (open.type !== '(') fail(text, open.at, "'not' must be followed by a parenthesised filter: not (…)");
      pos++;
      const operand = parseOr(depth + 1, inValuePath);
      expect(')', 'to close the parenthesis opened after not');
      return { kind: 'not', operand };
    }
    if (t.type === '(') {
      pos++;
      const inner = parseOr(depth + 1, inValuePath);
      expect(')', `to close the parenthesis opened at position ${t.at + 1}`);
      return inner;
    }
    if (t.type !== 'word') fail(text, t.at, t.type === 'end' ? 'a comparison was expected' : 'an attribute name was expected');
    pos++;
    if (++terms > MAX_TERMS) fail(text, t.at, `a filter holds at most ${MAX_TERMS} comparisons; split it into several requests`);
    const attr = parseAttrPath(text, t.text, t.at);
    const next = peek();
    if (next.type === '[') {
      if (inValuePath) fail(text, next.at, 'value filters cannot be nested');
      if (attr.sub !== undefined) fail(text, next.at, 'a value filter applies to an attribute, not a sub-attribute');
      pos++;
      const filter = parseOr(depth + 1, true);
      expect(']', `to close the value filter opened at position ${next.at + 1}`);
      const after = peek();
      if (after.type === 'word' && after.text.startsWith('.')) {
        // Rippling: `emails[primary eq true].value eq "x"` means `emails[primary eq true and value eq "x"]`.
        pos++;
        const sub = after.text.slice(1);
        if (!ATTR_NAME.test(sub)) fail(text, after.at, `'${after.text}' is not a sub-attribute (expected .value, .type, …)`);
        const condition = parseComparison({ name: sub, at: after.at + 1 }, `${t.text}[…]${after.text}`);
        return { kind: 'valuePath', attr, filter: { kind: 'and', left: filter, right: condition } };
      }
      return { kind: 'valuePath', attr, filter };
    }
    return parseComparison(attr, t.text);
  }

  /** The operator and value after an attribute path. */
  function parseComparison(attr: AttrPathText, shown: string): FilterNode {
    const next = peek();
    if (next.type !== 'word') fail(text, next.at, `an operator (eq, ne, co, sw, ew, gt, ge, lt, le, pr) was expected after '${shown}'`);
    const op = next.text.toLowerCase();
    pos++;
    if (op === 'pr') return { kind: 'present', attr };
    if (!COMPARE_OPS.has(op)) fail(text, next.at, `'${next.text}' is not an operator (eq, ne, co, sw, ew, gt, ge, lt, le, pr)`);
    const v = peek();
    if (v.type === 'string') {
      pos++;
      return { kind: 'compare', attr, op: op as CompareOp, value: v.value };
    }
    if (v.type === 'word' && !['and', 'or'].includes(v.text.toLowerCase())) {
      pos++;
      return { kind: 'compare', attr, op: op as CompareOp, value: parseValueWord(v.text) };
    }
    return fail(text, v.at, `a value was expected after '${next.text}' (a "quoted string", a number, true, false or null)`);
  }

  const trimmed = text.trim();
  if (trimmed === '') fail(text, 0, 'the filter is empty');
  const tree = parseOr(0, false);
  const rest = peek();
  if (rest.type !== 'end') {
    fail(text, rest.at, rest.type === 'word' ? `'and' or 'or' was expected before '${rest.text}'` : `unexpected '${rest.type}'`);
  }
  return tree;
}
