/**
 * What only the PostgreSQL store has: migrations run once when replicas start together, a bounded pool, TLS as the
 * URL asks (sslmode, SCIM_BRIDGE_DATABASE_CA), and a password that never reaches a log line or an error message.
 * (Everything both stores do is in store.test.ts and the HTTP suites, which run on both.)
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, readConfig } from '../../bridge/src/config';
import { createLogger } from '../../bridge/src/log';
import { start } from '../../bridge/src/server';
import { openStore } from '../../bridge/src/store';
import { connectionConfig, openPostgres } from '../../bridge/src/store/postgres';
import { readDocument, toUserWrite } from '../../bridge/src/scim/resource';
import { resourceTypes } from '../../bridge/src/scim/schemas';
import { bridgeCommand } from '../helpers/bridge-build';
import { LineSink } from '../helpers/line-sink';
import { adminClient, createTestDatabase, postgresServer } from '../helpers/postgres';

const user = (name: string) => ({ ...toUserWrite(readDocument(resourceTypes.User, { userName: name })), status: 'invited' as const });

describe('migrations', () => {
  it('when three stores start at once on an empty database, then each migrates without error and the schema is made once', async () => {
    const url = await createTestDatabase('migrate');
    const stores = [0, 1, 2].map(() => openPostgres(url, { poolSize: 2 }));
    const outcomes = await Promise.allSettled(stores.map((s) => s.migrate()));
    expect(outcomes.map((o) => (o.status === 'rejected' ? String(o.reason) : 'ok'))).toEqual(['ok', 'ok', 'ok']);
    const admin = await adminClient(url);
    try {
      const applied = (await admin.query('select name from kysely_migration order by name')).rows.map((r) => r.name);
      expect(applied).toEqual(['0001_directory', '0002_lifecycle_and_outbox', '0003_dead_letters', '0004_substring_index', '0005_identifiers_nfc', '0006_leases', '0007_users_status']);
    } finally {
      await admin.end();
    }
    // Every store works on the one schema.
    await Promise.all(stores.map((s, i) => s.createUser(user(`m${i}@example.com`))));
    expect((await stores[0].listUsers({ offset: 0, limit: 10 })).total).toBe(3);
    // A later start finds nothing to do.
    const again = openPostgres(url);
    await again.migrate();
    await Promise.all([...stores, again].map((s) => s.close()));
  });
});

describe('the pool', () => {
  it('when SCIM_BRIDGE_DATABASE_POOL is 2, then 40 requests at once are answered over at most 2 connections', async () => {
    const url = await createTestDatabase('pool');
    const dbName = new URL(url).pathname.slice(1);
    const store = await openStore(url, { poolSize: 2 });
    const admin = await adminClient(url);
    let most = 0;
    try {
      const watching = (async () => {
        for (let i = 0; i < 20; i++) {
          const { rows } = await admin.query("select count(*)::int as n from pg_stat_activity where datname = $1 and application_name = 'scim-bridge'", [dbName]);
          most = Math.max(most, rows[0].n);
          await new Promise((r) => setTimeout(r, 5));
        }
      })();
      const made = await Promise.all(Array.from({ length: 40 }, (_, i) => store.createUser(user(`p${i}@example.com`))));
      await watching;
      expect(made).toHaveLength(40);
      expect(most).toBeGreaterThan(0);
      expect(most).toBeLessThanOrEqual(2);
    } finally {
      await admin.end();
      await store.close();
    }
  });

  it('when the pool setting is out of range or given for SQLite, then the start stops naming it', () => {
    expect(() => readConfig({ SCIM_BRIDGE_DATABASE_URL: 'postgres://u@h/d', SCIM_BRIDGE_DATABASE_POOL: '0' })).toThrow(/SCIM_BRIDGE_DATABASE_POOL: expected a number of connections from 1 to 200/);
    expect(() => readConfig({ SCIM_BRIDGE_DATABASE_URL: 'postgres://u@h/d', SCIM_BRIDGE_DATABASE_POOL: 'ten' })).toThrow(ConfigError);
    expect(() => readConfig({ SCIM_BRIDGE_DATABASE_POOL: '5' })).toThrow(/SCIM_BRIDGE_DATABASE_POOL: applies to a postgres:\/\/ SCIM_BRIDGE_DATABASE_URL only/);
    expect(readConfig({ SCIM_BRIDGE_DATABASE_URL: 'postgres://u@h/d', SCIM_BRIDGE_DATABASE_POOL: '25' }).databasePool).toBe(25);
    expect(readConfig({ SCIM_BRIDGE_DATABASE_URL: 'postgres://u@h/d' }).databasePool).toBe(10);
  });
});

describe('TLS', () => {
  const dir = mkdtempSync(join(tmpdir(), 'scim-bridge-pg-tls-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** Whether the store's own connection is encrypted, as the server sees it. */
  async function encrypted(url: string, ca?: string): Promise<boolean> {
    const env: Record<string, string> = { SCIM_BRIDGE_DATABASE_URL: url };
    if (ca) env.SCIM_BRIDGE_DATABASE_CA = ca;
    const config = readConfig(env);
    const store = await openStore(config.databaseUrl, { caPem: config.databaseCaPem, poolSize: 1 });
    try {
      // The one pooled connection is the store's: ask it about itself.
      const db = (store as unknown as { db: { executeQuery: (q: unknown) => Promise<{ rows: { ssl: boolean }[] }> } }).db;
      const { CompiledQuery } = await import('kysely');
      const { rows } = await db.executeQuery(CompiledQuery.raw('select ssl from pg_stat_ssl where pid = pg_backend_pid()'));
      return rows[0].ssl;
    } finally {
      await store.close();
    }
  }

  it('when the URL says sslmode=verify-full and SCIM_BRIDGE_DATABASE_CA names the CA, then the connection is encrypted and checked', async () => {
    const url = await createTestDatabase('tls');
    const localhost = url.replace('@127.0.0.1:', '@localhost:');
    expect(await encrypted(`${localhost}?sslmode=verify-full`, postgresServer().caFile)).toBe(true);
    // No sslmode: no TLS, as libpq's disable.
    expect(await encrypted(url)).toBe(false);
  });

  it('when the certificate does not name the host, then verify-full refuses it and verify-ca (chain only) accepts it', async () => {
    const url = await createTestDatabase('tls');
    await expect(encrypted(`${url}?sslmode=verify-full`, postgresServer().caFile)).rejects.toThrow(/altnames|does not match/i);
    expect(await encrypted(`${url}?sslmode=verify-ca`, postgresServer().caFile)).toBe(true);
  });

  it('when the CA is not given, then verify-full refuses the unknown chain and require still encrypts', async () => {
    const url = (await createTestDatabase('tls')).replace('@127.0.0.1:', '@localhost:');
    await expect(encrypted(`${url}?sslmode=verify-full`)).rejects.toThrow(/self[- ]signed|unable to verify|certificate/i);
    expect(await encrypted(`${url}?sslmode=require`)).toBe(true);
  });

  it('when SCIM_BRIDGE_DATABASE_CA is missing or not a PEM file, or sslmode is one the bridge does not do, then the start stops naming the variable', () => {
    const notPem = join(dir, 'not.pem');
    writeFileSync(notPem, 'hello');
    const pg = { SCIM_BRIDGE_DATABASE_URL: 'postgres://u@h/d?sslmode=verify-full' };
    expect(() => readConfig({ ...pg, SCIM_BRIDGE_DATABASE_CA: join(dir, 'absent.pem') })).toThrow(/^SCIM_BRIDGE_DATABASE_CA: cannot read .*absent\.pem \(ENOENT\)/);
    expect(() => readConfig({ ...pg, SCIM_BRIDGE_DATABASE_CA: notPem })).toThrow(/^SCIM_BRIDGE_DATABASE_CA: .*holds no PEM certificate/);
    expect(() => readConfig({ SCIM_BRIDGE_DATABASE_CA: postgresServer().caFile })).toThrow(/SCIM_BRIDGE_DATABASE_CA: applies to a postgres:\/\//);
    expect(() => readConfig({ SCIM_BRIDGE_DATABASE_URL: 'postgres://u:hunter2secret@h/d?sslmode=prefer' })).toThrow(/^SCIM_BRIDGE_DATABASE_URL: sslmode=prefer is not supported/);
    expect(() => readConfig({ SCIM_BRIDGE_DATABASE_URL: 'postgres://u:hunter2secret@h/d?sslrootcert=x' })).toThrow(/parameter 'sslrootcert' is not supported/);
  });

  it('when the URL carries the settings libpq users write, then they are read as libpq reads them', () => {
    const c = connectionConfig('postgresql://scim%40corp:p%40ss%2Fword@db.example.com:6543/scim%2Dbridge?sslmode=require&application_name=x');
    expect(c).toMatchObject({ host: 'db.example.com', port: 6543, user: 'scim@corp', password: 'p@ss/word', database: 'scim-bridge', application_name: 'x', ssl: { rejectUnauthorized: false } });
    expect(connectionConfig('postgres://u@/d?host=/run/postgresql')).toMatchObject({ host: '/run/postgresql', ssl: false });
    expect(connectionConfig('postgres://u@h/d?sslmode=require', { caPem: 'PEM' }).ssl).toMatchObject({ rejectUnauthorized: true, ca: 'PEM' });
  });
});

