/**
 * Policy 3: no secret-looking value in instance metadata or user-data.
 *
 * Whatever is in a VM's metadata or user-data can be read by anyone who can read the instance (GCP's and AWS's
 * consoles and APIs show it) and by every process on the host (the metadata server answers without
 * authentication). Secrets belong in the cloud's secret store, read by the host at start (infra/host's
 * fetch-secrets); a hash (SCIM_BRIDGE_TOKEN_SHA256) or a reference to a secret (a Secret Manager name, an ARN, a
 * file path, a `$(command)`) is fine.
 *
 * The one documented exception is DigitalOcean, which has no secret store: the webhook secret reaches the Droplet
 * as a root-only file in its user-data (README: "Who can read what on DigitalOcean"). It fails by default; an
 * operator accepts it deliberately with the policy's `allowDigitalOceanWebhookSecretInUserData` setting.
 */
import { gunzipSync } from 'node:zlib';
import type { ResourceValidationArgs, ResourceValidationPolicy, ReportViolation } from '@pulumi/policy';
import { parse } from 'yaml';
import { Checks, isObject, Props, T } from './common';

export const NO_SECRETS_IN_USER_DATA = 'scim-bridge-no-secrets-in-user-data';
/** Where the DigitalOcean target writes the webhook secret (infra/digitalocean WEBHOOK_SECRET_FILE). */
export const DIGITALOCEAN_WEBHOOK_SECRET_FILE = '/etc/scim-bridge/secrets/webhook-secret';

export interface NoSecretsConfig {
  /** Accept the DigitalOcean webhook secret file in a Droplet's user-data (root-only, at its documented path). */
  allowDigitalOceanWebhookSecretInUserData?: boolean;
}

/** Text that is a secret by its shape, wherever it appears. */
const SECRET_SHAPES: Array<{ what: string; re: RegExp }> = [
  { what: 'a PEM private key', re: /-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----/ },
  { what: 'an AWS access key id', re: /\b(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}\b/ },
  { what: 'a GitHub token', re: /\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,})/ },
  { what: 'a Slack token', re: /\bxox[abeoprs]-[A-Za-z0-9-]{10,}/ },
  { what: 'a Slack webhook URL', re: /https:\/\/hooks\.slack\.com\/(?:services|workflows)\/[A-Za-z0-9_/-]{20,}/ },
  { what: 'a Google API key', re: /\bAIza[0-9A-Za-z_-]{35}/ },
  { what: 'a DigitalOcean token', re: /\bdo[opr]_v1_[a-f0-9]{64}\b/ },
  { what: 'a Pulumi access token', re: /\bpul-[a-f0-9]{40}\b/ },
  { what: 'a Stripe secret key', re: /\b[rs]k_live_[0-9A-Za-z]{20,}/ },
  { what: 'a secret invented by the offline plan (PLAN-SECRET-…)', re: /PLAN-SECRET-/ },
];

/** A name that announces a secret: FOO_TOKEN, db_password, X-Api-Key, webhookSecret… */
const SECRET_NAME = /(SECRET|TOKEN|PASSWORD|PASSWD|PASSPHRASE|API[_-]?KEY|PRIVATE[_-]?KEY)/i;
/** …unless it names something about the secret rather than the secret: its hash, file, location or id. */
const NOT_A_SECRET_NAME = /[_.-](SHA256|SHA512|HASH|HASHES|DIGEST|FILE|PATH|DIR|URL|URI|ARN|ID|NAME)$/i;

