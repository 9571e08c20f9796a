/** `npm start`: read the configuration, start the bridge, print where it listens. */
import { ConfigError, readConfig } from './config';
import { createLogger } from './log';
import { start } from './server';

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
  const bridge = await start(config, { logger });
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
  // The banner is for the person at the terminal, not for the log: it goes to stdout as is.
  process.stdout.write(lines.join('\n') + '\n\n');

  const shutdown = (signal: string) => {
    logger.info({ signal }, 'stopping');
    const timer = setTimeout(() => process.exit(1), 10_000);
    timer.unref();
    bridge.stop().then(
      () => process.exit(0),
      (err) => {
        logger.error({ err }, 'stop failed');
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', () => shutdown('SIGTERM'));
  process.once('SIGINT', () => shutdown('SIGINT'));
}

main().catch((err) => {
  process.stderr.write(`scim-bridge: failed to start: ${(err as Error).message}\n`);
  process.exit(1);
});
