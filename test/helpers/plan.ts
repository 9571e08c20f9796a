/**
 * Reading the offline plan in tests: resources of a type with their inputs unwrapped (`in`), exactly one of
 * them, and the SHA-256 the hosts get of a token.
 */
import { createHash } from 'node:crypto';
import { gunzipSync } from 'node:zlib';
import { parse } from 'yaml';
import { PlanResource, PlanResult, unwrapSecrets } from '../../tools/plan';

export { SECRET_SIG_KEY } from '../../tools/plan';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Inputs = Record<string, any>;
export type Planned = PlanResource & { in: Inputs };

/** Every resource of `type`, with `in`: its inputs with secret wrappers replaced by their values. */
export function all(result: PlanResult, type: string): Planned[] {
  return result.raw.filter((r) => r.type === type).map((r) => ({ ...r, in: unwrapSecrets(r.inputs) as Inputs }));
}

/** The one resource of `type` (and `name`, when given); fails the test when there are none or several. */
export function one(result: PlanResult, type: string, name?: string): Planned {
  const found = all(result, type).filter((r) => name === undefined || r.name === name);
  expect(found.map((r) => `${r.type} ${r.name}`)).toHaveLength(1);
  return found[0];
}

export const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

/** A file a `#cloud-config` writes, its content as cloud-init writes it. */
export interface WrittenFile {
  path: string;
  permissions?: string;
  owner?: string;
  content: string;
}

/** The user-data's write_files as cloud-init writes them: a `gz+b64` file (AWS's scripts, for EC2's 16 KB) decoded. */
export function writtenFiles(userData: string): WrittenFile[] {
  const files = (parse(userData) as { write_files: Array<WrittenFile & { encoding?: string }> }).write_files;
  return files.map(({ encoding, ...f }) => {
    if (encoding === 'gz+b64') return { ...f, content: gunzipSync(Buffer.from(f.content, 'base64')).toString('utf8') };
    if (encoding) throw new Error(`${f.path} has an encoding these tests do not know: ${encoding}`);
    return f;
  });
}
