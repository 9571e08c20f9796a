/**
 * jest's globalSetup and globalTeardown: one PostgreSQL server for the whole run (about 2 s to start), shared by
 * every worker and handed to them through the environment (see postgres.ts), with a migrated template database
 * that test databases are copied from. When it cannot start (PostgreSQL not installed), the
 * run goes on and every test that needs it fails with the reason; the other suites are not held up.
 */
import { Client } from 'pg';
import { openPostgres } from '../../bridge/src/store/postgres';
import { MIGRATED_TEMPLATE, publishServer, startPostgresServer } from './postgres';

type Running = Awaited<ReturnType<typeof startPostgresServer>>;
const KEY = '__scimBridgeTestPostgres';

export async function setup(): Promise<void> {
  try {
    const server = await startPostgresServer();
    (globalThis as Record<string, unknown>)[KEY] = server;
    await migrateTemplate(server.port);
    publishServer(server);
  } catch (err) {
    publishServer(undefined, err);
  }
}

/** The template test databases are copied from: the bridge's migrations run on it once, by the store itself. */
async function migrateTemplate(port: number): Promise<void> {
  const url = `postgres://postgres@127.0.0.1:${port}/${MIGRATED_TEMPLATE}`;
  const admin = new Client({ host: '127.0.0.1', port, user: 'postgres', database: 'postgres' });
  await admin.connect();
  try {
    await admin.query(`create database ${MIGRATED_TEMPLATE}`);
  } finally {
    await admin.end();
  }
  const store = openPostgres(url, { poolSize: 1 });
  try {
    await store.migrate();
  } finally {
    // Closed: a database can be copied only while no one is connected to it.
    await store.close();
  }
}

export async function teardown(): Promise<void> {
  const server = (globalThis as Record<string, unknown>)[KEY] as Running | undefined;
  await server?.stop();
}
