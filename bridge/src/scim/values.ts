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
