/** `npm start`: read the configuration, start the bridge, print where it listens. */
import { ConfigError, readConfig } from './config';
import { createLogger } from './log';
import { SHUTDOWN_GRACE_MS, start } from './server';

/**
 * The backstop on a stop, from the signal to the exit: the bound is 10 s (`docker stop` waits 20 s on our hosts
 * before its SIGKILL); this fires half a second before it, so that even a stop that runs over ends within it.
 */
const STOP_LIMIT_MS = 9_500;

/**
 * The grace period for requests in flight at a stop. SCIM_BRIDGE_SHUTDOWN_GRACE_MS (milliseconds) is for tests
 * only, so that a test of a stalled client need not wait 8 s; it is not a setting to document. It can only
 * shorten the period: a larger or unreadable value leaves SHUTDOWN_GRACE_MS, so the stop stays within its limit.
 */
function shutdownGraceMs(env: NodeJS.ProcessEnv): number {
  const raw = env.SCIM_BRIDGE_SHUTDOWN_GRACE_MS;
  if (raw === undefined || !/^\d{1,6}$/.test(raw)) return SHUTDOWN_GRACE_MS;
  return Math.min(Number(raw), SHUTDOWN_GRACE_MS);
}

async function main(): Promise<void> {
  let config;
  try {
    config = readConfig();
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(`scim-bridge: ${e.message}\n`);
      process.exit(2);
    }
    throw e;
  }
  const logger = createLogger();
  const bridge = await start(config, { logger, secretFilesEnv: process.env });
  const lines = [
    '',
    `  SCIM bridge listening: ${bridge.url}`,
    `  Base URL for your identity provider: ${bridge.url} (in production: https://<your domain>, no trailing slash)`,
  ];
  if (bridge.generatedToken) {
    lines.push(
      `  Bearer token (shown this once; only its SHA-256 hash is kept): ${bridge.generatedToken}`,
      '  Keep it in your password manager. To replace it, set SCIM_BRIDGE_TOKEN_SHA256.',
    );
  } else if (config.tokenHashes.length === 0) {
    lines.push('  Bearer token: the one printed on first start (its hash is in the database).');
  }
  if (config.google) {
    const { groups, admin, intervalMs } = config.google;
    lines.push(`  Google Workspace connector: ${groups.length} group(s) as ${admin}, every ${intervalMs / 1000} s (last sync on /health)`);
  }
  // The banner is for the person at the terminal, not for the log: it goes to stdout as is.
  process.stdout.write(lines.join('\n') + '\n\n');

  // SIGTERM (docker stop, systemd) or SIGINT (Ctrl-C): stop accepting, answer the requests in flight, close the
  // store, exit 0. Requests still unfinished after the grace period (SHUTDOWN_GRACE_MS in server.ts) are cut:
  // they were never acknowledged, and everything that was is on disk already. A stop that still runs over the
  // limit exits 1. Signals after the first change nothing (the handlers stay, so no default action kills the
  // process half-way through its stop).
  const graceMs = shutdownGraceMs(process.env);
  let stopping = false;
  const shutdown = (signal: NodeJS.Signals) => {
    if (stopping) {
      logger.info({ signal }, 'already stopping');
      return;
    }
    stopping = true;
    const started = Date.now();
    const limit = setTimeout(() => {
      logger.error({ limitMs: STOP_LIMIT_MS }, 'did not stop in time; exiting');
      process.exit(1);
    }, STOP_LIMIT_MS);
    limit.unref();
    // stop() closes the listening socket before it returns: once this line is out, new connections are refused.
    const stopped = bridge.stop({ graceMs });
    logger.info({ signal }, 'stopping');
    stopped.then(
      () => {
        logger.info({ ms: Date.now() - started }, 'stopped');
        process.exit(0);
      },
      (err) => {
        logger.error({ err }, 'stop failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', shutdown);
  process.on('SIGINT', shutdown);
}

main().catch((err) => {
  process.stderr.write(`scim-bridge: failed to start: ${(err as Error).message}\n`);
  process.exit(1);
});