/** A value that points at a secret instead of being one. */
export function isReference(value: string): boolean {
  const v = value.trim();
  return (
    v === '' ||
    /^[$`]/.test(v) || // $VAR, ${VAR}, $(command), `command`
    /^(\/|~\/|\.\.?\/|file:\/\/)/.test(v) || // a path
    /^arn:/.test(v) || // an AWS ARN (Secrets Manager, SSM)
    /^projects\/[^/\s]+\/secrets\/[^/\s]+/.test(v) || // a Secret Manager name
    /^<[^>]*>$/.test(v) || // a placeholder
    /^\{\{.*\}\}$/.test(v) || // a template
    /^(true|false|null|none|yes|no|~)$/i.test(v)
  );
}

export function isSecretName(name: string): boolean {
  return SECRET_NAME.test(name) && !NOT_A_SECRET_NAME.test(name);
}

/** One place a secret was found: where, and what (never the value itself). */
export interface Finding {
  where: string;
  what: string;
}

/** `NAME=value` anywhere (env files, shell, systemd, URLs' ?token=); the name starts at a word boundary. */
const EQUALS = /(?<![A-Za-z0-9_.$-])(["']?)([A-Za-z_][A-Za-z0-9_.-]*)\1[ \t]*=(?!=)/g;
/** `name: value` as a YAML key at the start of a line (after `- `), or a JSON key `"name": value`. */
const COLON = /^[ \t]*(?:-[ \t]+)?(["']?)([A-Za-z_][A-Za-z0-9_.-]*)\1[ \t]*:(?![:/])|(")([A-Za-z_][A-Za-z0-9_.-]*)"[ \t]*:/g;

/** The value after `=` or `:`: quoted, or the next word (after `=`), or the rest of the line (after `:`). */
function valueAfter(rest: string, op: '=' | ':'): string {
  const text = rest.replace(/^[ \t]+/, '');
  const quote = text[0];
  if (quote === '"' || quote === "'") {
    const end = text.indexOf(quote, 1);
    return end < 0 ? text.slice(1) : text.slice(1, end);
  }
  if (op === '=') return text.split(/[\s;&|)]/)[0];
  const v = text.split(/[ \t]#|,[ \t]|[}\]]/)[0].trim();
  // A YAML block scalar (`key: |`) has its value on the next lines: the structured reading checks it.
  return /^[|>][-+0-9]*$/.test(v) ? '' : v;
}

/** Secrets in a piece of text: by shape, and as literal values of secret-named settings. */
export function scanText(text: string, where: string): Finding[] {
  const found: Finding[] = [];
  const lines = text.split('\n');
  lines.forEach((line, i) => {
    const at = lines.length > 1 ? `${where} line ${i + 1}` : where;
    for (const { what, re } of SECRET_SHAPES) if (re.test(line)) found.push({ where: at, what });
    for (const [re, op] of [[EQUALS, '='], [COLON, ':']] as const) {
      re.lastIndex = 0;
      for (let m = re.exec(line); m; m = re.exec(line)) {
        const name = m[2] ?? m[4];
        if (!isSecretName(name)) continue;
        const value = valueAfter(line.slice(m.index + m[0].length), op);
        if (!isReference(value)) found.push({ where: at, what: `${name} is set to a literal value` });
      }
    }
  });
  return found;
}

/** Base64 (possibly gzipped) as cloud-init and EC2 take it; undefined when it is not. */
export function decodeBase64(text: string): string | undefined {
  const compact = text.replace(/\s+/g, '');
  if (compact.length < 8 || compact.length % 4 !== 0 || !/^[A-Za-z0-9+/]+={0,2}$/.test(compact)) return undefined;
  const bytes = Buffer.from(compact, 'base64');
  if (bytes[0] === 0x1f && bytes[1] === 0x8b) {
    try {
      return gunzipSync(bytes).toString('utf8');
    } catch {
      return undefined;
    }
  }
  const decoded = bytes.toString('utf8');
  // Only text is worth reading (and is what user-data holds); random bytes are not.
  return /^[\x09\x0a\x0d\x20-\x7e\u00a0-\uffff]*$/.test(decoded) && !decoded.includes('\ufffd') ? decoded : undefined;
}

/** A directory on the path is a secrets directory: /etc/app/secrets/x, /run/secret/x, /opt/app-secrets/x. */
function inSecretsDirectory(path: string): boolean {
  return path.split('/').slice(0, -1).some((dir) => /(^|[-_.])secrets?$/i.test(dir));
}

/** A write_files entry's content as cloud-init writes it (b64, gzip, gz+b64). */
function fileContent(entry: Props): string {
  const content = typeof entry.content === 'string' ? entry.content : '';
  const encoding = String(entry.encoding ?? '').toLowerCase();
  if (!encoding || encoding === 'text/plain') return content;
  const bytes = /b64|base64/.test(encoding) ? Buffer.from(content, 'base64') : Buffer.from(content, 'utf8');
  if (/gz/.test(encoding)) {
    try {
      return gunzipSync(bytes).toString('utf8');
    } catch {
      return content;
    }
  }
  return bytes.toString('utf8');
}

export interface ScanOptions {
  /** The resource type, for the DigitalOcean exception. */
  type: string;
  allowDigitalOceanWebhookSecret: boolean;
}

/** Every string in a parsed YAML/JSON document, with its path; secret-named keys with literal values. */
function scanTree(node: unknown, where: string, found: Finding[]): void {
  if (typeof node === 'string') {
    found.push(...scanText(node, where));
  } else if (Array.isArray(node)) {
    node.forEach((x, i) => scanTree(x, `${where}[${i}]`, found));
  } else if (isObject(node)) {
    for (const [k, v] of Object.entries(node)) {
      if ((typeof v === 'string' || typeof v === 'number') && isSecretName(k) && !isReference(String(v))) {
        found.push({ where: `${where}.${k}`, what: `${k} is set to a literal value` });
      }
      scanTree(v, `${where}.${k}`, found);
    }
  }
}

/**
 * Secrets in a user-data document: a #cloud-config is read as YAML (write_files decoded, files under a secrets
 * directory flagged, the accepted DigitalOcean webhook file set aside); anything else (a shell script…) as text.
 */
export function scanUserData(text: string, where: string, options: ScanOptions): Finding[] {
  const body = text.replace(/^## template: jinja\s*\n/, '');
  if (!/^#cloud-config\b/.test(body)) {
    const found = scanText(text, where);
    const decoded = decodeBase64(text);
    if (decoded !== undefined) found.push(...scanUserData(decoded, `${where} (base64-decoded)`, options));
    return found;
  }
  let doc: unknown;
  try {
    doc = parse(body, { version: '1.1', uniqueKeys: false });
  } catch (err) {
    return [
      { where, what: `a #cloud-config that is not valid YAML (${(err as Error).message.split('\n')[0]}), so it cannot be checked` },
      ...scanText(text, where),
    ];
  }
  if (!isObject(doc)) return scanText(text, where);
  const found: Finding[] = [];
  const { write_files: files, ...rest } = doc;
  scanTree(rest, where, found);
  (Array.isArray(files) ? files : []).forEach((entry, i) => {
    const at = `${where}.write_files[${i}]`;
    if (!isObject(entry)) return scanTree(entry, at, found);
    const path = typeof entry.path === 'string' ? entry.path : '';
    const content = fileContent(entry);
    scanTree(Object.fromEntries(Object.entries(entry).filter(([k]) => k !== 'content')), at, found);
    if (path && inSecretsDirectory(path) && content.trim() !== '') {
      const verdict = digitalOceanException(entry, path, options);
      if (verdict === 'accepted') return; // its content is the accepted secret: not scanned further
      found.push({ where: `${at} (${path})`, what: `a file under a secrets directory, with its content in the user-data${verdict}` });
    }
    found.push(...scanText(content, `${at}.content (${path || 'no path'})`));
  });
  return found;
}

