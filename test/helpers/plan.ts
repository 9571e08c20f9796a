/**
 * Reading the offline plan in tests: resources of a type with their inputs unwrapped (`in`), exactly one of
 * them, and the SHA-256 the hosts get of a token.
 */
import { createHash } from 'node:crypto';
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
