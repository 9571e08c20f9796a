/**
 * The stack configuration: read from `pulumi config` (namespace `scim-bridge`, plus the cloud provider's own
 * keys such as `gcp:project`), validated before any resource is declared. Every problem is one line that names
 * the key and says how to fix it; all problems are reported together.
 */
import * as pulumi from '@pulumi/pulumi';
import bridgePackage from '../bridge/package.json';
import { GOOGLE_WORKSPACE_KEYS, googleWorkspaceSettings } from './google-workspace';
import { BUILD_IMAGE, defaultImage } from './image';
import { EMAIL, hostNameProblem, imageProblem, LETS_ENCRYPT, list, NAMESPACE, SettingsReader } from './settings';
import type { Acme, CommonConfig, TargetDefinition } from './target';
import { Target, TARGET_DEFINITIONS, TargetSettings } from './targets';

export { hostNameProblem, imageProblem, NAMESPACE };
export type { Acme, Target };

/** The targets' names, in the registry's order. */
export const TARGETS: readonly Target[] = TARGET_DEFINITIONS.map((t) => t.name);

/**
 * The published image of the bridge, pinned to the release of the checked-out code. The default `image` once that
 * release is published (infra/image.ts PUBLISHED_IMAGES); until then the default is `build`.
 */
export const DEFAULT_IMAGE = `ghcr.io/scim-bridge/scim-bridge:${bridgePackage.version}`;

/** The stack's configuration: the common settings, and the chosen target's own. */
export type StackConfig = CommonConfig & { target: Target } & TargetSettings;

/** What the validator reads: raw config strings, and which keys were set as secrets. */
export interface RawConfig {
  get(key: string): string | undefined;
  isSecret(key: string): boolean;
  /** Every key set in the stack, with its namespace (`scim-bridge:domain`). */
  keys(): string[];
}

export class StackConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(problems.join('\n'));
    this.name = 'StackConfigError';
  }
}

/** The settings every target reads; each target lists its own (infra/<target>/target.ts). */
const COMMON_KEYS: Record<string, string> = {
  target: 'where the bridge runs: ' + TARGETS.join(', '),
  domain: "the bridge's host name, e.g. scim.example.com",
  image: 'build (this checkout, pushed to the target\'s registry), or an image pinned to a version or a digest',
  alertEmail: 'who is told when the bridge is down',
  acmeEmail: "the ACME account's contact",
  acmeCa: 'production, staging or an ACME directory URL',
  acmeCaRoot: "PEM of a private ACME directory's root",
  allowedDomains: 'email domains accepted for users',
  webhookUrl: 'the downstream application webhook',
  webhookSecret: 'the webhook signing secret (--secret)',
  token: 'the bearer token (--secret); generated when absent',
  previousToken: 'the token being rotated out (--secret): still accepted until removed',
  ...GOOGLE_WORKSPACE_KEYS,
};

function closest(key: string, known: readonly string[]): string | undefined {
  const lower = key.toLowerCase();
  return known.find((k) => k.toLowerCase() === lower) ?? known.find((k) => k.toLowerCase().startsWith(lower.slice(0, 4)));
}

/**
 * Validates the raw configuration: the common settings, then the chosen target's own. `secret(key)` turns a
 * value read from config into a secret Output; the validator itself never looks inside secrets beyond checking
 * their form.
 */
