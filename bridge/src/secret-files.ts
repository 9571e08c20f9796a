/**
 * Secrets given as files (`SCIM_BRIDGE_TOKEN_SHA256_FILE`, `SCIM_BRIDGE_TOKEN_FILE`, `SCIM_BRIDGE_WEBHOOK_SECRET_FILE`,
 * `SCIM_BRIDGE_METRICS_TOKEN_SHA256_FILE`, `SCIM_BRIDGE_GOOGLE_CREDENTIALS_FILE`) are read again when a file changes, without
 * a restart: how a token is rotated on a running host (its
 * fetch-secrets timer rewrites the files) or in a pod (the kubelet swaps a Secret volume's files).
 *
 * The check is a stat of each file every second (size, mtime, inode: a file replaced by a rename, or a Secret
 * volume's symlink swap, has a new inode), cheap enough to run forever; the files are read only when that
 * changes. The whole configuration is then read again with the same reader as at start, and only the values that
 * may change while running are taken from it: the accepted token hashes, the metrics token's, the webhook's signing
 * secret and the Google Workspace connector's key. A file
 * that does not read well (caught half-written, empty) changes nothing: the values in use stay and the check runs
 * again at the next tick. The accepted hashes are a live list that the authentication reads at each request
 * (http/auth.ts): it is replaced in one synchronous step, so a request sees the old list or the new one, never a
 * mix; during a rotation both lists hold the token in use (DESIGN.md: two hashes during a rotation).
 */
import { statSync } from 'node:fs';
import { BridgeConfig, ConfigError, GoogleConfig, readConfig } from './config';
import type { Logger } from './log';

/** The settings whose file is watched: what can change while the bridge runs. */
export const RELOADED_FILE_SETTINGS = ['SCIM_BRIDGE_TOKEN_SHA256_FILE', 'SCIM_BRIDGE_TOKEN_FILE', 'SCIM_BRIDGE_WEBHOOK_SECRET_FILE', 'SCIM_BRIDGE_METRICS_TOKEN_SHA256_FILE', 'SCIM_BRIDGE_GOOGLE_CREDENTIALS_FILE'] as const;
export const SECRET_FILE_CHECK_MS = 1_000;

/** What the running bridge uses and a reload replaces: the hashes' array is changed in place. */
export interface LiveSecrets {
  /** The accepted IdP token hashes; the same array object for the bridge's life. */
  readonly tokenHashes: string[];
  /** The webhook's signing secret, when a webhook is set. */
  webhookSecret?: string;
  /** The metrics token's hashes (/metrics only); the same array object for the bridge's life. */
  readonly metricsTokenHashes: string[];
  /** The Google Workspace connector's service account key, when the connector is on (its next token uses it). */
  googleServiceAccount?: GoogleConfig['serviceAccount'];
}

function fingerprint(path: string): string {
  try {
    const s = statSync(path);
    return `${s.ino}:${s.size}:${s.mtimeMs}`;
  } catch (e) {
    return `missing:${(e as NodeJS.ErrnoException).code ?? ''}`;
  }
}

/**
 * Starts watching the files `env` names (none: nothing to watch, and the returned stop does nothing). `secrets`
 * is updated in place on every change that reads well; `onChange` is told (for the log).
 */
export function watchSecretFiles(
  env: NodeJS.ProcessEnv,
  secrets: LiveSecrets,
  logger: Logger,
  intervalMs = SECRET_FILE_CHECK_MS,
): { stop(): void; check(): void } {
  const paths = RELOADED_FILE_SETTINGS.map((v) => env[v]).filter((p): p is string => p !== undefined && p !== '');
  if (paths.length === 0) return { stop() {}, check() {} };
  let seen = paths.map(fingerprint).join('|');
  const check = () => {
    const now = paths.map(fingerprint).join('|');
    if (now === seen) return;
    let config: BridgeConfig;
    try {
      config = readConfig(env);
    } catch (e) {
      // Not taken as seen: the next tick tries again (a file replaced by a plain write may be caught half-way).
      logger.warn({ variable: e instanceof ConfigError ? e.variable : undefined, reason: e instanceof ConfigError ? e.expected : String(e) }, 'a secret file changed but does not read well; keeping the values in use');
      return;
    }
    seen = now;
    const hashes = config.tokenHashes;
    const changed: string[] = [];
    if (hashes.length > 0 && hashes.join(',') !== secrets.tokenHashes.join(',')) {
      secrets.tokenHashes.splice(0, secrets.tokenHashes.length, ...hashes);
      changed.push('tokenHashes');
    }
    const metrics = config.metricsTokenHashes;
    if (env.SCIM_BRIDGE_METRICS_TOKEN_SHA256_FILE && metrics.length > 0 && metrics.join(',') !== secrets.metricsTokenHashes.join(',')) {
      secrets.metricsTokenHashes.splice(0, secrets.metricsTokenHashes.length, ...metrics);
      changed.push('metricsTokenHashes');
    }
    const secret = config.webhook?.secret;
    if (secrets.webhookSecret !== undefined && secret !== undefined && secret !== secrets.webhookSecret) {
      secrets.webhookSecret = secret;
      changed.push('webhookSecret');
    }
    const account = config.google?.serviceAccount;
    if (secrets.googleServiceAccount !== undefined && account !== undefined && JSON.stringify(account) !== JSON.stringify(secrets.googleServiceAccount)) {
      secrets.googleServiceAccount = account;
      changed.push('googleServiceAccount');
    }
    if (changed.length) logger.info({ changed, acceptedTokens: secrets.tokenHashes.length }, 'secret files changed: the new values are in use');
  };
  const timer = setInterval(check, intervalMs);
  timer.unref();
  return { stop: () => clearInterval(timer), check };
}
