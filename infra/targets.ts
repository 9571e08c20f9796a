/**
 * The registry: every target, one line each. A target is a folder (see infra/target.ts); adding one is a
 * folder and a line here.
 */
import { awsTarget } from './aws/target';
import { digitalOceanTarget } from './digitalocean/target';
import { gcpTarget } from './gcp/target';
import { kubernetesTarget } from './kubernetes/target';

export const TARGET_DEFINITIONS = [
  gcpTarget,
  digitalOceanTarget,
  awsTarget,
  kubernetesTarget,
] as const;

type Definition = (typeof TARGET_DEFINITIONS)[number];
export type Target = Definition['name'];
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Intersection<U> = (U extends any ? (u: U) => void : never) extends (i: infer I) => void ? I : never;
/** Every target's own settings, as the stack's configuration holds the chosen one's. */
export type TargetSettings = Partial<Intersection<ReturnType<Definition['settings']>>>;