export function parseStackConfig(raw: RawConfig, secret: (value: string) => pulumi.Output<string>): StackConfig {
  const problems: string[] = [];
  const key = (k: string) => `${NAMESPACE}:${k}`;
  const set = (k: string, example: string) => `pulumi config set ${k} ${example}`;
  const fail = (k: string, message: string) => problems.push(`${key(k)} ${message}`);
  const reader: SettingsReader = {
    get: (k) => {
      const v = raw.get(key(k));
      return v === undefined || v.trim() === '' ? undefined : v.trim();
    },
    raw: (k) => raw.get(key(k)),
    other: (full) => raw.get(full)?.trim() || undefined,
    isSecret: (k) => raw.isSecret(key(k)),
    fail,
    problem: (line) => problems.push(line),
    hasProblem: (prefix) => problems.some((p) => p.startsWith(prefix)),
    set,
    secret,
  };
  const get = reader.get;

  // Which targets own each key beyond the common ones (several VM targets share the host's).
  const owners = new Map<string, string[]>();
  for (const t of TARGET_DEFINITIONS) for (const k of Object.keys(t.keys)) owners.set(k, [...(owners.get(k) ?? []), t.name]);
  const known = [...Object.keys(COMMON_KEYS), ...[...owners.keys()].filter((k) => !(k in COMMON_KEYS))];
  for (const full of raw.keys()) {
    if (!full.startsWith(`${NAMESPACE}:`)) continue;
    const k = full.slice(NAMESPACE.length + 1);
    if (!known.includes(k)) {
      const hint = closest(k, known);
      problems.push(`${full} is not a setting of scim-bridge${hint ? `; did you mean ${key(hint)}?` : ''} (known: ${known.join(', ')})`);
    }
  }

  const targetRaw = get('target');
  // An unknown target is reported, and the rest is still checked as for the first one, so every problem shows.
  let definition: TargetDefinition<Target, object> = TARGET_DEFINITIONS[0];
  const found = TARGET_DEFINITIONS.find((t) => t.name === targetRaw);
  if (!targetRaw) fail('target', `is not set: choose the cloud (${TARGETS.join(', ')}): ${set('target', TARGETS[0])}`);
  else if (!found) fail('target', `"${targetRaw}" is not a target; use one of ${TARGETS.join(', ')}`);
  else definition = found;

  const domain = get('domain') ?? '';
  if (!domain) fail('domain', `is not set: the bridge's host name: ${set('domain', 'scim.example.com')}`);
  else {
    const problem = hostNameProblem(domain);
    if (problem) fail('domain', `"${domain}" ${problem}: ${set('domain', 'scim.example.com')}`);
  }
  const domainValid = !!domain && !hostNameProblem(domain);

  const image = get('image') ?? defaultImage();
  const imageIssue = image === BUILD_IMAGE ? undefined : imageProblem(image);
  if (imageIssue) fail('image', `"${image}" ${imageIssue}`);

  const alertEmail = get('alertEmail') ?? '';
  if (!alertEmail) fail('alertEmail', `is not set: who is told when the bridge is down: ${set('alertEmail', 'ops@example.com')}`);
  else if (!EMAIL.test(alertEmail)) fail('alertEmail', `"${alertEmail}" is not an email address`);

  const acmeEmail = get('acmeEmail') ?? alertEmail;
  if (get('acmeEmail') && !EMAIL.test(acmeEmail)) fail('acmeEmail', `"${acmeEmail}" is not an email address`);

  const caRaw = get('acmeCa') ?? 'production';
  let directory: string = LETS_ENCRYPT.production;
  let letsEncrypt = true;
  if (caRaw === 'production' || caRaw === 'staging') directory = LETS_ENCRYPT[caRaw];
  else {
    letsEncrypt = false;
    directory = caRaw;
    let url: URL | undefined;
    try {
      url = new URL(caRaw);
    } catch {
      /* below */
    }
    if (!url || url.protocol !== 'https:') fail('acmeCa', `"${caRaw}" must be production, staging or the https URL of an ACME directory`);
    else if (Object.values(LETS_ENCRYPT).includes(caRaw as never)) letsEncrypt = true;
  }
  const caRoot = get('acmeCaRoot');
  if (caRoot && !caRoot.includes('-----BEGIN CERTIFICATE-----')) fail('acmeCaRoot', 'must be a PEM certificate (-----BEGIN CERTIFICATE-----…)');
  if (caRoot && letsEncrypt) fail('acmeCaRoot', "is only for a private ACME directory; Let's Encrypt needs none: pulumi config rm acmeCaRoot");
  const acme: Acme = { email: acmeEmail, directory, letsEncrypt, ...(caRoot ? { caRoot } : {}) };

  const domains = list(get('allowedDomains'));
  let allowedDomains: string[] = [];
  if (typeof domains === 'string') fail('allowedDomains', domains);
  else {
    allowedDomains = domains.map((d) => d.toLowerCase());
    for (const d of allowedDomains) {
      const problem = hostNameProblem(d);
      if (problem) fail('allowedDomains', `entry "${d}" ${problem}`);
    }
  }

  const webhookUrl = get('webhookUrl');
  const webhookSecret = raw.get(key('webhookSecret'));
  let webhook: StackConfig['webhook'];
  if (webhookUrl) {
    let url: URL | undefined;
    try {
      url = new URL(webhookUrl);
    } catch {
      /* below */
    }
    if (!url || url.protocol !== 'https:') fail('webhookUrl', `"${webhookUrl}" must be an https URL`);
    else if (url.username || url.password) fail('webhookUrl', 'carries credentials; remove them from the URL (the host would see them in clear): the webhook is signed with webhookSecret');
  }
  if (webhookUrl && !webhookSecret) fail('webhookSecret', 'is not set but webhookUrl is: pulumi config set --secret webhookSecret "$(openssl rand -hex 32)"');
  if (!webhookUrl && webhookSecret) fail('webhookUrl', 'is not set but webhookSecret is: set both, or remove the secret');
  if (webhookSecret !== undefined) {
    if (!raw.isSecret(key('webhookSecret'))) fail('webhookSecret', 'is stored in clear in the stack file: pulumi config set --secret webhookSecret <value>');
    else if (webhookSecret.length < 16 || /\s/.test(webhookSecret)) fail('webhookSecret', 'must be at least 16 characters with no spaces or line breaks (openssl rand -hex 32)');
  }
  if (webhookUrl && webhookSecret && problems.length === 0) webhook = { url: webhookUrl, secret: secret(webhookSecret) };

  const tokenRaw = raw.get(key('token'));
  let token: pulumi.Output<string> | undefined;
  if (tokenRaw !== undefined) {
    // The host keeps only the token's SHA-256, so the token must be long and random enough that its hash
    // gives nothing away.
    if (!raw.isSecret(key('token'))) fail('token', 'is stored in clear in the stack file: pulumi config set --secret token <value>, or remove it to have one generated');
    else if (tokenRaw.length < 32 || /\s/.test(tokenRaw)) fail('token', 'must be at least 32 characters with no spaces (openssl rand -base64 36), or remove it to have one generated');
    else token = secret(tokenRaw);
  }
  // A rotation: the old token stays accepted beside the new one until this is removed (README, "Rotating the token").
  const previousRaw = raw.get(key('previousToken'));
  let previousToken: pulumi.Output<string> | undefined;
  if (previousRaw !== undefined) {
    if (!raw.isSecret(key('previousToken'))) fail('previousToken', 'is stored in clear in the stack file: pulumi config set --secret previousToken <the old token>');
    else if (tokenRaw === undefined) fail('previousToken', 'is set but token is not: set the new token with pulumi config set --secret token <value>, or remove previousToken');
    else if (previousRaw === tokenRaw) fail('previousToken', 'is the same as token: give the new token to token, the old one to previousToken');
    else if (previousRaw.length < 16 || /\s/.test(previousRaw)) fail('previousToken', 'must be the old token as it was (at least 16 characters, no spaces)');
    else previousToken = secret(previousRaw);
  }

  const googleWorkspace = googleWorkspaceSettings(reader);

  for (const full of raw.keys()) {
    if (!full.startsWith(`${NAMESPACE}:`)) continue;
    const k = full.slice(NAMESPACE.length + 1);
    const of = owners.get(k);
    if (of && !(k in COMMON_KEYS) && !of.includes(definition.name) && get(k)) fail(k, `applies to ${of.join(', ')} only; remove it: pulumi config rm ${k}`);
  }

  const common: CommonConfig = {
    domain,
    image,
    alertEmail,
    acme,
    allowedDomains,
    ...(webhook ? { webhook } : {}),
    ...(token ? { token } : {}),
    ...(previousToken ? { previousToken } : {}),
    ...(googleWorkspace ? { googleWorkspace } : {}),
  };
  const own = definition.settings(reader, { ...common, domainValid });

  if (problems.length) throw new StackConfigError(problems);
  return { target: definition.name, ...common, ...own } as StackConfig;
}

/** Pulumi's runtime knows which config keys were set with --secret; its helper is not in the typings. */
function runtimeIsSecret(key: string): boolean {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const runtimeConfig = require('@pulumi/pulumi/runtime/config') as { isConfigSecret(k: string): boolean };
  return runtimeConfig.isConfigSecret(key);
}

/** The stack's configuration as `pulumi up` (or the offline plan) set it. */
export function loadStackConfig(): StackConfig {
  const all = pulumi.runtime.allConfig();
  const raw: RawConfig = {
    get: (k) => all[k],
    isSecret: runtimeIsSecret,
    keys: () => Object.keys(all),
  };
  try {
    return parseStackConfig(raw, (value) => pulumi.secret(value));
  } catch (err) {
    // A RunError is shown by Pulumi as its message alone, without a stack trace.
    if (err instanceof StackConfigError) throw new pulumi.RunError(`the stack configuration has problems:\n${err.message}`);
    throw err;
  }
}
