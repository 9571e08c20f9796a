/** Values checked and normalised by their attribute's type: the same rules for bodies, PATCH and filters. */
import { badRequest } from '../errors';
import { foldCase } from '../directory';
import type { AttributeDef } from './schemas';

/** "true"/"False"/"TRUE" as booleans: Entra ID sends `"active": "False"`. */
export function toBoolean(value: unknown): boolean | undefined {
  if (typeof value === 'boolean') return value;
  if (typeof value === 'string') {
    const lower = value.trim().toLowerCase();
    if (lower === 'true') return true;
    if (lower === 'false') return false;
  }
  return undefined;
}

export function toDateTime(value: unknown): string | undefined {
  if (typeof value !== 'string' || !/^\d{4}-\d{2}-\d{2}/.test(value)) return undefined;
  const ms = Date.parse(value);
  return Number.isNaN(ms) ? undefined : new Date(ms).toISOString();
}

const MAX_STRING = 65536;

/** A short, safe picture of what a client sent, for error details: never deep, never long. */
export function preview(value: unknown): string {
  if (value === null || typeof value === 'boolean' || typeof value === 'number') return String(value);
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? value.slice(0, 40) + '…' : value);
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'an object';
  return typeof value;
}

/**
 * A simple (non-complex) value as it will be stored, or a 400 invalidValue naming the attribute and
 * what it takes.
 */
export function coerceSimple(def: AttributeDef, value: unknown, name: string): string | boolean | number {
  switch (def.type) {
    case 'boolean': {
      const b = toBoolean(value);
      if (b === undefined) throw badRequest('invalidValue', `${name} takes true or false, not ${preview(value)}.`);
      return b;
    }
    case 'integer':
    case 'decimal': {
      const n = typeof value === 'string' && value.trim() !== '' ? Number(value) : value;
      if (typeof n !== 'number' || !Number.isFinite(n) || (def.type === 'integer' && !Number.isInteger(n))) {
        throw badRequest('invalidValue', `${name} takes ${def.type === 'integer' ? 'an integer' : 'a number'}, not ${preview(value)}.`);
      }
      return n;
    }
    case 'dateTime': {
      const d = toDateTime(value);
      if (d === undefined) throw badRequest('invalidValue', `${name} takes a date and time like 2026-01-31T12:00:00Z, not ${preview(value)}.`);
      return value as string;
    }
    default: {
      // Numbers are accepted for strings (employeeNumber sent as 42); anything else is not a string.
      if (typeof value === 'number' && Number.isFinite(value)) return String(value);
      if (typeof value !== 'string') throw badRequest('invalidValue', `${name} takes a string, not ${preview(value)}.`);
      if (value.length > MAX_STRING) throw badRequest('invalidValue', `${name} is ${value.length} characters long; at most ${MAX_STRING} are accepted.`);
      return value;
    }
  }
}

/** The text the store indexes and compares for a value: folded unless caseExact, ISO dates, "true"/"false". */
export function indexText(def: AttributeDef, value: string | boolean | number): string {
  if (def.type === 'boolean') return value ? 'true' : 'false';
  if (def.type === 'dateTime') return toDateTime(value) ?? String(value);
  const text = String(value);
  return def.caseExact ? text : foldCase(text);
}

// ---- identifiers: userName and emails ----

/**
 * The attributes that identify a person (uniqueness, lookups, the allowed domains): compared in Unicode
 * normal form C, so that "é" typed as one character or as "e" and a combining accent is one name.
 */
export const IDENTIFIER_PATHS: ReadonlySet<string> = new Set(['userName', 'emails.value']);

/** An identifier as it is kept and compared: NFC. */
export function normalizeIdentifier(value: string): string {
  return value.normalize('NFC');
}

/**
 * Characters refused in an identifier: they are invisible, or reorder what is shown, so that two names that
 * look the same differ (or one that looks harmless is another): control characters (C0, DEL, C1), the
 * bidirectional controls (U+061C, U+200E, U+200F, U+202A-U+202E, U+2066-U+2069) and zero-width characters
 * (U+200B-U+200D, U+2060, U+FEFF).
 */
const REFUSED = /[\u0000-\u001f\u007f-\u009f\u061c\u200b-\u200f\u202a-\u202e\u2060\u2066-\u2069\ufeff]/;

function describe(c: string): string {
  const code = c.codePointAt(0)!;
  const hex = `U+${code.toString(16).toUpperCase().padStart(4, '0')}`;
  if (code <= 0x1f || (code >= 0x7f && code <= 0x9f)) return `${hex}, a control character`;
  if (code === 0x200b || code === 0x200c || code === 0x200d || code === 0x2060 || code === 0xfeff) return `${hex}, a zero-width character`;
  return `${hex}, a bidirectional control`;
}

/** 400 invalidValue naming the attribute and the character when an identifier holds a refused character. */
export function checkIdentifier(value: string, name: string): void {
  const m = REFUSED.exec(value);
  if (!m) return;
  throw badRequest(
    'invalidValue',
    `${name} holds ${describe(m[0])} at position ${m.index + 1}; control, bidirectional and zero-width characters are refused in userName and emails (they make different names look alike). Send the value without it.`,
  );
}