/**
 * The DigitalOcean webhook secret file: accepted only with the setting, on a Droplet, at its documented path,
 * root-only. Returns "accepted" or why not (appended to the finding).
 */
function digitalOceanException(entry: Props, path: string, options: ScanOptions): 'accepted' | string {
  if (!options.allowDigitalOceanWebhookSecret) {
    return options.type === T.doDroplet && path === DIGITALOCEAN_WEBHOOK_SECRET_FILE
      ? ' (the DigitalOcean webhook secret: accepted only when the policy setting allowDigitalOceanWebhookSecretInUserData is true, see the README)'
      : '';
  }
  if (options.type !== T.doDroplet) return ' (allowDigitalOceanWebhookSecretInUserData covers DigitalOcean Droplets only; this cloud has a secret store)';
  if (path !== DIGITALOCEAN_WEBHOOK_SECRET_FILE) return ` (allowDigitalOceanWebhookSecretInUserData covers ${DIGITALOCEAN_WEBHOOK_SECRET_FILE} only)`;
  // YAML 1.1 reads an unquoted 0600 as the octal number 384.
  const permissions = typeof entry.permissions === 'number' ? `0${entry.permissions.toString(8)}` : String(entry.permissions ?? '');
  const owner = String(entry.owner ?? 'root:root');
  if (!/^0?[46]00$/.test(permissions) || !/^root(:root)?$/.test(owner)) {
    return ` (allowDigitalOceanWebhookSecretInUserData needs it root-only: permissions "0600", owner root:root; it has ${permissions || 'no permissions'}, ${owner})`;
  }
  return 'accepted';
}

function fix(type: string): string {
  if (type === T.doDroplet) {
    return 'DigitalOcean has no secret store: the only accepted secret is the webhook secret file, and only with allowDigitalOceanWebhookSecretInUserData (README, "Who can read what on DigitalOcean"); give the host a hash or nothing';
  }
  const store = type.startsWith('aws:') ? 'Secrets Manager' : 'Secret Manager';
  return `keep the secret in ${store} and let the host read it at start (infra/host fetch-secrets), or give the host a hash`;
}

type Field = [where: string, read: () => unknown, base64: boolean];

