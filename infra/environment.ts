/**
 * The bridge's environment as every target deploys it: one list. A VM host writes it into the bridge's env
 * file (infra/host); the Kubernetes Deployment sets it on the container, with the credentials among it
 * (FILE_SETTINGS) given as files from a Secret through their `_FILE` forms (bridge/src/config.ts).
 */

/** Where the bridge listens inside its container (the image's default too). */
export const BRIDGE_PORT = 8080;
/** The uid the bridge runs as: the image's USER, and the owner of its data directory. */
export const BRIDGE_UID = 10001;
/** The SQLite database inside the container (/data is the data disk or the volume). */
export const SQLITE_URL = 'sqlite:/data/scim-bridge.db';

export interface BridgeEnvironmentSpec {
  /** The host name the IdP reaches: the Base URL is https://<domain>. */
  domain: string;
  /** The database URL when it holds no password (SQLite); absent when it comes through a secret file. */
  databaseUrl?: string;
  /** Hex SHA-256 of each bearer token the bridge accepts (two during a rotation). */
  tokenSha256: string[];
  /** Hex SHA-256 of the application API's token: the API is off without one. */
  appTokenSha256?: string[];
  allowedDomains: string[];
  webhookUrl?: string;
  /** The Google Workspace connector's plain settings (its key comes as a file, SCIM_BRIDGE_GOOGLE_CREDENTIALS_FILE). */
  google?: { admin: string; groups: string[]; interval: string };
}

/** Settings whose value is a credential or what checks one: where the platform has secret files, they go there. */
export const FILE_SETTINGS = ['SCIM_BRIDGE_DATABASE_URL', 'SCIM_BRIDGE_TOKEN_SHA256', 'SCIM_BRIDGE_APP_TOKEN_SHA256', 'SCIM_BRIDGE_WEBHOOK_SECRET', 'SCIM_BRIDGE_GOOGLE_CREDENTIALS'] as const;
/** The secrets the bridge needs in clear, which no target may put in its plain settings. */
export const WEBHOOK_SECRET_SETTING = 'SCIM_BRIDGE_WEBHOOK_SECRET';

/** Every setting the deployed bridge gets, in order, as name and value (the webhook's secret apart). */
export function bridgeSettings(spec: BridgeEnvironmentSpec): Array<[string, string]> {
  const env: Array<[string, string]> = [
    // Inside its container: only the proxy in front reaches it (Caddy on a host, the ingress on Kubernetes).
    ['SCIM_BRIDGE_HOST', '0.0.0.0'],
    ['SCIM_BRIDGE_PORT', String(BRIDGE_PORT)],
    ...(spec.databaseUrl !== undefined ? [['SCIM_BRIDGE_DATABASE_URL', spec.databaseUrl] as [string, string]] : []),
    ['SCIM_BRIDGE_TOKEN_SHA256', spec.tokenSha256.join(',')],
    // The TLS-terminating proxy is the only client; it sets X-Forwarded-For and -Proto.
    ['SCIM_BRIDGE_TRUST_PROXY', 'true'],
    // The Base URL the IdP is given: Location and meta.location are built from it, never from a request's Host.
    ['SCIM_BRIDGE_PUBLIC_URL', `https://${spec.domain}`],
  ];
  if (spec.appTokenSha256?.length) env.push(['SCIM_BRIDGE_APP_TOKEN_SHA256', spec.appTokenSha256.join(',')]);
  if (spec.allowedDomains.length) env.push(['SCIM_BRIDGE_ALLOWED_DOMAINS', spec.allowedDomains.join(',')]);
  if (spec.webhookUrl) env.push(['SCIM_BRIDGE_WEBHOOK_URL', spec.webhookUrl]);
  if (spec.google) {
    env.push(['SCIM_BRIDGE_GOOGLE_ADMIN', spec.google.admin], ['SCIM_BRIDGE_GOOGLE_GROUPS', spec.google.groups.join(',')], ['SCIM_BRIDGE_GOOGLE_INTERVAL', spec.google.interval]);
  }
  return env;
}
