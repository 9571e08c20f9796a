/**
 * A bound on how deep a JSON body nests, checked on the raw bytes before it is parsed: parsing a mebibyte
 * of `[[[[…` takes a third of a second and builds half a million arrays, for a body that no SCIM request
 * needs (a PATCH of an extension's manager nests 6 levels).
 */
import { ScimError } from '../errors';

export const MAX_JSON_DEPTH = 16;

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN = new Set([0x5b, 0x7b]);
const CLOSE = new Set([0x5d, 0x7d]);

/** body-parser's `verify`: throws 400 invalidSyntax when the body nests deeper than MAX_JSON_DEPTH. */
export function checkJsonDepth(_req: unknown, _res: unknown, body: Buffer): void {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < body.length; i++) {
    const c = body[i];
    if (inString) {
      if (c === BACKSLASH) i++;
      else if (c === QUOTE) inString = false;
    } else if (c === QUOTE) {
      inString = true;
    } else if (OPEN.has(c)) {
      if (++depth > MAX_JSON_DEPTH) {
        throw new ScimError(400, `The body nests objects and lists more than ${MAX_JSON_DEPTH} levels deep; a SCIM resource or PATCH needs no more than 6.`, 'invalidSyntax');
      }
    } else if (CLOSE.has(c)) {
      depth--;
    }
  }
}