/** The inputs of a resource that reach the host as metadata or user-data. */
function userDataFields(type: string, props: Props, checks: Checks): Field[] {
  switch (type) {
    case T.gcpInstance:
    case T.gcpInstanceTemplate: {
      const fields: Field[] = [];
      checks.run(() => {
        const metadata = props.metadata;
        if (isObject(metadata)) for (const k of Object.keys(metadata)) fields.push([`metadata.${k}`, () => metadata[k], false]);
      });
      return [...fields, ['metadataStartupScript', () => props.metadataStartupScript, false]];
    }
    case T.awsInstance:
      return [
        ['userData', () => props.userData, false],
        ['userDataBase64', () => props.userDataBase64, true],
      ];
    case T.awsLaunchTemplate:
      return [['userData', () => props.userData, true]];
    case T.doDroplet:
      return [['userData', () => props.userData, false]];
    default:
      return [];
  }
}

const TYPES = [T.gcpInstance, T.gcpInstanceTemplate, T.awsInstance, T.awsLaunchTemplate, T.doDroplet] as string[];

/** Every finding in a resource's metadata and user-data (exported for tests and reuse). */
export function findSecrets(type: string, props: Props, config: NoSecretsConfig, checks: Checks = new Checks()): Finding[] {
  const options: ScanOptions = { type, allowDigitalOceanWebhookSecret: config.allowDigitalOceanWebhookSecretInUserData === true };
  const found: Finding[] = [];
  for (const [where, read, base64] of userDataFields(type, props, checks)) {
    checks.run(() => {
      const value = read();
      if (value === undefined || value === null) return;
      const text = String(value);
      const key = where.split('.').pop()!;
      // A metadata key named like a secret (api-token: …) with a literal value.
      if (where.startsWith('metadata.') && isSecretName(key) && !isReference(text)) found.push({ where, what: `${key} is set to a literal value` });
      if (base64) {
        const decoded = decodeBase64(text);
        if (decoded === undefined) found.push(...scanText(text, where));
        else found.push(...scanUserData(decoded, `${where} (base64-decoded)`, options));
      } else {
        found.push(...scanUserData(text, where, options));
      }
    });
  }
  // One finding per place and kind.
  const seen = new Set<string>();
  return found.filter((f) => !seen.has(`${f.where}\0${f.what}`) && !!seen.add(`${f.where}\0${f.what}`));
}

export const noSecretsInUserData: ResourceValidationPolicy = {
  name: NO_SECRETS_IN_USER_DATA,
  description:
    'No secret-looking value in instance metadata or user-data, which the cloud shows to anyone who can read the instance and ' +
    'serves to every process on the host. Reads GCP instances and instance templates (every metadata value, user-data and ' +
    'startup scripts included, and metadataStartupScript), AWS instances (userData, userDataBase64) and launch templates ' +
    '(userData), DigitalOcean Droplets (userData); #cloud-config is parsed (write_files decoded), base64 and gzip are decoded. ' +
    'Flags private keys, AWS/GitHub/Slack/Google/DigitalOcean/Pulumi/Stripe tokens, literal values of settings named like ' +
    'secrets (…SECRET, …TOKEN, …PASSWORD, …API_KEY; not …_SHA256, …_HASH, …_FILE, …_URL, …_ARN, …_ID, …_NAME, and not ' +
    'references: $VAR, $(command), paths, ARNs, projects/…/secrets/…), and files under a secrets directory in write_files. ' +
    'A secret with no recognisable shape under an innocent name, or inside MIME multipart parts, is not detected. ' +
    'The DigitalOcean webhook secret file (no secret store there) fails unless allowDigitalOceanWebhookSecretInUserData is set.',
  enforcementLevel: 'mandatory',
  severity: 'critical',
  configSchema: {
    properties: {
      allowDigitalOceanWebhookSecretInUserData: {
        type: 'boolean',
        default: false,
        description:
          `Accept the webhook secret as a root-only file (${DIGITALOCEAN_WEBHOOK_SECRET_FILE}, 0600) in a DigitalOcean Droplet's user-data: ` +
          'DigitalOcean has no secret store, so the secret is readable by anyone with a shell on the Droplet (README, "Who can read what on DigitalOcean"). Set it only after accepting that.',
      },
    },
  },
  validateResource: (args: ResourceValidationArgs, reportViolation: ReportViolation) => {
    if (!TYPES.includes(args.type)) args.notApplicable(`applies to ${TYPES.join(', ')}`);
    const checks = new Checks();
    for (const f of findSecrets(args.type, args.props, args.getConfig<NoSecretsConfig>(), checks)) {
      reportViolation(`${args.name}: ${f.where}: ${f.what}. ${fix(args.type)}.`);
    }
    checks.done();
  },
};
