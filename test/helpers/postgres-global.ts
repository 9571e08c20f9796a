/**
 * jest's globalSetup and globalTeardown: one PostgreSQL server for the whole run (about 2 s to start), handed to
 * the workers through the environment (see postgres.ts). When it cannot start (PostgreSQL not installed), the
 * run goes on and every test that needs it fails with the reason; the other suites are not held up.
 */
import { publishServer, startPostgresServer } from './postgres';

type Running = Awaited<ReturnType<typeof startPostgresServer>>;
const KEY = '__scimBridgeTestPostgres';

export async function setup(): Promise<void> {
  try {
    const server = await startPostgresServer();
    (globalThis as Record<string, unknown>)[KEY] = server;
    publishServer(server);
  } catch (err) {
    publishServer(undefined, err);
  }
}

export async function teardown(): Promise<void> {
  const server = (globalThis as Record<string, unknown>)[KEY] as Running | undefined;
  await server?.stop();
}
