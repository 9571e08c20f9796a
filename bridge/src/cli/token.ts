/**
 * `token hash`: the SHA-256 the bridge keeps of a bearer token (SCIM_BRIDGE_TOKEN_SHA256), from the token on
 * stdin, so the token itself never appears on a command line or in a shell's history. `token new`: a fresh
 * token and its hash.
 */
import { randomBytes } from 'node:crypto';
import { sha256Hex } from '../config';
import { CliError, CliIo } from './io';

/** As the bridge asks of SCIM_BRIDGE_TOKEN: a shorter token is guessable. */
const MIN_TOKEN_LENGTH = 16;

async function readAll(io: CliIo): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of io.stdin) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk)));
  return Buffer.concat(chunks).toString('utf8');
}

/** The token as the IdP will send it: the input without its trailing line break (what `echo` or a file adds). */
export function tokenFromInput(text: string): string {
  const token = text.replace(/(\r?\n)+$/, '');
  if (token === '') throw new CliError('token hash: no token on stdin; pipe it in: npx scim-bridge token hash < token.txt');
  if (/\s/.test(token)) {
    throw new CliError('token hash: the token holds a space or a line break; an IdP sends the token as one word: check what was pasted');
  }
  if (token.length < MIN_TOKEN_LENGTH) {
    throw new CliError(`token hash: the token has ${token.length} characters; use at least ${MIN_TOKEN_LENGTH} (npx scim-bridge token new makes one)`);
  }
  return token;
}

export async function tokenHash(io: CliIo): Promise<number> {
  if (io.stdin.isTTY) io.stderr.write('Paste the token, then Enter and Ctrl-D:\n');
  io.stdout.write(`${sha256Hex(tokenFromInput(await readAll(io)))}\n`);
  return 0;
}

/** A token as the bridge generates on first start: 32 random bytes, base64url (43 characters). */
export function newToken(): string {
  return randomBytes(32).toString('base64url');
}

export async function tokenNew(io: CliIo): Promise<number> {
  const token = newToken();
  io.stdout.write(`token: ${token}\nsha256: ${sha256Hex(token)}\n`);
  io.stderr.write('Give the token to the identity provider and keep it in your password manager; give the bridge only the sha256 (SCIM_BRIDGE_TOKEN_SHA256).\n');
  return 0;
}
