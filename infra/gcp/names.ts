/**
 * Ids a GCP project holds once (a service account's, a secret's), made from the component's name and the stack
 * (pulumi.getStack()), so two stacks (staging, production) live side by side in one project.
 *
 * An id is `<name>-<stack>-<purpose>` when that is valid as it is (the common case: `scim-bridge-production-host`,
 * `scim-bridge-staging-token`). Otherwise (too long, or characters the id may not hold, like the `.` or `_` a
 * stack name may have) it is the valid part, shortened to fit, then a 6-character hash of the exact name and
 * stack, then the purpose: deterministic, and different for two stacks even when what is cut or replaced is all
 * that tells them apart.
 */
import { createHash } from 'node:crypto';

interface IdRule {
  max: number;
  valid: RegExp;
  /** Characters the id cannot hold (replaced with hyphens). */
  invalid: RegExp;
  lowercase: boolean;
}

/** Service account ids: 6-30 characters, lowercase letters, digits and hyphens, a letter first, no hyphen last. */
export const SERVICE_ACCOUNT_ID = /^[a-z][-a-z0-9]{4,28}[a-z0-9]$/;
/** Secret Manager secret ids: letters, digits, underscores and hyphens, at most 255. */
export const SECRET_ID = /^[A-Za-z0-9_-]{1,255}$/;

const ACCOUNT: IdRule = { max: 30, valid: SERVICE_ACCOUNT_ID, invalid: /[^a-z0-9-]+/g, lowercase: true };
const SECRET: IdRule = { max: 255, valid: SECRET_ID, invalid: /[^A-Za-z0-9_-]+/g, lowercase: false };

function scopedId(name: string, stack: string, purpose: string, rule: IdRule): string {
  const plain = `${name}-${stack}-${purpose}`;
  if (rule.valid.test(plain)) return plain;
  const hash = createHash('sha256').update(`${name}\n${stack}`).digest('hex').slice(0, 6);
  const tail = `-${hash}-${purpose}`;
  let head = (rule.lowercase ? `${name}-${stack}`.toLowerCase() : `${name}-${stack}`).replace(rule.invalid, '-').replace(/-{2,}/g, '-');
  head = head.replace(/^-+/, '');
  if (!/^[a-zA-Z]/.test(head)) head = `sb-${head}`;
  head = head.slice(0, rule.max - tail.length).replace(/-+$/, '');
  const id = `${head}${tail}`;
  if (!rule.valid.test(id)) throw new Error(`gcp: cannot make a valid id from ${JSON.stringify(plain)} (got ${JSON.stringify(id)})`);
  return id;
}

/** The host's service account id (its email is `<id>@<project>.iam.gserviceaccount.com`). */
export function serviceAccountId(name: string, stack: string): string {
  return scopedId(name, stack, 'host', ACCOUNT);
}

/** A Secret Manager secret id: purpose `token`, `app-token`, `webhook-secret`. */
export function secretId(name: string, stack: string, purpose: string): string {
  return scopedId(name, stack, purpose, SECRET);
}

/** Artifact Registry repository ids: lowercase letters, digits and hyphens, a letter first, no hyphen last, at most 63. */
export const REPOSITORY_ID = /^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$/;
const REPOSITORY: IdRule = { max: 63, valid: REPOSITORY_ID, invalid: /[^a-z0-9-]+/g, lowercase: true };

/** The stack's Artifact Registry repository (image: build). */
export function repositoryId(name: string, stack: string): string {
  return scopedId(name, stack, 'images', REPOSITORY);
}
