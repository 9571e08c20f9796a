/**
 * The Google Workspace connector's stack settings (DESIGN.md, "Connectors"): `googleWorkspace` ({ admin, groups,
 * interval }, plain) and `googleWorkspaceKey`, the service account's JSON key (a Pulumi secret). Every target
 * gives the first as SCIM_BRIDGE_GOOGLE_ADMIN, SCIM_BRIDGE_GOOGLE_GROUPS and SCIM_BRIDGE_GOOGLE_INTERVAL, and the
 * key as a file (SCIM_BRIDGE_GOOGLE_CREDENTIALS_FILE), the way it gives the webhook secret.
 */
import { createHash } from 'node:crypto';
import type * as pulumi from '@pulumi/pulumi';
import { EMAIL, list, SettingsReader } from './settings';

/** The bridge's setting the key goes to (through its `_FILE` form). */
export const GOOGLE_CREDENTIALS_SETTING = 'SCIM_BRIDGE_GOOGLE_CREDENTIALS';
/** The bridge's default interval (bridge/src/config.ts). */
export const DEFAULT_GOOGLE_INTERVAL = '10m';

export const GOOGLE_WORKSPACE_KEYS: Record<string, string> = {
  googleWorkspace: 'the Google Workspace connector: { admin, groups, interval } (docs/idp/google.md)',
  googleWorkspaceKey: "the connector's service account JSON key (--secret)",
};

/** The connector's plain settings, as the bridge takes them. */
export interface GoogleWorkspaceSettings {
  /** The administrator the service account acts as. */
  admin: string;
  /** The groups to sync (addresses or Google's ids); their members are the users. */
  groups: string[];
  /** How often: 90s, 10m, 1h. */
  interval: string;
}

export interface GoogleWorkspace extends GoogleWorkspaceSettings {
  /** The service account's JSON key on one line (minified: fetch-secrets refuses line breaks), a secret. */
  key: pulumi.Output<string>;
}

const KEY_FIX = 'cat scim-bridge-key.json | pulumi config set --secret googleWorkspaceKey';
const GROUP = /^[^\s@,]+@[^\s@,]+\.[^\s@,]+$|^[0-9a-z]{6,}$/i;

/** 90s, 10m, 1h: from 1 second to 24 hours, as the bridge accepts it. */
function intervalProblem(value: string): string | undefined {
  const m = /^(\d{1,6})(s|m|h)$/.exec(value);
  const ms = m ? Number(m[1]) * { s: 1_000, m: 60_000, h: 3_600_000 }[m[2] as 's' | 'm' | 'h'] : 0;
  return ms >= 1_000 && ms <= 86_400_000 ? undefined : `"${value}" must be a duration from 1s to 24h, such as 90s, 10m or 1h`;
}

/**
 * The key as the Google Cloud console downloads it, on one line; or what is wrong with it (never quoting it: it
 * holds the private key). The bridge checks the private key itself at start.
 */
export function minifiedServiceAccountKey(raw: string): { key: string } | { problem: string } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    return { problem: 'is not JSON' };
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return { problem: 'is not a JSON object' };
  const key = parsed as Record<string, unknown>;
  if (key.type !== 'service_account') return { problem: 'has no "type": "service_account"' };
  if (typeof key.client_email !== 'string' || !key.client_email.includes('@')) return { problem: 'has no "client_email"' };
  if (typeof key.private_key !== 'string' || !key.private_key.includes('PRIVATE KEY')) return { problem: 'has no PEM "private_key"' };
  return { key: JSON.stringify(key) };
}

/**
 * What the offline plan gives a key it cannot decrypt: a key of the right form whose private key is the plan's
 * invented text, so the leak check still finds it wherever it lands; its id follows the stack file's ciphertext,
 * so that a new key in the stack file is a new key in the plan.
 */