describe('the database password', () => {
  it('when the password is wrong, a connection breaks, or the URL is refused, then no log line and no error message holds it', async () => {
    const PASSWORD = postgresServer().password;
    const good = await createTestDatabase('secret', { role: 'password' });
    expect(good).toContain(encodeURIComponent(PASSWORD));
    const wrong = good.replace(encodeURIComponent(PASSWORD), 'wrong-' + encodeURIComponent(PASSWORD));
    const seen: string[] = [];

    // A start that cannot log in: the error names the failure, not the URL.
    const sink = new LineSink();
    const logger = createLogger({ level: 'debug', pretty: false, destination: sink });
    const failed = await start(readConfig({ SCIM_BRIDGE_PORT: '0', SCIM_BRIDGE_DATABASE_URL: wrong, SCIM_BRIDGE_TOKEN: 'secret-test-token-0123456789' }), { logger }).catch((e: Error) => e);
    expect(failed).toBeInstanceOf(Error);
    expect(String((failed as Error).message)).toMatch(/password authentication failed/);
    seen.push(String((failed as Error).message), String((failed as Error).stack));

    // A running bridge whose connections the server cuts: the pool's error is logged, without the password.
    const bridge = await start(readConfig({ SCIM_BRIDGE_PORT: '0', SCIM_BRIDGE_DATABASE_URL: good, SCIM_BRIDGE_TOKEN: 'secret-test-token-0123456789' }), { logger });
    const headers = { Authorization: 'Bearer secret-test-token-0123456789', 'Content-Type': 'application/scim+json' };
    expect((await fetch(`${bridge.url}/Users`, { method: 'POST', headers, body: JSON.stringify({ userName: 'pw@example.com' }) })).status).toBe(201);
    const admin = await adminClient(good);
    await admin.query("select pg_terminate_backend(pid) from pg_stat_activity where application_name = 'scim-bridge' and datname = $1", [new URL(good).pathname.slice(1)]);
    await admin.end();
    await new Promise((r) => setTimeout(r, 200));
    // The next request gets a fresh connection.
    expect((await fetch(`${bridge.url}/Users`, { headers })).status).toBe(200);
    await bridge.stop();
    expect(sink.lines.some((l) => /idle database connection failed/.test(l))).toBe(true);
    seen.push(...sink.lines);

    // A URL the configuration refuses.
    const refused = (() => {
      try {
        readConfig({ SCIM_BRIDGE_DATABASE_URL: good + '?sslmode=allow' });
      } catch (e) {
        return (e as Error).message;
      }
      return '';
    })();
    expect(refused).toMatch(/sslmode=allow is not supported/);
    seen.push(refused);

    for (const text of seen) {
      expect(text).not.toContain(PASSWORD);
      expect(text).not.toContain(encodeURIComponent(PASSWORD));
    }
  });

  it('when the bridge cannot log in, then the command line says so in one line without the password', async () => {
    const PASSWORD = postgresServer().password;
    const good = await createTestDatabase('secret', { role: 'password' });
    const wrong = good.replace(encodeURIComponent(PASSWORD), 'wrong-' + encodeURIComponent(PASSWORD));
    const { spawn } = await import('node:child_process');
    const [node, main] = bridgeCommand();
    const child = spawn(node, [main], {
      env: { ...process.env, SCIM_BRIDGE_PORT: '0', SCIM_BRIDGE_DATABASE_URL: wrong, SCIM_BRIDGE_TOKEN: 'secret-test-token-0123456789', LOG_LEVEL: 'debug' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (c) => (out += c));
    child.stderr.on('data', (c) => (out += c));
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    expect(code).toBe(1);
    expect(out).toMatch(/scim-bridge: failed to start: .*password authentication failed/);
    expect(out).not.toContain(PASSWORD);
    expect(out).not.toContain(encodeURIComponent(PASSWORD));
  }, 30_000);
});
