/**
 * The rules every target's settings use (host names, images, CIDR ranges, lists), and the reader a target is
 * handed to validate its own settings. Every problem is one line that names the key and says how to fix it.
 */
import type * as pulumi from '@pulumi/pulumi';

export const NAMESPACE = 'scim-bridge';

/** Let's Encrypt's ACME directories: the default CA of every target (Caddy on a host, cert-manager on Kubernetes). */
export const LETS_ENCRYPT = {
  production: 'https://acme-v02.api.letsencrypt.org/directory',
  staging: 'https://acme-staging-v02.api.letsencrypt.org/directory',
} as const;

const LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
export const EMAIL = /^[^\s@"<>(),;:]+@[a-z0-9.-]+\.[a-z]{2,}$/i;

/** A DNS host name, or a sentence saying what is wrong with it. */
export function hostNameProblem(value: string): string | undefined {
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(value)) return 'has a scheme; give the host name only';
  if (value.includes('/')) return 'has a path or a trailing slash; give the host name only';
  if (value.includes(':')) return 'has a port; the bridge is served on 443';
  if (value.endsWith('.')) return 'ends with a dot; leave it out';
  if (value !== value.toLowerCase()) return 'has capitals; use lower case';
  if (value.startsWith('*')) return 'is a wildcard; give one host name';
  if (/^\d+(\.\d+){3}$/.test(value)) return 'is an IP address; Let\'s Encrypt needs a DNS name';
  if (value.length > 253) return 'is longer than 253 characters';
  const labels = value.split('.');
  if (labels.length < 2) return 'is not a fully qualified name (it needs a dot)';
  const bad = labels.find((l) => !LABEL.test(l));
  if (bad !== undefined) return `has an invalid label "${bad}" (letters, digits and inner hyphens, at most 63)`;
  return undefined;
}

/** A container image reference pinned to a tag other than latest, or to a digest. */
export function imageProblem(value: string): string | undefined {
  const match = /^((?:[a-z0-9.-]+(?::\d+)?\/)?[a-z0-9]+(?:[._-][a-z0-9]+)*(?:\/[a-z0-9]+(?:[._-][a-z0-9]+)*)*)(?::([\w][\w.-]{0,127}))?(?:@(sha256:[a-f0-9]{64}))?$/.exec(value);
  if (!match) return 'is not an image reference (registry/name:tag or registry/name@sha256:…)';
  const [, , tag, digest] = match;
  if (!digest && !tag) return 'has no tag; pin a version (name:1.2.3) or a digest (name@sha256:…) so a redeploy runs what you chose';
  if (!digest && tag === 'latest') return 'is pinned to "latest", which moves; pin a version or a digest so an update is a change Pulumi can see';
  return undefined;
}

/** A CIDR range, or what is wrong with it; `world` says what a /0 would open (refused when given). */
export function cidrProblem(value: string, world?: string): string | undefined {
  const v4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/.exec(value);
  const v6 = /^[0-9a-f:]+\/(\d{1,3})$/i.exec(value);
  if (v4) {
    if (v4.slice(1, 5).some((o) => Number(o) > 255) || Number(v4[5]) > 32) return 'is not a valid IPv4 CIDR range';
    if (world && Number(v4[5]) === 0) return `${world} (e.g. 203.0.113.0/24)`;
    return undefined;
  }
  if (v6 && value.includes(':')) {
    if (Number(v6[1]) > 128) return 'is not a valid IPv6 CIDR range';
    if (world && Number(v6[1]) === 0) return world;
    return undefined;
  }
  return 'is not a CIDR range (like 203.0.113.0/24)';
}

/** A list given as a YAML list (`config set --path key[0] v`, stored as JSON) or as a comma-separated string. */
export function list(raw: string | undefined): string[] | string {
  if (raw === undefined || raw.trim() === '') return [];
  const text = raw.trim();
  if (text.startsWith('[')) {
    try {
      const parsed: unknown = JSON.parse(text);
      if (Array.isArray(parsed) && parsed.every((x) => typeof x === 'string')) return parsed.map((x) => x.trim()).filter(Boolean);
    } catch {
      /* reported below */
    }
    return 'must be a list of strings';
  }
  return text.split(',').map((x) => x.trim()).filter(Boolean);
}

/**
 * `metricsToken`: a token accepted on /metrics only, for a Prometheus scraper (a secret, long and random, as its
 * SHA-256 is what the bridge gets). The targets that take it list it among their keys.
 */
export function readMetricsToken(r: SettingsReader): pulumi.Output<string> | undefined {
  const raw = r.raw('metricsToken');
  if (raw === undefined) return undefined;
  if (!r.isSecret('metricsToken')) r.fail('metricsToken', 'is stored in clear in the stack file: pulumi config set --secret metricsToken "$(openssl rand -hex 32)"');
  else if (raw.length < 32 || /\s/.test(raw)) r.fail('metricsToken', 'must be at least 32 characters with no spaces (openssl rand -hex 32), or remove it to have one generated');
  else return r.secret(raw);
  return undefined;
}

/** What a target is handed to read and validate its own settings (keys of the scim-bridge namespace). */
export interface SettingsReader {
  /** The value of `scim-bridge:<key>`, trimmed; undefined when unset or blank. */
  get(key: string): string | undefined;
  /** The value as stored, untrimmed (secrets are checked as they are). */
  raw(key: string): string | undefined;
  /** A key of another namespace, e.g. `gcp:project`, trimmed. */
  other(fullKey: string): string | undefined;
  /** Whether `scim-bridge:<key>` was set with --secret. */
  isSecret(key: string): boolean;
  /** Reports `scim-bridge:<key> <message>`. */
  fail(key: string, message: string): void;
  /** Reports a whole line (a key of another namespace). */
  problem(line: string): void;
  /** Whether a reported problem starts with `prefix` (e.g. to skip a check that depends on a bad value). */
  hasProblem(prefix: string): boolean;
  /** `pulumi config set <key> <example>`, for the fix. */
  set(key: string, example: string): string;
  /** The value as a Pulumi secret. */
  secret(value: string): pulumi.Output<string>;
}