export function plannedServiceAccountKey(invented: string, ciphertext: string): string {
  return JSON.stringify(
    {
      type: 'service_account',
      private_key_id: createHash('sha256').update(ciphertext).digest('hex').slice(0, 40),
      client_email: 'scim-bridge@plan.iam.gserviceaccount.com',
      private_key: `-----BEGIN PRIVATE KEY-----\n${invented}\n-----END PRIVATE KEY-----\n`,
    },
    null,
    2,
  );
}

/** Reads and checks both settings; undefined when the connector is off (neither is set). */
export function googleWorkspaceSettings(r: SettingsReader): GoogleWorkspace | undefined {
  const text = r.get('googleWorkspace');
  const keyRaw = r.raw('googleWorkspaceKey');
  const setAdmin = r.set('--path googleWorkspace.admin', 'admin@example.com');
  if (text === undefined) {
    if (keyRaw !== undefined) r.fail('googleWorkspaceKey', `is set but googleWorkspace is not: ${setAdmin}, and googleWorkspace.groups; or pulumi config rm googleWorkspaceKey`);
    return undefined;
  }
  let settings: Record<string, unknown> | undefined;
  try {
    const parsed: unknown = JSON.parse(text);
    if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)) settings = parsed as Record<string, unknown>;
  } catch {
    /* below */
  }
  if (settings === undefined) {
    r.fail('googleWorkspace', `must be an object with admin, groups and (optional) interval: ${setAdmin}`);
    return undefined;
  }
  for (const k of Object.keys(settings)) {
    if (!['admin', 'groups', 'interval'].includes(k)) r.fail('googleWorkspace', `has "${k}", which is not one of admin, groups, interval: pulumi config rm --path googleWorkspace.${k}`);
  }
  const admin = typeof settings.admin === 'string' ? settings.admin.trim() : '';
  if (!admin) r.fail('googleWorkspace', `has no admin, the administrator the service account acts as: ${setAdmin}`);
  else if (!EMAIL.test(admin)) r.fail('googleWorkspace', `admin "${admin}" is not an email address`);
  const groupsRaw = settings.groups;
  const groups = typeof groupsRaw === 'string' ? list(groupsRaw) : Array.isArray(groupsRaw) && groupsRaw.every((g) => typeof g === 'string') ? (groupsRaw as string[]).map((g) => g.trim()).filter(Boolean) : 'must be a list of strings';
  if (typeof groups === 'string' || groups.length === 0) {
    r.fail('googleWorkspace', `groups must list the groups to sync (their members are the users): ${r.set('--path googleWorkspace.groups[0]', 'engineering@example.com')}`);
  } else {
    for (const g of groups) if (!GROUP.test(g)) r.fail('googleWorkspace', `group "${g}" is neither a group's email address nor Google's id of one`);
  }
  const interval = settings.interval === undefined ? DEFAULT_GOOGLE_INTERVAL : String(settings.interval).trim();
  const intervalIssue = intervalProblem(interval);
  if (intervalIssue) r.fail('googleWorkspace', `interval ${intervalIssue}`);

  let key: string | undefined;
  if (keyRaw === undefined || keyRaw.trim() === '') r.fail('googleWorkspaceKey', `is not set but googleWorkspace is: the service account's JSON key, as a secret: ${KEY_FIX}`);
  else if (!r.isSecret('googleWorkspaceKey')) r.fail('googleWorkspaceKey', `is stored in clear in the stack file: remove it, revoke that key in the Google Cloud console, and set a new one as a secret: ${KEY_FIX}`);
  else {
    const checked = minifiedServiceAccountKey(keyRaw);
    if ('problem' in checked) r.fail('googleWorkspaceKey', `${checked.problem}: it must be the service account's JSON key as the Google Cloud console downloads it (Keys > Add key > JSON): ${KEY_FIX}`);
    else key = checked.key;
  }
  if (key === undefined || r.hasProblem('scim-bridge:googleWorkspace') || typeof groups === 'string') return undefined;
  return { admin, groups: groups.map((g) => g.toLowerCase()), interval, key: r.secret(key) };
}
