/**
 * jest's globalSetup: the bridge built for the tests that start it as a process of its own
 * (helpers/bridge-build.ts), and one PostgreSQL server for the run (helpers/postgres-global.ts).
 */
import { buildBridgeForTests } from './helpers/bridge-build';
import { setup as startPostgres } from './helpers/postgres-global';

export default async function setup(): Promise<void> {
  buildBridgeForTests();
  await startPostgres();
}
